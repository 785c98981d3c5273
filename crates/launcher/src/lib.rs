//! The launcher function: S3 "Object Created" events, schedule ticks and S3 Batch Operations
//! tasks become ECS tasks.
//!
//! The decisions are `jobrunner_core::launcher` (shared with `jobrunner plan`); this is the
//! function's one `handle`, as every jobrunner function has it, which also prints the
//! invocation's metric lines (Embedded Metric Format, `docs/metrics.md`).

use jobrunner_core::Config;
use jobrunner_core::launcher::{LaunchPorts, batch};
use jobrunner_lambda::{Error, Invocation};
use serde_json::Value;

/// Handles one invocation: an SQS batch answers with `batchItemFailures`, a direct delivery
/// with a summary or an error (so Lambda's retries and on-failure destination take over), an
/// S3 Batch Operations invocation with one result per task. Its metric documents go to
/// stdout, one line each, before the answer.
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
    let payload = &invocation.payload;
    let decide = async {
        if batch::is_batch(payload) {
            let handled = batch::handle(config, ports, payload, invocation.now).await?;
            return Ok(serde_json::to_value(&handled.response).unwrap_or(Value::Null));
        }
        let handled =
            jobrunner_core::launcher::handle(config, ports, payload, invocation.now).await?;
        jobrunner_lambda::respond(handled)
    };
    let (answer, documents): (Result<Value, Error>, _) =
        jobrunner_core::metrics::scope::collect(jobrunner_lambda::metric_scope(invocation), decide)
            .await;
    jobrunner_core::metrics::print_to(&documents, out);
    answer
}

/// Whether the launcher builds an S3 client: any S3 trigger (an S3 Batch Operations task is
/// read with HeadObject) or a job with `skip_missing`.
pub fn needs_s3(config: &Config) -> bool {
    !config.triggers.s3.is_empty() || config.jobs.values().any(|j| j.skip_missing)
}
