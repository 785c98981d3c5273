//! The launcher's metric documents, dimension `job` (a configured job's name).
//!
//! One document per event that reached a job: what became of it (`runs_launched`,
//! `runs_already_launched`, `runs_waiting`, `runs_skipped`, `launch_failures`), with
//! `launch_latency` (invocation received → RunTask answered, milliseconds) and `queue_wait`
//! (the event's own time → RunTask answered, seconds) for a launch. A change of a job's slot
//! record gives `running` and `max_running`.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Document, Unit};

/// What became of one event of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// A RunTask started its task.
    Launched {
        /// When the invocation was received.
        received: DateTime<Utc>,
        /// When RunTask answered.
        answered: DateTime<Utc>,
        /// The event's own time (S3 event time, scheduled time, a retry's due time).
        queued_at: DateTime<Utc>,
    },
    AlreadyLaunched,
    Waiting,
    Skipped,
    Failed,
}

impl Fate {
    /// The count metric of this fate.
    pub fn metric(self) -> &'static str {
        match self {
            Fate::Launched { .. } => "runs_launched",
            Fate::AlreadyLaunched => "runs_already_launched",
            Fate::Waiting => "runs_waiting",
            Fate::Skipped => "runs_skipped",
            Fate::Failed => "launch_failures",
        }
    }
}

/// The document of one event of `job` that ended as `fate`, at `at`.
pub fn event(job: &str, fate: Fate, at: DateTime<Utc>) -> Value {
    let document =
        Document::new(at, &[&["job"]])
            .dimension("job", job)
            .metric(fate.metric(), Unit::Count, 1);
    match fate {
        Fate::Launched {
            received,
            answered,
            queued_at,
        } => document
            .metric(
                "launch_latency",
                Unit::Milliseconds,
                (answered - received).num_milliseconds().max(0),
            )
            .metric(
                "queue_wait",
                Unit::Seconds,
                ((answered - queued_at).num_milliseconds().max(0) as f64) / 1000.0,
            )
            .build(),
        _ => document.build(),
    }
}

/// The document of a change of `job`'s slot record: `running` slots held of `max_running`.
pub fn slots(job: &str, running: u32, max_running: u32, at: DateTime<Utc>) -> Value {
    Document::new(at, &[&["job"]])
        .dimension("job", job)
        .metric("running", Unit::Count, running)
        .metric("max_running", Unit::Count, max_running)
        .build()
}
