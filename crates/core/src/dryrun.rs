//! The dry run behind `jobrunner plan`: the functions' own decision paths ([`crate::launcher`],
//! [`crate::tracker`], [`crate::scaler`]) driven against a [`World`] that answers
//! every read from documented assumptions and carries out no write, with a
//! [`Recorder`] writing every call down. What the plan prints is what the function calls, in
//! order, reads included, given the same answers.
//!
//! The world's answers (see `jobrunner plan --help`): ListTasks finds `running` tasks of the
//! given `startedBy` (none by default), described as RUNNING since a minute ago, for a tick
//! other than the one being planned; RunTask places the task; DescribeTaskDefinition finds every container essential
//! with no `awslogs` settings; GetItem finds nothing (no earlier run or alert, no scaler
//! history) except a capped job's slots, held by the `running` tasks; PutItem writes;
//! SendMessage sends; SQS queues hold `visible` messages (0) and `in_flight` (0); services run
//! their desired count (`service_running`, 0), none of their tasks protected from scale-in; a
//! jobs-mode worker's ListTasks finds `running` tasks, as a job's does; HeadObject finds every
//! object, `object_size` bytes (0) with ETag `"dry-run"`, last modified now.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::action::Action;
use crate::alert::{Publish, TaskDefinitionInfo};
use crate::config::Config;
use crate::error::Error;
use crate::event::{self, Event, Invocation};
use crate::handled::Handled;
use crate::ledger::{Slots, keys, slots::Holder};
use crate::plan::RunTaskInput;
use crate::ports::{
    CallResult, Clock, DescribedTask, ManualClock, ObjectHead, Objects, Put, Queues, Record,
    RunTaskAnswer, Saved, Services, StateTable, TaskDefinitions, Tasks, Topic, WaitQueue,
};
use crate::recording::{Explain, Recorder};
use crate::scaling::{QueueDepth, ServiceCounts, TaskProtection};
use crate::{job_env, launcher, scaler, tracker};

/// Which function's decision path to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Function {
    Launcher,
    Tracker,
    Scaler,
}

impl Function {
    /// The function an event is for: task state changes go to the tracker, everything else
    /// to the launcher (the scaler's tick is an ordinary scheduled event: name it).
    pub fn for_payload(payload: &Value) -> Function {
        let is_stop = |events: &Result<Vec<Event>, Error>| {
            events
                .as_ref()
                .is_ok_and(|e| e.iter().any(|e| matches!(e, Event::TaskStateChange(_))))
        };
        match event::decode_invocation(payload) {
            Ok(Invocation::Direct(events)) if is_stop(&events) => Function::Tracker,
            Ok(Invocation::SqsBatch(messages)) if messages.iter().any(|m| is_stop(&m.events)) => {
                Function::Tracker
            }
            _ => Function::Launcher,
        }
    }
}

/// The assumed state of the account the dry run answers reads from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct World {
    /// Tasks ListTasks finds for each `startedBy`.
    pub running: usize,
    /// Messages visible in each queue.
    pub visible: u64,
    /// Messages in flight in each queue.
    pub in_flight: u64,
    /// Tasks each service runs (its desired count too).
    pub service_running: u32,
    /// The alert topic (from the config).
    pub topic_arn: String,
    /// The state table (from the config).
    pub table: String,
    /// The size HeadObject reports for every object (it always finds the object).
    pub object_size: u64,
}

impl World {
    /// The default world for `config`: nothing running, empty queues, nothing stored.
    pub fn for_config(config: &Config) -> World {
        World {
            topic_arn: config
                .alerts
                .as_ref()
                .map(|a| a.topic_arn.clone())
                .unwrap_or_default(),
            table: config
                .state
                .as_ref()
                .map(|s| s.table.clone())
                .unwrap_or_default(),
            ..World::default()
        }
    }
}

/// What `jobrunner plan` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryRun {
    pub function: Function,
    /// Every call, in order, reads included.
    pub actions: Vec<Action>,
    /// Events that need nothing done, with why.
    pub skipped: Vec<Skipped>,
    /// Events that would fail, with why and what happens to them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<Failed>,
    /// What the function returns to Lambda (or the error it fails with).
    pub response: Value,
    /// For a stop that is retried: what the launcher does with each retry request once it is
    /// due (the next attempt's RunTask: its attempt number, token, size and capacity).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<DryRun>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failed {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub reason: String,
    /// `true`: back to the queue (or Lambda's retry); `false`: to the dead-letter queue after
    /// the retries.
    pub retryable: bool,
}

