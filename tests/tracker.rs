//! The tracker against moto: stopped-task events in, SNS messages read back through an SQS
//! subscription (the SNS envelope, with subject and message attributes) and an HTTP
//! subscription (the plain-text `default` body).
//!
//! What moto does like AWS here: with `MessageStructure=json` an SQS subscriber receives the
//! `sqs` key (our JSON document) and an `http` subscriber, for which we set no key of its own,
//! the `default` key (our text body). Unlike AWS, moto delivers nothing to `email`
//! subscriptions, so the `email` body (the same text as `default`) is checked through `http`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use aws_sdk_ecs::types::{ContainerDefinition, LogConfiguration, LogDriver};
use jobrunner_aws::Adapters;
use jobrunner_aws::sns::SnsTopic;
use jobrunner_aws::state_store::StateStore;
use jobrunner_aws::task_definitions::TaskDefinitions;
use jobrunner_core::Config;
use jobrunner_core::config::Format;
use jobrunner_core::tracker::Summary;
use jobrunner_integration_tests::Account;
use jobrunner_integration_tests::fixtures::{alert_topic, create_state_table};
use jobrunner_lambda::Invocation;
use serde_json::{Value, json};

fn event(name: &str) -> Value {
    jobrunner_testkit::sample(&format!("ecs-task-stopped-{name}"))
}

fn now() -> chrono::DateTime<chrono::Utc> {
    "2024-05-01T10:05:00Z".parse().unwrap()
}

/// A topic with an SQS subscription (raw delivery off) in a fresh account.
struct AlertFixture {
    account: Account,
    topic_arn: String,
    queue_url: String,
}

impl AlertFixture {
    async fn new() -> AlertFixture {
        let account = Account::new();
        let (topic_arn, queue_url) = alert_topic(&account).await;
        AlertFixture {
            account,
            topic_arn,
            queue_url,
        }
    }

    fn config(&self, extra: &str) -> Config {
        Config::parse(
            &format!("[alerts]\ntopic_arn = \"{}\"\n{extra}", self.topic_arn),
            Format::Toml,
        )
        .unwrap()
    }

    fn ports(&self, state: Option<&str>) -> Adapters {
        Adapters {
            topic: Some(SnsTopic::new(self.account.sns(), &self.topic_arn)),
            task_definitions: Some(TaskDefinitions::new(self.account.ecs())),
            state: state.map(|table| StateStore::new(self.account.dynamodb(), table)),
            ..Adapters::default()
        }
    }

    /// Registers `thumbnails` with an awslogs container `app`; returns its ARN.
    async fn register_thumbnails(&self) -> String {
        let logs = LogConfiguration::builder()
            .log_driver(LogDriver::Awslogs)
            .options("awslogs-group", "/ecs/thumbnails")
            .options("awslogs-region", "us-east-1")
            .options("awslogs-stream-prefix", "ecs")
            .build()
            .unwrap();
        self.account
            .ecs()
            .register_task_definition()
            .family("thumbnails")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image("busybox")
                    .memory(512)
                    .essential(true)
                    .log_configuration(logs)
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .task_definition
            .unwrap()
            .task_definition_arn
            .unwrap()
    }

    /// The SNS envelopes delivered to the queue, waiting up to a few seconds for `expected`.
    async fn envelopes(&self, expected: usize) -> Vec<Value> {
        let sqs = self.account.sqs();
        let mut out = vec![];
        for _ in 0..5 {
            let received = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            for message in received.messages.unwrap_or_default() {
                out.push(serde_json::from_str(message.body.as_deref().unwrap()).unwrap());
                sqs.delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(message.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
            }
            if out.len() >= expected && expected > 0 {
                break;
            }
        }
        out
    }
}

/// A local HTTP endpoint subscribed to the topic: each POST body arrives on the channel.
fn http_subscriber() -> (String, mpsc::Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if let Ok(value) = serde_json::from_slice(&body) {
                let _ = tx.send(value);
            }
        }
    });
    (url, rx)
}

