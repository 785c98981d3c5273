//! The tracker function: every state change of a jobrunner task moves its run forward in the
//! ledger, overdue tasks are stopped, and tasks that stopped become classified SNS alerts.
//!
//! The decisions are `jobrunner_core::tracker::handle` (shared with `jobrunner plan`): the
//! ledger, time limits, the one-minute sweep (missed schedule ticks, overdue tasks), dedupe of
//! redeliveries, classification, per-job digests, `[alerts] notify_on`, and with `[state]
//! table` at most one alert per stopped task across invocations. This is the function's one
//! `handle`, as every jobrunner function has it, which also prints the invocation's metric
//! lines (Embedded Metric Format, `docs/metrics.md`).

use jobrunner_core::Config;
use jobrunner_core::tracker::TrackerPorts;
use jobrunner_lambda::{Error, Invocation};
use serde_json::Value;

/// Handles one invocation at `invocation.now`: an SQS batch answers with `batchItemFailures`
/// (messages whose alert could not be published, and malformed ones), a direct delivery with
/// a summary or an error. Its metric documents go to stdout, one line each.
pub async fn handle(
    config: &Config,
    ports: &impl TrackerPorts,
    invocation: &Invocation,
) -> Result<Value, Error> {
    handle_to(config, ports, invocation, &mut std::io::stdout()).await
}

/// [`handle`], writing the metric lines to `out`.
pub async fn handle_to(
    config: &Config,
    ports: &impl TrackerPorts,
    invocation: &Invocation,
    out: &mut impl std::io::Write,
) -> Result<Value, Error> {
    let (handled, documents) = jobrunner_core::metrics::scope::collect(
        jobrunner_lambda::metric_scope(invocation),
        jobrunner_core::tracker::handle(config, ports, &invocation.payload, invocation.now),
    )
    .await;
    jobrunner_core::metrics::print_to(&documents, out);
    jobrunner_lambda::respond(handled?)
}
