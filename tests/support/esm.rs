//! A model of Lambda's SQS event source mapping, for draining a moto queue through a handler
//! the way Lambda would.
//!
//! Several pollers (Lambda runs at least 2 concurrent batches; `maximum_concurrency` caps them)
//! each loop: ReceiveMessage (up to `batch_size`, long polling, the queue's visibility timeout
//! or ours), build the SQS event Lambda would pass (`{"Records":[{"messageId",
//! "receiptHandle","body","attributes",…,"eventSource":"aws:sqs",…}]}`), call the handler,
//! then delete what succeeded: every message when the response has no `batchItemFailures`,
//! all but the listed ones otherwise, none when the handler fails or names a message that is
//! not in the batch. Failed messages reappear after the visibility timeout; the queue's
//! redrive policy (moto applies it when receiving) moves them to the dead-letter queue after
//! `maxReceiveCount` receives.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use serde_json::{Value, json};

use crate::{Account, REGION};

/// How the mapping polls.
#[derive(Debug, Clone)]
pub struct EsmConfig {
    /// Concurrent batches (Lambda's `ScalingConfig.MaximumConcurrency`, 2 at least).
    pub pollers: usize,
    /// `BatchSize` (1–10 for one ReceiveMessage).
    pub batch_size: i32,
    /// Visibility timeout for received messages, seconds.
    pub visibility_timeout: i32,
    /// Long polling, seconds.
    pub wait_time_seconds: i32,
}

impl Default for EsmConfig {
    fn default() -> Self {
        EsmConfig {
            pollers: 2,
            batch_size: 10,
            visibility_timeout: 5,
            wait_time_seconds: 1,
        }
    }
}

/// What the mapping did.
#[derive(Debug, Default)]
pub struct EsmStats {
    pub receives: AtomicU64,
    pub messages_received: AtomicU64,
    pub invocations: AtomicU64,
    pub failed_invocations: AtomicU64,
    pub batch_item_failures: AtomicU64,
    pub deleted: AtomicU64,
    /// Time spent (milliseconds, all pollers) receiving, in the handler, and deleting.
    pub receive_ms: AtomicU64,
    pub handler_ms: AtomicU64,
    pub delete_ms: AtomicU64,
}

impl EsmStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A queue with its dead-letter queue, in one account.
#[derive(Debug, Clone)]
pub struct QueueWithDlq {
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
    pub dlq_arn: String,
}

impl QueueWithDlq {
    /// Creates `name` and `name-dlq`, with `maxReceiveCount` and a visibility timeout (seconds).
    pub async fn create(
        account: &Account,
        name: &str,
        max_receive_count: u32,
        visibility_timeout: i32,
    ) -> QueueWithDlq {
        let sqs = account.sqs();
        let dlq_url = sqs
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .expect("create DLQ")
            .queue_url
            .unwrap();
        let dlq_arn = queue_arn(&sqs, &dlq_url).await;
        let policy = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
            .to_string();
        let url = sqs
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::RedrivePolicy, policy)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout.to_string(),
            )
            .send()
            .await
            .expect("create queue")
            .queue_url
            .unwrap();
        let arn = queue_arn(&sqs, &url).await;
        QueueWithDlq {
            url,
            arn,
            dlq_url,
            dlq_arn,
        }
    }

    /// Sends bodies in batches of 10; returns the message ids in order.
    pub async fn send_all(&self, sqs: &aws_sdk_sqs::Client, bodies: &[String]) -> Vec<String> {
        let mut ids = Vec::with_capacity(bodies.len());
        for chunk in bodies.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .unwrap()
                })
                .collect();
            let out = sqs
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .expect("send batch");
            assert!(out.failed.is_empty(), "send failures: {:?}", out.failed);
            let mut ok = out.successful;
            ok.sort_by_key(|e| e.id.parse::<usize>().unwrap_or(0));
            ids.extend(ok.into_iter().map(|e| e.message_id));
        }
        ids
    }

    /// Visible + in flight + delayed messages of a queue (exact on moto).
    pub async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .unwrap_or_default();
        attrs.values().filter_map(|v| v.parse::<u64>().ok()).sum()
    }

    /// Every message in the dead-letter queue (bodies), read and left in place.
    pub async fn dlq_bodies(&self, sqs: &aws_sdk_sqs::Client) -> Vec<String> {
        let mut bodies = Vec::new();
        let mut seen = HashSet::new();
        loop {
            let out = sqs
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .send()
                .await
                .expect("receive from DLQ");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return bodies;
            }
            for message in messages {
                if seen.insert(message.message_id.clone().unwrap_or_default()) {
                    bodies.push(message.body.unwrap_or_default());
                }
            }
        }
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue ARN")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("QueueArn")
}

/// The mapping: `sqs` polls `queue`; `handler(poller, event)` is the function (one Lambda
/// execution environment per poller, hence the poller's number).
pub struct EventSourceMapping {
    pub sqs: aws_sdk_sqs::Client,
    pub queue: QueueWithDlq,
    pub config: EsmConfig,
    pub stats: Arc<EsmStats>,
    stop: Arc<AtomicBool>,
}

