//! `jobrunner-worker`'s metric documents, dimension `queue` (the queue's name, the last part
//! of its URL: bounded by the queues a deployment has, never a message id).
//!
//! One document per settled message: `messages_processed` (its command exited 0; deleted) or
//! `messages_failed` (it failed, or was stopped at shutdown and returned), and
//! `message_duration` (the command's run time, milliseconds).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Document, Unit};

/// The `queue` dimension of a queue URL: its name (the URL's last path segment).
pub fn queue_name(queue_url: &str) -> &str {
    let trimmed = queue_url.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((_, name)) if !name.is_empty() => name,
        _ => trimmed,
    }
}

/// The document of one settled message of `queue`.
pub fn message(queue: &str, succeeded: bool, duration_ms: u64, at: DateTime<Utc>) -> Value {
    let counted = if succeeded {
        "messages_processed"
    } else {
        "messages_failed"
    };
    Document::new(at, &[&["queue"]])
        .dimension("queue", queue)
        .metric(counted, Unit::Count, 1)
        .metric("message_duration", Unit::Milliseconds, duration_ms)
        .build()
}
