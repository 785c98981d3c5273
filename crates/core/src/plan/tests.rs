use super::*;
use crate::config::Format;
use crate::event::{Event, TickSource, decode_event};

/// The example config (`examples/jobrunner.toml`); other modules' tests plan with it too.
pub(crate) fn example() -> Config {
    Config::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/jobrunner.toml"
    )))
    .unwrap()
}

/// An upload to the example's `uploads` bucket.
pub(crate) fn object(key: &str, size: u64, version: Option<&str>) -> ObjectCreated {
    ObjectCreated {
        bucket: "uploads".into(),
        key: key.into(),
        size,
        etag: Some("etag1".into()),
        version_id: version.map(Into::into),
        sequencer: Some("00A1".into()),
        event_time: "2026-11-22T05:00:00Z".parse().unwrap(),
    }
}

fn env(input: &RunTaskInput) -> Vec<(String, String)> {
    input.overrides.container_overrides[0]
        .environment
        .iter()
        .map(|kv| (kv.name.clone(), kv.value.clone()))
        .collect()
}

fn env_value(input: &RunTaskInput, name: &str) -> Option<String> {
    env(input)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

#[test]
fn object_plan_sets_job_variables_and_templated_command() {
    let plan = plan_object(
        &example(),
        "thumbnails",
        &object("images/a b.jpg", 10, Some("v1")),
    )
    .unwrap();
    let input = &plan.attempts[0];
    assert_eq!(input.cluster, "jobs");
    assert_eq!(input.task_definition, "thumbnails");
    assert_eq!(input.started_by, "jobrunner/thumbnails");
    assert_eq!(
        env_value(input, "JOB_KEY").as_deref(),
        Some("images/a b.jpg")
    );
    assert_eq!(env_value(input, "JOB_BUCKET").as_deref(), Some("uploads"));
    assert_eq!(env_value(input, "JOB_VERSION_ID").as_deref(), Some("v1"));
    assert_eq!(env_value(input, "JOB_TRIGGER").as_deref(), Some("s3"));
    assert_eq!(
        env_value(input, "OUTPUT_PREFIX").as_deref(),
        Some("thumbs/")
    );
    let command = input.overrides.container_overrides[0]
        .command
        .clone()
        .unwrap();
    assert_eq!(
        command,
        [
            "resize",
            "--input",
            "s3://uploads/images/a b.jpg",
            "--width",
            "512"
        ]
    );
}

#[test]
fn unversioned_objects_get_no_version_variable() {
    let plan = plan_object(&example(), "thumbnails", &object("images/a.jpg", 10, None)).unwrap();
    assert_eq!(env_value(&plan.attempts[0], "JOB_VERSION_ID"), None);
}

#[test]
fn size_tiers_pick_cpu_and_memory() {
    let config = example();
    let small = plan_object(
        &config,
        "thumbnails",
        &object("images/a.jpg", 104_857_600, None),
    )
    .unwrap();
    assert_eq!(
        (
            small.attempts[0].overrides.cpu.as_deref(),
            small.attempts[0].overrides.memory.as_deref()
        ),
        (Some("512"), Some("1024"))
    );
    let large = plan_object(
        &config,
        "thumbnails",
        &object("images/a.jpg", 104_857_601, None),
    )
    .unwrap();
    assert_eq!(
        (
            large.attempts[0].overrides.cpu.as_deref(),
            large.attempts[0].overrides.memory.as_deref()
        ),
        (Some("2048"), Some("8192"))
    );
}

#[test]
fn capacity_list_becomes_ordered_attempts_with_own_tokens() {
    let plan = plan_object(&example(), "thumbnails", &object("images/a.jpg", 1, None)).unwrap();
    let providers: Vec<_> = plan
        .attempts
        .iter()
        .map(|a| a.capacity_provider_strategy[0].capacity_provider.as_str())
        .collect();
    assert_eq!(providers, ["FARGATE_SPOT", "FARGATE"]);
    assert_ne!(plan.attempts[0].client_token, plan.attempts[1].client_token);
    assert!(plan.attempts.iter().all(|a| a.launch_type.is_none()));
}

#[test]
fn cap_counts_every_started_by_of_the_job() {
    let plan = plan_object(&example(), "thumbnails", &object("images/a.jpg", 1, None)).unwrap();
    assert_eq!(
        plan.cap,
        Some(ConcurrencyCap {
            max_running: 50,
            started_by: vec!["jobrunner/thumbnails".into()]
        })
    );
}

#[test]
fn input_serializes_in_the_aws_api_shape() {
    let plan = plan_object(&example(), "thumbnails", &object("images/a.jpg", 1, None)).unwrap();
    let json = serde_json::to_value(&plan.attempts[0]).unwrap();
    assert_eq!(json["taskDefinition"], "thumbnails");
    assert_eq!(
        json["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"],
        "DISABLED"
    );
    assert_eq!(
        json["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"][0],
        "sg-0123"
    );
    assert_eq!(json["overrides"]["containerOverrides"][0]["name"], "app");
    assert_eq!(
        json["capacityProviderStrategy"][0]["capacityProvider"],
        "FARGATE_SPOT"
    );
    assert_eq!(json["enableECSManagedTags"], true);
    assert_eq!(
        json["tags"][0],
        serde_json::json!({"key": "jobrunner:job", "value": "thumbnails"})
    );
    assert!(
        json.get("launchType").is_none(),
        "launchType and capacityProviderStrategy are exclusive"
    );
}

#[test]
fn overrides_over_8192_characters_are_refused() {
    let config = example();
    let key = format!("images/{}.jpg", "k".repeat(1000));
    // The key appears in JOB_KEY and in the command: still under the limit.
    assert!(plan_object(&config, "thumbnails", &object(&key, 1, None)).is_ok());
    let mut config = config;
    let job = config.jobs.get_mut("thumbnails").unwrap();
    for i in 0..8 {
        job.environment.insert(format!("COPY_{i}"), "{key}".into());
    }
    let err = plan_object(&config, "thumbnails", &object(&key, 1, None)).unwrap_err();
    assert!(err.to_string().contains("ECS allows 8192"), "{err}");
}

#[test]
fn tick_plan_uses_schedule_identity() {
    let config = example();
    let schedule = &config.triggers.schedule[0];
    let tick = ScheduleTick {
        name: schedule.name.clone(),
        scheduled_time: "2026-11-22T06:00:00Z".parse().unwrap(),
        source: TickSource::Scheduler { arn: None },
    };
    let plan = plan_tick(&config, schedule, &tick).unwrap();
    let input = &plan.attempts[0];
    assert_eq!(input.started_by, "jobrunner/report/hourly-report");
    assert_eq!(env_value(input, "JOB_TRIGGER").as_deref(), Some("schedule"));
    assert_eq!(
        env_value(input, "JOB_SCHEDULE").as_deref(),
        Some("hourly-report")
    );
    assert_eq!(
        env_value(input, "JOB_SCHEDULED_TIME").as_deref(),
        Some("2026-11-22T06:00:00Z")
    );
    assert_eq!(
        input.overrides.container_overrides[0]
            .command
            .clone()
            .unwrap(),
        ["report", "--for", "2026-11-22T06:00:00Z"]
    );
    assert_eq!(
        input.client_token,
        crate::token::for_tick("hourly-report", tick.scheduled_time)
    );
    assert_eq!(
        plan.overlap,
        Some(OverlapCheck {
            policy: Overlap::Forbid,
            started_by: "jobrunner/report/hourly-report".into(),
            scheduled_time: "2026-11-22T06:00:00Z".into(),
        })
    );
}

#[test]
fn redelivered_event_plans_the_same_token() {
    let config = example();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/s3-object-created.json"
    ))
    .unwrap();
    let plan_of = |text: &str| {
        let Event::ObjectCreated(o) = decode_event(&serde_json::from_str(text).unwrap())
            .unwrap()
            .remove(0)
        else {
            panic!()
        };
        plan_object(&config, "thumbnails", &o).unwrap().attempts[0]
            .client_token
            .clone()
    };
    // A redelivery has another EventBridge id but the same object and sequencer.
    assert_eq!(
        plan_of(&text),
        plan_of(&text.replace("17793124-05d4", "99999999-05d4"))
    );
    assert_ne!(
        plan_of(&text),
        plan_of(&text.replace("IYV3p45BT0ac8hjHg1houSdS1a", "OTHERVERSION"))
    );
}

