//! The launcher's decision path with a fake ECS port: batch semantics, bad input, the cap,
//! overlap and capacity fallback.

use std::sync::Mutex;

use jobrunner_testkit::{s3_event, sqs_batch};
use serde_json::{Value, json};

use super::*;
use crate::alert::Publish;
use crate::config::Format;
use crate::handled::Response;
use crate::job_env;
use crate::ledger::tests::MemoryTable;
use crate::plan::RunTaskInput;
use crate::ports::{
    CallError, CallResult, DescribedTask, Put, Record, RunTaskAnswer, Saved, TaskFailure,
};

/// Answers RunTask by the object key (`throttle` → throttled, `nocap` → a capacity failure on
/// the first provider, `broken` → a permanent failure), and reports `running` tasks to every
/// ListTasks, each described as running the tick `running_tick`.
#[derive(Default)]
struct FakeEcs {
    running: usize,
    running_tick: String,
    calls: Mutex<Vec<String>>,
    launched: Mutex<Vec<RunTaskInput>>,
    /// The ledger's table (used when the config has `[state]`).
    table: MemoryTable,
    /// Messages sent back to the queue: (queue URL, body, delay).
    sent: Mutex<Vec<(String, String, u32)>>,
    published: Mutex<Vec<Publish>>,
}

/// A run of the `capped` job for `key`, as the tracker or the CLI would have written it.
fn capped_run(run_id: &str, key: &str) -> crate::run::Run {
    crate::run::Run::new(
        run_id,
        "capped",
        crate::run::RunInput::S3 {
            bucket: "uploads".into(),
            key: key.into(),
            version_id: None,
            etag: None,
            size: None,
        },
        now(),
        now(),
    )
}

impl FakeEcs {
    /// Writes `run` into the ledger as another function would (a conditional write).
    async fn store(&self, run: &crate::run::Run) {
        let data = serde_json::to_string(run).unwrap();
        let key = format!("run/{}", run.run_id);
        let expected = self
            .table
            .items
            .lock()
            .unwrap()
            .get(&key)
            .map(|(r, _)| r.version);
        let put = Put {
            key: &key,
            data: &data,
            expected,
            expires_at: now(),
            now: now(),
            listing: None,
        };
        assert!(matches!(
            self.table.put(&put).await.unwrap(),
            Saved::Written { .. }
        ));
    }
}

impl StateTable for FakeEcs {
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

impl WaitQueue for FakeEcs {
    async fn send(&self, queue_url: &str, body: &str, delay_seconds: u32) -> CallResult<()> {
        self.sent
            .lock()
            .unwrap()
            .push((queue_url.into(), body.into(), delay_seconds));
        Ok(())
    }
}

/// Every object exists except keys holding `deleted`.
impl crate::ports::Objects for FakeEcs {
    async fn head(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> CallResult<Option<crate::ports::ObjectHead>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("HeadObject {bucket} {key} {version_id:?}"));
        Ok((!key.contains("deleted")).then(crate::ports::ObjectHead::default))
    }
}

