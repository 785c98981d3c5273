//! The launcher function: S3 "Object Created" events, schedule ticks and S3 Batch Operations
//! tasks become ECS tasks.
//!
//! The decisions are `jobrunner_core::launcher` (shared with `jobrunner plan`); this is the
//! function's one `handle`, as every jobrunner function has it.

use jobrunner_core::Config;
use jobrunner_core::launcher::{LaunchPorts, batch};
use jobrunner_lambda::{Error, Invocation};
use serde_json::Value;

/// Handles one invocation: an SQS batch answers with `batchItemFailures`, a direct delivery
/// with a summary or an error (so Lambda's retries and on-failure destination take over), an
/// S3 Batch Operations invocation with one result per task.
pub async fn handle(
    config: &Config,
    ports: &impl LaunchPorts,
    invocation: &Invocation,
) -> Result<Value, Error> {
    if batch::is_batch(&invocation.payload) {
        let handled = batch::handle(config, ports, &invocation.payload, invocation.now).await?;
        return Ok(serde_json::to_value(&handled.response).unwrap_or(Value::Null));
    }
    let handled =
        jobrunner_core::launcher::handle(config, ports, &invocation.payload, invocation.now)
            .await?;
    jobrunner_lambda::respond(handled)
}

/// Whether the launcher builds an S3 client: any S3 trigger (an S3 Batch Operations task is
/// read with HeadObject) or a job with `skip_missing`.
pub fn needs_s3(config: &Config) -> bool {
    !config.triggers.s3.is_empty() || config.jobs.values().any(|j| j.skip_missing)
}
