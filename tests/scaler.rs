//! The scaler against moto: messages in SQS, desiredCount read back from ECS, state from
//! DynamoDB. Each test has its own account; time is a manual clock so stabilization windows
//! pass without waiting.

use chrono::Utc;
use jobrunner_aws::ecs_service::EcsServices;
use jobrunner_aws::sqs_queue::SqsQueues;
use jobrunner_aws::state_store::{Saved, StateStore};
use jobrunner_core::Config;
use jobrunner_core::config::Format;
use jobrunner_core::ports::{Clock, Put};
use jobrunner_core::scaler::Report;
use jobrunner_core::scaling::Direction;
use jobrunner_integration_tests::Account;
use jobrunner_integration_tests::fixtures::{create_worker_service, worker_environment};
use jobrunner_integration_tests::scaler::MotoScaler;
use jobrunner_scaler::{WorkerState, state_key};

const TABLE: &str = "jobrunner-state";

/// An account with cluster `jobs`, service `order-workers` (desired 0), queue `orders` and the
/// state table.
struct Fixture {
    account: Account,
    queue_url: String,
}

impl Fixture {
    async fn new() -> Fixture {
        let account = Account::new();
        let queue_url = worker_environment(&account, TABLE).await;
        Fixture { account, queue_url }
    }

    /// `[state]` plus worker `orders` (10 messages per task, 0..20, 60 s window) and `extra`.
    fn config(&self, extra: &str) -> Config {
        let text = format!(
            r#"
[state]
table = "{TABLE}"

[workers.orders]
cluster = "jobs"
service = "order-workers"
queue_url = "{}"
messages_per_task = 10
max_tasks = 20
scale_in_after_seconds = 60
{extra}"#,
            self.queue_url
        );
        Config::parse(&text, Format::Toml).expect("valid test config")
    }

    fn scaler(&self, config: &Config) -> MotoScaler {
        MotoScaler::new(
            config.workers.clone(),
            SqsQueues::new(self.account.sqs()),
            EcsServices::new(self.account.ecs()),
            StateStore::new(
                self.account.dynamodb(),
                &config.state.as_ref().unwrap().table,
            ),
        )
    }

    async fn send(&self, queue_url: &str, count: usize) {
        let sqs = self.account.sqs();
        for i in 0..count {
            sqs.send_message()
                .queue_url(queue_url)
                .message_body(format!("message {i}"))
                .send()
                .await
                .expect("send");
        }
    }

    /// Receives up to `count` messages (they go in flight for 5 minutes); returns their handles.
    async fn receive(&self, count: i32) -> Vec<String> {
        let mut handles = Vec::new();
        while handles.len() < count as usize {
            let batch = (count - handles.len() as i32).min(10);
            let output = self
                .account
                .sqs()
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(batch)
                .visibility_timeout(300)
                .send()
                .await
                .expect("receive");
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            handles.extend(messages.into_iter().filter_map(|m| m.receipt_handle));
        }
        handles
    }

    async fn delete(&self, handles: &[String]) {
        for handle in handles {
            self.account
                .sqs()
                .delete_message()
                .queue_url(&self.queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .expect("delete");
        }
    }

    async fn desired(&self, service: &str) -> i32 {
        let output = self
            .account
            .ecs()
            .describe_services()
            .cluster("jobs")
            .services(service)
            .send()
            .await
            .expect("describe");
        output.services()[0].desired_count()
    }
}

async fn tick(scaler: &MotoScaler) -> Report {
    scaler.tick().await
}

#[tokio::test]
async fn messages_scale_the_service_out_from_zero() {
    let fx = Fixture::new().await;
    let scaler = fx.scaler(&fx.config(""));

    let report = tick(&scaler).await;
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(
        report.workers["orders"].samples[0].direction,
        Direction::Hold
    );
    assert_eq!(fx.desired("order-workers").await, 0);

    fx.send(&fx.queue_url, 1).await;
    let report = tick(&scaler).await;
    assert_eq!(fx.desired("order-workers").await, 1, "{report:?}");

    fx.send(&fx.queue_url, 34).await;
    let report = tick(&scaler).await;
    let sample = &report.workers["orders"].samples[0];
    assert_eq!(
        (
            sample.visible,
            sample.previous,
            sample.desired,
            sample.updated
        ),
        (35, 1, 4, true)
    );
    assert_eq!(fx.desired("order-workers").await, 4);
}

#[tokio::test]
async fn in_flight_messages_hold_tasks_and_an_empty_queue_scales_to_zero_after_the_window() {
    let fx = Fixture::new().await;
    let scaler = fx.scaler(&fx.config(""));
    fx.send(&fx.queue_url, 30).await;
    tick(&scaler).await;
    assert_eq!(fx.desired("order-workers").await, 3);

    // Workers take every message: nothing visible, all in flight. The tasks stay.
    let handles = fx.receive(30).await;
    assert_eq!(handles.len(), 30);
    for _ in 0..3 {
        let report = tick(&scaler).await;
        let sample = &report.workers["orders"].samples[0];
        assert_eq!(
            (sample.visible, sample.in_flight, sample.desired),
            (0, 30, 3),
            "{report:?}"
        );
    }

    // Work done: the queue is empty. Holds for the 60 s window, then goes to zero.
    fx.delete(&handles).await;
    let report = tick(&scaler).await;
    assert_eq!(report.workers["orders"].samples[0].desired, 3, "{report:?}");
    let report = tick(&scaler).await;
    let sample = &report.workers["orders"].samples[0];
    assert_eq!(
        (sample.direction, sample.desired),
        (Direction::In, 0),
        "{report:?}"
    );
    assert_eq!(fx.desired("order-workers").await, 0);
}

#[tokio::test]
async fn a_failing_worker_does_not_block_another() {
    let fx = Fixture::new().await;
    let missing_queue = fx.queue_url.replace("/orders", "/no-such-queue");
    create_worker_service(&fx.account, "ghost-workers").await;
    let config = fx.config(&format!(
        r#"
[workers.ghost]
cluster = "jobs"
service = "ghost-workers"
queue_url = "{missing_queue}"
messages_per_task = 1
max_tasks = 5

[workers.zombie]
cluster = "jobs"
service = "no-such-service"
queue_url = "{}"
messages_per_task = 1
max_tasks = 5
"#,
        fx.queue_url
    ));
    let scaler = fx.scaler(&config);
    fx.send(&fx.queue_url, 15).await;

    let report = tick(&scaler).await;
    assert_eq!(
        report.failed,
        vec!["ghost".to_string(), "zombie".to_string()],
        "{report:?}"
    );
    let ghost = report.workers["ghost"].error.as_deref().unwrap();
    assert!(ghost.contains("GetQueueAttributes rejected"), "{ghost}");
    let zombie = report.workers["zombie"].error.as_deref().unwrap();
    assert!(zombie.contains("MISSING"), "{zombie}");
    assert!(report.workers["orders"].error.is_none());
    assert_eq!(fx.desired("order-workers").await, 2);
    assert_eq!(fx.desired("ghost-workers").await, 0);
}

#[tokio::test]
async fn state_is_persisted_in_dynamodb_with_a_version_and_ttl() {
    let fx = Fixture::new().await;
    let scaler = fx.scaler(&fx.config(""));
    fx.send(&fx.queue_url, 12).await;
    let started = scaler.clock().now();
    tick(&scaler).await;
    tick(&scaler).await;

    let item = fx
        .account
        .dynamodb()
        .get_item()
        .table_name(TABLE)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(state_key("orders")),
        )
        .send()
        .await
        .expect("get item")
        .item
        .expect("state item exists");
    assert_eq!(item["pk"].as_s().unwrap(), "scaler#orders");
    assert_eq!(item["version"].as_n().unwrap(), "2");
    let expires_at: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    assert!(
        expires_at >= started.timestamp() + 24 * 3600,
        "{expires_at}"
    );
    let state: WorkerState = serde_json::from_str(item["data"].as_s().unwrap()).unwrap();
    assert_eq!(state.history.since, Some(started));
    assert_eq!(state.history.samples.last().unwrap().tasks, 2);
    let action = state.last_action.unwrap();
    assert_eq!((action.at, action.from, action.to), (started, 0, 2));

