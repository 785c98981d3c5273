//! `runtask-per-batch`: one RunTask per batch of messages, as an event-driven launcher does
//! (bench/MODELS.md has the sources).
//!
//! A batch opens with the first message that finds none open and closes when it holds
//! `messages_per_task` messages or 5 s after it opened; a task is launched for it at once
//! (while fewer than `max` tasks are alive; otherwise the batch waits for one to end). The task
//! works through as many messages as its batch holds and exits; Fargate bills it at least one
//! minute (the engine's minimum, the same for every policy).

use std::collections::VecDeque;

use crate::engine::{Action, Exit, Policy, View};

/// RunTask per batch.
#[derive(Debug, Clone)]
pub struct RunTaskPerBatch {
    pub max: u32,
    pub batch_size: u32,
    pub window_seconds: u64,
    /// The open batch: opened at, messages.
    open: Option<(u64, u32)>,
    /// Closed batches waiting for room under `max`.
    waiting: VecDeque<u32>,
}

impl RunTaskPerBatch {
    pub fn new(max: u32, batch_size: u32) -> RunTaskPerBatch {
        RunTaskPerBatch {
            max,
            batch_size: batch_size.max(1),
            window_seconds: 5,
            open: None,
            waiting: VecDeque::new(),
        }
    }
}

impl Policy for RunTaskPerBatch {
    fn name(&self) -> &str {
        "runtask-per-batch"
    }

    fn initial_tasks(&self) -> u32 {
        0
    }

    fn act(&mut self, view: &View<'_>) -> Vec<Action> {
        if let Some((opened, count)) = self.open
            && view.now >= opened + self.window_seconds
        {
            self.waiting.push_back(count);
            self.open = None;
        }
        let mut arrived = view.arrived;
        while arrived > 0 {
            let (opened, count) = self.open.unwrap_or((view.now, 0));
            let room = u64::from(self.batch_size - count);
            let take = arrived.min(room);
            arrived -= take;
            let count = count + take as u32;
            if count == self.batch_size {
                self.waiting.push_back(count);
                self.open = None;
            } else {
                self.open = Some((opened, count));
            }
        }
        let alive = view.running.saturating_add(view.pending);
        let room = self.max.saturating_sub(alive) as usize;
        self.waiting
            .drain(..room.min(self.waiting.len()))
            .map(|size| Action::Launch {
                tasks: 1,
                exit: Exit::After(size),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Metrics, View};

    fn view(now: u64, arrived: u64, alive: u32) -> (u64, u64, u32) {
        (now, arrived, alive)
    }

    fn act(policy: &mut RunTaskPerBatch, (now, arrived, alive): (u64, u64, u32)) -> Vec<u32> {
        let metrics = Metrics::default();
        let view = View {
            now,
            arrived,
            visible: 0,
            in_flight: 0,
            desired: 0,
            running: alive,
            pending: 0,
            protected: 0,
            metrics: &metrics,
        };
        policy
            .act(&view)
            .into_iter()
            .map(|a| match a {
                Action::Launch {
                    tasks: 1,
                    exit: Exit::After(n),
                } => n,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn full_batches_launch_at_once_and_the_rest_after_five_seconds() {
        let mut p = RunTaskPerBatch::new(50, 10);
        assert_eq!(act(&mut p, view(10, 25, 0)), vec![10, 10]);
        assert!(act(&mut p, view(11, 1, 2)).is_empty());
        assert!(act(&mut p, view(14, 0, 2)).is_empty());
        // The batch opened at 10 closes at 15 with 5 + 1 messages.
        assert_eq!(act(&mut p, view(15, 0, 2)), vec![6]);
        assert!(act(&mut p, view(16, 0, 3)).is_empty());
    }

    #[test]
    fn batches_wait_for_room_under_max() {
        let mut p = RunTaskPerBatch::new(2, 10);
        assert_eq!(act(&mut p, view(0, 30, 0)), vec![10, 10]);
        assert!(act(&mut p, view(1, 0, 2)).is_empty());
        assert_eq!(act(&mut p, view(2, 0, 1)), vec![10]);
    }
}
