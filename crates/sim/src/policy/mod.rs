//! The scaling policies compared: jobrunner's own and the ones users would pick instead.

pub mod batch;
pub mod cdk;
pub mod jobrunner;
pub mod keda;
pub mod scaledjob;
pub mod tracking;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use jobrunner_core::config::{Worker, WorkerMode};

use crate::Error;
use crate::engine::{Action, Policy, View};
use tracking::{TargetTracker, Tracked};

/// The policies `jobrunner simulate --policy` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyKind {
    Jobrunner,
    CdkQueueProcessing,
    TargetTracking,
    TargetTrackingStep,
    Keda,
    KedaTuned,
    KedaScaledJob,
    RunTaskPerBatch,
}

impl PolicyKind {
    /// Every policy, in the order results show them.
    pub const ALL: [PolicyKind; 8] = [
        PolicyKind::Jobrunner,
        PolicyKind::CdkQueueProcessing,
        PolicyKind::TargetTracking,
        PolicyKind::TargetTrackingStep,
        PolicyKind::Keda,
        PolicyKind::KedaTuned,
        PolicyKind::KedaScaledJob,
        PolicyKind::RunTaskPerBatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Jobrunner => "jobrunner",
            PolicyKind::CdkQueueProcessing => "cdk-queue-processing",
            PolicyKind::TargetTracking => "target-tracking",
            PolicyKind::TargetTrackingStep => "target-tracking-step",
            PolicyKind::Keda => "keda",
            PolicyKind::KedaTuned => "keda-tuned",
            PolicyKind::KedaScaledJob => "keda-scaledjob",
            PolicyKind::RunTaskPerBatch => "runtask-per-batch",
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PolicyKind {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        PolicyKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<_> = PolicyKind::ALL.iter().map(|k| k.as_str()).collect();
                Error::new(format!(
                    "unknown policy '{text}' (one of: {})",
                    names.join(", ")
                ))
            })
    }
}

/// The most tasks a policy may run at once in the simulator.
pub const MAX_TASKS: u32 = 100_000;

/// Task bounds that override each policy's own (the worker's, or CDK's default 1/2), and
/// jobrunner's mode instead of the worker's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BoundsOverride {
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub mode: Option<WorkerMode>,
}

/// Builds a policy for `worker`. Without overrides jobrunner, target tracking and KEDA use the
/// worker's `min_tasks`/`max_tasks`, CDK its defaults (min 1, max 2). Every peer uses the
/// worker's `messages_per_task` as its target backlog per task. `epoch` is the wall-clock time
/// of second 0.
pub fn build(
    kind: PolicyKind,
    worker: &Worker,
    bounds: BoundsOverride,
    epoch: DateTime<Utc>,
) -> Result<Box<dyn Policy>, Error> {
    let min = bounds.min.unwrap_or(worker.min_tasks);
    let max = bounds.max.unwrap_or(worker.max_tasks);
    let check = |min: u32, max: u32| {
        if max > MAX_TASKS {
            Err(Error::new(format!(
                "{kind}: max_tasks {max}: the simulator runs at most {MAX_TASKS} tasks"
            )))
        } else if min > max {
            Err(Error::new(format!(
                "{kind}: min_tasks {min} is above max_tasks {max}"
            )))
        } else {
            Ok(())
        }
    };
    let per_task = worker.messages_per_task.max(1);
    Ok(match kind {
        PolicyKind::Jobrunner => {
            check(min, max)?;
            let mut worker = worker.clone();
            worker.min_tasks = min;
            worker.max_tasks = max;
            if let Some(mode) = bounds.mode {
                worker.mode = mode;
            }
            Box::new(jobrunner::Jobrunner::new(worker, epoch))
        }
        PolicyKind::CdkQueueProcessing => {
            let (min, max) = (bounds.min.unwrap_or(1), bounds.max.unwrap_or(2));
            check(min, max)?;
            Box::new(cdk::CdkQueueProcessing::new(min, max))
        }
        PolicyKind::TargetTracking => {
            check(min, max)?;
            Box::new(TargetTracking::new(min, max, f64::from(per_task)))
        }
        PolicyKind::TargetTrackingStep => {
            check(min, max)?;
            Box::new(TargetTrackingStep::new(min, max, f64::from(per_task)))
        }
        PolicyKind::Keda => {
            check(min, max)?;
            Box::new(keda::Keda::new(min, max, u64::from(per_task)))
        }
        PolicyKind::KedaTuned => {
            check(min, max)?;
            Box::new(keda::Keda::tuned(min, max, u64::from(per_task)))
        }
        PolicyKind::KedaScaledJob => {
            check(min, max)?;
            Box::new(scaledjob::KedaScaledJob::new(min, max, u64::from(per_task)))
        }
        PolicyKind::RunTaskPerBatch => {
            check(min, max)?;
            Box::new(batch::RunTaskPerBatch::new(max, per_task))
        }
    })
}

