//! What moto cannot show: throttling, `failures[]`, token conflicts, capacity fallback.

use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::operation::run_task::{RunTaskError, RunTaskOutput};
use aws_sdk_ecs::operation::stop_task::StopTaskOutput;
use aws_sdk_ecs::types::error::ConflictException;
use aws_sdk_ecs::types::{ContainerOverride, Failure, KeyValuePair, Task, TaskOverride};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::http::{Response as HttpResponse, StatusCode};
use aws_smithy_types::body::SdkBody;
use jobrunner_core::Config;
use jobrunner_core::Error as CoreError;
use jobrunner_core::config::Format;
use jobrunner_core::event::{ObjectCreated, ScheduleTick, TickSource};
use jobrunner_core::launcher::Outcome;
use jobrunner_core::plan::{LaunchPlan, plan_object, plan_tick};

use super::*;

const CONFIG: &str = r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]
capacity = ["FARGATE_SPOT", "FARGATE"]

[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
max_running = 2

[jobs.report]
task_definition = "report"
container = "app"

[[triggers.s3]]
job = "thumbnails"
bucket = "uploads"

[[triggers.schedule]]
name = "nightly"
job = "report"
expression = "rate(1 day)"
overlap = "forbid"

[[triggers.schedule]]
name = "refresh"
job = "report"
expression = "rate(1 hour)"
overlap = "replace"
"#;

const SCHEDULED: &str = "2026-11-22T06:00:00Z";

fn config() -> Config {
    Config::parse(CONFIG, Format::Toml).unwrap()
}

fn object_plan() -> LaunchPlan {
    let object = ObjectCreated {
        bucket: "uploads".into(),
        key: "a.jpg".into(),
        size: 1,
        etag: None,
        version_id: None,
        sequencer: Some("01".into()),
        event_time: "2026-11-22T05:00:00Z".parse().unwrap(),
    };
    plan_object(&config(), "thumbnails", &object).unwrap()
}

fn tick_plan(schedule: usize) -> LaunchPlan {
    let config = config();
    let schedule = &config.triggers.schedule[schedule];
    let tick = ScheduleTick {
        name: schedule.name.clone(),
        scheduled_time: SCHEDULED.parse().unwrap(),
        source: TickSource::Scheduler { arn: None },
    };
    plan_tick(&config, schedule, &tick).unwrap()
}

/// The launcher's own launch path over `ecs` alone (no ledger in this config).
async fn launch(ecs: &EcsTasks, plan: &LaunchPlan) -> Result<Outcome, CoreError> {
    let ports: crate::Adapters = crate::Adapters {
        ecs: Some(ecs.clone()),
        ..crate::Adapters::default()
    };
    let event = jobrunner_core::event::Event::Ignored(String::new());
    let now = "2026-11-22T06:00:30Z".parse().unwrap();
    jobrunner_core::launcher::launch(&config(), &ports, &event, Ok(plan.clone()), now).await
}

/// The ECS adapter over mocked responses. Standard retry mode here: the adaptive mode's rate
/// limiter is exercised against the fault proxy (tests/burst.rs), not under mocked time.
fn client(rules: &[&Rule]) -> EcsTasks {
    let client: Client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, rules, |c| c.retry_config(
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(1))
    ));
    EcsTasks::new(client)
}

/// Whether `request` is exactly one of `plan`'s attempts as ECS receives it: cluster, task
/// definition, count, deterministic token, `startedBy`, capacity provider and subnets.
fn is_attempt_of(
    plan: &LaunchPlan,
    request: &aws_sdk_ecs::operation::run_task::RunTaskInput,
) -> bool {
    plan.attempts.iter().any(|attempt| {
        request.cluster() == Some(attempt.cluster.as_str())
            && request.task_definition() == Some(attempt.task_definition.as_str())
            && request.count() == Some(attempt.count)
            && request.client_token() == Some(attempt.client_token.as_str())
            && request.started_by() == Some(attempt.started_by.as_str())
            && request
                .capacity_provider_strategy()
                .iter()
                .map(|item| item.capacity_provider())
                .eq(attempt
                    .capacity_provider_strategy
                    .iter()
                    .map(|item| item.capacity_provider.as_str()))
            && request
                .network_configuration()
                .and_then(|n| n.awsvpc_configuration())
                .is_some_and(|vpc| {
                    vpc.subnets()
                        == attempt
                            .network_configuration
                            .as_ref()
                            .map(|n| n.awsvpc_configuration.subnets.as_slice())
                            .unwrap_or_default()
                })
    })
}

