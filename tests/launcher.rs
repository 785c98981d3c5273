//! The launcher against moto: events in, tasks read back from ECS.

use std::sync::{Arc, Mutex};

use aws_sdk_ecs::operation::run_task::RunTaskInput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_types::config_bag::ConfigBag;
use jobrunner_aws::Adapters;
use jobrunner_aws::ecs::EcsTasks;
use jobrunner_integration_tests::fixtures::{LaunchFixture, keep_tasks_running, launcher_ports};
use jobrunner_lambda::Invocation;
use serde_json::{Value, json};

const THUMBNAILS: &str = r#"
[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
command = ["resize", "s3://{bucket}/{key}"]
tags = { team = "media" }

[[triggers.s3]]
job = "thumbnails"
bucket = "uploads"
prefix = "images/"
"#;

fn event(name: &str) -> Value {
    jobrunner_testkit::sample(name)
}

fn env_of(task: &aws_sdk_ecs::types::Task, name: &str) -> Option<String> {
    task.overrides()?
        .container_overrides()
        .iter()
        .flat_map(|c| c.environment())
        .find(|kv| kv.name() == Some(name))
        .and_then(|kv| kv.value().map(str::to_owned))
}

fn tick(schedule: &str, time: &str) -> Value {
    json!({"source": "jobrunner.scheduler", "schedule": schedule, "scheduled_time": time})
}

#[tokio::test]
async fn s3_event_starts_a_task_with_the_object_in_its_environment() {
    let fx = LaunchFixture::new().await;
    let config = fx.config(THUMBNAILS);
    let ecs = launcher_ports(&fx.account, None, None);

    let summary = jobrunner_launcher::handle(
        &config,
        &ecs,
        &Invocation::now(event("s3-object-created-unicode-key.json")),
    )
    .await
    .unwrap();
    assert_eq!(summary["launched"], 1);

    let tasks = fx.tasks("jobrunner/thumbnails").await;
    assert_eq!(tasks.len(), 1);
    let task = &tasks[0];
    assert_eq!(
        env_of(task, "JOB_KEY").as_deref(),
        Some("images/summer trip/Ünïcödé café + friends.jpg")
    );
    assert_eq!(env_of(task, "JOB_BUCKET").as_deref(), Some("uploads"));
    let command = task.overrides().unwrap().container_overrides()[0]
        .command()
        .to_vec();
    assert_eq!(
        command,
        [
            "resize",
            "s3://uploads/images/summer trip/Ünïcödé café + friends.jpg"
        ]
    );
    let tags: Vec<_> = task
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
        .collect();
    assert!(tags.contains(&("jobrunner:job", "thumbnails")), "{tags:?}");
    assert!(tags.contains(&("team", "media")), "{tags:?}");
}

#[tokio::test]
async fn sqs_batch_launches_the_good_messages_and_fails_the_malformed_one() {
    let fx = LaunchFixture::new().await;
    let config = fx.config(THUMBNAILS);
    let ecs = launcher_ports(&fx.account, None, None);

    let response =
        jobrunner_launcher::handle(&config, &ecs, &Invocation::now(event("sqs-batch-s3.json")))
            .await
            .unwrap();
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}]})
    );
    let mut keys: Vec<_> = fx
        .tasks("jobrunner/thumbnails")
        .await
        .iter()
        .filter_map(|t| env_of(t, "JOB_KEY"))
        .collect();
    keys.sort();
    assert_eq!(keys, ["images/cat.jpg", "images/dog.jpg"]);
}

#[tokio::test]
async fn classic_notification_in_sqs_launches_with_the_decoded_key() {
    let fx = LaunchFixture::new().await;
    let config = fx.config(THUMBNAILS);
    let response = jobrunner_launcher::handle(
        &config,
        &launcher_ports(&fx.account, None, None),
        &Invocation::now(event("sqs-s3-notification.json")),
    )
    .await
    .unwrap();
    assert_eq!(response["batchItemFailures"], json!([]));
    let tasks = fx.tasks("jobrunner/thumbnails").await;
    assert_eq!(
        env_of(&tasks[0], "JOB_KEY").as_deref(),
        Some("images/holiday photos/café & bar.jpg")
    );
}

#[tokio::test]
async fn at_the_cap_the_message_stays_in_its_queue() {
    keep_tasks_running();
    let fx = LaunchFixture::new().await;
    let config = fx.config(&THUMBNAILS.replace("tags = ", "max_running = 1\ntags = "));
    let ecs = launcher_ports(&fx.account, None, None);

    let response =
        jobrunner_launcher::handle(&config, &ecs, &Invocation::now(event("sqs-batch-s3.json")))
            .await
            .unwrap();
    let failed: Vec<_> = response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].clone())
        .collect();
    // The malformed message and the one over the cap both go back to the queue.
    assert_eq!(
        failed,
        [
            json!("2e1424d4-f796-459a-8184-9c92662be6da"),
            json!("8c5ce6b0-3b4e-4f0b-b0e5-2a0a8f8d9a11")
        ]
    );
    assert_eq!(fx.tasks("jobrunner/thumbnails").await.len(), 1);
}

