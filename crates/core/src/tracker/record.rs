//! The tracker's ledger work: every state change of a jobrunner task moves its run forward
//! (RUNNING records `started`, STOPPED the outcome, exit codes, class, log link and cost),
//! and a stop gives the run's slot back. Tasks carry their run in `JOB_RUN_ID` and
//! `JOB_ATTEMPT`; a run the ledger has no record of is rebuilt from the task's `JOB_*`
//! variables.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::TrackerPorts;
use crate::alert::{TaskDefinitionLookup, classify, console_url, log_links};
use crate::config::Config;
use crate::error::Error;
use crate::event::RetryRequest;
use crate::event::TaskStateChange;
use crate::job_env;
use crate::ledger::{Ledger, Slots, keys};
use crate::retry::{self, Decision, Failed};
use crate::run::{Run, RunInput, RunState};

/// Task definitions looked up in this invocation, shared with the alerts.
pub(super) type Definitions = HashMap<String, TaskDefinitionLookup>;

/// Looks `change`'s task definition up once per invocation.
pub(super) async fn definition(
    ports: &impl TrackerPorts,
    definitions: &mut Definitions,
    change: &TaskStateChange,
) -> TaskDefinitionLookup {
    let Some(arn) = &change.task_definition_arn else {
        return TaskDefinitionLookup::NotLookedUp;
    };
    if let Some(known) = definitions.get(arn) {
        return known.clone();
    }
    let lookup = match ports.describe_task_definition(arn).await {
        Ok(info) => TaskDefinitionLookup::Found(info),
        Err(e) => {
            warn!(task_definition = %arn, error = %e, "task definition lookup failed: no log links");
            TaskDefinitionLookup::Failed(e.to_string())
        }
    };
    definitions.insert(arn.clone(), lookup.clone());
    lookup
}

/// What recording a state change did.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Recorded {
    /// The run as it now is, when the change moved it forward.
    pub run: Option<Run>,
    /// The attempt that follows this stop (a retry), when one is planned.
    pub retry: Option<RetryRequest>,
    /// A stop that ends the run after retries: its attempts, for the final alert.
    pub history: Vec<String>,
}

