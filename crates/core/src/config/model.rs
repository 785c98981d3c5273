//! The config schema as Rust types (see README's configuration reference).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr, VariantNames};

use super::expression::ScheduleExpression;
use super::types::{HumanDuration, TimeZone};
use super::window::{DaySpan, TimeOfDay, WindowEnd, WindowZone};
use crate::class::Class;

/// The whole config file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Launch settings every job inherits unless it sets its own.
    #[serde(default)]
    pub defaults: LaunchSettings,
    /// Jobs by name.
    #[serde(default)]
    pub jobs: BTreeMap<String, Job>,
    #[serde(default)]
    pub triggers: Triggers,
    /// Worker services scaled on their queue's backlog, by name.
    #[serde(default)]
    pub workers: BTreeMap<String, Worker>,
    pub alerts: Option<Alerts>,
    /// Persistent state: the run ledger, concurrency slots, scaler history, alert dedupe.
    pub state: Option<State>,
    /// How the launcher holds events that wait their turn at a job's cap.
    pub launcher: Option<LauncherSettings>,
    /// Fargate prices for run cost estimates (USD per hour), overriding the built-in table.
    pub prices: Option<crate::cost::Prices>,
}

/// Where and how a job's tasks run. Every field is optional so that `[defaults]` and each job
/// can set any subset; [`Job::resolved`] merges the two.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchSettings {
    /// Cluster name or ARN.
    pub cluster: Option<String>,
    pub subnets: Option<Vec<String>>,
    pub security_groups: Option<Vec<String>>,
    pub assign_public_ip: Option<bool>,
    /// Capacity providers in order of preference: a capacity failure on one falls back to the next.
    pub capacity: Option<Vec<String>>,
    /// `FARGATE` or `EC2`; exclusive with `capacity`.
    pub launch_type: Option<LaunchType>,
    /// Fargate platform version, e.g. `LATEST` or `1.4.0`.
    pub platform_version: Option<String>,
    /// EC2 only: passed through to RunTask.
    pub placement_constraints: Option<Vec<PlacementConstraint>>,
    /// EC2 only: passed through to RunTask.
    pub placement_strategy: Option<Vec<PlacementStrategy>>,
    /// Copy the task definition's tags to the task (`TASK_DEFINITION`) or not.
    pub propagate_tags: Option<bool>,
    /// A task still running this long after it started is stopped (class `timeout`).
    pub max_runtime: Option<HumanDuration>,
    /// A task still not running (PROVISIONING, PENDING, ACTIVATING) this long after it was
    /// launched is stopped (class `timeout`).
    pub start_timeout: Option<HumanDuration>,
    /// Retries of failed attempts; none without it.
    pub retry: Option<Retry>,
}

/// `[jobs.<name>.retry]` (or `[defaults.retry]`): which failures are retried, how often, after
/// how long, and how the next attempt changes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Total attempts, the first included (1-10, as AWS Batch).
    pub attempts: u32,
    /// The delay before attempt 2; it doubles for each further attempt (with jitter).
    #[serde(default = "default_backoff")]
    pub backoff: HumanDuration,
    /// The longest delay between attempts.
    #[serde(default = "default_max_backoff")]
    pub max_backoff: HumanDuration,
    /// The failure classes that are retried.
    #[serde(default = "default_retry_on")]
    pub on: Vec<Class>,
    /// When set, a `non_zero_exit` is retried only for these exit codes.
    pub exit_codes: Option<Vec<i64>>,
    /// A Spot interruption (or lack of capacity) is retried on the first non-Spot capacity
    /// provider (`on_demand`) or with the same strategy (`same`); it never uses up `attempts`,
    /// and happens at most 5 times per run.
    #[serde(default)]
    pub on_interruption: OnInterruption,
    /// An OOM retries at the next size tier; with no tier left (or no tiers), at double the
    /// memory, up to the largest valid Fargate memory for the cpu.
    #[serde(default)]
    pub grow_on_oom: bool,
}

/// What a Spot interruption's retry runs on.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema, strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum OnInterruption {
    /// The first capacity provider of the job's `capacity` that is not a Spot one.
    #[default]
    OnDemand,
    /// The job's own capacity strategy.
    Same,
}

fn default_backoff() -> HumanDuration {
    HumanDuration::from_secs_text(30)
}

