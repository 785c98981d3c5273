//! Demo: a worker service scaling from 0 to N as messages arrive, and back to 0.
//!
//! Runs against a local AWS emulator (moto server) named by `AWS_ENDPOINT_URL`:
//!
//! ```sh
//! .venv/bin/moto_server -H 127.0.0.1 -p 5000 &
//! AWS_ENDPOINT_URL=http://127.0.0.1:5000 cargo run -p jobrunner-scaler --example demo
//! ```
//!
//! It creates its own cluster, service, queue and state table (names suffixed with the time, so
//! it can run again on the same server), plays a burst of messages, workers taking them (in
//! flight), finishing them, and the queue draining, with a stabilization window compressed to
//! 2 seconds, and prints one table row per scaler invocation.

use std::process::ExitCode;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_ecs::types::{ContainerDefinition, NetworkMode};
use jobrunner_aws::Adapters;
use jobrunner_aws::ecs_service::EcsServices;
use jobrunner_aws::sqs_queue::SqsQueues;
use jobrunner_aws::state_store::StateStore;
use jobrunner_core::Config;
use jobrunner_core::config::Format;
use jobrunner_core::ports::Clock;
use jobrunner_core::scaler::Scaler;

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        eprintln!(
            "demo: set AWS_ENDPOINT_URL to a local moto server (e.g. http://127.0.0.1:5000); it creates resources"
        );
        return ExitCode::from(2);
    }
    match demo().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn demo() -> Result<(), Error> {
    let sdk = sdk_config().await;
    let (ecs, sqs, dynamodb) = (
        aws_sdk_ecs::Client::new(&sdk),
        aws_sdk_sqs::Client::new(&sdk),
        aws_sdk_dynamodb::Client::new(&sdk),
    );
    let suffix = chrono::Utc::now().format("%H%M%S").to_string();
    let (cluster, service, queue, table) = (
        format!("demo-{suffix}"),
        "order-workers",
        format!("orders-{suffix}"),
        format!("jobrunner-state-{suffix}"),
    );

    ecs.create_cluster().cluster_name(&cluster).send().await?;
    ecs.register_task_definition()
        .family("order-worker")
        .network_mode(NetworkMode::Bridge)
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("busybox")
                .memory(128)
                .build(),
        )
        .send()
        .await?;
    ecs.create_service()
        .cluster(&cluster)
        .service_name(service)
        .task_definition("order-worker")
        .desired_count(0)
        .send()
        .await?;
    let queue_url = sqs
        .create_queue()
        .queue_name(&queue)
        .send()
        .await?
        .queue_url
        .ok_or("no queue URL")?;
    dynamodb
        .create_table()
        .table_name(&table)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await?;

    let config = Config::parse(
        &format!(
            r#"
[state]
table = "{table}"

[workers.orders]
cluster = "{cluster}"
service = "{service}"
queue_url = "{queue_url}"
messages_per_task = 5
min_tasks = 0
max_tasks = 10
scale_in_after_seconds = 2
"#
        ),
        Format::Toml,
    )?;
    println!("worker 'orders': service {service} in cluster {cluster}, queue {queue}");
    println!(
        "policy: 5 messages per task, 0..10 tasks, scale in after 2 s (compressed from minutes)\n"
    );

    let ports: Adapters = Adapters {
        queues: Some(SqsQueues::new(sqs.clone())),
        services: Some(EcsServices::new(ecs.clone())),
        state: Some(StateStore::new(dynamodb.clone(), &table)),
        ..Adapters::default()
    };
    let demo = Demo {
        workers: config.workers,
        ports,
        ecs,
        sqs,
        queue_url,
        cluster,
        start: std::time::Instant::now(),
    };

    println!(
        "{:>6}  {:>7}  {:>9}  {:>5}  {:>7}  {:>3}  {:<28}  reason",
        "time", "visible", "in-flight", "needs", "desired", "ecs", "what happened"
    );
    demo.tick("idle, empty queue").await?;
    demo.send(12).await?;
    demo.tick("12 messages sent").await?;
    demo.send(20).await?;
    demo.tick("20 more sent").await?;
    let taken = demo.receive(20).await?;
    demo.tick("workers took 20 (in flight)").await?;
    demo.delete(&taken).await?;
    demo.tick("workers finished those 20").await?;
    pause(1).await;
    demo.tick("1 s later").await?;
    pause(2).await;
    demo.tick("2 s of lower need").await?;
    let rest = demo.receive(20).await?;
    demo.delete(&rest).await?;
    demo.tick("workers finished the rest").await?;
    pause(1).await;
    demo.tick("1 s later").await?;
    pause(2).await;
    demo.tick("2 s of an empty queue").await?;
    println!(
        "\nneeds = ceil((visible + in-flight) / messages_per_task); ecs = desiredCount read back from ECS"
    );
    println!("in Lambda each row is also one log line and one EMF metrics line");
    Ok(())
}

