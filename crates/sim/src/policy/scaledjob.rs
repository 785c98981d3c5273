//! `keda-scaledjob`: KEDA's ScaledJob with the `aws-sqs-queue` scaler and the `accurate`
//! scaling strategy (bench/MODELS.md has the sources).
//!
//! - Every `pollingInterval` (30 s) KEDA reads the queue length: the visible messages (with
//!   `scaleOnInFlight: false`, the setting the accurate strategy is meant for: a queue length
//!   without the messages already locked by running jobs).
//! - `maxScale` = min(⌈queueLength / targetAverageValue⌉, `maxReplicaCount`), the target being
//!   the worker's `messages_per_task`; `running` = jobs not finished (pending ones included),
//!   `pending` = jobs whose pod is not running yet.
//! - Accurate: if maxScale + running − pending > maxReplicaCount, create
//!   maxReplicaCount − running jobs; else create maxScale − pending; never more than the queue
//!   length, nothing when the scaler is inactive (queue length 0).
//! - Below `minReplicaCount` running jobs, create the difference.
//! - Each job runs the same worker as every other policy, exiting once idle.

use crate::engine::{Action, Exit, Policy, View};

/// KEDA ScaledJob, accurate strategy.
#[derive(Debug, Clone)]
pub struct KedaScaledJob {
    pub min: u32,
    pub max: u32,
    pub target: u64,
    pub polling_interval: u64,
}

impl KedaScaledJob {
    pub fn new(min: u32, max: u32, target: u64) -> KedaScaledJob {
        KedaScaledJob {
            min,
            max,
            target: target.max(1),
            polling_interval: 30,
        }
    }

    /// Jobs the accurate strategy creates for a queue length and the job counts.
    pub fn jobs_to_create(&self, queue_length: u64, running: u32, pending: u32) -> u32 {
        let (running, pending) = (i64::from(running), i64::from(pending));
        let (min, max) = (i64::from(self.min), i64::from(self.max));
        if running < min {
            return u32::try_from(min - running).unwrap_or(0);
        }
        if queue_length == 0 {
            return 0;
        }
        let max_scale = i64::try_from(queue_length.div_ceil(self.target))
            .unwrap_or(i64::MAX)
            .min(max);
        // The strategy sees the jobs above minReplicaCount as running.
        let running = running - min;
        let effective = if max_scale + running - pending > max {
            max - running
        } else {
            max_scale - pending
        };
        let scale_to = i64::try_from(queue_length).unwrap_or(i64::MAX);
        u32::try_from(effective.min(scale_to).max(0)).unwrap_or(0)
    }
}

impl Policy for KedaScaledJob {
    fn name(&self) -> &str {
        "keda-scaledjob"
    }

    fn initial_tasks(&self) -> u32 {
        0
    }

    fn act(&mut self, view: &View<'_>) -> Vec<Action> {
        if !view.now.is_multiple_of(self.polling_interval) {
            return Vec::new();
        }
        let running = view.running.saturating_add(view.pending);
        let create = self.jobs_to_create(view.visible, running, view.pending);
        if create == 0 {
            return Vec::new();
        }
        vec![Action::Launch {
            tasks: create,
            exit: Exit::Idle,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accurate_strategy_on_hand_computed_cases() {
        // min 0, max 10, 10 messages per job.
        let keda = KedaScaledJob::new(0, 10, 10);
        // 45 visible, no jobs: maxScale ⌈45/10⌉ = 5; 5 + 0 − 0 ≤ 10 → 5 − 0 = 5.
        assert_eq!(keda.jobs_to_create(45, 0, 0), 5);
        // 45 visible, 5 jobs all still pending: 5 + 5 − 5 ≤ 10 → 5 − 5 = 0.
        assert_eq!(keda.jobs_to_create(45, 5, 5), 0);
        // 45 visible, 5 running (none pending): 5 + 5 − 0 = 10 ≤ 10 → 5 − 0 = 5.
        assert_eq!(keda.jobs_to_create(45, 5, 0), 5);
        // 95 visible, 4 running, 1 pending: maxScale 10; 10 + 4 − 1 = 13 > 10 → 10 − 4 = 6.
        assert_eq!(keda.jobs_to_create(95, 4, 1), 6);
        // Never more jobs than messages (scaleTo = the queue length): 3 visible → 1 job.
        assert_eq!(keda.jobs_to_create(3, 0, 0), 1);
        // maxScale capped at maxReplicaCount: 500 visible, 10 running → 10 − 10 = 0.
        assert_eq!(keda.jobs_to_create(500, 10, 0), 0);
        // An inactive scaler (empty queue) creates nothing.
        assert_eq!(keda.jobs_to_create(0, 0, 0), 0);
        // Below minReplicaCount: the difference, whatever the queue.
        let floor = KedaScaledJob::new(2, 10, 10);
        assert_eq!(floor.jobs_to_create(0, 0, 0), 2);
        // Above it, the jobs beyond min count as running: 35 visible, 3 running (1 over min),
        // none pending: maxScale 4; 4 + 1 − 0 ≤ 10 → 4.
        assert_eq!(floor.jobs_to_create(35, 3, 0), 4);
    }
}