impl EventSourceMapping {
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        queue: QueueWithDlq,
        config: EsmConfig,
    ) -> EventSourceMapping {
        EventSourceMapping {
            sqs,
            queue,
            config,
            stats: Arc::default(),
            stop: Arc::default(),
        }
    }

    /// A handle that stops the pollers after their current batch.
    pub fn stopper(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Runs the pollers until the stopper is set; returns when all have stopped.
    pub async fn run<F, Fut>(&self, handler: F)
    where
        F: Fn(usize, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, String>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let mut pollers = Vec::new();
        for poller in 0..self.config.pollers {
            let (sqs, queue, config, stats, stop, handler) = (
                self.sqs.clone(),
                self.queue.clone(),
                self.config.clone(),
                self.stats.clone(),
                self.stop.clone(),
                handler.clone(),
            );
            pollers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    poll_once(poller, &sqs, &queue, &config, &stats, handler.as_ref()).await;
                }
            }));
        }
        for poller in pollers {
            poller.await.expect("poller panicked");
        }
    }
}

async fn poll_once<F, Fut>(
    poller: usize,
    sqs: &aws_sdk_sqs::Client,
    queue: &QueueWithDlq,
    config: &EsmConfig,
    stats: &EsmStats,
    handler: &F,
) where
    F: Fn(usize, Value) -> Fut,
    Fut: Future<Output = Result<Value, String>>,
{
    stats.receives.fetch_add(1, Ordering::Relaxed);
    let clock = std::time::Instant::now();
    let received = sqs
        .receive_message()
        .queue_url(&queue.url)
        .max_number_of_messages(config.batch_size)
        .visibility_timeout(config.visibility_timeout)
        .wait_time_seconds(config.wait_time_seconds)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await;
    stats
        .receive_ms
        .fetch_add(clock.elapsed().as_millis() as u64, Ordering::Relaxed);
    let messages = match received {
        Ok(out) => out.messages.unwrap_or_default(),
        Err(e) => {
            eprintln!("esm: ReceiveMessage failed: {e:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
            return;
        }
    };
    if messages.is_empty() {
        return;
    }
    stats
        .messages_received
        .fetch_add(messages.len() as u64, Ordering::Relaxed);
    let event = sqs_event(&messages, &queue.arn);

    stats.invocations.fetch_add(1, Ordering::Relaxed);
    let clock = std::time::Instant::now();
    let result = handler(poller, event).await;
    stats
        .handler_ms
        .fetch_add(clock.elapsed().as_millis() as u64, Ordering::Relaxed);
    let failed: Option<HashSet<String>> = match result {
        Ok(response) => batch_item_failures(&response, &messages),
        Err(e) => {
            eprintln!("esm: invocation failed: {e}");
            None
        }
    };
    let Some(failed) = failed else {
        // The whole batch failed: every message reappears after the visibility timeout.
        stats.failed_invocations.fetch_add(1, Ordering::Relaxed);
        stats
            .batch_item_failures
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        return;
    };
    stats
        .batch_item_failures
        .fetch_add(failed.len() as u64, Ordering::Relaxed);
    let entries: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| !failed.contains(m.message_id.as_deref().unwrap_or_default()))
        .map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                .build()
                .unwrap()
        })
        .collect();
    if entries.is_empty() {
        return;
    }
    let clock = std::time::Instant::now();
    let deleted = sqs
        .delete_message_batch()
        .queue_url(&queue.url)
        .set_entries(Some(entries))
        .send()
        .await;
    stats
        .delete_ms
        .fetch_add(clock.elapsed().as_millis() as u64, Ordering::Relaxed);
    match deleted {
        Ok(out) => {
            stats
                .deleted
                .fetch_add(out.successful.len() as u64, Ordering::Relaxed);
            for failure in out.failed {
                eprintln!("esm: delete failed: {failure:?}");
            }
        }
        Err(e) => eprintln!("esm: DeleteMessageBatch failed: {e:?}"),
    }
}

/// The ids a handler's response lists as failed; `None` means the whole batch failed (an
/// identifier that is empty or not in the batch makes Lambda fail the batch).
fn batch_item_failures(
    response: &Value,
    messages: &[aws_sdk_sqs::types::Message],
) -> Option<HashSet<String>> {
    let ids: HashSet<&str> = messages
        .iter()
        .filter_map(|m| m.message_id.as_deref())
        .collect();
    let Some(failures) = response.get("batchItemFailures") else {
        return Some(HashSet::new());
    };
    let mut failed = HashSet::new();
    for failure in failures.as_array()? {
        let id = failure
            .get("itemIdentifier")
            .and_then(Value::as_str)
            .filter(|id| ids.contains(id))?;
        failed.insert(id.to_string());
    }
    Some(failed)
}

/// The event Lambda passes for a batch of SQS messages.
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message], queue_arn: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, Value> = m
                .attributes
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_string(), Value::String(v.clone())))
                .collect();
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            })
        })
        .collect();
    json!({ "Records": records })
}
