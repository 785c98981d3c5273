//! The queue port ([`Queue`]: receive, delete, change visibility) and its SQS adapter.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;

use crate::Error;

/// One received message, as a handler sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub id: String,
    /// The handle of this receipt; needed to delete the message or change its visibility.
    pub receipt_handle: String,
    pub body: String,
    /// How many times SQS has handed the message out, this time included.
    pub receive_count: u32,
    /// Message attributes by name: String and Number values as they are, Binary in base64.
    pub attributes: BTreeMap<String, String>,
}

/// The three queue operations the worker needs.
pub trait Queue: Send + Sync + 'static {
    /// Up to `max` messages (1–10), long-polling up to `wait`, each kept invisible for
    /// `visibility`.
    fn receive(
        &self,
        max: u32,
        wait: Duration,
        visibility: Duration,
    ) -> impl Future<Output = Result<Vec<Message>, Error>> + Send;

    /// Deletes a handled message.
    fn delete(&self, receipt_handle: &str) -> impl Future<Output = Result<(), Error>> + Send;

    /// Makes the message visible again `timeout` from now (0: at once).
    fn set_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// [`Queue`] over one SQS queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> SqsQueue {
        SqsQueue {
            client,
            url: url.into(),
        }
    }
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

impl Queue for SqsQueue {
    async fn receive(
        &self,
        max: u32,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Message>, Error> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(seconds(wait))
            .visibility_timeout(seconds(visibility))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| Error::from_sdk("ReceiveMessage", e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(from_sqs)
            .collect())
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), Error> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| Error::from_sdk("DeleteMessage", e))?;
        Ok(())
    }

    async fn set_visibility(&self, receipt_handle: &str, timeout: Duration) -> Result<(), Error> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds(timeout))
            .send()
            .await
            .map_err(|e| Error::from_sdk("ChangeMessageVisibility", e))?;
        Ok(())
    }
}

fn from_sqs(m: aws_sdk_sqs::types::Message) -> Message {
    let receive_count = m
        .attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let attributes = m
        .message_attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| {
            let text = match (value.string_value, value.binary_value) {
                (Some(s), _) => s,
                (None, Some(b)) => aws_smithy_types::base64::encode(b.as_ref()),
                (None, None) => String::new(),
            };
            (name, text)
        })
        .collect();
    Message {
        id: m.message_id.unwrap_or_default(),
        receipt_handle: m.receipt_handle.unwrap_or_default(),
        body: m.body.unwrap_or_default(),
        receive_count,
        attributes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::primitives::Blob;
    use aws_sdk_sqs::types::MessageAttributeValue;

    #[test]
    fn converts_attributes_and_receive_count() {
        let m = aws_sdk_sqs::types::Message::builder()
            .message_id("m-1")
            .receipt_handle("r-1")
            .body("hello")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "3")
            .message_attributes(
                "tenant",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("acme")
                    .build()
                    .unwrap(),
            )
            .message_attributes(
                "blob",
                MessageAttributeValue::builder()
                    .data_type("Binary")
                    .binary_value(Blob::new(b"\x00\x01hi".to_vec()))
                    .build()
                    .unwrap(),
            )
            .build();
        let m = from_sqs(m);
        assert_eq!(m.id, "m-1");
        assert_eq!(m.receipt_handle, "r-1");
        assert_eq!(m.body, "hello");
        assert_eq!(m.receive_count, 3);
        assert_eq!(m.attributes["tenant"], "acme");
        assert_eq!(m.attributes["blob"], "AAFoaQ==");
    }
}
