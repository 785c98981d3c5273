//! Tests on realistic events (the samples in `events/`).

use serde_json::{Value, json};

use super::*;
use crate::config::{Config, Format};
use crate::event::{TaskOverrides, TaskStateChange};

fn sample(name: &str) -> Value {
    jobrunner_testkit::sample(&format!("ecs-task-stopped-{name}"))
}

fn change(name: &str) -> TaskStateChange {
    TaskStateChange::from_detail(&sample(name)["detail"]).unwrap()
}

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:jobrunner-alerts";

fn config() -> Config {
    Config::parse(
        &format!(
            r#"
[workers.orders]
cluster = "jobs"
service = "order-workers"
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"
messages_per_task = 10
max_tasks = 5

[alerts]
topic_arn = "{TOPIC}"

[state]
table = "jobrunner-state"
"#
        ),
        Format::Toml,
    )
    .unwrap()
}

fn config_notifying(classes: &[&str]) -> Config {
    let mut config = config();
    config.alerts.as_mut().unwrap().notify_on =
        classes.iter().map(|c| c.parse().unwrap()).collect();
    config
}

fn task(name: &str) -> StoppedTask {
    StoppedTask::new(&config(), change(name), TaskDefinitionLookup::NotLookedUp)
}

fn definition(containers: &[(&str, bool)]) -> TaskDefinitionInfo {
    TaskDefinitionInfo {
        containers: containers
            .iter()
            .map(|(name, essential)| ContainerDefinitionInfo {
                name: (*name).into(),
                essential: *essential,
                awslogs: Some(AwsLogs {
                    group: "/ecs/thumbnails".into(),
                    region: None,
                    stream_prefix: Some("ecs".into()),
                }),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

#[test]
fn decodes_the_fields_alerts_use() {
    let c = change("oom");
    assert!(c.is_stopped());
    assert_eq!(c.version, Some(5));
    assert_eq!(c.task_id(), "cd2452db7d582ea2d51b17816a6c9167");
    assert_eq!(c.cluster_name(), Some("jobs"));
    assert_eq!(c.partition(), Some("aws"));
    assert_eq!(c.region(), Some("us-east-1"));
    assert_eq!(c.account(), Some("123456789012"));
    assert_eq!(c.task_definition(), Some("thumbnails:7"));
    assert_eq!(c.containers[0].exit_code, Some(137));
    assert_eq!(
        c.override_env("JOB_KEY"),
        Some("images/2024/05/01/panorama.jpg")
    );
    assert_eq!(c.run_seconds(), Some(174));
    assert_eq!(c.dedupe_key(), format!("{}#5", c.task_arn));
}

#[test]
fn tolerates_unknown_fields_nulls_and_quoted_numbers() {
    let detail = json!({
        "taskArn": "arn:aws:ecs:eu-west-1:111122223333:task/abc",
        "lastStatus": "STOPPED",
        "version": "7",
        "containers": [{"name": "app", "exitCode": null, "somethingNew": {"x": 1}}],
        "overrides": null,
        "cpu": 256,
        "brandNewField": [1, 2, 3]
    });
    let c = TaskStateChange::from_detail(&detail).unwrap();
    assert_eq!(c.version, Some(7));
    assert_eq!(c.containers[0].exit_code, None);
    assert_eq!(c.cpu.as_deref(), Some("256"));
    assert_eq!(
        c.cluster_name(),
        None,
        "old-format task ARNs have no cluster"
    );
    assert_eq!(c.task_id(), "abc");
}

#[test]
fn console_links_follow_the_partition() {
    for (partition, region, host) in [
        (
            "aws",
            "eu-west-1",
            "https://eu-west-1.console.aws.amazon.com/",
        ),
        ("aws-cn", "cn-north-1", "https://console.amazonaws.cn/"),
        (
            "aws-us-gov",
            "us-gov-west-1",
            "https://console.amazonaws-us-gov.com/",
        ),
    ] {
        let mut c = change("oom");
        c.task_arn = format!("arn:{partition}:ecs:{region}:111122223333:task/jobs/abc");
        c.cluster_arn = None;
        assert_eq!(c.partition(), Some(partition));
        let url = crate::alert::context::console_url(&c).unwrap();
        assert!(url.starts_with(host), "{url}");
    }
}

#[test]
fn a_missing_task_arn_names_the_field() {
    let err = TaskStateChange::from_detail(&json!({"lastStatus": "STOPPED"})).unwrap_err();
    assert!(err.to_string().contains("taskArn"), "{err}");
    let err = TaskStateChange::from_detail(
        &json!({"taskArn": "x", "lastStatus": "STOPPED", "stoppedAt": "yesterday"}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("stoppedAt"), "{err}");
}

#[test]
fn envelope_decoding_reaches_the_alert_types() {
    let events = crate::event::decode_event(&sample("oom")).unwrap();
    assert!(
        matches!(&events[0], crate::event::Event::TaskStateChange(c) if c.task_id() == "cd2452db7d582ea2d51b17816a6c9167")
    );
}

// ---------------------------------------------------------------------------------------------
// Classification

#[test]
fn every_sample_has_its_class() {
    for (name, class) in [
        ("succeeded", Class::Succeeded),
        ("non-zero-exit", Class::NonZeroExit),
        ("oom", Class::Oom),
        ("failed-to-start", Class::FailedToStart),
        ("failed-to-start-secrets", Class::FailedToStart),
        ("spot-interruption", Class::SpotInterruption),
        ("scaled-in", Class::ScaledIn),
        ("user-stopped", Class::UserStopped),
        ("timeout", Class::Timeout),
        ("unhealthy", Class::Unhealthy),
        ("unknown", Class::Unknown),
    ] {
        assert_eq!(classify(&change(name), None).class, class, "{name}");
    }
}

#[test]
fn class_names_match_the_enum() {
    let names: Vec<&str> = Class::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(names, CLASS_NAMES);
    for name in CLASS_NAMES {
        assert_eq!(Class::from_name(name).unwrap().as_str(), *name);
    }
    for class in crate::config::default_notify_on() {
        assert!(CLASS_NAMES.contains(&class.as_str()), "{class:?}");
    }
}

#[test]
fn non_zero_exit_names_the_container_and_code() {
    let c = classify(&change("non-zero-exit"), None);
    assert_eq!(
        (c.container.as_deref(), c.exit_code),
        (Some("app"), Some(1)),
        "the sidecar's 143 is ECS stopping it"
    );
}

#[test]
fn oom_keeps_the_containers_reason() {
    let c = classify(&change("oom"), None);
    assert_eq!(
        (c.container.as_deref(), c.exit_code),
        (Some("app"), Some(137))
    );
    assert_eq!(
        c.reason.as_deref(),
        Some("OutOfMemoryError: Container killed due to memory usage")
    );
}

#[test]
fn oom_from_the_tasks_stop_reason() {
    let mut c = change("non-zero-exit");
    c.containers[0].exit_code = Some(137);
    c.stopped_reason = Some("OutOfMemoryError: Container killed due to memory usage".into());
    let result = classify(&c, None);
    assert_eq!(
        (result.class, result.container.as_deref(), result.exit_code),
        (Class::Oom, Some("app"), Some(137))
    );
}

#[test]
fn exit_137_without_an_oom_reason_is_a_plain_failure() {
    let mut c = change("oom");
    c.containers[0].reason = None;
    assert_eq!(classify(&c, None).class, Class::NonZeroExit);
}

#[test]
fn failed_to_start_keeps_ecs_reason() {
    let c = classify(&change("failed-to-start"), None);
    assert!(
        c.reason
            .unwrap()
            .starts_with("CannotPullContainerError: pull image manifest")
    );
    let c = classify(&change("failed-to-start-secrets"), None);
    assert!(
        c.reason
            .as_deref()
            .unwrap()
            .starts_with("ResourceInitializationError: unable to pull secrets")
    );
    assert_eq!(c.exit_code, None);
}

#[test]
fn a_start_failure_without_a_stop_code_is_still_one() {
    let mut c = change("failed-to-start");
    c.stop_code = None;
    assert_eq!(classify(&c, None).class, Class::FailedToStart);
}

#[test]
fn only_essential_containers_decide_success() {
    // The sidecar fails, the app succeeds.
    let mut c = change("non-zero-exit");
    c.containers[0].exit_code = Some(0);
    c.containers[1].exit_code = Some(2);
    assert_eq!(
        classify(&c, None).class,
        Class::NonZeroExit,
        "without the task definition every container counts"
    );
    let td = definition(&[("app", true), ("otel-collector", false)]);
    assert_eq!(classify(&c, Some(&td)).class, Class::Succeeded);
    // The essential app fails: the non-essential sidecar does not hide it.
    let c = change("non-zero-exit");
    let result = classify(&c, Some(&td));
    assert_eq!(
        (result.class, result.container.as_deref()),
        (Class::NonZeroExit, Some("app"))
    );
}

#[test]
fn termination_notice_counts_as_an_interruption() {
    let mut c = change("spot-interruption");
    c.stop_code = Some("TerminationNotice".into());
    c.stopped_reason = Some("Task stopped due to Fargate maintenance".into());
    assert_eq!(classify(&c, None).class, Class::SpotInterruption);
}

#[test]
fn old_events_without_a_stop_code_are_inferred_from_the_reason() {
    for (reason, class) in [
        ("Task stopped by user", Class::UserStopped),
        (
            "Scaling activity initiated by (deployment ecs-svc/1)",
            Class::ScaledIn,
        ),
        ("Your Spot Task was interrupted.", Class::SpotInterruption),
    ] {
        let mut c = change("succeeded");
        c.stop_code = None;
        c.stopped_reason = Some(reason.into());
        assert_eq!(classify(&c, None).class, class, "{reason}");
    }
}

#[test]
fn elb_health_check_failures_are_unhealthy() {
    let mut c = change("scaled-in");
    c.stopped_reason = Some("Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/0123)".into());
    assert_eq!(classify(&c, None).class, Class::Unhealthy);
    let publish = render(&Alert::single(StoppedTask::new(
        &config(),
        c,
        TaskDefinitionLookup::NotLookedUp,
    )));
    assert_eq!(
        publish.subject,
        "[jobrunner] UNHEALTHY orders: ELB health checks"
    );
}

#[test]
fn severities() {
    assert_eq!(Class::Oom.severity(), Severity::Error);
    assert_eq!(Class::SpotInterruption.severity(), Severity::Warning);
    assert_eq!(Class::ScaledIn.severity(), Severity::Info);
}

// ---------------------------------------------------------------------------------------------
// Context

#[test]
fn origin_from_started_by_group_or_family() {
    assert_eq!(
        task("oom").origin,
        Origin::Job {
            job: "thumbnails".into(),
            schedule: None
        }
    );
    assert_eq!(
        task("succeeded").origin,
        Origin::Job {
            job: "report".into(),
            schedule: Some("hourly-report".into())
        }
    );
    assert_eq!(
        task("scaled-in").origin,
        Origin::Service {
            service: "order-workers".into(),
            worker: Some("orders".into())
        }
    );
    assert_eq!(task("scaled-in").origin.name(), "orders");
    let mut c = change("oom");
    c.started_by = Some("ecs-svc/123".into());
    c.overrides = TaskOverrides::default();
    assert_eq!(
        Origin::of(&config(), &c),
        Origin::Task {
            family: Some("thumbnails".into())
        }
    );
    c.group = Some("service:other".into());
    assert_eq!(
        Origin::of(&config(), &c),
        Origin::Service {
            service: "other".into(),
            worker: None
        }
    );
    // A jobs-mode worker's task is the worker's, not a job named `worker`.
    c.started_by = Some("jobrunner/worker/orders".into());
    c.group = Some("family:order-worker".into());
    let origin = Origin::of(&config(), &c);
    assert_eq!(
        origin,
        Origin::Worker {
            worker: "orders".into()
        }
    );
    assert_eq!(
        (origin.name(), origin.kind(), origin.describe().as_str()),
        ("orders", "worker", "worker orders (jobs mode)")
    );
}

#[test]
fn input_from_the_overrides() {
    let input = JobInput::of(&change("oom"));
    assert_eq!(
        input.describe().as_deref(),
        Some("s3://uploads/images/2024/05/01/panorama.jpg")
    );
    let input = JobInput::of(&change("succeeded"));
    assert_eq!(
        input.describe().as_deref(),
        Some("schedule hourly-report at 2024-05-01T10:00:00Z")
    );
    assert!(JobInput::of(&change("scaled-in")).is_empty());
}

#[test]
fn links_to_the_console_and_the_log_stream() {
    let c = change("oom");
    assert_eq!(
        console_url(&c).unwrap(),
        "https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/jobs/tasks/cd2452db7d582ea2d51b17816a6c9167/configuration?region=us-east-1"
    );
    let links = log_links(&c, &definition(&[("app", true)]));
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].stream, "ecs/app/cd2452db7d582ea2d51b17816a6c9167");
    assert_eq!(
        links[0].url,
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/$252Fecs$252Fthumbnails/log-events/ecs$252Fapp$252Fcd2452db7d582ea2d51b17816a6c9167"
    );
    let no_prefix = TaskDefinitionInfo {
        containers: vec![ContainerDefinitionInfo {
            name: "app".into(),
            essential: true,
            awslogs: Some(AwsLogs {
                group: "g".into(),
                region: None,
                stream_prefix: None,
            }),
        }],
    };
    assert!(
        log_links(&c, &no_prefix).is_empty(),
        "without a prefix the stream name is unknowable"
    );
}

// ---------------------------------------------------------------------------------------------
// Rendering

fn publish_of(name: &str, definition: TaskDefinitionLookup) -> Publish {
    render(&Alert::single(StoppedTask::new(
        &config(),
        change(name),
        definition,
    )))
}

#[test]
fn subjects_say_the_most_important_first() {
    let subject = |name| publish_of(name, TaskDefinitionLookup::NotLookedUp).subject;
    assert_eq!(subject("oom"), "[jobrunner] OOM thumbnails exit 137");
    assert_eq!(
        subject("non-zero-exit"),
        "[jobrunner] FAILED thumbnails exit 1 (app)"
    );
    assert_eq!(
        subject("failed-to-start"),
        "[jobrunner] FAILED TO START thumbnails: CannotPullContainerError"
    );
    assert_eq!(
        subject("failed-to-start-secrets"),
        "[jobrunner] FAILED TO START report: ResourceInitializationError"
    );
    assert_eq!(
        subject("spot-interruption"),
        "[jobrunner] SPOT INTERRUPTED thumbnails"
    );
    assert_eq!(
        subject("unhealthy"),
        "[jobrunner] UNHEALTHY orders: container health checks"
    );
    assert_eq!(subject("timeout"), "[jobrunner] TIMEOUT report");
    assert_eq!(subject("succeeded"), "[jobrunner] succeeded report");
    assert_eq!(
        subject("unknown"),
        "[jobrunner] STOPPED thumbnails: Task stopped due to an internal error"
    );
}

#[test]
fn subjects_are_printable_ascii_one_line_under_100() {
    let cleaned = clean_subject("[jobrunner] FAILED caf\u{e9}\n\tjob\r\u{7}exit 1");
    assert_eq!(cleaned, "[jobrunner] FAILED caf? job exit 1");
    let long = format!("[jobrunner] FAILED {}", "x".repeat(300));
    let cleaned = clean_subject(&long);
    assert_eq!(cleaned.len(), MAX_SUBJECT_CHARS);
    assert!(cleaned.ends_with("..."));
    assert!(cleaned.starts_with("[jobrunner] FAILED xxx"));

    let mut c = change("unknown");
    c.stopped_reason = Some(format!(
        "Something \u{2603} odd\nhappened {}",
        "y".repeat(200)
    ));
    let subject = render(&Alert::single(StoppedTask::new(
        &config(),
        c,
        TaskDefinitionLookup::NotLookedUp,
    )))
    .subject;
    assert!(subject.len() < 100, "{subject}");
    assert!(
        subject.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "{subject}"
    );
}

#[test]
fn every_protocol_gets_a_body() {
    let publish = publish_of(
        "oom",
        TaskDefinitionLookup::Found(definition(&[("app", true)])),
    );
    let structure: Value = serde_json::from_str(&publish.message).unwrap();
    // JSON key order carries no meaning (and serde_json may preserve insertion order).
    let keys: std::collections::BTreeSet<&str> = structure
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["default", "email", "https", "lambda", "sqs"].into());
    assert_eq!(structure["default"], structure["email"]);
    assert_eq!(structure["sqs"], structure["lambda"]);

    let text = publish.body("email").unwrap();
    assert!(
        text.starts_with("thumbnails: container app ran out of memory (exit 137)\n"),
        "{text}"
    );
    for needle in [
        "Input:       s3://uploads/images/2024/05/01/panorama.jpg",
        "Reason:      OutOfMemoryError: Container killed due to memory usage",
        "Stop:        EssentialContainerExited: Essential container in task exited",
        "Containers:  app: exit 137, OutOfMemoryError",
        "Stopped:     2024-05-01T10:04:31Z (ran 2m 54s)",
        "Definition:  thumbnails:7, FARGATE_SPOT, us-east-1a, 512 CPU units, 1024 MiB",
        "Console:     https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/jobs/tasks/",
        "Logs:        app: https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:",
        "What to do:  Give the task more memory",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }

    let doc = parse_document(&publish).unwrap();
    assert_eq!(doc["schema"], SCHEMA);
    assert_eq!(doc["class"], "oom");
    assert_eq!(doc["severity"], "error");
    assert_eq!(doc["name"], "thumbnails");
    assert_eq!(doc["count"], 1);
    let task = &doc["tasks"][0];
    assert_eq!(task["exit_code"], 137);
    assert_eq!(task["container"], "app");
    assert_eq!(
        task["origin"],
        json!({"kind": "job", "job": "thumbnails", "schedule": null})
    );
    assert_eq!(task["input"]["bucket"], "uploads");
    assert_eq!(task["input"]["key"], "images/2024/05/01/panorama.jpg");
    assert_eq!(task["containers"][0]["essential"], true);
    assert_eq!(task["run_seconds"], 174);
    assert_eq!(task["logs_status"], "found");
    assert_eq!(task["logs"][0]["group"], "/ecs/thumbnails");

    assert_eq!(
        publish.attributes,
        [
            ("class", "oom"),
            ("cluster", "jobs"),
            ("job", "thumbnails"),
            ("origin", "job"),
            ("severity", "error")
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    );
}

#[test]
fn a_failed_lookup_still_alerts_without_links() {
    let publish = publish_of(
        "oom",
        TaskDefinitionLookup::Failed("AccessDeniedException: not allowed".into()),
    );
    assert!(
        publish
            .body("default")
            .unwrap()
            .contains("Logs:        (unavailable: AccessDeniedException: not allowed)")
    );
    assert_eq!(
        parse_document(&publish).unwrap()["tasks"][0]["logs_status"],
        "unavailable"
    );
}

#[test]
fn a_task_that_never_started_says_so() {
    let text = publish_of("failed-to-start", TaskDefinitionLookup::NotLookedUp)
        .body("default")
        .unwrap();
    assert!(
        text.contains("(1m 33s after it was created; it never started)"),
        "{text}"
    );
    assert!(
        text.contains("Containers:  app: no exit code, CannotPullContainerError"),
        "{text}"
    );
}

#[test]
fn huge_reasons_are_clipped() {
    let mut c = change("unknown");
    c.stopped_reason = Some("z".repeat(100_000));
    let publish = render(&Alert::single(StoppedTask::new(
        &config(),
        c,
        TaskDefinitionLookup::NotLookedUp,
    )));
    assert!(publish.size() < 40_000, "{}", publish.size());
    assert!(publish.body("default").unwrap().contains("... [truncated]"));
}

#[test]
fn durations() {
    assert_eq!(render::text::duration(45), "45s");
    assert_eq!(render::text::duration(161), "2m 41s");
    assert_eq!(render::text::duration(3790), "1h 03m 10s");
    assert_eq!(render::text::duration(2 * 86_400 + 4 * 3600), "2d 04h 00m");
}

// ---------------------------------------------------------------------------------------------
// Storms: dedupe and digests

fn oom_copy(n: usize) -> TaskStateChange {
    let mut c = change("oom");
    c.task_arn = format!("arn:aws:ecs:us-east-1:123456789012:task/jobs/{n:032x}");
    c
}

#[test]
fn duplicate_deliveries_collapse() {
    let a = oom_copy(1);
    let b = oom_copy(2);
    let mut a_later = a.clone();
    a_later.version = Some(6);
    let out = dedupe(vec![
        ("m1".into(), a.clone()),
        ("m2".into(), b.clone()),
        ("m3".into(), a.clone()),
        ("m4".into(), a_later.clone()),
    ]);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].0, ["m1", "m3", "m4"]);
    assert_eq!(
        out[0].1.version,
        Some(6),
        "the latest version describes the stop"
    );
    assert_eq!(out[1].0, ["m2"]);
}

#[test]
fn digests_group_by_job_and_class() {
    let config = config();
    let alerts = config.alerts.as_ref().unwrap();
    let mut tasks: Vec<StoppedTask> = (0..5)
        .map(|n| {
            StoppedTask::new(&config, oom_copy(n), TaskDefinitionLookup::NotLookedUp)
                .with_deliveries(vec![format!("m{n}")])
        })
        .collect();
    tasks.insert(2, task("non-zero-exit").with_deliveries(vec!["x".into()]));
    tasks.push(task("succeeded"));
    tasks.push(task("failed-to-start-secrets"));
    let (groups, quiet) = group(alerts, tasks);
    assert_eq!(quiet.len(), 1, "succeeded is not in the default notify_on");
    let summary: Vec<(Class, &str, usize)> = groups
        .iter()
        .map(|g| (g.class, g.name.as_str(), g.tasks.len()))
        .collect();
    assert_eq!(
        summary,
        [
            (Class::Oom, "thumbnails", 5),
            (Class::NonZeroExit, "thumbnails", 1),
            (Class::FailedToStart, "report", 1)
        ]
    );
    assert_eq!(
        groups[0].deliveries().collect::<Vec<_>>(),
        ["m0", "m1", "m2", "m3", "m4"]
    );

    let publish = render(&groups[0]);
    assert_eq!(
        publish.subject,
        "[jobrunner] OOM thumbnails: 5 tasks, exit 137"
    );
    let text = publish.body("email").unwrap();
    assert!(
        text.starts_with(
            "5 tasks of job thumbnails stopped with class oom (error).\nExit codes: 137 x5\n"
        ),
        "{text}"
    );
    assert!(text.contains("--- 3 of 5: thumbnails: container app ran out of memory"));
    assert!(!text.contains("--- 4 of 5"));
    assert!(text.contains("--- The other 2:\n00000000000000000000000000000003  stopped 2024-05-01T10:04:31Z  exit 137  s3://uploads/"), "{text}");
    let doc = parse_document(&publish).unwrap();
    assert_eq!(doc["count"], 5);
    assert_eq!(doc["tasks"].as_array().unwrap().len(), DIGEST_FULL);
    assert_eq!(doc["more_tasks"].as_array().unwrap().len(), 2);
    assert_eq!(doc["omitted"], 0);
}

#[test]
fn notify_on_chooses_the_classes() {
    let config = config_notifying(&["succeeded"]);
    let (groups, quiet) = group(
        config.alerts.as_ref().unwrap(),
        vec![task("succeeded"), task("oom")],
    );
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].class, Class::Succeeded);
    assert_eq!(quiet[0].class(), Class::Oom);
}

