//! Stop events through the tracker's whole decision (ledger, time limits, retry planning,
//! alerts) in the dry run, with a config that retries: exit codes, stop codes, reasons,
//! capacity, sizes and the task's own `JOB_*` variables come from the fuzzer. At most one
//! retry per stop, its attempt number within what a run can reach (attempts plus
//! interruptions), its RunTask within ECS's limits; alerts fit SNS.
#![no_main]

use std::sync::LazyLock;

use jobrunner_core::Config;
use jobrunner_core::config::Format;
use jobrunner_core::dryrun::{Function, World, dry_run_now};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const CONFIG: &str = r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]
capacity = ["FARGATE_SPOT", "FARGATE"]

[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
cpu = 512
memory = 1024
max_runtime = "10m"
[jobs.thumbnails.retry]
attempts = 3
backoff = "30s"
grow_on_oom = true
exit_codes = [1, 75]

[jobs.tiered]
task_definition = "tiered"
container = "app"
[[jobs.tiered.size_tiers]]
max_bytes = 1000
cpu = 256
memory = 512
[[jobs.tiered.size_tiers]]
cpu = 1024
memory = 4096
[jobs.tiered.retry]
attempts = 5
grow_on_oom = true
on_interruption = "same"

[[triggers.s3]]
job = "thumbnails"
bucket = "uploads"

[alerts]
topic_arn = "arn:aws:sns:us-east-1:123456789012:alerts"

[state]
table = "state"
[launcher]
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/launcher"
"#;

static CONFIG_PARSED: LazyLock<Config> =
    LazyLock::new(|| Config::parse(CONFIG, Format::Toml).expect("the target's config"));
static BASE: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../events/ecs-task-stopped-oom.json")).expect("sample")
});

const STOP_CODES: [&str; 7] = [
    "EssentialContainerExited",
    "TaskFailedToStart",
    "SpotInterruption",
    "UserInitiated",
    "ServiceSchedulerInitiated",
    "TerminationNotice",
    "",
];
const STARTED_BY: [&str; 5] = [
    "jobrunner/thumbnails",
    "jobrunner/tiered",
    "jobrunner/retry/tiered",
    "jobrunner/worker/orders",
    "other",
];

#[derive(Debug, Arbitrary)]
struct Stop {
    exit_code: Option<i32>,
    stop_code: u8,
    stopped_reason: String,
    container_reason: String,
    spot: bool,
    started_by: u8,
    cpu: u16,
    memory: u32,
    version: u8,
    /// `JOB_*` variables of the task as the fuzzer sets them (name index, value).
    env: Vec<(u8, String)>,
    running_for_seconds: u32,
}

const ENV: [&str; 5] = ["JOB_RUN_ID", "JOB_ATTEMPT", "JOB_INTERRUPTIONS", "JOB_SIZE", "JOB_KEY"];

fn event(stop: &Stop) -> Value {
    let mut event = BASE.clone();
    let stopped = 1_790_000_000 + i64::from(stop.running_for_seconds);
    let at = |secs: i64| chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default().to_rfc3339();
    event["time"] = json!(at(stopped));
    let detail = &mut event["detail"];
    detail["stopCode"] = json!(STOP_CODES[usize::from(stop.stop_code) % STOP_CODES.len()]);
    detail["stoppedReason"] = json!(stop.stopped_reason);
    detail["capacityProviderName"] = json!(if stop.spot { "FARGATE_SPOT" } else { "FARGATE" });
    detail["startedBy"] = json!(STARTED_BY[usize::from(stop.started_by) % STARTED_BY.len()]);
    detail["cpu"] = json!(stop.cpu.to_string());
    detail["memory"] = json!(stop.memory.to_string());
    detail["version"] = json!(stop.version);
    detail["startedAt"] = json!(at(1_790_000_000));
    detail["stoppedAt"] = json!(at(stopped));
    let container = &mut detail["containers"][0];
    container["exitCode"] = json!(stop.exit_code);
    container["reason"] = json!(stop.container_reason);
    let env = &mut detail["overrides"]["containerOverrides"][0]["environment"];
    for (name, value) in &stop.env {
        if let Some(list) = env.as_array_mut() {
            list.push(json!({"name": ENV[usize::from(*name) % ENV.len()], "value": value}));
        }
    }
    event
}

fuzz_target!(|stop: Stop| {
    let payload = event(&stop);
    let now = chrono::DateTime::from_timestamp(1_790_000_000 + i64::from(stop.running_for_seconds) + 5, 0).unwrap_or_default();
    let world = World::for_config(&CONFIG_PARSED);
    let Ok(dry_run) = dry_run_now(&CONFIG_PARSED, Function::Tracker, &payload, now, world) else { return };
    assert!(dry_run.retries.len() <= 1, "one stop, {} retries", dry_run.retries.len());
    for action in &dry_run.actions {
        if action.operation == "Publish" {
            assert!(action.input.to_string().len() <= 300_000, "a Publish over SNS's limit");
        }
    }
    for retry in &dry_run.retries {
        for action in retry.actions.iter().filter(|a| a.operation == "RunTask") {
            let token = action.input["clientToken"].as_str().unwrap_or("");
            assert!(token.len() <= 64 && token.bytes().all(|b| (33..=126).contains(&b)), "bad token {token:?}");
            assert!(action.input["overrides"].to_string().chars().count() <= 8192, "overrides too long");
            let attempt = action.input["overrides"]["containerOverrides"][0]["environment"]
                .as_array()
                .and_then(|env| env.iter().find(|v| v["name"] == "JOB_ATTEMPT"))
                .and_then(|v| v["value"].as_str())
                .and_then(|v| v.parse::<u32>().ok());
            // The most any run here can reach: tiered's 5 attempts plus 5 interruptions.
            assert!(attempt.is_some_and(|n| (2..=10).contains(&n)), "a retry's attempt {attempt:?}");
        }
    }
});