fn default_max_backoff() -> HumanDuration {
    HumanDuration::from_minutes(15)
}

/// The classes retried when `on` is not set.
pub fn default_retry_on() -> Vec<Class> {
    vec![
        Class::FailedToStart,
        Class::Oom,
        Class::NonZeroExit,
        Class::Timeout,
        Class::Unhealthy,
    ]
}

/// RunTask's `launchType`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Deserialize,
    Serialize,
    JsonSchema,
    EnumString,
    IntoStaticStr,
    VariantNames,
    strum::Display,
)]
#[serde(rename_all = "UPPERCASE")]
#[strum(serialize_all = "UPPERCASE")]
pub enum LaunchType {
    Fargate,
    Ec2,
}

impl LaunchType {
    /// The name RunTask takes (`FARGATE`, `EC2`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementConstraint {
    #[serde(rename = "type")]
    pub kind: String,
    pub expression: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementStrategy {
    #[serde(rename = "type")]
    pub kind: String,
    pub field: Option<String>,
}

/// A containerized job: what to run and how to size it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// Family, `family:revision`, or ARN.
    pub task_definition: String,
    /// The container that receives the command and environment overrides.
    pub container: String,
    /// Replaces the container's command; each element is templated on its own.
    pub command: Option<Vec<String>>,
    /// Added to the container's environment; values are templated.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Concurrency cap: over it, events wait in their queue.
    pub max_running: Option<u32>,
    /// Task tags (ECS's charset; jobrunner adds two of its own).
    #[serde(default)]
    #[schemars(schema_with = "tags_schema")]
    pub tags: BTreeMap<String, String>,
    /// Task-level CPU units when no size tier applies.
    pub cpu: Option<u32>,
    /// Task-level memory (MiB) when no size tier applies.
    pub memory: Option<u32>,
    /// Right-sizing by object size: the first tier whose `max_bytes` fits wins.
    #[serde(default)]
    pub size_tiers: Vec<SizeTier>,
    /// Before launching an event that waited (at the cap, or a retry), HeadObject its object
    /// version: a deleted object's run ends `skipped`. S3-triggered jobs only; needs `[state]`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_missing: bool,

    // Launch settings that override `[defaults]` (listed, not flattened, so unknown fields stay errors).
    pub cluster: Option<String>,
    pub subnets: Option<Vec<String>>,
    pub security_groups: Option<Vec<String>>,
    pub assign_public_ip: Option<bool>,
    pub capacity: Option<Vec<String>>,
    pub launch_type: Option<LaunchType>,
    pub platform_version: Option<String>,
    pub placement_constraints: Option<Vec<PlacementConstraint>>,
    pub placement_strategy: Option<Vec<PlacementStrategy>>,
    pub propagate_tags: Option<bool>,
    pub max_runtime: Option<HumanDuration>,
    pub start_timeout: Option<HumanDuration>,
    pub retry: Option<Retry>,
}

impl Job {
    /// The launch settings the job sets itself (without `[defaults]`).
    pub fn own_settings(&self) -> LaunchSettings {
        LaunchSettings {
            cluster: self.cluster.clone(),
            subnets: self.subnets.clone(),
            security_groups: self.security_groups.clone(),
            assign_public_ip: self.assign_public_ip,
            capacity: self.capacity.clone(),
            launch_type: self.launch_type,
            platform_version: self.platform_version.clone(),
            placement_constraints: self.placement_constraints.clone(),
            placement_strategy: self.placement_strategy.clone(),
            propagate_tags: self.propagate_tags,
            max_runtime: self.max_runtime.clone(),
            start_timeout: self.start_timeout.clone(),
            retry: self.retry.clone(),
        }
    }

