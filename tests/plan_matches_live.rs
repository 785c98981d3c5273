//! The dry run is the truth: for every sample event in `events/`, and for SQS batches of stops
//! (a redelivery, thirty stops of one job), the calls `jobrunner plan` prints are the requests
//! the function sends to moto, captured on the wire: same operations, same inputs, same order.
//!
//! Each case runs in a fresh account that matches the dry run's documented world (nothing
//! running, an empty queue, nothing in the state table), with the sample's task definitions
//! registered there.

use chrono::{DateTime, Utc};
use jobrunner_aws::Adapters;
use jobrunner_aws::ecs::EcsTasks;
use jobrunner_aws::ecs_service::EcsServices;
use jobrunner_aws::sns::SnsTopic;
use jobrunner_aws::sqs_queue::SqsQueues;
use jobrunner_aws::state_store::StateStore;
use jobrunner_aws::task_definitions::TaskDefinitions;
use jobrunner_core::Config;
use jobrunner_core::config::Format;
use jobrunner_core::dryrun::{self, Function, World};
use jobrunner_core::ports::ManualClock;
use jobrunner_core::scaler::Scaler;
use jobrunner_integration_tests::fixtures::{LaunchFixture, alert_topic, worker_environment};
use jobrunner_integration_tests::request_log::RequestLog;
use jobrunner_lambda::Invocation;
use jobrunner_testkit::{repo_root, sample_names, sqs_batch};
use serde_json::{Value, json};

const TABLE: &str = "jobrunner-state";

/// One fresh account with everything the example config names, and that config.
struct Case {
    fx: LaunchFixture,
    config: Config,
    log: RequestLog,
}

impl Case {
    async fn new() -> Case {
        let fx = LaunchFixture::new().await;
        let (topic_arn, _inbox) = alert_topic(&fx.account).await;
        let queue_url = worker_environment(&fx.account, TABLE).await;
        let text = std::fs::read_to_string(repo_root().join("examples/jobrunner.toml"))
            .unwrap()
            .replace(
                "subnets = [\"subnet-0abc\", \"subnet-0def\"]",
                &format!("subnets = [\"{}\"]", fx.subnet),
            )
            .replace(
                "security_groups = [\"sg-0123\"]",
                &format!("security_groups = [\"{}\"]", fx.security_group),
            )
            .replace(
                "capacity = [\"FARGATE_SPOT\", \"FARGATE\"]",
                "capacity = [\"FARGATE\"]",
            )
            .replace(
                "https://sqs.us-east-1.amazonaws.com/123456789012/orders",
                &queue_url,
            )
            .replace(
                "arn:aws:sns:us-east-1:123456789012:jobrunner-alerts",
                &topic_arn,
            );
        let config = Config::parse(&text, Format::Toml).expect("the example, localized");
        Case {
            fx,
            config,
            log: RequestLog::default(),
        }
    }

    /// What the function sent for `payload`.
    async fn live(
        &self,
        function: Function,
        payload: &Value,
        now: DateTime<Utc>,
    ) -> Vec<(String, Value)> {
        let account = &self.fx.account;
        let log = &self.log;
        log.take();
        match function {
            Function::Launcher => {
                // As the launcher's main builds them: ECS, and for this config the ledger's
                // table, the queue events wait in and the topic of `launch_failed` alerts.
                let topic = self.config.alerts.as_ref().unwrap().topic_arn.clone();
                let ports: Adapters = Adapters {
                    ecs: Some(EcsTasks::new(log.ecs(account))),
                    state: Some(StateStore::new(log.dynamodb(account), TABLE)),
                    queues: Some(SqsQueues::new(log.sqs(account))),
                    topic: Some(SnsTopic::new(log.sns(account), topic)),
                    ..Adapters::default()
                };
                let _ = jobrunner_launcher::handle(
                    &self.config,
                    &ports,
                    &Invocation::at(payload.clone(), now),
                )
                .await;
            }
            Function::Tracker => {
                let topic = self.config.alerts.as_ref().unwrap().topic_arn.clone();
                let ports: Adapters = Adapters {
                    topic: Some(SnsTopic::new(log.sns(account), topic)),
                    task_definitions: Some(TaskDefinitions::new(log.ecs(account))),
                    state: Some(StateStore::new(log.dynamodb(account), TABLE)),
                    ..Adapters::default()
                };
                let _ = jobrunner_tracker::handle(
                    &self.config,
                    &ports,
                    &Invocation::at(payload.clone(), now),
                )
                .await;
            }
            Function::Scaler => {
                let ports = Adapters {
                    ecs: None,
                    task_definitions: None,
                    topic: None,
                    state: Some(StateStore::new(log.dynamodb(account), TABLE)),
                    queues: Some(SqsQueues::new(log.sqs(account))),
                    services: Some(EcsServices::new(log.ecs(account))),
                    objects: None,
                    clock: ManualClock::new(now),
                };
                Scaler::new(&self.config.workers, &ports)
                    .handle(payload, None)
                    .await;
            }
        }
        log.take()
    }

