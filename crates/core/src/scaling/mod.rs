//! Scaling decisions for worker services: queue backlog in, desired task count out.
//!
//! [`decide`] is pure: the caller passes the observation, the worker's policy, the history
//! returned by the previous call and the current time, and stores the returned
//! [`Decision::history`] for the next call. The scaler Lambda keeps that history in DynamoDB;
//! a simulator can keep it in memory and call [`decide`] with synthetic observations.
//! `scaler` is the scaler function's whole invocation over the ports. [`jobs`] is jobs mode's
//! decision (standalone tasks per backlog); [`respect_protection`] keeps service mode from
//! setting `desiredCount` below the tasks holding scale-in protection.

mod decide;
pub mod jobs;
pub mod metrics;
pub mod protection;
mod window;

pub use decide::{
    Decision, Direction, History, MAX_SAMPLE_GAP_SECONDS, Observation, QueueDepth, Sample,
    ServiceCounts, decide,
};
pub use jobs::{JobsDecision, decide_jobs};
pub use protection::{TaskProtection, protected_count, respect_protection};
pub use window::{Bounds, bounds_at, describe as describe_window, validate_windows};

#[cfg(test)]
mod tests;
