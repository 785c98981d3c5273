//! A job's cap: slots taken with a conditional write (a hard cap, whatever the number of
//! concurrent launchers), reconciled against ListTasks so that a lost stop event cannot keep a
//! slot for more than a few minutes, and the line of events that wait their turn: each is put
//! back in the launcher's own queue with a delay (a new message, so waiting never uses up the
//! receive count) and its message acknowledged.
//!
//! Without a ledger, [`soft_cap`] counts the job's tasks with ListTasks, as before.

use chrono::{DateTime, Utc};
use tracing::info;

use super::launch::Identity;
use super::policy;
use super::{LaunchPorts, Outcome};
use crate::config::Config;
use crate::ecs_limits::MAX_DESCRIBE_TASKS;
use crate::error::Error;
use crate::event::{self, Event};
use crate::job_env;
use crate::ledger::slots::{Acquire, Slots};
use crate::ledger::{Ledger, Loaded, keys};
use crate::plan::ConcurrencyCap;
use crate::run::Run;

/// Seconds an event at the head of its job's line waits before it looks again.
pub const HEAD_OF_LINE_DELAY_SECONDS: u32 = 10;

/// What [`take_slot`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Slot {
    Taken,
    /// No slot: the event waits.
    Wait(Full),
}

/// Where a full job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Full {
    pub used: u32,
    pub max_running: u32,
    /// Whether the run holds a place in the job's line (it then looks again sooner).
    pub in_line: bool,
}

/// Counts the job's running tasks against its cap (no ledger: a soft cap).
pub(super) async fn soft_cap(
    ports: &impl LaunchPorts,
    cluster: &str,
    job: &str,
    cap: &ConcurrencyCap,
) -> Result<(), Error> {
    let mut running = 0;
    for started_by in &cap.started_by {
        running += ports.list_tasks(cluster, started_by).await?.len();
        if !policy::under_cap(cap.max_running, running) {
            return Err(Error::AtCap {
                job: job.into(),
                running: u32::try_from(running).unwrap_or(u32::MAX),
                max_running: cap.max_running,
            });
        }
    }
    Ok(())
}

/// Takes a slot of the job for the run, reconciling the slots with ListTasks when the job
/// looks full and the last reconciliation is over a minute old.
pub(super) async fn take_slot<P: LaunchPorts>(
    ports: &P,
    ledger: &Ledger<'_, P>,
    cluster: &str,
    cap: &ConcurrencyCap,
    (identity, attempt): (&Identity, u32),
    now: DateTime<Utc>,
) -> Result<Slot, Error> {
    let key = keys::slots_key(&identity.job);
    let loaded = ledger.load::<Slots>(&key).await?;
    // Would the run wait? Then square the slots with ECS first, when that is due.
    let mut preview = loaded.as_ref().map(|(s, _)| s.clone()).unwrap_or_default();
    let preview_decision = preview.acquire(
        &identity.run_id,
        1,
        identity.queued_at,
        cap.max_running,
        now,
    );
    let running = if matches!(preview_decision, Acquire::Wait { .. }) && preview.reconcile_due(now)
    {
        Some(running_runs(ports, cluster, cap).await?)
    } else {
        None
    };
    let mut decision = Acquire::Held;
    let mut released = vec![];
    let slots = ledger
        .update(&key, Some(loaded), now, |slots: &mut Option<Slots>| {
            let slots = slots.get_or_insert_with(Slots::default);
            let reconciled = running.as_ref().map(|running| {
                released = slots.reconcile(running, now);
            });
            decision = slots.acquire(
                &identity.run_id,
                attempt,
                identity.queued_at,
                cap.max_running,
                now,
            );
            reconciled.is_some()
                || match decision {
                    Acquire::Held => false,
                    Acquire::Granted => true,
                    Acquire::Wait { changed, .. } => changed,
                }
        })
        .await?;
    if !released.is_empty() {
        info!(job = %identity.job, ?released, "slots whose tasks are gone were released");
    }
    if (decision == Acquire::Granted || !released.is_empty())
        && let (Some(slots), Some(at)) = (&slots, crate::metrics::scope::now())
    {
        let gauge =
            crate::metrics::launcher::slots(&identity.job, slots.used(), cap.max_running, at);
        crate::metrics::scope::emit(gauge);
    }
    Ok(match decision {
        Acquire::Held | Acquire::Granted => Slot::Taken,
        Acquire::Wait { in_line, .. } => Slot::Wait(Full {
            used: slots.as_ref().map_or(0, Slots::used),
            max_running: cap.max_running,
            in_line,
        }),
    })
}