    /// The job's launch settings with `[defaults]` filled in where the job is silent.
    pub fn resolved(&self, defaults: &LaunchSettings) -> LaunchSettings {
        let own = self.own_settings();
        // A job that picks a launch type drops the default capacity list, and vice versa.
        let (capacity, launch_type) = match (&own.capacity, own.launch_type) {
            (None, None) => (defaults.capacity.clone(), defaults.launch_type),
            _ => (own.capacity.clone(), own.launch_type),
        };
        LaunchSettings {
            cluster: own.cluster.or_else(|| defaults.cluster.clone()),
            subnets: own.subnets.or_else(|| defaults.subnets.clone()),
            security_groups: own
                .security_groups
                .or_else(|| defaults.security_groups.clone()),
            assign_public_ip: own.assign_public_ip.or(defaults.assign_public_ip),
            capacity,
            launch_type,
            platform_version: own
                .platform_version
                .or_else(|| defaults.platform_version.clone()),
            placement_constraints: own
                .placement_constraints
                .or_else(|| defaults.placement_constraints.clone()),
            placement_strategy: own
                .placement_strategy
                .or_else(|| defaults.placement_strategy.clone()),
            propagate_tags: own.propagate_tags.or(defaults.propagate_tags),
            max_runtime: own.max_runtime.or_else(|| defaults.max_runtime.clone()),
            start_timeout: own.start_timeout.or_else(|| defaults.start_timeout.clone()),
            retry: own.retry.or_else(|| defaults.retry.clone()),
        }
    }
}

impl LaunchSettings {
    /// True when tasks run on Fargate (a Fargate launch type or FARGATE/FARGATE_SPOT providers).
    pub fn is_fargate(&self) -> bool {
        match (&self.capacity, self.launch_type) {
            (_, Some(LaunchType::Fargate)) => true,
            (_, Some(LaunchType::Ec2)) => false,
            (Some(providers), None) => providers.iter().all(|p| p.starts_with("FARGATE")),
            (None, None) => true,
        }
    }

    /// True when some launch may land on Fargate: a Fargate launch type, or a FARGATE or
    /// FARGATE_SPOT provider anywhere in the capacity list (a fallback may reach it).
    pub fn may_use_fargate(&self) -> bool {
        match (&self.capacity, self.launch_type) {
            (_, Some(launch_type)) => launch_type == LaunchType::Fargate,
            (Some(providers), None) => providers.iter().any(|p| p.starts_with("FARGATE")),
            (None, None) => true,
        }
    }
}

/// The schema of a job's `tags`: ECS's limits (in characters), at most 48 (jobrunner adds
/// `jobrunner:job` and `jobrunner:trigger`), `aws:`/`jobrunner:` reserved, and the ASCII
/// characters ECS refuses. (Non-ASCII letters are checked by validation: JSON Schema regexes
/// have no Unicode classes.)
fn tags_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    const REFUSED: &str =
        r##"[^\u0000-\u001f\u007f-\u009f\u2028\u2029!"#$%&'()*,;<>?\[\\\]^`{|}~]"##;
    schemars::json_schema!({
        "type": "object",
        "default": {},
        "maxProperties": 48,
        "propertyNames": {
            "pattern": format!("^{REFUSED}{{1,128}}$"),
            "not": {"pattern": "^(?:[Aa][Ww][Ss]|jobrunner):"},
        },
        "additionalProperties": {
            "type": "string",
            "pattern": format!("^{REFUSED}{{0,256}}$"),
        },
    })
}

/// One size tier of a job.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SizeTier {
    /// Objects up to this many bytes use this tier; omitted on the last tier (everything larger).
    pub max_bytes: Option<u64>,
    pub cpu: u32,
    pub memory: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    #[serde(default)]
    pub s3: Vec<S3Trigger>,
    #[serde(default)]
    pub schedule: Vec<ScheduleTrigger>,
}

/// Routes S3 "Object Created" events to a job. All conditions must hold; first match wins.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3Trigger {
    pub job: String,
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub suffix: String,
    pub min_size: Option<u64>,
    pub max_size: Option<u64>,
}

/// Runs a job on a schedule (EventBridge rule or EventBridge Scheduler).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleTrigger {
    pub name: String,
    pub job: String,
    /// `rate(1 hour)` or `cron(0 * * * ? *)` in EventBridge's syntax.
    pub expression: Option<ScheduleExpression>,
    /// IANA time zone for cron expressions, e.g. `Europe/Berlin`.
    pub timezone: Option<TimeZone>,
    #[serde(default)]
    pub overlap: Overlap,
    /// Added to the job's environment for this schedule's tasks.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Replaces the job's command for this schedule's tasks.
    pub command: Option<Vec<String>>,
}

