//! A run: one unit of work from its event to its outcome (one S3 object version, one schedule
//! tick, one manual submit), with its attempts. This is the ledger's record, as data, and the
//! rules that move it forward; storing it is `ledger`'s job.
//!
//! Every change is idempotent and order-independent: an attempt takes a task state change only
//! when the change's `detail.version` is newer than the last one it took (and, for events
//! without a version, only when the status moves forward), and a run in a final state stays
//! there. So duplicates and late deliveries never move a run backwards.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr, VariantNames};

use crate::alert::Classification;
use crate::class::Class;
use crate::cost::{self, Estimate, Prices};
use crate::event::TaskStateChange;
use crate::job_env;

/// Where a run is in its life.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    EnumString,
    IntoStaticStr,
    VariantNames,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RunState {
    /// At its job's cap, waiting its turn.
    Waiting,
    /// RunTask placed the task; it has not reached RUNNING yet.
    Launching,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    /// Never launched on purpose (a schedule's `overlap = forbid` while the last run goes on).
    Skipped,
}

impl RunState {
    /// Every state's name.
    pub const NAMES: &'static [&'static str] = <RunState as VariantNames>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Nothing moves a run out of a final state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunState::Succeeded
                | RunState::Failed
                | RunState::TimedOut
                | RunState::Cancelled
                | RunState::Skipped
        )
    }
}

/// What started the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "trigger", rename_all = "snake_case")]
pub enum RunInput {
    S3 {
        bucket: String,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        etag: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
    },
    Schedule {
        schedule: String,
        scheduled_time: DateTime<Utc>,
    },
    /// Submitted by hand (`jobrunner submit`): who and when, and what it names.
    Manual {
        submitted_by: String,
        submitted_at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bucket: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        etag: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schedule: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheduled_time: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        environment: BTreeMap<String, String>,
    },
}

impl RunInput {
    /// One line for people: `s3://bucket/key?versionId=v` or `hourly@2026-11-25T10:00:00Z`.
    pub fn describe(&self) -> String {
        match self {
            RunInput::S3 {
                bucket,
                key,
                version_id,
                ..
            } => match version_id {
                Some(v) => format!("s3://{bucket}/{key}?versionId={v}"),
                None => format!("s3://{bucket}/{key}"),
            },
            RunInput::Schedule {
                schedule,
                scheduled_time,
            } => format!(
                "{schedule}@{}",
                scheduled_time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            RunInput::Manual { submitted_by, .. } => format!("manual by {submitted_by}"),
        }
    }

    /// The input of a manual submit's run.
    pub fn manual(submit: &crate::event::Submit) -> RunInput {
        let object = submit.object.as_ref();
        RunInput::Manual {
            submitted_by: submit.submitted_by.clone(),
            submitted_at: submit.submitted_at,
            bucket: object.map(|o| o.bucket.clone()),
            key: object.map(|o| o.key.clone()),
            version_id: object.and_then(|o| o.version_id.clone()),
            etag: object.and_then(|o| o.etag.clone()),
            size: object.map(|o| o.size),
            schedule: submit.schedule.as_ref().map(|(name, _)| name.clone()),
            scheduled_time: submit.schedule.as_ref().map(|(_, at)| *at),
            environment: submit.environment.clone(),
        }
    }

    /// The submit a manual run came from (to plan its retries); `None` for other runs.
    pub fn to_submit(&self, job: &str) -> Option<crate::event::Submit> {
        let RunInput::Manual {
            submitted_by,
            submitted_at,
            bucket,
            key,
            version_id,
            etag,
            size,
            schedule,
            scheduled_time,
            environment,
        } = self
        else {
            return None;
        };
        let object = match (bucket, key) {
            (Some(bucket), Some(key)) => Some(crate::event::ObjectCreated {
                bucket: bucket.clone(),
                key: key.clone(),
                size: size.unwrap_or_default(),
                etag: etag.clone(),
                version_id: version_id.clone(),
                sequencer: None,
                event_time: *submitted_at,
            }),
            _ => None,
        };
        Some(crate::event::Submit {
            job: job.to_string(),
            submitted_by: submitted_by.clone(),
            submitted_at: *submitted_at,
            object,
            schedule: schedule.clone().zip(*scheduled_time),
            environment: environment.clone(),
        })
    }

    /// The input as a task's `JOB_*` variables show it (how the tracker rebuilds a run it has
    /// no record of).
    pub fn from_task(change: &TaskStateChange) -> Option<RunInput> {
        let env = |name| change.override_env(name).map(str::to_owned);
        match change.override_env(job_env::TRIGGER)? {
            "s3" => Some(RunInput::S3 {
                bucket: env(job_env::BUCKET)?,
                key: env(job_env::KEY)?,
                version_id: env(job_env::VERSION_ID),
                etag: env(job_env::ETAG).filter(|e| !e.is_empty()),
                size: env(job_env::SIZE).and_then(|s| s.parse().ok()),
            }),
            "schedule" => Some(RunInput::Schedule {
                schedule: env(job_env::SCHEDULE)?,
                scheduled_time: env(job_env::SCHEDULED_TIME)?.parse().ok()?,
            }),
            _ => None,
        }
    }
}

/// One task launched for a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1-based (`JOB_ATTEMPT`).
    pub number: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider: Option<String>,
    /// CPU units (1024 = 1 vCPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<DateTime<Utc>>,
    /// ECS's `lastStatus` as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<String>,
    /// `detail.version` of the last state change taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Exit code per container.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exit_codes: BTreeMap<String, i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<Class>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Estimate>,
    /// Why this attempt was made (a retry's decision, e.g. `oom: … → memory 2048 MiB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// When a retry is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// The only capacity provider this attempt may use (a Spot interruption retried on demand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_provider: Option<String>,
    /// Interruption retries before this attempt (`JOB_INTERRUPTIONS`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interruptions: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Attempt {
    /// A retry planned but not yet launched.
    pub fn is_planned(&self) -> bool {
        self.task_arn.is_none() && self.due_at.is_some()
    }

