//! The launch policies as pure functions over what ECS reported: the concurrency cap, the
//! overlap policy of schedules, and what a RunTask answer means (started, already started,
//! no capacity: try the next provider, or a permanent failure).

use crate::config::Overlap;
use crate::job_env;
use crate::ports::{DescribedTask, RunTaskAnswer, TaskFailure};

/// Whether a job with `running` tasks may launch one more under `max_running`.
pub fn under_cap(max_running: u32, running: usize) -> bool {
    running < max_running as usize
}

/// What to do about earlier runs of a schedule when a tick arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlapDecision {
    /// A task of this very tick is already going (a redelivery after a launch).
    AlreadyStarted(Vec<String>),
    /// `forbid`: a previous run is still going; this tick is skipped.
    Skip { running: Vec<String> },
    /// `replace`: stop these, then launch.
    Replace { stop: Vec<String> },
    /// Nothing in the way.
    Launch,
}

/// Decides a tick's fate from the schedule's running tasks. `tick_time` is the tick's
/// `JOB_SCHEDULED_TIME` as jobrunner writes it (RFC 3339, seconds, UTC).
pub fn overlap(policy: Overlap, tick_time: &str, running: &[DescribedTask]) -> OverlapDecision {
    let this_tick: Vec<String> = running
        .iter()
        .filter(|t| t.env(job_env::SCHEDULED_TIME) == Some(tick_time))
        .map(|t| t.task_arn.clone())
        .collect();
    if !this_tick.is_empty() {
        return OverlapDecision::AlreadyStarted(this_tick);
    }
    let arns: Vec<String> = running.iter().map(|t| t.task_arn.clone()).collect();
    match policy {
        Overlap::Forbid if !arns.is_empty() => OverlapDecision::Skip { running: arns },
        Overlap::Replace if !arns.is_empty() => OverlapDecision::Replace { stop: arns },
        _ => OverlapDecision::Launch,
    }
}

/// What one RunTask answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// `tasks[]` holds the task: launched.
    Started(Vec<String>),
    /// The token was used before (`ConflictException`): these tasks are this event's.
    AlreadyStarted(Vec<String>),
    /// No capacity on this provider: try the next one.
    NoCapacity(String),
    /// Any other failure: permanent.
    Failed(String),
}

/// Classifies a RunTask answer. A launch counts only when `tasks[]` holds it.
pub fn attempt(answer: RunTaskAnswer) -> Attempt {
    match answer {
        RunTaskAnswer::Conflict { task_arns } => Attempt::AlreadyStarted(task_arns),
        RunTaskAnswer::Response { task_arns, .. } if !task_arns.is_empty() => {
            Attempt::Started(task_arns)
        }
        RunTaskAnswer::Response { failures, .. } => {
            let reason = if failures.is_empty() {
                "RunTask returned neither tasks nor failures".to_string()
            } else {
                failures.iter().map(describe).collect::<Vec<_>>().join("; ")
            };
            if failures.iter().any(|f| is_capacity_failure(&f.reason)) {
                Attempt::NoCapacity(reason)
            } else {
                Attempt::Failed(reason)
            }
        }
    }
}

/// Failures that another capacity provider, or a later retry, may not have: Fargate's
/// "Capacity is unavailable at this time…" and EC2's `RESOURCE:CPU`/`RESOURCE:MEMORY`.
pub fn is_capacity_failure(reason: &str) -> bool {
    reason.starts_with("Capacity is unavailable") || reason.starts_with("RESOURCE:")
}

fn describe(failure: &TaskFailure) -> String {
    match &failure.detail {
        Some(detail) => format!("{} ({detail})", failure.reason),
        None => failure.reason.clone(),
    }
}

use crate::ecs_limits::MAX_STOP_REASON_CHARS;

