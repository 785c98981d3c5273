//! Publishing alerts to an SNS topic over the official `aws-sdk-sns` client.
//!
//! The adapter owns the client and the topic ARN. A rendered
//! [`jobrunner_core::alert::Publish`] goes out as one Publish call with
//! `MessageStructure=json` and String message attributes. Throttling (including KMS
//! throttling on encrypted topics), 5xx and transport errors are retryable; anything else
//! (a missing topic, a denied policy, an invalid message) is permanent.

use aws_sdk_sns::Client;
use aws_sdk_sns::operation::publish::PublishError;
use aws_sdk_sns::types::MessageAttributeValue;
use jobrunner_core::alert::Publish;

use crate::error::Error;

/// An SNS topic that receives alerts.
#[derive(Debug, Clone)]
pub struct SnsTopic {
    client: Client,
    topic_arn: String,
}

impl SnsTopic {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        SnsTopic {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    /// Publishes one alert; returns SNS's message ID.
    pub async fn publish(&self, message: &Publish) -> Result<String, Error> {
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&message.subject)
            .message(&message.message)
            .message_structure(Publish::MESSAGE_STRUCTURE);
        for (name, value) in &message.attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| Error::Rejected {
                    operation: "Publish",
                    message: format!("message attribute '{name}': {e}"),
                })?;
            request = request.message_attributes(name, attribute);
        }
        match request.send().await {
            Ok(output) => Ok(output.message_id().unwrap_or_default().to_owned()),
            Err(e) => {
                let kms_throttled = matches!(
                    e.as_service_error(),
                    Some(PublishError::KmsThrottlingException(_))
                );
                match crate::error::from_sdk("Publish", e) {
                    Error::Rejected { operation, message } if kms_throttled => {
                        Err(Error::Throttled { operation, message })
                    }
                    other => Err(other),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use aws_sdk_sns::operation::publish::PublishOutput;
    use aws_sdk_sns::types::error::{KmsThrottlingException, NotFoundException};
    use aws_smithy_mocks::{mock, mock_client};

    use super::*;

    fn message() -> Publish {
        Publish {
            subject: "[jobrunner] OOM thumbnails exit 137".into(),
            message: r#"{"default":"text","email":"text","sqs":"{}"}"#.into(),
            attributes: BTreeMap::from([
                ("class".to_string(), "oom".to_string()),
                ("job".to_string(), "thumbnails".to_string()),
            ]),
        }
    }

    #[tokio::test]
    async fn publishes_with_json_structure_and_attributes() {
        let rule = mock!(Client::publish)
            .match_requests(|r| {
                r.topic_arn() == Some("arn:aws:sns:us-east-1:123456789012:alerts")
                    && r.message_structure() == Some("json")
                    && r.subject() == Some("[jobrunner] OOM thumbnails exit 137")
                    && r.message_attributes()
                        .and_then(|a| a.get("class"))
                        .and_then(|v| v.string_value())
                        == Some("oom")
                    && r.message_attributes()
                        .and_then(|a| a.get("job"))
                        .map(|v| v.data_type())
                        == Some("String")
            })
            .then_output(|| PublishOutput::builder().message_id("m-1").build());
        let topic = SnsTopic::new(
            mock_client!(aws_sdk_sns, [&rule]),
            "arn:aws:sns:us-east-1:123456789012:alerts",
        );
        assert_eq!(topic.publish(&message()).await.unwrap(), "m-1");
    }

    #[tokio::test]
    async fn classifies_failures() {
        let missing = mock!(Client::publish).then_error(|| {
            PublishError::NotFoundException(
                NotFoundException::builder()
                    .message("Topic does not exist")
                    .build(),
            )
        });
        let kms = mock!(Client::publish).then_error(|| {
            PublishError::KmsThrottlingException(
                KmsThrottlingException::builder()
                    .message("slow down")
                    .build(),
            )
        });
        let topic = SnsTopic::new(
            mock_client!(aws_sdk_sns, [&missing, &kms]),
            "arn:aws:sns:us-east-1:123456789012:alerts",
        );
        let err = topic.publish(&message()).await.unwrap_err();
        assert!(!err.is_retryable(), "{err}");
        let err = topic.publish(&message()).await.unwrap_err();
        assert!(
            matches!(err, Error::Throttled { .. }) && err.is_retryable(),
            "{err}"
        );
    }
}
