//! Rendering an alert as an SNS Publish with `MessageStructure=json`: a readable text body for
//! `default`/`email`, one stable JSON document (schema [`SCHEMA`], see docs/alerts.md) for
//! `sqs`/`lambda`/`https`, a short printable-ASCII subject, and message attributes for
//! subscription filter policies. Everything stays within SNS's size limits, whatever the event
//! holds (see [`render`]), and no field can add lines or hide text ([`safe`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};

mod json;
mod run;
pub mod safe;
mod subject;
pub(super) mod text;

pub use run::{UnstartedRun, render_unstarted};
pub use subject::{clean_subject, subject};
pub use text::summary;
use {json::*, subject::*, text::*};

use super::classify::Class;
use super::context::{
    JobInput, LogLink, Origin, TaskDefinitionLookup, console_url, log_links_iter,
};
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
/// Containers (and log links) shown per task: ECS allows 10 containers in a task definition.
const MAX_CONTAINERS: usize = 10;
/// The last resorts for one huge task, tried in order: longest field, containers shown.
const LAST_RESORTS: &[(usize, usize)] = &[(256, MAX_CONTAINERS), (64, 3), (16, 1), (16, 0)];
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

/// Renders `alert` within SNS's limit on what is published (message and attributes): a
/// digest's lists shrink first, then, for tasks whose fields are huge (a hostile event can hold
/// a 300 KB ARN or a thousand containers), every field is clipped harder and fewer containers
/// are shown. Every string of every rendering is clipped, so the last resort always fits.
pub fn render(alert: &Alert) -> Publish {
    let total = alert.tasks.len();
    let mut limits = Limits {
        full: total.min(DIGEST_FULL),
        listed: (total - total.min(DIGEST_FULL)).min(DIGEST_LISTED),
        field_chars: MAX_FIELD_CHARS,
        containers: MAX_CONTAINERS,
    };
    loop {
        let publish = render_with(alert, limits);
        if publish.size() <= MAX_PUBLISH_BYTES {
            return publish;
        }
        if limits.listed > 0 {
            limits.listed /= 2;
        } else if limits.full > 1 {
            limits.full -= 1;
        } else if let Some(&(field_chars, containers)) = LAST_RESORTS
            .iter()
            .find(|(chars, _)| *chars < limits.field_chars)
        {
            limits.field_chars = field_chars;
            limits.containers = containers;
        } else {
            return publish;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Tasks of a digest shown in full.
    full: usize,
    /// Tasks of a digest listed one line each.
    listed: usize,
    /// Longest string of any field (and, plus its label, of any line of the text).
    field_chars: usize,
    /// Containers and log links shown per task.
    containers: usize,
}

impl Limits {
    fn is_cut(&self) -> bool {
        self.field_chars < MAX_FIELD_CHARS || self.containers < MAX_CONTAINERS
    }
}

fn render_with(alert: &Alert, limits: Limits) -> Publish {
    Publish {
        subject: subject(alert),
        message: message(&text_body(alert, limits), &json_document(alert, limits)),
        attributes: attributes(alert, limits.field_chars),
    }
}

/// The `MessageStructure=json` message: `text` for `default` and `email`, `document` for
/// [`JSON_PROTOCOLS`], keys in order. Each body is escaped once and written where it goes.
fn message(text: &str, document: &str) -> String {
    let quoted = |body: &str| safe::json(serde_json::to_string(body).unwrap_or_default());
    let (text, document) = (quoted(text), quoted(document));
    let mut bodies: Vec<(&str, &str)> = vec![("default", &text), ("email", &text)];
    bodies.extend(
        JSON_PROTOCOLS
            .iter()
            .map(|protocol| (*protocol, document.as_str())),
    );
    bodies.sort_unstable_by_key(|(protocol, _)| *protocol);
    let mut out = String::with_capacity(2 * text.len() + 3 * document.len() + 64);
    for (protocol, body) in bodies {
        out.push(if out.is_empty() { '{' } else { ',' });
        let _ = write!(out, "\"{protocol}\":{body}");
    }
    out.push('}');
    out
}

/// Message attributes for SNS subscription filter policies. `job` and `cluster` come from the
/// event: unsafe characters are escaped ([`safe::text`]), e.g. a NUL (which SNS refuses), and
/// the values are clipped to `max` characters.
fn attributes(alert: &Alert, max: usize) -> BTreeMap<String, String> {
    let value = |text: &str| clip(&safe::text(text), max);
    let mut attributes = BTreeMap::new();
    attributes.insert("class".into(), alert.class.as_str().into());
    attributes.insert("severity".into(), alert.class.severity().as_str().into());
    attributes.insert("job".into(), value(&non_empty(&alert.name)));
    attributes.insert("origin".into(), alert.origin_kind.into());
    if let Some(cluster) = alert.tasks[0]
        .change
        .cluster_name()
        .filter(|c| !c.is_empty())
    {
        attributes.insert("cluster".into(), value(cluster));
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
