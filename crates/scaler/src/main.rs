//! The scaler Lambda's binary: tracing, config, clients built once, then the runtime loop.

use jobrunner_aws::ecs_service::EcsServices;
use jobrunner_aws::sqs_queue::SqsQueues;
use jobrunner_aws::state_store::StateStore;
use jobrunner_scaler::{Scaler, SystemClock};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = jobrunner_aws::lambda_init::load_config().await?;
    let table = match (&config.state, config.workers.is_empty()) {
        (Some(state), _) => state.table.clone(),
        (None, true) => String::new(),
        (None, false) => {
            let e = "invalid config: state.table: the scaler keeps each worker's history in the [state] table; set it";
            tracing::error!("{e}");
            jobrunner_aws::lambda_init::report_init_error("jobrunner.InvalidConfig", e).await;
            return Err(e.into());
        }
    };
    let sdk = jobrunner_aws::client::load().await;
    let scaler = Scaler::new(
        config.workers,
        SqsQueues::from_sdk_config(&sdk),
        EcsServices::from_sdk_config(&sdk),
        StateStore::from_sdk_config(&sdk, table),
        SystemClock,
    );
    let scaler = &scaler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        scaler.handle(event)
    }))
    .await
}
