//! Decoding the events jobrunner's functions receive, in every delivery shape.
//!
//! An invocation carries either one EventBridge event (or EventBridge Scheduler input, or a
//! classic S3 notification) directly, or an SQS batch whose message bodies are such events.
//! [`decode_invocation`] tells the two apart; each message body is decoded on its own so that
//! one bad message fails only itself. An event may also arrive wrapped: in an SNS envelope
//! (a topic between S3 and the queue or function) or in a Lambda on-failure destination record
//! (an asynchronous invocation that failed, redriven from the dead-letter queue); the wrapping
//! is removed and the event inside decoded as if it had come directly.

mod destination;
mod encode;
pub mod retry;
pub mod s3;
pub mod s3_batch;
mod sns;
pub mod submit;
mod task_state;
mod tick;

pub use encode::encode;
pub use retry::RetryRequest;
pub use s3::ObjectCreated;
pub use submit::Submit;
pub use task_state::{
    ContainerOverride, ContainerState, KeyValue, STOPPED, TaskOverrides, TaskStateChange,
};
pub use tick::{ScheduleTick, TickSource};

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
    /// The tracker's decision that a run's next attempt is due (to the launcher).
    Retry(RetryRequest),
    /// A run submitted by hand (`jobrunner submit`, to the launcher).
    Submit(Submit),
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
/// Most envelopes (SNS, destination records) one event may be wrapped in.
const MAX_WRAPPING: usize = 3;

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

/// Decodes one event document: EventBridge, Scheduler input, a classic S3 notification, or one
/// of those wrapped in an SNS envelope or a Lambda destination record.
pub fn decode_event(value: &Value) -> Result<Vec<Event>, Error> {
    decode_wrapped(value, 0)
}

fn decode_wrapped(value: &Value, wrapping: usize) -> Result<Vec<Event>, Error> {
    let Some(object) = value.as_object() else {
        return Err(Error::UnsupportedEvent(format!(
            "expected a JSON object, got {}",
            kind_of(value)
        )));
    };
    if object.contains_key("detail-type") {
        return decode_eventbridge(value).map(|event| vec![event]);
    }
    if object.get("source").and_then(Value::as_str) == Some(retry::SOURCE) {
        return retry::decode(value).map(|request| vec![Event::Retry(request)]);
    }
    if object.get("source").and_then(Value::as_str) == Some(submit::SOURCE) {
        return submit::decode(value).map(|submit| vec![Event::Submit(submit)]);
    }
    if object.get("source").and_then(Value::as_str) == Some(tick::SCHEDULER_SOURCE) {
        return tick::decode_scheduler_input(value).map(|tick| vec![Event::ScheduleTick(tick)]);
    }
    let unwrap = |inner: &Value| {
        if wrapping >= MAX_WRAPPING {
            return Err(Error::UnsupportedEvent(format!(
                "event wrapped in more than {MAX_WRAPPING} envelopes (SNS, Lambda destination records)"
            )));
        }
        decode_wrapped(inner, wrapping + 1)
    };
    if s3_batch::is_invocation(value) {
        return Err(Error::UnsupportedEvent(
            "an S3 Batch Operations invocation: only the launcher answers it, invoked directly (not through a queue or envelope)".into(),
        ));
    }
    if destination::is_record(object) {
        return unwrap(&destination::unwrap_record(value)?);
    }
    // One SNS delivery is one wrapping, whether as an envelope or as a record holding one.
    let unwrap_sns = |envelope: &Value| match sns::unwrap_envelope(envelope)? {
        sns::Unwrapped::Message(text) => unwrap(
            &parse_json(&text)
                .map_err(|e| Error::UnsupportedEvent(format!("SNS message: {}", reason_of(e))))?,
        ),
        sns::Unwrapped::NoEvent(reason) => Ok(vec![Event::Ignored(reason)]),
    };
    if sns::is_envelope(object) {
        return unwrap_sns(value);
    }
    if let Some(records) = object.get("Records") {
        return match record_source(records) {
            Some("aws:s3") => s3::decode_notification(value),
            Some("aws:sns") => {
                let records = records.as_array().map(Vec::as_slice).unwrap_or_default();
                let mut events = vec![];
                for record in records {
                    events.extend(unwrap_sns(&sns::record_envelope(record)?)?);
                }
                Ok(events)
            }
            Some("aws:sqs") => Err(Error::UnsupportedEvent(
                "an SQS event inside an event: the message body must be the event itself, not a Lambda SQS event forwarded to a queue".into(),
            )),
            Some(other) => Err(Error::UnsupportedEvent(format!(
                "'Records' from {other:?}"
            ))),
            None => Err(Error::MalformedEvent(
                "'Records' must be a non-empty array of records with an 'eventSource'".into(),
            )),
        };
    }
    if object.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(vec![Event::Ignored("S3 test notification".into())]);
    }
    Err(Error::UnsupportedEvent(
        "not an EventBridge event, EventBridge Scheduler input, S3 notification, SNS envelope, Lambda destination record or SQS batch"
            .into(),
    ))
}

