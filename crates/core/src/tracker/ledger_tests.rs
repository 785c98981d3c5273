//! The tracker's ledger work with an in-memory table: every state change moves the run
//! forward once, a stop frees the slot, a cancelled run is not alerted, and the sweep finds
//! ticks that produced no run.

use std::sync::Mutex;

use serde_json::{Value, json};

use super::*;
use crate::alert::{Publish, TaskDefinitionInfo};
use crate::config::Format;
use crate::ledger::tests::MemoryTable;
use crate::ledger::{Ledger, ScheduleWatch, Slots};
use crate::plan::RunTaskInput;
use crate::ports::{CallResult, DescribedTask, Record, RunTaskAnswer, Saved};
use crate::run::{Run, RunState};

#[derive(Default)]
struct Ports {
    table: MemoryTable,
    published: Mutex<Vec<Publish>>,
    /// What ListTasks/DescribeTasks report for every `startedBy`.
    running: Vec<DescribedTask>,
    /// StopTask calls: (task ARN, reason).
    stopped: Mutex<Vec<(String, String)>>,
    /// Retry requests sent: (queue URL, body, delay).
    sent: Mutex<Vec<(String, String, u32)>>,
}

impl crate::ports::WaitQueue for Ports {
    async fn send(&self, queue_url: &str, body: &str, delay_seconds: u32) -> CallResult<()> {
        self.sent
            .lock()
            .unwrap()
            .push((queue_url.into(), body.into(), delay_seconds));
        Ok(())
    }
}

impl Tasks for Ports {
    async fn list_tasks(&self, _cluster: &str, started_by: &str) -> CallResult<Vec<String>> {
        Ok(self
            .running
            .iter()
            .filter(|_| started_by == "jobrunner/thumbnails")
            .map(|t| t.task_arn.clone())
            .collect())
    }
    async fn describe_tasks(
        &self,
        _cluster: &str,
        task_arns: &[String],
    ) -> CallResult<Vec<DescribedTask>> {
        Ok(self
            .running
            .iter()
            .filter(|t| task_arns.contains(&t.task_arn))
            .cloned()
            .collect())
    }
    async fn run_task(&self, _input: &RunTaskInput) -> CallResult<RunTaskAnswer> {
        unreachable!("the tracker never launches")
    }
    async fn stop_task(&self, _cluster: &str, task_arn: &str, reason: &str) -> CallResult<()> {
        self.stopped
            .lock()
            .unwrap()
            .push((task_arn.into(), reason.into()));
        Ok(())
    }
}

impl TaskDefinitions for Ports {
    async fn describe_task_definition(&self, _arn: &str) -> CallResult<TaskDefinitionInfo> {
        Ok(TaskDefinitionInfo::default())
    }
}

impl Topic for Ports {
    fn topic_arn(&self) -> &str {
        "arn:aws:sns:us-east-1:123456789012:alerts"
    }
    async fn publish(&self, message: &Publish) -> CallResult<String> {
        self.published.lock().unwrap().push(message.clone());
        Ok("m".into())
    }
}

impl StateTable for Ports {
    fn table(&self) -> &str {
        "state"
    }
    async fn get(&self, key: &str) -> CallResult<Option<Record>> {
        self.table.get(key).await
    }
    async fn put(&self, put: &Put<'_>) -> CallResult<Saved> {
        self.table.put(put).await
    }
}

const RUN_ID: &str = "0f6b1c2d3e4f5a6b7c8d";

fn config() -> Config {
    Config::parse(
        r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]
[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
max_running = 3
[jobs.report]
task_definition = "report"
container = "app"
[[triggers.schedule]]
name = "hourly"
job = "report"
expression = "rate(1 hour)"
[alerts]
topic_arn = "arn:aws:sns:us-east-1:123456789012:alerts"
[state]
table = "state"
"#,
        Format::Toml,
    )
    .unwrap()
}

fn now() -> DateTime<Utc> {
    "2024-05-01T10:05:00Z".parse().unwrap()
}

fn running() -> Value {
    jobrunner_testkit::sample("ecs-task-running")
}

fn stopped() -> Value {
    jobrunner_testkit::sample("ecs-task-stopped-non-zero-exit")
}

async fn hold_slot(ports: &Ports) {
    let config = config();
    Ledger::new(ports, config.state.as_ref().unwrap())
        .update("slots/thumbnails", None, now(), |s: &mut Option<Slots>| {
            s.get_or_insert_with(Slots::default)
                .acquire(RUN_ID, 1, now(), 3, now());
            true
        })
        .await
        .unwrap();
}

