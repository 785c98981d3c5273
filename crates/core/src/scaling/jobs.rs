//! Jobs mode (`[workers.<name>] mode = "jobs"`): the scaler launches standalone tasks for the
//! backlog instead of setting a service's `desiredCount`, like KEDA's ScaledJob.
//!
//! Each sample, the backlog (visible + in flight, + delayed with `count_delayed`) needs
//! `ceil(backlog / messages_per_task)` tasks, at most the `max_tasks` in force; the worker's
//! tasks already listed (ListTasks by `startedBy jobrunner/worker/<name>`, desired status
//! RUNNING: provisioning, pending and running tasks) count toward it, and only the rest is
//! launched (at most `max_step_out` per decision, at most 10 per RunTask call). Every task runs
//! `jobrunner-worker --queue-url … --idle-exit … -- <command…>` and exits by itself once the
//! queue has given it nothing for `idle_exit`, so nothing ever scales in.
//!
//! Idempotency: the RunTask `clientToken`s of a decision derive from the worker, the sampling
//! slot the decision falls in (its time truncated to `sample_every_seconds`, or to the minute)
//! and the call's index. A repeated or redelivered tick in the same slot sends the same tokens:
//! ECS returns the tasks it already started (or, if the count differs, a ConflictException
//! naming them), never a second set.
//!
//! [`decide_jobs`] and [`launches`] are pure (time is an argument); the scaler
//! (`crate::scaler`) makes the calls.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::decide::{Direction, QueueDepth};
use super::window::{Bounds, bounds_at, describe};
use crate::config::{LaunchSettings, Worker};
use crate::plan::{
    CapacityProviderStrategyItem, ContainerOverride, PlacementConstraint, PlacementStrategy,
    RunTaskInput, Tag, TaskOverride,
};

/// The segment after `jobrunner/` in a jobs-mode worker's `startedBy`.
pub use crate::config::WORKER_STARTED_BY_SEGMENT as STARTED_BY_SEGMENT;

/// RunTask starts at most this many tasks per call.
pub const MAX_PER_CALL: u32 = 10;

/// The program the task's command override starts (it must be on the image's PATH).
pub const WORKER_PROGRAM: &str = "jobrunner-worker";

/// The tag every jobs-mode task carries, valued with the worker's name.
pub const WORKER_TAG: &str = "jobrunner:worker";

/// `startedBy` of a jobs-mode worker's tasks: `jobrunner/worker/<name>`.
pub use crate::config::worker_started_by as started_by;

/// What one jobs-mode decision decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobsDecision {
    /// Messages counted: visible + in flight (+ delayed with `count_delayed`).
    pub backlog: u64,
    /// `ceil(backlog / messages_per_task)`, before bounds.
    pub recommended: u32,
    /// The bounds in force (a window's or the worker's).
    pub bounds: Bounds,
    /// The worker's tasks already there (desired status RUNNING: pending or running).
    pub live: u32,
    /// Tasks to start now.
    pub launch: u32,
    /// The start of the sampling slot the decision falls in (its tokens derive from it).
    pub slot: DateTime<Utc>,
    /// [`Direction::Out`] when launching, else [`Direction::Hold`].
    pub direction: Direction,
    /// One human-readable line.
    pub reason: String,
}

impl JobsDecision {
    /// The tasks the worker will have once the launches succeed.
    pub fn target(&self) -> u32 {
        self.live.saturating_add(self.launch)
    }
}

/// Decides how many tasks a jobs-mode worker launches now, given the queue and the number of
/// its tasks already pending or running.
pub fn decide_jobs(
    worker: &Worker,
    queue: &QueueDepth,
    live: u32,
    now: DateTime<Utc>,
) -> JobsDecision {
    let per_task = u64::from(worker.messages_per_task.max(1));
    let delayed = if worker.count_delayed {
        queue.delayed
    } else {
        0
    };
    let backlog = queue
        .visible
        .saturating_add(queue.in_flight)
        .saturating_add(delayed);
    let recommended = u32::try_from(backlog.div_ceil(per_task)).unwrap_or(u32::MAX);
    let bounds = bounds_at(worker, now);
    let mut notes = Vec::new();
    let mut need = recommended;
    if need > bounds.max {
        need = bounds.max;
        notes.push(match bounds.window {
            Some(i) => format!(
                "max_tasks {} of window {i} ({})",
                bounds.max,
                describe(&worker.windows[i])
            ),
            None => format!("max_tasks {}", bounds.max),
        });
    }
    let mut launch = need.saturating_sub(live);
    if let Some(step) = worker.max_step_out.filter(|step| launch > *step) {
        launch = step;
        notes.push(format!("capped by max_step_out {step}"));
    }
    let mut need_text = format!("{} visible + {} in flight", queue.visible, queue.in_flight);
    if worker.count_delayed {
        need_text.push_str(&format!(" + {} delayed", queue.delayed));
    }
    let action = if launch > 0 {
        format!("launch {launch}")
    } else if backlog == 0 {
        "queue empty: launch none".to_string()
    } else {
        "launch none".to_string()
    };
    let suffix = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    };
    let reason = format!(
        "backlog {backlog} ({need_text}) needs {} at {} per task; {live} pending or running; {action}{suffix}",
        tasks(recommended),
        worker.messages_per_task,
    );
    JobsDecision {
        backlog,
        recommended,
        bounds,
        live,
        launch,
        slot: slot(worker, now),
        direction: if launch > 0 {
            Direction::Out
        } else {
            Direction::Hold
        },
        reason,
    }
}

