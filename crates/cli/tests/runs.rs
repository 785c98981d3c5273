//! `jobrunner run list|view|cancel` against moto server: a state table created as the CDK
//! creates it, runs written with the core's `Ledger` through the functions' `StateStore`, the
//! CLI run as a user runs it (default credential chain, `AWS_ENDPOINT_URL`).

use std::path::PathBuf;
use std::process::Output;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use jobrunner_aws::Adapters;
use jobrunner_aws::state_store::StateStore;
use jobrunner_core::class::Class;
use jobrunner_core::config::{Format, State};
use jobrunner_core::cost::Estimate;
use jobrunner_core::event::ObjectCreated;
use jobrunner_core::ledger::keys;
use jobrunner_core::ledger::{Ledger, ObjectPointer, Stored};
use jobrunner_core::run::{Attempt, Run, RunInput, RunState};
use jobrunner_core::{Config, token};
use serde_json::Value;

mod moto;

use moto::Account;

/// One test's world: its account, its table and a config naming it.
struct World {
    account: Account,
    table: String,
    config: PathBuf,
    adapters: Adapters,
    state: State,
}

fn config_text(table: &str) -> String {
    format!(
        r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]
capacity = ["FARGATE"]

[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"

[jobs.index]
task_definition = "index"
container = "app"

[jobs.report]
task_definition = "report"
container = "app"

[[triggers.s3]]
job = "thumbnails"
bucket = "uploads"
prefix = "images/"

[[triggers.s3]]
job = "index"
bucket = "uploads"

[[triggers.schedule]]
name = "hourly-report"
job = "report"
expression = "cron(0 * * * ? *)"

[state]
table = "{table}"
retention_days = 7
"#
    )
}

impl World {
    async fn new(name: &str) -> World {
        let account = Account::new();
        let table = format!("jobrunner-state-{name}");
        moto::create_state_table(&account.sdk(), &table).await;
        let text = config_text(&table);
        let config = std::env::temp_dir().join(format!(
            "jobrunner-cli-runs-{}-{name}.toml",
            std::process::id()
        ));
        std::fs::write(&config, &text).unwrap();
        let state = Config::parse(&text, Format::Toml)
            .unwrap()
            .state
            .expect("[state]");
        let adapters = Adapters {
            state: Some(StateStore::from_sdk_config(&account.sdk(), &table)),
            ..Adapters::default()
        };
        World {
            account,
            table,
            config,
            adapters,
            state,
        }
    }

    /// Writes `value` at `key` as the functions do.
    async fn put<T: Stored + Clone>(&self, key: &str, value: T) {
        Ledger::new(&self.adapters, &self.state)
            .update(key, None, Utc::now(), |item: &mut Option<T>| {
                *item = Some(value.clone());
                true
            })
            .await
            .expect("ledger write");
    }

    async fn put_run(&self, run: &Run) {
        self.put(&keys::run_key(&run.run_id), run.clone()).await;
    }

    async fn load_run(&self, run_id: &str) -> Run {
        Ledger::new(&self.adapters, &self.state)
            .load::<Run>(&keys::run_key(run_id))
            .await
            .expect("ledger read")
            .expect("run stored")
            .0
    }

    /// `jobrunner run <args…> --config <this world's config>`.
    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--config", self.config.to_str().unwrap()]);
        self.account.jobrunner(&all)
    }
}

fn id(n: u32) -> String {
    format!("{n:020x}")
}

fn tick(schedule: &str, at: DateTime<Utc>) -> RunInput {
    RunInput::Schedule {
        schedule: schedule.into(),
        scheduled_time: at,
    }
}

fn object(key: &str, version: Option<&str>) -> RunInput {
    RunInput::S3 {
        bucket: "uploads".into(),
        key: key.into(),
        version_id: version.map(Into::into),
        etag: Some("e1".into()),
        size: Some(2048),
    }
}

