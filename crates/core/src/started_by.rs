//! `startedBy`: how jobrunner marks the tasks it starts, built and parsed in one place.
//!
//! A job's tasks from S3 events carry `jobrunner/<job>`, a schedule's `jobrunner/<job>/<schedule>`,
//! a jobs-mode worker's `jobrunner/worker/<worker>` (validation keeps `worker` from naming a job).
//! The launcher and the scaler count their running tasks by them; the tracker tells whose task
//! stopped.

use std::fmt;

use crate::ecs_limits::MAX_STARTED_BY_CHARS;

/// Every jobrunner `startedBy` starts with this.
pub const PREFIX: &str = "jobrunner/";

/// Who started a task, as its `startedBy` says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StartedBy {
    /// A job launched by S3 events (or by hand).
    Job { job: String },
    /// A job launched by one of its schedules.
    Schedule { job: String, schedule: String },
    /// A task the scaler launched for a jobs-mode worker.
    Worker { worker: String },
}

/// The segment after `jobrunner/` in a jobs-mode worker's `startedBy`.
pub const WORKER_SEGMENT: &str = "worker";

impl StartedBy {
    pub fn job(job: &str) -> StartedBy {
        StartedBy::Job { job: job.into() }
    }

    pub fn schedule(job: &str, schedule: &str) -> StartedBy {
        StartedBy::Schedule {
            job: job.into(),
            schedule: schedule.into(),
        }
    }

    pub fn worker(worker: &str) -> StartedBy {
        StartedBy::Worker {
            worker: worker.into(),
        }
    }

    /// Reads a task's `startedBy`; `None` for tasks jobrunner did not start.
    pub fn parse(text: &str) -> Option<StartedBy> {
        let rest = text.strip_prefix(PREFIX)?;
        let mut parts = rest.splitn(2, '/');
        let first = parts.next().filter(|j| !j.is_empty())?;
        Some(match parts.next().filter(|s| !s.is_empty()) {
            Some(worker) if first == WORKER_SEGMENT => StartedBy::worker(worker),
            Some(schedule) => StartedBy::schedule(first, schedule),
            None => StartedBy::job(first),
        })
    }
}

impl fmt::Display for StartedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartedBy::Job { job } => write!(f, "{PREFIX}{job}"),
            StartedBy::Schedule { job, schedule } => write!(f, "{PREFIX}{job}/{schedule}"),
            StartedBy::Worker { worker } => write!(f, "{PREFIX}{WORKER_SEGMENT}/{worker}"),
        }
    }
}

/// Checks a `startedBy` value against ECS's rules (128 characters of `[A-Za-z0-9_/-]`).
pub fn validate(started_by: &str) -> Result<(), String> {
    if started_by.len() > MAX_STARTED_BY_CHARS {
        return Err(format!(
            "startedBy '{started_by}' exceeds {MAX_STARTED_BY_CHARS} characters"
        ));
    }
    if let Some(bad) = started_by
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/')))
    {
        return Err(format!(
            "startedBy '{started_by}' has '{bad}', outside ECS's charset"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_and_parsed_the_same_way() {
        for started_by in [
            StartedBy::job("thumbnails"),
            StartedBy::schedule("report", "hourly"),
            StartedBy::worker("orders"),
        ] {
            assert_eq!(StartedBy::parse(&started_by.to_string()), Some(started_by));
        }
        assert_eq!(
            StartedBy::schedule("report", "hourly").to_string(),
            "jobrunner/report/hourly"
        );
        assert_eq!(StartedBy::parse("ecs-svc/123"), None);
        assert_eq!(StartedBy::parse("jobrunner/"), None);
        assert_eq!(
            StartedBy::parse("jobrunner/report/"),
            Some(StartedBy::job("report"))
        );
        assert_eq!(
            StartedBy::worker("orders").to_string(),
            "jobrunner/worker/orders"
        );
        assert_eq!(
            StartedBy::parse("jobrunner/worker/orders"),
            Some(StartedBy::worker("orders"))
        );
    }

    #[test]
    fn ecs_rules_are_checked() {
        assert!(validate("jobrunner/a-b_c/d").is_ok());
        assert!(validate("jobrunner/a b").unwrap_err().contains("' '"));
        assert!(validate(&"a".repeat(129)).unwrap_err().contains("128"));
    }
}
