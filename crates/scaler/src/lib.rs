//! The scaler Lambda: keeps each worker service's `desiredCount` matched to its SQS backlog.
//!
//! Every invocation (an EventBridge schedule, once a minute) handles every configured worker:
//! it reads the queue (GetQueueAttributes), reads the service (DescribeServices), decides with
//! [`jobrunner_core::scaling::decide`], saves the decision's history to the state table with a
//! conditional write, and calls UpdateService only when the count changes. Workers with
//! `sample_every_seconds` are sampled again within the invocation until just before the next
//! minute, so reaction time is not bound to the one-minute schedule.
//!
//! A failure on one worker does not stop the others; the [`Report`] names the workers that
//! failed, and the invocation still succeeds. Only when every worker failed does the
//! invocation fail ([`Error::AllWorkersFailed`]), so Lambda's `Errors` metric and the stack's
//! scaler alarm see it. Every decision is one `tracing` line and one EMF metrics line
//! ([`metrics`]).

pub mod metrics;
pub mod ports;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobrunner_core::config::Worker;
use jobrunner_core::scaling::{Decision, History, Observation, decide};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use jobrunner_core::scaling::Direction;
pub use ports::{
    Clock, ManualClock, QueueReader, Record, Saved, ServiceControl, StateRepo, SystemClock,
};

/// The last sample of an invocation is taken at least this long before the next minute's
/// invocation (and before the Lambda's own deadline).
pub const SAMPLING_GUARD: Duration = Duration::from_secs(5);

/// The schedule the scaler runs on.
pub const TICK: Duration = Duration::from_secs(60);

/// State items live at least this long after their last write (DynamoDB TTL on `expires_at`).
pub const STATE_TTL: Duration = Duration::from_secs(24 * 3600);

/// The state table key of a worker.
pub fn state_key(worker: &str) -> String {
    format!("scaler#{worker}")
}

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Every configured worker failed in this invocation (partial failures are only logged).
    #[error("every worker failed ({count}): {first}", count = .failed.len())]
    AllWorkersFailed {
        /// The workers' names, in name order.
        failed: Vec<String>,
        /// The first worker's error, prefixed with its name.
        first: String,
    },
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
        }
    }
}

/// The scaler: the workers to keep matched, and the ports it does that through.
#[derive(Debug)]
pub struct Scaler<Q, S, St, C> {
    pub workers: BTreeMap<String, Worker>,
    pub queues: Q,
    pub services: S,
    pub state: St,
    pub clock: C,
    /// Print EMF metrics lines to stdout (on in Lambda; the demo turns it off).
    pub emit_metrics: bool,
}

/// Where one worker stands within an invocation.
struct Slot<'a> {
    name: &'a str,
    worker: &'a Worker,
    next: DateTime<Utc>,
    loaded: Option<(WorkerState, Option<u64>)>,
    report: WorkerReport,
}

impl<Q: QueueReader, S: ServiceControl, St: StateRepo, C: Clock> Scaler<Q, S, St, C> {
    pub fn new(
        workers: BTreeMap<String, Worker>,
        queues: Q,
        services: S,
        state: St,
        clock: C,
    ) -> Self {
        Scaler {
            workers,
            queues,
            services,
            state,
            clock,
            emit_metrics: true,
        }
    }

