//! Small persistent state in DynamoDB (`[state] table`): one item per key, with optimistic
//! concurrency so two overlapping invocations never overwrite each other's state.
//!
//! Item layout: `pk` (S, the partition key), `data` (S, the caller's JSON), `version` (N,
//! incremented by every write), `expires_at` (N, epoch seconds, for DynamoDB TTL) and
//! `updated_at` (S, RFC 3339, for people reading the table), and for runs `list_pk`/`list_sk`
//! (S, the listing index's keys).

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::error::Error;

/// Attribute names of a state item.
pub use jobrunner_core::action::item::{
    DATA, EXPIRES_AT, LIST_PK, LIST_SK, PK, UPDATED_AT, VERSION,
};

pub use jobrunner_core::ports::{Put, Record, Saved};

/// A DynamoDB table of small state items.
#[derive(Debug, Clone)]
pub struct StateStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl StateStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        StateStore {
            client,
            table: table.into(),
        }
    }

    /// Builds the client from the shared SDK configuration ([`crate::client::load`]).
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        StateStore::new(aws_sdk_dynamodb::Client::new(sdk), table)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Reads an item (strongly consistent), or `None` when there is none yet.
    pub async fn get(&self, key: &str) -> Result<Option<Record>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(key.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| crate::error::from_sdk("GetItem", e))?;
        let Some(item) = output.item() else {
            return Ok(None);
        };
        Ok(Some(record(key, item)?))
    }

    /// Writes `data` if the stored version is still `expected` (`None`: only if no item exists
    /// yet). Returns the new version, or [`Saved::Conflict`] when another writer won.
    pub async fn put(&self, put: &Put<'_>) -> Result<Saved, Error> {
        let Put {
            key,
            data,
            expected,
            expires_at,
            now,
            ref listing,
        } = *put;
        let version = expected.map_or(1, |v| v + 1);
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, AttributeValue::S(key.to_string()))
            .item(DATA, AttributeValue::S(data.to_string()))
            .item(VERSION, AttributeValue::N(version.to_string()))
            .item(
                EXPIRES_AT,
                AttributeValue::N(expires_at.timestamp().to_string()),
            )
            .item(
                UPDATED_AT,
                AttributeValue::S(jobrunner_core::action::rfc3339_millis(now)),
            );
        let request = match listing {
            Some(listing) => request
                .item(LIST_PK, AttributeValue::S(listing.partition.clone()))
                .item(LIST_SK, AttributeValue::S(listing.sort.clone())),
            None => request,
        };
        let request = match expected {
            None => request
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK),
            Some(expected) => request
                .condition_expression("#v = :expected")
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":expected", AttributeValue::N(expected.to_string())),
        };
        match request.send().await {
            Ok(_) => Ok(Saved::Written { version }),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(Saved::Conflict)
            }
            Err(e) => Err(crate::error::from_sdk("PutItem", e)),
        }
    }
}

fn record(key: &str, item: &HashMap<String, AttributeValue>) -> Result<Record, Error> {
    let malformed = |what: &str| Error::Rejected {
        operation: "GetItem",
        message: format!("state item '{key}' has no valid {what}"),
    };
    let data = item
        .get(DATA)
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| malformed(DATA))?
        .clone();
    let version = item
        .get(VERSION)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| malformed(VERSION))?;
    Ok(Record { data, version })
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_smithy_mocks::{mock, mock_client};

    use super::*;

    #[tokio::test]
    async fn reads_records_and_missing_items() {
        let found = mock!(aws_sdk_dynamodb::Client::get_item)
            .match_requests(|r| {
                r.table_name() == Some("state") && r.consistent_read() == Some(true)
            })
            .then_output(|| {
                GetItemOutput::builder()
                    .item(PK, AttributeValue::S("k".into()))
                    .item(DATA, AttributeValue::S("{}".into()))
                    .item(VERSION, AttributeValue::N("7".into()))
                    .build()
            });
        let missing = mock!(aws_sdk_dynamodb::Client::get_item)
            .then_output(|| GetItemOutput::builder().build());
        let store = StateStore::new(mock_client!(aws_sdk_dynamodb, [&found, &missing]), "state");
        assert_eq!(
            store.get("k").await.unwrap(),
            Some(Record {
                data: "{}".into(),
                version: 7
            })
        );
        assert_eq!(store.get("k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn conditional_writes_report_conflicts() {
        let first = mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(|r| {
                r.condition_expression() == Some("attribute_not_exists(#pk)")
                    && r.item().and_then(|i| i.get(VERSION)) == Some(&AttributeValue::N("1".into()))
                    && r.item().and_then(|i| i.get(EXPIRES_AT))
                        == Some(&AttributeValue::N("86400".into()))
            })
            .then_output(|| PutItemOutput::builder().build());
        let lost = mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(|r| {
                r.expression_attribute_values()
                    .and_then(|v| v.get(":expected"))
                    == Some(&AttributeValue::N("3".into()))
            })
            .then_error(|| {
                PutItemError::ConditionalCheckFailedException(
                    ConditionalCheckFailedException::builder().build(),
                )
            });
        let store = StateStore::new(mock_client!(aws_sdk_dynamodb, [&first, &lost]), "state");
        let expires = chrono::DateTime::from_timestamp(86400, 0).unwrap();
        let put = |expected| Put {
            key: "k",
            data: "{}",
            expected,
            expires_at: expires,
            now: expires,
            listing: None,
        };
        assert_eq!(
            store.put(&put(None)).await.unwrap(),
            Saved::Written { version: 1 }
        );
        assert_eq!(store.put(&put(Some(3))).await.unwrap(), Saved::Conflict);
    }

    #[tokio::test]
    async fn runs_carry_the_listing_keys() {
        let listed = mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(|r| {
                let item = r.item().unwrap();
                item.get(LIST_PK) == Some(&AttributeValue::S("runs#2026-11-25".into()))
                    && item.get(LIST_SK) == Some(&AttributeValue::S("t#r".into()))
            })
            .then_output(|| PutItemOutput::builder().build());
        let store = StateStore::new(mock_client!(aws_sdk_dynamodb, [&listed]), "state");
        let now = chrono::DateTime::from_timestamp(86400, 0).unwrap();
        let put = Put {
            key: "run/r",
            data: "{}",
            expected: None,
            expires_at: now,
            now,
            listing: Some(jobrunner_core::ports::Listing {
                partition: "runs#2026-11-25".into(),
                sort: "t#r".into(),
            }),
        };
        assert_eq!(
            store.put(&put).await.unwrap(),
            Saved::Written { version: 1 }
        );
        assert_eq!(listed.num_calls(), 1);
    }
}
