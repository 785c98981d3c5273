//! What one invocation of any function did, and the one place that turns it into the answer
//! Lambda gets: SQS partial-batch failures for a batch, a summary or an error for a direct
//! delivery. `jobrunner plan` prints the same record.

use serde::Serialize;

use crate::error::Error;

/// One event (or message) that could not be handled.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The SQS message that carried it; `None` for a direct delivery.
    pub message_id: Option<String>,
    pub error: Error,
}

/// What an invocation did.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled<S> {
    /// Whether the events came in an SQS batch.
    pub batch: bool,
    /// The function's own counts.
    pub summary: S,
    /// Events that needed nothing done, with why.
    pub skipped: Vec<String>,
    /// Events that failed, in order.
    pub failed: Vec<Failure>,
}

/// The answer to Lambda.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Response<S> {
    /// `{"batchItemFailures": [{"itemIdentifier": …}]}`: these messages go back to the queue.
    Batch {
        #[serde(rename = "batchItemFailures")]
        batch_item_failures: Vec<BatchItemFailure>,
    },
    /// A direct delivery's summary.
    Direct(S),
}

/// One entry of `batchItemFailures`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

impl<S> Handled<S> {
    pub fn new(batch: bool, summary: S) -> Self {
        Handled {
            batch,
            summary,
            skipped: vec![],
            failed: vec![],
        }
    }

    /// The batch's failed message IDs (each once, first-failure order), or a direct
    /// delivery's first error, so Lambda's retries and on-failure destination take over.
    pub fn into_response(self) -> Result<Response<S>, Error> {
        if self.batch {
            let mut ids: Vec<String> = vec![];
            for id in self.failed.into_iter().filter_map(|f| f.message_id) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            return Ok(Response::Batch {
                batch_item_failures: ids
                    .into_iter()
                    .map(|item_identifier| BatchItemFailure { item_identifier })
                    .collect(),
            });
        }
        match self.failed.into_iter().next() {
            Some(failure) => Err(failure.error),
            None => Ok(Response::Direct(self.summary)),
        }
    }
}

/// The `errorType` a failed invocation reports: `jobrunner.Retryable` or `jobrunner.Permanent`.
pub fn error_type(error: &Error) -> &'static str {
    if error.is_retryable() {
        "jobrunner.Retryable"
    } else {
        "jobrunner.Permanent"
    }
}

/// Logs a failure the way every function does: retryable ones stay in their queue,
/// permanent ones reach its dead-letter queue.
pub fn log_failure(failure: &Failure) {
    let message_id = failure.message_id.as_deref();
    if failure.error.is_retryable() {
        tracing::warn!(message_id, error = %failure.error, "will retry: the event stays in its queue");
    } else {
        tracing::error!(message_id, error = %failure.error, "permanent failure: the event goes to the dead-letter queue after its retries");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(id: Option<&str>) -> Failure {
        Failure {
            message_id: id.map(Into::into),
            error: Error::MalformedEvent("x".into()),
        }
    }

    #[test]
    fn a_batch_reports_each_failed_message_once_in_order() {
        let mut handled = Handled::new(true, ());
        handled.failed = vec![failure(Some("b")), failure(Some("a")), failure(Some("b"))];
        let json = serde_json::to_value(handled.into_response().unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "a"}]})
        );
    }

    #[test]
    fn a_direct_delivery_fails_with_its_first_error_or_returns_the_summary() {
        let mut handled = Handled::new(false, 7);
        assert_eq!(handled.clone().into_response(), Ok(Response::Direct(7)));
        handled.failed = vec![failure(None)];
        assert_eq!(
            handled.into_response(),
            Err(Error::MalformedEvent("x".into()))
        );
    }
}