/// Runs `function`'s decision path on `payload` at `now` against `world`. Input that is not a
/// supported event at all is an error.
pub async fn dry_run(
    config: &Config,
    function: Function,
    payload: &Value,
    now: DateTime<Utc>,
    world: World,
) -> Result<DryRun, Error> {
    let ports = Recorder::new(Dry {
        world,
        clock: ManualClock::new(now),
        written: std::sync::Mutex::default(),
    });
    let mut out = DryRun {
        function,
        actions: vec![],
        skipped: vec![],
        failed: vec![],
        response: Value::Null,
        retries: vec![],
    };
    match function {
        Function::Launcher if launcher::batch::is_batch(payload) => {
            let handled = launcher::batch::handle(config, &ports, payload, now).await?;
            out.fill_batch(handled);
        }
        Function::Launcher => {
            let handled = launcher::handle(config, &ports, payload, now).await?;
            out.fill(handled);
        }
        Function::Tracker => {
            let handled = tracker::handle(config, &ports, payload, now).await?;
            out.fill(handled);
            out.actions = ports.take();
            // Each retry request, delivered when due, to the launcher in the same world (which
            // remembers the run the tracker just wrote).
            let requests: Vec<Value> = out
                .actions
                .iter()
                .filter(|a| a.operation == "SendMessage")
                .filter_map(|a| a.input["MessageBody"].as_str())
                .filter_map(|body| serde_json::from_str::<Value>(body).ok())
                .filter(|doc| doc["source"] == event::retry::SOURCE)
                .collect();
            for request in requests {
                let due = request["not_before"]
                    .as_str()
                    .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                    .unwrap_or(now);
                let mut retry = DryRun {
                    function: Function::Launcher,
                    actions: vec![],
                    skipped: vec![],
                    failed: vec![],
                    response: Value::Null,
                    retries: vec![],
                };
                retry.fill(launcher::handle(config, &ports, &request, due).await?);
                retry.actions = ports.take();
                out.retries.push(retry);
            }
            return Ok(out);
        }
        Function::Scaler => {
            let report = scaler::run_once(config, &ports, payload).await;
            for (worker, report) in &report.workers {
                if let Some(error) = &report.error {
                    out.failed.push(Failed {
                        message_id: None,
                        reason: format!("worker {worker}: {error}"),
                        retryable: true,
                    });
                }
            }
            out.response = match report.into_result() {
                Ok(report) => serde_json::to_value(&report).unwrap_or(Value::Null),
                Err(e) => {
                    json!({"errorType": crate::handled::error_type(&e), "errorMessage": e.to_string()})
                }
            };
        }
    }
    out.actions = ports.take();
    Ok(out)
}

/// [`dry_run`] on the calling thread: the world answers at once, so nothing ever waits.
pub fn dry_run_now(
    config: &Config,
    function: Function,
    payload: &Value,
    now: DateTime<Utc>,
    world: World,
) -> Result<DryRun, Error> {
    pollster::block_on(dry_run(config, function, payload, now, world))
}

impl DryRun {
    /// An S3 Batch Operations invocation's answer: one result per task.
    fn fill_batch(&mut self, handled: launcher::batch::BatchHandled) {
        self.skipped = handled
            .skipped
            .into_iter()
            .map(|reason| Skipped { reason })
            .collect();
        self.failed = handled
            .failed
            .iter()
            .map(|(task_id, error)| Failed {
                message_id: None,
                reason: format!("task {task_id}: {error}"),
                retryable: error.is_retryable(),
            })
            .collect();
        self.response = serde_json::to_value(&handled.response).unwrap_or(Value::Null);
    }

    fn fill<S: Serialize>(&mut self, handled: Handled<S>) {
        self.skipped = handled
            .skipped
            .iter()
            .map(|reason| Skipped {
                reason: reason.clone(),
            })
            .collect();
        self.failed = handled
            .failed
            .iter()
            .map(|f| Failed {
                message_id: f.message_id.clone(),
                reason: f.error.to_string(),
                retryable: f.error.is_retryable(),
            })
            .collect();
        self.response = match handled.into_response() {
            Ok(response) => serde_json::to_value(response).unwrap_or(Value::Null),
            Err(e) => {
                json!({"errorType": crate::handled::error_type(&e), "errorMessage": e.to_string()})
            }
        };
    }
}