#[test]
fn a_storm_fits_in_one_message() {
    let config = config();
    let tasks: Vec<StoppedTask> = (0..5000)
        .map(|n| {
            let mut c = oom_copy(n);
            c.overrides.container_overrides[0]
                .environment
                .iter_mut()
                .filter(|kv| kv.name.as_deref() == Some("JOB_KEY"))
                .for_each(|kv| {
                    kv.value = Some(format!("images/{n}/{}", "k".repeat(900)));
                });
            StoppedTask::new(&config, c, TaskDefinitionLookup::NotLookedUp)
        })
        .collect();
    let (groups, _) = group(config.alerts.as_ref().unwrap(), tasks);
    assert_eq!(groups.len(), 1);
    let publish = render(&groups[0]);
    assert!(publish.size() <= MAX_PUBLISH_BYTES, "{}", publish.size());
    let doc = parse_document(&publish).unwrap();
    assert_eq!(doc["count"], 5000);
    let listed = doc["more_tasks"].as_array().unwrap().len();
    assert!(listed > 0 && listed < DIGEST_LISTED, "{listed}");
    assert_eq!(
        doc["omitted"].as_u64().unwrap() as usize,
        5000 - DIGEST_FULL - listed
    );
    let text = publish.body("default").unwrap();
    assert!(
        text.contains("more, not listed (a digest lists at most"),
        "{}",
        &text[text.len() - 300..]
    );
    assert_eq!(
        publish.subject,
        "[jobrunner] OOM thumbnails: 5000 tasks, exit 137"
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile events: forged lines, unsafe characters, sizes

/// Control, separator and format characters, listed here independently of the renderer.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{61c}')
        || ('\u{200b}'..='\u{200f}').contains(&c)
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
        || ('\u{e0000}'..='\u{e007f}').contains(&c)
}

fn hostile_publish(detail: Value, lookup: TaskDefinitionLookup) -> Publish {
    let change = TaskStateChange::from_detail(&detail).unwrap();
    render(&Alert::single(StoppedTask::new(&config(), change, lookup)))
}

fn assert_safe(publish: &Publish) {
    assert!(publish.size() <= MAX_PUBLISH_BYTES, "{}", publish.size());
    assert!(
        !publish.message.chars().any(is_unsafe),
        "raw unsafe character"
    );
    let text = publish.body("email").unwrap();
    assert!(
        !text.chars().any(|c| c != '\n' && is_unsafe(c)),
        "unsafe character in the text body"
    );
    for (name, value) in &publish.attributes {
        assert!(!value.chars().any(is_unsafe), "attribute {name}: {value:?}");
    }
    assert!(publish.subject.bytes().all(|b| (0x20..=0x7e).contains(&b)));
    parse_document(publish).expect("the document parses");
}

#[test]
fn line_breaks_in_fields_cannot_forge_lines() {
    let forged =
        "stopped\nConsole:     https://evil.example/login\r\nWhat to do:  reply with your password";
    let mut detail = sample("user-stopped")["detail"].clone();
    detail["stoppedReason"] = forged.into();
    detail["containers"][0]["reason"] = format!("x\u{2028}Logs:        {forged}").into();
    detail["containers"][0]["name"] = "app\u{2029}Input: s3://other/key".into();
    detail["startedBy"] = "jobrunner/report\nConsole: x".into();
    let publish = hostile_publish(
        detail,
        TaskDefinitionLookup::Failed("boom\nConsole: y".into()),
    );
    assert_safe(&publish);
    let text = publish.body("email").unwrap();
    let forged_lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            (l.starts_with("Console:")
                && !l.starts_with("Console:     https://us-east-1.console.aws.amazon.com/"))
                || l.starts_with("What to do:")
                || l.starts_with("Input: s3://other")
        })
        .collect();
    assert!(forged_lines.is_empty(), "forged: {forged_lines:?}\n{text}");
    assert!(
        text.contains("stopped\\nConsole:     https://evil.example/login\\r\\nWhat to do:"),
        "{text}"
    );
    assert!(text.contains("app\\u{2029}Input: s3://other/key"), "{text}");
    // The JSON document keeps the exact values (escaped as JSON).
    let doc = parse_document(&publish).unwrap();
    assert_eq!(doc["tasks"][0]["stopped_reason"], forged);
    assert_eq!(
        doc["tasks"][0]["containers"][0]["name"],
        "app\u{2029}Input: s3://other/key"
    );
}

