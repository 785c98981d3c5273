//! Service mode and task scale-in protection: a worker task that holds a message sets
//! protection on itself (`jobrunner-worker` does, through the ECS agent), and ECS never stops a
//! protected task on scale-in, but `desiredCount` still drops and the service would start
//! replacements later. So before the scaler lowers `desiredCount` it reads the service's
//! tasks' protection (ECS `GetTaskProtection`, at most [`MAX_PER_CALL`] tasks a call) and never
//! sets a count below the number of protected tasks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::decide::{Decision, Direction};

/// `GetTaskProtection` takes at most this many tasks per call.
pub const MAX_PER_CALL: usize = 10;

/// One task's protection, as `GetTaskProtection` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskProtection {
    pub task_arn: String,
    pub enabled: bool,
    /// When the protection lapses, if ECS says.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The tasks whose protection is on and not yet expired at `now`.
pub fn protected_count(protections: &[TaskProtection], now: DateTime<Utc>) -> u32 {
    let count = protections
        .iter()
        .filter(|p| p.enabled && p.expires_at.is_none_or(|at| at > now))
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// `decision` with scale-in stopped at the `protected` tasks: a decision to scale in never
/// goes below them (nor above the count it had). Other decisions are returned as they are;
/// [`Decision::protected`] records the count either way.
pub fn respect_protection(mut decision: Decision, protected: u32) -> Decision {
    decision.protected = Some(protected);
    if decision.desired >= decision.previous || decision.desired >= protected {
        return decision;
    }
    let floor = protected.min(decision.previous);
    let tasks = if protected == 1 { "task" } else { "tasks" };
    decision.reason = if floor == decision.previous {
        format!(
            "{}; but {protected} {tasks} hold scale-in protection: desiredCount stays {floor}",
            decision.reason
        )
    } else {
        format!(
            "{}; but {protected} {tasks} hold scale-in protection: desiredCount {floor}, not {}",
            decision.reason, decision.desired
        )
    };
    decision.desired = floor;
    decision.direction = if floor < decision.previous {
        Direction::In
    } else {
        Direction::Hold
    };
    decision
}