    // A second scaler (a new cold start) picks the history up: no restart of the window.
    let again = fx.scaler(&fx.config(""));
    again.clock().set(scaler.clock().now());
    let report = tick(&again).await;
    assert!(
        report.workers["orders"].samples[0]
            .reason
            .contains("hold 2"),
        "{report:?}"
    );
    assert_eq!(
        StateStore::new(fx.account.dynamodb(), TABLE)
            .get(&state_key("orders"))
            .await
            .unwrap()
            .unwrap()
            .version,
        3
    );
}

#[tokio::test]
async fn conditional_writes_keep_overlapping_invocations_apart() {
    let fx = Fixture::new().await;
    let store = StateStore::new(fx.account.dynamodb(), TABLE);
    let expires = Utc::now() + chrono::Duration::days(1);
    let put = |key, data, expected, expires_at| Put {
        key,
        data,
        expected,
        expires_at,
        now: Utc::now(),
        listing: None,
    };
    assert_eq!(
        store
            .put(&put("scaler#x", "{}", None, expires))
            .await
            .unwrap(),
        Saved::Written { version: 1 }
    );
    // Both read version 1; the first write wins, the second is told so.
    assert_eq!(
        store
            .put(&put("scaler#x", "{\"a\":1}", Some(1), expires))
            .await
            .unwrap(),
        Saved::Written { version: 2 }
    );
    assert_eq!(
        store
            .put(&put("scaler#x", "{\"b\":1}", Some(1), expires))
            .await
            .unwrap(),
        Saved::Conflict
    );
    assert_eq!(
        store
            .put(&put("scaler#x", "{}", None, expires))
            .await
            .unwrap(),
        Saved::Conflict
    );
    let record = store.get("scaler#x").await.unwrap().unwrap();
    assert_eq!((record.data.as_str(), record.version), ("{\"a\":1}", 2));
    assert_eq!(store.get("scaler#nothing").await.unwrap(), None);
}

#[tokio::test]
async fn sub_minute_sampling_samples_until_just_before_the_next_minute() {
    let fx = Fixture::new().await;
    let scaler = fx.scaler(&fx.config("sample_every_seconds = 15\n"));
    // The clock only moves when the scaler sleeps; the invocation samples at 0, 15, 30, 45 s.
    let deadline = scaler.clock().now() + chrono::Duration::seconds(55);
    fx.send(&fx.queue_url, 5).await;
    let report = scaler.run(deadline).await;
    let samples = &report.workers["orders"].samples;
    assert_eq!(samples.len(), 4, "{report:?}");
    assert_eq!((samples[3].at - samples[0].at).num_seconds(), 45);
    assert_eq!(
        samples.iter().map(|s| s.desired).collect::<Vec<_>>(),
        vec![1, 1, 1, 1]
    );
    assert_eq!(samples.iter().filter(|s| s.updated).count(), 1);
    assert_eq!(
        StateStore::new(fx.account.dynamodb(), TABLE)
            .get(&state_key("orders"))
            .await
            .unwrap()
            .unwrap()
            .version,
        4
    );
}