#[tokio::test]
async fn a_stopped_task_becomes_an_alert_with_both_bodies() {
    let fx = AlertFixture::new().await;
    let (url, http) = http_subscriber();
    fx.account
        .sns()
        .subscribe()
        .topic_arn(&fx.topic_arn)
        .protocol("http")
        .endpoint(url)
        .send()
        .await
        .unwrap();
    let task_definition = fx.register_thumbnails().await;
    let mut oom = event("oom");
    oom["detail"]["taskDefinitionArn"] = json!(task_definition);

    let response = jobrunner_tracker::handle(
        &fx.config(""),
        &fx.ports(None),
        &Invocation::at(oom.clone(), now()),
    )
    .await
    .unwrap();
    assert_eq!(
        response,
        serde_json::to_value(Summary {
            published: 1,
            alerted_tasks: 1,
            ..Summary::default()
        })
        .unwrap()
    );

    let envelopes = fx.envelopes(1).await;
    assert_eq!(envelopes.len(), 1, "{envelopes:?}");
    let envelope = &envelopes[0];
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["TopicArn"], fx.topic_arn.as_str());
    assert_eq!(envelope["Subject"], "[jobrunner] OOM thumbnails exit 137");
    for (name, value) in [
        ("class", "oom"),
        ("job", "thumbnails"),
        ("severity", "error"),
        ("origin", "job"),
        ("cluster", "jobs"),
    ] {
        assert_eq!(
            envelope["MessageAttributes"][name],
            json!({"Type": "String", "Value": value}),
            "{name}"
        );
    }
    // The SQS subscription got the `sqs` key: the JSON document.
    let document: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(document["schema"], "jobrunner.alert/v1");
    assert_eq!(document["class"], "oom");
    assert_eq!(document["count"], 1);
    let task = &document["tasks"][0];
    assert_eq!(task["task_arn"], oom["detail"]["taskArn"]);
    assert_eq!(task["exit_code"], 137);
    assert_eq!(task["input"]["key"], "images/2024/05/01/panorama.jpg");
    assert_eq!(
        task["logs_status"], "found",
        "the task definition was looked up in moto"
    );
    assert_eq!(
        task["logs"][0]["stream"],
        "ecs/app/cd2452db7d582ea2d51b17816a6c9167"
    );

    // The HTTP subscription got the `default` key: the text body.
    let notification = http
        .recv_timeout(Duration::from_secs(5))
        .expect("an HTTP notification");
    assert_eq!(
        notification["Subject"],
        "[jobrunner] OOM thumbnails exit 137"
    );
    let text = notification["Message"].as_str().unwrap();
    assert!(
        text.starts_with("thumbnails: container app ran out of memory (exit 137)\n"),
        "{text}"
    );
    assert!(
        text.contains("Input:       s3://uploads/images/2024/05/01/panorama.jpg"),
        "{text}"
    );
    assert!(text.contains("Logs:        app: https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/$252Fecs$252Fthumbnails/"), "{text}");
}

#[tokio::test]
async fn a_succeeded_task_publishes_nothing_by_default() {
    let fx = AlertFixture::new().await;
    let response = jobrunner_tracker::handle(
        &fx.config(""),
        &fx.ports(None),
        &Invocation::at(event("succeeded"), now()),
    )
    .await
    .unwrap();
    assert_eq!(
        response,
        serde_json::to_value(Summary {
            quiet: 1,
            ..Summary::default()
        })
        .unwrap()
    );
    assert!(fx.envelopes(0).await.is_empty());
}

#[tokio::test]
async fn a_batch_becomes_one_digest_per_job_and_class() {
    let fx = AlertFixture::new().await;
    // The sample's task definitions are not in moto: the lookup fails and alerts go out without log links.
    let response = jobrunner_tracker::handle(
        &fx.config(""),
        &fx.ports(None),
        &Invocation::at(event("sqs-batch"), now()),
    )
    .await
    .unwrap();
    assert!(jobrunner_testkit::failed_ids(&response).is_empty());

    let mut subjects: Vec<String> = fx
        .envelopes(2)
        .await
        .iter()
        .map(|e| e["Subject"].as_str().unwrap().to_owned())
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "[jobrunner] FAILED thumbnails exit 1 (app)",
            "[jobrunner] OOM thumbnails: 3 tasks, exit 137"
        ]
    );
}

#[tokio::test]
async fn the_state_table_stops_a_redelivery_in_a_later_invocation() {
    let fx = AlertFixture::new().await;
    create_state_table(&fx.account, "jobrunner-state").await;
    let config = fx.config("[state]\ntable = \"jobrunner-state\"\n");
    let ports = fx.ports(Some("jobrunner-state"));
    let first = jobrunner_tracker::handle(
        &config,
        &ports,
        &Invocation::at(event("non-zero-exit"), now()),
    )
    .await
    .unwrap();
    // The sample task is a jobrunner task (JOB_RUN_ID): its stop is recorded in its run too.
    assert_eq!(
        first,
        serde_json::to_value(Summary {
            published: 1,
            alerted_tasks: 1,
            recorded: 1,
            ..Summary::default()
        })
        .unwrap()
    );
    let again = jobrunner_tracker::handle(
        &config,
        &ports,
        &Invocation::at(event("non-zero-exit"), now()),
    )
    .await
    .unwrap();
    // `recorded` counts the state changes that moved a run: a redelivery moves nothing (the run
    // itself is left as it was: tests/ledger.rs checks its item version).
    assert_eq!(
        again,
        serde_json::to_value(Summary {
            duplicates: 1,
            recorded: 0,
            ..Summary::default()
        })
        .unwrap()
    );
    assert_eq!(fx.envelopes(1).await.len(), 1);
}

#[tokio::test]
async fn a_missing_topic_fails_the_message_permanently() {
    let fx = AlertFixture::new().await;
    let ports: Adapters = Adapters {
        topic: Some(SnsTopic::new(
            fx.account.sns(),
            "arn:aws:sns:us-east-1:123456789012:nope",
        )),
        task_definitions: Some(TaskDefinitions::new(fx.account.ecs())),
        ..Adapters::default()
    };
    let err =
        jobrunner_tracker::handle(&fx.config(""), &ports, &Invocation::at(event("oom"), now()))
            .await
            .unwrap_err();
    assert!(!err.is_retryable(), "{err}");

    let batch = json!({"Records": [{"messageId": "m1", "body": event("oom").to_string(), "eventSource": "aws:sqs"}]});
    let response = jobrunner_tracker::handle(
        &fx.config(""),
        &ports,
        &Invocation::at(batch.clone(), now()),
    )
    .await
    .unwrap();
    assert_eq!(jobrunner_testkit::failed_ids(&response), ["m1"]);
}
