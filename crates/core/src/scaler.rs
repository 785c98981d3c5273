//! The scaler function's decision path: keeps each worker's tasks matched to its SQS backlog,
//! through the ports: a service's `desiredCount` (`mode = "service"`), or standalone tasks
//! launched per backlog (`mode = "jobs"`, see [`crate::scaling::jobs`]). The scaler Lambda
//! drives it with the AWS adapters; `jobrunner plan --function scaler` drives the very same code
//! with the dry run's recorded world.
//!
//! Every invocation (an EventBridge schedule, once a minute) handles every configured worker:
//! it reads the queue (GetQueueAttributes) and the service (DescribeServices), with the
//! worker's stored state on its first sample (GetItem). The reads do not depend on each other,
//! so they go out together: one round trip observes all, and the queue and the service are
//! seen at the same moment. It decides with [`jobrunner_core::scaling::decide`], saves the
//! decision's history to the state table with a conditional write, and calls UpdateService
//! only when the count changes. Workers with
//! `sample_every_seconds` are sampled again within the invocation until just before the next
//! minute, so reaction time is not bound to the one-minute schedule.
//!
//! Before lowering a service's count it reads which of the service's tasks hold scale-in
//! protection (ListTasks by serviceName, GetTaskProtection per 10 tasks) and never goes below
//! them ([`crate::scaling::respect_protection`]).
//!
//! A jobs-mode worker is sampled the same way: it reads the queue and lists the worker's tasks
//! (ListTasks by `startedBy jobrunner/worker/<name>`) together, decides with
//! [`crate::scaling::decide_jobs`], saves its state with the same conditional write (so two
//! invocations never both launch), then starts the tasks with RunTask (deterministic client
//! tokens per decision; a capacity failure falls back to the next provider of `capacity`).
//!
//! A failure on one worker does not stop the others; the [`Report`] names the workers that
//! failed. Every decision is one `tracing` line and one EMF metrics document ([`metrics`]),
//! collected in the report for the function to print.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Config, LaunchSettings, Worker, WorkerMode};
use crate::ports::{
    CallError, CallResult, Clock, Put, Queues, Record, RunTaskAnswer, Saved, Services, StateTable,
    Tasks,
};
use crate::scaling::jobs::{self, JobsDecision};
use crate::scaling::metrics;
use crate::scaling::{
    Decision, Direction, History, Observation, decide, decide_jobs, protected_count, protection,
    respect_protection,
};

/// The ports the scaler needs (Tasks for jobs mode's ListTasks and RunTask).
pub trait ScalerPorts: Queues + Services + Tasks + StateTable + Clock {}
impl<T: Queues + Services + Tasks + StateTable + Clock> ScalerPorts for T {}

/// The last sample of an invocation is taken at least this long before the next minute's
/// invocation (and before the Lambda's own deadline).
pub const SAMPLING_GUARD: Duration = Duration::from_secs(5);

/// The schedule the scaler runs on.
pub const TICK: Duration = Duration::from_secs(60);

/// State items live at least this long after their last write (DynamoDB TTL on `expires_at`).
pub const STATE_TTL: Duration = Duration::from_secs(24 * 3600);

/// What a worker's GetItem, when one is under way, found ([`from_record`]): `get` is created
/// by the caller, so it is sent (and recorded) before the reads it goes out with.
async fn stored(
    name: &str,
    get: Option<impl Future<Output = CallResult<Option<Record>>>>,
) -> CallResult<Option<(WorkerState, Option<u64>)>> {
    Ok(match get {
        Some(get) => Some(from_record(name, get.await?)),
        None => None,
    })
}

/// The stored state and its version; a missing or unreadable item starts afresh (which only
/// delays scale-in by one window).
fn from_record(name: &str, record: Option<Record>) -> (WorkerState, Option<u64>) {
    match record {
        None => (WorkerState::default(), None),
        Some(record) => match serde_json::from_str(&record.data) {
            Ok(state) => (state, Some(record.version)),
            Err(e) => {
                tracing::warn!(worker = name, error = %e, "unreadable scaler state; starting afresh");
                (WorkerState::default(), Some(record.version))
            }
        },
    }
}

