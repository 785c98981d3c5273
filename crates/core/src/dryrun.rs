//! The dry run behind `jobrunner plan`: an event in, the AWS calls it would cause out, as JSON.
//! It runs the same decoding, routing and planning as the functions, and calls nothing.

use serde::Serialize;
use serde_json::Value;

use crate::config::{Config, Overlap};
use crate::error::Error;
use crate::event::{self, Event, Invocation};
use crate::plan::{self, LaunchPlan};
use crate::{routing, schedule};

/// `{"actions": [...], "skipped": [...]}`.
#[derive(Debug, Default, Serialize)]
pub struct DryRun {
    pub actions: Vec<Action>,
    pub skipped: Vec<Skipped>,
}

/// One AWS call, its input in the API's own JSON shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    pub service: &'static str,
    pub operation: &'static str,
    pub input: Value,
    /// What a live run would check first, or do instead in some cases.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub reason: String,
}

/// Plans what `payload` (any delivery shape) would cause. Input that is not a supported event
/// is an error; events that match nothing are `skipped`.
pub fn dry_run(config: &Config, payload: &Value) -> Result<DryRun, Error> {
    let mut out = DryRun::default();
    match event::decode_invocation(payload)? {
        Invocation::Direct(events) => {
            for event in events? {
                plan_event(config, &event, &mut out)?;
            }
        }
        Invocation::SqsBatch(messages) => {
            for message in messages {
                match message.events {
                    Ok(events) => {
                        for event in events {
                            if let Err(e) = plan_event(config, &event, &mut out) {
                                out.skipped.push(Skipped {
                                    reason: format!(
                                        "message {}: {e} (fails; the queue's DLQ receives it)",
                                        message.message_id
                                    ),
                                });
                            }
                        }
                    }
                    Err(e) => out.skipped.push(Skipped {
                        reason: format!(
                            "message {}: {e} (fails; the queue's DLQ receives it)",
                            message.message_id
                        ),
                    }),
                }
            }
        }
    }
    Ok(out)
}

fn plan_event(config: &Config, event: &Event, out: &mut DryRun) -> Result<(), Error> {
    match event {
        Event::ObjectCreated(object) => match routing::route(config, object) {
            Some(trigger) => out.actions.extend(run_task_actions(plan::plan_object(
                config,
                &trigger.job,
                object,
            )?)),
            None => out.skipped.push(Skipped {
                reason: routing::no_match_reason(config, object),
            }),
        },
        Event::ScheduleTick(tick) => match schedule::find(config, tick) {
            Some(schedule) => out
                .actions
                .extend(run_task_actions(plan::plan_tick(config, schedule, tick)?)),
            None => out.skipped.push(Skipped {
                reason: format!("no schedule named '{}' in the config", tick.name),
            }),
        },
        Event::TaskStateChange(change) => {
            let (actions, skipped) = crate::alert::dry_run(config, change);
            out.actions.extend(actions);
            out.skipped.extend(skipped);
        }
        Event::Ignored(reason) => out.skipped.push(Skipped {
            reason: reason.clone(),
        }),
    }
    Ok(())
}

fn run_task_actions(plan: LaunchPlan) -> Vec<Action> {
    let mut notes = vec![];
    if let Some(cap) = &plan.cap {
        notes.push(format!(
            "launches only while fewer than {} tasks run (ListTasks startedBy {}); otherwise the event waits in its queue",
            cap.max_running,
            cap.started_by.join(", ")
        ));
    }
    match plan.overlap.as_ref().map(|check| (check.policy, &check.started_by)) {
        Some((Overlap::Forbid, started_by)) => notes.push(format!(
            "overlap=forbid: skipped if a task startedBy {started_by} is running (live ListTasks decides)"
        )),
        Some((Overlap::Replace, started_by)) => notes.push(format!(
            "overlap=replace: running tasks startedBy {started_by} are stopped first (live ListTasks decides)"
        )),
        Some((Overlap::Allow, _)) | None => {}
    }
    for fallback in plan.attempts.iter().skip(1) {
        let provider = fallback
            .capacity_provider_strategy
            .first()
            .map(|s| s.capacity_provider.as_str())
            .unwrap_or("?");
        notes.push(format!(
            "on a capacity failure: retried on {provider} with clientToken {}",
            fallback.client_token
        ));
    }
    let first = plan.attempts.into_iter().next();
    first
        .map(|input| Action {
            service: "ecs",
            operation: "RunTask",
            input: serde_json::to_value(input).unwrap_or(Value::Null),
            notes,
        })
        .into_iter()
        .collect()
}
