//! The metric lines the launcher and the tracker print, against moto: an S3 event launched
//! (with the invocation's X-Ray trace passed into the task as `TRACEPARENT`), delivered again
//! with another trace (nothing new started), then the task's RUNNING and STOPPED changes through
//! the tracker. Each function's `handle_to` writes its lines where `handle` writes them to
//! stdout; every line is one EMF document, checked against the specification and the catalogue.

use aws_sdk_ecs::types::Task;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use jobrunner_aws::Adapters;
use jobrunner_aws::ecs::EcsTasks;
use jobrunner_aws::state_store::StateStore;
use jobrunner_aws::task_definitions::TaskDefinitions;
use jobrunner_core::Config;
use jobrunner_integration_tests::REGION;
use jobrunner_integration_tests::fixtures::{
    LaunchFixture, create_state_table, keep_tasks_running,
};
use jobrunner_lambda::Invocation;
use serde_json::{Value, json};

const TABLE: &str = "jobrunner-state";
const XRAY_A: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const XRAY_B: &str = "Root=1-6a1b2c3d-00112233445566778899aabb;Parent=0f0e0d0c0b0a0908;Sampled=1";

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The lines `out` holds, each parsed and checked against the EMF specification.
fn lines(out: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(out).expect("UTF-8 lines");
    text.lines()
        .map(|line| {
            let document: Value = serde_json::from_str(line).expect("one JSON document per line");
            jobrunner_core::metrics::check(&document).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert_eq!(
                document["_aws"]["CloudWatchMetrics"][0]["Namespace"],
                "jobrunner"
            );
            document
        })
        .collect()
}

/// The document that defines `metric`.
fn with<'a>(documents: &'a [Value], metric: &str) -> &'a Value {
    documents
        .iter()
        .find(|d| d.get(metric).is_some())
        .unwrap_or_else(|| panic!("no {metric} in {documents:?}"))
}

fn object_created(key: &str, time: DateTime<Utc>) -> Value {
    json!({
        "version": "0", "id": "00000000-0000-4000-8000-000000000001", "detail-type": "Object Created",
        "source": "aws.s3", "account": "123456789012",
        "time": time.to_rfc3339_opts(SecondsFormat::Secs, true), "region": REGION,
        "resources": ["arn:aws:s3:::uploads"],
        "detail": {"version": "0", "bucket": {"name": "uploads"},
            "object": {"key": key, "size": 2048, "etag": "d41d8cd98f00b204e9800998ecf8427e",
                "sequencer": "0000000000000000A1"},
            "request-id": "R", "requester": "123456789012", "reason": "PutObject"}
    })
}

fn env_of(task: &Task, name: &str) -> Option<String> {
    task.overrides()?
        .container_overrides()
        .iter()
        .flat_map(|c| c.environment())
        .find(|kv| kv.name() == Some(name))
        .and_then(|kv| kv.value().map(str::to_owned))
}

/// An ECS Task State Change of `task`: created at `created`, RUNNING from +12 s, and when
/// `stopped` is given, STOPPED then with exit code 0.
fn task_change(
    task: &Task,
    version: u64,
    created: DateTime<Utc>,
    stopped: Option<DateTime<Utc>>,
) -> Value {
    let mut event = jobrunner_testkit::sample("ecs-task-running");
    let arn = task.task_arn().unwrap();
    let environment: Vec<Value> = task.overrides().unwrap().container_overrides()[0]
        .environment()
        .iter()
        .map(|kv| json!({"name": kv.name(), "value": kv.value()}))
        .collect();
    let status = if stopped.is_some() {
        "STOPPED"
    } else {
        "RUNNING"
    };
    event["id"] = json!(format!("{arn}-{version}"));
    let detail = &mut event["detail"];
    detail["taskArn"] = json!(arn);
    detail["clusterArn"] = json!(task.cluster_arn());
    detail["taskDefinitionArn"] = json!(task.task_definition_arn());
    detail["startedBy"] = json!(task.started_by());
    detail["group"] = json!("family:thumbnails");
    detail["cpu"] = json!("512");
    detail["memory"] = json!("1024");
    detail["capacityProviderName"] = json!("FARGATE");
    detail["overrides"] =
        json!({"containerOverrides": [{"name": "app", "environment": environment}]});
    detail["version"] = json!(version);
    detail["lastStatus"] = json!(status);
    detail["desiredStatus"] = json!(status);
    detail["createdAt"] = json!(rfc3339(created));
    detail["pullStartedAt"] = json!(rfc3339(created + Duration::seconds(2)));
    detail["pullStoppedAt"] = json!(rfc3339(created + Duration::seconds(8)));
    detail["startedAt"] = json!(rfc3339(created + Duration::seconds(12)));
    let mut container = detail["containers"][0].clone();
    container["taskArn"] = json!(arn);
    container["lastStatus"] = json!(status);
    if let Some(stopped) = stopped {
        container["exitCode"] = json!(0);
        detail["stopCode"] = json!("EssentialContainerExited");
        detail["stoppedReason"] = json!("Essential container in task exited");
        detail["stoppingAt"] = json!(rfc3339(stopped - Duration::seconds(1)));
        detail["executionStoppedAt"] = json!(rfc3339(stopped - Duration::seconds(1)));
        detail["stoppedAt"] = json!(rfc3339(stopped));
    }
    detail["containers"] = json!([container]);
    event
}

struct World {
    fx: LaunchFixture,
    config: Config,
    ports: Adapters,
}

