//! HeadObject over the S3 adapter: an object version's size, ETag, version and time, or `None`
//! when it does not exist.
//!
//! Not found (404), and a version that is a delete marker (405), are `None`: the object is
//! gone. Access denied (403) is a permanent rejection (HeadObject needs `s3:GetObject`, and
//! `s3:GetObjectVersion` for a version); a 5xx or a timeout is retryable.

use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_smithy_runtime_api::client::result::SdkError;
use chrono::{DateTime, Utc};
use jobrunner_core::ports::{CallResult, ObjectHead};

use crate::s3::S3Objects;

/// HTTP status S3 answers HeadObject of a version that is a delete marker with.
const METHOD_NOT_ALLOWED: u16 = 405;

impl S3Objects {
    /// HeadObject of `key` (of `version_id` when given) in `bucket`.
    pub async fn head(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> CallResult<Option<ObjectHead>> {
        let answer = self
            .client()
            .head_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await;
        let output = match answer {
            Ok(output) => output,
            Err(SdkError::ServiceError(service))
                if matches!(service.err(), HeadObjectError::NotFound(_))
                    || [404, METHOD_NOT_ALLOWED].contains(&service.raw().status().as_u16()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(crate::error::from_sdk("HeadObject", e)),
        };
        if output.delete_marker() == Some(true) {
            return Ok(None);
        }
        Ok(Some(ObjectHead {
            size: output
                .content_length()
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or_default(),
            etag: output.e_tag().map(unquote),
            version_id: output
                .version_id()
                .filter(|v| !v.is_empty() && *v != "null")
                .map(str::to_owned),
            last_modified: output
                .last_modified()
                .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())),
        }))
    }
}

/// S3 events carry the ETag without the quotes HeadObject's header has.
fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_owned()
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::operation::head_object::{HeadObjectError, HeadObjectOutput};
    use aws_sdk_s3::types::error::NotFound;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn objects(rule: &aws_smithy_mocks::Rule) -> S3Objects {
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [rule], |c| c
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled()));
        S3Objects::new(client)
    }

    fn status(code: u16) -> Response {
        Response::new(StatusCode::try_from(code).unwrap(), SdkBody::empty())
    }

    #[tokio::test]
    async fn a_found_object_reports_size_etag_version_and_time() {
        let rule = mock!(aws_sdk_s3::Client::head_object)
            .match_requests(|r| {
                r.bucket() == Some("uploads")
                    && r.key() == Some("in/a b.jpg")
                    && r.version_id() == Some("v1")
            })
            .then_output(|| {
                HeadObjectOutput::builder()
                    .content_length(2048)
                    .e_tag("\"abc123\"")
                    .version_id("v1")
                    .last_modified(aws_smithy_types::DateTime::from_secs(1_795_000_000))
                    .build()
            });
        let head = objects(&rule)
            .head("uploads", "in/a b.jpg", Some("v1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(head.size, 2048);
        assert_eq!(head.etag.as_deref(), Some("abc123"));
        assert_eq!(head.version_id.as_deref(), Some("v1"));
        assert_eq!(head.last_modified.unwrap().timestamp(), 1_795_000_000);
    }

    #[tokio::test]
    async fn not_found_is_none() {
        let rule = mock!(aws_sdk_s3::Client::head_object).then_http_response(|| status(404));
        assert_eq!(objects(&rule).head("b", "k", None).await.unwrap(), None);
        let rule = mock!(aws_sdk_s3::Client::head_object)
            .then_error(|| HeadObjectError::NotFound(NotFound::builder().build()));
        assert_eq!(objects(&rule).head("b", "k", None).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_delete_marker_version_is_none() {
        let rule = mock!(aws_sdk_s3::Client::head_object).then_http_response(|| status(405));
        assert_eq!(
            objects(&rule).head("b", "k", Some("dm")).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn access_denied_is_permanent_and_a_5xx_retryable() {
        let rule = mock!(aws_sdk_s3::Client::head_object).then_http_response(|| status(403));
        let err = objects(&rule).head("b", "k", None).await.unwrap_err();
        assert!(!err.is_retryable(), "{err}");
        assert_eq!(err.operation(), "HeadObject");
        let rule = mock!(aws_sdk_s3::Client::head_object).then_http_response(|| status(503));
        let err = objects(&rule).head("b", "k", None).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
}
