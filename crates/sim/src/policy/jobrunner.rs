//! `jobrunner`: the scaler Lambda's real decision function, [`jobrunner_core::scaling::decide`],
//! called when the scaler would call it.
//!
//! The scaler runs on a one-minute EventBridge schedule; with `sample_every_seconds` it samples
//! again within the invocation every that many seconds while the next sample is at least
//! [`SAMPLING_GUARD_SECONDS`] before the next minute (as `jobrunner_scaler::run` does). It reads
//! the queue (GetQueueAttributes) and the service (DescribeServices) directly, so it sees the
//! live counts, not CloudWatch's. The history is kept in memory, as the scaler keeps it in
//! DynamoDB.

use chrono::{DateTime, Duration, Utc};
use jobrunner_core::config::Worker;
use jobrunner_core::scaling::{History, Observation, QueueDepth, ServiceCounts, bounds_at, decide};

use crate::engine::{Policy, View};

/// The scaler's schedule.
pub const SCHEDULE_SECONDS: u64 = 60;
/// The last sample of an invocation is at least this long before the next one
/// (`jobrunner_scaler::SAMPLING_GUARD`).
pub const SAMPLING_GUARD_SECONDS: u64 = 5;

/// The jobrunner scaler for one worker.
#[derive(Debug, Clone)]
pub struct Jobrunner {
    worker: Worker,
    history: History,
    epoch: DateTime<Utc>,
    /// Calls of `decide` so far.
    pub decisions: u64,
}

impl Jobrunner {
    /// `epoch` is the wall-clock time of second 0 (scheduled windows depend on it).
    pub fn new(worker: Worker, epoch: DateTime<Utc>) -> Jobrunner {
        Jobrunner {
            worker,
            history: History::default(),
            epoch,
            decisions: 0,
        }
    }

    /// Whether the scaler takes a sample at second `now`.
    pub fn samples_at(&self, now: u64) -> bool {
        let second = now % SCHEDULE_SECONDS;
        match self.worker.sample_every_seconds {
            None => second == 0,
            Some(every) => {
                let every = u64::from(every.max(1));
                second.is_multiple_of(every) && second <= SCHEDULE_SECONDS - SAMPLING_GUARD_SECONDS
            }
        }
    }
}

impl Policy for Jobrunner {
    fn name(&self) -> &str {
        "jobrunner"
    }

    fn initial_tasks(&self) -> u32 {
        bounds_at(&self.worker, self.epoch).min
    }

    fn decide(&mut self, view: &View<'_>) -> Option<u32> {
        if !self.samples_at(view.now) {
            return None;
        }
        let observation = Observation::new(
            QueueDepth {
                visible: view.visible,
                in_flight: view.in_flight,
                delayed: 0,
            },
            ServiceCounts {
                desired: view.desired,
                running: view.running,
                pending: view.pending,
            },
        );
        let now = self.epoch + Duration::seconds(view.now as i64);
        let decision = decide(&self.worker, &observation, &self.history, now);
        self.decisions += 1;
        self.history = decision.history;
        (decision.desired != view.desired).then_some(decision.desired)
    }
}
