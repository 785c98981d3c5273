//! A retry request: the tracker's decision that a run's next attempt is due at `not_before`,
//! sent to the launcher's queue. The launcher reads the attempt's size and capacity from the
//! run's ledger record; the request only says which attempt and when.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::Error;

/// The `source` of a retry request.
pub const SOURCE: &str = "jobrunner.retry";

/// Attempt `attempt` of run `run_id` is due at `not_before`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryRequest {
    pub run_id: String,
    pub attempt: u32,
    pub not_before: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[allow(dead_code)]
    source: String,
    run_id: String,
    attempt: u32,
    not_before: DateTime<Utc>,
}

pub(super) fn decode(value: &Value) -> Result<RetryRequest, Error> {
    let document: Document = super::typed(value, "jobrunner retry request")?;
    let valid_id = !document.run_id.is_empty()
        && document.run_id.len() <= 64
        && document.run_id.bytes().all(|b| b.is_ascii_alphanumeric());
    if !valid_id || document.attempt < 2 {
        return Err(Error::MalformedEvent(format!(
            "jobrunner retry request: run_id {:?} attempt {} (a run id of letters and digits, attempt 2 or more)",
            document.run_id, document.attempt
        )));
    }
    Ok(RetryRequest {
        run_id: document.run_id,
        attempt: document.attempt,
        not_before: document.not_before,
    })
}

impl RetryRequest {
    /// The request as the document [`super::decode_event`] reads.
    pub fn to_document(&self) -> Value {
        json!({
            "source": SOURCE,
            "run_id": self.run_id,
            "attempt": self.attempt,
            "not_before": self.not_before.to_rfc3339_opts(SecondsFormat::Secs, true),
        })
    }
}