fn run_of(ports: &Ports) -> Run {
    ports.table.data(&format!("run/{RUN_ID}")).unwrap()
}

#[tokio::test]
async fn running_then_stopped_records_the_run_and_frees_its_slot() {
    let (config, ports) = (config(), Ports::default());
    hold_slot(&ports).await;
    let handled = handle(&config, &ports, &running(), now()).await.unwrap();
    assert_eq!(handled.summary.recorded, 1);
    let run = run_of(&ports);
    assert_eq!(run.state, RunState::Running);
    assert_eq!(run.job, "thumbnails");
    assert_eq!(
        run.input.describe(),
        "s3://uploads/images/2024/05/01/cat photo.jpg"
    );
    let slots: Slots = ports.table.data("slots/thumbnails").unwrap();
    assert_eq!(slots.holders.len(), 1, "RUNNING keeps the slot");
    assert!(ports.published.lock().unwrap().is_empty());

    handle(&config, &ports, &stopped(), now()).await.unwrap();
    let run = run_of(&ports);
    assert_eq!(run.state, RunState::Failed);
    let attempt = run.last_attempt().unwrap();
    assert_eq!(attempt.class, Some(Class::NonZeroExit));
    assert!(attempt.cost.is_some());
    assert!(attempt.log_url.as_deref().unwrap().starts_with("https://"));
    let slots: Slots = ports.table.data("slots/thumbnails").unwrap();
    assert!(slots.holders.is_empty(), "STOPPED frees the slot");
    assert_eq!(
        ports.published.lock().unwrap().len(),
        1,
        "and alerts as before"
    );
}

