//! The crate's one error type.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Everything that can go wrong in the worker, each with a one-line message naming the cause.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line flag or configuration value is unusable.
    #[error("{name}: {reason}")]
    InvalidArgument { name: &'static str, reason: String },
    /// The command to run per message does not exist or is not executable.
    #[error("command not found or not executable: {0}")]
    CommandNotFound(String),
    /// An SQS call failed after the SDK's own retries. `permanent` errors (an unknown queue,
    /// access denied) fail the same way again; the others (throttling, 5xx, timeouts) may pass.
    #[error("SQS {operation} failed: {message}")]
    Sqs {
        operation: &'static str,
        message: String,
        permanent: bool,
    },
    /// The ECS agent's task protection endpoint failed or refused the change.
    #[error("task protection: {0}")]
    Protection(String),
    /// Installing the SIGTERM/SIGINT handlers failed.
    #[error("cannot listen for signals: {0}")]
    Signal(#[source] std::io::Error),
}

/// Error codes SQS uses for throttling and transient server trouble.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "KmsThrottled",
];

impl Error {
    /// Classifies an SDK error: service errors other than throttling and 5xx are permanent;
    /// timeouts, dispatch and response failures are not.
    pub fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let (message, permanent) = match &err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().unwrap_or("Unknown");
                let text = e.message().unwrap_or("");
                let permanent = !RETRYABLE_CODES.contains(&code) && !code.contains("Server");
                (format!("{code}: {text}"), permanent)
            }
            SdkError::ConstructionFailure(_) => (describe(&err), true),
            _ => (describe(&err), false),
        };
        Error::Sqs {
            operation,
            message,
            permanent,
        }
    }

    /// Whether retrying the same call is pointless.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Sqs { permanent, .. } => *permanent,
            Error::Protection(_) => false,
            _ => true,
        }
    }
}

/// The error and its sources on one line.
fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_cause() {
        let e = Error::InvalidArgument {
            name: "--visibility-timeout",
            reason: "must be whole seconds, got 1.5s".into(),
        };
        assert_eq!(
            e.to_string(),
            "--visibility-timeout: must be whole seconds, got 1.5s"
        );
        assert!(e.is_permanent());
        assert!(!Error::Protection("503".into()).is_permanent());
    }
}
