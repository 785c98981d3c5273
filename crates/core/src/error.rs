//! The core crate's one error type, which tells retryable from permanent.
//!
//! Config, event and plan errors are permanent: the same input fails the same way again, so
//! callers send it to a dead-letter queue. A failed AWS call ([`CallError`]), a job at its cap
//! and a capacity shortage are retryable: the event goes back to its queue.

/// Why a config, an event, a plan or a handler's work was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid; `path` names the field, e.g. `jobs.thumbnails.cpu`.
    #[error("invalid config: {path}: {reason}")]
    Config { path: String, reason: String },
    /// The input is not an event jobrunner understands (or not JSON at all).
    #[error("unsupported event: {0}")]
    UnsupportedEvent(String),
    /// The input looks like a supported event but a field is missing or malformed.
    #[error("malformed event: {0}")]
    MalformedEvent(String),
    /// The event routes to a job, but the resulting request breaks an ECS limit.
    #[error("cannot plan launch of job '{job}': {reason}")]
    Plan { job: String, reason: String },
    /// An event another function handles (e.g. a task state change sent to the launcher).
    #[error("the {function} does not handle {what}")]
    WrongFunction {
        function: &'static str,
        what: &'static str,
    },
    /// An AWS call failed (after the SDK's own retries).
    #[error(transparent)]
    Call(#[from] CallError),
    /// The job is at its `max_running` cap; the event must wait.
    #[error("job '{job}' is at its cap: {running} of {max_running} tasks running")]
    AtCap {
        job: String,
        running: u32,
        max_running: u32,
    },
    /// ECS had no capacity on any of the job's capacity providers.
    #[error("no capacity to place a task of job '{job}': {reason}")]
    NoCapacity { job: String, reason: String },
    /// Every worker of a scaler invocation failed (the invocation fails, so Lambda's Errors
    /// metric and its alarm see it; a partial failure is logged and the invocation succeeds).
    #[error("every worker failed ({count}): {first}", count = .failed.len())]
    AllWorkersFailed { failed: Vec<String>, first: String },
    /// ECS answered with a failure other than capacity (e.g. an inactive task definition).
    #[error("ECS could not launch a task of job '{job}': {reason}")]
    LaunchFailed { job: String, reason: String },
}

impl Error {
    pub(crate) fn config(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Whether the same input may succeed later (back to its queue), as opposed to a
    /// permanent failure (to the dead-letter queue after the queue's retries).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Call(e) => e.is_retryable(),
            Error::AtCap { .. } | Error::NoCapacity { .. } | Error::AllWorkersFailed { .. } => true,
            Error::Config { .. }
            | Error::UnsupportedEvent(_)
            | Error::MalformedEvent(_)
            | Error::Plan { .. }
            | Error::WrongFunction { .. }
            | Error::LaunchFailed { .. } => false,
        }
    }
}

/// A call to AWS that failed after the SDK's own retries, classified for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// AWS throttled the call.
    #[error("{operation} throttled by AWS: {message}")]
    Throttled {
        operation: &'static str,
        message: String,
    },
    /// A timeout, a connection failure or a 5xx: the same call may well succeed later.
    #[error("{operation} failed transiently: {message}")]
    Transient {
        operation: &'static str,
        message: String,
    },
    /// AWS rejected the request; the same request fails the same way again.
    #[error("{operation} rejected: {message}")]
    Rejected {
        operation: &'static str,
        message: String,
    },
}

impl CallError {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, CallError::Rejected { .. })
    }

    /// The API operation that failed.
    pub fn operation(&self) -> &'static str {
        match self {
            CallError::Throttled { operation, .. }
            | CallError::Transient { operation, .. }
            | CallError::Rejected { operation, .. } => operation,
        }
    }
}
