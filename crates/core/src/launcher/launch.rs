//! Carrying out one planned launch: the ledger, the cap, the overlap policy, each capacity
//! provider in turn, and the outcome written back to the ledger.

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::policy::{self, Attempt, OverlapDecision};
use super::waiting::{self, Slot};
use super::{LaunchPorts, Outcome, observe, skipped};
use crate::alert::{Class, UnstartedRun, render_unstarted, wants};
use crate::config::Config;
use crate::error::{CallError, Error};
use crate::event::Event;
use crate::ledger::{Ledger, ObjectPointer, ScheduleWatch, keys};
use crate::plan::LaunchPlan;
use crate::run::{Launched, Run, RunInput, RunState};
use crate::{schedule, token};

/// Who a run is, known before (and whatever) its plan.
#[derive(Debug, Clone)]
pub(super) struct Identity {
    pub run_id: String,
    pub job: String,
    pub input: RunInput,
    pub queued_at: DateTime<Utc>,
}

impl Identity {
    /// The identity of `event`'s run of `job`.
    fn of(config: &Config, event: &Event, job: &str) -> Option<Identity> {
        let (token, input, queued_at) = match event {
            Event::ObjectCreated(object) => (
                token::for_object(job, object),
                RunInput::S3 {
                    bucket: object.bucket.clone(),
                    key: object.key.clone(),
                    version_id: object.version_id.clone(),
                    etag: object.etag.clone(),
                    size: Some(object.size),
                },
                object.event_time,
            ),
            Event::ScheduleTick(tick) => {
                let schedule = schedule::find(config, tick)?;
                (
                    token::for_tick(&schedule.name, tick.scheduled_time),
                    RunInput::Schedule {
                        schedule: schedule.name.clone(),
                        scheduled_time: tick.scheduled_time,
                    },
                    tick.scheduled_time,
                )
            }
            Event::Submit(submit) => (
                token::for_submit(submit),
                RunInput::manual(submit),
                submit.submitted_at,
            ),
            Event::TaskStateChange(_) | Event::Ignored(_) | Event::Retry(_) => return None,
        };
        Some(Identity {
            run_id: token::run_id(&token),
            job: job.into(),
            input,
            queued_at,
        })
    }

    /// The identity of a run the ledger already holds.
    pub(super) fn of_run(run: &Run) -> Identity {
        Identity {
            run_id: run.run_id.clone(),
            job: run.job.clone(),
            input: run.input.clone(),
            queued_at: run.queued_at,
        }
    }

    pub(super) fn new_run(&self, now: DateTime<Utc>) -> Run {
        Run::new(
            &self.run_id,
            &self.job,
            self.input.clone(),
            self.queued_at,
            now,
        )
    }
}

/// Launches `event`'s planned run (or, when it could not be planned, records and reports
/// that).
pub async fn launch(
    config: &Config,
    ports: &impl LaunchPorts,
    event: &Event,
    plan: Result<LaunchPlan, Error>,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    let plan = match plan {
        Ok(plan) => plan,
        Err(error) => {
            if let Error::Plan { job, .. } = &error {
                observe::record(job, &Err(error.clone()), now, now);
            }
            if let (Error::Plan { job, reason }, Some(state)) = (&error, &config.state)
                && let Some(identity) = Identity::of(config, event, job)
            {
                let ledger = Ledger::new(ports, state);
                launch_failed(config, ports, &ledger, &identity, None, reason, now).await?;
            }
            return Err(error);
        }
    };
    let identity = Identity::of(config, event, &plan.job);
    launch_run(config, ports, event, plan, identity, now).await
}

/// Launches `plan` for the run `identity` (`None`: no ledger record is kept) with its trace
/// context, and hands what became of the event to the invocation's metric scope.
pub(super) async fn launch_run(
    config: &Config,
    ports: &impl LaunchPorts,
    event: &Event,
    mut plan: LaunchPlan,
    identity: Option<Identity>,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    let trace = crate::trace::for_launch(
        crate::metrics::scope::trace().as_ref(),
        &plan.run_id,
        plan.attempt,
    );
    crate::trace::apply(&mut plan, &trace);
    let job = plan.job.clone();
    let queued_at = identity
        .as_ref()
        .map(|i| i.queued_at)
        .or_else(|| observe::event_time(event))
        .unwrap_or(now);
    let outcome = launch_planned(config, ports, event, plan, identity, now).await;
    observe::record(&job, &outcome, queued_at, now);
    outcome
}