impl Topic for FakeEcs {
    fn topic_arn(&self) -> &str {
        "arn:aws:sns:us-east-1:123456789012:alerts"
    }
    async fn publish(&self, message: &Publish) -> CallResult<String> {
        self.published.lock().unwrap().push(message.clone());
        Ok("m".into())
    }
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
                ..DescribedTask::default()
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
        if key.contains("stoppedfirst") {
            // A duplicate's RunTask: the token's task ran and stopped, and the tracker recorded
            // it (and freed the slot) after this launcher had looked the run up.
            let mut run = capped_run(&crate::token::run_id(&input.client_token), &key);
            run.attempts.push(crate::run::Attempt {
                number: 1,
                task_arn: Some("arn:task/stopped".into()),
                stopped_at: Some(now()),
                ..crate::run::Attempt::default()
            });
            run.state = crate::run::RunState::Succeeded;
            self.store(&run).await;
            return Ok(RunTaskAnswer::Conflict {
                task_arns: vec!["arn:task/stopped".into()],
            });
        }
        if key.contains("cancelme") {
            // `jobrunner run cancel` lands while RunTask is in flight.
            let mut run = capped_run(&crate::token::run_id(&input.client_token), &key);
            run.cancel("arn:aws:iam::123456789012:user/ops", now())
                .unwrap();
            self.store(&run).await;
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

fn now() -> DateTime<Utc> {
    "2026-11-22T06:00:30Z".parse().unwrap()
}

async fn run(config: &Config, ecs: &FakeEcs, payload: &Value) -> Result<Value, Error> {
    let handled = handle(config, ecs, payload, now()).await?;
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
        json!({"launched": 1, "already_launched": 0, "waiting": 0, "skipped": 0})
    );
    let launched = ecs.launched.lock().unwrap();
    assert_eq!(launched[0].task_definition, "thumbnails");
    assert_eq!(launched[0].started_by, "jobrunner/thumbnails");
}

#[tokio::test]
async fn an_unmatched_event_is_skipped_with_its_reason() {
    let ecs = FakeEcs::default();
    let handled = handle(&config(), &ecs, &event("docs/a.pdf"), now())
        .await
        .unwrap();
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
    let handled = handle(&config(), &ecs, &event("capped/nocap.jpg"), now())
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
    let handled = handle(&config(), &ecs, &tick("nightly"), now())
        .await
        .unwrap();
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
    let handled = handle(&config(), &ecs, &tick("refresh"), now())
        .await
        .unwrap();
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
    let handled = handle(&config(), &ecs, &tick("refresh"), now())
        .await
        .unwrap();
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
    let handled = handle(&config(), &ecs, &sqs_batch(&["x"]), now())
        .await
        .unwrap();
    match handled.into_response().unwrap() {
        Response::Batch {
            batch_item_failures,
        } => assert_eq!(batch_item_failures[0].item_identifier, "m0"),
        Response::Direct(summary) => panic!("direct: {summary:?}"),
    }
}

// --- with the ledger: the hard cap, waiting in line, launch failures -------------------------

fn ledger_config() -> Config {
    Config::parse(
        &format!(
            "{CONFIG}\n[state]\ntable = \"state\"\n[launcher]\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/1/launcher\"\n[alerts]\ntopic_arn = \"arn:aws:sns:us-east-1:123456789012:alerts\"\n"
        ),
        Format::Toml,
    )
    .unwrap()
}

fn object(key: &str, minute: u32) -> Event {
    let mut payload = event(key);
    payload["time"] = json!(format!("2026-11-22T05:{minute:02}:00Z"));
    event::decode_event(&payload).unwrap().remove(0)
}

#[tokio::test]
async fn concurrent_launchers_never_exceed_the_cap_and_the_rest_wait_in_line() {
    let config = ledger_config();
    let ecs = FakeEcs::default();
    let events: Vec<Event> = (0..30)
        .map(|i| object(&format!("capped/{i}.jpg"), i))
        .collect();
    let outcomes =
        futures::future::join_all(events.iter().map(|e| process(&config, &ecs, e, now()))).await;
    let launched = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(Outcome::Launched { .. })))
        .count();
    let waiting = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(Outcome::Waiting { .. })))
        .count();
    assert_eq!((launched, waiting), (2, 28), "{outcomes:?}");
    assert_eq!(ecs.launched.lock().unwrap().len(), 2, "max_running = 2");
    let sent = ecs.sent.lock().unwrap();
    assert_eq!(sent.len(), 28, "every waiting event is back in the queue");
    assert!(sent.iter().all(|(url, _, _)| url.ends_with("/launcher")));
    // Back in the queue is the same event: it decodes to the same object.
    let body = event::decode_message(&sent[0].1).unwrap();
    assert!(events.contains(&body[0]));
    let slots: crate::ledger::Slots = ecs.table.data("slots/capped").unwrap();
    assert_eq!(slots.holders.len(), 2);
}

