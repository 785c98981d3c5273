//! The tracker function's decision path: an invocation of ECS Task State Change events in, the
//! run ledger updated and SNS alerts out, through the ports. The tracker Lambda drives it with
//! the AWS adapters; `jobrunner plan` drives the very same code with the dry run's recorded
//! world, so a batch's ledger writes, dedupe and digests show in the plan exactly as the
//! function does them.
//!
//! Per invocation: decode every message; record every state change of a jobrunner task in its
//! run ([`record`]; a stop also frees the run's slot) and stop it when it is past its job's
//! time limit ([`limits`]); on a scheduled tick, [`sweep`] for missed schedule ticks and
//! overdue tasks. Then keep the STOPPED changes (a run cancelled with `jobrunner run cancel`
//! is not alerted), collapse redeliveries
//! ([`dedupe`]), classify each stop, look earlier alerts up in the state table (with
//! `[state] table`: STOPPED is final, so a task is alerted at most once however many versions
//! of its stop arrive, in this invocation or a later one), describe each task definition once
//! for log links and essential containers, group the stops into one alert per job and class,
//! publish, and mark each alerted task in the state table.

use std::collections::HashMap;

mod limits;
mod record;
pub mod sweep;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use tracing::{debug, error, info, warn};

use crate::alert::{
    Class, StoppedTask, TaskDefinitionLookup, classify, dedupe, group, render, wants,
};
use crate::config::{Alerts, Config};
use crate::error::Error;
use crate::event::{self, Event, Invocation, TaskStateChange};
use crate::handled::{Failure, Handled};
use crate::ports::{Put, StateTable, TaskDefinitions, Tasks, Topic, WaitQueue};
use crate::run::CANCEL_REASON_PREFIX;
use record::Definitions;
pub use sweep::Sweep;

/// How long a "this task was alerted" mark stays in the state table: SQS's longest retention,
/// so a redelivery from the queue is always recognised.
pub const DEDUPE_TTL_DAYS: i64 = 14;

/// Prefix of the tracker's keys in the state table: `alert/<taskArn>`.
pub const DEDUPE_KEY_PREFIX: &str = "alert/";

/// The state-table key marking `task_arn` as alerted.
pub fn alerted_key(task_arn: &str) -> String {
    format!("{DEDUPE_KEY_PREFIX}{task_arn}")
}

/// What one invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// SNS messages published (a digest counts once).
    pub published: usize,
    /// Stopped tasks covered by those messages.
    pub alerted_tasks: usize,
    /// Stopped tasks whose class `notify_on` leaves out.
    pub quiet: usize,
    /// Deliveries skipped as duplicates (in this batch, or alerted by an earlier invocation).
    pub duplicates: usize,
    /// Tasks whose alert could not be published.
    pub failed: usize,
    /// State changes that moved a run forward in the ledger.
    pub recorded: usize,
    /// Overdue tasks stopped (`max_runtime`, `start_timeout`).
    pub timeouts: usize,
    /// Failed attempts whose run is retried (recorded, not alerted).
    pub retries: usize,
    /// What the sweep found, when the invocation was the tracker's scheduled tick.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Sweep>,
}

/// The ports the tracker needs: task definitions (log links, essential containers), the alert
/// topic, the state table (ledger, dedupe), ECS tasks (stopping overdue ones) and the
/// launcher's queue (retry requests).
pub trait TrackerPorts: TaskDefinitions + Topic + StateTable + Tasks + WaitQueue {}
impl<T: TaskDefinitions + Topic + StateTable + Tasks + WaitQueue> TrackerPorts for T {}

/// What the tracker works for: the `[alerts]` section (alerts) and the `[state]` table (the
/// ledger). With neither it has nothing to do (checked at init).
pub fn check(config: &Config) -> Result<(), Error> {
    if config.alerts.is_none() && config.state.is_none() {
        return Err(Error::Config {
            path: "alerts".into(),
            reason: "the tracker needs an [alerts] section with topic_arn, a [state] table for the run ledger, or both".into(),
        });
    }
    Ok(())
}

