//! S3 Batch Operations tasks against fake ports: result codes, the run each task makes, and
//! redeliveries.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::*;
use crate::alert::Publish;
use crate::config::Format;
use crate::event::s3_batch::TaskResult;
use crate::job_env;
use crate::ledger::tests::MemoryTable;
use crate::plan::RunTaskInput;
use crate::ports::{
    CallError, CallResult, DescribedTask, ObjectHead, Objects, Put, Record, RunTaskAnswer, Saved,
    StateTable, Tasks, Topic, WaitQueue,
};

/// S3 holds `objects` (key → head); ECS starts one task per token and answers a token it has
/// seen with a conflict naming its task; `running` tasks are listed for every startedBy.
#[derive(Default)]
struct Fake {
    objects: BTreeMap<String, ObjectHead>,
    /// Keys whose HeadObject is throttled.
    throttled: Vec<String>,
    running: usize,
    heads: Mutex<Vec<String>>,
    launched: Mutex<Vec<RunTaskInput>>,
    sent: Mutex<Vec<String>>,
    table: MemoryTable,
}

impl Objects for Fake {
    async fn head(
        &self,
        _bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> CallResult<Option<ObjectHead>> {
        self.heads
            .lock()
            .unwrap()
            .push(format!("{key} {version_id:?}"));
        if self.throttled.iter().any(|k| k == key) {
            return Err(CallError::Throttled {
                operation: "HeadObject",
                message: "SlowDown".into(),
            });
        }
        Ok(self.objects.get(key).cloned())
    }
}

impl Tasks for Fake {
    async fn list_tasks(&self, _cluster: &str, _started_by: &str) -> CallResult<Vec<String>> {
        Ok((0..self.running)
            .map(|i| format!("arn:task/r{i}"))
            .collect())
    }
    async fn describe_tasks(&self, _c: &str, arns: &[String]) -> CallResult<Vec<DescribedTask>> {
        Ok(arns
            .iter()
            .map(|arn| DescribedTask {
                task_arn: arn.clone(),
                ..DescribedTask::default()
            })
            .collect())
    }
    async fn run_task(&self, input: &RunTaskInput) -> CallResult<RunTaskAnswer> {
        let mut launched = self.launched.lock().unwrap();
        let arn = format!("arn:task/{}", &input.client_token[4..12]);
        if launched
            .iter()
            .any(|i| i.client_token == input.client_token)
        {
            return Ok(RunTaskAnswer::Conflict {
                task_arns: vec![arn],
            });
        }
        launched.push(input.clone());
        Ok(RunTaskAnswer::Response {
            task_arns: vec![arn],
            failures: vec![],
        })
    }
    async fn stop_task(&self, _c: &str, _t: &str, _r: &str) -> CallResult<()> {
        Ok(())
    }
}

impl StateTable for Fake {
    fn table(&self) -> &str {
        self.table.table()
    }
    async fn get(&self, key: &str) -> CallResult<Option<Record>> {
        self.table.get(key).await
    }
    async fn put(&self, put: &Put<'_>) -> CallResult<Saved> {
        self.table.put(put).await
    }
}

impl WaitQueue for Fake {
    async fn send(&self, _queue_url: &str, body: &str, _delay: u32) -> CallResult<()> {
        self.sent.lock().unwrap().push(body.into());
        Ok(())
    }
}

impl Topic for Fake {
    fn topic_arn(&self) -> &str {
        ""
    }
    async fn publish(&self, _message: &Publish) -> CallResult<String> {
        Ok("m".into())
    }
}

const CONFIG: &str = r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]

