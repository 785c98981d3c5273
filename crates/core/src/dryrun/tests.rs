//! The dry run prints what the decision paths call, reads included, in order.

use jobrunner_testkit::{sample, sqs_batch};

use super::*;
use crate::action::Kind;
use crate::config::Format;

const CONFIG: &str = r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]

[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
max_running = 5

[jobs.report]
task_definition = "report"
container = "app"

[[triggers.s3]]
job = "thumbnails"
bucket = "uploads"

[[triggers.schedule]]
name = "hourly-report"
job = "report"
expression = "rate(1 hour)"
overlap = "forbid"

[workers.orders]
cluster = "jobs"
service = "orders"
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"
messages_per_task = 10
max_tasks = 20

[alerts]
topic_arn = "arn:aws:sns:us-east-1:123456789012:alerts"

[state]
table = "jobrunner-state"

[launcher]
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/launcher"
"#;

fn config() -> Config {
    Config::parse(CONFIG, Format::Toml).unwrap()
}

fn now() -> DateTime<Utc> {
    "2026-11-22T06:00:30Z".parse().unwrap()
}

fn plan(function: Function, payload: &Value, world: World) -> DryRun {
    dry_run_now(&config(), function, payload, now(), world).unwrap()
}

fn operations(plan: &DryRun) -> Vec<(&'static str, Kind)> {
    plan.actions.iter().map(|a| (a.operation, a.kind)).collect()
}

#[test]
fn an_object_under_a_cap_shows_the_list_then_the_run() {
    let payload = sample("s3-object-created");
    let world = World::for_config(&config());
    let plan = plan(Function::for_payload(&payload), &payload, world);
    assert_eq!(plan.function, Function::Launcher);
    // The run's record, the job's slots (taken), the task, the run launched, the key's
    // latest run.
    assert_eq!(
        operations(&plan),
        [
            ("GetItem", Kind::Read),
            ("GetItem", Kind::Read),
            ("PutItem", Kind::Write),
            ("RunTask", Kind::Write),
            ("PutItem", Kind::Write),
            ("GetItem", Kind::Read),
            ("PutItem", Kind::Write),
        ]
    );
    let key = |i: usize| plan.actions[i].input["Key"]["pk"]["S"].clone();
    let item = |i: usize| plan.actions[i].input["Item"].clone();
    let run_id = plan.actions[3].input["overrides"]["containerOverrides"][0]["environment"]
        .as_array()
        .unwrap()
        .iter()
        .find(|kv| kv["name"] == "JOB_RUN_ID")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(key(0), json!(format!("run/{run_id}")));
    assert_eq!(key(1), "slots/thumbnails");
    let slots: Value = serde_json::from_str(item(2)["data"]["S"].as_str().unwrap()).unwrap();
    assert!(slots["holders"][&run_id].is_object(), "{slots}");
    let run: Value = serde_json::from_str(item(4)["data"]["S"].as_str().unwrap()).unwrap();
    assert_eq!(run["state"], "launching");
    assert_eq!(item(4)["list_pk"]["S"], "runs#2026-11-22");
    assert_eq!(key(5), "object/thumbnails/uploads/images/cat.jpg");
    assert_eq!(plan.response["launched"], 1);
}

#[test]
fn at_the_cap_the_plan_shows_the_event_waiting() {
    let payload = sample("s3-object-created");
    let world = World {
        running: 5,
        ..World::for_config(&config())
    };
    let plan = plan(Function::Launcher, &payload, world);
    // The slots are full: they are squared with ECS, the run joins the line, is recorded
    // waiting, and its event goes back to the launcher's queue with a delay.
    assert_eq!(
        operations(&plan),
        [
            ("GetItem", Kind::Read),
            ("GetItem", Kind::Read),
            ("ListTasks", Kind::Read),
            ("DescribeTasks", Kind::Read),
            ("PutItem", Kind::Write),
            ("PutItem", Kind::Write),
            ("SendMessage", Kind::Write),
        ]
    );
    assert!(plan.failed.is_empty(), "{:?}", plan.failed);
    assert_eq!(plan.response["waiting"], 1);
    let send = &plan.actions[6].input;
    assert_eq!(
        send["QueueUrl"],
        "https://sqs.us-east-1.amazonaws.com/123456789012/launcher"
    );
    assert_eq!(send["DelaySeconds"], 10, "at the head of the line");
    let body: Value = serde_json::from_str(send["MessageBody"].as_str().unwrap()).unwrap();
    assert_eq!(
        body["detail"]["object"]["key"],
        payload["detail"]["object"]["key"]
    );
    let run: Value =
        serde_json::from_str(plan.actions[5].input["Item"]["data"]["S"].as_str().unwrap()).unwrap();
    assert_eq!(run["state"], "waiting");
    assert!(
        run["reason"]
            .as_str()
            .unwrap()
            .contains("at its cap (5 of 5"),
        "{run}"
    );
}

#[test]
fn a_forbidding_schedule_with_a_run_going_reads_and_skips() {
    let payload = sample("schedule-scheduler-input");
    let world = World {
        running: 1,
        ..World::for_config(&config())
    };
    let plan = plan(Function::Launcher, &payload, world);
    // The run's record, the tick noted in the schedule's watch, the overlap check, and the
    // run recorded as skipped.
    assert_eq!(
        operations(&plan),
        [
            ("GetItem", Kind::Read),
            ("GetItem", Kind::Read),
            ("PutItem", Kind::Write),
            ("ListTasks", Kind::Read),
            ("DescribeTasks", Kind::Read),
            ("PutItem", Kind::Write),
        ]
    );
    assert_eq!(
        plan.actions[1].input["Key"]["pk"]["S"],
        "schedule/hourly-report"
    );
    let run: Value =
        serde_json::from_str(plan.actions[5].input["Item"]["data"]["S"].as_str().unwrap()).unwrap();
    assert_eq!(run["state"], "skipped");
    assert!(plan.skipped[0].reason.contains("overlap = forbid"));
}

#[test]
fn a_batch_of_thirty_stops_of_one_job_is_one_digest() {
    let stop = sample("ecs-task-stopped-oom");
    let bodies: Vec<String> = (0..30)
        .map(|i| {
            let mut stop = stop.clone();
            stop["detail"]["taskArn"] = json!(format!(
                "arn:aws:ecs:us-east-1:123456789012:task/jobs/{i:032x}"
            ));
            stop.to_string()
        })
        .collect();
    let payload = sqs_batch(&bodies);
    let plan = plan(
        Function::for_payload(&payload),
        &payload,
        World::for_config(&config()),
    );
    assert_eq!(plan.function, Function::Tracker);
    let publishes = plan
        .actions
        .iter()
        .filter(|a| a.operation == "Publish")
        .count();
    assert_eq!(publishes, 1, "one digest, as the live tracker sends");
    let gets = plan
        .actions
        .iter()
        .filter(|a| a.operation == "GetItem")
        .count();
    let puts = plan
        .actions
        .iter()
        .filter(|a| a.operation == "PutItem")
        .count();
    assert_eq!((gets, puts), (30, 30));
    let describes = plan
        .actions
        .iter()
        .filter(|a| a.operation == "DescribeTaskDefinition")
        .count();
    assert_eq!(
        describes, 1,
        "one lookup per task definition per invocation"
    );
    let subject = plan
        .actions
        .iter()
        .find(|a| a.operation == "Publish")
        .map(|a| a.input["Subject"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    assert!(subject.contains("30 tasks"), "{subject}");
}

#[test]
fn a_redelivered_stop_is_published_once() {
    let stop = sample("ecs-task-stopped-oom").to_string();
    let payload = sqs_batch(&[stop.clone(), stop]);
    let plan = plan(Function::Tracker, &payload, World::for_config(&config()));
    assert_eq!(
        operations(&plan),
        [
            ("GetItem", Kind::Read),
            ("DescribeTaskDefinition", Kind::Read),
            ("Publish", Kind::Write),
            ("PutItem", Kind::Write),
        ]
    );
    assert_eq!(plan.response, json!({"batchItemFailures": []}));
}

#[test]
fn a_stop_nobody_asked_for_makes_no_call() {
    let payload = sample("ecs-task-stopped-succeeded");
    let plan = plan(Function::Tracker, &payload, World::for_config(&config()));
    assert!(plan.actions.is_empty());
    assert!(plan.skipped[0].reason.contains("class 'succeeded'"));
}

#[test]
fn the_scaler_tick_reads_decides_saves_and_acts() {
    let payload = sample("scaler-tick");
    let world = World {
        visible: 25,
        ..World::for_config(&config())
    };
    let plan = plan(Function::Scaler, &payload, world);
    assert_eq!(
        operations(&plan),
        [
            ("GetItem", Kind::Read),
            ("GetQueueAttributes", Kind::Read),
            ("DescribeServices", Kind::Read),
            ("PutItem", Kind::Write),
            ("UpdateService", Kind::Write),
        ]
    );
    assert_eq!(plan.actions[4].input["desiredCount"], 3);
    // The three reads go out together; the writes wait for the decision.
    let concurrent: Vec<bool> = plan.actions.iter().map(|a| a.concurrent).collect();
    assert_eq!(concurrent, [false, true, true, false, false]);
    let printed = serde_json::to_value(&plan.actions).unwrap();
    assert_eq!(printed[1]["concurrent"], true);
    assert!(printed[3].get("concurrent").is_none());
}

#[test]
fn time_comes_from_now() {
    let payload = sample("ecs-task-stopped-oom");
    let plan = plan(Function::Tracker, &payload, World::for_config(&config()));
    let put = plan
        .actions
        .iter()
        .find(|a| a.operation == "PutItem")
        .unwrap();
    assert_eq!(
        put.input["Item"]["updated_at"]["S"],
        "2026-11-22T06:00:30.000Z"
    );
}

#[test]
fn a_failed_stop_of_a_retried_job_plans_the_ledger_write_and_the_retry_request() {
    let config = Config::parse(
        &CONFIG.replace(
            "[jobs.thumbnails]\ntask_definition = \"thumbnails\"\ncontainer = \"app\"\nmax_running = 5\n",
            "[jobs.thumbnails]\ntask_definition = \"thumbnails\"\ncontainer = \"app\"\nmax_running = 5\nretry = { attempts = 2, backoff = \"1m\" }\n",
        ),
        Format::Toml,
    )
    .unwrap();
    assert!(config.job("thumbnails").unwrap().retry.is_some());
    let stop = sample("ecs-task-stopped-non-zero-exit");
    let plan = dry_run_now(
        &config,
        Function::Tracker,
        &stop,
        now(),
        World::for_config(&config),
    )
    .unwrap();
    let ops: Vec<&str> = plan.actions.iter().map(|a| a.operation).collect();
    // The run's record (the stop and the planned attempt 2 in one write), the slot, the request.
    assert_eq!(
        ops,
        [
            "DescribeTaskDefinition",
            "GetItem",
            "PutItem",
            "GetItem",
            "SendMessage"
        ],
        "{ops:?}"
    );
    let run: Value =
        serde_json::from_str(plan.actions[2].input["Item"]["data"]["S"].as_str().unwrap()).unwrap();
    assert_eq!(run["state"], "waiting");
    assert_eq!(run["attempts"][1]["number"], 2);
    let request: Value =
        serde_json::from_str(plan.actions[4].input["MessageBody"].as_str().unwrap()).unwrap();
    assert_eq!(request["source"], "jobrunner.retry");
    assert_eq!(request["attempt"], 2);
    assert!(
        !ops.contains(&"Publish"),
        "a retried failure is not alerted"
    );
}

#[test]
fn the_dry_run_plans_the_run_tasks_of_jobs_mode() {
    let config = Config::parse(
        r#"
[defaults]
subnets = ["subnet-1"]
[state]
table = "jobrunner-state"
[workers.thumbs]
mode = "jobs"
cluster = "jobs"
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/thumbs"
task_definition = "thumbs"
container = "app"
command = ["thumbs"]
messages_per_task = 10
max_tasks = 30
"#,
        Format::Toml,
    )
    .unwrap();
    let world = World {
        visible: 150,
        running: 2,
        ..World::for_config(&config)
    };
    let payload = json!({"source": "aws.events", "detail-type": "Scheduled Event", "time": "2024-01-01T12:00:00Z", "detail": {}});
    let plan = dry_run_now(&config, Function::Scaler, &payload, now(), world).unwrap();
    let operations: Vec<&str> = plan.actions.iter().map(|a| a.operation).collect();
    assert_eq!(
        operations,
        [
            "GetItem",
            "GetQueueAttributes",
            "ListTasks",
            "PutItem",
            "RunTask",
            "RunTask"
        ]
    );
    let list = &plan.actions[2];
    assert_eq!(list.input["startedBy"], "jobrunner/worker/thumbs");
    let runs: Vec<&Action> = plan
        .actions
        .iter()
        .filter(|a| a.operation == "RunTask")
        .collect();
    // 150 messages need 15 tasks; 2 are running: 13, in calls of 10 and 3.
    assert_eq!(
        (
            runs[0].input["count"].as_i64(),
            runs[1].input["count"].as_i64()
        ),
        (Some(10), Some(3))
    );
    assert_eq!(
        runs[0].input["overrides"]["containerOverrides"][0]["command"][0],
        "jobrunner-worker"
    );
    assert_eq!(runs[0].input["startedBy"], "jobrunner/worker/thumbs");
}