/// What to do when a tick fires while the previous run is still going
/// (Kubernetes CronJob's `concurrencyPolicy`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Deserialize,
    Serialize,
    JsonSchema,
    EnumString,
    IntoStaticStr,
    VariantNames,
    strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Overlap {
    #[default]
    Allow,
    Forbid,
    Replace,
}

/// Queue workers scaled on their SQS backlog: an ECS service whose `desiredCount` follows it
/// (`mode = "service"`), or standalone tasks launched per backlog that exit when the queue is
/// idle (`mode = "jobs"`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Worker {
    /// Cluster name or ARN (required in both modes; `[defaults]` does not apply to it).
    pub cluster: String,
    /// Service mode: the ECS service whose desiredCount follows the backlog. Not set in jobs
    /// mode.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
    pub queue_url: String,
    /// Target backlog per task.
    pub messages_per_task: u32,
    #[serde(default)]
    pub min_tasks: u32,
    pub max_tasks: u32,
    /// Stabilization window before removing tasks.
    #[serde(default = "default_scale_in_after")]
    pub scale_in_after_seconds: u32,
    /// Count delayed messages as backlog too.
    #[serde(default)]
    pub count_delayed: bool,
    /// At most this many tasks added per decision.
    pub max_step_out: Option<u32>,
    /// At most this many tasks removed per decision.
    pub max_step_in: Option<u32>,
    /// Re-sample within one invocation every this many seconds (sub-minute reaction).
    pub sample_every_seconds: Option<u32>,
    /// Scheduled capacity: while a window is active its min/max apply.
    #[serde(default)]
    pub windows: Vec<ScalingWindow>,
    /// How the worker's tasks run: an ECS service scaled by desiredCount, or standalone tasks
    /// launched per backlog that exit when idle.
    #[serde(default)]
    pub mode: WorkerMode,

    // Jobs mode: what each task runs, and how it is launched.
    /// Jobs mode: family, `family:revision`, or ARN of the workers' task definition.
    pub task_definition: Option<String>,
    /// Jobs mode: the container whose command runs `jobrunner-worker`.
    pub container: Option<String>,
    /// Jobs mode: the command `jobrunner-worker` runs once per message (never through a shell).
    /// The task's command override is `jobrunner-worker --queue-url <queue_url> --idle-exit
    /// <idle_exit> -- <command…>`: the image needs `jobrunner-worker` on its PATH.
    pub command: Option<Vec<String>>,
    /// Jobs mode: a task exits once the queue has given it nothing for this long (default 60s).
    pub idle_exit: Option<HumanDuration>,
    // Jobs mode launch settings, as a job's (listed, not flattened, so unknown fields stay
    // errors); unset ones come from `[defaults]`.
    pub subnets: Option<Vec<String>>,
    pub security_groups: Option<Vec<String>>,
    pub assign_public_ip: Option<bool>,
    pub capacity: Option<Vec<String>>,
    pub launch_type: Option<LaunchType>,
    pub platform_version: Option<String>,
    pub placement_constraints: Option<Vec<PlacementConstraint>>,
    pub placement_strategy: Option<Vec<PlacementStrategy>>,
    pub propagate_tags: Option<bool>,
}

pub use crate::started_by::WORKER_SEGMENT as WORKER_STARTED_BY_SEGMENT;

/// `startedBy` of a jobs-mode worker's tasks: `jobrunner/worker/<name>`.
pub fn worker_started_by(worker: &str) -> String {
    crate::started_by::StartedBy::worker(worker).to_string()
}

/// A jobs-mode task exits after this long without a message unless `idle_exit` says otherwise.
pub const DEFAULT_IDLE_EXIT_SECONDS: u64 = 60;

impl Worker {
    /// The launch settings the worker sets itself (jobs mode), its cluster included.
    pub fn own_settings(&self) -> LaunchSettings {
        LaunchSettings {
            cluster: Some(self.cluster.clone()),
            subnets: self.subnets.clone(),
            security_groups: self.security_groups.clone(),
            assign_public_ip: self.assign_public_ip,
            capacity: self.capacity.clone(),
            launch_type: self.launch_type,
            platform_version: self.platform_version.clone(),
            placement_constraints: self.placement_constraints.clone(),
            placement_strategy: self.placement_strategy.clone(),
            propagate_tags: self.propagate_tags,
            ..LaunchSettings::default()
        }
    }

