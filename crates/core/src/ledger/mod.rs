//! The run ledger and its companions in the `[state]` table, through the [`StateTable`] port:
//! each run's record ([`Run`]), each capped job's slots ([`slots::Slots`]), the latest run of
//! a job for an S3 key ([`ObjectPointer`]) and what is known of each schedule's ticks
//! ([`ScheduleWatch`]).
//!
//! Every item is a JSON document written with optimistic concurrency: [`Ledger::update`] reads
//! the item, applies a pure change, and writes it only if nobody wrote in between, reading
//! and applying again when someone did. So concurrent launchers and trackers never lose each
//! other's changes, and the rules that decide (in `run` and [`slots`]) stay pure.

pub mod keys;
pub mod slots;

use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::action::rfc3339_millis;
use crate::config::State;
use crate::error::{CallError, Error};
use crate::ports::{Listing, Put, Saved, StateTable};
use crate::run::Run;
pub use slots::Slots;

/// Writers that may collide on one item before an update gives up (and the event is retried).
const MAX_CONFLICTS: usize = 32;
/// How long slot items live after their last change (a job idle this long has no holders).
const SLOTS_TTL_DAYS: i64 = 30;

/// A document the ledger stores.
pub trait Stored: Serialize + DeserializeOwned {
    /// The item's place in the listing index, if it is listed.
    fn listing(&self) -> Option<Listing> {
        None
    }
}

impl Stored for Run {
    fn listing(&self) -> Option<Listing> {
        Some(Listing {
            partition: keys::list_partition(self.queued_at.date_naive()),
            sort: format!("{}#{}", rfc3339_millis(self.queued_at), self.run_id),
        })
    }
}

impl Stored for Slots {}

/// The latest run of a job for one S3 key (`object/<job>/<bucket>/<key>`), so that
/// `jobrunner run view s3://bucket/key` finds it without a version or sequencer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectPointer {
    pub run_id: String,
    /// The event time of that run's object: an older event never replaces a newer one.
    pub event_time: DateTime<Utc>,
}

impl Stored for ObjectPointer {}

/// What is known of a schedule's ticks (`schedule/<name>`): the launcher records each tick it
/// sees; the tracker's sweep compares them with the schedule's expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleWatch {
    /// The latest tick the launcher received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tick: Option<DateTime<Utc>>,
    /// When watching began: ticks before it are never reported missed.
    pub watched_since: DateTime<Utc>,
    /// The latest tick already reported missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed_until: Option<DateTime<Utc>>,
}

impl Stored for ScheduleWatch {}

impl ScheduleWatch {
    /// The point after which the next expected tick is looked for.
    pub fn checked_until(&self) -> DateTime<Utc> {
        [self.last_tick, self.missed_until]
            .into_iter()
            .flatten()
            .fold(self.watched_since, DateTime::max)
    }
}

/// The ledger over a state table port.
#[derive(Debug)]
pub struct Ledger<'a, P> {
    ports: &'a P,
    retention: Duration,
}

/// An item as read: its document and version.
pub type Loaded<T> = Option<(T, u64)>;

impl<'a, P: StateTable> Ledger<'a, P> {
    pub fn new(ports: &'a P, state: &State) -> Self {
        Ledger {
            ports,
            retention: Duration::days(i64::from(state.retention_days)),
        }
    }

    /// Reads an item.
    pub async fn load<T: Stored>(&self, key: &str) -> Result<Loaded<T>, Error> {
        let Some(record) = self.ports.get(key).await? else {
            return Ok(None);
        };
        let value = serde_json::from_str(&record.data).map_err(|e| {
            Error::Call(CallError::Rejected {
                operation: "GetItem",
                message: format!("ledger item '{key}' cannot be read: {e}"),
            })
        })?;
        Ok(Some((value, record.version)))
    }

    /// Applies `change` to the item at `key` (starting from `loaded` when the caller has just
    /// read it) and writes the result when `change` says it changed anything, re-reading and
    /// re-applying on a conflicting write. Returns the item as it now is.
    pub async fn update<T: Stored + Clone>(
        &self,
        key: &str,
        mut loaded: Option<Loaded<T>>,
        now: DateTime<Utc>,
        mut change: impl FnMut(&mut Option<T>) -> bool,
    ) -> Result<Option<T>, Error> {
        for _ in 0..MAX_CONFLICTS {
            let (mut value, version) = match loaded.take() {
                Some(Some((value, version))) => (Some(value), Some(version)),
                Some(None) => (None, None),
                None => match self.load(key).await? {
                    Some((value, version)) => (Some(value), Some(version)),
                    None => (None, None),
                },
            };
            if !change(&mut value) {
                return Ok(value);
            }
            let Some(document) = &value else {
                return Ok(None);
            };
            let data = serde_json::to_string(document).map_err(|e| {
                Error::Call(CallError::Rejected {
                    operation: "PutItem",
                    message: format!("ledger item '{key}' cannot be written: {e}"),
                })
            })?;
            let ttl = if key.starts_with(keys::SLOTS_PREFIX) {
                Duration::days(SLOTS_TTL_DAYS)
            } else {
                self.retention
            };
            let put = Put {
                key,
                data: &data,
                expected: version,
                expires_at: now + ttl,
                now,
                listing: document.listing(),
            };
            match self.ports.put(&put).await? {
                Saved::Written { .. } => return Ok(value),
                Saved::Conflict => continue,
            }
        }
        Err(Error::Call(CallError::Transient {
            operation: "PutItem",
            message: format!(
                "ledger item '{key}' changed under {MAX_CONFLICTS} concurrent writers; retry"
            ),
        }))
    }
}

#[cfg(test)]
pub(crate) mod tests;
