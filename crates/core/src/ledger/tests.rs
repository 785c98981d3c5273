//! The ledger's optimistic updates over an in-memory table that behaves like DynamoDB's
//! conditional writes, and yields between calls so concurrent writers interleave.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::*;
use crate::ports::{CallResult, Record};
use crate::run::{RunInput, RunState};

/// A state table in memory: versions and conditional writes as DynamoDB does them.
#[derive(Debug, Default)]
pub(crate) struct MemoryTable {
    pub items: Mutex<BTreeMap<String, (Record, Option<Listing>)>>,
    pub writes: Mutex<usize>,
    pub conflicts: Mutex<usize>,
}

impl MemoryTable {
    pub fn data<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let items = self.items.lock().unwrap();
        serde_json::from_str(&items.get(key)?.0.data).ok()
    }

    pub fn keys(&self) -> Vec<String> {
        self.items.lock().unwrap().keys().cloned().collect()
    }
}

impl StateTable for MemoryTable {
    fn table(&self) -> &str {
        "state"
    }

    async fn get(&self, key: &str) -> CallResult<Option<Record>> {
        tokio::task::yield_now().await;
        Ok(self.items.lock().unwrap().get(key).map(|(r, _)| r.clone()))
    }

    async fn put(&self, put: &Put<'_>) -> CallResult<Saved> {
        tokio::task::yield_now().await;
        let mut items = self.items.lock().unwrap();
        let current = items.get(put.key).map(|(r, _)| r.version);
        if current != put.expected {
            *self.conflicts.lock().unwrap() += 1;
            return Ok(Saved::Conflict);
        }
        let version = put.expected.map_or(1, |v| v + 1);
        items.insert(
            put.key.to_string(),
            (
                Record {
                    data: put.data.to_string(),
                    version,
                },
                put.listing.clone(),
            ),
        );
        *self.writes.lock().unwrap() += 1;
        Ok(Saved::Written { version })
    }
}

fn now() -> DateTime<Utc> {
    "2026-11-25T10:00:00Z".parse().unwrap()
}

fn state() -> State {
    State {
        table: "state".into(),
        retention_days: 30,
    }
}

fn run(id: &str) -> Run {
    Run::new(
        id,
        "thumbnails",
        RunInput::S3 {
            bucket: "uploads".into(),
            key: "a.jpg".into(),
            version_id: None,
            etag: None,
            size: Some(1),
        },
        now(),
        now(),
    )
}

#[tokio::test]
async fn runs_are_listed_by_day_and_expire_after_the_retention() {
    let table = MemoryTable::default();
    let ledger = Ledger::new(&table, &state());
    ledger
        .update("run/r1", None, now(), |r: &mut Option<Run>| {
            *r = Some(run("r1"));
            true
        })
        .await
        .unwrap();
    let items = table.items.lock().unwrap();
    let (record, listing) = &items["run/r1"];
    assert_eq!(record.version, 1);
    assert_eq!(
        listing.as_ref().unwrap(),
        &Listing {
            partition: "runs#2026-11-25".into(),
            sort: "2026-11-25T10:00:00.000Z#r1".into()
        }
    );
    drop(items);
    let stored: Run = table.data("run/r1").unwrap();
    assert_eq!(stored.state, RunState::Waiting);
}

#[tokio::test]
async fn concurrent_updates_lose_nothing() {
    let table = MemoryTable::default();
    let ledger = Ledger::new(&table, &state());
    let writers = (0..20).map(|i| {
        let ledger = &ledger;
        async move {
            ledger
                .update("slots/j", None, now(), |s: &mut Option<Slots>| {
                    let slots = s.get_or_insert_with(Slots::default);
                    slots.acquire(&format!("r{i}"), 1, now(), 100, now());
                    true
                })
                .await
                .unwrap();
        }
    });
    futures::future::join_all(writers).await;
    let slots: Slots = table.data("slots/j").unwrap();
    assert_eq!(slots.holders.len(), 20, "every writer's change survived");
    assert!(
        *table.conflicts.lock().unwrap() > 0,
        "the writers did collide"
    );
}

#[tokio::test]
async fn an_unchanged_item_is_not_written_and_a_broken_one_is_an_error() {
    let table = MemoryTable::default();
    let ledger = Ledger::new(&table, &state());
    let value = ledger
        .update("run/x", None, now(), |_: &mut Option<Run>| false)
        .await
        .unwrap();
    assert!(value.is_none());
    assert_eq!(*table.writes.lock().unwrap(), 0);
    table.items.lock().unwrap().insert(
        "run/bad".into(),
        (
            Record {
                data: "{not json".into(),
                version: 1,
            },
            None,
        ),
    );
    let err = ledger.load::<Run>("run/bad").await.unwrap_err();
    assert!(err.to_string().contains("run/bad"), "{err}");
    assert!(!err.is_retryable());
}

#[test]
fn a_watch_checks_from_its_latest_known_point() {
    let watch = ScheduleWatch {
        last_tick: Some(now() + Duration::hours(1)),
        watched_since: now(),
        missed_until: Some(now() + Duration::hours(2)),
    };
    assert_eq!(watch.checked_until(), now() + Duration::hours(2));
}
