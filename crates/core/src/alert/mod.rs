//! Stopped-task alerts: decoding ECS Task State Change events, classifying why a task stopped,
//! rendering the SNS message, and keeping storms down (dedupe and per-job digests).
//!
//! Everything here is pure. The alerter Lambda feeds it decoded events plus what it looked up
//! (the task definition's log settings); `jobrunner plan` feeds it the same events without
//! lookups through [`dry_run`].

mod classify;
mod context;
mod decode;
mod digest;
mod render;

pub use classify::{Class, Classification, Severity, TIMEOUT_REASON_PREFIX, classify};
pub use context::{
    AwsLogs, ContainerDefinitionInfo, JobInput, LogLink, Origin, TaskDefinitionInfo,
    TaskDefinitionLookup, console_url, log_links,
};
pub use decode::{
    ContainerOverride, ContainerState, KeyValue, STOPPED, TaskOverrides, TaskStateChange,
};
pub use digest::{Alert, StoppedTask, dedupe, group, wants};
pub use render::{
    DIGEST_FULL, DIGEST_LISTED, JSON_PROTOCOLS, MAX_PUBLISH_BYTES, MAX_SUBJECT_CHARS, Publish,
    SCHEMA, SUBJECT_PREFIX, clean_subject, render, subject, summary,
};

use serde_json::Value;

use crate::config::Config;
use crate::dryrun::{Action, Skipped};

/// Alert classes, as named in `[alerts] notify_on`.
pub const CLASS_NAMES: &[&str] = Class::NAMES;

/// What the alerter would publish for `change`, for `jobrunner plan`. The task definition is
/// not looked up: the log links are left out (and every container counts as essential).
pub fn dry_run(config: &Config, change: &TaskStateChange) -> (Vec<Action>, Vec<Skipped>) {
    let skip = |reason: String| (vec![], vec![Skipped { reason }]);
    if !change.is_stopped() {
        return skip(format!(
            "task {} is {}, not STOPPED: the alerter ignores it",
            change.task_arn, change.last_status
        ));
    }
    let Some(alerts) = &config.alerts else {
        return skip(format!(
            "task {} stopped, but the config has no [alerts] section: no alert",
            change.task_arn
        ));
    };
    let task = StoppedTask::new(config, change.clone(), TaskDefinitionLookup::NotLookedUp);
    if !wants(alerts, task.class()) {
        return skip(format!(
            "task {} of {} stopped with class '{}', which alerts.notify_on ({}) leaves out: no alert",
            change.task_arn,
            task.origin.describe(),
            task.class().as_str(),
            alerts
                .notify_on
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut notes = vec![];
    if let Some(arn) = &change.task_definition_arn {
        notes.push(format!(
            "a live run looks up {arn} (DescribeTaskDefinition) for the CloudWatch Logs links and for which containers are essential; this plan leaves the links out and counts every container as essential"
        ));
    }
    notes.push("in an SQS batch, stops of one job and class are merged into one digest alert; a redelivery with the same taskArn and version is alerted once".into());
    let publish = render(&Alert::single(task));
    let action = Action {
        service: "sns",
        operation: "Publish",
        input: publish.to_input(&alerts.topic_arn),
        notes,
    };
    (vec![action], vec![])
}

/// The JSON document of a published alert, parsed (for tests and tools).
pub fn parse_document(publish: &Publish) -> Option<Value> {
    serde_json::from_str(&publish.body("sqs")?).ok()
}

#[cfg(test)]
mod tests;
