//! The tracker through the fault proxy (`support/fault_proxy.rs`): SNS throttling and errors,
//! answers lost after publishing.

use std::collections::BTreeMap;
use std::time::Duration;

use jobrunner_integration_tests::fault_proxy::{
    Fault, FaultProxy, Faults, Injection, Limits, Phase, Rate,
};
use jobrunner_integration_tests::fixtures::{alert_topic, create_state_table};
use jobrunner_lambda::Invocation;
use serde_json::{Value, json};

/// Per-attempt timeout of the clients in these tests: injected slow responses come later.
const ATTEMPT: Duration = Duration::from_secs(1);
const SLOW: Duration = Duration::from_secs(2);

const STATE_TABLE: &str = "jobrunner-state";

/// An account with the alert topic, an SQS inbox subscribed to it, and the state table.
struct AlertWorld {
    account: jobrunner_integration_tests::Account,
    topic_arn: String,
    inbox_url: String,
}

impl AlertWorld {
    async fn new() -> AlertWorld {
        let account = jobrunner_integration_tests::Account::new();
        let (topic_arn, inbox_url) = alert_topic(&account).await;
        create_state_table(&account, STATE_TABLE).await;
        AlertWorld {
            account,
            topic_arn,
            inbox_url,
        }
    }

    fn config(&self) -> jobrunner_core::Config {
        let text = format!(
            "[alerts]\ntopic_arn = \"{}\"\n\n[state]\ntable = \"{STATE_TABLE}\"\n",
            self.topic_arn
        );
        jobrunner_core::Config::parse(&text, jobrunner_core::config::Format::Toml).unwrap()
    }

    /// The tracker's ports with SNS through `proxy`.
    fn ports(&self, proxy: &FaultProxy) -> jobrunner_aws::Adapters {
        jobrunner_aws::Adapters {
            topic: Some(jobrunner_aws::sns::SnsTopic::new(
                proxy.sns(&self.account, ATTEMPT),
                &self.topic_arn,
            )),
            task_definitions: Some(jobrunner_aws::task_definitions::TaskDefinitions::new(
                self.account.ecs(),
            )),
            state: Some(jobrunner_aws::state_store::StateStore::new(
                self.account.dynamodb(),
                STATE_TABLE,
            )),
            ..jobrunner_aws::Adapters::default()
        }
    }

