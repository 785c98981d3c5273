//! The core crate's one error type. Everything the core rejects is permanent: the same input
//! fails the same way again, so callers send it to a dead-letter queue rather than retry.

/// Why the core rejected a config, an event or a plan.
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
}

impl Error {
    pub(crate) fn config(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Core errors never go away by retrying the same input.
    pub fn is_retryable(&self) -> bool {
        false
    }
}
