//! The [`Handler`] port: what the worker does with one message. [`crate::CommandHandler`]
//! runs a command per message; a Rust worker implements the trait to handle messages
//! in-process.

use std::future::Future;

use tokio::sync::watch;

use crate::Message;

/// How handling a message ended, which decides what happens to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done: the message is deleted.
    Done,
    /// Failed: the message becomes visible again after the retry delay, so the queue's
    /// redrive policy dead-letters it after `maxReceiveCount` attempts.
    Failed(String),
    /// Stopped by the worker's shutdown: the message goes back to the queue at once.
    Interrupted,
}

/// Handles one message. Called concurrently (up to the worker's concurrency); the worker
/// extends the message's visibility while the future runs.
pub trait Handler: Send + Sync + 'static {
    /// Handles `message`. Once `stop` fires (the shutdown grace is over) the handler should
    /// stop promptly and return [`Outcome::Interrupted`]; one that does not return within the
    /// worker's `stop_timeout` is abandoned and its message returned to the queue.
    fn handle(&self, message: Message, stop: Stop) -> impl Future<Output = Outcome> + Send;
}

/// Tells a handler that the worker's shutdown grace is over.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// A stop signal and the switch that fires it.
    pub fn new() -> (watch::Sender<bool>, Stop) {
        let (tx, rx) = watch::channel(false);
        (tx, Stop(rx))
    }

    /// Whether the stop has fired.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when the stop fires (never, if its switch is dropped unfired).
    pub async fn requested(&mut self) {
        if self.0.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn stop_fires_once_switched() {
        let (switch, mut stop) = Stop::new();
        assert!(!stop.is_requested());
        let waiter = tokio::spawn(async move {
            stop.requested().await;
            stop.is_requested()
        });
        switch.send(true).unwrap();
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn a_dropped_switch_never_fires() {
        let (switch, mut stop) = Stop::new();
        drop(switch);
        let waited = tokio::time::timeout(Duration::from_millis(50), stop.requested()).await;
        assert!(waited.is_err());
    }
}