/// Launches `plan` for the run `identity` (`None`: no ledger record is kept).
async fn launch_planned(
    config: &Config,
    ports: &impl LaunchPorts,
    event: &Event,
    plan: LaunchPlan,
    identity: Option<Identity>,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    let ledger = config.state.as_ref().map(|state| Ledger::new(ports, state));
    let Some(first) = plan.attempts.first() else {
        return Err(Error::Plan {
            job: plan.job.clone(),
            reason: "no launch attempt planned".into(),
        });
    };
    let cluster = first.cluster.as_str();
    let (Some(ledger), Some(identity)) = (&ledger, identity) else {
        if let Some(cap) = &plan.cap {
            waiting::soft_cap(ports, cluster, &plan.job, cap).await?;
        }
        return match overlap(ports, &plan).await? {
            Some(outcome) => Ok(outcome),
            None => run(ports, &plan).await,
        };
    };

    // The ledger first: a run that already has its task is not launched again.
    let key = keys::run_key(&identity.run_id);
    let loaded = ledger.load::<Run>(&key).await?;
    if let Some((run, _)) = &loaded {
        // This attempt, or a later one, has its task: a redelivery (or a stale retry).
        let launched = run
            .attempts
            .iter()
            .filter(|a| a.number >= plan.attempt)
            .find_map(|a| a.task_arn.as_deref());
        if let Some(task_arn) = launched {
            info!(job = %plan.job, run_id = %run.run_id, attempt = plan.attempt, %task_arn, "run already launched (redelivery); nothing new launched");
            return Ok(Outcome::AlreadyLaunched {
                job: plan.job.clone(),
                task_arns: vec![task_arn.to_string()],
            });
        }
        if matches!(run.state, RunState::Cancelled | RunState::Skipped) {
            return Ok(skipped(format!(
                "run {} of job '{}' is {}: not launched",
                run.run_id, run.job, run.state
            )));
        }
    }
    if let RunInput::Schedule { schedule, .. } = &identity.input {
        record_tick(ledger, schedule, identity.queued_at, now).await?;
    }

    if let Some(cap) = &plan.cap {
        match waiting::take_slot(ports, ledger, cluster, cap, (&identity, plan.attempt), now)
            .await?
        {
            Slot::Taken => {}
            Slot::Wait(full) => {
                return waiting::wait(
                    config,
                    ports,
                    ledger,
                    event,
                    (&identity, loaded),
                    &full,
                    now,
                )
                .await;
            }
        }
    }

    if let Some(reason) =
        super::skip_missing::missing(config, ports, event, &identity, &loaded).await?
    {
        let run = (&identity, plan.attempt);
        return super::skip_missing::skip(config, ledger, run, loaded, &reason, now).await;
    }
    let outcome = match overlap(ports, &plan).await {
        Ok(None) => run(ports, &plan).await,
        Ok(Some(outcome)) => Ok(outcome),
        Err(error) => Err(error),
    };
    match &outcome {
        Ok(Outcome::Launched {
            task_arns,
            capacity_provider,
            ..
        }) => {
            record_launch(
                (ports, ledger),
                &plan,
                &identity,
                loaded,
                task_arns,
                capacity_provider.as_deref(),
                now,
            )
            .await?;
        }
        Ok(Outcome::AlreadyLaunched { task_arns, .. }) => {
            let ended = record_launch(
                (ports, ledger),
                &plan,
                &identity,
                loaded,
                task_arns,
                None,
                now,
            )
            .await?;
            // A duplicate that took a slot after the run's task had already stopped (and the
            // tracker had freed its slot) gives it back.
            if ended && plan.cap.is_some() {
                waiting::release(config, ledger, (&identity, plan.attempt), now).await?;
            }
        }
        Ok(Outcome::Skipped { reason }) => {
            ledger
                .update(&key, Some(loaded), now, |run: &mut Option<Run>| {
                    run.get_or_insert_with(|| identity.new_run(now))
                        .end_unlaunched(RunState::Skipped, reason, now)
                })
                .await?;
            waiting::release(config, ledger, (&identity, plan.attempt), now).await?;
        }
        Ok(Outcome::Waiting { .. }) => {}
        // ECS refusing RunTask itself (ClientException for a task definition that does not
        // exist or is inactive, an invalid parameter) is as permanent as a failures[] entry.
        Err(
            Error::LaunchFailed { reason, .. }
            | Error::Call(CallError::Rejected {
                operation: "RunTask",
                message: reason,
            }),
        ) => {
            waiting::release(config, ledger, (&identity, plan.attempt), now).await?;
            launch_failed(config, ports, ledger, &identity, Some(loaded), reason, now).await?;
        }
        Err(Error::NoCapacity { .. }) => {
            // The event comes back for another try: the slot is free for others meanwhile.
            waiting::release(config, ledger, (&identity, plan.attempt), now).await?;
        }
        Err(_) => {}
    }
    outcome
}

