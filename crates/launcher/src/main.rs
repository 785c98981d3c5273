//! The launcher Lambda's entry point: config and clients once per cold start, then the loop.
#![recursion_limit = "256"]

use jobrunner_aws::Adapters;
use jobrunner_aws::ecs::EcsTasks;
use jobrunner_aws::s3::S3Objects;
use jobrunner_aws::sns::SnsTopic;
use jobrunner_aws::sqs_queue::SqsQueues;
use jobrunner_aws::state_store::StateStore;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

// One thread: Lambda sends one invocation at a time and the handler's calls run as futures of
// one task, so worker threads would only add to the cold start (bench/RESULTS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = jobrunner_lambda::init::load_config().await?;
    let sdk =
        jobrunner_lambda::init::required(jobrunner_aws::client::load().await.map_err(Into::into))
            .await?;
    // Only the clients this config calls: the ledger's table, the queue events wait in, the
    // topic `launch_failed` alerts go to, S3 for HeadObject (batch tasks, `skip_missing`).
    let ports: Adapters = Adapters {
        ecs: Some(EcsTasks::new(aws_sdk_ecs::Client::new(&sdk))),
        state: config
            .state
            .as_ref()
            .map(|s| StateStore::new(aws_sdk_dynamodb::Client::new(&sdk), &s.table)),
        queues: config
            .launcher
            .as_ref()
            .map(|_| SqsQueues::new(aws_sdk_sqs::Client::new(&sdk))),
        topic: config
            .alerts
            .as_ref()
            .map(|a| SnsTopic::new(aws_sdk_sns::Client::new(&sdk), &a.topic_arn)),
        objects: jobrunner_launcher::needs_s3(&config).then(|| S3Objects::from_config(&sdk)),
        ..Adapters::default()
    };
    let (config, ports) = (&config, &ports);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        jobrunner_launcher::handle(config, ports, &event.into()).await
    }))
    .await
}