#[tokio::test]
async fn a_freed_slot_goes_to_the_oldest_waiting_event() {
    let config = ledger_config();
    let ecs = FakeEcs::default();
    for minute in [0, 1] {
        assert!(matches!(
            process(
                &config,
                &ecs,
                &object(&format!("capped/run{minute}.jpg"), minute),
                now()
            )
            .await,
            Ok(Outcome::Launched { .. })
        ));
    }
    let old = object("capped/old.jpg", 2);
    assert!(matches!(
        process(&config, &ecs, &old, now()).await,
        Ok(Outcome::Waiting { .. })
    ));
    assert_eq!(
        ecs.sent.lock().unwrap()[0].2,
        10,
        "at the head of the line: 10 s"
    );
    // A task stops: its slot is free.
    let first = crate::token::run_id(&ecs.launched.lock().unwrap()[0].client_token);
    let ledger = crate::ledger::Ledger::new(&ecs, config.state.as_ref().unwrap());
    ledger
        .update(
            "slots/capped",
            None,
            now(),
            |s: &mut Option<crate::ledger::Slots>| s.as_mut().unwrap().release(&first, 1),
        )
        .await
        .unwrap();
    // A newer event arrives first: it waits; the old one, when it looks again, launches.
    assert!(matches!(
        process(&config, &ecs, &object("capped/new.jpg", 9), now()).await,
        Ok(Outcome::Waiting { .. })
    ));
    assert!(matches!(
        process(&config, &ecs, &old, now()).await,
        Ok(Outcome::Launched { .. })
    ));
    let run: crate::run::Run = ecs
        .table
        .data(&format!(
            "run/{}",
            crate::token::run_id(&ecs.launched.lock().unwrap()[2].client_token)
        ))
        .unwrap();
    assert_eq!(run.state, crate::run::RunState::Launching);
    assert_eq!(
        run.queued_at,
        "2026-11-22T05:02:00Z".parse::<DateTime<Utc>>().unwrap()
    );
}

#[tokio::test]
async fn a_launched_run_is_never_launched_again() {
    let config = ledger_config();
    let ecs = FakeEcs::default();
    let e = object("images/a.jpg", 0);
    assert!(matches!(
        process(&config, &ecs, &e, now()).await,
        Ok(Outcome::Launched { .. })
    ));
    assert!(matches!(
        process(&config, &ecs, &e, now()).await,
        Ok(Outcome::AlreadyLaunched { .. })
    ));
    assert_eq!(ecs.launched.lock().unwrap().len(), 1);
    let pointer: crate::ledger::ObjectPointer = ecs
        .table
        .data("object/thumbnails/uploads/images/a.jpg")
        .unwrap();
    let env = &ecs.launched.lock().unwrap()[0]
        .overrides
        .container_overrides[0]
        .environment;
    let run_id = env.iter().find(|kv| kv.name == job_env::RUN_ID).unwrap();
    assert_eq!(pointer.run_id, run_id.value);
    assert!(
        env.iter()
            .any(|kv| kv.name == job_env::ATTEMPT && kv.value == "1")
    );
}

#[tokio::test]
async fn a_permanent_launch_failure_fails_the_run_and_alerts_once() {
    let config = ledger_config();
    let ecs = FakeEcs::default();
    let e = object("capped/broken.jpg", 0);
    for _ in 0..3 {
        let err = process(&config, &ecs, &e, now()).await.unwrap_err();
        assert!(!err.is_retryable(), "{err}");
    }
    let published = ecs.published.lock().unwrap();
    assert_eq!(
        published.len(),
        1,
        "one launch_failed alert however often it comes back"
    );
    assert_eq!(published[0].attributes["class"], "launch_failed");
    assert!(
        published[0]
            .body("email")
            .unwrap()
            .contains("s3://uploads/capped/broken.jpg")
    );
    let slots: crate::ledger::Slots = ecs.table.data("slots/capped").unwrap();
    assert!(
        slots.holders.is_empty(),
        "the failed launch gave its slot back"
    );
    let runs: Vec<String> = ecs
        .table
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("run/"))
        .collect();
    let run: crate::run::Run = ecs.table.data(&runs[0]).unwrap();
    assert_eq!(run.state, crate::run::RunState::Failed);
    assert!(run.reason.unwrap().contains("MISSING"));
}

#[tokio::test]
async fn without_a_queue_for_waiting_the_event_fails_back_as_before() {
    let config = Config::parse(
        &format!("{CONFIG}\n[state]\ntable = \"state\"\n"),
        Format::Toml,
    )
    .unwrap();
    let ecs = FakeEcs::default();
    for i in 0..2 {
        process(&config, &ecs, &object(&format!("capped/{i}.jpg"), i), now())
            .await
            .unwrap();
    }
    let err = process(&config, &ecs, &object("capped/x.jpg", 5), now())
        .await
        .unwrap_err();
    assert!(
        err.is_retryable() && err.to_string().contains("at its cap"),
        "{err}"
    );
}