    /// What `jobrunner plan` prints for `payload`, as (operation, input).
    fn planned(
        &self,
        function: Function,
        payload: &Value,
        now: DateTime<Utc>,
        world: World,
    ) -> Vec<(String, Value)> {
        let plan = dryrun::dry_run_now(&self.config, function, payload, now, world).expect("plans");
        plan.actions
            .into_iter()
            .map(|a| (a.operation.to_string(), a.input))
            .collect()
    }
}

/// The sample with its task definitions pointed at the revision registered in the account.
fn localized(payload: &Value) -> Value {
    let text = payload.to_string();
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("task-definition/") {
        let (head, tail) = rest.split_at(at + "task-definition/".len());
        out.push_str(head);
        let family_end = tail.find(':').unwrap_or(tail.len());
        out.push_str(&tail[..family_end]);
        let revision = &tail[family_end..];
        let digits = revision
            .chars()
            .skip(1)
            .take_while(char::is_ascii_digit)
            .count();
        out.push_str(":1");
        rest = &revision[(1 + digits).min(revision.len())..];
    }
    out.push_str(rest);
    serde_json::from_str(&out).unwrap()
}

fn function_for(name: &str, payload: &Value) -> Function {
    if name.starts_with("scaler") {
        Function::Scaler
    } else {
        Function::for_payload(payload)
    }
}

fn time_of(payload: &Value) -> DateTime<Utc> {
    payload["time"]
        .as_str()
        .and_then(|t| t.parse::<DateTime<Utc>>().ok())
        .map(|t| t + chrono::Duration::seconds(1))
        .unwrap_or_else(|| "2026-11-22T06:00:30Z".parse().unwrap())
}

/// Compares plan and wire for `payload`; returns how many calls were compared.
async fn assert_same(name: &str, function: Function, payload: Value) -> usize {
    let case = Case::new().await;
    let world = World::for_config(&case.config);
    assert_same_in(&case, name, function, payload, world).await
}

async fn assert_same_in(
    case: &Case,
    name: &str,
    function: Function,
    payload: Value,
    world: World,
) -> usize {
    compare_in(case, name, function, payload, world)
        .await
        .unwrap_or_else(|difference| panic!("{difference}"))
}