/// `target-tracking`: Application Auto Scaling target tracking on backlog per task
/// (`ApproximateNumberOfMessagesVisible / RunningTaskCount`), target = `messages_per_task`.
#[derive(Debug, Clone)]
pub struct TargetTracking {
    pub min: u32,
    pub max: u32,
    pub tracker: TargetTracker,
}

impl TargetTracking {
    pub fn new(min: u32, max: u32, target: f64) -> TargetTracking {
        TargetTracking {
            min,
            max,
            tracker: TargetTracker::new(Tracked::BacklogPerTask, target),
        }
    }
}

impl Policy for TargetTracking {
    fn name(&self) -> &str {
        "target-tracking"
    }

    fn initial_tasks(&self) -> u32 {
        self.min
    }

    fn act(&mut self, view: &View<'_>) -> Vec<Action> {
        self.desired(view)
            .map(Action::Desired)
            .into_iter()
            .collect()
    }
}

impl TargetTracking {
    /// The new desired count at `view.now`, if any.
    fn desired(&mut self, view: &View<'_>) -> Option<u32> {
        if !view.now.is_multiple_of(60) {
            return None;
        }
        let desired = self.tracker.propose(view, self.min, self.max)?;
        self.tracker.applied(view, desired);
        Some(desired)
    }
}

/// `target-tracking-step`: [`TargetTracking`] plus the step scaling policy users add so that a
/// service at zero starts: an alarm on `ApproximateNumberOfMessagesVisible` (Maximum, one
/// one-minute period) at ≥ 1 adds one task (`ChangeInCapacity` +1), with the step policy's
/// default 300 s cooldown. When both act in the same minute the larger capacity wins.
#[derive(Debug, Clone)]
pub struct TargetTrackingStep {
    pub tracking: TargetTracking,
    pub step_cooldown: u64,
    step_until: Option<u64>,
}

impl TargetTrackingStep {
    pub fn new(min: u32, max: u32, target: f64) -> TargetTrackingStep {
        TargetTrackingStep {
            tracking: TargetTracking::new(min, max, target),
            step_cooldown: 300,
            step_until: None,
        }
    }

    /// The step policy's proposal at `view.now` (evaluated once a minute).
    fn step(&self, view: &View<'_>) -> Option<u32> {
        let latest = view.metrics.latest(view.now, 1)?.first()?;
        if latest.visible < 1 || self.step_until.is_some_and(|until| view.now < until) {
            return None;
        }
        let (min, max) = (self.tracking.min, self.tracking.max);
        let target = view.desired.saturating_add(1).clamp(min, max);
        (target > view.desired).then_some(target)
    }
}

impl Policy for TargetTrackingStep {
    fn name(&self) -> &str {
        "target-tracking-step"
    }

    fn initial_tasks(&self) -> u32 {
        self.tracking.min
    }

    fn act(&mut self, view: &View<'_>) -> Vec<Action> {
        if !view.now.is_multiple_of(60) {
            return Vec::new();
        }
        let step = self.step(view);
        let (min, max) = (self.tracking.min, self.tracking.max);
        let tracked = self.tracking.tracker.propose(view, min, max);
        let out = [step, tracked]
            .into_iter()
            .flatten()
            .filter(|p| *p > view.desired)
            .max();
        let desired = match out.or(tracked) {
            Some(desired) => desired,
            None => return Vec::new(),
        };
        if step == Some(desired) && desired > view.desired {
            self.step_until = Some(view.now + self.step_cooldown);
        }
        if tracked == Some(desired) {
            self.tracking.tracker.applied(view, desired);
        } else if desired > view.desired {
            self.tracking.tracker.scaled_out();
        }
        vec![Action::Desired(desired)]
    }
}