    /// One line for an alert's or the CLI's attempt history.
    pub fn describe(&self) -> String {
        let mut line = format!("#{}", self.number);
        if let Some(class) = self.class {
            line.push_str(&format!(" {class}"));
        }
        if let Some((_, code)) = self.exit_codes.iter().find(|(_, code)| **code != 0) {
            line.push_str(&format!(" exit {code}"));
        }
        if let (Some(cpu), Some(memory)) = (self.cpu, self.memory) {
            line.push_str(&format!(", cpu {cpu} / memory {memory}"));
        }
        if let Some(provider) = &self.capacity_provider {
            line.push_str(&format!(", {provider}"));
        }
        if let Some(task) = &self.task_arn {
            line.push_str(&format!(
                ", task {}",
                task.rsplit('/').next().unwrap_or(task)
            ));
        }
        if let Some(reason) = &self.reason {
            line.push_str(&format!(": {reason}"));
        }
        line
    }
    /// Seconds from launch to RUNNING.
    pub fn start_seconds(&self) -> Option<i64> {
        Some((self.started_at? - self.launched_at?).num_seconds())
    }

    /// Seconds from RUNNING to STOPPED.
    pub fn run_seconds(&self) -> Option<i64> {
        Some((self.stopped_at? - self.started_at?).num_seconds())
    }
}

/// The ledger's record of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub run_id: String,
    pub job: String,
    pub input: RunInput,
    pub state: RunState,
    /// When the run's event happened (the object's event time, the tick's scheduled time):
    /// its place in its job's line.
    pub queued_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Why the run is in its state, when that needs saying (waiting, failed to launch, skipped,
    /// cancelled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who cancelled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_by: Option<String>,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
}

/// The `stoppedReason` prefix of a task stopped by `jobrunner run cancel`.
pub const CANCEL_REASON_PREFIX: &str = "jobrunner: cancelled by ";

/// Order of ECS's task statuses, for events that carry no version.
fn status_rank(status: &str) -> u8 {
    match status {
        "PROVISIONING" => 1,
        "PENDING" => 2,
        "ACTIVATING" => 3,
        "RUNNING" => 4,
        "DEACTIVATING" => 5,
        "STOPPING" => 6,
        "DEPROVISIONING" => 7,
        "STOPPED" => 8,
        _ => 0,
    }
}

/// What a task launch tells the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched<'a> {
    pub attempt: u32,
    pub client_token: &'a str,
    pub task_arn: &'a str,
    pub capacity_provider: Option<&'a str>,
    pub cpu: Option<u32>,
    pub memory: Option<u32>,
}

