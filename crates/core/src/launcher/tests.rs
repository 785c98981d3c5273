//! The launcher's decision path with a fake ECS port: batch semantics, bad input, the cap,
//! overlap and capacity fallback.

use std::sync::Mutex;

use jobrunner_testkit::{s3_event, sqs_batch};
use serde_json::{Value, json};

use super::*;
use crate::config::Format;
use crate::handled::Response;
use crate::job_env;
use crate::plan::RunTaskInput;
use crate::ports::{CallError, CallResult, DescribedTask, RunTaskAnswer, TaskFailure};

/// Answers RunTask by the object key (`throttle` → throttled, `nocap` → a capacity failure on
/// the first provider, `broken` → a permanent failure), and reports `running` tasks to every
/// ListTasks, each described as running the tick `running_tick`.
#[derive(Default)]
struct FakeEcs {
    running: usize,
    running_tick: String,
    calls: Mutex<Vec<String>>,
    launched: Mutex<Vec<RunTaskInput>>,
}

fn key_of(input: &RunTaskInput) -> String {
    input.overrides.container_overrides[0]
        .environment
        .iter()
        .find(|kv| kv.name == job_env::KEY)
        .map(|kv| kv.value.clone())
        .unwrap_or_default()
}

impl Tasks for FakeEcs {
    async fn list_tasks(&self, cluster: &str, started_by: &str) -> CallResult<Vec<String>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("ListTasks {cluster} {started_by}"));
        Ok((0..self.running).map(|i| format!("arn:task/{i}")).collect())
    }

    async fn describe_tasks(
        &self,
        _cluster: &str,
        task_arns: &[String],
    ) -> CallResult<Vec<DescribedTask>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("DescribeTasks {}", task_arns.len()));
        Ok(task_arns
            .iter()
            .map(|arn| DescribedTask {
                task_arn: arn.clone(),
                environment: vec![(job_env::SCHEDULED_TIME.into(), self.running_tick.clone())],
            })
            .collect())
    }

    async fn run_task(&self, input: &RunTaskInput) -> CallResult<RunTaskAnswer> {
        let provider = input
            .capacity_provider_strategy
            .first()
            .map(|s| s.capacity_provider.clone())
            .unwrap_or_default();
        self.calls
            .lock()
            .unwrap()
            .push(format!("RunTask {provider} {}", input.client_token));
        let key = key_of(input);
        if key.contains("throttle") {
            return Err(CallError::Throttled {
                operation: "RunTask",
                message: "Rate exceeded".into(),
            });
        }
        let failure = |reason: &str| RunTaskAnswer::Response {
            task_arns: vec![],
            failures: vec![TaskFailure {
                reason: reason.into(),
                detail: None,
            }],
        };
        if key.contains("broken") {
            return Ok(failure("MISSING"));
        }
        if key.contains("nocap") && (provider == "FARGATE_SPOT" || key.contains("nocapall")) {
            return Ok(failure("Capacity is unavailable at this time"));
        }
        self.launched.lock().unwrap().push(input.clone());
        Ok(RunTaskAnswer::Response {
            task_arns: vec![format!("arn:task/{key}")],
            failures: vec![],
        })
    }

    async fn stop_task(&self, _cluster: &str, task_arn: &str, reason: &str) -> CallResult<()> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("StopTask {task_arn} {reason}"));
        Ok(())
    }
}

const CONFIG: &str = r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]