/// RunTask answering only one of `plan`'s attempts, with a started task.
fn started(plan: &LaunchPlan, arn: &'static str) -> Rule {
    let plan = plan.clone();
    mock!(aws_sdk_ecs::Client::run_task)
        .match_requests(move |r| is_attempt_of(&plan, r))
        .then_output(move || {
            RunTaskOutput::builder()
                .tasks(Task::builder().task_arn(arn).build())
                .build()
        })
}

/// RunTask answering only one of `plan`'s attempts, with ECS's `failures[]`.
fn refused(plan: &LaunchPlan, reason: &'static str, detail: Option<&'static str>) -> Rule {
    let plan = plan.clone();
    mock!(aws_sdk_ecs::Client::run_task)
        .match_requests(move |r| is_attempt_of(&plan, r))
        .then_output(move || {
            RunTaskOutput::builder()
                .failures(
                    Failure::builder()
                        .reason(reason)
                        .set_detail(detail.map(String::from))
                        .build(),
                )
                .build()
        })
}

/// ListTasks of the `jobs` cluster, RUNNING tasks of one `startedBy` only (ECS allows no other
/// filter beside it), finding none.
fn no_running_tasks() -> Rule {
    mock!(aws_sdk_ecs::Client::list_tasks)
        .match_requests(|r| {
            r.cluster() == Some("jobs")
                && r.started_by().is_some_and(|s| s.starts_with("jobrunner/"))
                && r.desired_status() == Some(&DesiredStatus::Running)
                && r.family().is_none()
                && r.service_name().is_none()
        })
        .then_output(|| ListTasksOutput::builder().build())
}