[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
[[jobs.thumbnails.size_tiers]]
max_bytes = 1000
cpu = 256
memory = 512
[[jobs.thumbnails.size_tiers]]
cpu = 1024
memory = 2048

[jobs.capped]
task_definition = "thumbnails"
container = "app"
max_running = 1

[[triggers.s3]]
job = "thumbnails"
bucket = "uploads"
prefix = "in/"

[[triggers.s3]]
job = "capped"
bucket = "uploads"
prefix = "capped/"

[state]
table = "state"

[launcher]
queue_url = "https://sqs.us-east-1.amazonaws.com/1/launcher"
"#;

fn config() -> Config {
    Config::parse(CONFIG, Format::Toml).unwrap()
}

fn now() -> DateTime<Utc> {
    "2026-11-22T06:00:30Z".parse().unwrap()
}

fn modified() -> DateTime<Utc> {
    "2026-11-01T10:00:00Z".parse().unwrap()
}

fn head(size: u64, version: Option<&str>) -> ObjectHead {
    ObjectHead {
        size,
        etag: Some("e1".into()),
        version_id: version.map(Into::into),
        last_modified: Some(modified()),
    }
}

fn fake(objects: &[(&str, ObjectHead)]) -> Fake {
    Fake {
        objects: objects
            .iter()
            .map(|(k, h)| (k.to_string(), h.clone()))
            .collect(),
        ..Fake::default()
    }
}

/// A schema 1.0 invocation of `(taskId, encoded key, version)` tasks in bucket `uploads`.
fn v1(tasks: &[(&str, &str, Option<&str>)]) -> Value {
    json!({
        "invocationSchemaVersion": "1.0",
        "invocationId": "inv",
        "job": {"id": "job-1"},
        "tasks": tasks.iter().map(|(id, key, version)| json!({
            "taskId": id, "s3Key": key, "s3VersionId": version,
            "s3BucketArn": "arn:aws:s3:::uploads"})).collect::<Vec<_>>()
    })
}

fn v2(tasks: &[(&str, &str, Option<&str>)]) -> Value {
    json!({
        "invocationSchemaVersion": "2.0",
        "invocationId": "inv2",
        "job": {"id": "job-2", "userArguments": {"why": "backfill"}},
        "tasks": tasks.iter().map(|(id, key, version)| json!({
            "taskId": id, "s3Key": key, "s3VersionId": version,
            "s3Bucket": "uploads"})).collect::<Vec<_>>()
    })
}

async fn answer(config: &Config, ports: &Fake, payload: &Value) -> Vec<TaskResult> {
    handle(config, ports, payload, now())
        .await
        .unwrap()
        .response
        .results
}

fn env(input: &RunTaskInput, name: &str) -> Option<String> {
    input.overrides.container_overrides[0]
        .environment
        .iter()
        .find(|kv| kv.name == name)
        .map(|kv| kv.value.clone())
}

#[tokio::test]
async fn both_schemas_launch_the_run_a_live_event_would() {
    let key = "in/my file+1 été.jpg";
    let ports = fake(&[(key, head(10, Some("v7")))]);
    let encoded = "in/my+file%2B1+%C3%A9t%C3%A9.jpg";
    for payload in [
        v1(&[("t1", encoded, Some("v7"))]),
        v2(&[("t1", encoded, None)]),
    ] {
        let results = answer(&config(), &ports, &payload).await;
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].task_id, "t1");
        assert_eq!(results[0].result_code, ResultCode::Succeeded, "{results:?}");
    }
    let launched = ports.launched.lock().unwrap();
    assert_eq!(
        launched.len(),
        1,
        "schema 2.0's task is the same object version"
    );
    let input = &launched[0];
    assert_eq!(env(input, job_env::KEY).as_deref(), Some(key));
    assert_eq!(env(input, job_env::SIZE).as_deref(), Some("10"));
    assert_eq!(
        input.overrides.cpu.as_deref(),
        Some("256"),
        "size tier by HeadObject's size"
    );
    // The token a live event for this object version makes.
    let live = ObjectCreated {
        bucket: "uploads".into(),
        key: key.into(),
        size: 10,
        etag: Some("e1".into()),
        version_id: Some("v7".into()),
        sequencer: Some("0055AED6DCD90281E5".into()),
        event_time: modified(),
    };
    assert_eq!(input.client_token, token::for_object("thumbnails", &live));
}

