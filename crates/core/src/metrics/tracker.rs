//! The tracker's metric documents, dimension `job` (and `outcome`, `class` for finished runs).
//!
//! [`run_changed`] compares a run's ledger record before and after a state change: a newly
//! started attempt gives `time_to_running`, a newly stopped one `run_duration` and `run_cost`,
//! a run newly final `runs_finished` (by outcome, and by outcome and stop class), a newly
//! planned attempt `retries`. Comparing records (not events) is what keeps a redelivered
//! state change from counting twice. `timeouts` and `missed_schedules` come from the time
//! limits and the sweep; slot releases give `running`/`max_running` ([`super::launcher::slots`]).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Document, Unit};
use crate::class::Class;
use crate::run::{Attempt, Run, RunState};

/// The outcome dimension of a final state; `None` for states that are no outcome of a task
/// (skipped runs never launched; the launcher counts them).
pub fn outcome(state: RunState) -> Option<&'static str> {
    match state {
        RunState::Succeeded => Some("succeeded"),
        RunState::Failed => Some("failed"),
        RunState::TimedOut => Some("timed_out"),
        RunState::Cancelled => Some("cancelled"),
        RunState::Waiting | RunState::Launching | RunState::Running | RunState::Skipped => None,
    }
}

fn job_document(job: &str, at: DateTime<Utc>) -> Document {
    Document::new(at, &[&["job"]]).dimension("job", job)
}

/// The documents of `run` moving from `before` (absent: a run the ledger did not know) to
/// `after` through a state change of attempt `attempt`. `created_at` is the task's `createdAt`
/// as the change reports it (else the attempt's launch time is the start of `time_to_running`).
pub fn run_changed(
    before: Option<&Run>,
    after: &Run,
    attempt: u32,
    created_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Vec<Value> {
    let mut documents = vec![];
    let job = after.job.as_str();
    let old = before.and_then(|r| r.attempts.iter().find(|a| a.number == attempt));
    if let Some(new) = after.attempts.iter().find(|a| a.number == attempt) {
        let had = |f: fn(&Attempt) -> bool| old.is_some_and(f);
        if new.started_at.is_some()
            && !had(|a| a.started_at.is_some())
            && let (Some(started), Some(launched)) =
                (new.started_at, created_at.or(new.launched_at))
        {
            documents.push(
                job_document(job, at)
                    .metric(
                        "time_to_running",
                        Unit::Seconds,
                        seconds(started - launched),
                    )
                    .build(),
            );
        }
        if new.stopped_at.is_some() && !had(|a| a.stopped_at.is_some()) {
            let mut document = job_document(job, at);
            let mut any = false;
            if let (Some(stopped), Some(started)) = (new.stopped_at, new.started_at) {
                document =
                    document.metric("run_duration", Unit::Seconds, seconds(stopped - started));
                any = true;
            }
            if let Some(cost) = &new.cost {
                document = document.metric("run_cost", Unit::None, cost.usd);
                any = true;
            }
            if any {
                documents.push(document.build());
            }
        }
    }
    let was_final = before.is_some_and(|r| r.state.is_final());
    if !was_final && let Some(outcome) = outcome(after.state) {
        let class = after
            .attempts
            .iter()
            .rev()
            .find_map(|a| a.class)
            .unwrap_or(Class::Unknown);
        documents.push(
            Document::new(at, &[&["job", "outcome"], &["job", "outcome", "class"]])
                .dimension("job", job)
                .dimension("outcome", outcome)
                .dimension("class", class.as_str())
                .metric("runs_finished", Unit::Count, 1)
                .build(),
        );
    }
    let planned = |run: &Run| run.attempts.iter().filter(|a| a.number > attempt).count();
    if planned(after) > before.map_or(0, planned) {
        documents.push(
            job_document(job, at)
                .metric("retries", Unit::Count, 1)
                .build(),
        );
    }
    documents
}

/// `timeouts`: a task of `job` stopped for `max_runtime` or `start_timeout`.
pub fn timeout(job: &str, at: DateTime<Utc>) -> Value {
    job_document(job, at)
        .metric("timeouts", Unit::Count, 1)
        .build()
}

/// `missed_schedules`: `missed` ticks of a schedule of `job` started no run in time.
pub fn missed_schedules(job: &str, missed: usize, at: DateTime<Utc>) -> Value {
    job_document(job, at)
        .metric("missed_schedules", Unit::Count, missed)
        .build()
}

fn seconds(duration: chrono::Duration) -> f64 {
    (duration.num_milliseconds().max(0) as f64) / 1000.0
}
