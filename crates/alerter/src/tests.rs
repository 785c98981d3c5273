//! The handler's batch semantics, with fake ports.

use std::collections::BTreeSet;
use std::sync::Mutex;

use jobrunner_core::alert::{AwsLogs, ContainerDefinitionInfo};
use jobrunner_core::config::Format;
use serde_json::{Value, json};

use super::*;

/// Records publishes; fails those whose subject contains `fail_subject`.
#[derive(Default)]
struct FakePorts {
    published: Mutex<Vec<Publish>>,
    lookups: Mutex<Vec<String>>,
    alerted: Mutex<BTreeSet<String>>,
    fail_subject: Option<&'static str>,
    fail_lookups: bool,
    fail_state: bool,
}

impl AlertPorts for FakePorts {
    async fn task_definition(&self, arn: &str) -> Result<TaskDefinitionInfo, jobrunner_aws::Error> {
        self.lookups.lock().unwrap().push(arn.to_owned());
        if self.fail_lookups {
            return Err(jobrunner_aws::Error::Rejected {
                operation: "DescribeTaskDefinition",
                message: "AccessDeniedException: no".into(),
            });
        }
        Ok(TaskDefinitionInfo {
            containers: vec![ContainerDefinitionInfo {
                name: "app".into(),
                essential: true,
                awslogs: Some(AwsLogs {
                    group: "/ecs/thumbnails".into(),
                    region: None,
                    stream_prefix: Some("ecs".into()),
                }),
            }],
        })
    }

    async fn publish(&self, message: &Publish) -> Result<String, jobrunner_aws::Error> {
        if self
            .fail_subject
            .is_some_and(|s| message.subject.contains(s))
        {
            return Err(jobrunner_aws::Error::Throttled {
                operation: "Publish",
                message: "Rate exceeded".into(),
            });
        }
        let mut published = self.published.lock().unwrap();
        published.push(message.clone());
        Ok(format!("msg-{}", published.len()))
    }

    async fn already_alerted(&self, key: &str) -> Result<bool, jobrunner_aws::Error> {
        if self.fail_state {
            return Err(jobrunner_aws::Error::Transient {
                operation: "GetItem",
                message: "timeout".into(),
            });
        }
        Ok(self.alerted.lock().unwrap().contains(key))
    }

    async fn record_alerted(
        &self,
        key: &str,
        _class: Class,
        _now: DateTime<Utc>,
    ) -> Result<(), jobrunner_aws::Error> {
        self.alerted.lock().unwrap().insert(key.to_owned());
        Ok(())
    }
}

fn config() -> Config {
    Config::parse(
        "[alerts]\ntopic_arn = \"arn:aws:sns:us-east-1:123456789012:alerts\"\n",
        Format::Toml,
    )
    .unwrap()
}

