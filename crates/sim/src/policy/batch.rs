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