    /// Handles every worker once, then again every `sample_every_seconds` (for the workers
    /// that set it) while the next sample is due no later than `deadline`.
    pub async fn run(&self, deadline: DateTime<Utc>) -> Report {
        let start = self.clock.now();
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
        while let Some(position) =
            (0..active.len()).min_by_key(|&i| (slots[active[i]].next, active[i]))
        {
            let slot = &mut slots[active[position]];
            let now = self.clock.now();
            if let Ok(wait) = (slot.next - now).to_std() {
                self.clock.sleep(wait).await;
            }
            let mut done = match self.sample(slot).await {
                Ok(()) => false,
                Err(e) => {
                    let message = e.to_string();
                    tracing::error!(worker = slot.name, error = %message, "scaling failed");
                    if self.emit_metrics {
                        metrics::emit(&metrics::error(slot.name, &message, self.clock.now()));
                    }
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
        let mut report = Report::default();
        for slot in slots {
            if slot.report.error.is_some() {
                report.failed.push(slot.name.to_string());
            }
            report.workers.insert(slot.name.to_string(), slot.report);
        }
        report
    }

    /// One sample of one worker: observe, decide, save, act.
    async fn sample(&self, slot: &mut Slot<'_>) -> Result<(), jobrunner_aws::Error> {
        let (name, worker) = (slot.name, slot.worker);
        let key = state_key(name);
        if slot.loaded.is_none() {
            slot.loaded = Some(self.load(name, &key).await?);
        }
        let queue = self.queues.depth(&worker.queue_url).await?;
        let service = self
            .services
            .counts(&worker.cluster, &worker.service)
            .await?;
        let observation = Observation::new(queue, service);
        let now = self.clock.now();
        let (state, version) = slot.loaded.as_ref().expect("loaded above");
        let decision = decide(worker, &observation, &state.history, now);

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
        let data = serde_json::to_string(&next).expect("worker state serializes");
        let ttl =
            chrono::Duration::from_std(STATE_TTL)
                .expect("ttl")
                .max(chrono::Duration::seconds(
                    2 * i64::from(worker.scale_in_after_seconds),
                ));
        match self.state.save(&key, &data, *version, now + ttl).await? {
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
            self.services
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
            decision = decision.direction.as_str(),
            reason = %decision.reason,
            "scaling decision"
        );
        if self.emit_metrics {
            metrics::emit(&metrics::decision(name, &observation, &decision, now));
        }
        slot.report
            .samples
            .push(SampleReport::new(now, &observation, &decision));
        Ok(())
    }

    /// The stored state and its version; a missing or unreadable item starts afresh (which
    /// only delays scale-in by one window).
    async fn load(
        &self,
        name: &str,
        key: &str,
    ) -> Result<(WorkerState, Option<u64>), jobrunner_aws::Error> {
        Ok(match self.state.load(key).await? {
            None => (WorkerState::default(), None),
            Some(record) => match serde_json::from_str(&record.data) {
                Ok(state) => (state, Some(record.version)),
                Err(e) => {
                    tracing::warn!(worker = name, error = %e, "unreadable scaler state; starting afresh");
                    (WorkerState::default(), Some(record.version))
                }
            },
        })
    }

    /// The Lambda handler: one scheduled invocation. Fails only when every worker failed.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Report, lambda_runtime::Error> {
        let started = self.clock.now();
        let event_time = event
            .payload
            .get("time")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<DateTime<Utc>>().ok());
        let lambda_deadline = i64::try_from(event.context.deadline)
            .ok()
            .and_then(DateTime::from_timestamp_millis);
        let deadline = sampling_deadline(started, event_time, lambda_deadline);
        let report = self.run(deadline).await;
        if !report.failed.is_empty() && report.failed.len() == report.workers.len() {
            let name = &report.failed[0];
            let error = report.workers[name].error.as_deref().unwrap_or("failed");
            return Err(Error::AllWorkersFailed {
                failed: report.failed.clone(),
                first: format!("{name}: {error}"),
            }
            .into());
        }
        if !report.failed.is_empty() {
            tracing::error!(failed = ?report.failed, "some workers failed");
        }
        Ok(report)
    }
}

/// The latest time a sample may be taken in an invocation that started at `started`: just
/// before the next minute's invocation (counted from the scheduled `event_time` when it is
/// plausible) and before the Lambda's deadline, each with [`SAMPLING_GUARD`] to spare.
pub fn sampling_deadline(
    started: DateTime<Utc>,
    event_time: Option<DateTime<Utc>>,
    lambda_deadline: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    let tick = chrono::Duration::from_std(TICK).expect("tick");
    let guard = chrono::Duration::from_std(SAMPLING_GUARD).expect("guard");
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
