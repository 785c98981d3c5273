//! The reads behind `jobrunner status`: a capped job's slot record, the recent failed runs,
//! a queue's depth and its dead-letter queue (from its `RedrivePolicy`), a worker service's
//! counts. Reads only; each call stands alone so that the caller can show one failed read as
//! an error beside the others.

use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, Utc};
use jobrunner_core::ledger::Slots;
use jobrunner_core::ledger::keys;
use jobrunner_core::run::{Run, RunState};
use jobrunner_core::scaling::{QueueDepth, ServiceCounts};

use crate::ecs_service::EcsServices;
use crate::error::Error;
use crate::ledger_reader::{LedgerReader, RunFilter};
use crate::sqs_queue::DEPTH_ATTRIBUTES;
use crate::state_store::StateStore;

/// A queue's depth and, when it has a redrive policy, its dead-letter queue's ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStatus {
    pub depth: QueueDepth,
    pub dead_letter_arn: Option<String>,
}

/// The SDK clients `jobrunner status` reads through.
#[derive(Debug, Clone)]
pub struct StatusReader {
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    ecs: EcsServices,
}

impl StatusReader {
    pub fn new(
        dynamodb: aws_sdk_dynamodb::Client,
        sqs: aws_sdk_sqs::Client,
        ecs: aws_sdk_ecs::Client,
    ) -> Self {
        StatusReader {
            dynamodb,
            sqs,
            ecs: EcsServices::new(ecs),
        }
    }

    pub fn from_sdk_config(sdk: &aws_config::SdkConfig) -> Self {
        StatusReader::new(
            aws_sdk_dynamodb::Client::new(sdk),
            aws_sdk_sqs::Client::new(sdk),
            aws_sdk_ecs::Client::new(sdk),
        )
    }

    /// The `slots/<job>` record in `table`, or `None` when the job has none yet.
    pub async fn slots(&self, table: &str, job: &str) -> Result<Option<Slots>, Error> {
        let key = keys::slots_key(job);
        let store = StateStore::new(self.dynamodb.clone(), table);
        let Some(record) = store.get(&key).await? else {
            return Ok(None);
        };
        serde_json::from_str(&record.data)
            .map(Some)
            .map_err(|e| Error::Rejected {
                operation: "GetItem",
                message: format!("ledger item '{key}' cannot be read: {e}"),
            })
    }

    /// The newest runs queued since `since` that ended `failed` or `timed_out`, newest first
    /// (by their last update), at most `limit`.
    pub async fn failures(
        &self,
        table: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Run>, Error> {
        let reader = LedgerReader::new(self.dynamodb.clone(), table);
        let mut runs = Vec::new();
        for state in [RunState::Failed, RunState::TimedOut] {
            let filter = RunFilter {
                job: None,
                state: Some(state),
            };
            runs.extend(reader.list(since, until, &filter, limit).await?);
        }
        runs.sort_by(|a, b| (b.updated_at, &b.run_id).cmp(&(a.updated_at, &a.run_id)));
        runs.truncate(limit);
        Ok(runs)
    }

    /// The queue's depth and its dead-letter queue (from `RedrivePolicy`, when set).
    pub async fn queue(&self, queue_url: &str) -> Result<QueueStatus, Error> {
        let mut names = DEPTH_ATTRIBUTES.to_vec();
        names.push(QueueAttributeName::RedrivePolicy);
        let output = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .set_attribute_names(Some(names))
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
        let dead_letter_arn = attributes
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
            .map(|text| dead_letter_target(text))
            .transpose()?;
        Ok(QueueStatus {
            depth: QueueDepth {
                visible: count(&DEPTH_ATTRIBUTES[0])?,
                in_flight: count(&DEPTH_ATTRIBUTES[1])?,
                delayed: count(&DEPTH_ATTRIBUTES[2])?,
            },
            dead_letter_arn,
        })
    }

    /// The URL of the queue `arn` (GetQueueUrl with its name and owner account).
    pub async fn queue_url(&self, arn: &str) -> Result<String, Error> {
        let (account, name) = queue_arn_parts(arn)?;
        let output = self
            .sqs
            .get_queue_url()
            .queue_name(name)
            .queue_owner_aws_account_id(account)
            .send()
            .await
            .map_err(|e| crate::error::from_sdk("GetQueueUrl", e))?;
        output
            .queue_url()
            .map(str::to_string)
            .ok_or_else(|| Error::Rejected {
                operation: "GetQueueUrl",
                message: format!("no URL returned for {arn}"),
            })
    }

    /// A worker service's desired, running and pending counts.
    pub async fn service(&self, cluster: &str, service: &str) -> Result<ServiceCounts, Error> {
        self.ecs.counts(cluster, service).await
    }
}

/// `deadLetterTargetArn` of a `RedrivePolicy` attribute.
fn dead_letter_target(policy: &str) -> Result<String, Error> {
    let unreadable = |why: &str| Error::Rejected {
        operation: "GetQueueAttributes",
        message: format!("RedrivePolicy {why}: '{policy}'"),
    };
    let value: serde_json::Value =
        serde_json::from_str(policy).map_err(|_| unreadable("is not JSON"))?;
    value
        .get("deadLetterTargetArn")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| unreadable("names no deadLetterTargetArn"))
}