impl World {
    async fn new() -> World {
        keep_tasks_running();
        let fx = LaunchFixture::new().await;
        create_state_table(&fx.account, TABLE).await;
        let config = fx.config(&format!(
            "[state]\ntable = \"{TABLE}\"\n\n\
             [jobs.thumbnails]\ntask_definition = \"thumbnails\"\ncontainer = \"app\"\n\
             cpu = 512\nmemory = 1024\nmax_running = 2\n\n\
             [[triggers.s3]]\njob = \"thumbnails\"\nbucket = \"uploads\"\n"
        ));
        let ports = Adapters {
            ecs: Some(EcsTasks::new(fx.account.ecs())),
            task_definitions: Some(TaskDefinitions::new(fx.account.ecs())),
            state: Some(StateStore::new(fx.account.dynamodb(), TABLE)),
            ..Adapters::default()
        };
        World { fx, config, ports }
    }

    /// The launcher on `payload` now, with the X-Ray header `xray`: its answer and its lines.
    async fn launcher(&self, payload: Value, xray: &str) -> (Value, Vec<Value>) {
        let invocation = Invocation {
            xray_trace_id: Some(xray.into()),
            ..Invocation::now(payload)
        };
        let mut out = vec![];
        let answer =
            jobrunner_launcher::handle_to(&self.config, &self.ports, &invocation, &mut out)
                .await
                .expect("the launcher answers");
        (answer, lines(&out))
    }

    async fn tracker(&self, payload: Value) -> (Value, Vec<Value>) {
        let mut out = vec![];
        let answer = jobrunner_tracker::handle_to(
            &self.config,
            &self.ports,
            &Invocation::now(payload),
            &mut out,
        )
        .await
        .expect("the tracker answers");
        (answer, lines(&out))
    }
}

#[tokio::test]
async fn a_run_s_metric_lines_from_launch_to_finish() {
    let world = World::new().await;
    let event_time = Utc::now() - Duration::seconds(5);
    let event = object_created("images/a.jpg", event_time);

    // Launched: the slot taken, then the launch with its latency and queue wait.
    let (answer, documents) = world.launcher(event.clone(), XRAY_A).await;
    assert_eq!(answer["launched"], 1, "{answer}");
    assert_eq!(documents.len(), 2, "{documents:?}");
    let slots = with(&documents, "running");
    assert_eq!(
        (&slots["job"], &slots["running"], &slots["max_running"]),
        (&json!("thumbnails"), &json!(1), &json!(2))
    );
    let launched = with(&documents, "runs_launched");
    assert_eq!(launched["job"], "thumbnails");
    let latency = launched["launch_latency"].as_i64().unwrap();
    assert!((0..5_000).contains(&latency), "{latency} ms");
    let waited = launched["queue_wait"].as_f64().unwrap();
    // The event's time has whole seconds; RunTask answered after it was 5 s old.
    assert!((4.0..15.0).contains(&waited), "{waited} s");
    // No object key, no run id in any line.
    for document in &documents {
        let line = document.to_string();
        assert!(!line.contains("images/a.jpg"), "{line}");
    }

    let tasks = world.fx.tasks("jobrunner/thumbnails").await;
    assert_eq!(tasks.len(), 1);
    let task = &tasks[0];
    assert_eq!(
        env_of(task, "TRACEPARENT").as_deref(),
        Some("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"),
        "the invocation's sampled X-Ray trace is the task's parent"
    );
    let run_id = env_of(task, "JOB_RUN_ID").expect("JOB_RUN_ID");
    for document in &documents {
        assert!(!document.to_string().contains(&run_id));
    }

    // The same event again, under another X-Ray trace: the ledger knows its task.
    let (answer, documents) = world.launcher(event, XRAY_B).await;
    assert_eq!(answer["already_launched"], 1, "{answer}");
    assert_eq!(documents.len(), 1, "{documents:?}");
    assert_eq!(
        with(&documents, "runs_already_launched")["job"],
        "thumbnails"
    );
    assert_eq!(
        world.fx.tasks("jobrunner/thumbnails").await.len(),
        1,
        "one task"
    );

    // RUNNING: 12 s after the task was created.
    let created = Utc::now();
    let (answer, documents) = world.tracker(task_change(task, 2, created, None)).await;
    assert_eq!(answer["recorded"], 1, "{answer}");
    assert_eq!(documents.len(), 1, "{documents:?}");
    assert_eq!(with(&documents, "time_to_running")["time_to_running"], 12.0);

    // The same RUNNING change again counts nothing.
    let (_, documents) = world.tracker(task_change(task, 2, created, None)).await;
    assert!(documents.is_empty(), "{documents:?}");

    // STOPPED after 60 s: duration and cost, the run finished, the slot given back.
    let (answer, documents) = world
        .tracker(task_change(
            task,
            3,
            created,
            Some(created + Duration::seconds(72)),
        ))
        .await;
    assert_eq!(answer["recorded"], 1, "{answer}");
    let duration = with(&documents, "run_duration");
    assert_eq!(duration["run_duration"], 60.0);
    assert!(duration["run_cost"].as_f64().unwrap() > 0.0, "{duration}");
    let finished = with(&documents, "runs_finished");
    assert_eq!(
        (&finished["job"], &finished["outcome"], &finished["class"]),
        (
            &json!("thumbnails"),
            &json!("succeeded"),
            &json!("succeeded")
        )
    );
    assert_eq!(
        finished["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["job", "outcome"], ["job", "outcome", "class"]])
    );
    let slots = with(&documents, "running");
    assert_eq!(
        (&slots["running"], &slots["max_running"]),
        (&json!(0), &json!(2))
    );
    assert_eq!(documents.len(), 3, "{documents:?}");
}
