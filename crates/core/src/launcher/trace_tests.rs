//! The trace context and the metric documents of the launcher's path, with an ECS fake that
//! keeps RunTask's token semantics (the same token with the same request returns the task it
//! started; with another request, `ConflictException` naming it).

use std::collections::BTreeMap;
use std::sync::Mutex;

use jobrunner_testkit::s3_event;
use serde_json::Value;

use super::*;
use crate::alert::Publish;
use crate::config::Format;
use crate::job_env;
use crate::ledger::tests::MemoryTable;
use crate::metrics::scope::{self, Scope};
use crate::plan::RunTaskInput;
use crate::ports::{CallResult, DescribedTask, Put, Record, RunTaskAnswer, Saved};
use crate::trace::TraceParent;

const XRAY_A: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const XRAY_B: &str = "Root=1-6a1b2c3d-00112233445566778899aabb;Parent=0f0e0d0c0b0a0908;Sampled=1";

#[derive(Default)]
struct TokenEcs {
    /// Token → (the request that used it first, its task).
    tokens: Mutex<BTreeMap<String, (RunTaskInput, String)>>,
    /// Every RunTask request, in order.
    requests: Mutex<Vec<RunTaskInput>>,
    table: MemoryTable,
}

impl TokenEcs {
    fn started(&self) -> usize {
        self.tokens.lock().unwrap().len()
    }
    fn traceparents(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                r.overrides.container_overrides[0]
                    .environment
                    .iter()
                    .find(|kv| kv.name == job_env::TRACEPARENT)
                    .map(|kv| kv.value.clone())
                    .unwrap_or_default()
            })
            .collect()
    }
}

impl Tasks for TokenEcs {
    async fn list_tasks(&self, _cluster: &str, _started_by: &str) -> CallResult<Vec<String>> {
        Ok(vec![])
    }
    async fn describe_tasks(&self, _c: &str, _arns: &[String]) -> CallResult<Vec<DescribedTask>> {
        Ok(vec![])
    }
    async fn run_task(&self, input: &RunTaskInput) -> CallResult<RunTaskAnswer> {
        self.requests.lock().unwrap().push(input.clone());
        let mut tokens = self.tokens.lock().unwrap();
        let n = tokens.len();
        let (first, task) = tokens
            .entry(input.client_token.clone())
            .or_insert_with(|| (input.clone(), format!("arn:task/{n}")));
        if first == input {
            Ok(RunTaskAnswer::Response {
                task_arns: vec![task.clone()],
                failures: vec![],
            })
        } else {
            Ok(RunTaskAnswer::Conflict {
                task_arns: vec![task.clone()],
            })
        }
    }
    async fn stop_task(&self, _c: &str, _t: &str, _r: &str) -> CallResult<()> {
        Ok(())
    }
}

impl StateTable for TokenEcs {
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

impl WaitQueue for TokenEcs {
    async fn send(&self, _q: &str, _b: &str, _d: u32) -> CallResult<()> {
        Ok(())
    }
}

impl Topic for TokenEcs {
    fn topic_arn(&self) -> &str {
        "arn:aws:sns:us-east-1:123456789012:alerts"
    }
    async fn publish(&self, _message: &Publish) -> CallResult<String> {
        Ok("m".into())
    }
}

impl crate::ports::Objects for TokenEcs {
    async fn head(
        &self,
        _bucket: &str,
        _key: &str,
        _version_id: Option<&str>,
    ) -> CallResult<Option<crate::ports::ObjectHead>> {
        Ok(Some(crate::ports::ObjectHead::default()))
    }
}

const JOBS: &str = r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]