/// Records `change` in its run's ledger record (and frees the run's slot on STOPPED). On a
/// failed stop, decides whether the run is retried ([`crate::retry`]): the next attempt is
/// planned in the same conditional write as the stop, then requested from the launcher's
/// queue, so a crash in between loses nothing (the redelivered stop requests it again).
pub(super) async fn record(
    config: &Config,
    ports: &impl TrackerPorts,
    definitions: &mut Definitions,
    change: &TaskStateChange,
    now: DateTime<Utc>,
) -> Result<Recorded, Error> {
    let (Some(state), Some(run_id), Some(job)) = (
        &config.state,
        change.override_env(job_env::RUN_ID),
        change.override_env(job_env::NAME),
    ) else {
        return Ok(Recorded::default());
    };
    let job_config = config.job(job);
    let interruptions: u32 = change
        .override_env(job_env::INTERRUPTIONS)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let ledger = Ledger::new(ports, state);
    let attempt: u32 = change
        .override_env(job_env::ATTEMPT)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let stopped = change.is_stopped();
    let (classification, log_url) = if stopped {
        let lookup = definition(ports, definitions, change).await;
        let info = lookup.info();
        let url = info
            .and_then(|info| log_links(change, info).into_iter().next())
            .map(|link| link.url)
            .or_else(|| console_url(change));
        (Some(classify(change, info)), url)
    } else {
        (None, None)
    };
    let mut taken = false;
    let mut decision = None;
    let mut before = None;
    let run = ledger
        .update(
            &keys::run_key(run_id),
            None,
            now,
            |run: &mut Option<Run>| {
                before = run.clone();
                if run.is_none() {
                    let Some(input) = RunInput::from_task(change) else {
                        return false;
                    };
                    let queued_at = queued_at(&input, change).unwrap_or(now);
                    *run = Some(Run::new(run_id, job, input, queued_at, now));
                }
                let Some(run) = run.as_mut() else {
                    return false;
                };
                taken = run.observe(
                    attempt,
                    change,
                    classification.as_ref(),
                    log_url.clone(),
                    config.prices.as_ref(),
                    now,
                );
                decision = None;
                let failed = matches!(run.state, RunState::Failed | RunState::TimedOut);
                if let (true, true, Some(job), Some(c)) =
                    (taken, failed, job_config, classification.as_ref())
                {
                    let settings = job.resolved(&config.defaults);
                    let attempt_failed = Failed {
                        class: c.class,
                        exit_code: c.exit_code,
                        attempt,
                        interruptions,
                        cpu: change.cpu.as_deref().and_then(|v| v.parse().ok()),
                        memory: change.memory.as_deref().and_then(|v| v.parse().ok()),
                    };
                    let decided = retry::decide(job, &settings, &attempt_failed, run_id);
                    if let Decision::Retry(next) = &decided {
                        let due = now + chrono::Duration::from_std(next.delay).unwrap_or_default();
                        run.plan_retry(next, due, now);
                    }
                    decision = Some(decided);
                }
                taken
            },
        )
        .await?;
    if let (true, Some(after)) = (taken, &run) {
        let documents = crate::metrics::tracker::run_changed(
            before.as_ref(),
            after,
            attempt,
            change.created_at,
            now,
        );
        crate::metrics::scope::emit_all(documents);
    }
    match &run {
        Some(run) if taken => {
            info!(run_id = %run.run_id, job = %run.job, state = %run.state, task_arn = %change.task_arn, last_status = %change.last_status, "run updated");
        }
        Some(run) => {
            info!(run_id = %run.run_id, task_arn = %change.task_arn, version = ?change.version, "state change already recorded (duplicate or out of order)");
        }
        None => {
            warn!(%run_id, task_arn = %change.task_arn, "task names a run but carries no readable JOB_* input: not recorded");
        }
    }
    if let (true, Some(max_running)) = (stopped, config.job(job).and_then(|j| j.max_running)) {
        let mut released = false;
        let slots = ledger
            .update(
                &keys::slots_key(job),
                None,
                now,
                |slots: &mut Option<Slots>| {
                    released = slots.as_mut().is_some_and(|s| s.release(run_id, attempt));
                    released
                },
            )
            .await?;
        if released {
            info!(%run_id, %job, "slot released");
            if let Some(slots) = &slots {
                let gauge = crate::metrics::launcher::slots(job, slots.used(), max_running, now);
                crate::metrics::scope::emit(gauge);
            }
        }
    }
    // The planned next attempt, new or (for a redelivered stop) planned before and not yet
    // launched: request it.
    let planned = run.as_ref().and_then(|run| {
        run.attempts
            .iter()
            .find(|a| a.number == attempt + 1 && a.is_planned())
            .map(|a| RetryRequest {
                run_id: run.run_id.clone(),
                attempt: a.number,
                not_before: a.due_at.unwrap_or(now),
            })
    });
    if let (true, Some(request)) = (stopped, &planned) {
        request_retry(config, ports, request, now).await?;
    }
    let history = match (&decision, &run) {
        (Some(Decision::Final(why)), Some(run)) if run.attempts.len() > 1 => run
            .attempts
            .iter()
            .map(|a| a.describe())
            .chain([why.clone()])
            .collect(),
        _ => vec![],
    };
    if let Some(Decision::Final(why)) = &decision {
        info!(%run_id, %job, %why, "no further attempt");
    }
    Ok(Recorded {
        // Only a change that moved the run forward counts as recorded.
        run: run.filter(|_| taken),
        retry: planned.filter(|_| stopped),
        history,
    })
}

/// Sends the retry request to the launcher's queue, delayed until it is due (at most SQS's 15
/// minutes: the launcher sends an early request back for the rest).
async fn request_retry(
    config: &Config,
    ports: &impl TrackerPorts,
    request: &RetryRequest,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let Some(launcher) = &config.launcher else {
        return Err(Error::Config {
            path: "launcher.queue_url".into(),
            reason: "a retry is requested through the launcher's queue".into(),
        });
    };
    let delay = (request.not_before - now).num_seconds().clamp(0, 900);
    let delay = u32::try_from(delay).unwrap_or(900);
    ports
        .send(
            &launcher.queue_url,
            &request.to_document().to_string(),
            delay,
        )
        .await?;
    info!(run_id = %request.run_id, attempt = request.attempt, delay_seconds = delay, "retry requested");
    Ok(())
}

/// A rebuilt run's place in line: its event's time.
fn queued_at(input: &RunInput, change: &TaskStateChange) -> Option<DateTime<Utc>> {
    match input {
        RunInput::Schedule { scheduled_time, .. } => Some(*scheduled_time),
        RunInput::Manual { submitted_at, .. } => Some(*submitted_at),
        RunInput::S3 { .. } => change
            .override_env(job_env::EVENT_TIME)
            .and_then(|t| t.parse().ok())
            .or(change.created_at),
    }
}