#[test]
fn ec2_job_passes_placement_through() {
    let text = r#"
[jobs.gpu]
task_definition = "gpu"
container = "c"
cluster = "ec2-cluster"
launch_type = "EC2"
placement_strategy = [{ type = "binpack", field = "memory" }]
placement_constraints = [{ type = "memberOf", expression = "attribute:ecs.instance-type =~ g5.*" }]
"#;
    let config = Config::parse(text, Format::Toml).unwrap();
    let plan = plan_object(&config, "gpu", &object("a", 1, None)).unwrap();
    let json = serde_json::to_value(&plan.attempts[0]).unwrap();
    assert_eq!(json["launchType"], "EC2");
    assert_eq!(
        json["placementStrategy"][0],
        serde_json::json!({"type": "binpack", "field": "memory"})
    );
    assert_eq!(json["placementConstraints"][0]["type"], "memberOf");
    assert!(json.get("networkConfiguration").is_none());
}

#[test]
fn a_schedule_environment_replaces_the_jobs_entry_of_the_same_name() {
    let mut config = example();
    config
        .jobs
        .get_mut("report")
        .unwrap()
        .environment
        .insert("MODE".into(), "daily".into());
    let schedule = {
        let schedule = &mut config.triggers.schedule[0];
        schedule.environment.insert("MODE".into(), "hourly".into());
        schedule.clone()
    };
    let tick = ScheduleTick {
        name: schedule.name.clone(),
        scheduled_time: "2026-11-22T06:00:00Z".parse().unwrap(),
        source: TickSource::Scheduler { arn: None },
    };
    let plan = plan_tick(&config, &schedule, &tick).unwrap();
    let modes: Vec<(String, String)> = env(&plan.attempts[0])
        .into_iter()
        .filter(|(name, _)| name == "MODE")
        .collect();
    assert_eq!(modes, [("MODE".to_string(), "hourly".to_string())]);
}

#[test]
fn a_submit_runs_as_a_schedule_only_of_its_own_job() {
    let config = example();
    let submit = |job: &str, schedule: &str| crate::event::Submit {
        job: job.into(),
        submitted_by: "arn:aws:iam::123456789012:user/ana".into(),
        submitted_at: "2026-11-25T10:00:00Z".parse().unwrap(),
        object: None,
        schedule: Some((schedule.into(), "2026-11-25T02:00:00Z".parse().unwrap())),
        environment: Default::default(),
    };
    let plan = plan_submit(&config, &submit("report", "hourly-report")).unwrap();
    assert_eq!(
        env_value(&plan.attempts[0], crate::job_env::SCHEDULE).as_deref(),
        Some("hourly-report")
    );
    for (job, schedule) in [("thumbnails", "hourly-report"), ("report", "nightly")] {
        let err = plan_submit(&config, &submit(job, schedule)).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("no schedule '{schedule}' of this job")),
            "{job} {schedule}: {err}"
        );
    }
}
