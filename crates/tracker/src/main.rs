//! The tracker Lambda's entry point: config and clients once per cold start, then the loop.
#![recursion_limit = "256"]

use jobrunner_aws::Adapters;
use jobrunner_aws::ecs::EcsTasks;
use jobrunner_aws::sns::SnsTopic;
use jobrunner_aws::state_store::StateStore;
use jobrunner_aws::task_definitions::TaskDefinitions;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

// One thread: Lambda sends one invocation at a time and the handler's calls run as futures of
// one task, so worker threads would only add to the cold start (bench/RESULTS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = jobrunner_lambda::init::load_config().await?;
    jobrunner_lambda::init::required(jobrunner_core::tracker::check(&config)).await?;
    let sdk =
        jobrunner_lambda::init::required(jobrunner_aws::client::load().await.map_err(Into::into))
            .await?;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let ports: Adapters = Adapters {
        // Stopping overdue tasks, and listing them in the sweep.
        ecs: Some(EcsTasks::new(ecs.clone())),
        topic: config
            .alerts
            .as_ref()
            .map(|a| SnsTopic::new(aws_sdk_sns::Client::new(&sdk), &a.topic_arn)),
        task_definitions: Some(TaskDefinitions::new(ecs)),
        state: config
            .state
            .as_ref()
            .map(|s| StateStore::new(aws_sdk_dynamodb::Client::new(&sdk), &s.table)),
        ..Adapters::default()
    };
    let (config, ports) = (&config, &ports);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        jobrunner_tracker::handle(config, ports, &event.into()).await
    }))
    .await
}