/// The world as ports.
#[derive(Debug)]
struct Dry {
    world: World,
    clock: ManualClock,
    /// What this dry run wrote: a later read of the same key finds it, as the function would.
    written: std::sync::Mutex<std::collections::HashMap<String, Record>>,
}

impl Dry {
    fn running_arns(&self, started_by: &str) -> Vec<String> {
        (0..self.world.running)
            .map(|i| format!("arn:aws:ecs:us-east-1:123456789012:task/dry-run/{started_by}/{i}"))
            .collect()
    }

    /// A service's tasks: `service_running` of them.
    fn service_arns(&self, service: &str) -> Vec<String> {
        (0..self.world.service_running)
            .map(|i| format!("arn:aws:ecs:us-east-1:123456789012:task/dry-run/{service}/{i}"))
            .collect()
    }

    /// A capped job's slots: one held by each running task (run ids `dry-run-<i>`).
    fn slots(&self) -> Slots {
        Slots {
            holders: (0..self.world.running)
                .map(|i| {
                    let holder = Holder {
                        attempt: 1,
                        since: self.clock.now(),
                    };
                    (format!("dry-run-{i}"), holder)
                })
                .collect(),
            ..Slots::default()
        }
    }
}

impl Explain for Dry {
    fn assumed(&self, action: &Action) -> Option<Value> {
        match action.operation {
            "ListTasks" if action.input.get("serviceName").is_some() => {
                let service = action.input["serviceName"].as_str().unwrap_or_default();
                Some(json!({"taskArns": self.service_arns(service)}))
            }
            "GetTaskProtection" => Some(
                json!({"protectedTasks": "none protected (a live run reads each task's scale-in protection)"}),
            ),
            "ListTasks" => {
                let started_by = action.input["startedBy"].as_str().unwrap_or_default();
                Some(json!({"taskArns": self.running_arns(started_by)}))
            }
            "DescribeTasks" => Some(
                json!({"tasks": "each RUNNING since a minute ago, started for another tick (change with --running)"}),
            ),
            "DescribeTaskDefinition" => Some(
                json!({"containers": "every container essential, no awslogs settings (a live run links the logs)"}),
            ),
            "GetItem" => {
                let key = action.input["Key"]["pk"]["S"].as_str().unwrap_or_default();
                if self.written.lock().is_ok_and(|w| w.contains_key(key)) {
                    Some(json!({"Item": "as written earlier in this plan"}))
                } else if key.starts_with(keys::SLOTS_PREFIX) && self.world.running > 0 {
                    Some(json!({"Item": format!(
                        "{} slots held by the running tasks (change with --running)",
                        self.world.running
                    )}))
                } else {
                    Some(json!({"Item": null}))
                }
            }
            "HeadObject" => Some(json!({
                "ContentLength": self.world.object_size,
                "ETag": DRY_RUN_ETAG,
                "note": "the object exists (a live run reads its real size and ETag)"})),
            "GetQueueAttributes" => Some(json!({"Attributes": {
                "ApproximateNumberOfMessages": self.world.visible.to_string(),
                "ApproximateNumberOfMessagesNotVisible": self.world.in_flight.to_string(),
                "ApproximateNumberOfMessagesDelayed": "0"}})),
            "DescribeServices" => Some(json!({"services": [{
                "desiredCount": self.world.service_running,
                "runningCount": self.world.service_running,
                "pendingCount": 0}]})),
            _ => None,
        }
    }
}

impl Tasks for Dry {
    async fn list_tasks(&self, _cluster: &str, started_by: &str) -> CallResult<Vec<String>> {
        Ok(self.running_arns(started_by))
    }

    async fn describe_tasks(
        &self,
        _cluster: &str,
        task_arns: &[String],
    ) -> CallResult<Vec<DescribedTask>> {
        Ok(task_arns
            .iter()
            .map(|arn| DescribedTask {
                last_status: "RUNNING".into(),
                desired_status: "RUNNING".into(),
                created_at: Some(self.clock.now() - chrono::Duration::minutes(1)),
                started_at: Some(self.clock.now() - chrono::Duration::minutes(1)),
                task_arn: arn.clone(),
                environment: vec![
                    (job_env::SCHEDULED_TIME.into(), "(an earlier tick)".into()),
                    (
                        job_env::RUN_ID.into(),
                        format!("dry-run-{}", arn.rsplit('/').next().unwrap_or_default()),
                    ),
                ],
            })
            .collect())
    }