/// The state table key of a worker.
pub fn state_key(worker: &str) -> String {
    format!("scaler#{worker}")
}

/// What the scaler keeps per worker in the state table (the item's `data`, as JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerState {
    /// The recommendation history [`decide`] needs back.
    #[serde(default)]
    pub history: History,
    /// The last change of the desired count the scaler decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_action: Option<LastAction>,
}

/// One change of a service's desired count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastAction {
    pub at: DateTime<Utc>,
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

/// What one invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Per worker, in name order.
    pub workers: BTreeMap<String, WorkerReport>,
    /// Names of the workers that failed (their `error` says why).
    pub failed: Vec<String>,
    /// The EMF metrics documents of this invocation, in order, for the function to print.
    #[serde(skip)]
    pub metrics: Vec<Value>,
}

/// What one invocation did for one worker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerReport {
    pub samples: Vec<SampleReport>,
    /// Samples skipped because another invocation wrote the worker's state first.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub conflicts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One sample: what was observed and decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleReport {
    pub at: DateTime<Utc>,
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
    pub running: u32,
    pub pending: u32,
    /// Messages counted (visible + in flight, + delayed with `count_delayed`).
    pub backlog: u64,
    /// Tasks the backlog needs, before bounds and stabilization.
    pub recommended: u32,
    pub previous: u32,
    pub desired: u32,
    pub direction: Direction,
    pub reason: String,
    /// Whether UpdateService was called.
    pub updated: bool,
    /// Service mode: the tasks holding scale-in protection, when read (before a scale-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<u32>,
    /// Jobs mode: the tasks RunTask started (or had started for this decision before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub launched: Vec<String>,
}

impl SampleReport {
    fn new(at: DateTime<Utc>, o: &Observation, d: &Decision) -> Self {
        SampleReport {
            at,
            visible: o.visible,
            in_flight: o.in_flight,
            delayed: o.delayed,
            running: o.running,
            pending: o.pending,
            backlog: d.backlog,
            recommended: d.recommended,
            previous: d.previous,
            desired: d.desired,
            direction: d.direction,
            reason: d.reason.clone(),
            updated: d.changed(),
            protected: d.protected,
            launched: vec![],
        }
    }

    /// A jobs-mode sample: `running` counts the worker's listed tasks (pending ones included),
    /// `previous` is that count and `desired` what it becomes with the launches asked for.
    fn jobs(at: DateTime<Utc>, d: &JobsDecision, launched: Vec<String>) -> Self {
        SampleReport {
            at,
            visible: 0,
            in_flight: 0,
            delayed: 0,
            running: d.live,
            pending: 0,
            backlog: d.backlog,
            recommended: d.recommended,
            previous: d.live,
            desired: d.target(),
            direction: d.direction,
            reason: d.reason.clone(),
            updated: false,
            protected: None,
            launched,
        }
    }
}

impl Report {
    /// The report, or an error when every worker failed (a partial failure is a success).
    pub fn into_result(self) -> Result<Report, crate::Error> {
        if !self.failed.is_empty() && self.failed.len() == self.workers.len() {
            let name = &self.failed[0];
            let error = self.workers[name].error.as_deref().unwrap_or("failed");
            return Err(crate::Error::AllWorkersFailed {
                failed: self.failed.clone(),
                first: format!("{name}: {error}"),
            });
        }
        Ok(self)
    }
}

/// The scaler: the workers to keep matched, and the ports it does that through.
#[derive(Debug)]
pub struct Scaler<'a, P> {
    pub workers: &'a BTreeMap<String, Worker>,
    pub ports: &'a P,
    /// `[defaults]`: jobs-mode workers launch with them where they are silent.
    pub defaults: Option<&'a LaunchSettings>,
}

/// Where one worker stands within an invocation.
struct Slot<'a> {
    name: &'a str,
    worker: &'a Worker,
    next: DateTime<Utc>,
    loaded: Option<(WorkerState, Option<u64>)>,
    report: WorkerReport,
}