#[test]
fn bidi_and_invisible_characters_are_escaped() {
    let mut detail = sample("oom")["detail"].clone();
    let key = "images/\u{202e}gpj.exe\u{200b}\u{2066}\u{feff}\u{e0041}";
    for kv in detail["overrides"]["containerOverrides"][0]["environment"]
        .as_array_mut()
        .unwrap()
    {
        if kv["name"] == "JOB_KEY" {
            kv["value"] = key.into();
        }
    }
    let publish = hostile_publish(detail, TaskDefinitionLookup::NotLookedUp);
    assert_safe(&publish);
    let text = publish.body("email").unwrap();
    assert!(
        text.contains("images/\\u{202e}gpj.exe\\u{200b}\\u{2066}\\u{feff}\\u{e0041}"),
        "{text}"
    );
    assert_eq!(
        parse_document(&publish).unwrap()["tasks"][0]["input"]["key"],
        key
    );
    assert!(
        publish.message.contains("\\u202e"),
        "JSON-escaped in the message"
    );
}

#[test]
fn attributes_from_the_event_are_escaped() {
    let mut detail = sample("non-zero-exit")["detail"].clone();
    detail["startedBy"] = "jobrunner/thumb\u{0}nails\n".into();
    detail["clusterArn"] = "arn:aws:ecs:us-east-1:123456789012:cluster/jo\u{202e}bs".into();
    let publish = hostile_publish(detail, TaskDefinitionLookup::NotLookedUp);
    assert_safe(&publish);
    assert_eq!(publish.attributes["job"], "thumb\\u{0}nails\\n");
    assert_eq!(publish.attributes["cluster"], "jo\\u{202e}bs");
}