impl Run {
    /// A run not yet in the ledger.
    pub fn new(
        run_id: &str,
        job: &str,
        input: RunInput,
        queued_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Run {
        Run {
            run_id: run_id.into(),
            job: job.into(),
            input,
            state: RunState::Waiting,
            queued_at,
            updated_at: now,
            reason: None,
            cancelled_by: None,
            attempts: vec![],
        }
    }

    /// The attempt numbered `number`, added when missing.
    fn attempt_mut(&mut self, number: u32) -> &mut Attempt {
        let index = match self.attempts.iter().position(|a| a.number == number) {
            Some(index) => index,
            None => {
                self.attempts.push(Attempt {
                    number,
                    ..Attempt::default()
                });
                self.attempts.sort_by_key(|a| a.number);
                self.attempts
                    .iter()
                    .position(|a| a.number == number)
                    .unwrap_or_default()
            }
        };
        &mut self.attempts[index]
    }

    /// The latest attempt.
    pub fn last_attempt(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    /// The task of the latest attempt, if one was placed.
    pub fn task_arn(&self) -> Option<&str> {
        self.last_attempt()?.task_arn.as_deref()
    }

    /// Waiting at the cap (only a run that has not launched yet waits).
    pub fn wait(&mut self, reason: &str, now: DateTime<Utc>) -> bool {
        if self.state != RunState::Waiting || self.reason.as_deref() == Some(reason) {
            return false;
        }
        self.reason = Some(reason.into());
        self.updated_at = now;
        true
    }

    /// RunTask placed the task (or said it had, for a redelivery).
    pub fn launched(&mut self, launch: &Launched<'_>, now: DateTime<Utc>) {
        let had_task = self.attempts.iter().any(|a| a.task_arn.is_some());
        let attempt = self.attempt_mut(launch.attempt);
        attempt.client_token = Some(launch.client_token.into());
        attempt.task_arn = Some(launch.task_arn.into());
        attempt.capacity_provider = launch
            .capacity_provider
            .map(str::to_owned)
            .or(attempt.capacity_provider.take());
        attempt.cpu = launch.cpu.or(attempt.cpu);
        attempt.memory = launch.memory.or(attempt.memory);
        attempt.launched_at.get_or_insert(now);
        attempt.due_at = None;
        let is_latest = self
            .attempts
            .last()
            .is_some_and(|a| a.number == launch.attempt);
        // A run refused before any task (and now redriven) launches like a waiting one; a
        // run whose task already ended (the tracker got there first) keeps its outcome.
        let refused = self.state == RunState::Failed && !had_task;
        if is_latest && (self.state == RunState::Waiting || refused) {
            self.state = RunState::Launching;
            self.reason = None;
        }
        self.updated_at = now;
    }

    /// Ends a run that never started (a launch refused for good, an overlap skip). Returns
    /// false when the run had already ended.
    pub fn end_unlaunched(&mut self, state: RunState, reason: &str, now: DateTime<Utc>) -> bool {
        if self.state.is_final() {
            return false;
        }
        self.state = state;
        self.reason = Some(reason.into());
        self.updated_at = now;
        true
    }

    /// Cancelled by `who`: final, and its stop is neither retried nor alerted.
    pub fn cancel(&mut self, who: &str, now: DateTime<Utc>) -> Result<(), String> {
        if self.state.is_final() {
            return Err(format!(
                "run {} already ended ({}): nothing to cancel",
                self.run_id, self.state
            ));
        }
        self.state = RunState::Cancelled;
        self.cancelled_by = Some(who.into());
        self.reason = Some(format!("cancelled by {who}"));
        self.updated_at = now;
        Ok(())
    }

    /// Takes an ECS task state change of attempt `number`. `classification` is the stop's (for
    /// STOPPED), `log_url` where its logs are, `prices` the config's (else the built-in
    /// table's for the task's region). Returns false when the change was a duplicate
    /// or older than what the run already knows.
    pub fn observe(
        &mut self,
        number: u32,
        change: &TaskStateChange,
        classification: Option<&Classification>,
        log_url: Option<String>,
        prices: Option<&Prices>,
        now: DateTime<Utc>,
    ) -> bool {
        let attempt = self.attempt_mut(number);
        let newer = match (change.version, attempt.version) {
            (Some(new), Some(old)) => new > old,
            _ => {
                status_rank(&change.last_status)
                    > attempt.last_status.as_deref().map_or(0, status_rank)
            }
        };
        if !newer {
            return false;
        }
        attempt.version = change.version.or(attempt.version);
        attempt.last_status = Some(change.last_status.clone());
        attempt
            .task_arn
            .get_or_insert_with(|| change.task_arn.clone());
        if let Some(provider) = &change.capacity_provider_name {
            attempt.capacity_provider = Some(provider.clone());
        }
        attempt.cpu = change
            .cpu
            .as_deref()
            .and_then(|c| c.parse().ok())
            .or(attempt.cpu);
        attempt.memory = change
            .memory
            .as_deref()
            .and_then(|m| m.parse().ok())
            .or(attempt.memory);
        attempt.launched_at = attempt.launched_at.or(change.created_at);
        attempt.started_at = change.started_at.or(attempt.started_at);
        if log_url.is_some() {
            attempt.log_url = log_url;
        }
        let stopped = change.is_stopped();
        if stopped {
            attempt.stopped_at = change.stopped_at.or(Some(now));
            attempt.stop_code = change.stop_code.clone();
            attempt.reason = change.stopped_reason.clone();
            attempt.exit_codes = change
                .containers
                .iter()
                .filter_map(|c| Some((c.name.clone(), c.exit_code?)))
                .collect();
            attempt.class = classification.map(|c| c.class);
            attempt.cost = attempt_cost(attempt, change, prices);
        }
        let cancelled = change
            .stopped_reason
            .as_deref()
            .is_some_and(|r| r.starts_with(CANCEL_REASON_PREFIX));
        let class = attempt.class;
        let is_latest = self.attempts.last().is_some_and(|a| a.number == number);
        self.updated_at = now;
        if self.state.is_final() || !is_latest {
            return true;
        }
        self.state = match (stopped, change.last_status.as_str()) {
            (true, _) if cancelled => RunState::Cancelled,
            (true, _) => match class {
                Some(Class::Succeeded) => RunState::Succeeded,
                Some(Class::Timeout) => RunState::TimedOut,
                _ => RunState::Failed,
            },
            (false, "RUNNING" | "DEACTIVATING" | "STOPPING" | "DEPROVISIONING") => {
                RunState::Running
            }
            (false, _) => RunState::Launching,
        };
        if self.state == RunState::Cancelled && self.reason.is_none() {
            self.reason = change.stopped_reason.clone();
        }
        true
    }

    /// Plans attempt `next` (the tracker's retry decision after a failed attempt): the run
    /// waits for it. False when it was planned already (a redelivered stop).
    pub fn plan_retry(
        &mut self,
        next: &crate::retry::NextAttempt,
        due_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> bool {
        if self.attempts.iter().any(|a| a.number >= next.attempt)
            || self.state == RunState::Cancelled
        {
            return false;
        }
        self.attempts.push(Attempt {
            number: next.attempt,
            cpu: next.cpu,
            memory: next.memory,
            only_provider: next.capacity_provider.clone(),
            interruptions: next.interruptions,
            due_at: Some(due_at),
            why: Some(next.why.clone()),
            ..Attempt::default()
        });
        self.state = RunState::Waiting;
        self.reason = Some(format!(
            "attempt {} due at {}: {}",
            next.attempt,
            due_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            next.why
        ));
        self.updated_at = now;
        true
    }

    /// `jobrunner run rerun`: plans a fresh attempt by hand, due `now`, at the last attempt's
    /// size (outside the retry budget: it is not a retry decision). Only a run that ended, and
    /// was not cancelled, is rerun. Returns the attempt's number.
    pub fn plan_rerun(&mut self, who: &str, now: DateTime<Utc>) -> Result<u32, String> {
        if self.state == RunState::Cancelled || !self.state.is_final() {
            return Err(format!(
                "run {} is {}: only a run that ended (and was not cancelled) is rerun",
                self.run_id, self.state
            ));
        }
        let last = self.last_attempt().cloned().unwrap_or_default();
        let next = crate::retry::NextAttempt {
            attempt: (last.number + 1).max(2),
            interruptions: last.interruptions,
            delay: std::time::Duration::ZERO,
            cpu: last.cpu,
            memory: last.memory,
            capacity_provider: None,
            why: format!("rerun by {who}"),
        };
        self.plan_retry(&next, now, now);
        Ok(next.attempt)
    }

    /// The estimated cost of every attempt so far.
    pub fn cost(&self) -> Option<Estimate> {
        self.attempts
            .iter()
            .filter_map(|a| a.cost)
            .reduce(|a, b| Estimate {
                vcpu_seconds: a.vcpu_seconds + b.vcpu_seconds,
                gb_seconds: a.gb_seconds + b.gb_seconds,
                usd: a.usd + b.usd,
            })
    }
}

/// Fargate bills from the start of the image pull (else the task's start, else its creation)
/// to its stop.
fn attempt_cost(
    attempt: &Attempt,
    change: &TaskStateChange,
    prices: Option<&Prices>,
) -> Option<Estimate> {
    let stopped = attempt.stopped_at?;
    let from = change
        .pull_started_at
        .or(attempt.started_at)
        .or(change.created_at)?;
    let spot = attempt
        .capacity_provider
        .as_deref()
        .is_some_and(|p| p.contains("SPOT"));
    let region = change.region().unwrap_or(cost::FALLBACK_REGION);
    Some(cost::estimate(
        &Prices::for_region(region, prices),
        spot,
        attempt.cpu?,
        attempt.memory?,
        (stopped - from).num_seconds().max(0),
    ))
}

#[cfg(test)]
mod tests;