/// A schedule's overlap policy; `Some` when it decides the tick's outcome.
async fn overlap(ports: &impl LaunchPorts, plan: &LaunchPlan) -> Result<Option<Outcome>, Error> {
    let Some(check) = &plan.overlap else {
        return Ok(None);
    };
    let cluster = plan.attempts[0].cluster.as_str();
    let arns = ports.list_tasks(cluster, &check.started_by).await?;
    let mut running = vec![];
    for chunk in arns.chunks(crate::ecs_limits::MAX_DESCRIBE_TASKS) {
        running.extend(ports.describe_tasks(cluster, chunk).await?);
    }
    match policy::overlap(check.policy, &check.scheduled_time, &running) {
        OverlapDecision::AlreadyStarted(task_arns) => {
            info!(job = %plan.job, ?task_arns, "a task of this tick is already running (redelivery); nothing new launched");
            Ok(Some(Outcome::AlreadyLaunched {
                job: plan.job.clone(),
                task_arns,
            }))
        }
        OverlapDecision::Skip { running } => Ok(Some(skipped(format!(
            "job '{}': previous run still going ({}); overlap = forbid",
            plan.job,
            running.join(", ")
        )))),
        OverlapDecision::Replace { stop } => {
            let reason = format!(
                "jobrunner: replaced by the run scheduled for {}",
                check.scheduled_time
            );
            for arn in &stop {
                info!(task_arn = %arn, job = %plan.job, "stopping the previous run (overlap = replace)");
                ports
                    .stop_task(cluster, arn, policy::stop_reason(&reason))
                    .await?;
            }
            Ok(None)
        }
        OverlapDecision::Launch => Ok(None),
    }
}

