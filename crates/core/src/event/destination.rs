//! Lambda on-failure destination records. An asynchronous invocation (an EventBridge Scheduler
//! tick, a rule's event) that fails after Lambda's retries is sent to the function's on-failure
//! destination (the launcher's dead-letter queue) as a record that wraps the original event in
//! `requestPayload`. Unwrapping it makes a redrive of that queue launch what the original event
//! would have launched, with the same client token: a tick that did start before the failure is
//! not started twice.
//!
//! Shape (see `events/lambda-destination-schedule.json`):
//! `{"version": "1.0", "timestamp", "requestContext": {"requestId", "functionArn", "condition",
//! "approximateInvokeCount"}, "requestPayload": <the event>, "responseContext": {...},
//! "responsePayload": {...}}`.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::typed;
use crate::error::Error;

/// Whether `object` looks like a destination record.
pub(super) fn is_record(object: &Map<String, Value>) -> bool {
    object.contains_key("requestContext") && object.contains_key("requestPayload")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    request_context: RequestContext,
    request_payload: Value,
}

#[derive(Deserialize)]
struct RequestContext {
    /// `RetriesExhausted`, `EventAgeExceeded`, … (only used in messages).
    condition: Option<String>,
}

/// The original event of a destination record.
pub(super) fn unwrap_record(value: &Value) -> Result<Value, Error> {
    let record: Record = typed(value, "Lambda destination record")?;
    if !record.request_payload.is_object() {
        return Err(Error::MalformedEvent(format!(
            "Lambda destination record ({}): 'requestPayload' is not the original event object",
            record
                .request_context
                .condition
                .as_deref()
                .map_or_else(|| "no condition".to_owned(), |c| format!("{c:?}"))
        )));
    }
    Ok(record.request_payload)
}