/// `reason` clipped to what StopTask accepts.
pub fn stop_reason(reason: &str) -> &str {
    match reason.char_indices().nth(MAX_STOP_REASON_CHARS) {
        Some((end, _)) => &reason[..end],
        None => reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(arn: &str, tick: &str) -> DescribedTask {
        DescribedTask {
            task_arn: arn.into(),
            environment: vec![(job_env::SCHEDULED_TIME.into(), tick.into())],
            ..DescribedTask::default()
        }
    }

    fn failure(reason: &str) -> TaskFailure {
        TaskFailure {
            reason: reason.into(),
            detail: None,
        }
    }

    #[test]
    fn the_cap_counts_running_tasks() {
        assert!(under_cap(2, 1));
        assert!(!under_cap(2, 2));
        assert!(!under_cap(0, 0));
    }

    #[test]
    fn overlap_recognises_this_tick_before_applying_the_policy() {
        let running = [task("a", "2026-11-22T05:00:00Z")];
        for policy in [Overlap::Allow, Overlap::Forbid, Overlap::Replace] {
            assert_eq!(
                overlap(policy, "2026-11-22T05:00:00Z", &running),
                OverlapDecision::AlreadyStarted(vec!["a".into()])
            );
        }
        let later = "2026-11-22T06:00:00Z";
        assert_eq!(
            overlap(Overlap::Forbid, later, &running),
            OverlapDecision::Skip {
                running: vec!["a".into()]
            }
        );
        assert_eq!(
            overlap(Overlap::Replace, later, &running),
            OverlapDecision::Replace {
                stop: vec!["a".into()]
            }
        );
        assert_eq!(
            overlap(Overlap::Allow, later, &running),
            OverlapDecision::Launch
        );
        assert_eq!(
            overlap(Overlap::Forbid, later, &[]),
            OverlapDecision::Launch
        );
        assert_eq!(
            overlap(Overlap::Replace, later, &[]),
            OverlapDecision::Launch
        );
    }

    #[test]
    fn run_task_answers_are_classified() {
        assert_eq!(
            attempt(RunTaskAnswer::Response {
                task_arns: vec!["t".into()],
                failures: vec![failure("Capacity is unavailable at this time")]
            }),
            Attempt::Started(vec!["t".into()])
        );
        assert_eq!(
            attempt(RunTaskAnswer::Conflict {
                task_arns: vec!["t".into()]
            }),
            Attempt::AlreadyStarted(vec!["t".into()])
        );
        assert_eq!(
            attempt(RunTaskAnswer::Response {
                task_arns: vec![],
                failures: vec![failure("RESOURCE:MEMORY")]
            }),
            Attempt::NoCapacity("RESOURCE:MEMORY".into())
        );
        assert_eq!(
            attempt(RunTaskAnswer::Response {
                task_arns: vec![],
                failures: vec![TaskFailure {
                    reason: "Capacity is unavailable at this time".into(),
                    detail: Some("us-east-1a".into())
                }]
            }),
            Attempt::NoCapacity("Capacity is unavailable at this time (us-east-1a)".into())
        );
        assert_eq!(
            attempt(RunTaskAnswer::Response {
                task_arns: vec![],
                failures: vec![failure("MISSING")]
            }),
            Attempt::Failed("MISSING".into())
        );
        assert_eq!(
            attempt(RunTaskAnswer::Response {
                task_arns: vec![],
                failures: vec![]
            }),
            Attempt::Failed("RunTask returned neither tasks nor failures".into())
        );
    }

    #[test]
    fn capacity_failures_are_recognised_by_prefix_only() {
        assert!(is_capacity_failure("RESOURCE:CPU"));
        assert!(is_capacity_failure("Capacity is unavailable at this time."));
        assert!(!is_capacity_failure("The RESOURCE:CPU"));
        assert!(!is_capacity_failure("AGENT"));
    }

    #[test]
    fn stop_reasons_are_clipped_to_255_characters() {
        let long = "é".repeat(300);
        assert_eq!(stop_reason(&long).chars().count(), 255);
        assert_eq!(stop_reason("short"), "short");
    }
}