/// Runs the task on each capacity provider in turn until one places it.
async fn run(ports: &impl LaunchPorts, plan: &LaunchPlan) -> Result<Outcome, Error> {
    let mut capacity_reasons = vec![];
    for input in &plan.attempts {
        let provider = input
            .capacity_provider_strategy
            .first()
            .map(|s| s.capacity_provider.clone());
        let shown = provider.as_deref().unwrap_or("(launch type)");
        let answer = ports.run_task(input).await?;
        crate::metrics::scope::mark_answered();
        match policy::attempt(answer) {
            Attempt::Started(task_arns) => {
                let traceparent = observe::traceparent(input);
                info!(job = %plan.job, run_id = %plan.run_id, traceparent, client_token = %input.client_token, ?task_arns, capacity_provider = shown, "task started");
                return Ok(Outcome::Launched {
                    job: plan.job.clone(),
                    task_arns,
                    capacity_provider: provider,
                });
            }
            Attempt::AlreadyStarted(task_arns) => {
                info!(job = %plan.job, run_id = %plan.run_id, client_token = %input.client_token, ?task_arns, "already started for this event (redelivery); nothing new launched");
                return Ok(Outcome::AlreadyLaunched {
                    job: plan.job.clone(),
                    task_arns,
                });
            }
            Attempt::NoCapacity(reason) => {
                warn!(job = %plan.job, capacity_provider = shown, %reason, "no capacity; trying the next capacity provider");
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

/// The run's task in the ledger, and, for an object, the key's latest run. Returns whether the
/// attempt's task has already stopped (the tracker recorded it first).
async fn record_launch<P: LaunchPorts>(
    (ledger_ports, ledger): (&P, &Ledger<'_, P>),
    plan: &LaunchPlan,
    identity: &Identity,
    loaded: crate::ledger::Loaded<Run>,
    task_arns: &[String],
    capacity_provider: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let Some(task_arn) = task_arns.first() else {
        return Ok(false);
    };
    let input = &plan.attempts[0];
    let launched = Launched {
        attempt: plan.attempt,
        client_token: &input.client_token,
        task_arn,
        capacity_provider,
        cpu: input.overrides.cpu.as_deref().and_then(|c| c.parse().ok()),
        memory: input
            .overrides
            .memory
            .as_deref()
            .and_then(|m| m.parse().ok()),
    };
    let run = ledger
        .update(
            &keys::run_key(&identity.run_id),
            Some(loaded),
            now,
            |run: &mut Option<Run>| {
                let run = run.get_or_insert_with(|| identity.new_run(now));
                let before = run.clone();
                run.launched(&launched, now);
                *run != before
            },
        )
        .await?;
    let ended = run.as_ref().is_some_and(|r| {
        r.attempts
            .iter()
            .any(|a| a.number == plan.attempt && a.stopped_at.is_some())
    });
    // Cancelled while it launched (`jobrunner run cancel` found no task yet): stop it now.
    if let Some(run) = run.filter(|r| r.state == RunState::Cancelled) {
        let reason = run.reason.clone().unwrap_or_else(|| "cancelled".into());
        let reason = format!("jobrunner: {reason}");
        info!(run_id = %run.run_id, %task_arn, "run was cancelled while it launched: stopping its task");
        ledger_ports
            .stop_task(&input.cluster, task_arn, policy::stop_reason(&reason))
            .await?;
    }
    if let RunInput::S3 { bucket, key, .. } = &identity.input {
        let pointer = ObjectPointer {
            run_id: identity.run_id.clone(),
            event_time: identity.queued_at,
        };
        ledger
            .update(
                &keys::object_key(&identity.job, bucket, key),
                None,
                now,
                |current: &mut Option<ObjectPointer>| match current {
                    Some(c) if c.run_id == pointer.run_id || c.event_time > pointer.event_time => {
                        false
                    }
                    _ => {
                        *current = Some(pointer.clone());
                        true
                    }
                },
            )
            .await?;
    }
    Ok(ended)
}

/// Notes that a tick of `schedule` arrived (what the sweep compares with the expression).
async fn record_tick<P: LaunchPorts>(
    ledger: &Ledger<'_, P>,
    schedule: &str,
    tick: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    ledger
        .update(
            &keys::schedule_key(schedule),
            None,
            now,
            |watch: &mut Option<ScheduleWatch>| {
                let watch = watch.get_or_insert_with(|| ScheduleWatch {
                    last_tick: None,
                    watched_since: now,
                    missed_until: None,
                });
                if watch.last_tick.is_some_and(|last| last >= tick) {
                    return false;
                }
                watch.last_tick = Some(tick);
                true
            },
        )
        .await?;
    Ok(())
}

/// A run that cannot be launched: `failed` in the ledger and, the first time, a
/// `launch_failed` alert. The event still fails (to its dead-letter queue, to be redriven
/// once the cause is fixed).
async fn launch_failed<P: LaunchPorts>(
    config: &Config,
    ports: &P,
    ledger: &Ledger<'_, P>,
    identity: &Identity,
    loaded: Option<crate::ledger::Loaded<Run>>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let mut newly_failed = false;
    ledger
        .update(
            &keys::run_key(&identity.run_id),
            loaded,
            now,
            |run: &mut Option<Run>| {
                let run = run.get_or_insert_with(|| identity.new_run(now));
                let changed = run.end_unlaunched(RunState::Failed, reason, now);
                newly_failed = changed;
                changed
            },
        )
        .await?;
    let Some(alerts) = &config.alerts else {
        return Ok(());
    };
    if !newly_failed || !wants(alerts, Class::LaunchFailed) {
        return Ok(());
    }
    let input = identity.input.describe();
    let publish = render_unstarted(&UnstartedRun {
        class: Class::LaunchFailed,
        job: &identity.job,
        input: &input,
        run_id: Some(&identity.run_id),
        reason,
        time: now,
    });
    match ports.publish(&publish).await {
        Ok(message_id) => {
            info!(%message_id, job = %identity.job, run_id = %identity.run_id, "launch_failed alert published");
        }
        Err(e) => {
            warn!(job = %identity.job, run_id = %identity.run_id, error = %e, "launch_failed alert not published");
        }
    }
    Ok(())
}