async fn sdk_config() -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(jobrunner_aws::client::retry_config())
        .timeout_config(jobrunner_aws::client::timeout_config());
    if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
        loader = loader.region(Region::new("us-east-1"));
    }
    if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
        loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "demo",
        ));
    }
    loader.load().await
}

async fn pause(seconds: u64) {
    tokio::time::sleep(Duration::from_secs(seconds)).await;
}

struct Demo {
    workers: std::collections::BTreeMap<String, jobrunner_core::config::Worker>,
    ports: Adapters,
    ecs: aws_sdk_ecs::Client,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    cluster: String,
    start: std::time::Instant,
}

impl Demo {
    /// One scaler invocation (one sample), then a table row with the service's count read back.
    async fn tick(&self, what: &str) -> Result<(), Error> {
        let report = Scaler::new(&self.workers, &self.ports)
            .run(self.ports.now())
            .await;
        let worker = &report.workers["orders"];
        if let Some(error) = &worker.error {
            return Err(error.clone().into());
        }
        let sample = worker.samples.last().ok_or("no sample")?;
        let described = self
            .ecs
            .describe_services()
            .cluster(&self.cluster)
            .services("order-workers")
            .send()
            .await?;
        let ecs_desired = described
            .services()
            .first()
            .map_or(-1, |s| s.desired_count());
        let desired = if sample.updated {
            format!("{} → {}", sample.previous, sample.desired)
        } else {
            sample.desired.to_string()
        };
        let reason = sample
            .reason
            .split_once("; ")
            .map_or(sample.reason.as_str(), |(_, r)| r);
        println!(
            "{:>5.1}s  {:>7}  {:>9}  {:>5}  {:>7}  {:>3}  {:<28}  {reason}",
            self.start.elapsed().as_secs_f64(),
            sample.visible,
            sample.in_flight,
            sample.recommended,
            desired,
            ecs_desired,
            what
        );
        Ok(())
    }

    async fn send(&self, count: usize) -> Result<(), Error> {
        for i in 0..count {
            self.sqs
                .send_message()
                .queue_url(&self.queue_url)
                .message_body(format!("order {i}"))
                .send()
                .await?;
        }
        Ok(())
    }

    /// Receives up to `count` messages as a worker would (in flight for 5 minutes).
    async fn receive(&self, count: usize) -> Result<Vec<String>, Error> {
        let mut handles = Vec::new();
        while handles.len() < count {
            let batch = (count - handles.len()).min(10) as i32;
            let output = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(batch)
                .visibility_timeout(300)
                .send()
                .await?;
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            handles.extend(messages.into_iter().filter_map(|m| m.receipt_handle));
        }
        Ok(handles)
    }

    async fn delete(&self, handles: &[String]) -> Result<(), Error> {
        for handle in handles {
            self.sqs
                .delete_message()
                .queue_url(&self.queue_url)
                .receipt_handle(handle)
                .send()
                .await?;
        }
        Ok(())
    }
}