    /// How many delivered alerts name each task ARN, and how many alerts were delivered (the
    /// inbox is drained).
    async fn alerted_tasks(&self) -> (BTreeMap<String, usize>, usize) {
        let sqs = self.account.sqs();
        let mut per_task = BTreeMap::new();
        let mut alerts = 0;
        let mut empty = 0;
        while empty < 2 {
            let out = sqs
                .receive_message()
                .queue_url(&self.inbox_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let messages = out.messages.unwrap_or_default();
            empty = if messages.is_empty() { empty + 1 } else { 0 };
            for message in messages {
                alerts += 1;
                let envelope: Value = serde_json::from_str(message.body().unwrap()).unwrap();
                let document: Value =
                    serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
                // A digest details its first tasks and lists the others in `more_tasks`.
                assert_eq!(document["omitted"], 0);
                for task in document["tasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .chain(document["more_tasks"].as_array().unwrap())
                {
                    *per_task
                        .entry(task["task_arn"].as_str().unwrap().to_string())
                        .or_insert(0) += 1;
                }
                sqs.delete_message()
                    .queue_url(&self.inbox_url)
                    .receipt_handle(message.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        (per_task, alerts)
    }
}

/// A STOPPED task (non-zero exit) of job `thumbnails`, task `n`.
fn stopped(n: u64) -> Value {
    let path =
        jobrunner_integration_tests::repo_root().join("events/ecs-task-stopped-non-zero-exit.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let arn = format!("arn:aws:ecs:us-east-1:123456789012:task/jobs/{n:032x}");
    event["id"] = json!(format!("stop-{n}"));
    event["resources"] = json!([arn]);
    event["detail"]["taskArn"] = json!(arn);
    // Each task is its own run in the ledger.
    for variable in event["detail"]["overrides"]["containerOverrides"][0]["environment"]
        .as_array_mut()
        .unwrap()
    {
        if variable["name"] == "JOB_RUN_ID" {
            variable["value"] = json!(format!("{n:020x}"));
        }
    }
    event
}

use jobrunner_testkit::{failed_ids, sqs_batch_of_events as sqs_batch};

/// Delivers SQS batches of 3 to the tracker, redelivering failed messages until none fail.
async fn drain_alerts(
    config: &jobrunner_core::Config,
    ports: &jobrunner_aws::Adapters,
    events: Vec<(String, Value)>,
    rounds: usize,
) {
    let now = "2024-05-01T10:05:00Z".parse().unwrap();
    let mut pending = events;
    for _ in 0..rounds {
        let mut failed = Vec::new();
        for batch in pending.chunks(3) {
            let response =
                jobrunner_tracker::handle(config, ports, &Invocation::at(sqs_batch(batch), now))
                    .await
                    .expect("SQS batches always answer");
            let response = serde_json::to_value(response).unwrap();
            let ids = failed_ids(&response);
            failed.extend(batch.iter().filter(|(id, _)| ids.contains(id)).cloned());
        }
        if failed.is_empty() {
            return;
        }
        pending = failed;
    }
    panic!(
        "{} alert messages still failing after {rounds} rounds",
        pending.len()
    );
}

#[tokio::test]
async fn every_failure_is_alerted_once_under_sns_throttling_and_errors() {
    let world = AlertWorld::new().await;
    // A tight Publish bucket (SNS's real quota is thousands a second) to force throttling, and
    // errors before SNS acts: SNS standard topics have no idempotency key (see the next test).
    let limits = Limits::unthrottled().with_api(
        "Publish",
        Rate {
            burst: 1.0,
            per_second: 2.0,
        },
    );
    let faults = Faults {
        phase: Some(Phase::Before),
        slow_delay: SLOW,
        ..Faults::each(3, 0.08, &["Publish"])
    };
    let proxy = FaultProxy::new(
        limits,
        Faults {
            capacity: 0.0,
            ..faults
        },
    );
    let ports = world.ports(&proxy);

    // 60 stops, each delivered twice, the copies in other batches; a batch's stops of one job
    // become one digest, so a failed Publish fails (and redelivers) all of its messages.
    let mut events: Vec<(String, Value)> = (0..60).map(|n| (format!("a{n}"), stopped(n))).collect();
    events.extend((0..60).map(|n| (format!("b{n}"), stopped(n))));
    drain_alerts(&world.config(), &ports, events, 20).await;

    let (per_task, alerts) = world.alerted_tasks().await;
    assert_eq!(per_task.len(), 60, "every stopped task alerted");
    assert!(
        per_task.values().all(|&n| n == 1),
        "no task alerted twice: {per_task:?}"
    );
    let stats = proxy.stats();
    assert!(
        stats.throttled > 0 && stats.faults_injected() > 0,
        "{stats:?}"
    );
    assert_eq!(
        stats.executed_of("Publish") as usize,
        alerts,
        "every Publish SNS carried out was one delivered alert"
    );
    // SNS's faults never cost a run its record: each stop is in its run, once.
    let config = world.config();
    let ledger = jobrunner_core::ledger::Ledger::new(&ports, config.state.as_ref().unwrap());
    for n in 0..60u64 {
        let key = jobrunner_core::ledger::keys::run_key(&format!("{n:020x}"));
        let (run, version) = ledger
            .load::<jobrunner_core::run::Run>(&key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{key} recorded"));
        assert_eq!(run.state, jobrunner_core::run::RunState::Failed, "{key}");
        assert_eq!(
            version, 1,
            "{key}: written once, its redelivery changed nothing"
        );
    }
}

#[tokio::test]
async fn an_sns_answer_lost_after_publishing_duplicates_the_alert() {
    // The limit of SNS standard topics: Publish has no idempotency key, so when the answer to
    // a Publish that SNS carried out is lost, the SDK's retry publishes again.
    let world = AlertWorld::new().await;
    let proxy = FaultProxy::new(Limits::unthrottled(), Faults::none());
    proxy.inject(Injection::new(
        "Publish",
        Fault::ServerError,
        Phase::After,
        1,
    ));
    jobrunner_tracker::handle(
        &world.config(),
        &world.ports(&proxy),
        &Invocation::at(stopped(1), "2024-05-01T10:05:00Z".parse().unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(proxy.stats().executed_of("Publish"), 2);
    let (per_task, alerts) = world.alerted_tasks().await;
    assert_eq!(
        (per_task.values().copied().collect::<Vec<_>>(), alerts),
        (vec![2], 2)
    );
}