#[tokio::test]
async fn a_late_running_after_the_stop_changes_nothing() {
    let (config, ports) = (config(), Ports::default());
    handle(&config, &ports, &stopped(), now()).await.unwrap();
    let before = run_of(&ports);
    let handled = handle(&config, &ports, &running(), now()).await.unwrap();
    assert_eq!(run_of(&ports), before);
    assert_eq!(handled.summary.recorded, 0, "seen, but not taken");
    assert_eq!(before.state, RunState::Failed);
    // Redelivered stop: no second alert, the run unchanged.
    handle(&config, &ports, &stopped(), now()).await.unwrap();
    assert_eq!(run_of(&ports), before);
    assert_eq!(ports.published.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_cancelled_run_is_not_alerted() {
    let (config, ports) = (config(), Ports::default());
    let mut stop = stopped();
    stop["detail"]["stopCode"] = json!("UserInitiated");
    stop["detail"]["stoppedReason"] =
        json!("jobrunner: cancelled by arn:aws:iam::123456789012:user/ops");
    let handled = handle(&config, &ports, &stop, now()).await.unwrap();
    assert!(ports.published.lock().unwrap().is_empty());
    assert!(handled.skipped.iter().any(|s| s.contains("cancelled")));
    assert_eq!(run_of(&ports).state, RunState::Cancelled);
}

fn sweep_tick(at: &str) -> Value {
    json!({"version": "0", "id": "t", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": at, "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/jobrunner-sweep"], "detail": {}})
}

#[tokio::test]
async fn the_sweep_reports_a_tick_that_never_came_once() {
    let (config, ports) = (config(), Ports::default());
    let t0: DateTime<Utc> = "2024-05-01T10:00:00Z".parse().unwrap();
    // The first sweep starts watching: nothing before it counts.
    let handled = handle(&config, &ports, &sweep_tick("2024-05-01T10:00:00Z"), t0)
        .await
        .unwrap();
    assert_eq!(handled.summary.sweep.as_ref().unwrap().schedules_checked, 1);
    assert!(ports.published.lock().unwrap().is_empty());
    // A tick arrives at 11:00 (the launcher notes it).
    Ledger::new(&ports, config.state.as_ref().unwrap())
        .update(
            "schedule/hourly",
            None,
            t0,
            |w: &mut Option<ScheduleWatch>| {
                w.as_mut().unwrap().last_tick = Some(t0 + chrono::Duration::hours(1));
                true
            },
        )
        .await
        .unwrap();
    // 12:05: the 12:00 tick is not yet late (10 minutes of grace).
    let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
    handle(
        &config,
        &ports,
        &sweep_tick("2024-05-01T12:00:00Z"),
        at("2024-05-01T12:05:00Z"),
    )
    .await
    .unwrap();
    assert!(ports.published.lock().unwrap().is_empty());
    // 12:11: it is.
    let handled = handle(
        &config,
        &ports,
        &sweep_tick("2024-05-01T12:00:00Z"),
        at("2024-05-01T12:11:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(handled.summary.sweep.unwrap().missed_ticks, 1);
    let published = ports.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].attributes["class"], "missed_schedule");
    assert!(
        published[0]
            .body("email")
            .unwrap()
            .contains("hourly@2024-05-01T12:00:00Z")
    );
    // The next sweep does not report it again.
    handle(
        &config,
        &ports,
        &sweep_tick("2024-05-01T12:00:00Z"),
        at("2024-05-01T12:12:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(ports.published.lock().unwrap().len(), 1);
}

fn limited_config() -> Config {
    let text = r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]
max_runtime = "30m"
[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
start_timeout = "10m"
[state]
table = "state"
"#;
    Config::parse(text, Format::Toml).unwrap()
}

#[tokio::test]
async fn a_state_change_of_an_overdue_task_stops_it() {
    let ports = Ports::default();
    // RUNNING since 10:00:22.918; max_runtime 30m from [defaults].
    let at = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
    let handled = handle(
        &limited_config(),
        &ports,
        &running(),
        at("2024-05-01T10:30:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(handled.summary.timeouts, 0);
    assert!(ports.stopped.lock().unwrap().is_empty());
    let handled = handle(
        &limited_config(),
        &ports,
        &running(),
        at("2024-05-01T10:30:23Z"),
    )
    .await
    .unwrap();
    assert_eq!(handled.summary.timeouts, 1);
    let stopped = ports.stopped.lock().unwrap();
    assert_eq!(
        stopped[0],
        (
            "arn:aws:ecs:us-east-1:123456789012:task/jobs/b5689851c2c27b092735cf18202df303"
                .to_string(),
            "jobrunner: timeout after 30m (max_runtime)".to_string()
        )
    );
}

#[tokio::test]
async fn the_sweep_stops_overdue_tasks_that_send_no_event() {
    let at = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
    let task = |arn: &str, status: &str, created: &str, started: Option<&str>| DescribedTask {
        task_arn: arn.into(),
        last_status: status.into(),
        desired_status: "RUNNING".into(),
        created_at: Some(at(created)),
        started_at: started.map(at),
        ..DescribedTask::default()
    };
    let ports = Ports {
        running: vec![
            task("stuck", "PENDING", "2024-05-01T10:00:00Z", None),
            task("fresh", "PENDING", "2024-05-01T10:08:00Z", None),
            task(
                "long",
                "RUNNING",
                "2024-05-01T09:00:00Z",
                Some("2024-05-01T09:01:00Z"),
            ),
            task(
                "short",
                "RUNNING",
                "2024-05-01T10:00:00Z",
                Some("2024-05-01T10:01:00Z"),
            ),
        ],
        ..Ports::default()
    };
    let handled = handle(
        &limited_config(),
        &ports,
        &sweep_tick("2024-05-01T10:10:00Z"),
        at("2024-05-01T10:10:30Z"),
    )
    .await
    .unwrap();
    assert_eq!(handled.summary.sweep.unwrap().overdue_stopped, 2);
    let stopped = ports.stopped.lock().unwrap();
    assert_eq!(
        *stopped,
        [
            (
                "stuck".to_string(),
                "jobrunner: timeout after 10m (start_timeout)".to_string()
            ),
            (
                "long".to_string(),
                "jobrunner: timeout after 30m (max_runtime)".to_string()
            ),
        ]
    );
}

fn retry_config() -> Config {
    Config::parse(
        r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]
[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
[jobs.thumbnails.retry]
attempts = 3
backoff = "30s"
grow_on_oom = true
[alerts]
topic_arn = "arn:aws:sns:us-east-1:123456789012:alerts"
[state]
table = "state"
[launcher]
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/launcher"
"#,
        Format::Toml,
    )
    .unwrap()
}

fn stop_of_attempt(attempt: u32) -> Value {
    let mut stop = stopped();
    let env = stop["detail"]["overrides"]["containerOverrides"][0]["environment"]
        .as_array_mut()
        .unwrap();
    for kv in env.iter_mut() {
        if kv["name"] == "JOB_ATTEMPT" {
            kv["value"] = json!(attempt.to_string());
        }
    }
    stop["detail"]["taskArn"] = json!(format!(
        "arn:aws:ecs:us-east-1:123456789012:task/jobs/{attempt:032x}"
    ));
    stop
}

#[tokio::test]
async fn a_retried_failure_plans_the_next_attempt_and_is_not_alerted() {
    let (config, ports) = (retry_config(), Ports::default());
    let handled = handle(&config, &ports, &stop_of_attempt(1), now())
        .await
        .unwrap();
    assert_eq!(handled.summary.retries, 1);
    assert!(
        ports.published.lock().unwrap().is_empty(),
        "a retried failure is not alerted"
    );
    let run = run_of(&ports);
    assert_eq!(run.state, RunState::Waiting);
    let planned = run.last_attempt().unwrap();
    assert_eq!(planned.number, 2);
    assert!(planned.is_planned());
    let due = planned.due_at.unwrap();
    assert!(
        due > now() && due <= now() + chrono::Duration::seconds(30),
        "{due}"
    );
    let sent = ports.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let (queue, body, delay) = &sent[0];
    assert!(queue.ends_with("/launcher"));
    assert!((24..=30).contains(delay), "{delay}");
    let request: Value = serde_json::from_str(body).unwrap();
    assert_eq!(request["source"], "jobrunner.retry");
    assert_eq!(request["run_id"], RUN_ID);
    assert_eq!(request["attempt"], 2);
    // The same stop again (a redelivery): the same attempt is requested again, nothing new planned.
    handle(&config, &ports, &stop_of_attempt(1), now())
        .await
        .unwrap();
    assert_eq!(run_of(&ports).attempts.len(), 2);
    let sent = ports.sent.lock().unwrap();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].1, sent[0].1, "the same request");
    assert!(ports.published.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_last_attempt_fails_for_good_with_its_history_in_the_alert() {
    let (config, ports) = (retry_config(), Ports::default());
    for attempt in 1..=3 {
        handle(&config, &ports, &stop_of_attempt(attempt), now())
            .await
            .unwrap();
    }
    let run = run_of(&ports);
    assert_eq!(run.state, RunState::Failed);
    assert_eq!(run.attempts.len(), 3);
    assert_eq!(ports.sent.lock().unwrap().len(), 2, "two retries requested");
    let published = ports.published.lock().unwrap();
    assert_eq!(published.len(), 1, "only the final failure is alerted");
    let text = published[0].body("email").unwrap();
    assert!(text.contains("failed after 3 attempts"), "{text}");
    assert!(text.contains("#1 non_zero_exit exit 1"), "{text}");
    let document = crate::alert::parse_document(&published[0]).unwrap();
    assert_eq!(
        document["tasks"][0]["attempts"].as_array().unwrap().len(),
        4
    );
}

#[tokio::test]
async fn an_oom_is_retried_with_double_the_memory() {
    let (config, ports) = (retry_config(), Ports::default());
    let mut oom = stop_of_attempt(1);
    oom["detail"]["containers"][0]["exitCode"] = json!(137);
    oom["detail"]["containers"][0]["reason"] =
        json!("OutOfMemoryError: Container killed due to memory usage");
    handle(&config, &ports, &oom, now()).await.unwrap();
    let planned = run_of(&ports).last_attempt().unwrap().clone();
    assert_eq!((planned.cpu, planned.memory), (Some(512), Some(2048)));
    assert!(planned.why.unwrap().starts_with("oom:"));
}

#[tokio::test]
async fn a_stop_without_jobrunners_variables_is_alerted_and_never_retried() {
    let (config, ports) = (retry_config(), Ports::default());
    let mut stop = stop_of_attempt(1);
    // Overrides tampered with: no run id, a nonsense attempt.
    let env = stop["detail"]["overrides"]["containerOverrides"][0]["environment"]
        .as_array_mut()
        .unwrap();
    env.retain(|kv| kv["name"] != "JOB_RUN_ID");
    for kv in env.iter_mut() {
        if kv["name"] == "JOB_ATTEMPT" {
            kv["value"] = json!("-3");
        }
    }
    let handled = handle(&config, &ports, &stop, now()).await.unwrap();
    assert_eq!(handled.summary.retries, 0);
    assert!(ports.sent.lock().unwrap().is_empty(), "never retried");
    assert_eq!(
        ports.published.lock().unwrap().len(),
        1,
        "alerted as before"
    );
    assert!(ports.table.keys().iter().all(|k| !k.starts_with("run/")));
}
