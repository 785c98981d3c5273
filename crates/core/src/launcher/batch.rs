//! S3 Batch Operations tasks: each task's object becomes the run a live S3 event for it would
//! make, and the invocation is answered with one result per task.
//!
//! A task names bucket, key and (maybe) version, but no size or ETag. HeadObject reads them, as
//! a live event carries them: the size for size-based routing and size tiers, the ETag and
//! version for the run's token (so a batch task and a live event of the same object version
//! are one run), `Last-Modified` as the event time. A task whose key no trigger could route
//! (bucket, prefix, suffix) is answered without that call.
//!
//! Result codes: `Succeeded` when the run was launched, was already launched, or needs nothing
//! (no trigger routes the object; the result string says which); `TemporaryFailure` for
//! anything retryable — a throttled or failed AWS call, no capacity, the job at its cap;
//! `PermanentFailure` with the reason for the rest (a key that is not validly encoded, an
//! object that no longer exists, a launch ECS refuses). A task at its job's cap does not wait
//! in the launcher's queue as a live event does: S3 Batch Operations retries temporary failures
//! itself, and a re-sent copy could outlive the batch job's view of the task. The run is
//! `waiting` in the ledger meanwhile, and holds its place in the job's line only while S3
//! Batch Operations keeps retrying it.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::info;

use super::{LaunchPorts, Outcome, process};
use crate::config::Config;
use crate::error::Error;
use crate::event::ObjectCreated;
use crate::event::s3_batch::{self, BatchInvocation, BatchResponse, ResultCode, TaskObject};
use crate::event::{Event, parse_json};
use crate::token;

/// What one invocation did: the answer, and what the dry run shows of it.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchHandled {
    pub response: BatchResponse,
    /// Tasks that needed nothing done, with why.
    pub skipped: Vec<String>,
    /// Tasks that failed: (task id, error).
    pub failed: Vec<(String, Error)>,
}

/// Whether `payload` is an S3 Batch Operations invocation (to [`handle`] rather than
/// [`super::handle`]).
pub fn is_batch(payload: &Value) -> bool {
    s3_batch::is_invocation(payload)
}

/// Decodes and handles an invocation's raw text.
pub async fn handle_text(
    config: &Config,
    ports: &impl LaunchPorts,
    text: &str,
    now: DateTime<Utc>,
) -> Result<BatchHandled, Error> {
    handle(config, ports, &parse_json(text)?, now).await
}

/// Handles one S3 Batch Operations invocation. An envelope that cannot be answered (no
/// `invocationId`, a task without `taskId`, an unknown schema) is an error; every task of one
/// that can gets a result.
pub async fn handle(
    config: &Config,
    ports: &impl LaunchPorts,
    payload: &Value,
    now: DateTime<Utc>,
) -> Result<BatchHandled, Error> {
    let invocation = s3_batch::decode(payload)?;
    Ok(handle_invocation(config, ports, &invocation, now).await)
}

/// Handles a decoded invocation, task by task.
pub async fn handle_invocation(
    config: &Config,
    ports: &impl LaunchPorts,
    invocation: &BatchInvocation,
    now: DateTime<Utc>,
) -> BatchHandled {
    // No waiting in the launcher's queue: a task at its cap is a temporary failure.
    let config = &Config {
        launcher: None,
        ..config.clone()
    };
    let mut handled = BatchHandled {
        response: BatchResponse::new(invocation),
        skipped: vec![],
        failed: vec![],
    };
    for task in &invocation.tasks {
        let result = match &task.object {
            Ok(object) => run_task(config, ports, object, now).await,
            Err(error) => Err(error.clone()),
        };
        let (code, text) = match result {
            Ok(TaskEnd::Launched(text)) => (ResultCode::Succeeded, text),
            Ok(TaskEnd::Waiting(text)) => (ResultCode::TemporaryFailure, text),
            Ok(TaskEnd::Skipped(reason)) => {
                handled.skipped.push(reason.clone());
                (ResultCode::Succeeded, format!("skipped: {reason}"))
            }
            Err(error) => {
                let code = if error.is_retryable() {
                    ResultCode::TemporaryFailure
                } else {
                    ResultCode::PermanentFailure
                };
                let text = error.to_string();
                handled.failed.push((task.task_id.clone(), error));
                (code, text)
            }
        };
        info!(job_id = %invocation.job_id, task_id = %task.task_id, result_code = ?code, result = %text, "S3 Batch Operations task");
        handled.response.push(&task.task_id, code, &text);
    }
    handled
}

/// How a task ended well.
#[derive(Debug)]
enum TaskEnd {
    /// Launched or already launched: the run and its task.
    Launched(String),
    /// Nothing to do, with why.
    Skipped(String),
    /// Put in line (not expected: batch tasks do not wait in the launcher's queue); tried
    /// again by S3 Batch Operations.
    Waiting(String),
}

async fn run_task(
    config: &Config,
    ports: &impl LaunchPorts,
    object: &TaskObject,
    now: DateTime<Utc>,
) -> Result<TaskEnd, Error> {
    let routable = config.triggers.s3.iter().any(|t| {
        t.bucket == object.bucket
            && object.key.starts_with(&t.prefix)
            && object.key.ends_with(&t.suffix)
    });
    if !routable {
        return Ok(TaskEnd::Skipped(format!(
            "no S3 trigger for bucket '{}' matches key {:?} by prefix and suffix",
            object.bucket, object.key
        )));
    }
    let Some(head) = ports
        .head(&object.bucket, &object.key, object.version_id.as_deref())
        .await?
    else {
        return Err(Error::MalformedEvent(format!(
            "object s3://{}/{}{} does not exist (deleted since the manifest was written?)",
            object.bucket,
            object.key,
            object
                .version_id
                .as_deref()
                .map(|v| format!(" version {v}"))
                .unwrap_or_default()
        )));
    };
    let created = ObjectCreated {
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        size: head.size,
        etag: head.etag.filter(|e| !e.is_empty()),
        // A manifest without versions names the current one, as a live event would.
        version_id: object
            .version_id
            .clone()
            .or(head.version_id)
            .filter(|v| v != "null"),
        sequencer: None,
        event_time: head.last_modified.unwrap_or(now),
    };
    let run_id = |job: &str| token::run_id(&token::for_object(job, &created));
    let event = Event::ObjectCreated(created.clone());
    match process(config, ports, &event, now).await? {
        Outcome::Launched { job, task_arns, .. } => Ok(TaskEnd::Launched(format!(
            "launched run {} of job '{job}': {}",
            run_id(&job),
            task_arns.join(", ")
        ))),
        Outcome::AlreadyLaunched { job, task_arns } => Ok(TaskEnd::Launched(format!(
            "already launched: run {} of job '{job}': {}",
            run_id(&job),
            task_arns.join(", ")
        ))),
        Outcome::Skipped { reason } => Ok(TaskEnd::Skipped(reason)),
        Outcome::Waiting { job, run_id } => Ok(TaskEnd::Waiting(format!(
            "run {run_id} of job '{job}' waits its turn"
        ))),
    }
}

#[cfg(test)]
mod tests;
