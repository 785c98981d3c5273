//! SNS envelopes: an event published to an SNS topic reaches jobrunner wrapped, either as the
//! JSON envelope SNS sends to an SQS subscription (without raw message delivery), or as the
//! `Records[].Sns` of the event SNS passes to a subscribed Lambda function. The event is the
//! envelope's `Message`, a string holding JSON (e.g. an S3 notification published to a topic).
//!
//! Signatures are not verified: the queue's or the function's resource policy decides who may
//! deliver, as for every other shape.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::typed;
use crate::error::Error;

/// The envelope's `Type` for a published message.
const NOTIFICATION: &str = "Notification";

/// Whether `object` looks like an SNS envelope (`Type` and `TopicArn`, as SNS always sends).
pub(super) fn is_envelope(object: &Map<String, Value>) -> bool {
    object.get("Type").is_some_and(Value::is_string) && object.contains_key("TopicArn")
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "TopicArn")]
    topic_arn: String,
    #[serde(rename = "Message")]
    message: Option<String>,
}

/// What an envelope holds.
pub(super) enum Unwrapped {
    /// The published message's text (to decode as an event).
    Message(String),
    /// An envelope that carries no event (a subscription confirmation), with why.
    NoEvent(String),
}

/// Unwraps one SNS envelope (either shape's inner object).
pub(super) fn unwrap_envelope(value: &Value) -> Result<Unwrapped, Error> {
    let envelope: Envelope = typed(value, "SNS envelope")?;
    if envelope.kind != NOTIFICATION {
        return Ok(Unwrapped::NoEvent(format!(
            "SNS {:?} from topic {:?} carries no event",
            envelope.kind, envelope.topic_arn
        )));
    }
    match envelope.message {
        Some(message) => Ok(Unwrapped::Message(message)),
        None => Err(Error::MalformedEvent(format!(
            "SNS notification from topic {:?} has no 'Message'",
            envelope.topic_arn
        ))),
    }
}

#[derive(Deserialize)]
struct LambdaRecord {
    #[serde(rename = "Sns")]
    sns: Value,
}

/// The envelope inside one record of the event SNS passes to a Lambda function.
pub(super) fn record_envelope(record: &Value) -> Result<Value, Error> {
    let record: LambdaRecord = typed(record, "SNS record")?;
    Ok(record.sns)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_envelope_has_a_string_type_and_a_topic() {
        let envelope = |value: Value| is_envelope(value.as_object().unwrap());
        assert!(envelope(
            json!({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t"})
        ));
        assert!(!envelope(json!({"Type": "Notification"})));
        assert!(!envelope(json!({"TopicArn": "arn:aws:sns:us-east-1:1:t"})));
        assert!(!envelope(
            json!({"Type": 1, "TopicArn": "arn:aws:sns:us-east-1:1:t"})
        ));
    }
}
