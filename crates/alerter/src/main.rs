//! The alerter Lambda's entry point: config and clients once per cold start, then the loop.

use jobrunner_alerter::AwsPorts;
use jobrunner_aws::sns::SnsTopic;
use jobrunner_aws::state_store::StateStore;
use jobrunner_aws::task_definitions::TaskDefinitions;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = jobrunner_aws::lambda_init::load_config().await?;
    let alerts = match jobrunner_alerter::alerts(&config) {
        Ok(alerts) => alerts,
        Err(e) => {
            jobrunner_aws::lambda_init::report_init_error(
                "jobrunner.InvalidConfig",
                &e.to_string(),
            )
            .await;
            return Err(e.into());
        }
    };
    let sdk = jobrunner_aws::client::load().await;
    let ports = AwsPorts {
        topic: SnsTopic::new(aws_sdk_sns::Client::new(&sdk), &alerts.topic_arn),
        task_definitions: TaskDefinitions::new(aws_sdk_ecs::Client::new(&sdk)),
        state: config
            .state
            .as_ref()
            .map(|s| StateStore::new(aws_sdk_dynamodb::Client::new(&sdk), &s.table)),
    };
    let (config, ports) = (&config, &ports);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        jobrunner_alerter::handle(config, ports, &event.payload, chrono::Utc::now()).await
    }))
    .await
}
