//! Hello world on lambda_runtime: the floor the jobrunner functions' cold start is compared with.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(json!({ "hello": "world", "request_id": event.context.request_id }))
    }))
    .await
}
