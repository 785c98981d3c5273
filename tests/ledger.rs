//! The run ledger against moto: S3 events through the launcher and ECS task state changes
//! through the tracker, each run read back from the DynamoDB state table.
//!
//! Every test has its own moto account with the cluster, the state table (with its listing
//! index), the launcher's own queue (where events wait their turn at a job's cap) and the alert
//! topic with an SQS inbox subscribed. Task state changes are built from the launched task as
//! moto describes it (its ARN, cluster, task definition and the launcher's overrides), as ECS
//! would send them, with the times and `detail.version` the test chooses.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ecs::types::Task;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use jobrunner_aws::Adapters;
use jobrunner_aws::ecs::EcsTasks;
use jobrunner_aws::sns::SnsTopic;
use jobrunner_aws::sqs_queue::SqsQueues;
use jobrunner_aws::state_store::StateStore;
use jobrunner_aws::task_definitions::TaskDefinitions;
use jobrunner_core::Config;
use jobrunner_core::cost::{self, Prices};
use jobrunner_core::event;
use jobrunner_core::ledger::{Ledger, ScheduleWatch, keys};
use jobrunner_core::run::{CANCEL_REASON_PREFIX, Run, RunState};
use jobrunner_integration_tests::fixtures::{
    LaunchFixture, alert_topic, create_state_table, keep_tasks_running,
};
use jobrunner_integration_tests::request_log::RequestLog;
use jobrunner_integration_tests::{Account, REGION};
use jobrunner_lambda::Invocation;
use jobrunner_testkit::{failed_ids, sqs_batch_of_events};
use serde_json::{Value, json};

const TABLE: &str = "jobrunner-state";
const RETENTION_DAYS: i64 = 7;
/// Seconds a waiting event sleeps before it looks again (kept short: moto honours the delay).
const WAIT_SECONDS: u32 = 2;