fn task_with_tick(arn: &str, scheduled_time: &str) -> Task {
    Task::builder()
        .task_arn(arn)
        .overrides(
            TaskOverride::builder()
                .container_overrides(
                    ContainerOverride::builder()
                        .name("app")
                        .environment(
                            KeyValuePair::builder()
                                .name("JOB_SCHEDULED_TIME")
                                .value(scheduled_time)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
}

/// ListTasks finds one running task of the schedule (asked for RUNNING tasks of the schedule's
/// `startedBy` in its cluster), and DescribeTasks of exactly that task says which tick it ran.
fn one_running(plan: &LaunchPlan, arn: &'static str, scheduled_time: &'static str) -> (Rule, Rule) {
    let started_by = plan
        .overlap
        .as_ref()
        .expect("a schedule's plan")
        .started_by
        .clone();
    let list = mock!(aws_sdk_ecs::Client::list_tasks)
        .match_requests(move |r| {
            r.cluster() == Some("jobs")
                && r.started_by() == Some(started_by.as_str())
                && r.desired_status() == Some(&DesiredStatus::Running)
        })
        .then_output(move || ListTasksOutput::builder().task_arns(arn).build());
    let describe = mock!(aws_sdk_ecs::Client::describe_tasks)
        .match_requests(move |r| r.cluster() == Some("jobs") && r.tasks() == [arn])
        .then_output(move || {
            DescribeTasksOutput::builder()
                .tasks(task_with_tick(arn, scheduled_time))
                .build()
        });
    (list, describe)
}

#[tokio::test]
async fn a_launch_counts_when_tasks_holds_it() {
    let plan = object_plan();
    let run = started(&plan, "arn:task/1");
    let outcome = launch(&client(&[&no_running_tasks(), &run]), &plan)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Launched {
            job: "thumbnails".into(),
            task_arns: vec!["arn:task/1".into()],
            capacity_provider: Some("FARGATE_SPOT".into())
        }
    );
    assert_eq!(run.num_calls(), 1);
}

#[tokio::test]
async fn capacity_failure_falls_back_to_the_next_provider_with_its_own_token() {
    let plan = object_plan();
    let (spot_token, fargate_token) = (
        plan.attempts[0].client_token.clone(),
        plan.attempts[1].client_token.clone(),
    );
    let spot = mock!(aws_sdk_ecs::Client::run_task)
        .match_requests({
            let plan = plan.clone();
            move |r| is_attempt_of(&plan, r) && r.client_token() == Some(spot_token.as_str())
        })
        .then_output(|| {
            RunTaskOutput::builder()
                .failures(Failure::builder().reason("Capacity is unavailable at this time. Please try again later or in a different availability zone").build())
                .build()
        });
    let fargate = mock!(aws_sdk_ecs::Client::run_task)
        .match_requests({
            let plan = plan.clone();
            move |r| {
                is_attempt_of(&plan, r)
                    && r.client_token() == Some(fargate_token.as_str())
                    && r.capacity_provider_strategy()[0].capacity_provider() == "FARGATE"
            }
        })
        .then_output(|| {
            RunTaskOutput::builder()
                .tasks(Task::builder().task_arn("arn:task/on-demand").build())
                .build()
        });
    let outcome = launch(&client(&[&no_running_tasks(), &spot, &fargate]), &plan)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Launched {
            job: "thumbnails".into(),
            task_arns: vec!["arn:task/on-demand".into()],
            capacity_provider: Some("FARGATE".into())
        }
    );
    assert_eq!((spot.num_calls(), fargate.num_calls()), (1, 1));
}

#[tokio::test]
async fn no_capacity_anywhere_is_retryable() {
    let plan = object_plan();
    let none = refused(&plan, "Capacity is unavailable at this time.", None);
    let err = launch(&client(&[&no_running_tasks(), &none]), &plan)
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::NoCapacity { .. }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(none.num_calls(), 2, "one attempt per capacity provider");
}

#[tokio::test]
async fn other_failures_are_permanent_with_ecs_reason() {
    let plan = object_plan();
    let missing = refused(&plan, "MISSING", Some("task definition is INACTIVE"));
    let err = launch(&client(&[&no_running_tasks(), &missing]), &plan)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CoreError::LaunchFailed {
            job: "thumbnails".into(),
            reason: "MISSING (task definition is INACTIVE)".into()
        }
    );
    assert!(!err.is_retryable());
    assert_eq!(
        missing.num_calls(),
        1,
        "no fallback for non-capacity failures"
    );
}

#[tokio::test]
async fn token_conflict_means_already_started() {
    let plan = object_plan();
    let first = plan.clone();
    let conflict = mock!(aws_sdk_ecs::Client::run_task)
        .match_requests(move |r| is_attempt_of(&first, r))
        .then_error(|| {
            RunTaskError::ConflictException(
                ConflictException::builder()
                    .message("same token, other parameters")
                    .resource_ids("arn:task/original")
                    .build(),
            )
        });
    let outcome = launch(&client(&[&no_running_tasks(), &conflict]), &plan)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::AlreadyLaunched {
            job: "thumbnails".into(),
            task_arns: vec!["arn:task/original".into()]
        }
    );
}

fn throttled() -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(400).unwrap(),
        SdkBody::from(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#),
    )
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_then_succeeds() {
    let plan = object_plan();
    let first = plan.clone();
    let run = mock!(aws_sdk_ecs::Client::run_task)
        .match_requests(move |r| is_attempt_of(&first, r))
        .sequence()
        .http_response(throttled)
        .times(2)
        .output(|| {
            RunTaskOutput::builder()
                .tasks(Task::builder().task_arn("arn:task/1").build())
                .build()
        })
        .build();
    let outcome = launch(&client(&[&no_running_tasks(), &run]), &plan)
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Launched { .. }));
    assert_eq!(run.num_calls(), 3);
}

