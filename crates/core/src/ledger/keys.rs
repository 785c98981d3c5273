//! The ledger's items in the `[state]` table: their key prefixes (one per kind, so IAM's
//! `dynamodb:LeadingKeys` can give each function only its own) and the listing index.

/// A run's record: `run/<run_id>`.
pub const RUN_PREFIX: &str = "run/";
/// A capped job's slots (holders and the line of waiting runs): `slots/<job>`.
pub const SLOTS_PREFIX: &str = "slots/";
/// The latest run of a job for an S3 key: `object/<job>/<bucket>/<key>`.
pub const OBJECT_PREFIX: &str = "object/";
/// A schedule's last tick and what the sweep has checked: `schedule/<name>`.
pub const SCHEDULE_PREFIX: &str = "schedule/";

/// The global secondary index `jobrunner run list` queries: partition `list_pk`
/// (`runs#<YYYY-MM-DD>`, the UTC day the run was queued), sort `list_sk`
/// (`<queued_at, RFC 3339 millis>#<run_id>`), all attributes projected.
pub const LIST_INDEX: &str = "runs-by-day";
pub use crate::action::item::{LIST_PK, LIST_SK};

pub fn run_key(run_id: &str) -> String {
    format!("{RUN_PREFIX}{run_id}")
}

pub fn slots_key(job: &str) -> String {
    format!("{SLOTS_PREFIX}{job}")
}

pub fn object_key(job: &str, bucket: &str, key: &str) -> String {
    format!("{OBJECT_PREFIX}{job}/{bucket}/{key}")
}

pub fn schedule_key(schedule: &str) -> String {
    format!("{SCHEDULE_PREFIX}{schedule}")
}

/// The listing partition of a run queued on `day` (`runs#2026-11-25`).
pub fn list_partition(day: chrono::NaiveDate) -> String {
    format!("runs#{}", day.format("%Y-%m-%d"))
}