#[test]
fn a_hostile_stop_event_fits_in_one_sns_message() {
    let mut detail = sample("oom")["detail"].clone();
    let arn = format!(
        "arn:aws:ecs:us-east-1:123456789012:task/jobs/{}",
        "a".repeat(300_000)
    );
    detail["taskArn"] = arn.clone().into();
    detail["clusterArn"] =
        format!("arn:aws:ecs:us-east-1:1:cluster/{}", "c".repeat(100_000)).into();
    detail["startedBy"] = format!("jobrunner/{}", "j".repeat(100_000)).into();
    // 1,000 containers, one of them named with 200 KB (all of them would make a 200 MB event).
    detail["containers"] = (0..1000)
        .map(|i| {
            let name = if i == 0 {
                "n".repeat(200_000)
            } else {
                format!("c{i}")
            };
            json!({"name": name, "exitCode": 137, "reason": "OutOfMemoryError"})
        })
        .collect::<Vec<_>>()
        .into();
    let change = TaskStateChange::from_detail(&detail).unwrap();
    let info = TaskDefinitionInfo {
        containers: change
            .containers
            .iter()
            .map(|c| ContainerDefinitionInfo {
                name: c.name.clone(),
                essential: true,
                awslogs: Some(AwsLogs {
                    group: format!("/ecs/{}", "g".repeat(300)),
                    region: None,
                    stream_prefix: Some("ecs".into()),
                }),
            })
            .collect(),
    };
    let task = StoppedTask::new(&config(), change, TaskDefinitionLookup::Found(info));
    let single = render(&Alert::single(task.clone()));
    assert_safe(&single);
    let attributes: usize = single
        .attributes
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    assert!(single.message.len() + attributes <= MAX_PUBLISH_BYTES);
    let doc = parse_document(&single).unwrap();
    assert_eq!(doc["truncated"], true);
    assert_eq!(doc["tasks"][0]["class"], "oom");
    assert!(doc["tasks"][0]["containers"].as_array().unwrap().len() <= 10);
    let text = single.body("email").unwrap();
    assert!(text.contains("more containers, not shown"), "{text}");
    // A digest of such tasks fits too.
    let mut digest = Alert::single(task.clone());
    digest.tasks.extend((0..4).map(|_| task.clone()));
    assert_safe(&render(&digest));
}