/// When the tests' events happen.
fn t0() -> DateTime<Utc> {
    "2026-11-25T10:00:00Z".parse().unwrap()
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One account with everything the ledger's config names, and the ports of both functions.
struct World {
    fx: LaunchFixture,
    config: Config,
    ports: Adapters,
    /// Requests sent by the launcher's SQS client (SendMessage of waiting events).
    sqs_log: RequestLog,
    launcher_queue: String,
    alert_inbox: String,
}

impl World {
    /// `jobs` is the config's jobs and triggers (after `[state]`, `[launcher]`, `[alerts]`).
    async fn new(jobs: &str) -> World {
        keep_tasks_running();
        let fx = LaunchFixture::new().await;
        let account = fx.account.clone();
        create_state_table(&account, TABLE).await;
        let (topic_arn, alert_inbox) = alert_topic(&account).await;
        let launcher_queue = account
            .sqs()
            .create_queue()
            .queue_name("jobrunner-launcher")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let config = fx.config(&format!(
            "[state]\ntable = \"{TABLE}\"\nretention_days = {RETENTION_DAYS}\n\n\
             [launcher]\nqueue_url = \"{launcher_queue}\"\nwait_seconds = {WAIT_SECONDS}\n\n\
             [alerts]\ntopic_arn = \"{topic_arn}\"\n\n{jobs}"
        ));
        let sqs_log = RequestLog::default();
        let ports = Adapters {
            ecs: Some(EcsTasks::new(account.ecs())),
            task_definitions: Some(TaskDefinitions::new(account.ecs())),
            state: Some(StateStore::new(account.dynamodb(), TABLE)),
            queues: Some(SqsQueues::new(sqs_log.sqs(&account))),
            topic: Some(SnsTopic::new(account.sns(), &topic_arn)),
            ..Adapters::default()
        };
        World {
            fx,
            config,
            ports,
            sqs_log,
            launcher_queue,
            alert_inbox,
        }
    }

    fn account(&self) -> &Account {
        &self.fx.account
    }

    /// The launcher Lambda on `payload` at `now`.
    async fn launcher(&self, payload: Value, now: DateTime<Utc>) -> Value {
        jobrunner_launcher::handle(&self.config, &self.ports, &Invocation::at(payload, now))
            .await
            .expect("the launcher answers")
    }

    /// The tracker Lambda on `payload` at `now`.
    async fn tracker(&self, payload: Value, now: DateTime<Utc>) -> Value {
        jobrunner_tracker::handle(&self.config, &self.ports, &Invocation::at(payload, now))
            .await
            .expect("the tracker answers")
    }

    fn ledger(&self) -> Ledger<'_, Adapters> {
        Ledger::new(&self.ports, self.config.state.as_ref().unwrap())
    }

    /// The run and its item version, as the ledger reads them.
    async fn run(&self, run_id: &str) -> (Run, u64) {
        self.ledger()
            .load::<Run>(&keys::run_key(run_id))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("run {run_id} is in the ledger"))
    }

    /// The run's raw item (to see the attributes around the document).
    async fn item(&self, run_id: &str) -> std::collections::HashMap<String, AttributeValue> {
        self.account()
            .dynamodb()
            .get_item()
            .table_name(TABLE)
            .key("pk", AttributeValue::S(keys::run_key(run_id)))
            .send()
            .await
            .unwrap()
            .item
            .expect("the run's item")
    }

    /// The job's tasks as moto describes them, oldest first.
    async fn tasks(&self, started_by: &str) -> Vec<Task> {
        let mut tasks = self.fx.tasks(started_by).await;
        tasks.sort_by_key(|t| t.created_at().map(|c| c.as_nanos()));
        tasks
    }

    /// Messages in `queue_url` (receiving and deleting them), waiting up to `seconds` for
    /// `expected` of them.
    async fn drain(&self, queue_url: &str, expected: usize, seconds: i32) -> Vec<String> {
        let sqs = self.account().sqs();
        let mut bodies = vec![];
        let mut waited = 0;
        loop {
            let out = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            for message in out.messages.unwrap_or_default() {
                bodies.push(message.body.clone().unwrap());
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(message.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
            }
            waited += 1;
            if (expected > 0 && bodies.len() >= expected) || waited >= seconds {
                return bodies;
            }
        }
    }

    /// The alerts delivered so far: (class attribute, the JSON document).
    async fn alerts(&self, expected: usize) -> Vec<(String, Value)> {
        let seconds = if expected == 0 { 2 } else { 5 };
        self.drain(&self.alert_inbox, expected, seconds)
            .await
            .iter()
            .map(|body| {
                let envelope: Value = serde_json::from_str(body).unwrap();
                let class = envelope["MessageAttributes"]["class"]["Value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let document = serde_json::from_str(envelope["Message"].as_str().unwrap())
                    .unwrap_or(Value::Null);
                (class, document)
            })
            .collect()
    }
}

/// An EventBridge "Object Created" event for `key` in bucket `uploads` at `time`.
fn object_created(key: &str, n: u64, time: DateTime<Utc>) -> Value {
    json!({
        "version": "0", "id": format!("00000000-0000-4000-8000-{n:012}"), "detail-type": "Object Created",
        "source": "aws.s3", "account": "123456789012",
        "time": time.to_rfc3339_opts(SecondsFormat::Secs, true), "region": REGION,
        "resources": ["arn:aws:s3:::uploads"],
        "detail": {"version": "0", "bucket": {"name": "uploads"},
            "object": {"key": key, "size": 2048, "etag": "d41d8cd98f00b204e9800998ecf8427e",
                "sequencer": format!("{n:018X}")},
            "request-id": "R", "requester": "123456789012", "reason": "PutObject"}
    })
}

/// An EventBridge rule's scheduled event (the tracker's one-minute sweep, or a job's tick).
fn scheduled_event(rule: &str, time: DateTime<Utc>) -> Value {
    json!({"version": "0", "id": format!("tick-{rule}-{}", time.timestamp()), "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012",
        "time": time.to_rfc3339_opts(SecondsFormat::Secs, true), "region": REGION,
        "resources": [format!("arn:aws:events:us-east-1:123456789012:rule/{rule}")], "detail": {}})
}

fn env_of(task: &Task, name: &str) -> Option<String> {
    task.overrides()?
        .container_overrides()
        .iter()
        .flat_map(|c| c.environment())
        .find(|kv| kv.name() == Some(name))
        .and_then(|kv| kv.value().map(str::to_owned))
}

/// The run a launched task belongs to (its `JOB_RUN_ID`).
fn run_id_of(task: &Task) -> String {
    env_of(task, "JOB_RUN_ID").expect("a jobrunner task names its run")
}

/// How a task stopped.
#[derive(Clone, Copy)]
struct Stop<'a> {
    exit_code: i64,
    stop_code: &'a str,
    reason: &'a str,
}

const EXITED: Stop<'static> = Stop {
    exit_code: 0,
    stop_code: "EssentialContainerExited",
    reason: "Essential container in task exited",
};

