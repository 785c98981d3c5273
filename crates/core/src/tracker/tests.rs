//! The tracker's decision path with fake ports: batch semantics, digests, dedupe across
//! invocations, and failures that must not lose an alert.

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde_json::json;

use super::*;
use crate::alert::{AwsLogs, ContainerDefinitionInfo, Publish, TaskDefinitionInfo};
use crate::config::Format;
use crate::handled::Response;
use crate::ports::{CallError, CallResult, Record, Saved};

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

impl TaskDefinitions for FakePorts {
    async fn describe_task_definition(&self, arn: &str) -> CallResult<TaskDefinitionInfo> {
        self.lookups.lock().unwrap().push(arn.to_owned());
        if self.fail_lookups {
            return Err(CallError::Rejected {
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
}

/// No retries here: the tracker never requests one.
impl crate::ports::WaitQueue for FakePorts {
    async fn send(&self, _queue_url: &str, _body: &str, _delay_seconds: u32) -> CallResult<()> {
        unreachable!("no retries configured")
    }
}

/// No jobs with time limits here: the tracker never calls ECS.
impl Tasks for FakePorts {
    async fn list_tasks(&self, _cluster: &str, _started_by: &str) -> CallResult<Vec<String>> {
        unreachable!("no time limits configured")
    }
    async fn describe_tasks(
        &self,
        _cluster: &str,
        _task_arns: &[String],
    ) -> CallResult<Vec<crate::ports::DescribedTask>> {
        unreachable!("no time limits configured")
    }
    async fn run_task(
        &self,
        _input: &crate::plan::RunTaskInput,
    ) -> CallResult<crate::ports::RunTaskAnswer> {
        unreachable!("the tracker never launches")
    }
    async fn stop_task(&self, _cluster: &str, _task_arn: &str, _reason: &str) -> CallResult<()> {
        unreachable!("no time limits configured")
    }
}

impl Topic for FakePorts {
    fn topic_arn(&self) -> &str {
        "arn:aws:sns:us-east-1:123456789012:alerts"
    }

    async fn publish(&self, message: &Publish) -> CallResult<String> {
        if self
            .fail_subject
            .is_some_and(|s| message.subject.contains(s))
        {
            return Err(CallError::Throttled {
                operation: "Publish",
                message: "Rate exceeded".into(),
            });
        }
        let mut published = self.published.lock().unwrap();
        published.push(message.clone());
        Ok(format!("msg-{}", published.len()))
    }
}

impl StateTable for FakePorts {
    fn table(&self) -> &str {
        "state"
    }

    async fn get(&self, key: &str) -> CallResult<Option<Record>> {
        if self.fail_state {
            return Err(CallError::Transient {
                operation: "GetItem",
                message: "timeout".into(),
            });
        }
        Ok(self.alerted.lock().unwrap().contains(key).then(|| Record {
            data: "{}".into(),
            version: 1,
        }))
    }

    async fn put(&self, put: &Put<'_>) -> CallResult<Saved> {
        let new = self.alerted.lock().unwrap().insert(put.key.to_owned());
        Ok(if new {
            Saved::Written { version: 1 }
        } else {
            Saved::Conflict
        })
    }
}

fn config() -> Config {
    Config::parse(
        "[alerts]\ntopic_arn = \"arn:aws:sns:us-east-1:123456789012:alerts\"\n[state]\ntable = \"state\"\n",
        Format::Toml,
    )
    .unwrap()
}

fn sample(name: &str) -> Value {
    jobrunner_testkit::sample(&format!("ecs-task-stopped-{name}"))
}

fn batch(bodies: &[(&str, String)]) -> Value {
    jobrunner_testkit::sqs_batch_with_ids(
        &bodies
            .iter()
            .map(|(id, body)| (id.to_string(), body.clone()))
            .collect::<Vec<_>>(),
    )
}

fn now() -> DateTime<Utc> {
    "2024-05-01T10:05:00Z".parse().unwrap()
}

async fn run(
    config: &Config,
    ports: &FakePorts,
    payload: &Value,
    now: DateTime<Utc>,
) -> Result<Response<Summary>, Error> {
    handle(config, ports, payload, now).await?.into_response()
}

fn failures(response: Response<Summary>) -> Vec<String> {
    match response {
        Response::Batch {
            batch_item_failures,
        } => batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect(),
        Response::Direct(summary) => panic!("expected a batch response, got {summary:?}"),
    }
}

#[tokio::test]
async fn a_direct_stop_is_published_with_log_links() {
    let ports = FakePorts::default();
    let response = run(&config(), &ports, &sample("oom"), now()).await.unwrap();
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
    assert_eq!(
        ports.alerted.lock().unwrap().iter().collect::<Vec<_>>(),
        ["alert/arn:aws:ecs:us-east-1:123456789012:task/jobs/cd2452db7d582ea2d51b17816a6c9167"],
        "the mark is the task, whatever its version"
    );
}

#[tokio::test]
async fn normal_stops_are_quiet_without_lookups() {
    let ports = FakePorts::default();
    for name in ["succeeded", "scaled-in", "user-stopped"] {
        let response = run(&config(), &ports, &sample(name), now()).await.unwrap();
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
        run(&config(), &ports, &event, now()).await.unwrap(),
        Response::Direct(Summary::default())
    );
}

#[tokio::test]
async fn events_for_other_functions_fail() {
    let s3 = json!({"version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3", "account": "1",
        "time": "2024-05-01T10:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"bucket": {"name": "uploads"}, "object": {"key": "a.jpg", "size": 3}}});
    let err = run(&config(), &FakePorts::default(), &s3, now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::WrongFunction { .. }) && !err.is_retryable(),
        "{err}"
    );
}

#[tokio::test]
async fn a_direct_publish_failure_fails_the_invocation() {
    let ports = FakePorts {
        fail_subject: Some("OOM"),
        ..FakePorts::default()
    };
    let err = run(&config(), &ports, &sample("oom"), now())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn the_sample_batch_becomes_a_digest_and_a_single_alert() {
    let ports = FakePorts::default();
    let payload = sample("sqs-batch");
    let response = run(&config(), &ports, &payload, now()).await.unwrap();
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
        1,
        "one lookup per task definition per invocation"
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
    let response = run(&config(), &ports, &payload, now()).await.unwrap();
    assert_eq!(
        failures(response),
        ["m2", "m3", "m4", "m5"],
        "the malformed, and both deliveries of the unpublished alert"
    );
    assert_eq!(ports.published.lock().unwrap().len(), 1);
    assert_eq!(
        ports
            .alerted
            .lock()
            .unwrap()
            .iter()
            .filter(|k| k.starts_with(DEDUPE_KEY_PREFIX))
            .count(),
        1,
        "only the published alert is recorded"
    );
}

#[tokio::test]
async fn a_later_invocation_skips_what_was_alerted() {
    let ports = FakePorts::default();
    run(&config(), &ports, &sample("oom"), now()).await.unwrap();
    let again = run(
        &config(),
        &ports,
        &batch(&[("m1", sample("oom").to_string())]),
        now(),
    )
    .await
    .unwrap();
    assert!(failures(again).is_empty());
    assert_eq!(ports.published.lock().unwrap().len(), 1);
    // STOPPED is final: a later version of the same task's stop is no new alert either.
    let mut newer = sample("oom");
    newer["detail"]["version"] = json!(6);
    run(&config(), &ports, &newer, now()).await.unwrap();
    assert_eq!(ports.published.lock().unwrap().len(), 1);
    // Another task is.
    let mut other = sample("oom");
    other["detail"]["taskArn"] = json!("arn:aws:ecs:us-east-1:123456789012:task/jobs/other");
    run(&config(), &ports, &other, now()).await.unwrap();
    assert_eq!(ports.published.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn lookups_and_state_failures_do_not_stop_the_alert() {
    let ports = FakePorts {
        fail_lookups: true,
        fail_state: true,
        ..FakePorts::default()
    };
    let response = run(&config(), &ports, &sample("failed-to-start"), now())
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
async fn without_alerts_or_a_ledger_nothing_runs() {
    let err = run(
        &Config::default(),
        &FakePorts::default(),
        &sample("oom"),
        now(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("[alerts]"), "{err}");
    assert!(err.to_string().contains("[state]"), "{err}");
}