fn run(id: &str, job: &str, state: RunState, input: RunInput, queued: DateTime<Utc>) -> Run {
    let mut run = Run::new(id, job, input, queued, queued);
    run.state = state;
    run
}

/// A task that ran from `started` to `stopped`.
fn attempt(number: u32, started: DateTime<Utc>, stopped: Option<DateTime<Utc>>) -> Attempt {
    Attempt {
        number,
        task_arn: Some(format!(
            "arn:aws:ecs:us-east-1:123456789012:task/jobs/task{number}"
        )),
        launched_at: Some(started - Duration::seconds(45)),
        started_at: Some(started),
        stopped_at: stopped,
        last_status: Some(
            if stopped.is_some() {
                "STOPPED"
            } else {
                "RUNNING"
            }
            .into(),
        ),
        ..Attempt::default()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstderr: {}\nstdout: {}",
        output.status,
        stderr(output),
        stdout(output)
    );
    stdout(output)
}

/// Exits non-zero with exactly one line on stderr, which it returns.
fn one_line_error(output: &Output) -> String {
    assert!(!output.status.success(), "succeeded: {}", stdout(output));
    let text = stderr(output);
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text}");
    assert!(text.starts_with("jobrunner: "), "{text}");
    text
}

fn json(output: &Output) -> Value {
    serde_json::from_str(&succeeded(output)).expect("JSON on stdout")
}

/// The run ids of a `run list` table, top to bottom.
fn listed(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().next().unwrap().to_string())
        .collect()
}

