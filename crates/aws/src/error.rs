//! How SDK errors map onto the core's [`CallError`] (retryable or permanent).
//!
//! Classification uses the SDK's own lists ([`THROTTLING_ERRORS`], [`TRANSIENT_ERRORS`], the
//! same the SDK's retry classifier uses) plus the HTTP status: a 5xx, a timeout, a dispatch or
//! response failure is transient; a construction failure or any other service error is a
//! rejection the same request would meet again.

use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub use jobrunner_core::ports::CallError as Error;

/// Classifies an SDK error of `operation`.
pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, Response>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = describe(&err);
    match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            let status = service.raw().status().as_u16();
            if THROTTLING_ERRORS.contains(&code) {
                Error::Throttled { operation, message }
            } else if TRANSIENT_ERRORS.contains(&code) || (500..600).contains(&status) {
                Error::Transient { operation, message }
            } else {
                Error::Rejected { operation, message }
            }
        }
        SdkError::ConstructionFailure(_) => Error::Rejected { operation, message },
        _ => Error::Transient { operation, message },
    }
}

/// One line: the service's code and message, or the transport error's chain.
fn describe<E>(err: &SdkError<E, Response>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
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

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::operation::list_tasks::ListTasksError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    fn service_error(code: &str, status: u16) -> Error {
        let meta = ErrorMetadata::builder().code(code).message("m").build();
        let err = ListTasksError::generic(meta);
        let raw = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        from_sdk("ListTasks", SdkError::service_error(err, raw))
    }

    #[test]
    fn throttling_transient_and_permanent_codes_are_told_apart() {
        assert!(matches!(
            service_error("ThrottlingException", 400),
            Error::Throttled { .. }
        ));
        assert!(matches!(
            service_error("RequestTimeout", 400),
            Error::Transient { .. }
        ));
        assert!(matches!(
            service_error("RequestTimeoutException", 408),
            Error::Transient { .. }
        ));
        assert!(matches!(
            service_error("SomethingNew", 503),
            Error::Transient { .. }
        ));
        assert!(matches!(
            service_error("ServerException", 500),
            Error::Transient { .. }
        ));
        let rejected = service_error("InvalidParameterException", 400);
        assert!(matches!(rejected, Error::Rejected { .. }));
        assert!(!rejected.is_retryable());
        assert_eq!(
            rejected.to_string(),
            "ListTasks rejected: InvalidParameterException: m"
        );
    }
}