#[tokio::test]
async fn persistent_throttling_is_a_retryable_error() {
    let plan = object_plan();
    let first = plan.clone();
    let run = mock!(aws_sdk_ecs::Client::run_task)
        .match_requests(move |r| is_attempt_of(&first, r))
        .sequence()
        .http_response(throttled)
        .repeatedly()
        .build();
    let err = launch(&client(&[&no_running_tasks(), &run]), &plan)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::Call(Error::Throttled {
                operation: "RunTask",
                ..
            })
        ),
        "{err}"
    );
    assert!(err.is_retryable());
    assert_eq!(run.num_calls(), 3, "the SDK's max attempts");
}

#[tokio::test]
async fn server_errors_are_transient() {
    let plan = object_plan();
    let first = plan.clone();
    let run = mock!(aws_sdk_ecs::Client::run_task)
        .match_requests(move |r| is_attempt_of(&first, r))
        .sequence()
        .http_status(503, None)
        .repeatedly()
        .build();
    let err = launch(&client(&[&no_running_tasks(), &run]), &plan)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CoreError::Call(Error::Transient { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn at_the_cap_nothing_is_launched() {
    let plan = object_plan();
    let counted = plan.cap.clone().expect("a capped job").started_by;
    let list = mock!(aws_sdk_ecs::Client::list_tasks)
        .match_requests(move |r| {
            r.cluster() == Some("jobs")
                && r.desired_status() == Some(&DesiredStatus::Running)
                && r.started_by()
                    .is_some_and(|s| counted.iter().any(|c| c == s))
        })
        .then_output(|| {
            ListTasksOutput::builder()
                .task_arns("arn:task/1")
                .task_arns("arn:task/2")
                .build()
        });
    let run = started(&plan, "arn:task/3");
    let err = launch(&client(&[&list, &run]), &plan).await.unwrap_err();
    assert_eq!(
        err,
        CoreError::AtCap {
            job: "thumbnails".into(),
            running: 2,
            max_running: 2
        }
    );
    assert!(err.is_retryable(), "the event waits in its queue");
    assert_eq!(run.num_calls(), 0);
}

#[tokio::test]
async fn forbid_skips_while_a_previous_run_is_going() {
    let plan = tick_plan(0);
    let (list, describe) = one_running(&plan, "arn:task/old", "2026-11-21T06:00:00Z");
    let run = started(&plan, "arn:task/new");
    let outcome = launch(&client(&[&list, &describe, &run]), &plan)
        .await
        .unwrap();
    assert!(
        matches!(&outcome, Outcome::Skipped { reason } if reason.contains("arn:task/old") && reason.contains("forbid")),
        "{outcome:?}"
    );
    assert_eq!(run.num_calls(), 0);
}

#[tokio::test]
async fn replace_stops_the_previous_run_then_launches() {
    let plan = tick_plan(1);
    let (list, describe) = one_running(&plan, "arn:task/old", "2026-11-22T05:00:00Z");
    let stop = mock!(aws_sdk_ecs::Client::stop_task)
        .match_requests(|r| {
            r.cluster() == Some("jobs")
                && r.task() == Some("arn:task/old")
                && r.reason().is_some_and(|why| why.contains(SCHEDULED))
        })
        .then_output(|| StopTaskOutput::builder().build());
    let run = started(&plan, "arn:task/new");
    let outcome = launch(&client(&[&list, &describe, &stop, &run]), &plan)
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Launched { .. }));
    assert_eq!((stop.num_calls(), run.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_redelivered_tick_finds_its_own_task_and_launches_nothing() {
    let plan = tick_plan(1);
    let (list, describe) = one_running(&plan, "arn:task/this-tick", SCHEDULED);
    let stop =
        mock!(aws_sdk_ecs::Client::stop_task).then_output(|| StopTaskOutput::builder().build());
    let run = started(&plan, "arn:task/new");
    let outcome = launch(&client(&[&list, &describe, &stop, &run]), &plan)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::AlreadyLaunched {
            job: "report".into(),
            task_arns: vec!["arn:task/this-tick".into()]
        }
    );
    assert_eq!(
        (stop.num_calls(), run.num_calls()),
        (0, 0),
        "replace must not stop its own tick's task"
    );
}