[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"

[jobs.capped]
task_definition = "thumbnails"
container = "app"
max_running = 2
capacity = ["FARGATE_SPOT", "FARGATE"]

[jobs.report]
task_definition = "report"
container = "app"

[[triggers.s3]]
job = "thumbnails"
bucket = "uploads"
prefix = "images/"

[[triggers.s3]]
job = "capped"
bucket = "uploads"
prefix = "capped/"

[[triggers.schedule]]
name = "nightly"
job = "report"
expression = "rate(1 day)"
overlap = "forbid"

[[triggers.schedule]]
name = "refresh"
job = "report"
expression = "rate(1 hour)"
overlap = "replace"
"#;

fn config() -> Config {
    Config::parse(CONFIG, Format::Toml).unwrap()
}

fn event(key: &str) -> Value {
    s3_event("uploads", key, 3)
}

fn tick(schedule: &str) -> Value {
    json!({"source": "jobrunner.scheduler", "schedule": schedule, "scheduled_time": "2026-11-22T06:00:00Z"})
}

async fn run(config: &Config, ecs: &FakeEcs, payload: &Value) -> Result<Value, Error> {
    let handled = handle(config, ecs, payload).await?;
    Ok(serde_json::to_value(handled.into_response()?).unwrap())
}

fn failed_ids(response: &Value) -> Vec<String> {
    jobrunner_testkit::failed_ids(response)
}

#[tokio::test]
async fn a_direct_event_launches_and_summarizes() {
    let ecs = FakeEcs::default();
    let summary = run(&config(), &ecs, &event("images/a.jpg")).await.unwrap();
    assert_eq!(
        summary,
        json!({"launched": 1, "already_launched": 0, "skipped": 0})
    );
    let launched = ecs.launched.lock().unwrap();
    assert_eq!(launched[0].task_definition, "thumbnails");
    assert_eq!(launched[0].started_by, "jobrunner/thumbnails");
}

#[tokio::test]
async fn an_unmatched_event_is_skipped_with_its_reason() {
    let ecs = FakeEcs::default();
    let handled = handle(&config(), &ecs, &event("docs/a.pdf")).await.unwrap();
    assert_eq!(handled.summary.skipped, 1);
    assert!(
        handled.skipped[0].contains("docs/a.pdf"),
        "{:?}",
        handled.skipped
    );
    assert!(ecs.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn one_malformed_message_fails_only_itself() {
    let ecs = FakeEcs::default();
    let bodies = [
        event("images/a.jpg").to_string(),
        "not json".to_string(),
        event("images/b.jpg").to_string(),
    ];
    let response = run(&config(), &ecs, &sqs_batch(&bodies)).await.unwrap();
    assert_eq!(failed_ids(&response), ["m1"]);
    assert_eq!(ecs.launched.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn retryable_failures_go_back_to_the_queue() {
    let ecs = FakeEcs::default();
    let bodies = [
        event("images/throttle.jpg").to_string(),
        event("images/ok.jpg").to_string(),
    ];
    let response = run(&config(), &ecs, &sqs_batch(&bodies)).await.unwrap();
    assert_eq!(failed_ids(&response), ["m0"]);
}

#[tokio::test]
async fn a_direct_failure_is_an_error_for_lambda_to_retry() {
    let err = run(
        &config(),
        &FakeEcs::default(),
        &event("images/throttle.jpg"),
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable());
    assert!(matches!(err, Error::Call(CallError::Throttled { .. })));
}

#[tokio::test]
async fn bad_direct_input_is_a_permanent_error() {
    let err = run(&config(), &FakeEcs::default(), &json!({"hello": 1}))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("unsupported event"), "{err}");
}

#[tokio::test]
async fn task_state_changes_are_not_the_launchers() {
    let event = json!({"detail-type": "ECS Task State Change", "source": "aws.ecs", "time": "2026-11-22T05:00:00Z",
        "detail": {"taskArn": "arn:task/1", "lastStatus": "STOPPED"}});
    let err = run(&config(), &FakeEcs::default(), &event)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WrongFunction { .. }), "{err}");
}

#[tokio::test]
async fn at_the_cap_nothing_is_launched_and_the_event_waits() {
    let ecs = FakeEcs {
        running: 2,
        ..FakeEcs::default()
    };
    let err = run(&config(), &ecs, &event("capped/a.jpg"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::AtCap {
            job: "capped".into(),
            running: 2,
            max_running: 2
        }
    );
    assert!(err.is_retryable());
    assert_eq!(
        *ecs.calls.lock().unwrap(),
        ["ListTasks jobs jobrunner/capped"]
    );
}

#[tokio::test]
async fn under_the_cap_the_launch_goes_ahead() {
    let ecs = FakeEcs {
        running: 1,
        ..FakeEcs::default()
    };
    run(&config(), &ecs, &event("capped/a.jpg")).await.unwrap();
    assert_eq!(ecs.launched.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_capacity_failure_falls_back_to_the_next_provider_with_its_own_token() {
    let ecs = FakeEcs::default();
    let handled = handle(&config(), &ecs, &event("capped/nocap.jpg"))
        .await
        .unwrap();
    assert_eq!(handled.summary.launched, 1);
    let calls = ecs.calls.lock().unwrap();
    let runs: Vec<&String> = calls.iter().filter(|c| c.starts_with("RunTask")).collect();
    assert_eq!(runs.len(), 2);
    assert!(runs[0].starts_with("RunTask FARGATE_SPOT "));
    assert!(runs[1].starts_with("RunTask FARGATE "));
    assert_ne!(runs[0].rsplit(' ').next(), runs[1].rsplit(' ').next());
}

#[tokio::test]
async fn no_capacity_anywhere_is_retryable_and_a_permanent_failure_is_not() {
    let err = run(
        &config(),
        &FakeEcs::default(),
        &event("capped/nocapall.jpg"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::NoCapacity { .. }), "{err}");
    assert!(err.is_retryable());
    let err = run(&config(), &FakeEcs::default(), &event("images/broken.jpg"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::LaunchFailed {
            job: "thumbnails".into(),
            reason: "MISSING".into()
        }
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn forbid_skips_while_a_previous_run_is_going() {
    let ecs = FakeEcs {
        running: 1,
        running_tick: "2026-11-22T05:00:00Z".into(),
        ..FakeEcs::default()
    };
    let handled = handle(&config(), &ecs, &tick("nightly")).await.unwrap();
    assert_eq!(handled.summary.skipped, 1);
    assert!(handled.skipped[0].contains("overlap = forbid"));
    assert!(ecs.launched.lock().unwrap().is_empty());
}

#[tokio::test]
async fn replace_stops_the_previous_run_then_launches() {
    let ecs = FakeEcs {
        running: 1,
        running_tick: "2026-11-22T05:00:00Z".into(),
        ..FakeEcs::default()
    };
    let handled = handle(&config(), &ecs, &tick("refresh")).await.unwrap();
    assert_eq!(handled.summary.launched, 1);
    let calls = ecs.calls.lock().unwrap();
    assert_eq!(calls[0], "ListTasks jobs jobrunner/report/refresh");
    assert_eq!(calls[1], "DescribeTasks 1");
    assert_eq!(
        calls[2],
        "StopTask arn:task/0 jobrunner: replaced by the run scheduled for 2026-11-22T06:00:00Z"
    );
    assert!(calls[3].starts_with("RunTask"));
}

#[tokio::test]
async fn a_redelivered_tick_finds_its_own_task_and_launches_nothing() {
    let ecs = FakeEcs {
        running: 1,
        running_tick: "2026-11-22T06:00:00Z".into(),
        ..FakeEcs::default()
    };
    let handled = handle(&config(), &ecs, &tick("refresh")).await.unwrap();
    assert_eq!(handled.summary.already_launched, 1);
    assert!(
        !ecs.calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.starts_with("StopTask") || c.starts_with("RunTask"))
    );
}

/// Malformed and hostile events: each fails on its own with a one-line reason; none panics
/// and none launches.
#[tokio::test]
async fn bad_input_table_never_launches() {
    let object = |object: Value| -> String {
        json!({"version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3", "account": "1",
            "time": "2026-11-22T05:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {"bucket": {"name": "uploads"}, "object": object}})
        .to_string()
    };
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let cases: Vec<(&str, String)> = vec![
        ("not JSON", "hello".into()),
        ("truncated", event("images/a.jpg").to_string()[..80].to_string()),
        ("empty body", String::new()),
        ("JSON but not an object", "[1,2,3]".into()),
        ("wrong type: size is a string", object(json!({"key": "images/a.jpg", "size": "big", "sequencer": "1"}))),
        ("wrong type: key is a number", object(json!({"key": 7, "size": 1}))),
        ("missing object", json!({"detail-type": "Object Created", "source": "aws.s3", "time": "2026-11-22T05:00:00Z", "detail": {"bucket": {"name": "uploads"}}}).to_string()),
        ("missing time", json!({"detail-type": "Object Created", "source": "aws.s3", "detail": {}}).to_string()),
        ("unknown detail-type", json!({"detail-type": "Object Exploded", "source": "custom", "time": "2026-11-22T05:00:00Z", "detail": {}}).to_string()),
        ("negative size", object(json!({"key": "images/a.jpg", "size": -1}))),
        ("size beyond u64", object(json!({"key": "images/a.jpg", "size": 1e30}))),
        ("1025-byte key", object(json!({"key": format!("images/{}", "k".repeat(1018)), "size": 1}))),
        ("control characters in key", object(json!({"key": "images/a\u{0}b.jpg", "size": 1}))),
        ("newline in key", object(json!({"key": "images/a\nb.jpg", "size": 1}))),
        ("dot-dot segment", object(json!({"key": "images/../../etc/passwd", "size": 1}))),
        ("deeply nested JSON", deep),
        ("scheduler input without a time", json!({"source": "jobrunner.scheduler", "schedule": "x"}).to_string()),
    ];
    let ecs = FakeEcs::default();
    let bodies: Vec<String> = cases.iter().map(|(_, body)| body.clone()).collect();
    let response = run(&config(), &ecs, &sqs_batch(&bodies)).await.unwrap();
    let failed = failed_ids(&response);
    for (i, (name, _)) in cases.iter().enumerate() {
        assert!(
            failed.contains(&format!("m{i}")),
            "{name}: should fail back to the queue (DLQ after retries)"
        );
    }
    assert!(ecs.launched.lock().unwrap().is_empty(), "nothing launched");

    for (name, body) in &cases {
        let Ok(value) = serde_json::from_str::<Value>(body) else {
            continue;
        };
        match run(&config(), &ecs, &value).await {
            Err(e) => {
                assert!(!e.to_string().contains('\n'), "{name}: one line: {e}");
                assert!(!e.is_retryable(), "{name}: bad input is permanent");
            }
            Ok(ok) => panic!("{name}: accepted: {ok}"),
        }
    }
    assert!(ecs.launched.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_full_length_key_is_still_a_valid_object() {
    let ecs = FakeEcs::default();
    let key = format!("images/{}", "k".repeat(1017));
    assert_eq!(key.len(), 1024);
    run(&config(), &ecs, &event(&key)).await.unwrap();
    assert_eq!(ecs.launched.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn keys_that_overflow_the_overrides_limit_are_refused() {
    let mut config = config();
    let job = config.jobs.get_mut("thumbnails").unwrap();
    for i in 0..8 {
        job.environment.insert(format!("COPY_{i}"), "{key}".into());
    }
    let ecs = FakeEcs::default();
    let err = run(
        &config,
        &ecs,
        &event(&format!("images/{}", "k".repeat(1000))),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("8192"), "{err}");
    assert!(!err.is_retryable());
    assert!(ecs.launched.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_response_shape_is_what_lambda_expects() {
    let ecs = FakeEcs::default();
    let handled = handle(&config(), &ecs, &sqs_batch(&["x"])).await.unwrap();
    match handled.into_response().unwrap() {
        Response::Batch {
            batch_item_failures,
        } => assert_eq!(batch_item_failures[0].item_identifier, "m0"),
        Response::Direct(summary) => panic!("direct: {summary:?}"),
    }
}
