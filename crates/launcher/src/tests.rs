//! The handler's batch semantics, with a fake ECS port.

use std::sync::Mutex;

use jobrunner_aws::ecs::{Launch, LaunchOutcome};
use jobrunner_core::config::Format;
use jobrunner_core::plan::LaunchPlan;
use serde_json::{Value, json};

use super::*;

/// Records each plan; answers by key: a key containing "throttle" is throttled.
#[derive(Default)]
struct FakeEcs {
    launched: Mutex<Vec<LaunchPlan>>,
}

impl Launch for FakeEcs {
    async fn launch(&self, plan: &LaunchPlan) -> Result<LaunchOutcome, jobrunner_aws::Error> {
        let key = plan.attempts[0].overrides.container_overrides[0]
            .environment
            .iter()
            .find(|kv| kv.name == "JOB_KEY")
            .map(|kv| kv.value.clone())
            .unwrap_or_default();
        if key.contains("throttle") {
            return Err(jobrunner_aws::Error::Throttled {
                operation: "RunTask",
                message: "Rate exceeded".into(),
            });
        }
        self.launched.lock().unwrap().push(plan.clone());
        Ok(LaunchOutcome::Started {
            task_arns: vec![format!("arn:task/{key}")],
            capacity_provider: None,
        })
    }
}

fn config() -> Config {
    Config::parse(
        r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]
[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
[[triggers.s3]]
job = "thumbnails"
bucket = "uploads"
prefix = "images/"
"#,
        Format::Toml,
    )
    .unwrap()
}

fn s3_event(key: &str) -> Value {
    json!({"version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3", "account": "1",
        "time": "2026-11-22T05:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"bucket": {"name": "uploads"}, "object": {"key": key, "size": 3, "sequencer": "0A"}}})
}

fn batch(bodies: &[String]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| json!({"messageId": format!("m{i}"), "body": body, "eventSource": "aws:sqs"}))
        .collect();
    json!({ "Records": records })
}

fn failed_ids(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn direct_event_launches_and_summarizes() {
    let ecs = FakeEcs::default();
    let summary = handle(&config(), &ecs, &s3_event("images/a.jpg"))
        .await
        .unwrap();
    assert_eq!(
        summary,
        json!({"launched": 1, "already_launched": 0, "skipped": 0})
    );
    assert_eq!(ecs.launched.lock().unwrap()[0].job, "thumbnails");
}

#[tokio::test]
async fn unmatched_event_is_skipped_not_failed() {
    let ecs = FakeEcs::default();
    let summary = handle(&config(), &ecs, &s3_event("docs/a.pdf"))
        .await
        .unwrap();
    assert_eq!(summary["skipped"], 1);
    assert!(ecs.launched.lock().unwrap().is_empty());
}

#[tokio::test]
async fn one_malformed_message_fails_only_itself() {
    let ecs = FakeEcs::default();
    let bodies = [
        s3_event("images/a.jpg").to_string(),
        "not json".to_string(),
        s3_event("images/b.jpg").to_string(),
    ];
    let response = handle(&config(), &ecs, &batch(&bodies)).await.unwrap();
    assert_eq!(failed_ids(&response), ["m1"]);
    assert_eq!(ecs.launched.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn retryable_failures_go_back_to_the_queue() {
    let ecs = FakeEcs::default();
    let bodies = [
        s3_event("images/throttle.jpg").to_string(),
        s3_event("images/ok.jpg").to_string(),
    ];
    let response = handle(&config(), &ecs, &batch(&bodies)).await.unwrap();
    assert_eq!(failed_ids(&response), ["m0"]);
}

#[tokio::test]
async fn direct_failure_is_an_error_for_lambda_to_retry() {
    let err = handle(
        &config(),
        &FakeEcs::default(),
        &s3_event("images/throttle.jpg"),
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable());
    let diagnostic: lambda_runtime::Diagnostic = err.into();
    assert_eq!(diagnostic.error_type, "jobrunner.Retryable");
}

#[tokio::test]
async fn bad_direct_input_is_a_permanent_error() {
    let err = handle(&config(), &FakeEcs::default(), &json!({"hello": 1}))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("unsupported event"), "{err}");
}

#[tokio::test]
async fn task_state_changes_are_not_the_launchers() {
    let event = json!({"detail-type": "ECS Task State Change", "source": "aws.ecs", "time": "2026-11-22T05:00:00Z",
        "detail": {"taskArn": "arn:task/1", "lastStatus": "STOPPED"}});
    let err = handle(&config(), &FakeEcs::default(), &event)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WrongFunction(_)));
}

/// Malformed and hostile events: each fails (or is skipped) on its own, with a one-line reason;
/// none panics and none launches.
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
        ("truncated", s3_event("images/a.jpg").to_string()[..80].to_string()),
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
    let response = handle(&config(), &ecs, &batch(&bodies)).await.unwrap();
    let failed = failed_ids(&response);
    for (i, (name, _)) in cases.iter().enumerate() {
        assert!(
            failed.contains(&format!("m{i}")),
            "{name}: should fail back to the queue (DLQ after retries)"
        );
    }
    assert!(ecs.launched.lock().unwrap().is_empty(), "nothing launched");

    // Direct deliveries of the same inputs: a one-line error each.
    for (name, body) in &cases {
        let Ok(value) = serde_json::from_str::<Value>(body) else {
            continue;
        };
        if let Err(e) = handle(&config(), &ecs, &value).await {
            assert!(!e.to_string().contains('\n'), "{name}: one line: {e}");
            assert!(!e.is_retryable(), "{name}: bad input is permanent");
        } else {
            panic!("{name}: accepted");
        }
    }
    assert!(ecs.launched.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_full_length_key_is_still_a_valid_object() {
    let ecs = FakeEcs::default();
    let key = format!("images/{}", "k".repeat(1017));
    assert_eq!(key.len(), 1024);
    handle(&config(), &ecs, &s3_event(&key)).await.unwrap();
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
    let err = handle(
        &config,
        &ecs,
        &s3_event(&format!("images/{}", "k".repeat(1000))),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("8192"), "{err}");
    assert!(!err.is_retryable());
    assert!(ecs.launched.lock().unwrap().is_empty());
}
