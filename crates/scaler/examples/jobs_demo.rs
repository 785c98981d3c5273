//! Demo: a jobs-mode worker draining a queue. The scaler launches standalone tasks for the
//! backlog; each runs `jobrunner-worker --idle-exit`. moto runs no containers, so the demo runs
//! the tasks' own command line with the real `jobrunner-worker` binary locally against the moto
//! queue until it exits when idle, marks the tasks stopped, and ticks again: nothing is launched.
//!
//! ```sh
//! .venv/bin/moto_server -H 127.0.0.1 -p 5000 &
//! cargo build -p jobrunner-worker
//! AWS_ENDPOINT_URL=http://127.0.0.1:5000 cargo run -p jobrunner-scaler --example jobs_demo -- CONFIG
//! ```
//!
//! CONFIG is a config whose `[defaults]` name subnets and security groups that exist in moto
//! (`make demo` passes its own); the worker inherits them. `JOBRUNNER_WORKER_BIN` names the
//! worker binary (default `target/debug/jobrunner-worker`).

use std::process::ExitCode;
use std::time::Instant;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, DesiredStatus, NetworkMode};
use jobrunner_aws::Adapters;
use jobrunner_aws::ecs::EcsTasks;
use jobrunner_aws::sqs_queue::SqsQueues;
use jobrunner_aws::state_store::StateStore;
use jobrunner_core::Config;
use jobrunner_core::config::Format;
use jobrunner_core::ports::Clock;
use jobrunner_core::recording::Recorder;
use jobrunner_core::scaler::Scaler;

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!(
            "jobs_demo: pass a config whose [defaults] hold moto's subnets and security groups"
        );
        return ExitCode::from(2);
    };
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        eprintln!("jobs_demo: set AWS_ENDPOINT_URL to a local moto server; it creates resources");
        return ExitCode::from(2);
    }
    match demo(&path).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jobs demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(path: &str) -> Result<(), Error> {
    let base = Config::parse(&std::fs::read_to_string(path)?, Format::Toml)?;
    let subnets = base
        .defaults
        .subnets
        .clone()
        .ok_or("no [defaults] subnets")?;
    let groups = base.defaults.security_groups.clone().unwrap_or_default();
    let sdk = sdk_config().await;
    let (ecs, sqs, dynamodb) = (
        aws_sdk_ecs::Client::new(&sdk),
        aws_sdk_sqs::Client::new(&sdk),
        aws_sdk_dynamodb::Client::new(&sdk),
    );
    let suffix = chrono::Utc::now().format("%H%M%S").to_string();
    let (cluster, queue, table) = (
        format!("jobs-demo-{suffix}"),
        format!("thumbs-{suffix}"),
        format!("jobrunner-jobs-{suffix}"),
    );
    ecs.create_cluster().cluster_name(&cluster).send().await?;
    ecs.register_task_definition()
        .family("thumb-worker")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("example/thumbs-with-jobrunner-worker")
                .memory(512)
                .build(),
        )
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
    let list = |items: &[String]| {
        items
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let config = Config::parse(
        &format!(
            r#"
[defaults]
subnets = [{}]
security_groups = [{}]
capacity = ["FARGATE"]

[state]
table = "{table}"

[workers.thumbs]
mode = "jobs"
cluster = "{cluster}"
queue_url = "{queue_url}"
task_definition = "thumb-worker"
container = "app"
command = ["true"]
idle_exit = "2s"
messages_per_task = 10
max_tasks = 20
"#,
            list(&subnets),
            list(&groups)
        ),
        Format::Toml,
    )?;
    println!(
        "worker 'thumbs' (mode = \"jobs\"): task definition thumb-worker in cluster {cluster}, queue {queue}"
    );
    println!(
        "policy: 10 messages per task, at most 20 tasks, each exits after 2 s without a message\n"
    );

    let ports = Recorder::new(Adapters::<jobrunner_aws::SystemClock> {
        ecs: Some(EcsTasks::new(ecs.clone())),
        queues: Some(SqsQueues::new(sqs.clone())),
        state: Some(StateStore::new(dynamodb.clone(), &table)),
        ..Adapters::default()
    });
    for i in 0..25 {
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(format!("thumbnail {i}"))
            .send()
            .await?;
    }
    println!("25 messages sent");
    let (config, ports) = (&config, &ports);
    let tick = move || async move {
        let report = Scaler::for_config(config, ports).run(ports.now()).await;
        let worker = report.workers["thumbs"].clone();
        match worker.error {
            Some(e) => Err::<_, Error>(e.into()),
            None => Ok(worker.samples.last().cloned().ok_or("no sample")?),
        }
    };
    let sample = tick().await?;
    println!("tick 1: {}", sample.reason);
    let run = ports
        .take()
        .into_iter()
        .find(|a| a.operation == "RunTask")
        .ok_or("no RunTask")?;
    let command: Vec<String> =
        serde_json::from_value(run.input["overrides"]["containerOverrides"][0]["command"].clone())?;
    println!(
        "        RunTask count {} startedBy {} clientToken {}…",
        run.input["count"],
        run.input["startedBy"].as_str().unwrap_or_default(),
        &run.input["clientToken"].as_str().unwrap_or_default()[..16]
    );
    println!("        container command: {}", command.join(" "));
    let live = ecs
        .list_tasks()
        .cluster(&cluster)
        .started_by("jobrunner/worker/thumbs")
        .desired_status(DesiredStatus::Running)
        .send()
        .await?
        .task_arns
        .unwrap_or_default();
    println!(
        "        ECS lists {} tasks started by jobrunner/worker/thumbs",
        live.len()
    );

    let sample = tick().await?;
    println!("tick 1 again (a redelivery): {}", sample.reason);

    let binary = std::env::var("JOBRUNNER_WORKER_BIN")
        .unwrap_or_else(|_| "target/debug/jobrunner-worker".into());
    println!("\nmoto runs no containers: running the tasks' command with {binary} here");
    let started = Instant::now();
    // Blocking is fine here: nothing else runs meanwhile.
    let status = std::process::Command::new(&binary)
        .args(&command[1..])
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .status()?;
    let left = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await?
        .attributes
        .unwrap_or_default()
        .into_values()
        .next()
        .unwrap_or_default();
    println!(
        "jobrunner-worker exited ({status}) after {:.1} s; messages left in the queue: {left}",
        started.elapsed().as_secs_f64()
    );
    for arn in &live {
        ecs.stop_task()
            .cluster(&cluster)
            .task(arn)
            .reason("idle exit")
            .send()
            .await?;
    }
    println!("the tasks exited (marked stopped in moto)\n");
    let sample = tick().await?;
    println!("tick 2: {}", sample.reason);
    println!(
        "        RunTask calls: {}",
        ports
            .take()
            .iter()
            .filter(|a| a.operation == "RunTask")
            .count()
    );
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
