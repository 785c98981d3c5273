//! The launcher function: S3 "Object Created" events and schedule ticks become ECS tasks.
//!
//! The decisions are `jobrunner_core::launcher` (shared with `jobrunner plan`); this is the
//! function's one `handle`, as every jobrunner function has it, which also prints the
//! invocation's metric lines (Embedded Metric Format, `docs/metrics.md`).

use jobrunner_core::Config;
use jobrunner_core::launcher::LaunchPorts;
use jobrunner_lambda::{Error, Invocation};
use serde_json::Value;

/// Handles one invocation: an SQS batch answers with `batchItemFailures`, a direct delivery
/// with a summary or an error (so Lambda's retries and on-failure destination take over).
/// Its metric documents go to stdout, one line each, before the answer.
pub async fn handle(
    config: &Config,
    ports: &impl LaunchPorts,
    invocation: &Invocation,
) -> Result<Value, Error> {
    handle_to(config, ports, invocation, &mut std::io::stdout()).await
}

/// [`handle`], writing the metric lines to `out`.
pub async fn handle_to(
    config: &Config,
    ports: &impl LaunchPorts,
    invocation: &Invocation,
    out: &mut impl std::io::Write,
) -> Result<Value, Error> {
    let (handled, documents) = jobrunner_core::metrics::scope::collect(
        jobrunner_lambda::metric_scope(invocation),
        jobrunner_core::launcher::handle(config, ports, &invocation.payload, invocation.now),
    )
    .await;
    jobrunner_core::metrics::print_to(&documents, out);
    jobrunner_lambda::respond(handled?)
}