impl<'a, P: ScalerPorts> Scaler<'a, P> {
    pub fn new(workers: &'a BTreeMap<String, Worker>, ports: &'a P) -> Self {
        Scaler {
            workers,
            ports,
            defaults: None,
        }
    }

    /// The scaler of every worker of `config`, with its `[defaults]`.
    pub fn for_config(config: &'a Config, ports: &'a P) -> Self {
        Scaler {
            workers: &config.workers,
            ports,
            defaults: Some(&config.defaults),
        }
    }

    /// Handles every worker once, then again every `sample_every_seconds` (for the workers
    /// that set it) while the next sample is due no later than `deadline`.
    pub async fn run(&self, deadline: DateTime<Utc>) -> Report {
        let start = self.ports.now();
        let mut slots: Vec<Slot<'_>> = self
            .workers
            .iter()
            .map(|(name, worker)| Slot {
                name,
                worker,
                next: start,
                loaded: None,
                report: WorkerReport::default(),
            })
            .collect();
        let mut active: Vec<usize> = (0..slots.len()).collect();
        let mut documents = vec![];
        while let Some(position) =
            (0..active.len()).min_by_key(|&i| (slots[active[i]].next, active[i]))
        {
            let slot = &mut slots[active[position]];
            let now = self.ports.now();
            if let Ok(wait) = (slot.next - now).to_std() {
                self.ports.sleep(wait).await;
            }
            let mut done = match self.sample(slot, &mut documents).await {
                Ok(()) => false,
                Err(e) => {
                    let message = e.to_string();
                    tracing::error!(worker = slot.name, error = %message, "scaling failed");
                    documents.push(metrics::error(slot.name, &message, self.ports.now()));
                    slot.report.error = Some(message);
                    true
                }
            };
            match slot.worker.sample_every_seconds {
                Some(every) if !done => {
                    slot.next += chrono::Duration::seconds(i64::from(every.max(1)));
                    done = slot.next > deadline;
                }
                _ => done = true,
            }
            if done {
                active.swap_remove(position);
            }
        }
        let mut report = Report {
            metrics: documents,
            ..Report::default()
        };
        for slot in slots {
            if slot.report.error.is_some() {
                report.failed.push(slot.name.to_string());
            }
            report.workers.insert(slot.name.to_string(), slot.report);
        }
        report
    }

    /// One sample of one worker: observe, decide, save, act.
    async fn sample(
        &self,
        slot: &mut Slot<'_>,
        documents: &mut Vec<Value>,
    ) -> Result<(), CallError> {
        let (name, worker) = (slot.name, slot.worker);
        if worker.mode == WorkerMode::Jobs {
            return self.sample_jobs(slot, documents).await;
        }
        let key = state_key(name);
        let get = slot.loaded.is_none().then(|| self.ports.get(&key));
        let (stored, queue, service) = futures::try_join!(
            stored(name, get),
            self.ports.depth(&worker.queue_url),
            self.ports.counts(&worker.cluster, &worker.service),
        )?;
        if stored.is_some() {
            slot.loaded = stored;
        }
        let observation = Observation::new(queue, service);
        let now = self.ports.now();
        let Some((state, version)) = slot.loaded.as_ref() else {
            return Ok(());
        };
        let mut decision = decide(worker, &observation, &state.history, now);
        if decision.direction == Direction::In {
            let protected = self.protected(worker, now).await?;
            decision = respect_protection(decision, protected);
        }

        let mut next = WorkerState {
            history: decision.history.clone(),
            last_action: state.last_action.clone(),
        };
        if decision.changed() {
            next.last_action = Some(LastAction {
                at: now,
                from: decision.previous,
                to: decision.desired,
                reason: decision.reason.clone(),
            });
        }
        let data = serde_json::to_string(&next).unwrap_or_default();
        let ttl = chrono::Duration::seconds(STATE_TTL.as_secs() as i64).max(
            chrono::Duration::seconds(2 * i64::from(worker.scale_in_after_seconds)),
        );
        let put = Put {
            key: &key,
            data: &data,
            expected: *version,
            expires_at: now + ttl,
            now,
            listing: None,
        };
        match self.ports.put(&put).await? {
            Saved::Written { version } => slot.loaded = Some((next, Some(version))),
            Saved::Conflict => {
                // Another invocation handled this worker meanwhile: take its state, skip this sample.
                tracing::warn!(
                    worker = name,
                    "state changed by another invocation; sample skipped"
                );
                slot.report.conflicts += 1;
                slot.loaded = Some(self.load(name, &key).await?);
                return Ok(());
            }
        }
        if decision.changed() {
            self.ports
                .set_desired(&worker.cluster, &worker.service, decision.desired)
                .await?;
        }
        tracing::info!(
            worker = name,
            cluster = %worker.cluster,
            service = %worker.service,
            visible = observation.visible,
            in_flight = observation.in_flight,
            delayed = observation.delayed,
            running = observation.running,
            pending = observation.pending,
            backlog = decision.backlog,
            previous = decision.previous,
            desired = decision.desired,
            protected = decision.protected,
            decision = decision.direction.as_str(),
            reason = %decision.reason,
            "scaling decision"
        );
        documents.push(metrics::decision(name, &observation, &decision, now));
        slot.report
            .samples
            .push(SampleReport::new(now, &observation, &decision));
        Ok(())
    }