/// The run ids of the job's running tasks (`None` for tasks that carry none).
async fn running_runs(
    ports: &impl LaunchPorts,
    cluster: &str,
    cap: &ConcurrencyCap,
) -> Result<Vec<Option<String>>, Error> {
    let mut running = vec![];
    for started_by in &cap.started_by {
        let arns = ports.list_tasks(cluster, started_by).await?;
        for chunk in arns.chunks(MAX_DESCRIBE_TASKS) {
            running.extend(
                ports
                    .describe_tasks(cluster, chunk)
                    .await?
                    .iter()
                    .map(|task| task.env(job_env::RUN_ID).map(str::to_owned)),
            );
        }
    }
    Ok(running)
}

/// Puts the event back in line: the run is `waiting` in the ledger and the event goes back to
/// the launcher's queue with a delay. Without `[launcher] queue_url` the event fails back to
/// its own queue (retryable), as without a ledger.
pub(super) async fn wait<P: LaunchPorts>(
    config: &Config,
    ports: &P,
    ledger: &Ledger<'_, P>,
    event: &Event,
    (identity, loaded): (&Identity, Loaded<Run>),
    full: &Full,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    let reason = format!(
        "job '{}' is at its cap ({} of {} slots in use)",
        identity.job, full.used, full.max_running
    );
    ledger
        .update(
            &keys::run_key(&identity.run_id),
            Some(loaded),
            now,
            |run: &mut Option<Run>| {
                let created = run.is_none();
                let run = run.get_or_insert_with(|| identity.new_run(now));
                run.wait(&reason, now) || created
            },
        )
        .await?;
    let (Some(launcher), Some(document)) = (&config.launcher, event::encode(event)) else {
        return Err(Error::AtCap {
            job: identity.job.clone(),
            running: full.used,
            max_running: full.max_running,
        });
    };
    let delay = if full.in_line {
        HEAD_OF_LINE_DELAY_SECONDS.min(launcher.wait_seconds)
    } else {
        launcher.wait_seconds
    };
    ports
        .send(&launcher.queue_url, &document.to_string(), delay)
        .await?;
    info!(job = %identity.job, run_id = %identity.run_id, delay_seconds = delay, %reason, "waiting its turn: put back in line");
    Ok(Outcome::Waiting {
        job: identity.job.clone(),
        run_id: identity.run_id.clone(),
    })
}

/// Gives the run's slot back (a launch that failed, a skipped tick).
pub(super) async fn release<P: LaunchPorts>(
    config: &Config,
    ledger: &Ledger<'_, P>,
    (identity, attempt): (&Identity, u32),
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let Some(max_running) = config.job(&identity.job).and_then(|j| j.max_running) else {
        return Ok(());
    };
    let mut changed = false;
    let slots = ledger
        .update(
            &keys::slots_key(&identity.job),
            None,
            now,
            |slots: &mut Option<Slots>| {
                changed = slots
                    .as_mut()
                    .is_some_and(|s| s.release(&identity.run_id, attempt));
                changed
            },
        )
        .await?;
    if let (true, Some(slots), Some(at)) = (changed, &slots, crate::metrics::scope::now()) {
        let gauge = crate::metrics::launcher::slots(&identity.job, slots.used(), max_running, at);
        crate::metrics::scope::emit(gauge);
    }
    Ok(())
}
