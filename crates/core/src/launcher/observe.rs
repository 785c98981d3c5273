//! What the launcher tells the invocation's metric scope: the fate of each event of a job
//! (`crate::metrics::launcher`), and what the launch log line carries of the trace context.

use chrono::{DateTime, Utc};

use super::Outcome;
use crate::error::Error;
use crate::event::Event;
use crate::job_env;
use crate::metrics::launcher::{self, Fate};
use crate::metrics::scope;
use crate::plan::RunTaskInput;

/// The event's own time: when the object was written, when the tick was due, when the retry
/// was due, when the run was submitted.
pub(super) fn event_time(event: &Event) -> Option<DateTime<Utc>> {
    match event {
        Event::ObjectCreated(object) => Some(object.event_time),
        Event::ScheduleTick(tick) => Some(tick.scheduled_time),
        Event::Retry(request) => Some(request.not_before),
        Event::Submit(submit) => Some(submit.submitted_at),
        Event::TaskStateChange(_) | Event::Ignored(_) => None,
    }
}

/// Hands the fate of an event of `job` to the scope (none open: nothing happens).
/// `received` is the invocation's time; RunTask's answer time is what the launch marked.
pub(super) fn record(
    job: &str,
    outcome: &Result<Outcome, Error>,
    queued_at: DateTime<Utc>,
    received: DateTime<Utc>,
) {
    let Some(at) = scope::now() else {
        return;
    };
    let answered = scope::take_answered().unwrap_or(at);
    let fate = match outcome {
        Ok(Outcome::Launched { .. }) => Fate::Launched {
            received,
            answered,
            queued_at,
        },
        Ok(Outcome::AlreadyLaunched { .. }) => Fate::AlreadyLaunched,
        Ok(Outcome::Waiting { .. }) | Err(Error::AtCap { .. }) => Fate::Waiting,
        Ok(Outcome::Skipped { .. }) => Fate::Skipped,
        Err(_) => Fate::Failed,
    };
    scope::emit(launcher::event(job, fate, at));
}

/// The `TRACEPARENT` a request sets, for the launch's log line.
pub(super) fn traceparent(input: &RunTaskInput) -> &str {
    input
        .overrides
        .container_overrides
        .iter()
        .flat_map(|c| &c.environment)
        .find(|kv| kv.name == job_env::TRACEPARENT)
        .map_or("", |kv| kv.value.as_str())
}