/// An ECS Task State Change of `task` (as moto describes it) at `status`, with `version`:
/// created at `launched`, image pulled from +2 s, RUNNING from +10 s, stopped at `stopped_at`.
fn task_change(
    task: &Task,
    version: u64,
    launched: DateTime<Utc>,
    stopped_at: Option<(DateTime<Utc>, Stop<'_>)>,
) -> Value {
    let mut event = jobrunner_testkit::sample("ecs-task-running");
    let arn = task.task_arn().unwrap();
    let overrides = task.overrides().unwrap();
    let container_overrides: Vec<Value> = overrides
        .container_overrides()
        .iter()
        .map(|c| {
            json!({
                "name": c.name(),
                "command": c.command(),
                "environment": c.environment().iter()
                    .map(|kv| json!({"name": kv.name(), "value": kv.value()}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let status = if stopped_at.is_some() {
        "STOPPED"
    } else {
        "RUNNING"
    };
    let time = stopped_at.map_or(launched + Duration::seconds(10), |(t, _)| t);
    event["id"] = json!(format!("{arn}-{version}"));
    event["time"] = json!(time.to_rfc3339_opts(SecondsFormat::Secs, true));
    event["resources"] = json!([arn]);
    let detail = &mut event["detail"];
    detail["taskArn"] = json!(arn);
    detail["clusterArn"] = json!(task.cluster_arn());
    detail["taskDefinitionArn"] = json!(task.task_definition_arn());
    detail["startedBy"] = json!(task.started_by());
    detail["group"] = json!(format!(
        "family:{}",
        env_of(task, "JOB_NAME").unwrap_or_default()
    ));
    // ECS reports the task's size as RunTask overrode it.
    detail["cpu"] = json!(overrides.cpu().or(task.cpu()));
    detail["memory"] = json!(overrides.memory().or(task.memory()));
    detail["capacityProviderName"] = json!("FARGATE");
    detail["overrides"] = json!({"containerOverrides": container_overrides});
    detail["version"] = json!(version);
    detail["lastStatus"] = json!(status);
    detail["desiredStatus"] = json!(status);
    detail["createdAt"] = json!(rfc3339(launched));
    detail["pullStartedAt"] = json!(rfc3339(launched + Duration::seconds(2)));
    detail["pullStoppedAt"] = json!(rfc3339(launched + Duration::seconds(8)));
    detail["startedAt"] = json!(rfc3339(launched + Duration::seconds(10)));
    detail["updatedAt"] = json!(rfc3339(time));
    let mut container = detail["containers"][0].clone();
    container["taskArn"] = json!(arn);
    container["lastStatus"] = json!(status);
    if let Some((stopped, stop)) = stopped_at {
        container["exitCode"] = json!(stop.exit_code);
        detail["stopCode"] = json!(stop.stop_code);
        detail["stoppedReason"] = json!(stop.reason);
        detail["stoppingAt"] = json!(rfc3339(stopped - Duration::seconds(1)));
        detail["executionStoppedAt"] = json!(rfc3339(stopped - Duration::seconds(1)));
        detail["stoppedAt"] = json!(rfc3339(stopped));
    }
    detail["containers"] = json!([container]);
    event
}

/// The thumbnails job: 0.5 vCPU, 1 GB; `extra` adds to the job's table.
fn thumbnails(extra: &str) -> String {
    format!(
        "[jobs.thumbnails]\ntask_definition = \"thumbnails\"\ncontainer = \"app\"\n\
         command = [\"resize\", \"s3://{{bucket}}/{{key}}\"]\ncpu = 512\nmemory = 1024\n{extra}\n\n\
         [[triggers.s3]]\njob = \"thumbnails\"\nbucket = \"uploads\"\nprefix = \"images/\"\n"
    )
}

#[tokio::test]
async fn a_run_moves_from_launching_to_running_to_succeeded() {
    let world = World::new(&thumbnails("")).await;
    let launched = at(0);
    let summary = world
        .launcher(object_created("images/a.jpg", 1, at(-2)), launched)
        .await;
    assert_eq!(summary["launched"], 1, "{summary}");

    let tasks = world.tasks("jobrunner/thumbnails").await;
    assert_eq!(tasks.len(), 1);
    let task = &tasks[0];
    let run_id = run_id_of(task);
    let (run, _) = world.run(&run_id).await;
    assert_eq!(run.state, RunState::Launching);
    assert_eq!(run.job, "thumbnails");
    assert_eq!(run.input.describe(), "s3://uploads/images/a.jpg");
    assert_eq!(
        run.queued_at,
        at(-2),
        "its place in line is the event's time"
    );
    assert_eq!(run.attempts.len(), 1);
    let attempt = &run.attempts[0];
    assert_eq!(attempt.number, 1);
    assert_eq!(attempt.task_arn.as_deref(), task.task_arn());
    assert_eq!(attempt.capacity_provider.as_deref(), Some("FARGATE"));
    assert_eq!((attempt.cpu, attempt.memory), (Some(512), Some(1024)));
    assert_eq!(attempt.launched_at, Some(launched));
    let token = attempt.client_token.as_deref().expect("the clientToken");
    assert!(
        token.len() <= 64 && token.bytes().all(|b| (33..=126).contains(&b)),
        "{token}"
    );
    assert_eq!(jobrunner_core::token::run_id(token), run_id);

    // RUNNING (version 2).
    let running = task_change(task, 2, launched, None);
    let summary = world.tracker(running, at(11)).await;
    assert_eq!(summary["recorded"], 1, "{summary}");
    let (run, _) = world.run(&run_id).await;
    assert_eq!(run.state, RunState::Running);
    assert_eq!(run.attempts[0].started_at, Some(at(10)));
    assert_eq!(run.attempts[0].last_status.as_deref(), Some("RUNNING"));

    // STOPPED, exit 0 (version 3), five minutes after the image pull began.
    let stopped = at(302);
    let stop = task_change(task, 3, launched, Some((stopped, EXITED)));
    let summary = world.tracker(stop, at(303)).await;
    assert_eq!(summary["recorded"], 1, "{summary}");
    assert_eq!(
        summary["published"], 0,
        "a success is not alerted: {summary}"
    );
    let (run, _) = world.run(&run_id).await;
    assert_eq!(run.state, RunState::Succeeded);
    let attempt = &run.attempts[0];
    assert_eq!(attempt.stopped_at, Some(stopped));
    assert_eq!(attempt.exit_codes.get("app"), Some(&0));
    assert_eq!(attempt.class.map(|c| c.as_str()), Some("succeeded"));
    assert_eq!(
        attempt.stop_code.as_deref(),
        Some("EssentialContainerExited")
    );
    assert_eq!(attempt.run_seconds(), Some(292));
    // Billed from the image pull (+2 s) to the stop: 300 s of 0.5 vCPU and 1 GB, on demand.
    let cost = attempt.cost.expect("a cost estimate");
    assert_eq!(cost.vcpu_seconds, 150.0);
    assert_eq!(cost.gb_seconds, 300.0);
    let expected = cost::estimate(&Prices::for_region(REGION, None), false, 512, 1024, 300);
    assert_eq!(cost.usd, expected.usd);
    // (150 × 0.04048 + 300 × 0.004445) / 3600 USD.
    assert!((cost.usd - 0.002_057_08).abs() < 1e-7, "{}", cost.usd);
    assert_eq!(run.cost(), Some(cost));
    assert!(world.alerts(0).await.is_empty());
}

#[tokio::test]
async fn a_non_zero_exit_fails_the_run_and_its_repeated_stop_alerts_once() {
    let world = World::new(&thumbnails("")).await;
    world
        .launcher(object_created("images/b.jpg", 2, at(-1)), at(0))
        .await;
    let task = world.tasks("jobrunner/thumbnails").await.remove(0);
    let run_id = run_id_of(&task);
    let failed = Stop {
        exit_code: 1,
        ..EXITED
    };
    let stop = task_change(&task, 3, at(0), Some((at(60), failed)));

    let first = world.tracker(stop.clone(), at(61)).await;
    assert_eq!(
        (&first["recorded"], &first["published"]),
        (&json!(1), &json!(1)),
        "{first}"
    );
    let (run, version) = world.run(&run_id).await;
    assert_eq!(run.state, RunState::Failed);
    assert_eq!(run.attempts[0].exit_codes.get("app"), Some(&1));
    assert_eq!(
        run.attempts[0].class.map(|c| c.as_str()),
        Some("non_zero_exit")
    );

    // The same stop again, a minute later: nothing written, nothing published.
    let again = world.tracker(stop, at(120)).await;
    assert_eq!(again["published"], 0, "{again}");
    assert_eq!(again["duplicates"], 1, "{again}");
    assert_eq!(
        world.run(&run_id).await,
        (run, version),
        "the record is untouched"
    );
    let alerts = world.alerts(1).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].0, "non_zero_exit");
    assert_eq!(
        alerts[0].1["tasks"][0]["task_arn"].as_str(),
        task.task_arn()
    );
}

#[tokio::test]
async fn a_late_running_event_never_moves_a_stopped_run_back() {
    let world = World::new(&thumbnails("")).await;
    world
        .launcher(object_created("images/c.jpg", 3, at(-1)), at(0))
        .await;
    let task = world.tasks("jobrunner/thumbnails").await.remove(0);
    let run_id = run_id_of(&task);

    // STOPPED (version 3) arrives first; RUNNING (version 2) is delivered late.
    world
        .tracker(task_change(&task, 3, at(0), Some((at(90), EXITED))), at(91))
        .await;
    let (stopped, version) = world.run(&run_id).await;
    assert_eq!(stopped.state, RunState::Succeeded);
    world
        .tracker(task_change(&task, 2, at(0), None), at(95))
        .await;
    let (run, after) = world.run(&run_id).await;
    assert_eq!(run.state, RunState::Succeeded);
    assert_eq!(run.attempts[0].last_status.as_deref(), Some("STOPPED"));
    assert_eq!(run.attempts[0].version, Some(3));
    assert_eq!((run, after), (stopped, version), "nothing written");
}

#[tokio::test]
async fn a_run_item_expires_retention_days_after_its_last_change() {
    let world = World::new(&thumbnails("")).await;
    world
        .launcher(object_created("images/d.jpg", 4, at(-1)), at(0))
        .await;
    let task = world.tasks("jobrunner/thumbnails").await.remove(0);
    let run_id = run_id_of(&task);
    let expiry = |item: &std::collections::HashMap<String, AttributeValue>| {
        let updated: DateTime<Utc> = item["updated_at"].as_s().unwrap().parse().unwrap();
        let expires: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
        (updated, expires)
    };
    let (updated, expires) = expiry(&world.item(&run_id).await);
    assert_eq!(updated, at(0));
    assert_eq!(expires, at(0).timestamp() + RETENTION_DAYS * 86_400);
    assert_eq!(expires, 1_796_205_600, "2026-12-02T10:00:00Z");

    // Each change pushes the expiry on.
    world
        .tracker(
            task_change(&task, 3, at(0), Some((at(600), EXITED))),
            at(601),
        )
        .await;
    let item = world.item(&run_id).await;
    let (updated, expires) = expiry(&item);
    assert_eq!(updated, at(601));
    assert_eq!(expires, at(601).timestamp() + RETENTION_DAYS * 86_400);
    // The run is listed under the day it was queued.
    assert_eq!(item["list_pk"].as_s().unwrap(), "runs#2026-11-25");
    assert_eq!(
        item["list_sk"].as_s().unwrap(),
        &format!("2026-11-25T09:59:59.000Z#{run_id}")
    );
}

#[tokio::test]
async fn at_the_cap_the_second_event_waits_in_the_launcher_queue_and_launches_after_a_stop() {
    let world = World::new(&thumbnails("max_running = 1")).await;
    let first = object_created("images/first.jpg", 10, at(-2));
    let second = object_created("images/second.jpg", 11, at(-1));
    let summary = world.launcher(first, at(0)).await;
    assert_eq!(summary["launched"], 1, "{summary}");
    world.sqs_log.take();
    let summary = world.launcher(second.clone(), at(1)).await;
    assert_eq!(summary["waiting"], 1, "{summary}");

    let tasks = world.tasks("jobrunner/thumbnails").await;
    assert_eq!(tasks.len(), 1, "one task under the cap of 1");
    let sent: Vec<_> = world
        .sqs_log
        .take()
        .into_iter()
        .filter(|(op, _)| op == "SendMessage")
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let input = &sent[0].1;
    assert_eq!(input["QueueUrl"], world.launcher_queue.as_str());
    // First in line: it looks again after the head-of-line delay (at most wait_seconds).
    assert_eq!(input["DelaySeconds"], WAIT_SECONDS);

    // The waiting run is in the ledger, named by the second object.
    let second_run = jobrunner_core::token::run_id(&jobrunner_core::token::for_object(
        "thumbnails",
        match &event::decode_event(&second).unwrap()[0] {
            event::Event::ObjectCreated(object) => object,
            other => panic!("{other:?}"),
        },
    ));
    let (run, _) = world.run(&second_run).await;
    assert_eq!(run.state, RunState::Waiting);
    assert!(
        run.reason.as_deref().unwrap_or_default().contains("cap"),
        "{:?}",
        run.reason
    );

    // The message in moto's queue is the same event.
    let bodies = world
        .drain(&world.launcher_queue, 1, 2 + WAIT_SECONDS as i32)
        .await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let resent: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(
        event::decode_event(&resent).unwrap(),
        event::decode_event(&second).unwrap()
    );

    // Still full: the redelivered event waits again (and is sent back once more).
    let batch = sqs_batch_of_events(&[("w1".into(), resent.clone())]);
    let summary = world.launcher(batch.clone(), at(5)).await;
    assert_eq!(failed_ids(&summary), Vec::<String>::new(), "acknowledged");
    assert_eq!(world.tasks("jobrunner/thumbnails").await.len(), 1);
    world
        .drain(&world.launcher_queue, 1, 2 + WAIT_SECONDS as i32)
        .await;

    // The first task stops: the tracker frees its slot, and the waiting event launches.
    let first_task = &tasks[0];
    world
        .tracker(
            task_change(first_task, 3, at(0), Some((at(30), EXITED))),
            at(31),
        )
        .await;
    world.sqs_log.take();
    let summary = world.launcher(batch, at(35)).await;
    assert_eq!(failed_ids(&summary), Vec::<String>::new());
    let tasks = world.tasks("jobrunner/thumbnails").await;
    assert_eq!(tasks.len(), 2, "the waiting event launched");
    assert_eq!(run_id_of(&tasks[1]), second_run);
    assert!(
        world
            .sqs_log
            .take()
            .iter()
            .all(|(op, _)| op != "SendMessage"),
        "nothing more waits"
    );
    let (run, _) = world.run(&second_run).await;
    assert_eq!(run.state, RunState::Launching);
    assert_eq!(run.task_arn(), tasks[1].task_arn());
}

#[tokio::test]
async fn a_cancelled_run_stays_cancelled_and_is_not_alerted() {
    let world = World::new(&thumbnails("")).await;
    world
        .launcher(object_created("images/e.jpg", 5, at(-1)), at(0))
        .await;
    let task = world.tasks("jobrunner/thumbnails").await.remove(0);
    let run_id = run_id_of(&task);
    world
        .tracker(task_change(&task, 2, at(0), None), at(11))
        .await;

    // What `jobrunner run cancel` does: the ledger first, then StopTask with the reason.
    let cancelled_at = at(20);
    let run = world
        .ledger()
        .update(
            &keys::run_key(&run_id),
            None,
            cancelled_at,
            |run: &mut Option<Run>| {
                run.as_mut()
                    .is_some_and(|r| r.cancel("alice", cancelled_at).is_ok())
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.state, RunState::Cancelled);
    let reason = format!("{CANCEL_REASON_PREFIX}alice");
    world
        .account()
        .ecs()
        .stop_task()
        .cluster("jobs")
        .task(task.task_arn().unwrap())
        .reason(&reason)
        .send()
        .await
        .unwrap();
    // ECS reports StopTask's reason as the task's stoppedReason.
    let stopped_task = world.tasks("jobrunner/thumbnails").await.remove(0);
    assert_eq!(stopped_task.stopped_reason(), Some(reason.as_str()));

    let stop = Stop {
        exit_code: 143,
        stop_code: "UserInitiated",
        reason: stopped_task.stopped_reason().unwrap(),
    };
    let summary = world
        .tracker(
            task_change(&stopped_task, 4, at(0), Some((at(25), stop))),
            at(26),
        )
        .await;
    assert_eq!(summary["published"], 0, "{summary}");
    let (run, _) = world.run(&run_id).await;
    assert_eq!(run.state, RunState::Cancelled);
    assert_eq!(run.cancelled_by.as_deref(), Some("alice"));
    assert_eq!(run.attempts[0].stopped_at, Some(at(25)));
    assert_eq!(run.attempts[0].reason.as_deref(), Some(reason.as_str()));
    assert!(world.alerts(0).await.is_empty(), "no alert for a cancel");
}

#[tokio::test]
async fn a_task_definition_that_does_not_exist_fails_the_run_with_one_launch_failed_alert() {
    let world = World::new(
        "[jobs.ghost]\ntask_definition = \"ghost\"\ncontainer = \"app\"\n\n\
         [[triggers.s3]]\njob = \"ghost\"\nbucket = \"uploads\"\nprefix = \"ghosts/\"\n",
    )
    .await;
    let object = object_created("ghosts/boo.jpg", 6, at(-1));
    let batch = sqs_batch_of_events(&[("g1".into(), object.clone())]);

    let response = world.launcher(batch.clone(), at(0)).await;
    assert_eq!(
        failed_ids(&response),
        ["g1"],
        "to the DLQ, to be redriven once fixed"
    );
    assert!(world.tasks("jobrunner/ghost").await.is_empty());
    let run_id = jobrunner_core::token::run_id(&jobrunner_core::token::for_object(
        "ghost",
        match &event::decode_event(&object).unwrap()[0] {
            event::Event::ObjectCreated(object) => object,
            other => panic!("{other:?}"),
        },
    ));
    let (run, _) = world.run(&run_id).await;
    assert_eq!(run.state, RunState::Failed);
    assert!(run.attempts.iter().all(|a| a.task_arn.is_none()));
    assert!(run.reason.is_some());

    // SQS redelivers it: still failed, no second alert.
    let response = world.launcher(batch, at(200)).await;
    assert_eq!(failed_ids(&response), ["g1"]);
    let (again, _) = world.run(&run_id).await;
    assert_eq!(again.state, RunState::Failed);
    let alerts = world.alerts(1).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let (class, document) = &alerts[0];
    assert_eq!(class, "launch_failed");
    assert_eq!(document["class"], "launch_failed");
    assert_eq!(document["job"], "ghost");
    assert_eq!(document["input"], "s3://uploads/ghosts/boo.jpg");
    assert_eq!(document["run_id"], run_id.as_str());
}

#[tokio::test]
async fn a_schedule_tick_that_never_came_is_a_missed_schedule_alert() {
    let world = World::new(
        "[jobs.report]\ntask_definition = \"report\"\ncontainer = \"app\"\n\n\
         [[triggers.schedule]]\nname = \"hourly-quiet\"\njob = \"report\"\nexpression = \"rate(1 hour)\"\n\n\
         [[triggers.schedule]]\nname = \"hourly-ticking\"\njob = \"report\"\nexpression = \"rate(1 hour)\"\n",
    )
    .await;
    let sweep = |time| scheduled_event("jobrunner-tracker-sweep", time);

    // The first sweep starts watching both schedules.
    let summary = world.tracker(sweep(at(0)), at(0)).await;
    assert_eq!(summary["sweep"]["schedules_checked"], 2, "{summary}");
    assert_eq!(summary["sweep"]["missed_ticks"], 0, "{summary}");
    let (watch, _) = world
        .ledger()
        .load::<ScheduleWatch>(&keys::schedule_key("hourly-quiet"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(watch.watched_since, at(0));

    // An hour on, only 'hourly-ticking' fires (the launcher records its tick); 'hourly-quiet'
    // is silent.
    let summary = world
        .launcher(scheduled_event("hourly-ticking", at(3600)), at(3602))
        .await;
    assert_eq!(summary["launched"], 1, "{summary}");

    // Within the grace (10 minutes) nothing is missed yet.
    let summary = world.tracker(sweep(at(3600 + 540)), at(3600 + 540)).await;
    assert_eq!(summary["sweep"]["missed_ticks"], 0, "{summary}");
    // After it, the silent schedule's tick is missed, once.
    let late = 3600 + 660;
    let summary = world.tracker(sweep(at(late)), at(late)).await;
    assert_eq!(summary["sweep"]["missed_ticks"], 1, "{summary}");
    assert_eq!(summary["sweep"]["alerts"], 1, "{summary}");
    let summary = world.tracker(sweep(at(late + 60)), at(late + 60)).await;
    assert_eq!(
        summary["sweep"]["missed_ticks"], 0,
        "reported once: {summary}"
    );

    let alerts = world.alerts(1).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let (class, document) = &alerts[0];
    assert_eq!(class, "missed_schedule");
    assert_eq!(document["job"], "report");
    assert_eq!(document["input"], "hourly-quiet@2026-11-25T11:00:00Z");
}

#[tokio::test]
async fn a_redelivered_event_finds_its_run_and_launches_nothing_new() {
    // moto ignores clientToken: only the ledger can keep a redelivery from launching again.
    let world = World::new(&thumbnails("")).await;
    let object = object_created("images/again.jpg", 20, at(-1));
    let first = world.launcher(object.clone(), at(0)).await;
    assert_eq!(first["launched"], 1, "{first}");
    let task = world.tasks("jobrunner/thumbnails").await.remove(0);
    let (before, version) = world.run(&run_id_of(&task)).await;

    let again = world.launcher(object, at(30)).await;
    assert_eq!(again["already_launched"], 1, "{again}");
    assert_eq!(world.tasks("jobrunner/thumbnails").await.len(), 1);
    assert_eq!(
        world.run(&run_id_of(&task)).await,
        (before, version),
        "the run is left as it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_launchers_never_start_more_than_the_cap() {
    const EVENTS: u64 = 12;
    const CAP: usize = 3;
    let world = std::sync::Arc::new(World::new(&thumbnails(&format!("max_running = {CAP}"))).await);
    let mut launches = tokio::task::JoinSet::new();
    for n in 0..EVENTS {
        let world = world.clone();
        launches.spawn(async move {
            let object =
                object_created(&format!("images/many-{n}.jpg"), 100 + n, at(-60 + n as i64));
            world.launcher(object, at(1)).await
        });
    }
    let (mut launched, mut waiting) = (0, 0);
    while let Some(summary) = launches.join_next().await {
        let summary = summary.unwrap();
        launched += summary["launched"].as_u64().unwrap();
        waiting += summary["waiting"].as_u64().unwrap();
    }
    assert_eq!((launched, waiting), (CAP as u64, EVENTS - CAP as u64));
    let tasks = world.tasks("jobrunner/thumbnails").await;
    assert_eq!(tasks.len(), CAP, "moto ran exactly the cap");

    // Each waiting event went back to the launcher's queue once; each run says where it is.
    let sent = world
        .sqs_log
        .take()
        .into_iter()
        .filter(|(op, _)| op == "SendMessage")
        .count();
    assert_eq!(sent, EVENTS as usize - CAP);
    let slots = world
        .ledger()
        .load::<jobrunner_core::ledger::Slots>(&keys::slots_key("thumbnails"))
        .await
        .unwrap()
        .unwrap()
        .0;
    let mut holders: Vec<String> = slots.holders.keys().cloned().collect();
    let mut running: Vec<String> = tasks.iter().map(run_id_of).collect();
    holders.sort();
    running.sort();
    assert_eq!(
        holders, running,
        "the slots are held by the runs whose tasks run"
    );
    // The others stand in line, oldest event first.
    assert_eq!(slots.line.len(), EVENTS as usize - CAP);
    assert!(
        slots
            .line
            .windows(2)
            .all(|w| w[0].queued_at <= w[1].queued_at),
        "{:?}",
        slots.line
    );
    for task in &tasks {
        assert_eq!(
            world.run(&run_id_of(task)).await.0.state,
            RunState::Launching
        );
    }
}

/// The thumbnails job with two size tiers and retries that grow on OOM.
fn growing_thumbnails() -> String {
    "[jobs.thumbnails]\ntask_definition = \"thumbnails\"\ncontainer = \"app\"\n\
     [[jobs.thumbnails.size_tiers]]\nmax_bytes = 10485760\ncpu = 512\nmemory = 1024\n\
     [[jobs.thumbnails.size_tiers]]\ncpu = 1024\nmemory = 4096\n\
     [jobs.thumbnails.retry]\nattempts = 3\nbackoff = \"1s\"\ngrow_on_oom = true\n\n\
     [[triggers.s3]]\njob = \"thumbnails\"\nbucket = \"uploads\"\nprefix = \"images/\"\n"
        .into()
}

#[tokio::test]
async fn an_oom_at_the_first_tier_is_retried_at_the_second_and_succeeds() {
    let world = World::new(&growing_thumbnails()).await;
    world
        .launcher(object_created("images/big.jpg", 1, at(-2)), at(0))
        .await;
    let tasks = world.tasks("jobrunner/thumbnails").await;
    let first = &tasks[0];
    let run_id = run_id_of(first);
    assert_eq!(first.overrides().unwrap().memory(), Some("1024"), "tier 1");

    // Attempt 1 runs out of memory after a minute.
    let mut oom = task_change(
        first,
        3,
        at(0),
        Some((
            at(72),
            Stop {
                exit_code: 137,
                stop_code: "EssentialContainerExited",
                reason: "Essential container in task exited",
            },
        )),
    );
    oom["detail"]["containers"][0]["reason"] =
        json!("OutOfMemoryError: Container killed due to memory usage");
    let summary = world.tracker(oom.clone(), at(73)).await;
    assert_eq!(summary["retries"], 1, "{summary}");
    assert_eq!(summary["published"], 0, "a retried failure is not alerted");
    let (run, _) = world.run(&run_id).await;
    assert_eq!(run.state, RunState::Waiting);
    assert_eq!(run.attempts[1].memory, Some(4096), "the next tier");
    // The redelivered stop plans nothing new (one attempt 2, one request more).
    world.tracker(oom, at(74)).await;
    assert_eq!(world.run(&run_id).await.0.attempts.len(), 2);

    // The retry request is in the launcher's queue, delayed by the backoff.
    let requests = world.drain(&world.launcher_queue, 2, 5).await;
    assert_eq!(requests.len(), 2, "one request per delivery of the stop");
    assert_eq!(requests[0], requests[1], "the same request");
    let batch = sqs_batch_of_events(&[("r1".into(), serde_json::from_str(&requests[0]).unwrap())]);
    let summary = world.launcher(batch.clone(), at(80)).await;
    assert!(failed_ids(&summary).is_empty(), "{summary}");
    // Delivered twice: the second finds attempt 2 launched.
    world.launcher(batch, at(81)).await;
    let tasks = world.tasks("jobrunner/thumbnails").await;
    assert_eq!(tasks.len(), 2, "one task per attempt");
    let second = tasks
        .iter()
        .find(|t| env_of(t, "JOB_ATTEMPT").as_deref() == Some("2"))
        .expect("attempt 2");
    assert_eq!(second.overrides().unwrap().cpu(), Some("1024"));
    assert_eq!(second.overrides().unwrap().memory(), Some("4096"));
    assert_eq!(run_id_of(second), run_id);

    // Attempt 2 succeeds: the run too, with both attempts and their costs.
    let done = task_change(second, 3, at(80), Some((at(380), EXITED)));
    world.tracker(done, at(381)).await;
    let (run, _) = world.run(&run_id).await;
    assert_eq!(run.state, RunState::Succeeded);
    assert_eq!(run.attempts.len(), 2);
    assert_eq!(run.attempts[0].class.map(|c| c.as_str()), Some("oom"));
    assert_eq!(run.attempts[1].class.map(|c| c.as_str()), Some("succeeded"));
    let cost = run.cost().unwrap();
    println!(
        "oom at tier 1 (512/1024) after 70 s, retried at tier 2 (1024/4096): succeeded after {} s; \
         2 attempts, {:.0} vCPU-s, {:.0} GB-s, ${:.5}",
        run.attempts[1].run_seconds().unwrap(),
        cost.vcpu_seconds,
        cost.gb_seconds,
        cost.usd
    );
    assert!(
        world.alerts(0).await.is_empty(),
        "nothing alerted: the run succeeded"
    );
}

#[tokio::test]
async fn a_task_past_its_max_runtime_is_stopped_and_the_run_times_out() {
    let world = World::new(&thumbnails("max_runtime = \"1m\"")).await;
    world
        .launcher(object_created("images/slow.jpg", 1, at(-2)), at(0))
        .await;
    let task = world.tasks("jobrunner/thumbnails").await.remove(0);
    let run_id = run_id_of(&task);
    // RUNNING from +10 s: still within its minute at +60 s, overdue at +75 s. (moto describes
    // no start time, so the sweep's listing path is unit-tested; this is the event path, with
    // StopTask on the wire.)
    let running = task_change(&task, 2, at(0), None);
    let summary = world.tracker(running.clone(), at(60)).await;
    assert_eq!(summary["timeouts"], 0, "{summary}");
    let summary = world.tracker(running, at(75)).await;
    assert_eq!(summary["timeouts"], 1, "{summary}");
    let stopped = world.tasks("jobrunner/thumbnails").await.remove(0);
    assert_eq!(stopped.desired_status(), Some("STOPPED"));
    assert_eq!(
        stopped.stopped_reason(),
        Some("jobrunner: timeout after 1m (max_runtime)")
    );
    // ECS's stop event names the reason: the run ends timed_out, class timeout, alerted.
    let stop = task_change(
        &task,
        4,
        at(0),
        Some((
            at(70),
            Stop {
                exit_code: 143,
                stop_code: "UserInitiated",
                reason: "jobrunner: timeout after 1m (max_runtime)",
            },
        )),
    );
    world.tracker(stop, at(71)).await;
    let (run, _) = world.run(&run_id).await;
    assert_eq!(run.state, RunState::TimedOut);
    assert_eq!(run.attempts[0].class.map(|c| c.as_str()), Some("timeout"));
    let alerts = world.alerts(1).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].0, "timeout");
}
