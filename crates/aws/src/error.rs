//! The adapters' one error type, and how SDK errors map onto it.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What went wrong talking to AWS, classified for the caller's retry decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// AWS throttled the call after the SDK's own retries.
    #[error("{operation} throttled by AWS: {message}")]
    Throttled {
        operation: &'static str,
        message: String,
    },
    /// A timeout, a connection failure or a 5xx, after the SDK's own retries.
    #[error("{operation} failed transiently: {message}")]
    Transient {
        operation: &'static str,
        message: String,
    },
    /// AWS rejected the request; retrying the same request fails the same way.
    #[error("{operation} rejected: {message}")]
    Rejected {
        operation: &'static str,
        message: String,
    },
    /// ECS had no capacity on any of the job's capacity providers.
    #[error("no capacity to place the task: {reason}")]
    NoCapacity { reason: String },
    /// ECS answered with a failure other than capacity (e.g. an inactive task definition).
    #[error("ECS could not launch the task: {reason}")]
    LaunchFailed { reason: String },
    /// The job is at its `max_running` cap; the event must wait.
    #[error("job '{job}' is at its cap: {running} of {max_running} tasks running")]
    AtCap {
        job: String,
        running: u32,
        max_running: u32,
    },
}

impl Error {
    /// Whether the same request may succeed later (the event goes back to its queue), as
    /// opposed to a permanent failure (the event goes to the dead-letter queue).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Throttled { .. }
            | Error::Transient { .. }
            | Error::NoCapacity { .. }
            | Error::AtCap { .. } => true,
            Error::Rejected { .. } | Error::LaunchFailed { .. } => false,
        }
    }

    /// Classifies an SDK error: throttling codes, 5xx and transport failures are retryable;
    /// other service errors are permanent.
    pub fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let message = describe(&err);
        match &err {
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or_default();
                if THROTTLING_CODES.contains(&code) {
                    Error::Throttled { operation, message }
                } else if code.contains("Server")
                    || code == "ServiceUnavailable"
                    || code == "InternalFailure"
                    || code == "InternalError"
                {
                    Error::Transient { operation, message }
                } else {
                    Error::Rejected { operation, message }
                }
            }
            SdkError::ConstructionFailure(_) => Error::Rejected { operation, message },
            _ => Error::Transient { operation, message },
        }
    }
}

/// Error codes AWS services use for throttling (as the SDK's retry classifier knows them).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// One line: the service's code and message, or the transport error's chain.
fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(service) = err {
        let e = service.err();
        return format!(
            "{}: {}",
            e.code().unwrap_or("UnknownError"),
            e.message().unwrap_or("no message")
        );
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.replace('\n', " ")
}
