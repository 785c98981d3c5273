//! Rendering an alert as an SNS Publish with `MessageStructure=json`: a readable text body for
//! `default`/`email`, one stable JSON document (schema [`SCHEMA`], see docs/alerts.md) for
//! `sqs`/`lambda`/`https`, a short printable-ASCII subject, and message attributes for
//! subscription filter policies. Everything stays within SNS's size limits.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};

mod json;
mod subject;
pub(super) mod text;

pub use subject::{clean_subject, subject};
pub use text::summary;
use {json::*, subject::*, text::*};

use super::classify::Class;
use super::context::{JobInput, LogLink, Origin, TaskDefinitionLookup, console_url, log_links};
use super::digest::{Alert, StoppedTask};

/// The JSON document's schema name; bumped only on incompatible changes.
pub const SCHEMA: &str = "jobrunner.alert/v1";
/// Every subject starts with this.
pub const SUBJECT_PREFIX: &str = "[jobrunner]";
/// SNS wants subjects under 100 characters.
pub const MAX_SUBJECT_CHARS: usize = 99;
/// SNS's limit for one message, attributes included.
pub const MAX_PUBLISH_BYTES: usize = 262_144;
/// Tasks a digest shows in full.
pub const DIGEST_FULL: usize = 3;
/// Tasks a digest lists one line each after the full ones (more are counted, not listed).
pub const DIGEST_LISTED: usize = 200;
/// Longest free-text field (reasons, keys) kept in a message: S3 keys (≤ 1024 bytes) fit whole.
const MAX_FIELD_CHARS: usize = 1024;
/// Longest free-text field in the last-resort rendering.
const MIN_FIELD_CHARS: usize = 100;
/// Protocols that receive the JSON document.
pub const JSON_PROTOCOLS: &[&str] = &["sqs", "lambda", "https"];

/// An SNS Publish request (the topic is the adapter's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub subject: String,
    /// The `MessageStructure=json` document: `{"default": text, "email": text, "sqs": json, …}`.
    pub message: String,
    /// String message attributes: `class`, `job`, `severity`, `origin`, and `cluster` when known.
    pub attributes: BTreeMap<String, String>,
}

impl Publish {
    /// Always `json`: the message holds one body per protocol.
    pub const MESSAGE_STRUCTURE: &'static str = "json";

    /// Bytes SNS counts against [`MAX_PUBLISH_BYTES`] (message, attributes, and the subject
    /// for good measure).
    pub fn size(&self) -> usize {
        self.message.len()
            + self.subject.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + "String".len() + v.len())
                .sum::<usize>()
    }

    /// The body a protocol receives (`default` when it has no key of its own).
    pub fn body(&self, protocol: &str) -> Option<String> {
        let structure: Value = serde_json::from_str(&self.message).ok()?;
        structure
            .get(protocol)
            .or_else(|| structure.get("default"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// The request in the API's own JSON shape (`aws sns publish --cli-input-json`).
    pub fn to_input(&self, topic_arn: &str) -> Value {
        let attributes: serde_json::Map<String, Value> = self
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), json!({"DataType": "String", "StringValue": v})))
            .collect();
        json!({
            "TopicArn": topic_arn,
            "Subject": self.subject,
            "Message": self.message,
            "MessageStructure": Self::MESSAGE_STRUCTURE,
            "MessageAttributes": attributes,
        })
    }
}

/// Renders `alert`, shrinking a digest's lists until the message fits SNS's limit.
pub fn render(alert: &Alert) -> Publish {
    let total = alert.tasks.len();
    let mut full = total.min(DIGEST_FULL);
    let mut listed = (total - full).min(DIGEST_LISTED);
    loop {
        let publish = render_with(
            alert,
            Limits {
                full,
                listed,
                field_chars: MAX_FIELD_CHARS,
            },
        );
        if publish.size() <= MAX_PUBLISH_BYTES {
            return publish;
        }
        if listed > 0 {
            listed /= 2;
        } else if full > 1 {
            full -= 1;
        } else {
            return render_with(
                alert,
                Limits {
                    full: 1,
                    listed: 0,
                    field_chars: MIN_FIELD_CHARS,
                },
            );
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    full: usize,
    listed: usize,
    field_chars: usize,
}

fn render_with(alert: &Alert, limits: Limits) -> Publish {
    let text = text_body(alert, limits);
    let document = serde_json::to_string(&document(alert, limits)).unwrap_or_else(|_| "{}".into());
    let mut structure = serde_json::Map::new();
    structure.insert("default".into(), Value::String(text.clone()));
    structure.insert("email".into(), Value::String(text));
    for protocol in JSON_PROTOCOLS {
        structure.insert((*protocol).into(), Value::String(document.clone()));
    }
    Publish {
        subject: subject(alert),
        message: Value::Object(structure).to_string(),
        attributes: attributes(alert),
    }
}

/// Message attributes for SNS subscription filter policies.
pub fn attributes(alert: &Alert) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::new();
    attributes.insert("class".into(), alert.class.as_str().into());
    attributes.insert("severity".into(), alert.class.severity().as_str().into());
    attributes.insert("job".into(), non_empty(&alert.name));
    attributes.insert("origin".into(), alert.origin_kind.into());
    if let Some(cluster) = alert.tasks[0]
        .change
        .cluster_name()
        .filter(|c| !c.is_empty())
    {
        attributes.insert("cluster".into(), cluster.into());
    }
    attributes
}

fn non_empty(text: &str) -> String {
    if text.is_empty() {
        "unknown".into()
    } else {
        text.into()
    }
}
