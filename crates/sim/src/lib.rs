//! A discrete-time simulation of one worker queue, for `jobrunner simulate` and the
//! benchmarks in `bench/`.
//!
//! The same traffic trace runs under jobrunner's scaler — the real
//! [`jobrunner_core::scaling::decide`], called when the scaler Lambda would call it — and under
//! the policies users would pick instead, each modelled from its documented behaviour
//! (bench/MODELS.md names the sources):
//! - `cdk-queue-processing`: CDK `QueueProcessingFargateService`'s default step scaling on
//!   visible messages plus CPU target tracking ([`policy::cdk`]);
//! - `target-tracking`: Application Auto Scaling target tracking on backlog per task
//!   ([`policy::TargetTracking`]);
//! - `target-tracking-step`: the same plus a step policy that adds a task when any message is
//!   visible ([`policy::TargetTrackingStep`]);
//! - `keda` and `keda-tuned`: KEDA's `aws-sqs-queue` scaler with a Kubernetes HPA, at its
//!   defaults and with `pollingInterval` 10 s and no scale-up cap ([`policy::keda`]);
//! - `keda-scaledjob`: KEDA ScaledJob, accurate strategy ([`policy::scaledjob`]);
//! - `runtask-per-batch`: one RunTask per batch of messages ([`policy::batch`]).
//!
//! jobrunner runs in the worker's `mode`: `service` (desiredCount) or `jobs` (standalone tasks
//! that exit when idle). Everything else — the worker in every task (`jobrunner-worker`: long
//! polling, concurrency slots, heartbeat, scale-in protection, idle exit), task start delay,
//! processing times, Fargate's one-minute minimum, CloudWatch's metric delay — is modelled
//! once in [`engine`], identically for every policy. The simulation is pure and deterministic
//! for a seed.

pub mod benchmark;
pub mod chart;
pub mod engine;
pub mod policy;
pub mod report;
pub mod trace;
pub mod work;

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use jobrunner_core::config::Worker;

pub use engine::{Action, Exit, Policy, Run, Settings, View, simulate};
pub use policy::{BoundsOverride, PolicyKind};
pub use report::Summary;
pub use trace::Trace;
pub use work::WorkTime;

/// The simulator's one error: a message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    pub fn new(message: impl Into<String>) -> Error {
        Error(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Wall-clock time of second 0: Monday 2026-01-05 00:00 UTC (a worker's scheduled windows
/// are evaluated against it; the diurnal trace starts at midnight).
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
        .single()
        .expect("valid date")
}

/// Runs `trace` under each policy in `kinds`.
pub fn compare(
    trace: &Trace,
    worker: &Worker,
    kinds: &[PolicyKind],
    bounds: BoundsOverride,
    settings: &Settings,
) -> Result<Vec<Run>, Error> {
    kinds
        .iter()
        .map(|kind| {
            let mut policy = policy::build(*kind, worker, bounds, epoch())?;
            simulate(trace, policy.as_mut(), settings)
        })
        .collect()
}

#[cfg(test)]
mod tests;