/// The start of the sampling slot `now` falls in: the worker samples once per
/// `sample_every_seconds` (else once a minute), so one slot holds one decision.
pub fn slot(worker: &Worker, now: DateTime<Utc>) -> DateTime<Utc> {
    let period = i64::from(worker.sample_every_seconds.unwrap_or(60).max(1));
    let start = now.timestamp().div_euclid(period) * period;
    DateTime::from_timestamp(start, 0).unwrap_or(now)
}

/// The `clientToken` of RunTask call `index` of the decision in `slot` for worker `name`:
/// `jrw-` and 60 hex digits of a SHA-256 over the three (ECS allows 64 characters).
pub fn client_token(name: &str, slot: DateTime<Utc>, index: u32) -> String {
    let mut hasher = Sha256::new();
    for part in [
        "worker",
        name,
        &slot.timestamp().to_string(),
        &index.to_string(),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("jrw-{}", &hex[..60])
}

/// The container command of a jobs-mode task: `jobrunner-worker --queue-url <url>
/// --idle-exit <N>s -- <command…>`.
pub fn command(worker: &Worker) -> Vec<String> {
    let mut command = vec![
        WORKER_PROGRAM.to_string(),
        "--queue-url".into(),
        worker.queue_url.clone(),
        "--idle-exit".into(),
        format!("{}s", worker.idle_exit_seconds()),
        "--".into(),
    ];
    command.extend(worker.command.iter().flatten().cloned());
    command
}

/// The RunTask calls of `decision`: batches of at most [`MAX_PER_CALL`] tasks, each with its own
/// token. With a `capacity` list, each call asks the first provider; [`fallback`] gives the
/// call for the next one.
pub fn launches(
    name: &str,
    worker: &Worker,
    defaults: &LaunchSettings,
    decision: &JobsDecision,
) -> Vec<RunTaskInput> {
    let settings = worker.resolved(defaults);
    let mut inputs = Vec::new();
    let mut left = decision.launch;
    let mut index = 0;
    while left > 0 {
        let count = left.min(MAX_PER_CALL);
        let mut input = base_input(name, worker, &settings);
        input.count = i32::try_from(count).unwrap_or(i32::MAX);
        input.client_token = client_token(name, decision.slot, index);
        if let Some(first) = settings.capacity.as_ref().and_then(|c| c.first()) {
            input.capacity_provider_strategy = vec![provider(first)];
        }
        inputs.push(input);
        left -= count;
        index += 1;
    }
    inputs
}

/// The call that retries the `count` tasks `input` could not place on the next capacity
/// provider of the worker's list after the one `input` asked, if any. Its token derives from
/// the original's and the provider, so a redelivery falls back the same way.
pub fn fallback(
    worker: &Worker,
    defaults: &LaunchSettings,
    input: &RunTaskInput,
    count: u32,
) -> Option<RunTaskInput> {
    let capacity = worker.resolved(defaults).capacity?;
    let current = input.capacity_provider_strategy.first()?;
    let at = capacity
        .iter()
        .position(|p| *p == current.capacity_provider)?;
    let next = capacity.get(at + 1)?;
    Some(RunTaskInput {
        count: i32::try_from(count).unwrap_or(i32::MAX),
        client_token: crate::token::for_attempt(&input.client_token, next),
        capacity_provider_strategy: vec![provider(next)],
        ..input.clone()
    })
}

fn provider(name: &str) -> CapacityProviderStrategyItem {
    CapacityProviderStrategyItem {
        capacity_provider: name.to_string(),
        weight: 1,
        base: 0,
    }
}

fn base_input(name: &str, worker: &Worker, settings: &LaunchSettings) -> RunTaskInput {
    RunTaskInput {
        cluster: worker.cluster.clone(),
        task_definition: worker.task_definition.clone().unwrap_or_default(),
        count: 1,
        client_token: String::new(),
        started_by: started_by(name),
        launch_type: settings.launch_type.map(|t| t.as_str().to_string()),
        capacity_provider_strategy: vec![],
        platform_version: settings.platform_version.clone(),
        network_configuration: crate::plan::network(settings),
        overrides: TaskOverride {
            container_overrides: vec![ContainerOverride {
                name: worker.container.clone().unwrap_or_default(),
                command: Some(command(worker)),
                environment: vec![],
            }],
            cpu: None,
            memory: None,
        },
        placement_constraints: settings
            .placement_constraints
            .iter()
            .flatten()
            .map(|c| PlacementConstraint {
                kind: c.kind.clone(),
                expression: c.expression.clone(),
            })
            .collect(),
        placement_strategy: settings
            .placement_strategy
            .iter()
            .flatten()
            .map(|s| PlacementStrategy {
                kind: s.kind.clone(),
                field: s.field.clone(),
            })
            .collect(),
        tags: vec![Tag {
            key: WORKER_TAG.into(),
            value: name.into(),
        }],
        propagate_tags: settings
            .propagate_tags
            .and_then(|p| p.then(|| "TASK_DEFINITION".to_string())),
        enable_ecs_managed_tags: true,
    }
}

fn tasks(n: u32) -> String {
    if n == 1 {
        "1 task".into()
    } else {
        format!("{n} tasks")
    }
}