#[tokio::test]
async fn a_run_cancelled_while_it_launches_has_its_task_stopped() {
    let config = ledger_config();
    let ecs = FakeEcs::default();
    let outcome = process(&config, &ecs, &object("capped/cancelme.jpg", 0), now()).await;
    assert!(
        matches!(outcome, Ok(Outcome::Launched { .. })),
        "{outcome:?}"
    );
    let calls = ecs.calls.lock().unwrap();
    let stop = calls
        .iter()
        .find(|c| c.starts_with("StopTask"))
        .expect("the task is stopped");
    assert!(
        stop.ends_with("jobrunner: cancelled by arn:aws:iam::123456789012:user/ops"),
        "{stop}"
    );
    let runs: Vec<String> = ecs
        .table
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("run/"))
        .collect();
    let run: crate::run::Run = ecs.table.data(&runs[0]).unwrap();
    assert_eq!(run.state, crate::run::RunState::Cancelled);
    assert!(run.task_arn().is_some(), "the task is on record");
}

#[tokio::test]
async fn a_retry_request_launches_its_planned_attempt_when_due() {
    let config = ledger_config();
    let ecs = FakeEcs::default();
    let first = object("capped/a.jpg", 0);
    process(&config, &ecs, &first, now()).await.unwrap();
    let run_id = crate::token::run_id(&ecs.launched.lock().unwrap()[0].client_token);
    let base = ecs.launched.lock().unwrap()[0].client_token.clone();
    // The tracker planned attempt 2 on demand with more memory, due in 60 s.
    let due = now() + chrono::Duration::seconds(60);
    let ledger = crate::ledger::Ledger::new(&ecs, config.state.as_ref().unwrap());
    ledger
        .update(
            &format!("run/{run_id}"),
            None,
            now(),
            |run: &mut Option<crate::run::Run>| {
                let next = crate::retry::NextAttempt {
                    attempt: 2,
                    interruptions: 1,
                    delay: std::time::Duration::from_secs(60),
                    cpu: Some(512),
                    memory: Some(2048),
                    capacity_provider: Some("FARGATE".into()),
                    why: "spot_interruption: retried on FARGATE".into(),
                };
                run.as_mut().unwrap().plan_retry(&next, due, now())
            },
        )
        .await
        .unwrap();
    let request = Event::Retry(event::RetryRequest {
        run_id: run_id.clone(),
        attempt: 2,
        not_before: due,
    });
    // Early: back to the queue for the rest of the delay.
    assert!(matches!(
        process(&config, &ecs, &request, now()).await,
        Ok(Outcome::Waiting { .. })
    ));
    assert_eq!(ecs.sent.lock().unwrap().last().unwrap().2, 60);
    // Due: attempt 2 runs on FARGATE only, with its own token, size and variables.
    let later = due + chrono::Duration::seconds(1);
    assert!(matches!(
        process(&config, &ecs, &request, later).await,
        Ok(Outcome::Launched { .. })
    ));
    let launched = ecs.launched.lock().unwrap().clone();
    assert_eq!(launched.len(), 2);
    let second = &launched[1];
    assert_eq!(second.client_token, crate::token::for_retry(&base, 2));
    assert_eq!(
        second.capacity_provider_strategy[0].capacity_provider,
        "FARGATE"
    );
    assert_eq!(second.overrides.memory.as_deref(), Some("2048"));
    let env = &second.overrides.container_overrides[0].environment;
    let var = |name: &str| {
        env.iter()
            .find(|kv| kv.name == name)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(var(job_env::ATTEMPT).as_deref(), Some("2"));
    assert_eq!(var(job_env::RUN_ID), Some(run_id.clone()));
    assert_eq!(var(job_env::INTERRUPTIONS).as_deref(), Some("1"));
    // A redelivered request launches nothing more; the original event neither.
    assert!(matches!(
        process(&config, &ecs, &request, later).await,
        Ok(Outcome::AlreadyLaunched { .. })
    ));
    assert!(matches!(
        process(&config, &ecs, &first, later).await,
        Ok(Outcome::AlreadyLaunched { .. })
    ));
    assert_eq!(ecs.launched.lock().unwrap().len(), 2);
    let run: crate::run::Run = ecs.table.data(&format!("run/{run_id}")).unwrap();
    assert_eq!(run.state, crate::run::RunState::Launching);
    assert_eq!(run.attempts.len(), 2);
    assert_eq!(
        run.attempts[1].task_arn.as_deref(),
        Some("arn:task/capped/a.jpg")
    );
}

#[tokio::test]
async fn a_duplicate_that_finds_its_task_already_stopped_gives_its_slot_back() {
    let config = ledger_config();
    let ecs = FakeEcs::default();
    let outcome = process(&config, &ecs, &object("capped/stoppedfirst.jpg", 0), now()).await;
    assert!(
        matches!(outcome, Ok(Outcome::AlreadyLaunched { .. })),
        "{outcome:?}"
    );
    let slots: crate::ledger::Slots = ecs.table.data("slots/capped").unwrap();
    assert!(
        slots.holders.is_empty(),
        "no slot kept for a stopped task: {slots:?}"
    );
    let runs: Vec<String> = ecs
        .table
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("run/"))
        .collect();
    let run: crate::run::Run = ecs.table.data(&runs[0]).unwrap();
    assert_eq!(
        run.state,
        crate::run::RunState::Succeeded,
        "the outcome stays"
    );
}

