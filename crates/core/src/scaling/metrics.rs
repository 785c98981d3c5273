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
use crate::metrics::{self, Unit};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// The metrics namespace (shared by every function's documents).
pub use crate::metrics::NAMESPACE;

/// The EMF document of one decision.
pub fn decision(
    worker: &str,
    observation: &Observation,
    decision: &Decision,
    at: DateTime<Utc>,
) -> Value {
    let mut document = json!({
        "_aws": envelope(at, &[("backlog", Unit::Count), ("in_flight", Unit::Count), ("desired", Unit::Count), ("decision", Unit::Count)]),
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
        "_aws": envelope(at, &[("backlog", Unit::Count), ("in_flight", Unit::Count), ("desired", Unit::Count), ("decision", Unit::Count)]),
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
        "_aws": envelope(at, &[("errors", Unit::Count)]),
        "worker": worker,
        "errors": 1,
        "error": message,
    })
}

/// The shared envelope with the scaler's one dimension set, `[worker]`.
fn envelope(at: DateTime<Utc>, metrics: &[(&str, Unit)]) -> Value {
    metrics::envelope(at, &[&["worker"]], metrics)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn t0() -> DateTime<Utc> {
        "2026-11-25T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn the_scaler_documents_keep_their_shape_on_the_shared_envelope() {
        let error = error("orders", "boom", t0());
        crate::metrics::check(&error).unwrap();
        assert_eq!(
            error,
            json!({
                "_aws": {
                    "Timestamp": t0().timestamp_millis(),
                    "CloudWatchMetrics": [{
                        "Namespace": "jobrunner",
                        "Dimensions": [["worker"]],
                        "Metrics": [{"Name": "errors", "Unit": "Count"}],
                    }],
                },
                "worker": "orders",
                "errors": 1,
                "error": "boom",
            })
        );
    }
}
