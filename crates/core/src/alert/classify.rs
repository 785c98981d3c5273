//! Classifying why a task stopped: pure, from the event (and, when known, which containers
//! the task definition marks essential).

use serde::Serialize;

use super::context::TaskDefinitionInfo;
pub use crate::class::Class;
use crate::event::{ContainerState, TaskStateChange};

/// A `stoppedReason` starting with this marks a task jobrunner stopped for running too long.
/// Whatever enforces job timeouts must call StopTask with such a reason.
pub const TIMEOUT_REASON_PREFIX: &str = "jobrunner: timeout";

/// How urgent an alert of a class is (the `severity` message attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl Class {
    pub fn severity(self) -> Severity {
        match self {
            Class::NonZeroExit
            | Class::Oom
            | Class::FailedToStart
            | Class::Timeout
            | Class::Unhealthy
            | Class::LaunchFailed
            | Class::MissedSchedule => Severity::Error,
            Class::SpotInterruption | Class::Unknown => Severity::Warning,
            Class::Succeeded | Class::ScaledIn | Class::UserStopped => Severity::Info,
        }
    }

    /// The subject's label: loud for failures, quiet for normal stops.
    pub fn label(self) -> &'static str {
        match self {
            Class::Succeeded => "succeeded",
            Class::NonZeroExit => "FAILED",
            Class::Oom => "OOM",
            Class::FailedToStart => "FAILED TO START",
            Class::SpotInterruption => "SPOT INTERRUPTED",
            Class::ScaledIn => "scaled in",
            Class::UserStopped => "stopped",
            Class::Timeout => "TIMEOUT",
            Class::Unhealthy => "UNHEALTHY",
            Class::Unknown => "STOPPED",
            Class::LaunchFailed => "LAUNCH FAILED",
            Class::MissedSchedule => "MISSED SCHEDULE",
        }
    }

    /// What the on-call engineer should look at first.
    pub fn hint(self) -> Option<&'static str> {
        match self {
            Class::NonZeroExit => {
                Some("The container's log shows the error; the input above reproduces it.")
            }
            Class::Oom => Some(
                "Give the task more memory (the job's memory or its size tier), or make the container use less.",
            ),
            Class::FailedToStart => Some(
                "ECS could not start the task (reason above): check that the image exists, that the execution role can pull it and read the task's secrets, and that the subnets reach ECR/Secrets Manager.",
            ),
            Class::SpotInterruption => Some(
                "AWS reclaimed the capacity; the task did not fail on its own. Re-run it, or put FARGATE after FARGATE_SPOT in the job's capacity.",
            ),
            Class::Timeout => Some("The task ran past its timeout and was stopped."),
            Class::Unhealthy => Some(
                "The service's health checks failed: the container's log and the health check settings tell why.",
            ),
            Class::Unknown => Some(
                "jobrunner could not classify this stop: the stop code and reasons above are ECS's own.",
            ),
            Class::LaunchFailed => Some(
                "The run never started: fix what the reason names (task definition, config), then redrive the launcher's dead-letter queue or submit the run again.",
            ),
            Class::MissedSchedule => Some(
                "No run was recorded for this tick: check that the schedule's rule or EventBridge Scheduler schedule exists and is enabled, and the launcher's errors and dead-letter queue.",
            ),
            Class::Succeeded | Class::ScaledIn | Class::UserStopped => None,
        }
    }
}

/// A class and the details behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub class: Class,
    /// The container the class is about (the one that failed, ran out of memory, …).
    pub container: Option<String>,
    pub exit_code: Option<i64>,
    /// The most specific reason: the container's, else the task's `stoppedReason`.
    pub reason: Option<String>,
}

impl Classification {
    fn new(class: Class) -> Self {
        Classification {
            class,
            container: None,
            exit_code: None,
            reason: None,
        }
    }

    fn task(class: Class, change: &TaskStateChange) -> Self {
        Classification {
            reason: change.stopped_reason.clone(),
            ..Classification::new(class)
        }
    }

    fn container(class: Class, container: &ContainerState, change: &TaskStateChange) -> Self {
        Classification {
            class,
            container: Some(container.name.clone()),
            exit_code: container.exit_code,
            reason: container
                .reason
                .clone()
                .or_else(|| change.stopped_reason.clone()),
        }
    }
}

/// Reasons ECS gives when it could not start a task (task or container `reason` prefixes).
const START_FAILURES: &[&str] = &[
    "CannotPullContainerError",
    "CannotStartContainerError",
    "CannotCreateContainerError",
    "CannotInspectContainerError",
    "CannotCreateVolumeError",
    "ResourceInitializationError",
    "ContainerRuntimeError",
    "ContainerRuntimeTimeoutError",
];

fn is_start_failure(reason: &str) -> bool {
    START_FAILURES
        .iter()
        .any(|prefix| reason.trim_start().starts_with(prefix))
}