// --- skip_missing: an event that waited is checked against S3 before it launches ------------

fn skip_missing_config() -> Config {
    let text = format!(
        "{CONFIG}\n[state]\ntable = \"state\"\n[launcher]\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/1/launcher\"\n"
    )
    .replace("max_running = 2\n", "max_running = 2\nskip_missing = true\n");
    Config::parse(&text, Format::Toml).unwrap()
}

fn heads(ecs: &FakeEcs) -> usize {
    ecs.calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.starts_with("HeadObject"))
        .count()
}

#[tokio::test]
async fn skip_missing_ends_a_waited_run_of_a_deleted_object_skipped() {
    let config = skip_missing_config();
    let ecs = FakeEcs::default();
    for minute in [0, 1] {
        let key = format!("capped/run{minute}.jpg");
        assert!(matches!(
            process(&config, &ecs, &object(&key, minute), now()).await,
            Ok(Outcome::Launched { .. })
        ));
    }
    assert_eq!(heads(&ecs), 0, "an event launched at once is not checked");
    let stale = object("capped/deleted.jpg", 2);
    assert!(matches!(
        process(&config, &ecs, &stale, now()).await,
        Ok(Outcome::Waiting { .. })
    ));
    // A slot frees up; the waiting event comes back, but its object was deleted meanwhile.
    let first = crate::token::run_id(&ecs.launched.lock().unwrap()[0].client_token);
    let ledger = crate::ledger::Ledger::new(&ecs, config.state.as_ref().unwrap());
    ledger
        .update(
            "slots/capped",
            None,
            now(),
            |s: &mut Option<crate::ledger::Slots>| s.as_mut().unwrap().release(&first, 1),
        )
        .await
        .unwrap();
    let outcome = process(&config, &ecs, &stale, now()).await.unwrap();
    let Outcome::Skipped { reason } = outcome else {
        panic!("expected skipped, got {outcome:?}");
    };
    assert!(
        reason.contains("s3://uploads/capped/deleted.jpg no longer exists"),
        "{reason}"
    );
    assert_eq!(heads(&ecs), 1);
    assert_eq!(
        ecs.launched.lock().unwrap().len(),
        2,
        "nothing more launched"
    );
    let Event::ObjectCreated(created) = &stale else {
        unreachable!()
    };
    let run_id = crate::token::run_id(&crate::token::for_object("capped", created));
    let run: crate::run::Run = ecs.table.data(&format!("run/{run_id}")).unwrap();
    assert_eq!(run.state, crate::run::RunState::Skipped);
    assert_eq!(run.reason.as_deref(), Some(reason.as_str()));
    let slots: crate::ledger::Slots = ecs.table.data("slots/capped").unwrap();
    assert!(!slots.holders.contains_key(&run_id), "its slot is free");
}

#[tokio::test]
async fn skip_missing_launches_a_waited_run_whose_object_is_still_there() {
    let config = skip_missing_config();
    let ecs = FakeEcs::default();
    for minute in [0, 1] {
        let key = format!("capped/run{minute}.jpg");
        process(&config, &ecs, &object(&key, minute), now())
            .await
            .unwrap();
    }
    let waited = object("capped/kept.jpg", 2);
    process(&config, &ecs, &waited, now()).await.unwrap();
    let first = crate::token::run_id(&ecs.launched.lock().unwrap()[0].client_token);
    let ledger = crate::ledger::Ledger::new(&ecs, config.state.as_ref().unwrap());
    ledger
        .update(
            "slots/capped",
            None,
            now(),
            |s: &mut Option<crate::ledger::Slots>| s.as_mut().unwrap().release(&first, 1),
        )
        .await
        .unwrap();
    assert!(matches!(
        process(&config, &ecs, &waited, now()).await,
        Ok(Outcome::Launched { .. })
    ));
    assert_eq!(heads(&ecs), 1);
}