#[test]
fn ordinary_alerts_are_not_cut() {
    let publish = publish_of(
        "oom",
        TaskDefinitionLookup::Found(definition(&[("app", true)])),
    );
    let doc = parse_document(&publish).unwrap();
    assert_eq!(doc["truncated"], false);
    assert_eq!(doc["tasks"][0]["logs_status"], "found");
    assert!(!publish.body("email").unwrap().contains("[truncated]"));
}

// ---------------------------------------------------------------------------------------------
// Classifier rules that must each be load-bearing

fn classify_detail(stop_code: Option<&str>, reason: &str, containers: Value) -> Classification {
    let mut detail = json!({"taskArn": "arn:aws:ecs:us-east-1:1:task/jobs/x", "lastStatus": "STOPPED",
        "stoppedReason": reason, "containers": containers});
    if let Some(code) = stop_code {
        detail["stopCode"] = code.into();
    }
    classify(&TaskStateChange::from_detail(&detail).unwrap(), None)
}

#[test]
fn each_oom_wording_is_recognised() {
    for reason in [
        "OutOfMemoryError: Container killed due to memory usage",
        "OOMKilled",
        "container was oomkilled by the kernel",
        "process ran out of memory",
        "Out Of Memory",
    ] {
        let c = classify_detail(
            Some("EssentialContainerExited"),
            "Essential container in task exited",
            json!([{"name": "app", "exitCode": 1, "reason": reason}]),
        );
        assert_eq!(c.class, Class::Oom, "container reason {reason:?}");
        assert_eq!(c.container.as_deref(), Some("app"));
        let c = classify_detail(
            Some("EssentialContainerExited"),
            reason,
            json!([{"name": "app", "exitCode": 1}]),
        );
        assert_eq!(c.class, Class::Oom, "task reason {reason:?}");
    }
}

