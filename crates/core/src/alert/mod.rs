//! Stopped-task alerts: decoding ECS Task State Change events, classifying why a task stopped,
//! rendering the SNS message, and keeping storms down (dedupe and per-job digests).
//!
//! All pure: classification, context, digests, rendering. The tracker function's invocation
//! over the ports is `tracker`.

mod classify;
mod context;
mod digest;
mod render;

pub use classify::{Class, Classification, Severity, TIMEOUT_REASON_PREFIX, classify};
pub use context::{
    AwsLogs, ContainerDefinitionInfo, JobInput, LogLink, Origin, TaskDefinitionInfo,
    TaskDefinitionLookup, console_url, log_links,
};
pub use digest::{Alert, StoppedTask, dedupe, group, wants};
pub use render::{
    DIGEST_FULL, DIGEST_LISTED, JSON_PROTOCOLS, MAX_PUBLISH_BYTES, MAX_SUBJECT_CHARS, Publish,
    SCHEMA, SUBJECT_PREFIX, UnstartedRun, clean_subject, render, render_unstarted, subject,
    summary,
};

use serde_json::Value;

/// Alert classes, as named in `[alerts] notify_on`.
pub const CLASS_NAMES: &[&str] = Class::NAMES;

/// The JSON document of a published alert, parsed (for tests and tools).
pub fn parse_document(publish: &Publish) -> Option<Value> {
    serde_json::from_str(&publish.body("sqs")?).ok()
}

#[cfg(test)]
mod tests;