fn ids(json: &Value) -> Vec<&str> {
    json.as_array()
        .expect("array")
        .iter()
        .map(|run| run["run_id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn list_shows_runs_newest_first_filtered_and_limited() {
    let world = World::new("list").await;
    let now = Utc::now();
    let ago = |minutes: i64| now - Duration::minutes(minutes);
    let mut a = run(
        &id(1),
        "thumbnails",
        RunState::Succeeded,
        object("images/a.jpg", None),
        ago(10),
    );
    a.attempts
        .push(attempt(1, ago(9), Some(ago(9) + Duration::seconds(130))));
    let b = run(
        &id(2),
        "report",
        RunState::Failed,
        tick("hourly-report", ago(60)),
        ago(60),
    );
    let mut c = run(
        &id(3),
        "thumbnails",
        RunState::Running,
        object("images/c.jpg", Some("v1")),
        ago(180),
    );
    c.attempts.push(attempt(1, ago(179), None));
    let d = run(
        &id(4),
        "index",
        RunState::Waiting,
        object("other/d.txt", None),
        ago(30 * 60),
    );
    let e = run(
        &id(5),
        "thumbnails",
        RunState::Succeeded,
        object("images/e.jpg", None),
        ago(3 * 24 * 60),
    );
    for r in [&e, &c, &a, &d, &b] {
        world.put_run(r).await;
    }

    let table = succeeded(&world.run(&["list"]));
    assert_eq!(
        listed(&table),
        [id(1), id(2), id(3)],
        "default: 24h\n{table}"
    );
    let header = table.lines().next().unwrap();
    for column in [
        "RUN ID", "JOB", "STATE", "INPUT", "QUEUED", "DURATION", "ATTEMPTS",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let first = table.lines().nth(1).unwrap();
    for cell in [
        "thumbnails",
        "succeeded",
        "s3://uploads/images/a.jpg",
        "2m10s",
    ] {
        assert!(first.contains(cell), "{first}");
    }
    assert!(first.ends_with(" 1"), "one attempt: {first}");

    let week = succeeded(&world.run(&["list", "--since", "5d"]));
    assert_eq!(listed(&week), [id(1), id(2), id(3), id(4), id(5)]);
    let limited = succeeded(&world.run(&["list", "--since", "5d", "--limit", "4"]));
    assert_eq!(listed(&limited), [id(1), id(2), id(3), id(4)]);
    let by_job = succeeded(&world.run(&["list", "--since", "5d", "--job", "thumbnails"]));
    assert_eq!(listed(&by_job), [id(1), id(3), id(5)]);
    let by_state = succeeded(&world.run(&["list", "--state", "failed"]));
    assert_eq!(listed(&by_state), [id(2)]);
    let both = succeeded(&world.run(&[
        "list",
        "--since",
        "5d",
        "--job",
        "thumbnails",
        "--state",
        "succeeded",
        "--limit",
        "1",
    ]));
    assert_eq!(listed(&both), [id(1)]);

    let listed_json = json(&world.run(&["list", "--since", "2d", "--limit", "3", "--json"]));
    assert_eq!(ids(&listed_json), [id(1), id(2), id(3)]);
    let states: Vec<_> = listed_json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["succeeded", "failed", "running"]);
    assert_eq!(listed_json[2]["input"]["trigger"], "s3");
    assert_eq!(listed_json[2]["input"]["version_id"], "v1");

    let none = world.run(&["list", "--job", "nope"]);
    assert_eq!(succeeded(&none), "");
    assert!(
        stderr(&none).contains("no runs of job nope"),
        "{}",
        stderr(&none)
    );
    let empty = json(&world.run(&["list", "--job", "nope", "--json"]));
    assert_eq!(empty, serde_json::json!([]));

    let too_long = one_line_error(&world.run(&["list", "--since", "8d"]));
    assert!(too_long.contains("retention_days = 7"), "{too_long}");
    let bad_state = one_line_error(&world.run(&["list", "--state", "done"]));
    assert!(
        bad_state.contains("--state 'done': not a run state (one of waiting, launching"),
        "{bad_state}"
    );
    let zero = one_line_error(&world.run(&["list", "--limit", "0"]));
    assert!(zero.contains("--limit 0"), "{zero}");

    // The region: --region over AWS_REGION (moto keeps tables per region), and none at all.
    let elsewhere = one_line_error(&world.run(&["list", "--region", "eu-west-1"]));
    assert!(
        elsewhere.contains("ResourceNotFoundException"),
        "{elsewhere}"
    );
    let config = world.config.to_str().unwrap();
    let mut here =
        world
            .account
            .command(&["run", "list", "--region", "us-east-1", "--config", config]);
    here.env("AWS_REGION", "eu-west-1");
    assert_eq!(listed(&succeeded(&here.output().unwrap())).len(), 3);
    let mut nowhere = world.account.command(&["run", "list", "--config", config]);
    nowhere.env_remove("AWS_REGION");
    let no_region = one_line_error(&nowhere.output().unwrap());
    assert!(
        no_region.contains("no AWS region: pass --region"),
        "{no_region}"
    );
}

#[tokio::test]
async fn view_by_id_shows_every_attempt() {
    let world = World::new("view-id").await;
    let queued: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().unwrap();
    let mut r = run(
        &id(7),
        "thumbnails",
        RunState::Succeeded,
        object("images/a.jpg", Some("v1")),
        queued,
    );
    let mut first = attempt(
        1,
        queued + Duration::seconds(50),
        Some(queued + Duration::seconds(110)),
    );
    first.capacity_provider = Some("FARGATE_SPOT".into());
    first.cpu = Some(512);
    first.memory = Some(1024);
    first.exit_codes = [("app".to_string(), 143)].into();
    first.class = Some(Class::SpotInterruption);
    first.stop_code = Some("SpotInterruption".into());
    first.reason = Some("Your Spot Task was interrupted.".into());
    first.log_url = Some("https://console.aws.amazon.com/cloudwatch/home#logsV2:task1".into());
    first.cost = Some(Estimate {
        vcpu_seconds: 60.0,
        gb_seconds: 60.0,
        usd: 0.0002,
    });
    let mut second = attempt(
        2,
        queued + Duration::seconds(200),
        Some(queued + Duration::seconds(330)),
    );
    second.exit_codes = [("app".to_string(), 0)].into();
    second.class = Some(Class::Succeeded);
    r.attempts = vec![first, second];
    world.put_run(&r).await;

    let text = succeeded(&world.run(&["view", &id(7)]));
    for line in [
        format!("run       {}", id(7)),
        "state     succeeded".into(),
        "input     s3://uploads/images/a.jpg?versionId=v1".into(),
        "cost      $0.0002 (60 vCPU-s, 60 GB-s)".into(),
        "attempts  2".into(),
        "attempt 1".into(),
        "  task        arn:aws:ecs:us-east-1:123456789012:task/jobs/task1".into(),
        "  durations   launch->start 45s, start->stop 1m00s".into(),
        "  exit codes  app=143".into(),
        "  class       spot_interruption".into(),
        "  reason      Your Spot Task was interrupted.".into(),
        "  logs        https://console.aws.amazon.com/cloudwatch/home#logsV2:task1".into(),
        "attempt 2".into(),
        "  durations   launch->start 45s, start->stop 2m10s".into(),
        "  exit codes  app=0".into(),
    ] {
        assert!(text.contains(&line), "no '{line}' in\n{text}");
    }

    let doc = json(&world.run(&["view", &id(7), "--json"]));
    assert_eq!(doc["run_id"], id(7).as_str());
    assert_eq!(doc["state"], "succeeded");
    assert_eq!(doc["attempts"][0]["class"], "spot_interruption");
    assert_eq!(doc["attempts"][0]["exit_codes"]["app"], 143);
    assert_eq!(doc["attempts"][1]["number"], 2);

    let missing = one_line_error(&world.run(&["view", &id(8)]));
    assert!(
        missing.contains(&format!("no run {} in table {}", id(8), world.table)),
        "{missing}"
    );
    let malformed = one_line_error(&world.run(&["view", "latest"]));
    assert!(malformed.contains("'latest': not a run id"), "{malformed}");
}

/// The run id the launcher gives `job`'s run for version `version` of `key` in `uploads`.
fn object_run_id(job: &str, key: &str, version: &str) -> String {
    let event = ObjectCreated {
        bucket: "uploads".into(),
        key: key.into(),
        size: 2048,
        etag: Some("e1".into()),
        version_id: Some(version.into()),
        sequencer: Some("0062E99A88DC407460".into()),
        event_time: Utc::now(),
    };
    token::run_id(&token::for_object(job, &event))
}

#[tokio::test]
async fn view_by_object_with_and_without_a_version() {
    let world = World::new("view-object").await;
    let key = "images/a b+c.jpg";
    let at: DateTime<Utc> = "2026-11-25T09:00:00Z".parse().unwrap();
    let v1 = run(
        &object_run_id("thumbnails", key, "v1"),
        "thumbnails",
        RunState::Succeeded,
        object(key, Some("v1")),
        at,
    );
    let v2 = run(
        &object_run_id("thumbnails", key, "v2"),
        "thumbnails",
        RunState::Running,
        object(key, Some("v2")),
        at + Duration::minutes(5),
    );
    let indexed = run(
        &object_run_id("index", key, "v2"),
        "index",
        RunState::Failed,
        object(key, Some("v2")),
        at + Duration::minutes(5),
    );
    for r in [&v1, &v2, &indexed] {
        world.put_run(r).await;
    }
    for (job, latest) in [("thumbnails", &v2), ("index", &indexed)] {
        let pointer = ObjectPointer {
            run_id: latest.run_id.clone(),
            event_time: latest.queued_at,
        };
        world
            .put(&keys::object_key(job, "uploads", key), pointer)
            .await;
    }

    let one = json(&world.run(&[
        "view",
        &format!("s3://uploads/{key}?versionId=v1"),
        "--json",
    ]));
    assert_eq!(ids(&one), [v1.run_id.as_str()], "only thumbnails ran v1");
    let text = succeeded(&world.run(&["view", &format!("s3://uploads/{key}?versionId=v1")]));
    assert!(
        text.contains("input     s3://uploads/images/a b+c.jpg?versionId=v1"),
        "{text}"
    );

    let latest = json(&world.run(&["view", &format!("s3://uploads/{key}"), "--json"]));
    assert_eq!(
        ids(&latest),
        [v2.run_id.as_str(), indexed.run_id.as_str()],
        "the latest run of each job"
    );
    let latest_text = succeeded(&world.run(&["view", &format!("s3://uploads/{key}")]));
    assert_eq!(
        latest_text.matches("\nattempts  ").count(),
        2,
        "{latest_text}"
    );

    let encoded = one_line_error(&world.run(&["view", "s3://uploads/images/a%20b%2Bc.jpg"]));
    assert!(
        encoded.contains(
            "no run for s3://uploads/images/a%20b%2Bc.jpg (jobs looked at: thumbnails, index)"
        ),
        "a URL-encoded key is another key: {encoded}"
    );
    let unknown_version =
        one_line_error(&world.run(&["view", &format!("s3://uploads/{key}?versionId=v9")]));
    assert!(unknown_version.contains("no run for"), "{unknown_version}");
    let no_trigger = one_line_error(&world.run(&["view", "s3://elsewhere/images/a.jpg"]));
    assert!(
        no_trigger.contains("no [[triggers.s3]] in the config takes it"),
        "{no_trigger}"
    );
}

#[tokio::test]
async fn view_by_schedule_tick() {
    let world = World::new("view-tick").await;
    let at: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().unwrap();
    let run_id = token::run_id(&token::for_tick("hourly-report", at));
    let r = run(
        &run_id,
        "report",
        RunState::Skipped,
        tick("hourly-report", at),
        at,
    );
    world.put_run(&r).await;

    let doc = json(&world.run(&["view", "hourly-report@2026-11-25T11:00:00+01:00", "--json"]));
    assert_eq!(doc["run_id"], run_id.as_str());
    assert_eq!(doc["state"], "skipped");
    let text = succeeded(&world.run(&["view", "hourly-report@2026-11-25T10:00:00Z"]));
    assert!(
        text.contains("input     hourly-report@2026-11-25T10:00:00Z"),
        "{text}"
    );

    let later = at + Duration::hours(1);
    let missing = one_line_error(&world.run(&[
        "view",
        &format!(
            "hourly-report@{}",
            later.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
    ]));
    assert!(
        missing.contains("no run of schedule hourly-report for 2026-11-25T11:00:00Z"),
        "{missing}"
    );
    let unknown = one_line_error(&world.run(&["view", "nightly@2026-11-25T10:00:00Z"]));
    assert!(
        unknown.contains("the config has no schedule named nightly"),
        "{unknown}"
    );
}

/// A task in moto's ECS (cluster `jobs`); returns its ARN.
async fn start_task(account: &Account) -> String {
    use aws_sdk_ecs::types::{ContainerDefinition, LaunchType};
    let ecs = aws_sdk_ecs::Client::new(&account.sdk());
    ecs.create_cluster()
        .cluster_name("jobs")
        .send()
        .await
        .unwrap();
    ecs.register_task_definition()
        .family("thumbnails")
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("busybox")
                .memory(512)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let output = ecs
        .run_task()
        .cluster("jobs")
        .task_definition("thumbnails")
        .launch_type(LaunchType::Fargate)
        .send()
        .await
        .unwrap();
    output.tasks()[0].task_arn().unwrap().to_string()
}

#[tokio::test]
async fn cancel_stops_the_task_and_records_who() {
    let world = World::new("cancel").await;
    let task_arn = start_task(&world.account).await;
    assert!(
        task_arn.contains(":task/jobs/"),
        "moto gives long ARNs: {task_arn}"
    );
    let now = Utc::now();
    let mut r = run(
        &id(9),
        "thumbnails",
        RunState::Running,
        object("images/a.jpg", None),
        now - Duration::minutes(3),
    );
    let mut running = attempt(1, now - Duration::minutes(2), None);
    running.task_arn = Some(task_arn.clone());
    r.attempts.push(running);
    world.put_run(&r).await;

    let doc = json(&world.run(&["cancel", &id(9), "--json"]));
    assert_eq!(doc["state"], "cancelled");
    assert_eq!(doc["cancelled_by"], world.account.user_arn.as_str());
    assert!(
        world.account.user_arn.contains(&world.account.id),
        "the caller is this test's user: {}",
        world.account.user_arn
    );

    let described = aws_sdk_ecs::Client::new(&world.account.sdk())
        .describe_tasks()
        .cluster("jobs")
        .tasks(&task_arn)
        .send()
        .await
        .unwrap();
    let task = &described.tasks()[0];
    assert_eq!(task.desired_status(), Some("STOPPED"));
    assert_eq!(
        task.stopped_reason(),
        Some(format!("jobrunner: cancelled by {}", world.account.user_arn).as_str())
    );

    let stored = world.load_run(&id(9)).await;
    assert_eq!(stored.state, RunState::Cancelled);
    assert_eq!(
        stored.cancelled_by.as_deref(),
        Some(world.account.user_arn.as_str())
    );

    let again = one_line_error(&world.run(&["cancel", &id(9)]));
    assert!(
        again.contains(&format!(
            "run {} already ended (cancelled): nothing to cancel",
            id(9)
        )),
        "{again}"
    );
    let unknown = one_line_error(&world.run(&["cancel", &id(10)]));
    assert!(
        unknown.contains(&format!("no run {} in table {}", id(10), world.table)),
        "{unknown}"
    );
}

#[tokio::test]
async fn cancel_a_waiting_run_stops_nothing() {
    let world = World::new("cancel-waiting").await;
    let mut r = run(
        &id(11),
        "index",
        RunState::Waiting,
        object("other/x.txt", None),
        Utc::now(),
    );
    r.reason = Some("job index is at its cap (2 running)".into());
    world.put_run(&r).await;

    let text = succeeded(&world.run(&["cancel", &id(11)]));
    assert_eq!(
        text.trim(),
        format!(
            "run {} (job index) cancelled; it had no task running",
            id(11)
        )
    );
    let stored = world.load_run(&id(11)).await;
    assert_eq!(stored.state, RunState::Cancelled);
    assert_eq!(
        stored.reason.as_deref(),
        Some(format!("cancelled by {}", world.account.user_arn).as_str())
    );

    let finished = run(
        &id(12),
        "index",
        RunState::Succeeded,
        object("other/y.txt", None),
        Utc::now(),
    );
    world.put_run(&finished).await;
    let refused = one_line_error(&world.run(&["cancel", &id(12)]));
    assert!(refused.contains("already ended (succeeded)"), "{refused}");
    assert_eq!(world.load_run(&id(12)).await.state, RunState::Succeeded);
}

#[test]
fn without_a_state_table_the_commands_say_so() {
    let config = std::env::temp_dir().join(format!(
        "jobrunner-cli-runs-{}-nostate.toml",
        std::process::id()
    ));
    let text = config_text("x");
    let without_state = &text[..text.find("[state]").unwrap()];
    std::fs::write(&config, without_state).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_jobrunner"))
        .args(["run", "list", "--config", config.to_str().unwrap()])
        .env_remove("JOBRUNNER_CONFIG_FILE")
        .output()
        .unwrap();
    let message = one_line_error(&output);
    assert!(
        message.contains("no [state] table: the run ledger lives in it"),
        "{message}"
    );
    let no_config = std::process::Command::new(env!("CARGO_BIN_EXE_jobrunner"))
        .args(["run", "list"])
        .env_remove("JOBRUNNER_CONFIG_FILE")
        .output()
        .unwrap();
    assert!(one_line_error(&no_config).contains("pass --config FILE or set JOBRUNNER_CONFIG_FILE"));
}