/// Plan and wire for `payload`: the number of calls when they are the same, else what differs.
async fn compare_in(
    case: &Case,
    name: &str,
    function: Function,
    payload: Value,
    world: World,
) -> Result<usize, String> {
    let now = time_of(&payload);
    let mut planned = case.planned(function, &payload, now, world);
    let mut live = case.live(function, &payload, now).await;
    if function == Function::Launcher {
        let placed = placed_task_arns(&mut live);
        assert!(
            placed
                .iter()
                .all(|arn| arn.starts_with("arn:aws:ecs:us-east-1:") && arn.contains(":task/")),
            "{name}: {placed:?}"
        );
        placed_task_arns(&mut planned);
    }
    let show = |calls: &[(String, Value)]| {
        calls
            .iter()
            .map(|(op, input)| format!("  {op} {input}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let operations =
        |calls: &[(String, Value)]| calls.iter().map(|(op, _)| op.clone()).collect::<Vec<_>>();
    if operations(&planned) != operations(&live) {
        return Err(format!(
            "{name}: operations differ\nplan:\n{}\nlive:\n{}",
            show(&planned),
            show(&live)
        ));
    }
    for ((op, plan), (_, sent)) in planned.iter().zip(&live) {
        if plan != sent {
            return Err(format!(
                "{name}: {op} input differs\nplan: {plan}\nlive: {sent}"
            ));
        }
    }
    Ok(live.len())
}

/// The one thing the dry run cannot know is the ARN ECS gives the task it places, which the
/// launcher then writes in the run's ledger record. Replaces it in every run record written
/// (both sides alike) and returns the ARNs it replaced; everything else must match as is.
fn placed_task_arns(calls: &mut [(String, Value)]) -> Vec<String> {
    let mut placed = vec![];
    for (op, input) in calls.iter_mut() {
        let is_run = input["Item"]["pk"]["S"]
            .as_str()
            .is_some_and(|key| key.starts_with(jobrunner_core::ledger::keys::RUN_PREFIX));
        if op != "PutItem" || !is_run {
            continue;
        }
        let data = &mut input["Item"]["data"]["S"];
        let mut run: Value = serde_json::from_str(data.as_str().unwrap()).unwrap();
        for attempt in run["attempts"].as_array_mut().into_iter().flatten() {
            if let Some(arn) = attempt.get_mut("task_arn") {
                placed.push(arn.as_str().unwrap_or_default().to_string());
                *arn = json!("(the task ECS placed)");
            }
        }
        *data = json!(run.to_string());
    }
    placed
}

#[tokio::test]
async fn every_sample_event_plans_exactly_what_the_function_sends() {
    let mut checked = vec![];
    let mut calls = std::collections::BTreeMap::new();
    let mut differences = vec![];
    for name in sample_names() {
        // A batch task's run depends on HeadObject's real ETag and time, which a dry run
        // cannot know: tests/s3_batch.rs checks those against moto.
        if name.starts_with("s3-batch-") {
            continue;
        }
        let payload = localized(&jobrunner_testkit::sample(&name));
        let function = function_for(&name, &payload);
        let case = Case::new().await;
        let world = World::for_config(&case.config);
        match compare_in(&case, &name, function, payload, world).await {
            Ok(compared) => *calls.entry(format!("{function:?}")).or_insert(0) += compared,
            Err(difference) => differences.push(difference),
        }
        checked.push(name);
    }
    // Every sample is compared before failing, so one report names every difference.
    assert!(differences.is_empty(), "{}", differences.join("\n\n"));
    assert!(checked.len() >= 20, "{checked:?}");
    // Not a comparison of empty lists: every function made calls the plan had to match.
    for function in ["Launcher", "Tracker", "Scaler"] {
        assert!(calls.get(function).copied().unwrap_or(0) > 0, "{calls:?}");
    }
    eprintln!("calls compared on the wire: {calls:?}");
}

#[tokio::test]
async fn a_redelivered_stop_plans_exactly_what_the_tracker_sends() {
    let stop = localized(&jobrunner_testkit::sample("ecs-task-stopped-oom")).to_string();
    let calls = assert_same(
        "redelivery",
        Function::Tracker,
        sqs_batch(&[stop.clone(), stop]),
    )
    .await;
    // GetItem, DescribeTaskDefinition, one Publish, PutItem: the redelivery adds nothing.
    assert_eq!(calls, 4);
}

#[tokio::test]
async fn thirty_stops_of_one_job_plan_exactly_what_the_tracker_sends() {
    let stop = localized(&jobrunner_testkit::sample("ecs-task-stopped-oom"));
    let bodies: Vec<String> = (0..30)
        .map(|i| {
            let mut stop = stop.clone();
            stop["detail"]["taskArn"] = json!(format!(
                "arn:aws:ecs:us-east-1:123456789012:task/jobs/{i:032x}"
            ));
            stop.to_string()
        })
        .collect();
    let calls = assert_same("thirty stops", Function::Tracker, sqs_batch(&bodies)).await;
    // 30 GetItem, one DescribeTaskDefinition, one digest Publish, 30 PutItem.
    assert_eq!(calls, 62);
}

#[tokio::test]
async fn a_scaler_tick_with_a_backlog_plans_exactly_what_the_scaler_sends() {
    let case = Case::new().await;
    let queue_url = &case.config.workers["orders"].queue_url;
    let sqs = case.fx.account.sqs();
    for i in 0..25 {
        sqs.send_message()
            .queue_url(queue_url)
            .message_body(format!("order {i}"))
            .send()
            .await
            .unwrap();
    }
    let world = World {
        visible: 25,
        ..World::for_config(&case.config)
    };
    let payload = jobrunner_testkit::sample("scaler-tick");
    let calls = assert_same_in(
        &case,
        "scaler tick with 25 messages",
        Function::Scaler,
        payload,
        world,
    )
    .await;
    // GetItem, GetQueueAttributes, DescribeServices, PutItem, UpdateService.
    assert_eq!(calls, 5);
}