    async fn run_task(&self, input: &RunTaskInput) -> CallResult<RunTaskAnswer> {
        Ok(RunTaskAnswer::Response {
            task_arns: vec![format!(
                "arn:aws:ecs:us-east-1:123456789012:task/{}/{}",
                input.cluster,
                &input.client_token[input.client_token.len().saturating_sub(32)..]
            )],
            failures: vec![],
        })
    }

    async fn stop_task(&self, _cluster: &str, _task_arn: &str, _reason: &str) -> CallResult<()> {
        Ok(())
    }
}

impl TaskDefinitions for Dry {
    async fn describe_task_definition(&self, _arn: &str) -> CallResult<TaskDefinitionInfo> {
        Ok(TaskDefinitionInfo::default())
    }
}

impl Topic for Dry {
    fn topic_arn(&self) -> &str {
        &self.world.topic_arn
    }

    async fn publish(&self, _message: &Publish) -> CallResult<String> {
        Ok("dry-run".into())
    }
}

impl StateTable for Dry {
    fn table(&self) -> &str {
        &self.world.table
    }

    async fn get(&self, key: &str) -> CallResult<Option<Record>> {
        if let Some(record) = self.written.lock().ok().and_then(|w| w.get(key).cloned()) {
            return Ok(Some(record));
        }
        if !key.starts_with(keys::SLOTS_PREFIX) || self.world.running == 0 {
            return Ok(None);
        }
        Ok(serde_json::to_string(&self.slots())
            .ok()
            .map(|data| Record { data, version: 1 }))
    }

    async fn put(&self, put: &Put<'_>) -> CallResult<Saved> {
        let version = put.expected.map_or(1, |v| v + 1);
        if let Ok(mut written) = self.written.lock() {
            let record = Record {
                data: put.data.to_string(),
                version,
            };
            written.insert(put.key.to_string(), record);
        }
        Ok(Saved::Written { version })
    }
}

impl WaitQueue for Dry {
    async fn send(&self, _queue_url: &str, _body: &str, _delay_seconds: u32) -> CallResult<()> {
        Ok(())
    }
}

impl Queues for Dry {
    async fn depth(&self, _queue_url: &str) -> CallResult<QueueDepth> {
        Ok(QueueDepth {
            visible: self.world.visible,
            in_flight: self.world.in_flight,
            delayed: 0,
        })
    }
}

impl Services for Dry {
    async fn counts(&self, _cluster: &str, _service: &str) -> CallResult<ServiceCounts> {
        Ok(ServiceCounts {
            desired: self.world.service_running,
            running: self.world.service_running,
            pending: 0,
        })
    }

    async fn set_desired(&self, _cluster: &str, _service: &str, _desired: u32) -> CallResult<()> {
        Ok(())
    }

    async fn service_tasks(&self, _cluster: &str, service: &str) -> CallResult<Vec<String>> {
        Ok(self.service_arns(service))
    }

    async fn task_protection(
        &self,
        _cluster: &str,
        task_arns: &[String],
    ) -> CallResult<Vec<TaskProtection>> {
        Ok(task_arns
            .iter()
            .map(|arn| TaskProtection {
                task_arn: arn.clone(),
                enabled: false,
                expires_at: None,
            })
            .collect())
    }
}

/// The ETag the dry run's HeadObject reports.
const DRY_RUN_ETAG: &str = "\"dry-run\"";

impl Objects for Dry {
    async fn head(
        &self,
        _bucket: &str,
        _key: &str,
        version_id: Option<&str>,
    ) -> CallResult<Option<ObjectHead>> {
        Ok(Some(ObjectHead {
            size: self.world.object_size,
            etag: Some(DRY_RUN_ETAG.into()),
            version_id: version_id.map(str::to_owned),
            last_modified: Some(self.clock.now()),
        }))
    }
}

impl Clock for Dry {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn sleep(&self, duration: Duration) -> impl std::future::Future<Output = ()> + Send {
        self.clock.sleep(duration)
    }
}

#[cfg(test)]
mod tests;