    /// How many of the service's tasks hold scale-in protection at `now`.
    async fn protected(&self, worker: &Worker, now: DateTime<Utc>) -> Result<u32, CallError> {
        let arns = self
            .ports
            .service_tasks(&worker.cluster, &worker.service)
            .await?;
        let mut protections = Vec::with_capacity(arns.len());
        for chunk in arns.chunks(protection::MAX_PER_CALL) {
            protections.extend(self.ports.task_protection(&worker.cluster, chunk).await?);
        }
        Ok(protected_count(&protections, now))
    }

    /// One sample of a jobs-mode worker: observe (queue, the worker's tasks), decide, save,
    /// launch.
    async fn sample_jobs(
        &self,
        slot: &mut Slot<'_>,
        documents: &mut Vec<Value>,
    ) -> Result<(), CallError> {
        let (name, worker) = (slot.name, slot.worker);
        let (key, started_by) = (state_key(name), jobs::started_by(name));
        let get = slot.loaded.is_none().then(|| self.ports.get(&key));
        let (stored, queue, live) = futures::try_join!(
            stored(name, get),
            self.ports.depth(&worker.queue_url),
            self.ports.list_tasks(&worker.cluster, &started_by),
        )?;
        if stored.is_some() {
            slot.loaded = stored;
        }
        let live = u32::try_from(live.len()).unwrap_or(u32::MAX);
        let now = self.ports.now();
        let Some((state, version)) = slot.loaded.as_ref() else {
            return Ok(());
        };
        let decision = decide_jobs(worker, &queue, live, now);
        let mut next = WorkerState {
            history: History::default(),
            last_action: state.last_action.clone(),
        };
        if decision.launch > 0 {
            next.last_action = Some(LastAction {
                at: now,
                from: decision.live,
                to: decision.target(),
                reason: decision.reason.clone(),
            });
        }
        let data = serde_json::to_string(&next).unwrap_or_default();
        let put = Put {
            key: &key,
            data: &data,
            expected: *version,
            expires_at: now + chrono::Duration::seconds(STATE_TTL.as_secs() as i64),
            now,
            listing: None,
        };
        match self.ports.put(&put).await? {
            Saved::Written { version } => slot.loaded = Some((next, Some(version))),
            Saved::Conflict => {
                tracing::warn!(
                    worker = name,
                    "state changed by another invocation; sample skipped"
                );
                slot.report.conflicts += 1;
                slot.loaded = Some(self.load(name, &key).await?);
                return Ok(());
            }
        }
        let empty = LaunchSettings::default();
        let defaults = self.defaults.unwrap_or(&empty);
        let mut launched = Vec::new();
        let mut failures = Vec::new();
        let mut short = 0u32;
        for input in jobs::launches(name, worker, defaults, &decision) {
            let mut call = Some(input);
            while let Some(input) = call.take() {
                match self.ports.run_task(&input).await? {
                    // The token was used with another count: this slot's decision was already
                    // carried out (a redelivery); those tasks are the ones it started.
                    RunTaskAnswer::Conflict { task_arns } => launched.extend(task_arns),
                    RunTaskAnswer::Response {
                        task_arns,
                        failures: failed,
                    } => {
                        let missing = u32::try_from(input.count)
                            .unwrap_or(0)
                            .saturating_sub(u32::try_from(task_arns.len()).unwrap_or(u32::MAX));
                        launched.extend(task_arns);
                        if missing > 0 {
                            failures.extend(failed.into_iter().map(|f| match f.detail {
                                Some(detail) => format!("{}: {detail}", f.reason),
                                None => f.reason,
                            }));
                            call = jobs::fallback(worker, defaults, &input, missing);
                            if call.is_none() {
                                short += missing;
                            }
                        }
                    }
                }
            }
        }
        tracing::info!(
            worker = name,
            cluster = %worker.cluster,
            mode = "jobs",
            visible = queue.visible,
            in_flight = queue.in_flight,
            delayed = queue.delayed,
            live = decision.live,
            backlog = decision.backlog,
            launch = decision.launch,
            launched = launched.len(),
            decision = decision.direction.as_str(),
            reason = %decision.reason,
            "scaling decision"
        );
        documents.push(metrics::jobs(name, &queue, &decision, launched.len(), now));
        let mut report = SampleReport::jobs(now, &decision, launched);
        report.visible = queue.visible;
        report.in_flight = queue.in_flight;
        report.delayed = queue.delayed;
        report.updated = !report.launched.is_empty();
        slot.report.samples.push(report);
        if short > 0 {
            // Capacity ran out on every provider: the next sample asks again.
            return Err(CallError::Rejected {
                operation: "RunTask",
                message: format!(
                    "{short} of {} tasks not started: {}",
                    decision.launch,
                    failures.join("; ")
                ),
            });
        }
        Ok(())
    }