#[tokio::test]
async fn a_redelivered_invocation_starts_nothing_twice() {
    let ports = fake(&[("in/a.jpg", head(5000, None))]);
    let payload = v1(&[("t1", "in/a.jpg", None)]);
    let first = answer(&config(), &ports, &payload).await;
    let second = answer(&config(), &ports, &payload).await;
    assert!(
        first[0].result_string.starts_with("launched run "),
        "{first:?}"
    );
    assert_eq!(second[0].result_code, ResultCode::Succeeded);
    assert!(
        second[0].result_string.starts_with("already launched"),
        "{second:?}"
    );
    let launched = ports.launched.lock().unwrap();
    assert_eq!(launched.len(), 1);
    assert_eq!(launched[0].overrides.cpu.as_deref(), Some("1024"));
}

#[tokio::test]
async fn each_task_gets_its_own_result_code() {
    let mut ports = fake(&[("in/ok.jpg", head(1, None))]);
    ports.throttled = vec!["in/slow.jpg".into()];
    let payload = v2(&[
        ("ok", "in/ok.jpg", None),
        ("gone", "in/gone.jpg", Some("v1")),
        ("bad", "in/bad%zz.jpg", None),
        ("slow", "in/slow.jpg", None),
        ("other", "elsewhere/x.jpg", None),
    ]);
    let handled = handle(&config(), &ports, &payload, now()).await.unwrap();
    let codes: Vec<(&str, ResultCode)> = handled
        .response
        .results
        .iter()
        .map(|r| (r.task_id.as_str(), r.result_code))
        .collect();
    assert_eq!(
        codes,
        [
            ("ok", ResultCode::Succeeded),
            ("gone", ResultCode::PermanentFailure),
            ("bad", ResultCode::PermanentFailure),
            ("slow", ResultCode::TemporaryFailure),
            ("other", ResultCode::Succeeded),
        ]
    );
    let text = |i: usize| handled.response.results[i].result_string.as_str();
    assert!(text(1).contains("does not exist") && text(1).contains("version v1"));
    assert!(text(2).contains("invalid %-escape"), "{}", text(2));
    assert!(text(3).contains("throttled"), "{}", text(3));
    assert!(text(4).starts_with("skipped: no S3 trigger"), "{}", text(4));
    assert_eq!(handled.skipped.len(), 1);
    assert_eq!(handled.failed.len(), 3);
    // The unroutable key was answered without a HeadObject; the bad key never reached S3.
    let heads = ports.heads.lock().unwrap();
    assert_eq!(heads.len(), 3, "{heads:?}");
}

#[tokio::test]
async fn at_the_cap_a_task_is_a_temporary_failure_and_waits_in_no_queue() {
    let mut ports = fake(&[("capped/a.jpg", head(1, None))]);
    ports.running = 1;
    // The one slot is held by another run.
    let ledger = crate::ledger::Ledger::new(&ports, config().state.as_ref().unwrap());
    ledger
        .update(
            "slots/capped",
            None,
            now(),
            |s: &mut Option<crate::ledger::Slots>| {
                let slots = s.get_or_insert_with(Default::default);
                slots.acquire("other", 1, modified(), 1, now());
                true
            },
        )
        .await
        .unwrap();
    let results = answer(&config(), &ports, &v1(&[("t", "capped/a.jpg", None)])).await;
    assert_eq!(results[0].result_code, ResultCode::TemporaryFailure);
    assert!(
        results[0].result_string.contains("at its cap"),
        "{results:?}"
    );
    assert!(
        ports.sent.lock().unwrap().is_empty(),
        "not re-sent to the launcher queue"
    );
    assert!(ports.launched.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_broken_envelope_is_an_error_not_a_panic() {
    let ports = Fake::default();
    let err = handle_text(
        &config(),
        &ports,
        "{\"invocationSchemaVersion\":\"1.0\",\"tasks\":[]}",
        now(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("invocationId"), "{err}");
    assert!(!err.is_retryable());
}
