//! The scaler Lambda's entry point: config and clients once per cold start, then the loop.
#![recursion_limit = "256"]

use jobrunner_aws::Adapters;
use jobrunner_aws::ecs::EcsTasks;
use jobrunner_aws::ecs_service::EcsServices;
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
    let table = match (&config.state, config.workers.is_empty()) {
        (Some(state), _) => Some(state.table.clone()),
        (None, true) => None,
        (None, false) => {
            let e = jobrunner_core::Error::Config {
                path: "state.table".into(),
                reason: "the scaler keeps each worker's history in the [state] table; set it"
                    .into(),
            };
            jobrunner_lambda::init::required::<()>(Err(e.clone())).await?;
            return Err(e.into());
        }
    };
    let sdk =
        jobrunner_lambda::init::required(jobrunner_aws::client::load().await.map_err(Into::into))
            .await?;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let ports: Adapters = Adapters {
        queues: Some(SqsQueues::from_sdk_config(&sdk)),
        services: Some(EcsServices::new(ecs.clone())),
        // Jobs-mode workers: ListTasks by startedBy and RunTask.
        ecs: Some(EcsTasks::new(ecs)),
        state: table.map(|table| StateStore::from_sdk_config(&sdk, table)),
        ..Adapters::default()
    };
    let (config, ports) = (&config, &ports);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        jobrunner_scaler::handle(config, ports, &event.into()).await
    }))
    .await
}
