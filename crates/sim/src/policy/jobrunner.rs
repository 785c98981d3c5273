//! `jobrunner`: the scaler for one worker, in the worker's `mode`.
//!
//! - `service`: the scaler Lambda's real decision function, [`jobrunner_core::scaling::decide`],
//!   called when the scaler would call it; the desired count it sets is never below the number
//!   of tasks holding scale-in protection (a message in hand), as the scaler reads them.
//! - `jobs`: at each sample the backlog (visible + in flight) needs
//!   ⌈backlog / `messages_per_task`⌉ tasks within the bounds in force; the scaler launches
//!   standalone tasks (`jobrunner-worker --idle-exit`) for what the worker's pending and
//!   running tasks do not cover. The tasks exit by themselves once the queue stays empty.
//!
//! The scaler runs on a one-minute EventBridge schedule; with `sample_every_seconds` it samples
//! again within the invocation every that many seconds while the next sample is at least
//! [`SAMPLING_GUARD_SECONDS`] before the next minute (as `jobrunner_scaler::run` does). It reads
//! the queue (GetQueueAttributes) and the service (DescribeServices) directly, so it sees the
//! live counts, not CloudWatch's. The history is kept in memory, as the scaler keeps it in
//! DynamoDB.

use chrono::{DateTime, Duration, Utc};
use jobrunner_core::config::{Worker, WorkerMode};
use jobrunner_core::scaling::{
    History, Observation, QueueDepth, ServiceCounts, bounds_at, decide, decide_jobs,
};

use crate::engine::{Action, Exit, Policy, View};

/// The scaler's schedule.
pub const SCHEDULE_SECONDS: u64 = 60;
/// The last sample of an invocation is at least this long before the next one
/// (`jobrunner_scaler::SAMPLING_GUARD`).
pub const SAMPLING_GUARD_SECONDS: u64 = 5;

/// The jobrunner scaler for one worker.
#[derive(Debug, Clone)]
pub struct Jobrunner {
    worker: Worker,
    name: String,
    history: History,
    epoch: DateTime<Utc>,
    /// Calls of `decide` so far.
    pub decisions: u64,
}

impl Jobrunner {
    /// `epoch` is the wall-clock time of second 0 (scheduled windows depend on it). The mode
    /// is the worker's `mode`.
    pub fn new(worker: Worker, epoch: DateTime<Utc>) -> Jobrunner {
        let name = format!("jobrunner ({})", mode_name(worker.mode));
        Jobrunner {
            worker,
            name,
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

/// `service` or `jobs`, as the config writes it.
pub fn mode_name(mode: WorkerMode) -> &'static str {
    match mode {
        WorkerMode::Service => "service",
        WorkerMode::Jobs => "jobs",
    }
}

impl Policy for Jobrunner {
    fn name(&self) -> &str {
        &self.name
    }

    fn initial_tasks(&self) -> u32 {
        match self.worker.mode {
            WorkerMode::Service => bounds_at(&self.worker, self.epoch).min,
            WorkerMode::Jobs => 0,
        }
    }

    fn act(&mut self, view: &View<'_>) -> Vec<Action> {
        if !self.samples_at(view.now) {
            return Vec::new();
        }
        self.decisions += 1;
        let now = self.epoch + Duration::seconds(i64::try_from(view.now).unwrap_or(i64::MAX));
        match self.worker.mode {
            WorkerMode::Service => {
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
                let decision = decide(&self.worker, &observation, &self.history, now);
                self.history = decision.history;
                // Never below the tasks holding scale-in protection.
                let desired = decision.desired.max(view.protected);
                if desired == view.desired {
                    Vec::new()
                } else {
                    vec![Action::Desired(desired)]
                }
            }
            WorkerMode::Jobs => {
                let launch = jobs_to_launch(&self.worker, view, now);
                if launch == 0 {
                    Vec::new()
                } else {
                    vec![Action::Launch {
                        tasks: launch,
                        exit: Exit::Idle,
                    }]
                }
            }
        }
    }
}

/// Jobs mode: the standalone tasks to launch now, as the scaler decides it
/// ([`jobrunner_core::scaling::decide_jobs`]): the backlog (in flight included) needs
/// ⌈backlog / `messages_per_task`⌉ tasks up to the `max_tasks` in force; the worker's tasks
/// already pending or running count.
pub fn jobs_to_launch(worker: &Worker, view: &View<'_>, now: DateTime<Utc>) -> u32 {
    let queue = QueueDepth {
        visible: view.visible,
        in_flight: view.in_flight,
        delayed: 0,
    };
    decide_jobs(
        worker,
        &queue,
        view.running.saturating_add(view.pending),
        now,
    )
    .launch
}
