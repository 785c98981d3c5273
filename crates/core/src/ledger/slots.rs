//! A capped job's slots: who holds one, and the line of runs waiting for one. Pure: the
//! launcher reads the item, decides here, and writes it back with a conditional write, so
//! any number of concurrent launchers never hand out more than `max_running` slots.
//!
//! - A run that holds a slot keeps it until the tracker sees its task stop (or reconciliation
//!   finds its task gone).
//! - Waiting runs queue by their event's time: the oldest [`LINE_MAX`] are remembered in the
//!   item, and a free slot goes to a newer run only when every remembered run ahead of it has
//!   one too. A run older than the youngest remembered one takes that one's place. So the line
//!   is first come, first served, and a run never waits behind newer ones for good.
//! - A remembered run that stops looking (its event was deleted, or dead-lettered by hand)
//!   drops out of the line after [`STALE_AFTER_SECONDS`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Waiting runs remembered in the item (bounded: DynamoDB items hold at most 400 KB).
pub const LINE_MAX: usize = 50;
/// A remembered waiting run that has not looked again for this long leaves the line.
pub const STALE_AFTER_SECONDS: i64 = 90;
/// A remembered run refreshes its place when it looks again this long after the last time.
pub const REFRESH_AFTER_SECONDS: i64 = 30;
/// A holder whose task is not among the job's running tasks is released by reconciliation
/// once it has held its slot this long (a launch in progress has no task listed yet).
pub const RECONCILE_GRACE_SECONDS: i64 = 120;
/// Reconciliation against ListTasks runs at most this often per job.
pub const RECONCILE_EVERY_SECONDS: i64 = 60;

/// One slot's holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The attempt the slot is for (a retry takes it over).
    pub attempt: u32,
    pub since: DateTime<Utc>,
}

/// A remembered waiting run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiter {
    pub run_id: String,
    pub queued_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
}

/// The `slots/<job>` item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slots {
    /// Run id → its holder.
    #[serde(default)]
    pub holders: BTreeMap<String, Holder>,
    /// Oldest first.
    #[serde(default)]
    pub line: Vec<Waiter>,
    /// Running tasks of the job that hold no slot (launched before the ledger, or by hand),
    /// as last counted by reconciliation: they count against the cap too.
    #[serde(default)]
    pub untracked: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled_at: Option<DateTime<Utc>>,
}

/// What [`Slots::acquire`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// The run already holds a slot (a redelivery): nothing to write.
    Held,
    /// The run got a slot: write the item.
    Granted,
    /// No slot for this run yet. `changed`: the item must be written (the run joined the line
    /// or refreshed its place); `in_line`: the run is remembered in the line.
    Wait { changed: bool, in_line: bool },
}

impl Slots {
    /// Slots in use: holders and untracked tasks.
    pub fn used(&self) -> u32 {
        u32::try_from(self.holders.len())
            .unwrap_or(u32::MAX)
            .saturating_add(self.untracked)
    }

