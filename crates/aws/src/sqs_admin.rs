//! SQS for operators: feeding the launcher's queue in batches (`jobrunner backfill`, `submit`),
//! and dead-letter queues (`jobrunner dlq`): find a queue's DLQ from its redrive policy, look at
//! its messages without consuming them, and move them back with `StartMessageMoveTask`.

use std::collections::HashMap;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use chrono::{DateTime, Utc};

use crate::error::{Error, from_sdk};

/// Most entries in one SendMessageBatch (an SQS limit).
pub const MAX_BATCH: usize = 10;

/// Seconds a peeked message stays hidden while the peek goes on (released at once after).
const PEEK_VISIBILITY_SECONDS: i32 = 30;

/// SQS calls an operator's command makes, over one client.
#[derive(Debug, Clone)]
pub struct SqsAdmin {
    client: aws_sdk_sqs::Client,
}

/// One entry a SendMessageBatch did not take, with SQS's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    /// The entry's index in the batch.
    pub index: usize,
    pub code: String,
    pub message: String,
    /// SQS's verdict: the sender's fault (resending the same entry fails again).
    pub sender_fault: bool,
}

/// A queue as SQS names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRef {
    pub url: String,
    pub arn: String,
}

/// A message looked at (and released) in a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeekedMessage {
    pub message_id: String,
    pub body: String,
    /// When it was first sent (to the source queue, for a message moved by a redrive policy).
    pub sent_at: Option<DateTime<Utc>>,
    /// Receives so far, this look included.
    pub receive_count: u32,
    /// Its string message attributes.
    pub attributes: HashMap<String, String>,
}

/// Message counts of a queue (approximate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

/// A message move task as SQS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveTask {
    pub handle: Option<String>,
    pub status: String,
    pub moved: i64,
    pub to_move: Option<i64>,
    pub failure_reason: Option<String>,
}

impl SqsAdmin {
    pub fn new(client: aws_sdk_sqs::Client) -> Self {
        SqsAdmin { client }
    }

    pub fn from_sdk_config(sdk: &aws_config::SdkConfig) -> Self {
        SqsAdmin::new(aws_sdk_sqs::Client::new(sdk))
    }

