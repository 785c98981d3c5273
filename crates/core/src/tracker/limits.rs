//! The tracker's enforcement of `max_runtime` and `start_timeout` ([`crate::deadline`]): an
//! overdue task is stopped when any of its state changes arrives, and the sweep lists every
//! limited job's tasks so that a task that sends no event is stopped within a minute too.

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::TrackerPorts;
use crate::config::Config;
use crate::deadline::{self, Overdue, TaskClock};
use crate::ecs_limits::MAX_DESCRIBE_TASKS;
use crate::error::Error;
use crate::event::TaskStateChange;
use crate::job_env;
use crate::launcher::policy::stop_reason;
use crate::plan::started_by_of;

/// Stops the task of `change` when it is past its job's limit.
pub(super) async fn on_change(
    config: &Config,
    ports: &impl TrackerPorts,
    change: &TaskStateChange,
    now: DateTime<Utc>,
) -> Result<Option<Overdue>, Error> {
    let Some(job) = change
        .override_env(job_env::NAME)
        .and_then(|name| config.job(name))
    else {
        return Ok(None);
    };
    let settings = job.resolved(&config.defaults);
    let clock = TaskClock {
        last_status: &change.last_status,
        desired_status: change.desired_status.as_deref(),
        created_at: change.created_at,
        started_at: change.started_at,
    };
    let Some(overdue) = deadline::overdue(&settings, clock, now) else {
        return Ok(None);
    };
    let cluster = change
        .cluster_arn
        .as_deref()
        .or(settings.cluster.as_deref())
        .unwrap_or_default();
    stop(ports, cluster, &change.task_arn, &overdue).await?;
    if let Some(name) = change.override_env(job_env::NAME) {
        crate::metrics::scope::emit(crate::metrics::tracker::timeout(name, now));
    }
    Ok(Some(overdue))
}

/// Lists every limited job's tasks and stops the overdue ones. Returns how many it stopped.
pub(super) async fn sweep(
    config: &Config,
    ports: &impl TrackerPorts,
    now: DateTime<Utc>,
) -> Result<usize, Error> {
    let mut stopped = 0;
    for (name, job) in &config.jobs {
        let settings = job.resolved(&config.defaults);
        if !deadline::limited(&settings) {
            continue;
        }
        let cluster = settings.cluster.as_deref().unwrap_or_default();
        for started_by in started_by_of(config, name) {
            let arns = ports.list_tasks(cluster, &started_by).await?;
            for chunk in arns.chunks(MAX_DESCRIBE_TASKS) {
                for task in ports.describe_tasks(cluster, chunk).await? {
                    let clock = TaskClock {
                        last_status: &task.last_status,
                        desired_status: Some(task.desired_status.as_str()),
                        created_at: task.created_at,
                        started_at: task.started_at,
                    };
                    if let Some(overdue) = deadline::overdue(&settings, clock, now) {
                        stop(ports, cluster, &task.task_arn, &overdue).await?;
                        stopped += 1;
                        crate::metrics::scope::emit(crate::metrics::tracker::timeout(name, now));
                    }
                }
            }
        }
    }
    Ok(stopped)
}

async fn stop(
    ports: &impl TrackerPorts,
    cluster: &str,
    task_arn: &str,
    overdue: &Overdue,
) -> Result<(), Error> {
    let reason = overdue.reason();
    match ports
        .stop_task(cluster, task_arn, stop_reason(&reason))
        .await
    {
        Ok(()) => {
            info!(%task_arn, limit = overdue.limit.as_str(), after = %overdue.after, "overdue task stopped");
            Ok(())
        }
        Err(e) => {
            warn!(%task_arn, error = %e, "overdue task could not be stopped");
            Err(e.into())
        }
    }
}
