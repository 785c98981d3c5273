//! A run's record moving forward: every transition, duplicates and late deliveries, cancel,
//! and the cost of an attempt.

use serde_json::{Value, json};

use super::*;
use crate::alert::classify;

fn at(minute: u32) -> DateTime<Utc> {
    format!("2026-11-25T10:{minute:02}:00Z").parse().unwrap()
}

fn change(status: &str, version: u64, extra: Value) -> TaskStateChange {
    let mut detail = json!({
        "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/jobs/abc",
        "lastStatus": status,
        "version": version,
        "cpu": "1024",
        "memory": "2048",
        "capacityProviderName": "FARGATE",
        "createdAt": "2026-11-25T10:00:00Z",
        "overrides": {"containerOverrides": [{"name": "app", "environment": [
            {"name": "JOB_NAME", "value": "thumbnails"},
            {"name": "JOB_TRIGGER", "value": "s3"},
            {"name": "JOB_RUN_ID", "value": "r1"},
            {"name": "JOB_ATTEMPT", "value": "1"},
            {"name": "JOB_BUCKET", "value": "uploads"},
            {"name": "JOB_KEY", "value": "a b.jpg"},
            {"name": "JOB_SIZE", "value": "42"},
            {"name": "JOB_ETAG", "value": ""}
        ]}]},
        "containers": [{"name": "app"}]
    });
    if let (Some(d), Value::Object(extra)) = (detail.as_object_mut(), extra) {
        d.extend(extra);
    }
    TaskStateChange::from_detail(&detail).unwrap()
}

fn running() -> TaskStateChange {
    change(
        "RUNNING",
        3,
        json!({"startedAt": "2026-11-25T10:01:00Z", "pullStartedAt": "2026-11-25T10:00:30Z"}),
    )
}

fn stopped(exit: i64) -> TaskStateChange {
    change(
        "STOPPED",
        5,
        json!({"startedAt": "2026-11-25T10:01:00Z", "pullStartedAt": "2026-11-25T10:00:30Z",
            "stoppedAt": "2026-11-25T10:11:00Z", "stopCode": "EssentialContainerExited",
            "stoppedReason": "Essential container in task exited",
            "containers": [{"name": "app", "exitCode": exit}]}),
    )
}

fn launched_run() -> Run {
    let input = RunInput::from_task(&running()).unwrap();
    let mut run = Run::new("r1", "thumbnails", input, at(0), at(0));
    run.launched(
        &Launched {
            attempt: 1,
            client_token: "jr1-abc",
            task_arn: "arn:aws:ecs:us-east-1:123456789012:task/jobs/abc",
            capacity_provider: Some("FARGATE"),
            cpu: Some(1024),
            memory: Some(2048),
        },
        at(0),
    );
    run
}

fn observe(run: &mut Run, change: &TaskStateChange) -> bool {
    let classification = change.is_stopped().then(|| classify(change, None));
    run.observe(1, change, classification.as_ref(), None, None, at(20))
}

#[test]
fn the_input_comes_back_from_the_tasks_variables() {
    assert_eq!(
        RunInput::from_task(&running()),
        Some(RunInput::S3 {
            bucket: "uploads".into(),
            key: "a b.jpg".into(),
            version_id: None,
            etag: None,
            size: Some(42)
        })
    );
    assert_eq!(
        RunInput::from_task(&running()).unwrap().describe(),
        "s3://uploads/a b.jpg"
    );
}

#[test]
fn waiting_launching_running_succeeded() {
    let input = RunInput::from_task(&running()).unwrap();
    let mut run = Run::new("r1", "thumbnails", input, at(0), at(0));
    assert_eq!(run.state, RunState::Waiting);
    assert!(run.wait("at its cap", at(0)));
    assert!(
        !run.wait("at its cap", at(1)),
        "the same wait writes nothing"
    );
    let mut run = launched_run();
    assert_eq!(run.state, RunState::Launching);
    assert_eq!(run.reason, None);
    assert!(observe(&mut run, &running()));
    assert_eq!(run.state, RunState::Running);
    assert!(observe(&mut run, &stopped(0)));
    assert_eq!(run.state, RunState::Succeeded);
    let attempt = run.last_attempt().unwrap();
    assert_eq!(attempt.exit_codes["app"], 0);
    assert_eq!(attempt.class, Some(Class::Succeeded));
    assert_eq!(attempt.start_seconds(), Some(60));
    assert_eq!(attempt.run_seconds(), Some(600));
}

#[test]
fn a_non_zero_exit_fails_the_run() {
    let mut run = launched_run();
    observe(&mut run, &stopped(3));
    assert_eq!(run.state, RunState::Failed);
    assert_eq!(run.last_attempt().unwrap().class, Some(Class::NonZeroExit));
}

