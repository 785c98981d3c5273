//! `jobrunner_worker`: a queue worker that long-polls SQS and handles each message, either by
//! running a command ([`CommandHandler`], what the `jobrunner-worker` binary does) or with
//! in-process Rust code (your own [`Handler`]).
//!
//! Guarantees: a message is deleted only after its handler succeeded; a failed one becomes
//! visible again after the retry delay (the queue's redrive policy dead-letters it after
//! `maxReceiveCount`); while a handler runs, the message's visibility is extended (heartbeat)
//! so a long job is not delivered twice; while anything is in hand the ECS task holds scale-in
//! protection; on shutdown nothing new is received, running handlers get a grace period, and
//! what is still running after it is stopped and its message returned to the queue at once.
//!
//! ```no_run
//! use jobrunner_worker::{Config, Handler, Message, NoProtection, Outcome, SqsQueue, Stop, Worker};
//!
//! struct Resize;
//!
//! impl Handler for Resize {
//!     async fn handle(&self, message: Message, _stop: Stop) -> Outcome {
//!         match message.body.is_empty() {
//!             false => Outcome::Done,
//!             true => Outcome::Failed("empty body".into()),
//!         }
//!     }
//! }
//!
//! # async fn run() -> Result<(), jobrunner_worker::Error> {
//! let url = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs";
//! let sqs = jobrunner_worker::sqs_client().await;
//! let worker = Worker::new(SqsQueue::new(sqs, url), Resize, None::<NoProtection>, Config::new(url))?;
//! worker.run(jobrunner_worker::shutdown_signal()?).await?;
//! # Ok(()) }
//! ```

pub mod cli;
pub mod command;
pub mod config;
pub mod error;
pub mod handler;
pub mod protection;
pub mod queue;
pub mod schedule;
pub mod worker;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

pub use command::CommandHandler;
pub use config::Config;
pub use error::Error;
pub use handler::{Handler, Outcome, Stop};
pub use protection::{EcsAgent, NoProtection, Protection};
pub use queue::{Message, Queue, SqsQueue};
pub use worker::{Exit, MetricLines, Summary, Worker};

/// An SQS client from the environment (region, credentials, `AWS_ENDPOINT_URL`), with the
/// retry settings of jobrunner's functions (adaptive mode, 4 attempts, 100 ms–5 s backoff) and
/// timeouts that leave room for a 20 s long poll.
pub async fn sqs_client() -> aws_sdk_sqs::Client {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::adaptive()
                .with_max_attempts(4)
                .with_initial_backoff(Duration::from_millis(100))
                .with_max_backoff(Duration::from_secs(5)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .load()
        .await;
    aws_sdk_sqs::Client::new(&sdk)
}

/// Resolves on the first SIGTERM (what ECS sends to stop a task) or SIGINT. The handlers are
/// installed when this is called, so call it before the worker starts.
pub fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send, Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signal)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutdown signal"),
            _ = int.recv() => tracing::info!(signal = "SIGINT", "shutdown signal"),
        }
    })
}
