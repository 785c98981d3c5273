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
            return Err(jobrunner_aws::Error::Throttled { operation: "RunTask", message: "Rate exceeded".into() });
        }
        self.launched.lock().unwrap().push(plan.clone());
        Ok(LaunchOutcome::Started { task_arns: vec![format!("arn:task/{key}")], capacity_provider: None })
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
    response["batchItemFailures"].as_array().unwrap().iter().map(|f| f["itemIdentifier"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn direct_event_launches_and_summarizes() {
    let ecs = FakeEcs::default();
    let summary = handle(&config(), &ecs, &s3_event("images/a.jpg")).await.unwrap();
    assert_eq!(summary, json!({"launched": 1, "already_launched": 0, "skipped": 0}));
    assert_eq!(ecs.launched.lock().unwrap()[0].job, "thumbnails");
}

#[tokio::test]
async fn unmatched_event_is_skipped_not_failed() {
    let ecs = FakeEcs::default();
    let summary = handle(&config(), &ecs, &s3_event("docs/a.pdf")).await.unwrap();
    assert_eq!(summary["skipped"], 1);
    assert!(ecs.launched.lock().unwrap().is_empty());
}

#[tokio::test]
async fn one_malformed_message_fails_only_itself() {
    let ecs = FakeEcs::default();
    let bodies = [s3_event("images/a.jpg").to_string(), "not json".to_string(), s3_event("images/b.jpg").to_string()];
    let response = handle(&config(), &ecs, &batch(&bodies)).await.unwrap();
    assert_eq!(failed_ids(&response), ["m1"]);
    assert_eq!(ecs.launched.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn retryable_failures_go_back_to_the_queue() {
    let ecs = FakeEcs::default();
    let bodies = [s3_event("images/throttle.jpg").to_string(), s3_event("images/ok.jpg").to_string()];
    let response = handle(&config(), &ecs, &batch(&bodies)).await.unwrap();
    assert_eq!(failed_ids(&response), ["m0"]);
}

#[tokio::test]
async fn direct_failure_is_an_error_for_lambda_to_retry() {
    let err = handle(&config(), &FakeEcs::default(), &s3_event("images/throttle.jpg")).await.unwrap_err();
    assert!(err.is_retryable());
    let diagnostic: lambda_runtime::Diagnostic = err.into();
    assert_eq!(diagnostic.error_type, "jobrunner.Retryable");
}

#[tokio::test]
async fn bad_direct_input_is_a_permanent_error() {
    let err = handle(&config(), &FakeEcs::default(), &json!({"hello": 1})).await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("unsupported event"), "{err}");
}

#[tokio::test]
async fn task_state_changes_are_not_the_launchers() {
    let event = json!({"detail-type": "ECS Task State Change", "source": "aws.ecs", "time": "2026-11-22T05:00:00Z",
        "detail": {"taskArn": "arn:task/1", "lastStatus": "STOPPED"}});
    let err = handle(&config(), &FakeEcs::default(), &event).await.unwrap_err();
    assert!(matches!(err, Error::WrongFunction(_)));
}
