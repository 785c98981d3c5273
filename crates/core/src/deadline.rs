//! Time limits of a job's tasks: `max_runtime` (from RUNNING) and `start_timeout` (from the
//! launch, while the task is not yet running). ECS has neither (containers-roadmap#291, #572):
//! the tracker stops an overdue task whenever it sees one of its state changes, and its
//! one-minute sweep lists each limited job's tasks so a task that sends no event is stopped
//! too. The stop reason starts with `jobrunner: timeout`, which classifies the stop as
//! `timeout`.

use chrono::{DateTime, Duration, Utc};

use crate::alert::TIMEOUT_REASON_PREFIX;
use crate::config::{HumanDuration, LaunchSettings};

/// Which limit a task ran past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    MaxRuntime,
    StartTimeout,
}

impl Limit {
    /// The config field's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MaxRuntime => "max_runtime",
            Limit::StartTimeout => "start_timeout",
        }
    }
}

/// A task past one of its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overdue {
    pub limit: Limit,
    /// The limit as configured (`30m`).
    pub after: String,
}

impl Overdue {
    /// StopTask's reason: `jobrunner: timeout after 30m (max_runtime)`.
    pub fn reason(&self) -> String {
        format!(
            "{TIMEOUT_REASON_PREFIX} after {} ({})",
            self.after,
            self.limit.as_str()
        )
    }
}

/// What the limits need to know of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskClock<'a> {
    pub last_status: &'a str,
    pub desired_status: Option<&'a str>,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
}

fn past(limit: &HumanDuration, since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    let Some(since) = since else {
        return false;
    };
    let limit = Duration::from_std(limit.duration()).unwrap_or(Duration::MAX);
    since
        .checked_add_signed(limit)
        .is_some_and(|deadline| now >= deadline)
}

/// Whether the task is past a limit of `settings` (a job's resolved settings) at `now`. A task
/// already stopping (or asked to stop) is left alone.
pub fn overdue(
    settings: &LaunchSettings,
    task: TaskClock<'_>,
    now: DateTime<Utc>,
) -> Option<Overdue> {
    if task.desired_status.is_some_and(|d| d == "STOPPED") {
        return None;
    }
    let (limit, setting, since) = match task.last_status {
        "PROVISIONING" | "PENDING" | "ACTIVATING" => (
            Limit::StartTimeout,
            settings.start_timeout.as_ref()?,
            task.created_at,
        ),
        "RUNNING" => (
            Limit::MaxRuntime,
            settings.max_runtime.as_ref()?,
            task.started_at,
        ),
        _ => return None,
    };
    past(setting, since, now).then(|| Overdue {
        limit,
        after: setting.to_string(),
    })
}

/// Whether any limit is set.
pub fn limited(settings: &LaunchSettings) -> bool {
    settings.max_runtime.is_some() || settings.start_timeout.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        "2026-11-25T10:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::minutes(minute)
    }

    fn settings() -> LaunchSettings {
        LaunchSettings {
            max_runtime: Some("30m".parse().unwrap()),
            start_timeout: Some("10m".parse().unwrap()),
            ..LaunchSettings::default()
        }
    }

    fn task(status: &'static str) -> TaskClock<'static> {
        TaskClock {
            last_status: status,
            desired_status: Some("RUNNING"),
            created_at: Some(at(0)),
            started_at: Some(at(2)),
        }
    }

    #[test]
    fn a_running_task_is_overdue_from_its_start_plus_max_runtime() {
        assert_eq!(overdue(&settings(), task("RUNNING"), at(31)), None);
        let late = overdue(&settings(), task("RUNNING"), at(32)).unwrap();
        assert_eq!(late.limit, Limit::MaxRuntime);
        assert_eq!(late.reason(), "jobrunner: timeout after 30m (max_runtime)");
    }

    #[test]
    fn a_task_that_never_starts_is_overdue_from_its_launch() {
        for status in ["PROVISIONING", "PENDING", "ACTIVATING"] {
            assert_eq!(overdue(&settings(), task(status), at(9)), None, "{status}");
            assert_eq!(
                overdue(&settings(), task(status), at(10)).unwrap().reason(),
                "jobrunner: timeout after 10m (start_timeout)"
            );
        }
    }

    #[test]
    fn stopping_tasks_and_unlimited_jobs_are_left_alone() {
        for status in ["DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"] {
            assert_eq!(
                overdue(&settings(), task(status), at(999)),
                None,
                "{status}"
            );
        }
        let asked = TaskClock {
            desired_status: Some("STOPPED"),
            ..task("RUNNING")
        };
        assert_eq!(overdue(&settings(), asked, at(999)), None);
        assert_eq!(
            overdue(&LaunchSettings::default(), task("RUNNING"), at(999)),
            None
        );
        assert!(!limited(&LaunchSettings::default()));
        assert!(limited(&settings()));
        let unknown_start = TaskClock {
            started_at: None,
            ..task("RUNNING")
        };
        assert_eq!(overdue(&settings(), unknown_start, at(999)), None);
    }
}
