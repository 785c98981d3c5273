//! The scaler function: keeps each worker's tasks matched to its SQS backlog (a service's
//! `desiredCount`, or standalone tasks launched per backlog in jobs mode).
//!
//! The decisions are `jobrunner_core::scaler` (shared with `jobrunner plan --function
//! scaler`); this is the function's one `handle`, as every jobrunner function has it. It
//! prints the invocation's EMF metrics lines and answers with the report.

use jobrunner_core::Config;
use jobrunner_core::scaler::{Report, Scaler, ScalerPorts};
use jobrunner_lambda::{Error, Invocation};
use serde_json::Value;

pub use jobrunner_core::scaler::{
    LastAction, SAMPLING_GUARD, STATE_TTL, SampleReport, TICK, WorkerReport, WorkerState,
    sampling_deadline, state_key,
};

/// Handles one scheduled invocation. Time is the ports' clock (the scaler samples again within
/// the invocation); `invocation.deadline` bounds the sampling. Fails only when every worker
/// failed, so Lambda's Errors metric (and the stack's alarm) sees it; a partial failure is
/// logged and reported.
pub async fn handle(
    config: &Config,
    ports: &impl ScalerPorts,
    invocation: &Invocation,
) -> Result<Value, Error> {
    let report = run(config, ports, invocation).await.into_result()?;
    Ok(serde_json::to_value(&report).unwrap_or(Value::Null))
}

/// [`handle`], returning the report itself.
pub async fn run(config: &Config, ports: &impl ScalerPorts, invocation: &Invocation) -> Report {
    let report = Scaler::for_config(config, ports)
        .handle(&invocation.payload, invocation.deadline)
        .await;
    for document in &report.metrics {
        println!("{document}");
    }
    report
}