[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
max_running = 3

[[triggers.s3]]
job = "thumbnails"
bucket = "uploads"
"#;

fn config(ledger: bool) -> Config {
    let state = if ledger {
        "[state]\ntable = \"state\"\n"
    } else {
        ""
    };
    Config::parse(&format!("{state}{JOBS}"), Format::Toml).unwrap()
}

fn now() -> DateTime<Utc> {
    "2026-11-22T05:00:30Z".parse().unwrap()
}

/// RunTask answers 250 ms after the invocation was received.
fn answered() -> DateTime<Utc> {
    now() + chrono::Duration::milliseconds(250)
}

/// The launcher on `payload` inside a metric scope with the X-Ray header `xray`.
async fn deliver(
    config: &Config,
    ecs: &TokenEcs,
    payload: &Value,
    xray: Option<&str>,
) -> (Summary, Vec<Value>) {
    let scope = Scope {
        clock: answered,
        trace: xray.and_then(TraceParent::from_xray),
    };
    let (handled, documents) = scope::collect(scope, handle(config, ecs, payload, now())).await;
    let handled = handled.unwrap();
    assert!(handled.failed.is_empty(), "{:?}", handled.failed);
    for document in &documents {
        crate::metrics::check(document).unwrap();
    }
    (handled.summary, documents)
}

/// The metric names of `documents`, in order (each document's metrics).
fn metric_names(documents: &[Value]) -> Vec<String> {
    documents
        .iter()
        .flat_map(|d| {
            d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["Name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn a_redelivery_with_another_xray_trace_starts_nothing_twice_without_a_ledger() {
    let (config, ecs) = (config(false), TokenEcs::default());
    let event = s3_event("uploads", "a.jpg", 3);
    let (first, documents) = deliver(&config, &ecs, &event, Some(XRAY_A)).await;
    assert_eq!(first.launched, 1);
    assert_eq!(
        metric_names(&documents),
        ["runs_launched", "launch_latency", "queue_wait"]
    );
    assert_eq!(documents[0]["job"], "thumbnails");
    assert_eq!(documents[0]["launch_latency"], 250);
    // s3_event's time is 05:00:00; RunTask answered at 05:00:30.25.
    assert_eq!(documents[0]["queue_wait"], 30.25);

    let (second, documents) = deliver(&config, &ecs, &event, Some(XRAY_B)).await;
    assert_eq!((second.launched, second.already_launched), (0, 1));
    assert_eq!(metric_names(&documents), ["runs_already_launched"]);
    assert_eq!(ecs.started(), 1, "one task, whatever the trace");
    // The invocation's sampled trace went into each request; the token stayed the same.
    assert_eq!(
        ecs.traceparents(),
        [
            "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01",
            "00-6a1b2c3d00112233445566778899aabb-0f0e0d0c0b0a0908-01"
        ]
    );
    let requests = ecs.requests.lock().unwrap();
    assert_eq!(requests[0].client_token, requests[1].client_token);
}

#[tokio::test]
async fn without_a_sampled_trace_a_redelivery_sends_the_very_same_request() {
    let (config, ecs) = (config(false), TokenEcs::default());
    let event = s3_event("uploads", "b.jpg", 3);
    let unsampled = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0";
    deliver(&config, &ecs, &event, Some(unsampled)).await;
    let (second, _) = deliver(&config, &ecs, &event, None).await;
    // Same request, same token: ECS returns the first task (no conflict).
    assert_eq!(second.launched, 1);
    assert_eq!(ecs.started(), 1);
    let requests = ecs.requests.lock().unwrap();
    assert_eq!(requests[0], requests[1]);
    let run_id = requests[0].overrides.container_overrides[0]
        .environment
        .iter()
        .find(|kv| kv.name == job_env::RUN_ID)
        .unwrap()
        .value
        .clone();
    drop(requests);
    assert_eq!(
        ecs.traceparents()[0],
        TraceParent::for_run(&run_id, 1).to_string()
    );
}

#[tokio::test]
async fn with_the_ledger_a_redelivery_never_reaches_run_task() {
    let (config, ecs) = (config(true), TokenEcs::default());
    let event = s3_event("uploads", "c.jpg", 3);
    let (first, documents) = deliver(&config, &ecs, &event, Some(XRAY_A)).await;
    assert_eq!(first.launched, 1);
    // The slot taken, then the launch.
    assert_eq!(
        metric_names(&documents),
        [
            "running",
            "max_running",
            "runs_launched",
            "launch_latency",
            "queue_wait"
        ]
    );
    assert_eq!(
        (&documents[0]["running"], &documents[0]["max_running"]),
        (&1.into(), &3.into())
    );
    let (second, documents) = deliver(&config, &ecs, &event, Some(XRAY_B)).await;
    assert_eq!(second.already_launched, 1);
    assert_eq!(metric_names(&documents), ["runs_already_launched"]);
    assert_eq!(ecs.requests.lock().unwrap().len(), 1, "no second RunTask");
}

#[tokio::test]
async fn without_a_scope_nothing_is_emitted_and_the_task_gets_the_run_s_trace() {
    let (config, ecs) = (config(false), TokenEcs::default());
    let event = s3_event("uploads", "d.jpg", 3);
    let handled = handle(&config, &ecs, &event, now()).await.unwrap();
    assert_eq!(handled.summary.launched, 1);
    let traceparent = &ecs.traceparents()[0];
    let parsed = TraceParent::parse(traceparent).expect("a valid traceparent");
    assert!(parsed.sampled);
    // `jobrunner plan` shows the same (crates/core/tests/plan_traceparent.rs).
}

#[tokio::test]
async fn a_plan_error_counts_as_a_launch_failure_of_its_job() {
    let config = Config::parse(
        r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]

[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
command = ["{key}", "{key}", "{key}", "{key}", "{key}", "{key}", "{key}", "{key}", "{key}", "{key}"]

[[triggers.s3]]
job = "thumbnails"
bucket = "uploads"
"#,
        Format::Toml,
    )
    .unwrap();
    let ecs = TokenEcs::default();
    // Ten copies of a 1000-character key do not fit ECS's 8192 characters of overrides.
    let event = s3_event("uploads", &"k".repeat(1000), 3);
    let scope = Scope {
        clock: answered,
        trace: None,
    };
    let (handled, documents) = scope::collect(scope, handle(&config, &ecs, &event, now())).await;
    let handled = handled.unwrap();
    assert_eq!(handled.failed.len(), 1, "{handled:?}");
    assert_eq!(metric_names(&documents), ["launch_failures"]);
    assert_eq!(documents[0]["job"], "thumbnails");
}