    /// Sends up to [`MAX_BATCH`] bodies in one SendMessageBatch; returns the entries SQS did
    /// not take (a call that fails as a whole is an error).
    pub async fn send_batch(
        &self,
        queue_url: &str,
        bodies: &[String],
    ) -> Result<Vec<BatchFailure>, Error> {
        if bodies.is_empty() {
            return Ok(vec![]);
        }
        let entries = bodies
            .iter()
            .take(MAX_BATCH)
            .enumerate()
            .map(|(i, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .map_err(|e| Error::Rejected {
                        operation: "SendMessageBatch",
                        message: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let output = self
            .client
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| from_sdk("SendMessageBatch", e))?;
        Ok(output
            .failed()
            .iter()
            .map(|f| BatchFailure {
                index: f.id().parse().unwrap_or(usize::MAX),
                code: f.code().to_owned(),
                message: f.message().unwrap_or_default().to_owned(),
                sender_fault: f.sender_fault(),
            })
            .collect())
    }

    /// The queue at `url`, with its ARN.
    pub async fn queue(&self, url: &str) -> Result<QueueRef, Error> {
        let attributes = self
            .attributes(url, &[QueueAttributeName::QueueArn])
            .await?;
        let arn = attributes
            .get(&QueueAttributeName::QueueArn)
            .cloned()
            .ok_or_else(|| Error::Rejected {
                operation: "GetQueueAttributes",
                message: format!("{url}: no QueueArn in the answer"),
            })?;
        Ok(QueueRef {
            url: url.into(),
            arn,
        })
    }

    /// The dead-letter queue of the queue at `source_url`, from its redrive policy; `None`
    /// when it has none.
    pub async fn dead_letter_queue(&self, source_url: &str) -> Result<Option<QueueRef>, Error> {
        let attributes = self
            .attributes(source_url, &[QueueAttributeName::RedrivePolicy])
            .await?;
        let Some(policy) = attributes.get(&QueueAttributeName::RedrivePolicy) else {
            return Ok(None);
        };
        let arn = serde_json::from_str::<serde_json::Value>(policy)
            .ok()
            .and_then(|p| p.get("deadLetterTargetArn")?.as_str().map(str::to_owned))
            .ok_or_else(|| Error::Rejected {
                operation: "GetQueueAttributes",
                message: format!(
                    "{source_url}: redrive policy without deadLetterTargetArn: {policy}"
                ),
            })?;
        let url = self.url_of(&arn).await?;
        Ok(Some(QueueRef { url, arn }))
    }

    /// The URL of the queue with ARN `arn` (`arn:aws:sqs:region:account:name`).
    pub async fn url_of(&self, arn: &str) -> Result<String, Error> {
        let parts: Vec<&str> = arn.split(':').collect();
        let [_, _, "sqs", _, account, name] = parts.as_slice() else {
            return Err(Error::Rejected {
                operation: "GetQueueUrl",
                message: format!("'{arn}' is not an SQS queue ARN"),
            });
        };
        let output = self
            .client
            .get_queue_url()
            .queue_name(*name)
            .queue_owner_aws_account_id(*account)
            .send()
            .await
            .map_err(|e| from_sdk("GetQueueUrl", e))?;
        output
            .queue_url()
            .map(str::to_owned)
            .ok_or(Error::Rejected {
                operation: "GetQueueUrl",
                message: format!("{arn}: no URL in the answer"),
            })
    }

    /// Visible, in-flight and delayed counts.
    pub async fn counts(&self, url: &str) -> Result<Counts, Error> {
        let names = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ];
        let attributes = self.attributes(url, &names).await?;
        let count = |name: &QueueAttributeName| {
            attributes
                .get(name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(Counts {
            visible: count(&names[0]),
            in_flight: count(&names[1]),
            delayed: count(&names[2]),
        })
    }

    /// Looks at up to `max` messages without consuming them: each is received with a short
    /// visibility timeout (so one look sees it once), then all are made visible again at once.
    /// Each look counts as a receive (`ApproximateReceiveCount`).
    pub async fn peek(&self, url: &str, max: usize) -> Result<Vec<PeekedMessage>, Error> {
        let mut seen = Vec::new();
        let mut handles = Vec::new();
        let result = self.receive_all(url, max, &mut seen, &mut handles).await;
        let released = self.release(url, &handles).await;
        result?;
        released?;
        Ok(seen)
    }

    async fn receive_all(
        &self,
        url: &str,
        max: usize,
        seen: &mut Vec<PeekedMessage>,
        handles: &mut Vec<String>,
    ) -> Result<(), Error> {
        while seen.len() < max {
            let want = (max - seen.len()).min(MAX_BATCH) as i32;
            let output = self
                .client
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(want)
                .visibility_timeout(PEEK_VISIBILITY_SECONDS)
                .wait_time_seconds(0)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| from_sdk("ReceiveMessage", e))?;
            let messages = output.messages();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                if let Some(handle) = m.receipt_handle() {
                    handles.push(handle.to_owned());
                }
                let system = m.attributes();
                let system = |name: MessageSystemAttributeName| {
                    system.and_then(|a| a.get(&name)).map(String::as_str)
                };
                seen.push(PeekedMessage {
                    message_id: m.message_id().unwrap_or_default().to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    sent_at: system(MessageSystemAttributeName::SentTimestamp)
                        .and_then(|ms| ms.parse::<i64>().ok())
                        .and_then(DateTime::from_timestamp_millis),
                    receive_count: system(MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0),
                    attributes: m
                        .message_attributes()
                        .map(|a| {
                            a.iter()
                                .filter_map(|(k, v)| {
                                    Some((k.clone(), v.string_value()?.to_owned()))
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            }
        }
        Ok(())
    }

    /// Makes received messages visible again (visibility timeout 0).
    async fn release(&self, url: &str, handles: &[String]) -> Result<(), Error> {
        for chunk in handles.chunks(MAX_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, handle)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .build()
                        .ok()
                })
                .collect();
            self.client
                .change_message_visibility_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| from_sdk("ChangeMessageVisibilityBatch", e))?;
        }
        Ok(())
    }

    /// Starts moving every message of the dead-letter queue `source_arn` to `destination_arn`
    /// (named explicitly: messages a Lambda destination put there have no source queue of
    /// their own). Returns the task handle.
    pub async fn start_move(
        &self,
        source_arn: &str,
        destination_arn: &str,
        max_per_second: Option<i32>,
    ) -> Result<String, Error> {
        let output = self
            .client
            .start_message_move_task()
            .source_arn(source_arn)
            .destination_arn(destination_arn)
            .set_max_number_of_messages_per_second(max_per_second)
            .send()
            .await
            .map_err(|e| from_sdk("StartMessageMoveTask", e))?;
        Ok(output.task_handle().unwrap_or_default().to_owned())
    }

    /// The most recent message move task of the dead-letter queue `source_arn`.
    pub async fn latest_move(&self, source_arn: &str) -> Result<Option<MoveTask>, Error> {
        let output = self
            .client
            .list_message_move_tasks()
            .source_arn(source_arn)
            .max_results(1)
            .send()
            .await
            .map_err(|e| from_sdk("ListMessageMoveTasks", e))?;
        Ok(output.results().first().map(|t| MoveTask {
            handle: t.task_handle().map(str::to_owned),
            status: t.status().unwrap_or("UNKNOWN").to_owned(),
            moved: t.approximate_number_of_messages_moved(),
            to_move: t.approximate_number_of_messages_to_move(),
            failure_reason: t.failure_reason().map(str::to_owned),
        }))
    }

    async fn attributes(
        &self,
        url: &str,
        names: &[QueueAttributeName],
    ) -> Result<HashMap<QueueAttributeName, String>, Error> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| from_sdk("GetQueueAttributes", e))?;
        Ok(output.attributes().cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::Client;
    use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesOutput;
    use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlOutput;
    use aws_sdk_sqs::operation::list_message_move_tasks::ListMessageMoveTasksOutput;
    use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
    use aws_sdk_sqs::operation::start_message_move_task::StartMessageMoveTaskOutput;
    use aws_sdk_sqs::types::{BatchResultErrorEntry, ListMessageMoveTasksResultEntry};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    const DLQ_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:launcher-dlq";
    const SOURCE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:launcher";

    #[tokio::test]
    async fn a_batch_sends_ten_and_reports_the_entries_refused() {
        let send = mock!(Client::send_message_batch)
            .match_requests(|r| r.entries().len() == MAX_BATCH && r.entries()[3].id() == "3")
            .then_output(|| {
                SendMessageBatchOutput::builder()
                    .failed(
                        BatchResultErrorEntry::builder()
                            .id("3")
                            .code("InternalError")
                            .sender_fault(false)
                            .build()
                            .unwrap(),
                    )
                    .set_successful(Some(vec![]))
                    .build()
                    .unwrap()
            });
        let admin = SqsAdmin::new(mock_client!(aws_sdk_sqs, [&send]));
        let bodies: Vec<String> = (0..12).map(|i| format!("{{\"n\":{i}}}")).collect();
        let failed = admin.send_batch("https://q", &bodies).await.unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!((failed[0].index, failed[0].sender_fault), (3, false));
        assert_eq!(send.num_calls(), 1, "one call takes at most ten entries");
    }

    #[tokio::test]
    async fn the_dead_letter_queue_comes_from_the_redrive_policy() {
        let attributes = mock!(Client::get_queue_attributes).then_output(|| {
            GetQueueAttributesOutput::builder()
                .attributes(
                    QueueAttributeName::RedrivePolicy,
                    format!("{{\"deadLetterTargetArn\":\"{DLQ_ARN}\",\"maxReceiveCount\":5}}"),
                )
                .build()
        });
        let url = mock!(Client::get_queue_url)
            .match_requests(|r| {
                r.queue_name() == Some("launcher-dlq")
                    && r.queue_owner_aws_account_id() == Some("123456789012")
            })
            .then_output(|| {
                GetQueueUrlOutput::builder()
                    .queue_url("https://sqs/123456789012/launcher-dlq")
                    .build()
            });
        let admin = SqsAdmin::new(mock_client!(
            aws_sdk_sqs,
            RuleMode::Sequential,
            [&attributes, &url]
        ));
        let dlq = admin
            .dead_letter_queue("https://sqs/launcher")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(dlq.arn, DLQ_ARN);
        assert_eq!(dlq.url, "https://sqs/123456789012/launcher-dlq");
    }

    #[tokio::test]
    async fn a_move_names_its_destination_and_its_progress_is_read_back() {
        // moto does not implement StartMessageMoveTask: the call is checked here.
        let start = mock!(Client::start_message_move_task)
            .match_requests(|r| {
                r.source_arn() == Some(DLQ_ARN)
                    && r.destination_arn() == Some(SOURCE_ARN)
                    && r.max_number_of_messages_per_second() == Some(50)
            })
            .then_output(|| {
                StartMessageMoveTaskOutput::builder()
                    .task_handle("h1")
                    .build()
            });
        let list = mock!(Client::list_message_move_tasks)
            .match_requests(|r| r.source_arn() == Some(DLQ_ARN))
            .then_output(|| {
                ListMessageMoveTasksOutput::builder()
                    .results(
                        ListMessageMoveTasksResultEntry::builder()
                            .task_handle("h1")
                            .status("COMPLETED")
                            .approximate_number_of_messages_moved(3)
                            .approximate_number_of_messages_to_move(3)
                            .build(),
                    )
                    .build()
            });
        let admin = SqsAdmin::new(mock_client!(
            aws_sdk_sqs,
            RuleMode::Sequential,
            [&start, &list]
        ));
        assert_eq!(
            admin
                .start_move(DLQ_ARN, SOURCE_ARN, Some(50))
                .await
                .unwrap(),
            "h1"
        );
        let task = admin.latest_move(DLQ_ARN).await.unwrap().unwrap();
        assert_eq!((task.status.as_str(), task.moved), ("COMPLETED", 3));
    }
}
