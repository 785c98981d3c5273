//! The scaling policies compared: jobrunner's own and the ones users would pick instead.

pub mod cdk;
pub mod jobrunner;
pub mod keda;
pub mod tracking;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use jobrunner_core::config::Worker;

use crate::Error;
use crate::engine::{Policy, View};
use tracking::{TargetTracker, Tracked};

/// The policies `jobrunner simulate --policy` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyKind {
    Jobrunner,
    CdkQueueProcessing,
    TargetTracking,
    Keda,
}

impl PolicyKind {
    /// Every policy, in the order results show them.
    pub const ALL: [PolicyKind; 4] = [
        PolicyKind::Jobrunner,
        PolicyKind::CdkQueueProcessing,
        PolicyKind::TargetTracking,
        PolicyKind::Keda,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Jobrunner => "jobrunner",
            PolicyKind::CdkQueueProcessing => "cdk-queue-processing",
            PolicyKind::TargetTracking => "target-tracking",
            PolicyKind::Keda => "keda",
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

/// Task bounds that override each policy's own (the worker's, or CDK's default 1/2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BoundsOverride {
    pub min: Option<u32>,
    pub max: Option<u32>,
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
        if min > max {
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
        PolicyKind::Keda => {
            check(min, max)?;
            Box::new(keda::Keda::new(min, max, u64::from(per_task)))
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

    fn decide(&mut self, view: &View<'_>) -> Option<u32> {
        if !view.now.is_multiple_of(60) {
            return None;
        }
        let desired = self.tracker.propose(view, self.min, self.max)?;
        self.tracker.applied(view, desired);
        Some(desired)
    }
}