#[test]
fn a_task_oom_blames_the_container_killed_with_137() {
    let c = classify_detail(
        Some("EssentialContainerExited"),
        "OOMKilled",
        json!([{"name": "sidecar", "exitCode": 1}, {"name": "app", "exitCode": 137}]),
    );
    assert_eq!(c.class, Class::Oom);
    assert_eq!(c.container.as_deref(), Some("app"));
    assert_eq!(c.exit_code, Some(137));
    assert_eq!(c.reason.as_deref(), Some("OOMKilled"));
    // Without a 137, the first non-zero exit.
    let c = classify_detail(
        Some("EssentialContainerExited"),
        "OOMKilled",
        json!([{"name": "ok", "exitCode": 0}, {"name": "app", "exitCode": 2}]),
    );
    assert_eq!(c.container.as_deref(), Some("app"));
    // No container exited non-zero: the task ran out of memory.
    let c = classify_detail(
        Some("EssentialContainerExited"),
        "OOMKilled",
        json!([{"name": "ok", "exitCode": 0}]),
    );
    assert_eq!((c.class, c.container), (Class::Oom, None));
}

#[test]
fn sigterm_143_is_blamed_last() {
    let c = classify_detail(
        Some("EssentialContainerExited"),
        "Essential container in task exited",
        json!([{"name": "web", "exitCode": 143}, {"name": "app", "exitCode": 3}]),
    );
    assert_eq!(
        (c.class, c.container.as_deref(), c.exit_code),
        (Class::NonZeroExit, Some("app"), Some(3))
    );
    let c = classify_detail(
        Some("EssentialContainerExited"),
        "Essential container in task exited",
        json!([{"name": "web", "exitCode": 143}]),
    );
    assert_eq!((c.class, c.exit_code), (Class::NonZeroExit, Some(143)));
}

