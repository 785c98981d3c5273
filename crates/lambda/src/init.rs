//! Function init: loading the config, and telling Lambda why when that fails.
//!
//! An invalid config must fail the init with the validation message. Exiting alone would
//! leave Lambda with "Runtime exited"; reporting to the Runtime API's `/runtime/init/error`
//! puts the message itself in the function's error and logs.

use jobrunner_core::Config;
use lambda_runtime_api_client::body::Body;
use lambda_runtime_api_client::{PooledClient, build_request};

/// Loads the config from the environment; on failure reports it as the init error.
pub async fn load_config() -> Result<Config, jobrunner_core::Error> {
    let result = Config::from_env();
    if let Err(e) = &result {
        tracing::error!(error = %e, "invalid configuration");
        report_init_error("jobrunner.InvalidConfig", &e.to_string()).await;
    }
    result
}

/// Posts `{errorType, errorMessage}` to `/runtime/init/error` when running under a Runtime API.
pub async fn report_init_error(error_type: &str, message: &str) {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return;
    }
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string();
    let request = build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", "Runtime.InitError")
        .header("content-type", "application/json")
        .body(Body::from(body));
    let sent = match request {
        Ok(request) => PooledClient::builder()
            .build()
            .call(request)
            .await
            .map(|_| ()),
        Err(e) => Err(e.into()),
    };
    if let Err(e) = sent {
        tracing::error!(error = %e, "could not report the init error to the Runtime API");
    }
}

/// A requirement a function checks at init (e.g. the tracker's `[alerts]`): on failure, logs
/// it and reports it as the init error, like an invalid config.
pub async fn required<T>(
    check: Result<T, jobrunner_core::Error>,
) -> Result<T, jobrunner_core::Error> {
    if let Err(e) = &check {
        tracing::error!(error = %e, "invalid configuration");
        report_init_error("jobrunner.InvalidConfig", &e.to_string()).await;
    }
    check
}