/// Handles one invocation payload at time `now`.
pub async fn handle(
    config: &Config,
    ports: &impl TrackerPorts,
    payload: &Value,
    now: DateTime<Utc>,
) -> Result<Handled<Summary>, Error> {
    check(config)?;
    let (batch, deliveries) = match event::decode_invocation(payload)? {
        Invocation::Direct(events) => (false, vec![(None, events)]),
        Invocation::SqsBatch(messages) => (
            true,
            messages
                .into_iter()
                .map(|m| (Some(m.message_id), m.events))
                .collect(),
        ),
    };
    let mut handled = Handled::new(batch, Summary::default());
    let mut changes = vec![];
    let mut sweep_due = false;
    let order: Vec<String> = deliveries.iter().filter_map(|(id, _)| id.clone()).collect();
    for (message_id, events) in deliveries {
        let accepted = events.and_then(|events| {
            events
                .into_iter()
                .map(|e| accept(e, &mut handled.skipped, &mut sweep_due))
                .collect::<Result<Vec<_>, _>>()
        });
        match accepted {
            Ok(accepted) => changes.extend(
                accepted
                    .into_iter()
                    .flatten()
                    .map(|c| (message_id.clone().unwrap_or_default(), c)),
            ),
            Err(error) if batch => handled.failed.push(Failure { message_id, error }),
            Err(error) => return Err(error),
        }
    }
    let mut definitions = Definitions::new();
    let mut histories: HashMap<String, Vec<String>> = HashMap::new();
    let mut stops = vec![];
    for (message_id, change) in changes {
        if !change.is_stopped() {
            match limits::on_change(config, ports, &change, now).await {
                Ok(Some(_)) => handled.summary.timeouts += 1,
                Ok(None) => {}
                Err(error) if batch => handled.failed.push(Failure {
                    message_id: Some(message_id.clone()),
                    error,
                }),
                Err(error) => return Err(error),
            }
        }
        let mut retrying = None;
        match record::record(config, ports, &mut definitions, &change, now).await {
            Ok(recorded) => {
                handled.summary.recorded += usize::from(recorded.run.is_some());
                if !recorded.history.is_empty() {
                    histories.insert(change.task_arn.clone(), recorded.history);
                }
                retrying = recorded.retry;
            }
            Err(error) if batch => handled.failed.push(Failure {
                message_id: Some(message_id.clone()),
                error,
            }),
            Err(error) => return Err(error),
        }
        let notify_on_retry = config.alerts.as_ref().is_some_and(|a| a.notify_on_retry);
        if let (Some(request), false) = (&retrying, notify_on_retry) {
            handled.summary.retries += 1;
            handled.skipped.push(format!(
                "task {} failed; attempt {} of run {} is due at {}: no alert",
                change.task_arn,
                request.attempt,
                request.run_id,
                request
                    .not_before
                    .to_rfc3339_opts(SecondsFormat::Secs, true)
            ));
            continue;
        }
        let cancelled = change
            .stopped_reason
            .as_deref()
            .is_some_and(|r| r.starts_with(CANCEL_REASON_PREFIX));
        if cancelled {
            handled.skipped.push(format!(
                "task {} was cancelled with jobrunner run cancel: no alert",
                change.task_arn
            ));
        } else if change.is_stopped() {
            stops.push((message_id, change));
        }
    }
    if sweep_due {
        let mut found = sweep::sweep(config, ports, now).await?;
        found.overdue_stopped = limits::sweep(config, ports, now).await?;
        handled.summary.timeouts += found.overdue_stopped;
        handled.summary.sweep = Some(found);
    }
    if let Some(alerts) = &config.alerts {
        let looked_up = (definitions, histories);
        alert_all(config, alerts, ports, stops, looked_up, now, &mut handled).await;
    }
    // Failures in the batch's own message order.
    handled.failed.sort_by_key(|f| {
        f.message_id
            .as_ref()
            .and_then(|id| order.iter().position(|o| o == id))
    });
    info!(summary = ?handled.summary, failed = handled.failed.len(), "alerts done");
    Ok(handled)
}

/// The task state changes of an event; a scheduled tick asks for a sweep; other events are
/// ignored or refused.
fn accept(
    event: Event,
    skipped: &mut Vec<String>,
    sweep_due: &mut bool,
) -> Result<Option<TaskStateChange>, Error> {
    match event {
        Event::TaskStateChange(change) => {
            debug!(task_arn = %change.task_arn, last_status = %change.last_status, "task state change");
            Ok(Some(*change))
        }
        Event::ScheduleTick(_) => {
            *sweep_due = true;
            Ok(None)
        }
        Event::Ignored(reason) => {
            info!(%reason, "ignored");
            skipped.push(reason);
            Ok(None)
        }
        Event::Retry(_) => Err(Error::WrongFunction {
            function: "tracker",
            what: "retry requests (that is the launcher's job)",
        }),
        Event::Submit(_) => Err(Error::WrongFunction {
            function: "tracker",
            what: "manual submits (that is the launcher's job)",
        }),
        Event::ObjectCreated(_) => Err(Error::WrongFunction {
            function: "tracker",
            what: "S3 Object Created events (that is the launcher's job)",
        }),
    }
}