    /// The worker's launch settings with `[defaults]` filled in where it is silent, by the
    /// same rules as a job's ([`Job::resolved`]). Time limits and retries are the tracker's,
    /// for jobs: a worker's tasks have none.
    pub fn resolved(&self, defaults: &LaunchSettings) -> LaunchSettings {
        let own = self.own_settings();
        let as_job = Job {
            cluster: own.cluster,
            subnets: own.subnets,
            security_groups: own.security_groups,
            assign_public_ip: own.assign_public_ip,
            capacity: own.capacity,
            launch_type: own.launch_type,
            platform_version: own.platform_version,
            placement_constraints: own.placement_constraints,
            placement_strategy: own.placement_strategy,
            propagate_tags: own.propagate_tags,
            ..Job::default()
        };
        LaunchSettings {
            max_runtime: None,
            start_timeout: None,
            retry: None,
            ..as_job.resolved(defaults)
        }
    }

    /// Jobs mode: how long a task waits for a message before it exits.
    pub fn idle_exit_seconds(&self) -> u64 {
        self.idle_exit
            .as_ref()
            .map_or(DEFAULT_IDLE_EXIT_SECONDS, HumanDuration::as_secs)
    }
}

/// How a worker's tasks are run (`[workers.<name>] mode`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema, strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum WorkerMode {
    /// An ECS service whose desiredCount follows the backlog.
    #[default]
    Service,
    /// Standalone tasks (RunTask) launched per backlog; each runs `jobrunner-worker
    /// --idle-exit` and exits once the queue is idle.
    Jobs,
}

fn default_scale_in_after() -> u32 {
    300
}

/// A recurring period with its own task bounds (scheduled scaling).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScalingWindow {
    /// Days the window applies, e.g. `["MON", "TUE"]`; empty means every day.
    #[serde(default)]
    pub days: Vec<DaySpan>,
    /// Start time `HH:MM`, inclusive.
    pub start: TimeOfDay,
    /// End time `HH:MM` (or `24:00`), exclusive.
    pub end: WindowEnd,
    /// Time zone of `start`/`end`: an IANA name or a fixed offset such as `+01:00`; UTC when omitted.
    pub timezone: Option<WindowZone>,
    pub min_tasks: Option<u32>,
    pub max_tasks: Option<u32>,
}

/// Where stopped-task alerts go and which classes are worth one.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    pub topic_arn: String,
    /// The alert classes worth an alert.
    #[serde(default = "default_notify_on")]
    pub notify_on: Vec<Class>,
    /// A schedule tick with no run this long after its time is a `missed_schedule` alert.
    #[serde(default = "default_missed_schedule_after")]
    pub missed_schedule_after: HumanDuration,
    /// Alert a failed attempt that will be retried too (by default only the final failure).
    #[serde(default)]
    pub notify_on_retry: bool,
}

fn default_missed_schedule_after() -> HumanDuration {
    HumanDuration::from_minutes(10)
}

/// The alert classes worth waking someone for, when `notify_on` is not set.
pub fn default_notify_on() -> Vec<Class> {
    vec![
        Class::NonZeroExit,
        Class::Oom,
        Class::FailedToStart,
        Class::SpotInterruption,
        Class::Unhealthy,
        Class::Timeout,
        Class::Unknown,
        Class::LaunchFailed,
        Class::MissedSchedule,
    ]
}

/// The DynamoDB table holding the run ledger and small state (slots, scaler history, alert
/// dedupe).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub table: String,
    /// Days a run stays in the ledger after its last change (DynamoDB TTL).
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

fn default_retention_days() -> u32 {
    30
}

/// `[launcher]`: where events wait their turn when a job is at its cap.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LauncherSettings {
    /// The launcher's own SQS queue: an event at a job's cap is sent back to it with a delay
    /// (a new message, so it never uses up the receive count), then acknowledged.
    pub queue_url: String,
    /// Seconds a waiting event sleeps before it looks again (SQS DelaySeconds, 1-900). Events
    /// at the head of the line look again after at most 10 seconds.
    #[serde(default = "default_wait_seconds")]
    pub wait_seconds: u32,
}

fn default_wait_seconds() -> u32 {
    60
}
