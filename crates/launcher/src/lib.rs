//! The launcher function: S3 "Object Created" events and schedule ticks become ECS tasks.
//!
//! Accepts one event delivered directly (EventBridge, EventBridge Scheduler, S3 notification)
//! or an SQS batch of them. For batches it reports partial failures: retryable problems
//! (throttling, no capacity, at the job's cap) and malformed messages go back to the queue
//! (the latter reach its dead-letter queue after `maxReceiveCount`), everything else is done.
//! Nothing is dropped silently: every event ends launched, skipped with a logged reason, or
//! failed back to its queue.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
use jobrunner_aws::ecs::{Launch, LaunchOutcome};
use jobrunner_core::event::{self, Event, Invocation};
use jobrunner_core::{Config, plan, routing, schedule};
use serde_json::{Value, json};
use tracing::{error, info, warn};

/// The launcher's one error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The event or the plan is bad: retrying cannot help.
    #[error(transparent)]
    Core(#[from] jobrunner_core::Error),
    /// AWS said no, or not now.
    #[error(transparent)]
    Aws(#[from] jobrunner_aws::Error),
    /// An event this function does not handle (e.g. a task state change).
    #[error("the launcher does not handle {0}")]
    WrongFunction(&'static str),
}

impl Error {
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Core(e) => e.is_retryable(),
            Error::Aws(e) => e.is_retryable(),
            Error::WrongFunction(_) => false,
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        let error_type = if e.is_retryable() {
            "jobrunner.Retryable"
        } else {
            "jobrunner.Permanent"
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Launched { job: String, task_arns: Vec<String> },
    AlreadyLaunched { job: String, task_arns: Vec<String> },
    Skipped { reason: String },
}

/// Handles one invocation payload. Direct deliveries return a summary or an error (so that
/// Lambda's retry and on-failure destination take over); SQS batches return
/// `{"batchItemFailures": [...]}`.
pub async fn handle(config: &Config, ecs: &impl Launch, payload: &Value) -> Result<Value, Error> {
    match event::decode_invocation(payload)? {
        Invocation::Direct(events) => {
            let events = events.inspect_err(|e| error!(error = %e, "rejected event"))?;
            let mut outcomes = Vec::new();
            for event in &events {
                outcomes.push(
                    process(config, ecs, event)
                        .await
                        .inspect_err(|e| log_failure(None, e))?,
                );
            }
            Ok(summary(&outcomes))
        }
        Invocation::SqsBatch(messages) => {
            let mut response = SqsBatchResponse::default();
            for message in messages {
                let result = match message.events {
                    Ok(events) => process_all(config, ecs, &events).await,
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = result {
                    log_failure(Some(&message.message_id), &e);
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = message.message_id;
                    response.batch_item_failures.push(failure);
                }
            }
            Ok(serde_json::to_value(response).unwrap_or(Value::Null))
        }
    }
}

async fn process_all(config: &Config, ecs: &impl Launch, events: &[Event]) -> Result<(), Error> {
    for event in events {
        process(config, ecs, event).await?;
    }
    Ok(())
}

/// Routes, plans and launches one event.
pub async fn process(config: &Config, ecs: &impl Launch, event: &Event) -> Result<Outcome, Error> {
    let plan = match event {
        Event::ObjectCreated(object) => match routing::route(config, object) {
            Some(trigger) => plan::plan_object(config, &trigger.job, object)?,
            None => return Ok(skipped(routing::no_match_reason(config, object))),
        },
        Event::ScheduleTick(tick) => match schedule::find(config, tick) {
            Some(schedule) => plan::plan_tick(config, schedule, tick)?,
            None => {
                return Ok(skipped(format!(
                    "no schedule named '{}' in the config",
                    tick.name
                )));
            }
        },
        Event::Ignored(reason) => return Ok(skipped(reason.clone())),
        Event::TaskStateChange(_) => {
            return Err(Error::WrongFunction(
                "ECS task state changes (that is the alerter's job)",
            ));
        }
    };
    let token = plan
        .attempts
        .first()
        .map(|a| a.client_token.clone())
        .unwrap_or_default();
    match ecs.launch(&plan).await? {
        LaunchOutcome::Started {
            task_arns,
            capacity_provider,
        } => {
            info!(job = %plan.job, client_token = %token, ?task_arns, capacity_provider = capacity_provider.as_deref().unwrap_or("(launch type)"), "task started");
            Ok(Outcome::Launched {
                job: plan.job,
                task_arns,
            })
        }
        LaunchOutcome::AlreadyStarted { task_arns } => {
            info!(job = %plan.job, client_token = %token, ?task_arns, "already started for this event (redelivery); nothing new launched");
            Ok(Outcome::AlreadyLaunched {
                job: plan.job,
                task_arns,
            })
        }
        LaunchOutcome::SkippedOverlap { running } => Ok(skipped(format!(
            "job '{}': previous run still going ({}); overlap = forbid",
            plan.job,
            running.join(", ")
        ))),
    }
}

fn skipped(reason: String) -> Outcome {
    info!(%reason, "skipped");
    Outcome::Skipped { reason }
}

fn log_failure(message_id: Option<&str>, e: &Error) {
    if e.is_retryable() {
        warn!(message_id, error = %e, "will retry: the event stays in its queue");
    } else {
        error!(message_id, error = %e, "permanent failure: the event goes to the dead-letter queue after its retries");
    }
}

fn summary(outcomes: &[Outcome]) -> Value {
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    json!({
        "launched": count(|o| matches!(o, Outcome::Launched { .. })),
        "already_launched": count(|o| matches!(o, Outcome::AlreadyLaunched { .. })),
        "skipped": count(|o| matches!(o, Outcome::Skipped { .. })),
    })
}

#[cfg(test)]
mod tests;
