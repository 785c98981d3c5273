//! SQS: a queue's depth (GetQueueAttributes) and putting a waiting event back in line
//! (SendMessage with a delay).

use aws_sdk_sqs::types::QueueAttributeName;
use jobrunner_core::scaling::QueueDepth;

use crate::error::Error;

/// The queue attributes the scaler reads.
pub const DEPTH_ATTRIBUTES: [QueueAttributeName; 3] = [
    QueueAttributeName::ApproximateNumberOfMessages,
    QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    QueueAttributeName::ApproximateNumberOfMessagesDelayed,
];

/// SQS queues, read through one shared client (the queue is named per call by its URL).
#[derive(Debug, Clone)]
pub struct SqsQueues {
    client: aws_sdk_sqs::Client,
}

impl SqsQueues {
    pub fn new(client: aws_sdk_sqs::Client) -> Self {
        SqsQueues { client }
    }

    /// Builds the client from the shared SDK configuration ([`crate::client::load`]).
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig) -> Self {
        SqsQueues::new(aws_sdk_sqs::Client::new(sdk))
    }

    /// Visible, in-flight and delayed message counts (approximate, eventually consistent).
    pub async fn depth(&self, queue_url: &str) -> Result<QueueDepth, Error> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(queue_url)
            .set_attribute_names(Some(DEPTH_ATTRIBUTES.to_vec()))
            .send()
            .await
            .map_err(|e| crate::error::from_sdk("GetQueueAttributes", e))?;
        let attributes = output.attributes();
        let count = |name: &QueueAttributeName| -> Result<u64, Error> {
            match attributes.and_then(|a| a.get(name)) {
                None => Ok(0),
                Some(text) => text.parse().map_err(|_| Error::Rejected {
                    operation: "GetQueueAttributes",
                    message: format!("{} is not a count: '{text}'", name.as_str()),
                }),
            }
        };
        Ok(QueueDepth {
            visible: count(&DEPTH_ATTRIBUTES[0])?,
            in_flight: count(&DEPTH_ATTRIBUTES[1])?,
            delayed: count(&DEPTH_ATTRIBUTES[2])?,
        })
    }
}

impl SqsQueues {
    /// Sends `body` to `queue_url`, invisible for `delay_seconds`.
    pub async fn send(&self, queue_url: &str, body: &str, delay_seconds: u32) -> Result<(), Error> {
        self.client
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .delay_seconds(i32::try_from(delay_seconds).unwrap_or(900))
            .send()
            .await
            .map_err(|e| crate::error::from_sdk("SendMessage", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::operation::get_queue_attributes::{
        GetQueueAttributesError, GetQueueAttributesOutput,
    };
    use aws_sdk_sqs::types::error::QueueDoesNotExist;
    use aws_smithy_mocks::{mock, mock_client};

    use super::*;

    #[tokio::test]
    async fn sends_with_the_delay_and_names_throttling() {
        use aws_sdk_sqs::operation::send_message::SendMessageOutput;
        let sent = mock!(aws_sdk_sqs::Client::send_message)
            .match_requests(|r| {
                r.queue_url() == Some("https://q")
                    && r.message_body() == Some("{}")
                    && r.delay_seconds() == Some(10)
            })
            .then_output(|| SendMessageOutput::builder().message_id("m").build());
        let queues = SqsQueues::new(mock_client!(aws_sdk_sqs, [&sent]));
        queues.send("https://q", "{}", 10).await.unwrap();
        assert_eq!(sent.num_calls(), 1);
        let missing = mock!(aws_sdk_sqs::Client::send_message).then_error(|| {
            aws_sdk_sqs::operation::send_message::SendMessageError::QueueDoesNotExist(
                QueueDoesNotExist::builder().message("gone").build(),
            )
        });
        let queues = SqsQueues::new(mock_client!(aws_sdk_sqs, [&missing]));
        let err = queues.send("https://q", "{}", 10).await.unwrap_err();
        assert!(!err.is_retryable(), "{err}");
        assert!(err.to_string().contains("SendMessage"), "{err}");
    }

    #[tokio::test]
    async fn reads_the_three_counts() {
        let rule = mock!(aws_sdk_sqs::Client::get_queue_attributes)
            .match_requests(|r| {
                r.queue_url() == Some("https://q") && r.attribute_names().len() == 3
            })
            .then_output(|| {
                GetQueueAttributesOutput::builder()
                    .attributes(QueueAttributeName::ApproximateNumberOfMessages, "12")
                    .attributes(
                        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                        "3",
                    )
                    .attributes(QueueAttributeName::ApproximateNumberOfMessagesDelayed, "1")
                    .build()
            });
        let queues = SqsQueues::new(mock_client!(aws_sdk_sqs, [&rule]));
        assert_eq!(
            queues.depth("https://q").await.unwrap(),
            QueueDepth {
                visible: 12,
                in_flight: 3,
                delayed: 1
            }
        );
    }

    #[tokio::test]
    async fn a_missing_queue_is_rejected() {
        let rule = mock!(aws_sdk_sqs::Client::get_queue_attributes).then_error(|| {
            GetQueueAttributesError::QueueDoesNotExist(
                QueueDoesNotExist::builder()
                    .message("no such queue")
                    .build(),
            )
        });
        let queues = SqsQueues::new(mock_client!(aws_sdk_sqs, [&rule]));
        let err = queues.depth("https://q").await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Rejected {
                    operation: "GetQueueAttributes",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!err.is_retryable());
    }
}