#[test]
fn no_links_for_names_aws_cannot_have() {
    let mut c = change("oom");
    assert!(console_url(&c).is_some());
    assert_eq!(log_links(&c, &definition(&[("app", true)])).len(), 1);
    c.containers[0].name = "n".repeat(600);
    let long = definition(&[(c.containers[0].name.as_str(), true)]);
    assert!(
        log_links(&c, &long).is_empty(),
        "stream over 512 characters"
    );
    c.task_arn = format!(
        "arn:aws:ecs:us-east-1:123456789012:task/jobs/{}",
        "a".repeat(300)
    );
    assert_eq!(console_url(&c), None, "task ID over 255 characters");
}

#[test]
fn a_start_failure_keeps_the_most_specific_reason() {
    // The stop code alone marks a start failure; the container's reason is the specific one.
    let c = classify_detail(
        Some("TaskFailedToStart"),
        "Task failed to start",
        json!([{"name": "app", "reason": "CannotPullContainerError: pull access denied"}]),
    );
    assert_eq!(c.class, Class::FailedToStart);
    assert_eq!(c.container.as_deref(), Some("app"));
    assert_eq!(
        c.reason.as_deref(),
        Some("CannotPullContainerError: pull access denied")
    );
    // When the task's own reason names the failure, it is kept, and the container still named.
    let c = classify_detail(
        Some("TaskFailedToStart"),
        "ResourceInitializationError: unable to pull secrets",
        json!([{"name": "app", "reason": "CannotStartContainerError: other"}]),
    );
    assert_eq!(c.container.as_deref(), Some("app"));
    assert_eq!(
        c.reason.as_deref(),
        Some("ResourceInitializationError: unable to pull secrets")
    );
    // The stop code without any start-failure reason still is a start failure.
    let c = classify_detail(Some("TaskFailedToStart"), "Task failed to start", json!([]));
    assert_eq!((c.class, c.container), (Class::FailedToStart, None));
}

#[test]
fn a_task_oom_reports_the_tasks_reason_over_the_containers() {
    let c = classify_detail(
        Some("EssentialContainerExited"),
        "OutOfMemoryError: task memory exceeded",
        json!([{"name": "app", "exitCode": 137, "reason": "Killed"}]),
    );
    assert_eq!(c.class, Class::Oom);
    assert_eq!(c.container.as_deref(), Some("app"));
    assert_eq!(
        c.reason.as_deref(),
        Some("OutOfMemoryError: task memory exceeded")
    );
}