/// `(account, name)` of `arn:<partition>:sqs:<region>:<account>:<name>`.
fn queue_arn_parts(arn: &str) -> Result<(&str, &str), Error> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "sqs", _, account, name] if !account.is_empty() && !name.is_empty() => {
            Ok((account, name))
        }
        _ => Err(Error::Rejected {
            operation: "GetQueueUrl",
            message: format!("'{arn}' is not an SQS queue ARN"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesOutput;
    use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    fn reader(sqs: aws_sdk_sqs::Client) -> StatusReader {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        let ecs = aws_sdk_ecs::Config::builder()
            .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
            .build();
        StatusReader::new(
            aws_sdk_dynamodb::Client::from_conf(conf),
            sqs,
            aws_sdk_ecs::Client::from_conf(ecs),
        )
    }

    #[tokio::test]
    async fn a_queue_with_a_redrive_policy_names_its_dead_letter_queue() {
        let attributes = mock!(aws_sdk_sqs::Client::get_queue_attributes)
            .match_requests(|r| {
                r.queue_url() == Some("https://q")
                    && r.attribute_names().contains(&QueueAttributeName::RedrivePolicy)
            })
            .then_output(|| {
                GetQueueAttributesOutput::builder()
                    .attributes(QueueAttributeName::ApproximateNumberOfMessages, "7")
                    .attributes(QueueAttributeName::ApproximateNumberOfMessagesNotVisible, "2")
                    .attributes(
                        QueueAttributeName::RedrivePolicy,
                        r#"{"deadLetterTargetArn":"arn:aws:sqs:eu-central-1:123456789012:dlq","maxReceiveCount":5}"#,
                    )
                    .build()
            });
        let url = mock!(aws_sdk_sqs::Client::get_queue_url)
            .match_requests(|r| {
                r.queue_name() == Some("dlq")
                    && r.queue_owner_aws_account_id() == Some("123456789012")
            })
            .then_output(|| {
                GetQueueUrlOutput::builder()
                    .queue_url("https://dlq")
                    .build()
            });
        let reader = reader(mock_client!(
            aws_sdk_sqs,
            RuleMode::MatchAny,
            [&attributes, &url]
        ));
        let status = reader.queue("https://q").await.unwrap();
        assert_eq!(
            status.depth,
            QueueDepth {
                visible: 7,
                in_flight: 2,
                delayed: 0
            }
        );
        let arn = status.dead_letter_arn.unwrap();
        assert_eq!(arn, "arn:aws:sqs:eu-central-1:123456789012:dlq");
        assert_eq!(reader.queue_url(&arn).await.unwrap(), "https://dlq");
    }

    #[tokio::test]
    async fn a_queue_without_a_redrive_policy_has_no_dead_letter_queue() {
        let attributes = mock!(aws_sdk_sqs::Client::get_queue_attributes).then_output(|| {
            GetQueueAttributesOutput::builder()
                .attributes(QueueAttributeName::ApproximateNumberOfMessages, "0")
                .build()
        });
        let reader = reader(mock_client!(aws_sdk_sqs, [&attributes]));
        assert_eq!(
            reader.queue("https://q").await.unwrap().dead_letter_arn,
            None
        );
    }

    #[test]
    fn redrive_policies_and_arns_that_cannot_be_read_are_named() {
        assert!(
            dead_letter_target("nope")
                .unwrap_err()
                .to_string()
                .contains("RedrivePolicy is not JSON")
        );
        assert!(
            dead_letter_target("{}")
                .unwrap_err()
                .to_string()
                .contains("names no deadLetterTargetArn")
        );
        assert_eq!(
            queue_arn_parts("arn:aws:sqs:us-east-1:000000000000:a-dlq").unwrap(),
            ("000000000000", "a-dlq")
        );
        assert!(
            queue_arn_parts("arn:aws:sns:us-east-1:1:t")
                .unwrap_err()
                .to_string()
                .contains("not an SQS queue ARN")
        );
    }
}