fn sample(name: &str) -> Value {
    let path = format!(
        "{}/../../events/ecs-task-stopped-{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .unwrap()
}

fn batch(bodies: &[(&str, String)]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .map(|(id, body)| json!({"messageId": id, "receiptHandle": "rh", "body": body, "eventSource": "aws:sqs", "awsRegion": "us-east-1"}))
        .collect();
    json!({ "Records": records })
}

fn now() -> DateTime<Utc> {
    "2024-05-01T10:05:00Z".parse().unwrap()
}

fn failures(response: Response) -> Vec<String> {
    match response {
        Response::Batch(batch) => batch
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect(),
        Response::Direct(summary) => panic!("expected a batch response, got {summary:?}"),
    }
}

#[tokio::test]
async fn a_direct_stop_is_published_with_log_links() {
    let ports = FakePorts::default();
    let response = handle(&config(), &ports, &sample("oom"), now())
        .await
        .unwrap();
    assert_eq!(
        response,
        Response::Direct(Summary {
            published: 1,
            alerted_tasks: 1,
            ..Summary::default()
        })
    );
    let published = ports.published.lock().unwrap();
    assert_eq!(published[0].subject, "[jobrunner] OOM thumbnails exit 137");
    assert!(
        published[0]
            .body("email")
            .unwrap()
            .contains("Logs:        app: https://")
    );
    assert_eq!(
        ports.lookups.lock().unwrap().as_slice(),
        ["arn:aws:ecs:us-east-1:123456789012:task-definition/thumbnails:7"]
    );
    assert_eq!(serde_json::to_value(&response).unwrap()["published"], 1);
}

#[tokio::test]
async fn normal_stops_are_quiet_without_lookups() {
    let ports = FakePorts::default();
    for name in ["succeeded", "scaled-in", "user-stopped"] {
        let response = handle(&config(), &ports, &sample(name), now())
            .await
            .unwrap();
        assert_eq!(
            response,
            Response::Direct(Summary {
                quiet: 1,
                ..Summary::default()
            }),
            "{name}"
        );
    }
    assert!(ports.published.lock().unwrap().is_empty());
    assert!(ports.lookups.lock().unwrap().is_empty());
}

#[tokio::test]
async fn other_states_are_ignored() {
    let mut event = sample("oom");
    event["detail"]["lastStatus"] = json!("RUNNING");
    let ports = FakePorts::default();
    assert_eq!(
        handle(&config(), &ports, &event, now()).await.unwrap(),
        Response::Direct(Summary::default())
    );
}

#[tokio::test]
async fn events_for_other_functions_fail() {
    let s3 = json!({"version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3", "account": "1",
        "time": "2024-05-01T10:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"bucket": {"name": "uploads"}, "object": {"key": "a.jpg", "size": 3}}});
    let err = handle(&config(), &FakePorts::default(), &s3, now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::WrongFunction(_)) && !err.is_retryable(),
        "{err}"
    );
}

#[tokio::test]
async fn a_direct_publish_failure_fails_the_invocation() {
    let ports = FakePorts {
        fail_subject: Some("OOM"),
        ..FakePorts::default()
    };
    let err = handle(&config(), &ports, &sample("oom"), now())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn the_sample_batch_becomes_a_digest_and_a_single_alert() {
    let ports = FakePorts::default();
    let payload = sample("sqs-batch");
    let response = handle(&config(), &ports, &payload, now()).await.unwrap();
    assert!(failures(response).is_empty());
    let published = ports.published.lock().unwrap();
    let subjects: Vec<&str> = published.iter().map(|p| p.subject.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "[jobrunner] OOM thumbnails: 3 tasks, exit 137",
            "[jobrunner] FAILED thumbnails exit 1 (app)"
        ]
    );
    assert_eq!(
        ports.lookups.lock().unwrap().len(),
        4,
        "one lookup per distinct task (the adapter caches)"
    );
}

#[tokio::test]
async fn malformed_and_unpublished_messages_are_reported() {
    let oom = sample("oom").to_string();
    let failed = sample("non-zero-exit").to_string();
    let payload = batch(&[
        ("m1", oom.clone()),
        ("m2", "not json".into()),
        ("m3", failed.clone()),
        ("m4", failed),
        ("m5", json!({"detail-type": "ECS Task State Change", "source": "aws.ecs", "time": "2024-05-01T10:00:00Z", "detail": {"lastStatus": "STOPPED"}}).to_string()),
    ]);
    let ports = FakePorts {
        fail_subject: Some("FAILED"),
        ..FakePorts::default()
    };
    let response = handle(&config(), &ports, &payload, now()).await.unwrap();
    assert_eq!(
        failures(response),
        ["m2", "m3", "m4", "m5"],
        "the malformed, and both deliveries of the unpublished alert"
    );
    assert_eq!(ports.published.lock().unwrap().len(), 1);
    assert_eq!(
        ports.alerted.lock().unwrap().len(),
        1,
        "only the published alert is recorded"
    );
}

#[tokio::test]
async fn a_later_invocation_skips_what_was_alerted() {
    let ports = FakePorts::default();
    handle(&config(), &ports, &sample("oom"), now())
        .await
        .unwrap();
    let again = handle(
        &config(),
        &ports,
        &batch(&[("m1", sample("oom").to_string())]),
        now(),
    )
    .await
    .unwrap();
    assert!(failures(again).is_empty());
    assert_eq!(ports.published.lock().unwrap().len(), 1);
    // A new version of the task is a new event.
    let mut newer = sample("oom");
    newer["detail"]["version"] = json!(6);
    handle(&config(), &ports, &newer, now()).await.unwrap();
    assert_eq!(ports.published.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn lookups_and_state_failures_do_not_stop_the_alert() {
    let ports = FakePorts {
        fail_lookups: true,
        fail_state: true,
        ..FakePorts::default()
    };
    let response = handle(&config(), &ports, &sample("failed-to-start"), now())
        .await
        .unwrap();
    assert_eq!(
        response,
        Response::Direct(Summary {
            published: 1,
            alerted_tasks: 1,
            ..Summary::default()
        })
    );
    let text = ports.published.lock().unwrap()[0].body("default").unwrap();
    assert!(
        text.contains("(unavailable: DescribeTaskDefinition rejected: AccessDeniedException: no)"),
        "{text}"
    );
}

#[tokio::test]
async fn without_an_alerts_section_nothing_runs() {
    let err = handle(
        &Config::default(),
        &FakePorts::default(),
        &sample("oom"),
        now(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("[alerts]"), "{err}");
}