const REPORT: &str = r#"
[jobs.report]
task_definition = "report"
container = "app"

[[triggers.schedule]]
name = "nightly"
job = "report"
expression = "cron(0 2 * * ? *)"
overlap = "OVERLAP"
"#;

#[tokio::test]
async fn forbid_launches_nothing_while_the_previous_run_is_going() {
    keep_tasks_running();
    let fx = LaunchFixture::new().await;
    let config = fx.config(&REPORT.replace("OVERLAP", "forbid"));
    let ecs = launcher_ports(&fx.account, None, None);

    let first = jobrunner_launcher::handle(
        &config,
        &ecs,
        &Invocation::now(tick("nightly", "2026-11-22T02:00:00Z")),
    )
    .await
    .unwrap();
    assert_eq!(first["launched"], 1);
    let second = jobrunner_launcher::handle(
        &config,
        &ecs,
        &Invocation::now(tick("nightly", "2026-11-23T02:00:00Z")),
    )
    .await
    .unwrap();
    assert_eq!(second["skipped"], 1);
    assert_eq!(fx.tasks("jobrunner/report/nightly").await.len(), 1);
}

#[tokio::test]
async fn replace_stops_the_old_run_and_starts_the_new_one() {
    keep_tasks_running();
    let fx = LaunchFixture::new().await;
    let config = fx.config(&REPORT.replace("OVERLAP", "replace"));
    let ecs = launcher_ports(&fx.account, None, None);

    jobrunner_launcher::handle(
        &config,
        &ecs,
        &Invocation::now(tick("nightly", "2026-11-22T02:00:00Z")),
    )
    .await
    .unwrap();
    let second = jobrunner_launcher::handle(
        &config,
        &ecs,
        &Invocation::now(tick("nightly", "2026-11-23T02:00:00Z")),
    )
    .await
    .unwrap();
    assert_eq!(second["launched"], 1);

    let tasks = fx.tasks("jobrunner/report/nightly").await;
    let status_of = |time: &str| {
        let task = tasks
            .iter()
            .find(|t| env_of(t, "JOB_SCHEDULED_TIME").as_deref() == Some(time))
            .expect("task of tick");
        (
            task.desired_status().unwrap_or_default().to_string(),
            task.stopped_reason().unwrap_or_default().to_string(),
        )
    };
    let (old_status, old_reason) = status_of("2026-11-22T02:00:00Z");
    assert_eq!(old_status, "STOPPED");
    assert!(old_reason.contains("2026-11-23T02:00:00Z"), "{old_reason}");
    assert_eq!(status_of("2026-11-23T02:00:00Z").0, "RUNNING");
}

/// Records the `clientToken` of every RunTask the SDK sends.
#[derive(Debug, Clone, Default)]
struct TokenRecorder(Arc<Mutex<Vec<String>>>);

impl Intercept for TokenRecorder {
    fn name(&self) -> &'static str {
        "TokenRecorder"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(input) = context.input().downcast_ref::<RunTaskInput>() {
            self.0
                .lock()
                .unwrap()
                .push(input.client_token().unwrap_or_default().to_string());
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_duplicate_tick_sends_the_same_token() {
    // moto ignores clientToken, so assert on what ECS would deduplicate: the tokens sent.
    let fx = LaunchFixture::new().await;
    let config = fx.config(&REPORT.replace("OVERLAP", "allow"));
    let recorder = TokenRecorder::default();
    let client = aws_sdk_ecs::Client::from_conf(
        aws_sdk_ecs::config::Builder::from(&fx.account.sdk)
            .interceptor(fx.account.interceptor())
            .interceptor(recorder.clone())
            .build(),
    );
    let ecs: Adapters = Adapters {
        ecs: Some(EcsTasks::new(client)),
        ..Adapters::default()
    };
    let rule_event = json!({"version": "0", "id": "a", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "1", "time": "2026-11-22T02:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/jobrunner-nightly"], "detail": {}});
    for payload in [
        tick("nightly", "2026-11-22T02:00:00Z"),
        rule_event,
        tick("nightly", "2026-11-23T02:00:00Z"),
    ] {
        jobrunner_launcher::handle(&config, &ecs, &Invocation::now(payload.clone()))
            .await
            .unwrap();
    }
    let tokens = recorder.0.lock().unwrap().clone();
    assert_eq!(tokens.len(), 3);
    assert_eq!(
        tokens[0], tokens[1],
        "Scheduler and rule deliveries of one tick share the token"
    );
    assert_ne!(tokens[0], tokens[2], "the next tick has its own");
}
