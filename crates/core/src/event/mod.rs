//! Decoding the events jobrunner's functions receive, in every delivery shape.
//!
//! An invocation carries either one EventBridge event (or EventBridge Scheduler input, or a
//! classic S3 notification) directly, or an SQS batch whose message bodies are such events.
//! [`decode_invocation`] tells the two apart; each message body is decoded on its own so that
//! one bad message fails only itself.

pub mod s3;
mod schedule;
mod task_state;

pub use s3::ObjectCreated;
pub use schedule::{ScheduleTick, TickSource};
pub use task_state::{
    ContainerOverride, ContainerState, KeyValue, STOPPED, TaskOverrides, TaskStateChange,
};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;

/// One decoded event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An S3 object was created.
    ObjectCreated(ObjectCreated),
    /// A schedule fired.
    ScheduleTick(ScheduleTick),
    /// An ECS task changed state.
    TaskStateChange(Box<TaskStateChange>),
    /// A well-formed event that needs no action (e.g. S3's test notification), with why.
    Ignored(String),
}

/// How the events of one invocation arrived.
#[derive(Debug)]
pub enum Invocation {
    /// Directly from EventBridge, EventBridge Scheduler, or an S3 notification.
    Direct(Result<Vec<Event>, Error>),
    /// An SQS batch: each message decoded on its own.
    SqsBatch(Vec<SqsMessage>),
}

/// One message of an SQS batch with what its body decoded to.
#[derive(Debug)]
pub struct SqsMessage {
    pub message_id: String,
    pub events: Result<Vec<Event>, Error>,
}

/// Deepest JSON nesting accepted; deeper input is rejected before any typed decoding.
const MAX_DEPTH: usize = 64;

/// Decodes a raw invocation payload (the bytes Lambda hands the function).
pub fn decode_invocation_text(text: &str) -> Result<Invocation, Error> {
    let value = parse_json(text)?;
    decode_invocation(&value)
}

/// Decodes an invocation payload already parsed as JSON.
pub fn decode_invocation(value: &Value) -> Result<Invocation, Error> {
    if let Some(records) = sqs_records(value) {
        let messages = records
            .iter()
            .enumerate()
            .map(|(i, record)| {
                let message_id = record
                    .get("messageId")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("#{i}"));
                let events = match record.get("body").and_then(Value::as_str) {
                    Some(body) => decode_message(body),
                    None => Err(Error::MalformedEvent(
                        "SQS record has no string body".into(),
                    )),
                };
                SqsMessage { message_id, events }
            })
            .collect();
        return Ok(Invocation::SqsBatch(messages));
    }
    Ok(Invocation::Direct(decode_event(value)))
}

/// Decodes one SQS message body, which holds one event document.
pub fn decode_message(body: &str) -> Result<Vec<Event>, Error> {
    decode_event(&parse_json(body)?)
}

/// Decodes one event document: EventBridge, Scheduler input, or a classic S3 notification.
pub fn decode_event(value: &Value) -> Result<Vec<Event>, Error> {
    let Some(object) = value.as_object() else {
        return Err(Error::UnsupportedEvent(format!(
            "expected a JSON object, got {}",
            kind_of(value)
        )));
    };
    if object.contains_key("detail-type") {
        return decode_eventbridge(value).map(|event| vec![event]);
    }
    if object.get("source").and_then(Value::as_str) == Some(schedule::SCHEDULER_SOURCE) {
        return schedule::decode_scheduler_input(value).map(|tick| vec![Event::ScheduleTick(tick)]);
    }
    if object.contains_key("Records") {
        return s3::decode_notification(value);
    }
    if object.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(vec![Event::Ignored("S3 test notification".into())]);
    }
    Err(Error::UnsupportedEvent(
        "not an EventBridge event, EventBridge Scheduler input, S3 notification or SQS batch"
            .into(),
    ))
}

/// The EventBridge envelope (fields every event has).
#[derive(Debug, Deserialize)]
struct EventBridgeEnvelope {
    #[serde(rename = "detail-type")]
    detail_type: String,
    source: String,
    time: DateTime<Utc>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    detail: Value,
}

fn decode_eventbridge(value: &Value) -> Result<Event, Error> {
    let envelope: EventBridgeEnvelope = typed(value, "EventBridge event")?;
    match (envelope.source.as_str(), envelope.detail_type.as_str()) {
        ("aws.s3", "Object Created") => {
            s3::decode_eventbridge_detail(&envelope.detail, envelope.time).map(Event::ObjectCreated)
        }
        ("aws.s3", other) => Ok(Event::Ignored(format!("S3 '{other}' events start no job"))),
        ("aws.events", "Scheduled Event") => {
            schedule::decode_rule_event(&envelope.resources, envelope.time).map(Event::ScheduleTick)
        }
        ("aws.ecs", "ECS Task State Change") => TaskStateChange::from_detail(&envelope.detail)
            .map(|change| Event::TaskStateChange(Box::new(change))),
        (source, detail_type) => Err(Error::UnsupportedEvent(format!(
            "EventBridge '{detail_type}' from '{source}'"
        ))),
    }
}

fn sqs_records(value: &Value) -> Option<&Vec<Value>> {
    let records = value.get("Records")?.as_array()?;
    let first = records.first()?;
    (first.get("eventSource").and_then(Value::as_str) == Some("aws:sqs")).then_some(records)
}

/// Parses JSON text, rejecting nesting deeper than [`MAX_DEPTH`] with a clear error.
pub fn parse_json(text: &str) -> Result<Value, Error> {
    if nesting_depth(text) > MAX_DEPTH {
        return Err(Error::UnsupportedEvent(format!(
            "JSON nested deeper than {MAX_DEPTH} levels"
        )));
    }
    serde_json::from_str(text).map_err(|e| Error::UnsupportedEvent(format!("not JSON: {e}")))
}

/// Bracket depth outside strings (a cheap pre-check; serde_json's own limit is 128).
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for byte in text.bytes() {
        match (in_string, byte) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (true, b'"') => in_string = false,
            (true, _) => {}
            (false, b'"') => in_string = true,
            (false, b'{' | b'[') => {
                depth += 1;
                max = max.max(depth);
            }
            (false, b'}' | b']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Deserializes `value` into `T`, naming the path of the offending field on failure.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(value: &Value, what: &str) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        Error::MalformedEvent(format!("{what}: {path}: {}", e.into_inner()))
    })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