#[test]
fn duplicates_and_late_deliveries_never_move_a_run_backwards() {
    let mut run = launched_run();
    assert!(observe(&mut run, &stopped(0)));
    let done = run.clone();
    assert!(!observe(&mut run, &stopped(0)), "a duplicate is not taken");
    assert!(
        !observe(&mut run, &running()),
        "an older RUNNING is not taken"
    );
    let mut stale = change("PENDING", 9, json!({}));
    stale.version = None;
    assert!(!observe(&mut run, &stale), "no version, earlier status");
    assert_eq!(run.state, done.state);
    assert_eq!(run.attempts, done.attempts);
    // STOPPED first, RUNNING later: the same end.
    let mut other = launched_run();
    observe(&mut other, &stopped(0));
    observe(&mut other, &running());
    assert_eq!(other.state, RunState::Succeeded);
    assert_eq!(other.last_attempt().unwrap().started_at, Some(at(1)));
}

#[test]
fn cancel_is_final_and_its_stop_stays_cancelled() {
    let mut run = launched_run();
    observe(&mut run, &running());
    run.cancel("arn:aws:iam::123456789012:user/ops", at(5))
        .unwrap();
    assert_eq!(run.state, RunState::Cancelled);
    let mut stop = stopped(137);
    stop.stopped_reason = Some(format!("{CANCEL_REASON_PREFIX}arn:aws:iam::1:user/ops"));
    observe(&mut run, &stop);
    assert_eq!(run.state, RunState::Cancelled);
    let err = run.cancel("someone", at(6)).unwrap_err();
    assert!(err.contains("already ended (cancelled)"), "{err}");
    // A cancel whose ledger write was lost is still read from the stop reason.
    let mut unrecorded = launched_run();
    observe(&mut unrecorded, &stop);
    assert_eq!(unrecorded.state, RunState::Cancelled);
}

#[test]
fn a_stop_records_its_cost_checked_by_hand() {
    let mut run = launched_run();
    observe(&mut run, &stopped(0));
    // Billed from the image pull (10:00:30) to the stop (10:11:00): 630 s of 1 vCPU and 2 GB
    // on-demand in us-east-1: 630 × 0.04048 / 3600 + 1260 × 0.004445 / 3600 = 0.0086397 USD.
    let cost = run.last_attempt().unwrap().cost.unwrap();
    assert_eq!(cost.vcpu_seconds, 630.0);
    assert_eq!(cost.gb_seconds, 1260.0);
    assert!((cost.usd - 0.008_639_7).abs() < 1e-7, "{}", cost.usd);
    assert_eq!(run.cost(), Some(cost));
}

#[test]
fn a_refused_run_ends_once_and_can_launch_after_a_redrive() {
    let mut run = launched_run();
    run.attempts.clear();
    run.state = RunState::Waiting;
    assert!(run.end_unlaunched(RunState::Failed, "inactive task definition", at(1)));
    assert!(!run.end_unlaunched(RunState::Failed, "inactive task definition", at(2)));
    assert_eq!(run.reason.as_deref(), Some("inactive task definition"));
    let relaunched = launched_run();
    let mut again = run.clone();
    again.launched(
        &Launched {
            attempt: 1,
            client_token: "jr1-abc",
            task_arn: "arn:aws:ecs:us-east-1:123456789012:task/jobs/abc",
            capacity_provider: None,
            cpu: None,
            memory: None,
        },
        at(3),
    );
    assert_eq!(again.state, relaunched.state);
}

#[test]
fn state_names_are_the_documented_words() {
    assert_eq!(
        RunState::NAMES,
        &[
            "waiting",
            "launching",
            "running",
            "succeeded",
            "failed",
            "timed_out",
            "cancelled",
            "skipped"
        ]
    );
    assert_eq!(
        serde_json::to_value(RunState::TimedOut).unwrap(),
        "timed_out"
    );
}

#[test]
fn a_launch_recorded_after_the_tasks_stop_keeps_the_outcome() {
    // The tracker saw the task stop before the launcher wrote down its launch.
    let input = RunInput::from_task(&running()).unwrap();
    let mut run = Run::new("r1", "thumbnails", input, at(0), at(0));
    observe(&mut run, &stopped(1));
    assert_eq!(run.state, RunState::Failed);
    run.launched(
        &Launched {
            attempt: 1,
            client_token: "jr1-abc",
            task_arn: "arn:aws:ecs:us-east-1:123456789012:task/jobs/abc",
            capacity_provider: Some("FARGATE"),
            cpu: Some(1024),
            memory: Some(2048),
        },
        at(12),
    );
    assert_eq!(run.state, RunState::Failed);
    assert_eq!(run.attempts.len(), 1);
    assert_eq!(
        run.last_attempt().unwrap().client_token.as_deref(),
        Some("jr1-abc")
    );
}

#[test]
fn a_rerun_plans_the_next_attempt_of_an_ended_run_only() {
    let mut run = launched_run();
    let err = run.plan_rerun("ops", at(1)).unwrap_err();
    assert!(err.contains("launching"), "{err}");
    observe(&mut run, &stopped(1));
    assert_eq!(run.plan_rerun("ops", at(20)), Ok(2));
    assert_eq!(run.state, RunState::Waiting);
    let planned = run.last_attempt().unwrap();
    assert!(planned.is_planned());
    assert_eq!((planned.cpu, planned.memory), (Some(1024), Some(2048)));
    assert_eq!(planned.why.as_deref(), Some("rerun by ops"));
    let mut cancelled = launched_run();
    cancelled.cancel("ops", at(1)).unwrap();
    assert!(cancelled.plan_rerun("ops", at(2)).is_err());
}
