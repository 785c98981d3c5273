//! The tracker's sweep, run on its one-minute schedule: a schedule tick that produced no run
//! within `[alerts] missed_schedule_after` (a deleted or disabled rule, a throttled target)
//! becomes a `missed_schedule` alert. The launcher notes every tick it receives in the
//! schedule's watch item; the sweep compares that with the schedule's own expression.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;
use tracing::{info, warn};

use super::TrackerPorts;
use crate::alert::{Class, UnstartedRun, render_unstarted, wants};
use crate::config::Config;
use crate::error::Error;
use crate::ledger::{Ledger, ScheduleWatch, keys};
use crate::{schedule, token};

/// Most missed ticks one sweep reports per schedule (one alert names them all).
const MAX_MISSED_PER_SWEEP: usize = 100;

/// What a sweep found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sweep {
    /// Schedules whose ticks were compared with their expression.
    pub schedules_checked: usize,
    /// Ticks newly found missed.
    pub missed_ticks: usize,
    /// `missed_schedule` alerts published.
    pub alerts: usize,
    /// Overdue tasks stopped by the sweep.
    pub overdue_stopped: usize,
}

/// Compares every schedule's recorded ticks with its expression at `now`.
pub async fn sweep(
    config: &Config,
    ports: &impl TrackerPorts,
    now: DateTime<Utc>,
) -> Result<Sweep, Error> {
    let mut found = Sweep::default();
    let (Some(state), Some(alerts)) = (&config.state, &config.alerts) else {
        return Ok(found);
    };
    let ledger = Ledger::new(ports, state);
    let grace =
        Duration::from_std(alerts.missed_schedule_after.duration()).unwrap_or(Duration::MAX);
    for trigger in &config.triggers.schedule {
        if trigger.expression.is_none() {
            continue;
        }
        found.schedules_checked += 1;
        let mut missed = vec![];
        ledger
            .update(
                &keys::schedule_key(&trigger.name),
                None,
                now,
                |watch: &mut Option<ScheduleWatch>| {
                    missed.clear();
                    let created = watch.is_none();
                    let watch = watch.get_or_insert_with(|| ScheduleWatch {
                        last_tick: None,
                        watched_since: now,
                        missed_until: None,
                    });
                    let mut from = watch.checked_until();
                    while missed.len() < MAX_MISSED_PER_SWEEP {
                        let Some(&next) = schedule::next_fire_times(trigger, from, 1).first()
                        else {
                            break;
                        };
                        if next + grace > now {
                            break;
                        }
                        missed.push(next);
                        from = next;
                    }
                    if let Some(&last) = missed.last() {
                        watch.missed_until = Some(last);
                    }
                    created || !missed.is_empty()
                },
            )
            .await?;
        let Some(&first) = missed.first() else {
            continue;
        };
        found.missed_ticks += missed.len();
        crate::metrics::scope::emit(crate::metrics::tracker::missed_schedules(
            &trigger.job,
            missed.len(),
            now,
        ));
        let tick = first.to_rfc3339_opts(SecondsFormat::Secs, true);
        warn!(schedule = %trigger.name, job = %trigger.job, first_missed = %tick, count = missed.len(), "schedule ticks produced no run");
        if !wants(alerts, Class::MissedSchedule) {
            continue;
        }
        let run_id = token::run_id(&token::for_tick(&trigger.name, first));
        let reason = match missed.len() {
            1 => format!(
                "no tick of schedule '{}' reached the launcher within {} of its time",
                trigger.name, alerts.missed_schedule_after
            ),
            n => format!(
                "{n} ticks of schedule '{}' from {tick} reached no launcher within {}",
                trigger.name, alerts.missed_schedule_after
            ),
        };
        let input = format!("{}@{tick}", trigger.name);
        let publish = render_unstarted(&UnstartedRun {
            class: Class::MissedSchedule,
            job: &trigger.job,
            input: &input,
            run_id: Some(&run_id),
            reason: &reason,
            time: now,
        });
        match ports.publish(&publish).await {
            Ok(message_id) => {
                found.alerts += 1;
                info!(%message_id, schedule = %trigger.name, "missed_schedule alert published");
            }
            Err(e) => {
                warn!(schedule = %trigger.name, error = %e, "missed_schedule alert not published");
                return Err(e.into());
            }
        }
    }
    Ok(found)
}