    /// Tries to give `run_id` (queued at `queued_at`) a slot for `attempt`, with at most
    /// `max_running` in use.
    pub fn acquire(
        &mut self,
        run_id: &str,
        attempt: u32,
        queued_at: DateTime<Utc>,
        max_running: u32,
        now: DateTime<Utc>,
    ) -> Acquire {
        if let Some(holder) = self.holders.get_mut(run_id) {
            if holder.attempt == attempt {
                return Acquire::Held;
            }
            holder.attempt = attempt;
            holder.since = now;
            return Acquire::Granted;
        }
        let stale_before = now - Duration::seconds(STALE_AFTER_SECONDS);
        let before = self.line.len();
        self.line
            .retain(|w| w.seen_at >= stale_before || w.run_id == run_id);
        let pruned = self.line.len() != before;
        let free = max_running.saturating_sub(self.used()) as usize;
        let ahead = self
            .line
            .iter()
            .filter(|w| {
                w.run_id != run_id && (w.queued_at, &w.run_id) < (queued_at, &run_id.to_string())
            })
            .count();
        if ahead < free {
            self.line.retain(|w| w.run_id != run_id);
            self.holders.insert(
                run_id.into(),
                Holder {
                    attempt,
                    since: now,
                },
            );
            return Acquire::Granted;
        }
        // Wait: keep (or take) a place in the line.
        if let Some(waiter) = self.line.iter_mut().find(|w| w.run_id == run_id) {
            let refresh = now - waiter.seen_at >= Duration::seconds(REFRESH_AFTER_SECONDS);
            if refresh {
                waiter.seen_at = now;
            }
            return Acquire::Wait {
                changed: refresh || pruned,
                in_line: true,
            };
        }
        let waiter = Waiter {
            run_id: run_id.into(),
            queued_at,
            seen_at: now,
        };
        let youngest_is_newer = self
            .line
            .last()
            .is_some_and(|w| (w.queued_at, &w.run_id) > (queued_at, &waiter.run_id));
        if self.line.len() < LINE_MAX || youngest_is_newer {
            let at = self
                .line
                .partition_point(|w| (w.queued_at, &w.run_id) < (queued_at, &waiter.run_id));
            self.line.insert(at, waiter);
            self.line.truncate(LINE_MAX);
            return Acquire::Wait {
                changed: true,
                in_line: true,
            };
        }
        Acquire::Wait {
            changed: pruned,
            in_line: false,
        }
    }

    /// Gives back the slot `run_id` holds for `attempt`. False when it held none (a
    /// duplicate stop, or a slot already taken over by a later attempt).
    pub fn release(&mut self, run_id: &str, attempt: u32) -> bool {
        match self.holders.get(run_id) {
            Some(holder) if holder.attempt <= attempt => {
                self.holders.remove(run_id);
                true
            }
            _ => false,
        }
    }

    /// Whether reconciliation is due.
    pub fn reconcile_due(&self, now: DateTime<Utc>) -> bool {
        self.reconciled_at
            .is_none_or(|at| now - at >= Duration::seconds(RECONCILE_EVERY_SECONDS))
    }

    /// Squares the holders with the job's tasks that ECS lists as running: `running` holds
    /// the run id of each (`None` for a task without one). Holders whose task is gone for
    /// longer than the grace are released; tasks without a holder count as untracked.
    /// Returns the released run ids.
    pub fn reconcile(&mut self, running: &[Option<String>], now: DateTime<Utc>) -> Vec<String> {
        let listed: BTreeSet<&str> = running.iter().flatten().map(String::as_str).collect();
        let grace_before = now - Duration::seconds(RECONCILE_GRACE_SECONDS);
        let released: Vec<String> = self
            .holders
            .iter()
            .filter(|(run_id, h)| !listed.contains(run_id.as_str()) && h.since < grace_before)
            .map(|(run_id, _)| run_id.clone())
            .collect();
        for run_id in &released {
            self.holders.remove(run_id);
        }
        let untracked = running
            .iter()
            .filter(|id| {
                id.as_deref()
                    .is_none_or(|id| !self.holders.contains_key(id))
            })
            .count();
        self.untracked = u32::try_from(untracked).unwrap_or(u32::MAX);
        self.reconciled_at = Some(now);
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        "2026-11-25T10:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::seconds(seconds)
    }

    #[test]
    fn never_more_holders_than_the_cap() {
        let mut slots = Slots::default();
        for i in 0..5 {
            let decision = slots.acquire(&format!("r{i}"), 1, at(i), 3, at(10));
            let expected = if i < 3 {
                Acquire::Granted
            } else {
                Acquire::Wait {
                    changed: true,
                    in_line: true,
                }
            };
            assert_eq!(decision, expected, "run {i}");
        }
        assert_eq!(slots.holders.len(), 3);
        assert_eq!(slots.acquire("r0", 1, at(0), 3, at(11)), Acquire::Held);
    }

