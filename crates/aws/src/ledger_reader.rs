//! The read side of the run ledger for people (`jobrunner run list|view`): runs newest first
//! from the `runs-by-day` index, one run by its id, the latest run of a job for an S3 key.
//!
//! Writes stay with the core's `Ledger` (through [`crate::state_store::StateStore`]); this
//! only reads. The index is queried one UTC day partition at a time, newest day first and
//! newest run first within the day (`ScanIndexForward = false`), page after page, until the
//! caller's limit is reached or the oldest day is done. Job and state are inside each run's
//! JSON document, so filtering by them happens here, after the read.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use jobrunner_core::action::rfc3339_millis;
use jobrunner_core::ledger::ObjectPointer;
use jobrunner_core::ledger::keys::{self, LIST_INDEX, LIST_PK, LIST_SK};
use jobrunner_core::run::{Run, RunState};
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::state_store::{DATA, PK};

/// Which runs a listing keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub job: Option<String>,
    pub state: Option<RunState>,
}

impl RunFilter {
    /// True when the filter keeps every run.
    pub fn is_empty(&self) -> bool {
        self.job.is_none() && self.state.is_none()
    }

    pub fn keeps(&self, run: &Run) -> bool {
        self.job.as_deref().is_none_or(|job| run.job == job)
            && self.state.is_none_or(|state| run.state == state)
    }
}

/// Reads runs and object pointers from the `[state]` table.
#[derive(Debug, Clone)]
pub struct LedgerReader {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl LedgerReader {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        LedgerReader {
            client,
            table: table.into(),
        }
    }

    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        LedgerReader::new(aws_sdk_dynamodb::Client::new(sdk), table)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Runs queued since `since`, newest first, that `filter` keeps, at most `limit`; `until`
    /// (now) names the newest day partition read.
    pub async fn list(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        filter: &RunFilter,
        limit: usize,
    ) -> Result<Vec<Run>, Error> {
        let mut runs = Vec::new();
        let since_sort = rfc3339_millis(since);
        let mut day = until.date_naive();
        while runs.len() < limit && day >= since.date_naive() {
            self.list_day(
                &keys::list_partition(day),
                &since_sort,
                filter,
                limit,
                &mut runs,
            )
            .await?;
            let Some(previous) = day.pred_opt() else {
                break;
            };
            day = previous;
        }
        Ok(runs)
    }

    /// Adds the runs of one day partition queued at or after `from` (a sort key prefix) to
    /// `runs`, newest first, until `runs` holds `limit`.
    async fn list_day(
        &self,
        partition: &str,
        from: &str,
        filter: &RunFilter,
        limit: usize,
        runs: &mut Vec<Run>,
    ) -> Result<(), Error> {
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let wanted = limit - runs.len();
            let request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(LIST_INDEX)
                .key_condition_expression("#pk = :day AND #sk >= :from")
                .expression_attribute_names("#pk", LIST_PK)
                .expression_attribute_names("#sk", LIST_SK)
                .expression_attribute_values(":day", AttributeValue::S(partition.to_string()))
                .expression_attribute_values(":from", AttributeValue::S(from.to_string()))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take());
            // Unfiltered, a page of exactly what is still wanted; filtered, DynamoDB's own page
            // size (1 MB), since the filter may drop most of it.
            let request = if filter.is_empty() {
                request.limit(i32::try_from(wanted).unwrap_or(i32::MAX))
            } else {
                request
            };
            let output = request
                .send()
                .await
                .map_err(|e| crate::error::from_sdk("Query", e))?;
            for item in output.items() {
                let run: Run = document("Query", item)?;
                if filter.keeps(&run) {
                    runs.push(run);
                    if runs.len() == limit {
                        return Ok(());
                    }
                }
            }
            match output.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(()),
            }
        }
    }

    /// The run `run_id`, or `None` when the ledger has none.
    pub async fn run(&self, run_id: &str) -> Result<Option<Run>, Error> {
        self.get(&keys::run_key(run_id)).await
    }

    /// The latest run of `job` for the object `bucket`/`key` (the key as stored in S3).
    pub async fn pointer(
        &self,
        job: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectPointer>, Error> {
        self.get(&keys::object_key(job, bucket, key)).await
    }

    /// One item's document, read (strongly consistent) through the functions' own state store.
    async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let store = crate::state_store::StateStore::new(self.client.clone(), &self.table);
        let Some(record) = store.get(key).await? else {
            return Ok(None);
        };
        serde_json::from_str(&record.data)
            .map(Some)
            .map_err(|e| Error::Rejected {
                operation: "GetItem",
                message: format!("ledger item '{key}' cannot be read: {e}"),
            })
    }
}