/// The `eventSource` (`EventSource` in SNS's records) of the first record.
fn record_source(records: &Value) -> Option<&str> {
    let first = records.as_array()?.first()?;
    first
        .get("eventSource")
        .or_else(|| first.get("EventSource"))
        .and_then(Value::as_str)
}

/// The text of an error without its kind's prefix (for wrapping it in another message).
fn reason_of(error: Error) -> String {
    match error {
        Error::UnsupportedEvent(reason) | Error::MalformedEvent(reason) => reason,
        other => other.to_string(),
    }
}

/// The EventBridge envelope (fields every event has); its `detail` is read in place.
#[derive(Debug, Deserialize)]
struct EventBridgeEnvelope {
    #[serde(rename = "detail-type")]
    detail_type: String,
    source: String,
    time: DateTime<Utc>,
    #[serde(default)]
    resources: Vec<String>,
}

fn decode_eventbridge(value: &Value) -> Result<Event, Error> {
    let envelope: EventBridgeEnvelope = typed(value, "EventBridge event")?;
    let detail = value.get("detail").unwrap_or(&Value::Null);
    match (envelope.source.as_str(), envelope.detail_type.as_str()) {
        ("aws.s3", "Object Created") => {
            s3::decode_eventbridge_detail(detail, envelope.time).map(Event::ObjectCreated)
        }
        ("aws.s3", other) => Ok(Event::Ignored(format!("S3 {other:?} events start no job"))),
        ("aws.events", "Scheduled Event") => {
            tick::decode_rule_event(&envelope.resources, envelope.time).map(Event::ScheduleTick)
        }
        ("aws.ecs", "ECS Task State Change") => TaskStateChange::from_detail(detail)
            .map(|change| Event::TaskStateChange(Box::new(change))),
        (source, detail_type) => Err(Error::UnsupportedEvent(format!(
            "EventBridge {detail_type:?} from {source:?}"
        ))),
    }
}

fn sqs_records(value: &Value) -> Option<&Vec<Value>> {
    let records = value.get("Records")?.as_array()?;
    let first = records.first()?;
    (first.get("eventSource").and_then(Value::as_str) == Some("aws:sqs")).then_some(records)
}

/// Parses JSON text, rejecting nesting deeper than [`MAX_DEPTH`] with a clear error. A leading
/// UTF-8 byte order mark (which some tools write before JSON) is skipped.
pub fn parse_json(text: &str) -> Result<Value, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
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

/// Deserializes `value` into `T`, naming the path of the offending field on failure. The
/// message quotes the event's own keys and values, so their control characters and line
/// separators are escaped: the error stays one line in logs and DLQ reasons.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(value: &Value, what: &str) -> Result<T, Error> {
    // Most events decode: only a failure is decoded again, tracking the path it failed at.
    T::deserialize(value)
        .or_else(|_| serde_path_to_error::deserialize(value))
        .map_err(|e| {
            let path = e.path().to_string();
            Error::MalformedEvent(escape_controls(&format!(
                "{what}: {path}: {}",
                e.into_inner()
            )))
        })
}

/// `text` with control characters and line or paragraph separators written as escapes (`\r`,
/// `\u{2028}`).
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
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