    #[test]
    fn a_freed_slot_goes_to_the_oldest_waiter_not_the_newest_arrival() {
        let mut slots = Slots::default();
        slots.acquire("holder", 1, at(0), 1, at(0));
        assert!(matches!(
            slots.acquire("old", 1, at(1), 1, at(1)),
            Acquire::Wait { in_line: true, .. }
        ));
        assert!(slots.release("holder", 1));
        // A newer event arrives first after the release: it must not jump the line.
        assert!(matches!(
            slots.acquire("new", 1, at(5), 1, at(6)),
            Acquire::Wait { .. }
        ));
        assert_eq!(slots.acquire("old", 1, at(1), 1, at(7)), Acquire::Granted);
        assert!(slots.line.iter().all(|w| w.run_id != "old"));
    }

    #[test]
    fn a_stale_waiter_leaves_the_line() {
        let mut slots = Slots::default();
        slots.acquire("holder", 1, at(0), 1, at(0));
        slots.acquire("gone", 1, at(1), 1, at(1));
        slots.release("holder", 1);
        assert!(matches!(
            slots.acquire("next", 1, at(5), 1, at(10)),
            Acquire::Wait { .. }
        ));
        // 'gone' never looks again: after the stale time, 'next' gets the slot.
        assert_eq!(
            slots.acquire("next", 1, at(5), 1, at(STALE_AFTER_SECONDS + 2)),
            Acquire::Granted
        );
    }

    #[test]
    fn the_line_is_bounded_and_keeps_the_oldest() {
        let mut slots = Slots::default();
        slots.acquire("holder", 1, at(0), 1, at(0));
        for i in 0..(LINE_MAX as i64 + 10) {
            slots.acquire(&format!("w{i:03}"), 1, at(100 + i), 1, at(200));
        }
        assert_eq!(slots.line.len(), LINE_MAX);
        // An older event takes the youngest's place.
        assert!(matches!(
            slots.acquire("older", 1, at(50), 1, at(201)),
            Acquire::Wait { in_line: true, .. }
        ));
        assert_eq!(slots.line[0].run_id, "older");
        assert_eq!(slots.line.len(), LINE_MAX);
        // A newer one than all remembered waits outside the line, writing nothing.
        assert_eq!(
            slots.acquire("newest", 1, at(999), 1, at(202)),
            Acquire::Wait {
                changed: false,
                in_line: false
            }
        );
    }

    #[test]
    fn release_is_idempotent_and_respects_later_attempts() {
        let mut slots = Slots::default();
        slots.acquire("r", 1, at(0), 2, at(0));
        assert_eq!(slots.acquire("r", 2, at(0), 2, at(5)), Acquire::Granted);
        assert!(
            !slots.release("r", 1),
            "attempt 1's stop keeps attempt 2's slot"
        );
        assert!(slots.release("r", 2));
        assert!(!slots.release("r", 2));
    }

    #[test]
    fn reconciliation_frees_lost_slots_after_the_grace_and_counts_foreign_tasks() {
        let mut slots = Slots::default();
        slots.acquire("lost", 1, at(0), 3, at(0));
        slots.acquire("young", 1, at(0), 3, at(100));
        slots.acquire("alive", 1, at(0), 3, at(0));
        let running = vec![Some("alive".to_string()), None];
        let released = slots.reconcile(&running, at(RECONCILE_GRACE_SECONDS + 50));
        assert_eq!(released, vec!["lost".to_string()]);
        assert!(slots.holders.contains_key("young"), "within its grace");
        assert_eq!(slots.untracked, 1);
        assert_eq!(slots.used(), 3);
        assert!(!slots.reconcile_due(at(RECONCILE_GRACE_SECONDS + 60)));
        assert!(slots.reconcile_due(at(RECONCILE_GRACE_SECONDS + 111)));
    }
}