fn is_oom(reason: &str) -> bool {
    let lower = reason.to_ascii_lowercase();
    lower.contains("outofmemory") || lower.contains("out of memory") || lower.contains("oomkilled")
}

/// Classifies a stopped task. `definition` (when looked up) says which containers are
/// essential; without it every container counts as essential.
pub fn classify(
    change: &TaskStateChange,
    definition: Option<&TaskDefinitionInfo>,
) -> Classification {
    let task_reason = change.stopped_reason.as_deref().unwrap_or("");
    let essential: Vec<&ContainerState> = {
        let filtered: Vec<_> = change
            .containers
            .iter()
            .filter(|c| definition.is_none_or(|d| d.is_essential(&c.name)))
            .collect();
        if filtered.is_empty() {
            change.containers.iter().collect()
        } else {
            filtered
        }
    };
    let stop_code = change
        .stop_code
        .as_deref()
        .unwrap_or_else(|| infer_stop_code(task_reason));

    // 1. The task never got going: keep ECS's reason.
    if stop_code == "TaskFailedToStart" || is_start_failure(task_reason) {
        let failed = change
            .containers
            .iter()
            .find(|c| c.reason.as_deref().is_some_and(is_start_failure));
        return match failed {
            Some(container) if task_reason.is_empty() || !is_start_failure(task_reason) => {
                Classification::container(Class::FailedToStart, container, change)
            }
            _ => Classification {
                container: failed.map(|c| c.name.clone()),
                ..Classification::task(Class::FailedToStart, change)
            },
        };
    }
    // 2. AWS took the capacity back.
    if stop_code == "SpotInterruption" || stop_code == "TerminationNotice" {
        return Classification::task(Class::SpotInterruption, change);
    }
    // 3. Out of memory: a container's reason, or exit 137 with the task's OOM reason.
    if let Some(container) = essential
        .iter()
        .find(|c| c.reason.as_deref().is_some_and(is_oom))
    {
        return Classification::container(Class::Oom, container, change);
    }
    if is_oom(task_reason) {
        let killed = essential
            .iter()
            .find(|c| c.exit_code == Some(137))
            .or_else(|| {
                essential
                    .iter()
                    .find(|c| c.exit_code.is_some_and(|code| code != 0))
            });
        return match killed {
            Some(container) => Classification {
                reason: Some(task_reason.to_owned()),
                ..Classification::container(Class::Oom, container, change)
            },
            None => Classification::task(Class::Oom, change),
        };
    }
    // 4. Health checks.
    if task_reason.to_ascii_lowercase().contains("health check") {
        return Classification::task(Class::Unhealthy, change);
    }
    // 5. Stopped on purpose.
    match stop_code {
        "UserInitiated" if task_reason.starts_with(TIMEOUT_REASON_PREFIX) => {
            return Classification::task(Class::Timeout, change);
        }
        "UserInitiated" => return Classification::task(Class::UserStopped, change),
        "ServiceSchedulerInitiated" => return Classification::task(Class::ScaledIn, change),
        _ => {}
    }
    // 6. The containers' own outcome. Exit 143 (SIGTERM) is usually ECS stopping the other
    //    containers after the first essential one exited: blame another container first.
    let non_zero: Vec<&&ContainerState> = essential
        .iter()
        .filter(|c| c.exit_code.is_some_and(|code| code != 0))
        .collect();
    if let Some(container) = non_zero
        .iter()
        .find(|c| c.exit_code != Some(143))
        .or_else(|| non_zero.first())
    {
        return Classification::container(Class::NonZeroExit, container, change);
    }
    if let Some(container) = essential
        .iter()
        .find(|c| c.exit_code.is_none() && c.reason.as_deref().is_some_and(is_start_failure))
    {
        return Classification::container(Class::FailedToStart, container, change);
    }
    if !essential.is_empty() && essential.iter().all(|c| c.exit_code == Some(0)) {
        return Classification::new(Class::Succeeded);
    }
    let reason = essential
        .iter()
        .find_map(|c| c.reason.clone())
        .or_else(|| change.stopped_reason.clone());
    Classification {
        reason,
        ..Classification::new(Class::Unknown)
    }
}

/// Older events (and some EC2 stops) have no `stopCode`: infer it from well-known reasons.
fn infer_stop_code(reason: &str) -> &'static str {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("spot task was interrupted") || lower.contains("spot interruption") {
        "SpotInterruption"
    } else if lower.starts_with("task stopped by user") || lower.starts_with(TIMEOUT_REASON_PREFIX)
    {
        "UserInitiated"
    } else if lower.starts_with("scaling activity initiated by") {
        "ServiceSchedulerInitiated"
    } else if lower.starts_with("essential container in task exited") {
        "EssentialContainerExited"
    } else {
        ""
    }
}