/// The JSON document in an item's `data`.
fn document<T: DeserializeOwned>(
    operation: &'static str,
    item: &HashMap<String, AttributeValue>,
) -> Result<T, Error> {
    let key = item.get(PK).and_then(|v| v.as_s().ok()).map_or("?", |k| k);
    let unreadable = |why: String| Error::Rejected {
        operation,
        message: format!("ledger item '{key}' cannot be read: {why}"),
    };
    let data = item
        .get(DATA)
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| unreadable(format!("no string attribute '{DATA}'")))?;
    serde_json::from_str(data).map_err(|e| unreadable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::query::QueryOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use jobrunner_core::run::RunInput;

    use super::*;

    fn time(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn run(id: &str, job: &str, state: RunState, queued: &str) -> Run {
        let mut run = Run::new(
            id,
            job,
            RunInput::Schedule {
                schedule: "hourly".into(),
                scheduled_time: time(queued),
            },
            time(queued),
            time(queued),
        );
        run.state = state;
        run
    }

    fn item(run: &Run) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PK.into(), AttributeValue::S(keys::run_key(&run.run_id))),
            (
                DATA.into(),
                AttributeValue::S(serde_json::to_string(run).unwrap()),
            ),
        ])
    }

    fn s(value: &str) -> AttributeValue {
        AttributeValue::S(value.into())
    }

    #[tokio::test]
    async fn lists_day_partitions_newest_first_page_by_page_until_the_limit() {
        let today_page_1 = mock!(aws_sdk_dynamodb::Client::query)
            .match_requests(|r| {
                let values = r.expression_attribute_values().unwrap();
                r.table_name() == Some("state")
                    && r.index_name() == Some(LIST_INDEX)
                    && r.scan_index_forward() == Some(false)
                    && r.limit() == Some(3)
                    && r.exclusive_start_key().is_none()
                    && r.key_condition_expression() == Some("#pk = :day AND #sk >= :from")
                    && r.expression_attribute_names().unwrap().get("#pk")
                        == Some(&LIST_PK.to_string())
                    && r.expression_attribute_names().unwrap().get("#sk")
                        == Some(&LIST_SK.to_string())
                    && values.get(":day") == Some(&s("runs#2026-11-25"))
                    && values.get(":from") == Some(&s("2026-11-24T06:00:00.000Z"))
            })
            .then_output(|| {
                QueryOutput::builder()
                    .items(item(&run(
                        "a",
                        "report",
                        RunState::Running,
                        "2026-11-25T11:00:00Z",
                    )))
                    .last_evaluated_key(PK, s("run/a"))
                    .build()
            });
        let today_page_2 = mock!(aws_sdk_dynamodb::Client::query)
            .match_requests(|r| {
                r.limit() == Some(2)
                    && r.exclusive_start_key().and_then(|k| k.get(PK)) == Some(&s("run/a"))
            })
            .then_output(|| {
                QueryOutput::builder()
                    .items(item(&run(
                        "b",
                        "report",
                        RunState::Failed,
                        "2026-11-25T01:00:00Z",
                    )))
                    .build()
            });
        let yesterday = mock!(aws_sdk_dynamodb::Client::query)
            .match_requests(|r| {
                r.limit() == Some(1)
                    && r.expression_attribute_values().and_then(|v| v.get(":day"))
                        == Some(&s("runs#2026-11-24"))
            })
            .then_output(|| {
                QueryOutput::builder()
                    .items(item(&run(
                        "c",
                        "report",
                        RunState::Succeeded,
                        "2026-11-24T23:00:00Z",
                    )))
                    .last_evaluated_key(PK, s("run/c"))
                    .build()
            });
        let reader = LedgerReader::new(
            mock_client!(
                aws_sdk_dynamodb,
                RuleMode::Sequential,
                [&today_page_1, &today_page_2, &yesterday]
            ),
            "state",
        );
        let runs = reader
            .list(
                time("2026-11-24T06:00:00Z"),
                time("2026-11-25T12:00:00Z"),
                &RunFilter::default(),
                3,
            )
            .await
            .unwrap();
        let ids: Vec<_> = runs.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        // The limit reached, no further page and no older day is read.
        assert_eq!(yesterday.num_calls(), 1);
    }

    #[tokio::test]
    async fn filters_after_the_read_without_a_page_limit_and_stops_at_the_oldest_day() {
        let today = mock!(aws_sdk_dynamodb::Client::query)
            .match_requests(|r| {
                r.limit().is_none()
                    && r.expression_attribute_values().and_then(|v| v.get(":day"))
                        == Some(&s("runs#2026-11-25"))
            })
            .then_output(|| {
                QueryOutput::builder()
                    .items(item(&run(
                        "a",
                        "report",
                        RunState::Failed,
                        "2026-11-25T03:00:00Z",
                    )))
                    .items(item(&run(
                        "b",
                        "thumbnails",
                        RunState::Failed,
                        "2026-11-25T02:00:00Z",
                    )))
                    .items(item(&run(
                        "c",
                        "report",
                        RunState::Succeeded,
                        "2026-11-25T01:00:00Z",
                    )))
                    .build()
            });
        let yesterday = mock!(aws_sdk_dynamodb::Client::query)
            .match_requests(|r| {
                r.expression_attribute_values().and_then(|v| v.get(":day"))
                    == Some(&s("runs#2026-11-24"))
            })
            .then_output(|| QueryOutput::builder().build());
        let reader = LedgerReader::new(
            mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&today, &yesterday]),
            "state",
        );
        let filter = RunFilter {
            job: Some("report".into()),
            state: Some(RunState::Failed),
        };
        let runs = reader
            .list(
                time("2026-11-24T22:00:00Z"),
                time("2026-11-25T12:00:00Z"),
                &filter,
                20,
            )
            .await
            .unwrap();
        let ids: Vec<_> = runs.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["a"]);
        assert_eq!((today.num_calls(), yesterday.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn gets_runs_and_pointers_by_their_keys() {
        let stored = run("abc", "report", RunState::Running, "2026-11-25T11:00:00Z");
        let data = serde_json::to_string(&stored).unwrap();
        let found = mock!(aws_sdk_dynamodb::Client::get_item)
            .match_requests(|r| {
                r.key().and_then(|k| k.get(PK)) == Some(&s("run/abc"))
                    && r.consistent_read() == Some(true)
                    && r.table_name() == Some("state")
            })
            .then_output(move || {
                GetItemOutput::builder()
                    .item(PK, s("run/abc"))
                    .item(DATA, AttributeValue::S(data.clone()))
                    .item(crate::state_store::VERSION, AttributeValue::N("3".into()))
                    .build()
            });
        let pointer = mock!(aws_sdk_dynamodb::Client::get_item)
            .match_requests(|r| {
                r.key().and_then(|k| k.get(PK)) == Some(&s("object/thumbs/uploads/in/a b+c.jpg"))
            })
            .then_output(|| {
                GetItemOutput::builder()
                    .item(
                        DATA,
                        s(r#"{"run_id":"def","event_time":"2026-11-25T10:00:00Z"}"#),
                    )
                    .item(crate::state_store::VERSION, AttributeValue::N("1".into()))
                    .build()
            });
        let missing = mock!(aws_sdk_dynamodb::Client::get_item)
            .then_output(|| GetItemOutput::builder().build());
        let broken = mock!(aws_sdk_dynamodb::Client::get_item)
            .then_output(|| GetItemOutput::builder().item(PK, s("run/bad")).build());
        let reader = LedgerReader::new(
            mock_client!(
                aws_sdk_dynamodb,
                RuleMode::Sequential,
                [&found, &pointer, &missing, &broken]
            ),
            "state",
        );
        assert_eq!(reader.run("abc").await.unwrap(), Some(stored));
        assert_eq!(
            reader
                .pointer("thumbs", "uploads", "in/a b+c.jpg")
                .await
                .unwrap(),
            Some(ObjectPointer {
                run_id: "def".into(),
                event_time: time("2026-11-25T10:00:00Z"),
            })
        );
        assert_eq!(reader.run("nope").await.unwrap(), None);
        let err = reader.run("bad").await.unwrap_err();
        assert!(!err.is_retryable());
        assert!(
            err.to_string()
                .contains("state item 'run/bad' has no valid data"),
            "{err}"
        );
    }
}
