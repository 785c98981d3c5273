//! Launching a retry: the tracker decided that a run's next attempt is due and sent a
//! [`RetryRequest`] to the launcher's queue. The attempt's size, capacity and due time are in
//! the run's ledger record; its requests are the run's first plan rewritten by
//! [`retry::plan_attempt`]. A request that arrives before the attempt is due goes back to the
//! queue for the rest of the delay (SQS delays a message at most 15 minutes).

use chrono::{DateTime, Utc};
use tracing::info;

use super::launch::{Identity, launch_run};
use super::{LaunchPorts, Outcome, skipped};
use crate::config::Config;
use crate::error::Error;
use crate::event::{Event, ObjectCreated, RetryRequest, ScheduleTick, TickSource};
use crate::ledger::{Ledger, keys};
use crate::plan::{self, LaunchPlan};
use crate::retry::{self, NextAttempt};
use crate::run::{Run, RunInput};

/// SQS's longest message delay.
const MAX_DELAY_SECONDS: i64 = 900;

/// Launches attempt `request.attempt` of its run when it is due.
pub(super) async fn relaunch(
    config: &Config,
    ports: &impl LaunchPorts,
    event: &Event,
    request: &RetryRequest,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    let Some(state) = &config.state else {
        return Err(Error::Config {
            path: "state".into(),
            reason: "a retry request needs the run ledger ([state] table)".into(),
        });
    };
    let ledger = Ledger::new(ports, state);
    let Some((run, _)) = ledger.load::<Run>(&keys::run_key(&request.run_id)).await? else {
        return Err(Error::MalformedEvent(format!(
            "retry of run {}: no such run in the ledger",
            request.run_id
        )));
    };
    if run.state.is_final() {
        return Ok(skipped(format!(
            "run {} is {}: attempt {} not launched",
            run.run_id, run.state, request.attempt
        )));
    }
    let Some(planned) = run.attempts.iter().find(|a| a.number == request.attempt) else {
        return Ok(skipped(format!(
            "run {} has no attempt {} planned",
            run.run_id, request.attempt
        )));
    };
    let due = planned.due_at.unwrap_or(request.not_before);
    let early = (due - now).num_seconds();
    if early > 0 && planned.task_arn.is_none() {
        let Some(launcher) = &config.launcher else {
            return Err(Error::Config {
                path: "launcher.queue_url".into(),
                reason: "a retry waits its delay in the launcher's queue".into(),
            });
        };
        let delay = u32::try_from(early.min(MAX_DELAY_SECONDS)).unwrap_or(900);
        let document = request.to_document().to_string();
        ports.send(&launcher.queue_url, &document, delay).await?;
        info!(run_id = %run.run_id, attempt = request.attempt, delay_seconds = delay, "retry not yet due: back in the queue");
        return Ok(Outcome::Waiting {
            job: run.job.clone(),
            run_id: run.run_id.clone(),
        });
    }
    let first = first_plan(config, &run)?;
    let base_token = run
        .attempts
        .iter()
        .find(|a| a.number == 1)
        .and_then(|a| a.client_token.clone())
        .unwrap_or_else(|| first.attempts[0].client_token.clone());
    let next = NextAttempt {
        attempt: planned.number,
        interruptions: planned.interruptions,
        delay: std::time::Duration::ZERO,
        cpu: planned.cpu,
        memory: planned.memory,
        capacity_provider: planned.only_provider.clone(),
        why: planned.why.clone().unwrap_or_default(),
    };
    let plan = retry::plan_attempt(&first, &run.run_id, &base_token, &next);
    launch_run(
        config,
        ports,
        event,
        plan,
        Some(Identity::of_run(&run)),
        now,
    )
    .await
}

/// The plan of the run's first attempt, from its recorded input.
fn first_plan(config: &Config, run: &Run) -> Result<LaunchPlan, Error> {
    match &run.input {
        RunInput::S3 {
            bucket,
            key,
            version_id,
            etag,
            size,
        } => plan::plan_object(
            config,
            &run.job,
            &ObjectCreated {
                bucket: bucket.clone(),
                key: key.clone(),
                size: size.unwrap_or_default(),
                etag: etag.clone(),
                version_id: version_id.clone(),
                sequencer: None,
                event_time: run.queued_at,
            },
        ),
        RunInput::Manual { .. } => match run.input.to_submit(&run.job) {
            Some(submit) => plan::plan_submit(config, &submit),
            None => Err(Error::Plan {
                job: run.job.clone(),
                reason: "the manual run's record lacks its input".into(),
            }),
        },
        RunInput::Schedule {
            schedule,
            scheduled_time,
        } => {
            let trigger = config
                .triggers
                .schedule
                .iter()
                .find(|s| &s.name == schedule)
                .ok_or_else(|| Error::Plan {
                    job: run.job.clone(),
                    reason: format!("schedule '{schedule}' is no longer in the config"),
                })?;
            let tick = ScheduleTick {
                name: schedule.clone(),
                scheduled_time: *scheduled_time,
                source: TickSource::Scheduler { arn: None },
            };
            plan::plan_tick(config, trigger, &tick)
        }
    }
}
