//! The launcher function: S3 "Object Created" events and schedule ticks become ECS tasks.
//!
//! The decisions are `jobrunner_core::launcher` (shared with `jobrunner plan`); this is the
//! function's one `handle`, as every jobrunner function has it.

use jobrunner_core::Config;
use jobrunner_core::launcher::LaunchPorts;
use jobrunner_lambda::{Error, Invocation};
use serde_json::Value;

/// Handles one invocation: an SQS batch answers with `batchItemFailures`, a direct delivery
/// with a summary or an error (so Lambda's retries and on-failure destination take over).
pub async fn handle(
    config: &Config,
    ports: &impl LaunchPorts,
    invocation: &Invocation,
) -> Result<Value, Error> {
    let handled =
        jobrunner_core::launcher::handle(config, ports, &invocation.payload, invocation.now)
            .await?;
    jobrunner_lambda::respond(handled)
}
