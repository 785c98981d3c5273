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
use crate::event::TaskStateChange;
use crate::job_env;
use crate::ledger::{Ledger, Slots, keys};
use crate::run::{Run, RunInput};

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

/// Records `change` in its run's ledger record (and frees the run's slot on STOPPED).
/// Returns the run as it now is when the change moved it forward; `None` for a duplicate or
/// late change, and for tasks jobrunner did not launch.
pub(super) async fn record(
    config: &Config,
    ports: &impl TrackerPorts,
    definitions: &mut Definitions,
    change: &TaskStateChange,
    now: DateTime<Utc>,
) -> Result<Option<Run>, Error> {
    let (Some(state), Some(run_id), Some(job)) = (
        &config.state,
        change.override_env(job_env::RUN_ID),
        change.override_env(job_env::NAME),
    ) else {
        return Ok(None);
    };
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
    let run = ledger
        .update(
            &keys::run_key(run_id),
            None,
            now,
            |run: &mut Option<Run>| {
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
                taken
            },
        )
        .await?;
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
    if stopped && config.job(job).and_then(|j| j.max_running).is_some() {
        let mut released = false;
        ledger
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
        }
    }
    // Only a change that moved the run forward counts as recorded.
    Ok(run.filter(|_| taken))
}

/// A rebuilt run's place in line: its event's time.
fn queued_at(input: &RunInput, change: &TaskStateChange) -> Option<DateTime<Utc>> {
    match input {
        RunInput::Schedule { scheduled_time, .. } => Some(*scheduled_time),
        RunInput::S3 { .. } => change
            .override_env(job_env::EVENT_TIME)
            .and_then(|t| t.parse().ok())
            .or(change.created_at),
    }
}