/// Dedupes, classifies, groups and publishes; failures name the deliveries behind them.
async fn alert_all(
    config: &Config,
    alerts: &Alerts,
    ports: &impl TrackerPorts,
    stops: Vec<(String, TaskStateChange)>,
    (mut definitions, histories): (Definitions, HashMap<String, Vec<String>>),
    now: DateTime<Utc>,
    handled: &mut Handled<Summary>,
) {
    let received = stops.len();
    let unique = dedupe(stops);
    handled.summary.duplicates = received - unique.len();
    let remember = config.state.is_some();
    let mut tasks = vec![];
    let mut quiet = vec![];
    for (deliveries, change) in unique {
        // The task definition can only change a failure class (which containers are
        // essential): stops that cannot become an alert need no lookups.
        let first_guess = classify(&change, None).class;
        if !wants(alerts, first_guess)
            && !matches!(
                first_guess,
                Class::NonZeroExit | Class::Oom | Class::Unknown
            )
        {
            quiet.push(StoppedTask::new(
                config,
                change,
                TaskDefinitionLookup::NotLookedUp,
            ));
            continue;
        }
        if remember {
            let key = alerted_key(&change.task_arn);
            match ports.get(&key).await {
                Ok(Some(_)) => {
                    info!(%key, "already alerted by an earlier invocation (STOPPED is final): skipped");
                    handled.summary.duplicates += deliveries.len();
                    handled.skipped.push(format!(
                        "task {} stopped and was alerted before: no second alert",
                        change.task_arn
                    ));
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(%key, error = %e, "cannot tell whether this stop was alerted before: alerting (a duplicate beats a lost alert)");
                }
            }
        }
        let definition = record::definition(ports, &mut definitions, &change).await;
        let history = histories.get(&change.task_arn).cloned().unwrap_or_default();
        tasks.push(
            StoppedTask::new(config, change, definition)
                .with_deliveries(deliveries)
                .with_history(history),
        );
    }
    let (groups, not_wanted) = group(alerts, tasks);
    quiet.extend(not_wanted);
    handled.summary.quiet = quiet.len();
    let notify_on: Vec<&str> = alerts.notify_on.iter().map(|c| c.as_str()).collect();
    for task in &quiet {
        info!(task_arn = %task.change.task_arn, class = task.class().as_str(), name = task.origin.name(), "stopped; class not in alerts.notify_on: no alert");
        handled.skipped.push(format!(
            "task {} of {} stopped with class '{}', which alerts.notify_on ({}) leaves out: no alert",
            task.change.task_arn,
            task.origin.describe(),
            task.class().as_str(),
            notify_on.join(", ")
        ));
    }
    for group in groups {
        let publish = render(&group);
        let count = group.tasks.len();
        match ports.publish(&publish).await {
            Ok(message_id) => {
                handled.summary.published += 1;
                handled.summary.alerted_tasks += count;
                info!(%message_id, subject = %publish.subject, class = group.class.as_str(), name = %group.name, tasks = count, "alert published");
                if !remember {
                    continue;
                }
                for task in &group.tasks {
                    let key = alerted_key(&task.change.task_arn);
                    let data = serde_json::json!({
                        "class": task.class().as_str(),
                        "alerted_at": now.to_rfc3339_opts(SecondsFormat::Secs, true),
                    })
                    .to_string();
                    let put = Put {
                        key: &key,
                        data: &data,
                        expected: None,
                        expires_at: now + Duration::days(DEDUPE_TTL_DAYS),
                        now,
                        listing: None,
                    };
                    // A conflict means another invocation alerted it too: the mark is there.
                    if let Err(e) = ports.put(&put).await {
                        warn!(task_arn = %task.change.task_arn, error = %e, "alert sent, but not recorded: a redelivery may alert again");
                    }
                }
            }
            Err(e) => {
                handled.summary.failed += count;
                let deliveries: Vec<String> = group.deliveries().map(str::to_owned).collect();
                error!(subject = %publish.subject, ?deliveries, error = %e, "alert not published");
                let error = Error::from(e);
                if handled.batch {
                    handled
                        .failed
                        .extend(deliveries.into_iter().map(|id| Failure {
                            message_id: Some(id),
                            error: error.clone(),
                        }));
                } else {
                    handled.failed.push(Failure {
                        message_id: None,
                        error,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod ledger_tests;
#[cfg(test)]
mod tests;
