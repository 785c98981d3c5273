//! What every jobrunner Lambda function shares: loading the config at init (and telling
//! Lambda why it failed), the one function [`Error`] with its `Diagnostic`, and turning what
//! an invocation did ([`Handled`]) into the answer Lambda expects.
//!
//! The functions' decisions live in `jobrunner_core` (`launch::handle`, `alert::handle`,
//! `scaler`); each function crate is a thin `handle` plus `main` over these.

pub mod init;

use chrono::{DateTime, Utc};
use jobrunner_core::handled::{self, Handled};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;

/// One invocation as every function's `handle` takes it: the payload, the time it is handled
/// at, and Lambda's deadline when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub payload: Value,
    pub now: DateTime<Utc>,
    pub deadline: Option<DateTime<Utc>>,
    /// The invocation's X-Ray trace header (`Root=…;Parent=…;Sampled=…`), when Lambda gave one.
    pub xray_trace_id: Option<String>,
}

impl Invocation {
    /// `payload` handled at `now`, with no deadline (tests, tools).
    pub fn at(payload: Value, now: DateTime<Utc>) -> Self {
        Invocation {
            payload,
            now,
            deadline: None,
            xray_trace_id: None,
        }
    }

    /// `payload` handled now.
    pub fn now(payload: Value) -> Self {
        Invocation::at(payload, Utc::now())
    }
}

impl From<LambdaEvent<Value>> for Invocation {
    fn from(event: LambdaEvent<Value>) -> Self {
        let deadline = i64::try_from(event.context.deadline)
            .ok()
            .and_then(DateTime::from_timestamp_millis);
        Invocation {
            payload: event.payload,
            now: Utc::now(),
            deadline,
            xray_trace_id: event.context.xray_trace_id,
        }
    }
}

/// The functions' one error type: a core error, retryable or permanent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct Error(#[from] pub jobrunner_core::Error);

impl Error {
    /// Whether Lambda (or the queue) should try the same input again.
    pub fn is_retryable(&self) -> bool {
        self.0.is_retryable()
    }
}

impl From<jobrunner_core::ports::CallError> for Error {
    fn from(e: jobrunner_core::ports::CallError) -> Self {
        Error(e.into())
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: handled::error_type(&e.0).into(),
            error_message: e.to_string(),
        }
    }
}

/// The metric scope of an invocation: the system clock and its X-Ray trace, converted.
pub fn metric_scope(invocation: &Invocation) -> jobrunner_core::metrics::scope::Scope {
    let trace = invocation
        .xray_trace_id
        .as_deref()
        .and_then(jobrunner_core::trace::TraceParent::from_xray);
    jobrunner_core::metrics::scope::Scope::system(trace)
}

/// Logs each failure and turns what the invocation did into Lambda's answer: an SQS batch's
/// `batchItemFailures`, a direct delivery's summary, or its first error.
pub fn respond<S: Serialize>(handled: Handled<S>) -> Result<Value, Error> {
    for failure in &handled.failed {
        handled::log_failure(failure);
    }
    let response = handled.into_response()?;
    Ok(serde_json::to_value(response).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use jobrunner_core::handled::Failure;
    use jobrunner_core::ports::CallError;

    use super::*;

    #[test]
    fn errors_carry_their_retry_class_into_the_diagnostic() {
        let throttled = Error::from(CallError::Throttled {
            operation: "RunTask",
            message: "Rate exceeded".into(),
        });
        assert!(throttled.is_retryable());
        let diagnostic: lambda_runtime::Diagnostic = throttled.into();
        assert_eq!(diagnostic.error_type, "jobrunner.Retryable");
        let bad = Error(jobrunner_core::Error::MalformedEvent("x".into()));
        let diagnostic: lambda_runtime::Diagnostic = bad.into();
        assert_eq!(diagnostic.error_type, "jobrunner.Permanent");
        assert_eq!(diagnostic.error_message, "malformed event: x");
    }

    #[test]
    fn a_batch_answers_with_its_failed_messages() {
        let mut handled = Handled::new(true, ());
        handled.failed.push(Failure {
            message_id: Some("m1".into()),
            error: jobrunner_core::Error::MalformedEvent("x".into()),
        });
        assert_eq!(
            respond(handled).unwrap(),
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m1"}]})
        );
    }
}
