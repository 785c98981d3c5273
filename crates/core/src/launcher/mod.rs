//! The launcher's decision path: an invocation in, the ECS calls it takes made through the
//! [`Tasks`] port, what happened out. The launcher Lambda drives it with the ECS adapter;
//! `jobrunner plan` drives the very same code with the dry run's recorded world.
//!
//! Per event: route (or find the schedule), plan the RunTask request, then, through the port,
//! count the job's running tasks against its cap (ListTasks per `startedBy`), apply a
//! schedule's overlap policy (ListTasks, DescribeTasks, StopTask for `replace`), and run the
//! task on each capacity provider in turn until one places it. What each ECS answer means is
//! decided by [`policy`].

pub mod policy;

use serde::Serialize;
use serde_json::Value;
use tracing::info;

use crate::config::Config;
use crate::error::Error;
use crate::event::{self, Event, Invocation};
use crate::handled::{Failure, Handled};
use crate::plan::{self, LaunchPlan};
use crate::ports::Tasks;
use crate::{routing, schedule};
use policy::{Attempt, OverlapDecision};

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
    Skipped {
        reason: String,
    },
}

/// A direct delivery's summary: how many events ended which way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub launched: usize,
    pub already_launched: usize,
    pub skipped: usize,
}

/// Handles one invocation payload (any delivery shape). Direct deliveries stop at the first
/// failure; in an SQS batch each message stands alone.
pub async fn handle(
    config: &Config,
    ecs: &impl Tasks,
    payload: &Value,
) -> Result<Handled<Summary>, Error> {
    match event::decode_invocation(payload)? {
        Invocation::Direct(events) => {
            let mut handled = Handled::new(false, Summary::default());
            for event in events? {
                match process(config, ecs, &event).await {
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
                    match process(config, ecs, event).await {
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
        Outcome::Skipped { reason } => {
            handled.summary.skipped += 1;
            handled.skipped.push(reason);
        }
    }
}

/// Routes, plans and launches one event.
pub async fn process(config: &Config, ecs: &impl Tasks, event: &Event) -> Result<Outcome, Error> {
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
            return Err(Error::WrongFunction {
                function: "launcher",
                what: "ECS task state changes (that is the tracker's job)",
            });
        }
    };
    launch(ecs, &plan).await
}

/// Carries out a plan: cap, overlap, then each capacity provider in turn.
pub async fn launch(ecs: &impl Tasks, plan: &LaunchPlan) -> Result<Outcome, Error> {
    let Some(first) = plan.attempts.first() else {
        return Err(Error::Plan {
            job: plan.job.clone(),
            reason: "no launch attempt planned".into(),
        });
    };
    let cluster = first.cluster.as_str();

    if let Some(cap) = &plan.cap {
        let mut running = 0;
        for started_by in &cap.started_by {
            running += ecs.list_tasks(cluster, started_by).await?.len();
            if !policy::under_cap(cap.max_running, running) {
                return Err(Error::AtCap {
                    job: plan.job.clone(),
                    running: u32::try_from(running).unwrap_or(u32::MAX),
                    max_running: cap.max_running,
                });
            }
        }
    }

    if let Some(check) = &plan.overlap {
        let arns = ecs.list_tasks(cluster, &check.started_by).await?;
        let mut running = vec![];
        for chunk in arns.chunks(crate::ecs_limits::MAX_DESCRIBE_TASKS) {
            running.extend(ecs.describe_tasks(cluster, chunk).await?);
        }
        match policy::overlap(check.policy, &check.scheduled_time, &running) {
            OverlapDecision::AlreadyStarted(task_arns) => {
                info!(job = %plan.job, ?task_arns, "a task of this tick is already running (redelivery); nothing new launched");
                return Ok(Outcome::AlreadyLaunched {
                    job: plan.job.clone(),
                    task_arns,
                });
            }
            OverlapDecision::Skip { running } => {
                return Ok(skipped(format!(
                    "job '{}': previous run still going ({}); overlap = forbid",
                    plan.job,
                    running.join(", ")
                )));
            }
            OverlapDecision::Replace { stop } => {
                let reason = format!(
                    "jobrunner: replaced by the run scheduled for {}",
                    check.scheduled_time
                );
                for arn in &stop {
                    info!(task_arn = %arn, job = %plan.job, "stopping the previous run (overlap = replace)");
                    ecs.stop_task(cluster, arn, policy::stop_reason(&reason))
                        .await?;
                }
            }
            OverlapDecision::Launch => {}
        }
    }

    let mut capacity_reasons = vec![];
    for input in &plan.attempts {
        let provider = input
            .capacity_provider_strategy
            .first()
            .map(|s| s.capacity_provider.clone());
        let shown = provider.as_deref().unwrap_or("(launch type)");
        match policy::attempt(ecs.run_task(input).await?) {
            Attempt::Started(task_arns) => {
                info!(job = %plan.job, client_token = %input.client_token, ?task_arns, capacity_provider = shown, "task started");
                return Ok(Outcome::Launched {
                    job: plan.job.clone(),
                    task_arns,
                    capacity_provider: provider,
                });
            }
            Attempt::AlreadyStarted(task_arns) => {
                info!(job = %plan.job, client_token = %input.client_token, ?task_arns, "already started for this event (redelivery); nothing new launched");
                return Ok(Outcome::AlreadyLaunched {
                    job: plan.job.clone(),
                    task_arns,
                });
            }
            Attempt::NoCapacity(reason) => {
                tracing::warn!(job = %plan.job, capacity_provider = shown, %reason, "no capacity; trying the next capacity provider");
                capacity_reasons.push(format!(
                    "{}: {reason}",
                    provider.as_deref().unwrap_or("launch type")
                ));
            }
            Attempt::Failed(reason) => {
                return Err(Error::LaunchFailed {
                    job: plan.job.clone(),
                    reason,
                });
            }
        }
    }
    Err(Error::NoCapacity {
        job: plan.job.clone(),
        reason: capacity_reasons.join("; "),
    })
}

fn skipped(reason: String) -> Outcome {
    info!(%reason, "skipped");
    Outcome::Skipped { reason }
}

#[cfg(test)]
mod tests;
