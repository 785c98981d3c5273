//! The launcher Lambda's entry point: config and clients once per cold start, then the loop.
#![recursion_limit = "256"]

use jobrunner_aws::Adapters;
use jobrunner_aws::ecs::EcsTasks;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = jobrunner_lambda::init::load_config().await?;
    let sdk = jobrunner_aws::client::load().await;
    let ports: Adapters = Adapters {
        ecs: Some(EcsTasks::new(aws_sdk_ecs::Client::new(&sdk))),
        ..Adapters::default()
    };
    let (config, ports) = (&config, &ports);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        jobrunner_launcher::handle(config, ports, &event.into()).await
    }))
    .await
}
