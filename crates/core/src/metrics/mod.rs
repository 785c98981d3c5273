//! CloudWatch metrics as Embedded Metric Format (EMF): one JSON document per observation,
//! printed by the functions as one line on stdout, which Lambda's log pipeline turns into
//! metrics (no CloudWatch API call, nothing to wait for).
//!
//! Every document has the namespace [`NAMESPACE`], an `_aws.Timestamp` (the time passed in),
//! its dimension sets and metric definitions in `_aws.CloudWatchMetrics`, and every dimension
//! and metric as a top-level member ([`Document`] builds exactly that; [`check`] verifies it
//! against the EMF specification). Dimension values are bounded by construction: a job name
//! from the config, an outcome or a stop class (enums), a worker or a queue's name. Never an
//! object key or a run id: those ride along as plain properties when at all.
//!
//! The catalogue (names, units, dimension sets) is `docs/metrics.md`. Builders per function:
//! [`launcher`], [`tracker`], [`worker`]; the scaler's are [`crate::scaling::metrics`].
//! Decisions deep in the launcher and the tracker hand their documents to the invocation's
//! [`scope`], which the function's binary opens around the handler and prints afterwards.

pub mod launcher;
pub mod scope;
pub mod tracker;
pub mod worker;

use std::io::Write;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// The metrics namespace of every jobrunner function.
pub const NAMESPACE: &str = "jobrunner";

/// EMF's limit on the dimensions of one dimension set.
pub const MAX_DIMENSIONS_PER_SET: usize = 30;
/// EMF's limit on the metric definitions of one directive.
pub const MAX_METRICS: usize = 100;
/// CloudWatch's limit on a dimension value's length.
pub const MAX_DIMENSION_VALUE_CHARS: usize = 1024;

