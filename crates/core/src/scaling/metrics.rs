//! CloudWatch metrics as Embedded Metric Format: one JSON line on stdout per decision, which
//! Lambda's log pipeline turns into metrics (no CloudWatch API call, nothing to wait for).
//!
//! Namespace `jobrunner`, dimension `worker`. Metrics: `backlog`, `in_flight`, `desired` and
//! `decision` (new minus previous desired count: positive out, negative in, zero hold) on every
//! decision; `errors` (1) when a worker fails. The other observations and the reason ride along
//! as properties, searchable in CloudWatch Logs Insights. A jobs-mode decision is the same
//! document: `desired` is the worker's tasks once the launches are done, `decision` the tasks
//! launched, with `mode`, `live`, `launch` and `launched` as properties.

use super::{Decision, JobsDecision, Observation, QueueDepth};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// The metrics namespace.
pub const NAMESPACE: &str = "jobrunner";

/// The EMF document of one decision.
pub fn decision(
    worker: &str,
    observation: &Observation,
    decision: &Decision,
    at: DateTime<Utc>,
) -> Value {
    let mut document = json!({
        "_aws": envelope(at, &[("backlog", "Count"), ("in_flight", "Count"), ("desired", "Count"), ("decision", "Count")]),
        "worker": worker,
        "backlog": decision.backlog,
        "in_flight": observation.in_flight,
        "desired": decision.desired,
        "decision": decision.delta(),
        "visible": observation.visible,
        "delayed": observation.delayed,
        "running": observation.running,
        "pending": observation.pending,
        "previous": decision.previous,
        "direction": decision.direction.as_str(),
        "min_tasks": decision.bounds.min,
        "max_tasks": decision.bounds.max,
        "reason": decision.reason,
    });
    if let Some(protected) = decision.protected {
        document["protected"] = protected.into();
    }
    document
}

/// The EMF document of one jobs-mode decision; `launched` is how many tasks RunTask started.
pub fn jobs(
    worker: &str,
    queue: &QueueDepth,
    decision: &JobsDecision,
    launched: usize,
    at: DateTime<Utc>,
) -> Value {
    json!({
        "_aws": envelope(at, &[("backlog", "Count"), ("in_flight", "Count"), ("desired", "Count"), ("decision", "Count")]),
        "worker": worker,
        "mode": "jobs",
        "backlog": decision.backlog,
        "in_flight": queue.in_flight,
        "desired": decision.target(),
        "decision": decision.launch,
        "visible": queue.visible,
        "delayed": queue.delayed,
        "live": decision.live,
        "launch": decision.launch,
        "launched": launched,
        "previous": decision.live,
        "direction": decision.direction.as_str(),
        "max_tasks": decision.bounds.max,
        "reason": decision.reason,
    })
}

/// The EMF document of a worker's failure.
pub fn error(worker: &str, message: &str, at: DateTime<Utc>) -> Value {
    json!({
        "_aws": envelope(at, &[("errors", "Count")]),
        "worker": worker,
        "errors": 1,
        "error": message,
    })
}

fn envelope(at: DateTime<Utc>, metrics: &[(&str, &str)]) -> Value {
    json!({
        "Timestamp": at.timestamp_millis(),
        "CloudWatchMetrics": [{
            "Namespace": NAMESPACE,
            "Dimensions": [["worker"]],
            "Metrics": metrics.iter().map(|(name, unit)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
        }],
    })
}
