//! Stopped-task alerts: decoding ECS Task State Change events, classifying stops, rendering SNS messages.

use serde::Deserialize;
use serde_json::Value;

use crate::config::Config;
use crate::dryrun::{Action, Skipped};
use crate::error::Error;

/// Alert classes, as named in `[alerts] notify_on`.
pub const CLASS_NAMES: &[&str] =
    &["succeeded", "non_zero_exit", "oom", "failed_to_start", "spot_interruption", "scaled_in", "user_stopped", "timeout", "unknown"];

/// The `detail` of an "ECS Task State Change" event (the fields jobrunner reads).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStateChange {
    pub task_arn: String,
    pub last_status: String,
    pub version: Option<u64>,
}

impl TaskStateChange {
    pub fn from_detail(detail: &Value) -> Result<Self, Error> {
        crate::event::typed(detail, "ECS Task State Change detail")
    }
}

/// What the alerter would publish for `change`, for `jobrunner plan`.
pub fn dry_run(_config: &Config, change: &TaskStateChange) -> (Vec<Action>, Vec<Skipped>) {
    (vec![], vec![Skipped { reason: format!("task {} stopped: alert rendering is not available yet", change.task_arn) }])
}