    /// The stored state and its version ([`from_record`]).
    async fn load(&self, name: &str, key: &str) -> Result<(WorkerState, Option<u64>), CallError> {
        Ok(from_record(name, self.ports.get(key).await?))
    }

    /// One scheduled invocation: samples until the deadline [`sampling_deadline`] gives
    /// for the event's `time` and the Lambda's own deadline (when known).
    pub async fn handle(&self, payload: &Value, lambda_deadline: Option<DateTime<Utc>>) -> Report {
        let started = self.ports.now();
        let event_time = payload
            .get("time")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<DateTime<Utc>>().ok());
        let deadline = sampling_deadline(started, event_time, lambda_deadline);
        let report = self.run(deadline).await;
        if !report.failed.is_empty() {
            tracing::error!(failed = ?report.failed, "some workers failed");
        }
        report
    }
}

/// One invocation for the workers of `config` (the dry run's entry point).
pub async fn run_once(config: &Config, ports: &impl ScalerPorts, payload: &Value) -> Report {
    Scaler::for_config(config, ports)
        .handle(payload, None)
        .await
}

/// The latest time a sample may be taken in an invocation that started at `started`: just
/// before the next minute's invocation (counted from the scheduled `event_time` when it is
/// plausible) and before the Lambda's deadline, each with [`SAMPLING_GUARD`] to spare.
pub fn sampling_deadline(
    started: DateTime<Utc>,
    event_time: Option<DateTime<Utc>>,
    lambda_deadline: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    let tick = chrono::Duration::seconds(TICK.as_secs() as i64);
    let guard = chrono::Duration::seconds(SAMPLING_GUARD.as_secs() as i64);
    let base = event_time
        .filter(|t| *t <= started && started - *t < tick)
        .unwrap_or(started);
    let mut deadline = base + tick - guard;
    if let Some(lambda) = lambda_deadline.filter(|d| *d > started) {
        deadline = deadline.min(lambda - guard);
    }
    deadline
}

#[cfg(test)]
mod tests;
