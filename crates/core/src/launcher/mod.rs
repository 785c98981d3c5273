//! The launcher's decision path: an invocation in, the calls it makes through the ports, what
//! happened out. The launcher Lambda drives it with the AWS adapters; `jobrunner plan` drives
//! the very same code with the dry run's recorded world.
//!
//! Per event: route (or find the schedule) and plan the RunTask request, then [`launch`] it:
//! look the run up in the ledger (a run that already has its task is not launched again),
//! take a slot under the job's cap or put the event back in line ([`waiting`]), apply a
//! schedule's overlap policy, run the task on each capacity provider in turn, and record the
//! outcome in the ledger. What each ECS answer means is decided by [`policy`]. Without a
//! `[state]` table there is no ledger: the cap is counted with ListTasks (a soft cap) and an
//! event at the cap goes back to its queue as a retryable failure.

pub mod batch;
mod launch;
mod observe;
pub mod policy;
mod relaunch;
mod skip_missing;
mod waiting;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tracing::info;

use crate::config::Config;
use crate::error::Error;
use crate::event::{self, Event, Invocation};
use crate::handled::{Failure, Handled};
use crate::plan;
use crate::ports::{Objects, StateTable, Tasks, Topic, WaitQueue};
use crate::{routing, schedule};
pub use launch::launch;

/// The ports the launcher needs: ECS tasks, the ledger's table, its own queue (for events
/// that wait their turn), the alert topic (for runs that cannot be launched) and S3 object
/// heads (S3 Batch Operations tasks, `skip_missing`).
pub trait LaunchPorts: Tasks + StateTable + WaitQueue + Topic + Objects {}
impl<T: Tasks + StateTable + WaitQueue + Topic + Objects> LaunchPorts for T {}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Launched {
        job: String,
        task_arns: Vec<String>,
        capacity_provider: Option<String>,
    },
    AlreadyLaunched {
        job: String,
        task_arns: Vec<String>,
    },
    /// At the job's cap: the event was put back in line (its message acknowledged).
    Waiting {
        job: String,
        run_id: String,
    },
    Skipped {
        reason: String,
    },
}

/// A direct delivery's summary: how many events ended which way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub launched: usize,
    pub already_launched: usize,
    /// Events put back in line at their job's cap.
    pub waiting: usize,
    pub skipped: usize,
}

/// Handles one invocation payload (any delivery shape). Direct deliveries stop at the first
/// failure; in an SQS batch each message stands alone.
pub async fn handle(
    config: &Config,
    ports: &impl LaunchPorts,
    payload: &Value,
    now: DateTime<Utc>,
) -> Result<Handled<Summary>, Error> {
    match event::decode_invocation(payload)? {
        Invocation::Direct(events) => {
            let mut handled = Handled::new(false, Summary::default());
            for event in events? {
                match process(config, ports, &event, now).await {
                    Ok(outcome) => count(&mut handled, outcome),
                    Err(error) => {
                        handled.failed.push(Failure {
                            message_id: None,
                            error,
                        });
                        break;
                    }
                }
            }
            Ok(handled)
        }
        Invocation::SqsBatch(messages) => {
            let mut handled = Handled::new(true, Summary::default());
            'messages: for message in messages {
                let events = match message.events {
                    Ok(events) => events,
                    Err(error) => {
                        handled.failed.push(Failure {
                            message_id: Some(message.message_id),
                            error,
                        });
                        continue;
                    }
                };
                for event in &events {
                    match process(config, ports, event, now).await {
                        Ok(outcome) => count(&mut handled, outcome),
                        Err(error) => {
                            handled.failed.push(Failure {
                                message_id: Some(message.message_id),
                                error,
                            });
                            continue 'messages;
                        }
                    }
                }
            }
            Ok(handled)
        }
    }
}

fn count(handled: &mut Handled<Summary>, outcome: Outcome) {
    match outcome {
        Outcome::Launched { .. } => handled.summary.launched += 1,
        Outcome::AlreadyLaunched { .. } => handled.summary.already_launched += 1,
        Outcome::Waiting { .. } => handled.summary.waiting += 1,
        Outcome::Skipped { reason } => {
            handled.summary.skipped += 1;
            handled.skipped.push(reason);
        }
    }
}

/// Routes, plans and launches one event at time `now`.
pub async fn process(
    config: &Config,
    ports: &impl LaunchPorts,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    let plan = match event {
        Event::ObjectCreated(object) => match routing::route(config, object) {
            Some(trigger) => plan::plan_object(config, &trigger.job, object),
            None => return Ok(skipped(routing::no_match_reason(config, object))),
        },
        Event::ScheduleTick(tick) => match schedule::find(config, tick) {
            Some(schedule) => plan::plan_tick(config, schedule, tick),
            None => {
                return Ok(skipped(format!(
                    "no schedule named '{}' in the config",
                    tick.name
                )));
            }
        },
        Event::Submit(submit) => plan::plan_submit(config, submit),
        Event::Ignored(reason) => return Ok(skipped(reason.clone())),
        Event::Retry(request) => {
            return relaunch::relaunch(config, ports, event, request, now).await;
        }
        Event::TaskStateChange(_) => {
            return Err(Error::WrongFunction {
                function: "launcher",
                what: "ECS task state changes (that is the tracker's job)",
            });
        }
    };
    launch(config, ports, event, plan, now).await
}

fn skipped(reason: String) -> Outcome {
    info!(%reason, "skipped");
    Outcome::Skipped { reason }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod trace_tests;