/// The CloudWatch units jobrunner's metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
pub enum Unit {
    Count,
    Seconds,
    Milliseconds,
    /// A plain number (e.g. US dollars).
    None,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Every unit CloudWatch accepts, for [`check`].
const CLOUDWATCH_UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// The `_aws` member of a document: timestamp, namespace, dimension sets, metric definitions.
/// Shared by every builder (the scaler's included).
pub fn envelope(at: DateTime<Utc>, dimensions: &[&[&str]], metrics: &[(&str, Unit)]) -> Value {
    json!({
        "Timestamp": at.timestamp_millis(),
        "CloudWatchMetrics": [{
            "Namespace": NAMESPACE,
            "Dimensions": dimensions,
            "Metrics": metrics
                .iter()
                .map(|(name, unit)| json!({"Name": name, "Unit": unit.as_str()}))
                .collect::<Vec<_>>(),
        }],
    })
}

/// One EMF document under construction: dimensions, metrics and plain properties.
#[derive(Debug, Clone)]
pub struct Document {
    at: DateTime<Utc>,
    sets: Vec<Vec<&'static str>>,
    metrics: Vec<(&'static str, Unit)>,
    members: Map<String, Value>,
}

impl Document {
    /// A document at `at` with these dimension sets (each a list of dimension names).
    pub fn new(at: DateTime<Utc>, sets: &[&[&'static str]]) -> Document {
        Document {
            at,
            sets: sets.iter().map(|s| s.to_vec()).collect(),
            metrics: vec![],
            members: Map::new(),
        }
    }

    /// A dimension's value (a bounded name: job, outcome, class, queue, worker).
    pub fn dimension(mut self, name: &'static str, value: &str) -> Document {
        let value: String = value.chars().take(MAX_DIMENSION_VALUE_CHARS).collect();
        self.members.insert(name.into(), Value::String(value));
        self
    }

    /// A metric and its value.
    pub fn metric(mut self, name: &'static str, unit: Unit, value: impl Into<Value>) -> Document {
        self.metrics.push((name, unit));
        self.members.insert(name.into(), value.into());
        self
    }

    /// A property that is no metric (searchable in Logs Insights).
    pub fn property(mut self, name: &str, value: impl Into<Value>) -> Document {
        self.members.insert(name.into(), value.into());
        self
    }

    /// The document as JSON.
    pub fn build(self) -> Value {
        let sets: Vec<&[&str]> = self.sets.iter().map(Vec::as_slice).collect();
        let mut root = Map::new();
        root.insert("_aws".into(), envelope(self.at, &sets, &self.metrics));
        root.extend(self.members);
        Value::Object(root)
    }
}

/// Writes each document as one JSON line (what the functions print on stdout).
pub fn write_lines(documents: &[Value], out: &mut impl Write) -> std::io::Result<()> {
    for document in documents {
        let mut line = document.to_string();
        line.push('\n');
        // One write per line: a line never interleaves with another writer's output.
        out.write_all(line.as_bytes())?;
    }
    out.flush()
}

/// Writes the documents to `out` (stdout in the functions), one line each; a failed write is
/// logged, never fatal (metrics must not fail an invocation).
pub fn print_to(documents: &[Value], out: &mut impl Write) {
    if documents.is_empty() {
        return;
    }
    if let Err(e) = write_lines(documents, out) {
        tracing::warn!(error = %e, "metric lines not written");
    }
}

/// Checks one document against the EMF specification: `_aws.Timestamp` a number,
/// `_aws.CloudWatchMetrics` a non-empty array of directives each with a namespace, at most
/// 30 dimensions per set and 100 metric definitions (names 1–255 characters, known units),
/// every dimension a top-level string of at most 1024 characters and every metric a
/// top-level number (or array of at most 100 numbers). Returns what is wrong.
pub fn check(document: &Value) -> Result<(), String> {
    let root = document
        .as_object()
        .ok_or("the document is not an object")?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no _aws object")?;
    if !aws.get("Timestamp").is_some_and(Value::is_u64) {
        return Err("_aws.Timestamp is not a number of milliseconds".into());
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or("_aws.CloudWatchMetrics is not a non-empty array")?;
    for directive in directives {
        let namespace = directive["Namespace"]
            .as_str()
            .ok_or("a directive has no Namespace")?;
        if namespace.is_empty() || namespace.len() > 255 || namespace.starts_with(':') {
            return Err(format!("namespace '{namespace}' is not 1-255 characters"));
        }
        let sets = directive["Dimensions"]
            .as_array()
            .ok_or("Dimensions is not an array")?;
        for set in sets {
            let set = set.as_array().ok_or("a dimension set is not an array")?;
            if set.len() > MAX_DIMENSIONS_PER_SET {
                return Err(format!("a dimension set has {} dimensions", set.len()));
            }
            for name in set {
                let name = name.as_str().ok_or("a dimension name is not a string")?;
                let value = root
                    .get(name)
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("dimension '{name}' is not a top-level string"))?;
                if value.is_empty()
                    || value.chars().count() > MAX_DIMENSION_VALUE_CHARS
                    || !value.chars().all(|c| c.is_ascii() && !c.is_ascii_control())
                    || value.trim().is_empty()
                {
                    return Err(format!(
                        "dimension '{name}' = '{value}' is not 1-1024 printable ASCII characters"
                    ));
                }
            }
        }
        let metrics = directive["Metrics"]
            .as_array()
            .ok_or("Metrics is not an array")?;
        if metrics.len() > MAX_METRICS {
            return Err(format!("{} metric definitions", metrics.len()));
        }
        for metric in metrics {
            let name = metric["Name"].as_str().ok_or("a metric has no Name")?;
            if name.is_empty() || name.len() > 255 {
                return Err(format!("metric name '{name}' is not 1-255 characters"));
            }
            if let Some(unit) = metric.get("Unit") {
                let unit = unit.as_str().unwrap_or_default();
                if !CLOUDWATCH_UNITS.contains(&unit) {
                    return Err(format!("metric '{name}' has unit '{unit}'"));
                }
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values))
                    if values.len() <= 100 && values.iter().all(Value::is_number) => {}
                _ => return Err(format!("metric '{name}' is not a top-level number")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
