//! Planning a launch: job + event → the exact RunTask request(s), in the AWS API's JSON shape.
//!
//! The request types serialize to what `aws ecs run-task --cli-input-json` accepts, so the
//! dry run prints them as they are and the adapter maps them field by field onto the SDK.

use serde::Serialize;

use crate::config::{Config, Job, LaunchSettings, Overlap, ScheduleTrigger, validate_started_by};
use crate::error::Error;
use crate::event::{ObjectCreated, ScheduleTick};
use crate::started_by::StartedBy;
use crate::template::{self, Vars};
use crate::{job_env, token};

pub use crate::ecs_limits::MAX_OVERRIDES_CHARS;
pub use submit::plan_submit;

mod submit;

/// Everything the launcher needs to start one task for one event.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchPlan {
    pub job: String,
    /// The run's id in the ledger, derived from the first attempt's token (`JOB_RUN_ID`).
    pub run_id: String,
    /// The attempt these requests make (`JOB_ATTEMPT`): 1, or a retry's number.
    pub attempt: u32,
    /// The first attempt, then one per fallback capacity provider, each with its own token.
    pub attempts: Vec<RunTaskInput>,
    /// The job's concurrency cap and the `startedBy` values whose running tasks count toward it.
    pub cap: Option<ConcurrencyCap>,
    /// For schedule ticks: what to do about a previous run still going.
    pub overlap: Option<OverlapCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcurrencyCap {
    pub max_running: u32,
    pub started_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlapCheck {
    pub policy: Overlap,
    /// `startedBy` of this schedule's tasks.
    pub started_by: String,
    /// The tick's `JOB_SCHEDULED_TIME`, by which a redelivered tick finds its own task.
    pub scheduled_time: String,
}

/// RunTask's request, field names as in the AWS API.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTaskInput {
    pub cluster: String,
    pub task_definition: String,
    pub count: i32,
    pub client_token: String,
    pub started_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<NetworkConfiguration>,
    pub overrides: TaskOverride,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub placement_constraints: Vec<PlacementConstraint>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub placement_strategy: Vec<PlacementStrategy>,
    pub tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagate_tags: Option<String>,
    #[serde(rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderStrategyItem {
    pub capacity_provider: String,
    pub weight: i32,
    /// Tasks placed on this provider before weights apply (RunTask sends 0 when not set).
    pub base: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfiguration {
    pub awsvpc_configuration: AwsVpcConfiguration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsVpcConfiguration {
    pub subnets: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub assign_public_ip: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOverride {
    pub container_overrides: Vec<ContainerOverride>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverride {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    pub environment: Vec<KeyValuePair>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValuePair {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlacementConstraint {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlacementStrategy {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Plans the launch of `job_name` for a created object.
pub fn plan_object(
    config: &Config,
    job_name: &str,
    object: &ObjectCreated,
) -> Result<LaunchPlan, Error> {
    let job = lookup(config, job_name)?;
    let mut environment = vec![
        (job_env::BUCKET, object.bucket.clone()),
        (job_env::KEY, object.key.clone()),
        (job_env::SIZE, object.size.to_string()),
        (job_env::ETAG, object.etag.clone().unwrap_or_default()),
    ];
    if let Some(version) = &object.version_id {
        environment.push((job_env::VERSION_ID, version.clone()));
    }
    let event_time = object
        .event_time
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    environment.push((job_env::EVENT_TIME, event_time.clone()));
    let vars = Vars::from([
        ("job", job_name.to_string()),
        ("bucket", object.bucket.clone()),
        ("key", object.key.clone()),
        ("size", object.size.to_string()),
        ("etag", object.etag.clone().unwrap_or_default()),
        ("version_id", object.version_id.clone().unwrap_or_default()),
        ("event_time", event_time),
    ]);
    let launch = Launch {
        trigger: "s3",
        environment,
        vars,
        command: job.command.as_deref(),
        extra_environment: None,
        started_by: StartedBy::job(job_name).to_string(),
        token: token::for_object(job_name, object),
        size: Some(object.size),
    };
    let mut plan = build(config, job_name, job, launch)?;
    plan.cap = cap(config, job_name, job);
    Ok(plan)
}

/// Plans the launch of a schedule's job for one tick.
pub fn plan_tick(
    config: &Config,
    schedule: &ScheduleTrigger,
    tick: &ScheduleTick,
) -> Result<LaunchPlan, Error> {
    let job = lookup(config, &schedule.job)?;
    let scheduled_time = tick
        .scheduled_time
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let environment = vec![
        (job_env::SCHEDULE, schedule.name.clone()),
        (job_env::SCHEDULED_TIME, scheduled_time.clone()),
    ];
    let vars = Vars::from([
        ("job", schedule.job.clone()),
        ("schedule", schedule.name.clone()),
        ("scheduled_time", scheduled_time.clone()),
    ]);
    let started_by = StartedBy::schedule(&schedule.job, &schedule.name).to_string();
    let launch = Launch {
        trigger: "schedule",
        environment,
        vars,
        command: schedule.command.as_deref().or(job.command.as_deref()),
        extra_environment: Some(&schedule.environment),
        started_by: started_by.clone(),
        token: token::for_tick(&schedule.name, tick.scheduled_time),
        size: None,
    };
    let mut plan = build(config, &schedule.job, job, launch)?;
    plan.cap = cap(config, &schedule.job, job);
    plan.overlap = (schedule.overlap != Overlap::Allow).then_some(OverlapCheck {
        policy: schedule.overlap,
        started_by,
        scheduled_time,
    });
    Ok(plan)
}

fn lookup<'c>(config: &'c Config, job: &str) -> Result<&'c Job, Error> {
    config.job(job).ok_or_else(|| Error::Plan {
        job: job.into(),
        reason: "no such job in the config".into(),
    })
}

fn cap(config: &Config, job_name: &str, job: &Job) -> Option<ConcurrencyCap> {
    Some(ConcurrencyCap {
        max_running: job.max_running?,
        started_by: started_by_of(config, job_name),
    })
}

/// Every `startedBy` a job's tasks carry: the job's own and one per schedule of the job.
pub fn started_by_of(config: &Config, job_name: &str) -> Vec<String> {
    let mut started_by = vec![StartedBy::job(job_name).to_string()];
    started_by.extend(
        config
            .triggers
            .schedule
            .iter()
            .filter(|s| s.job == job_name)
            .map(|s| StartedBy::schedule(job_name, &s.name).to_string()),
    );
    started_by
}

/// What differs between an object launch and a tick launch.
struct Launch<'a> {
    trigger: &'static str,
    environment: Vec<(&'static str, String)>,
    vars: Vars,
    command: Option<&'a [String]>,
    extra_environment: Option<&'a std::collections::BTreeMap<String, String>>,
    started_by: String,
    token: String,
    size: Option<u64>,
}

fn build(config: &Config, job_name: &str, job: &Job, launch: Launch) -> Result<LaunchPlan, Error> {
    let fail = |reason: String| Error::Plan {
        job: job_name.into(),
        reason,
    };
    validate_started_by(&launch.started_by).map_err(fail)?;
    let settings = job.resolved(&config.defaults);

    let mut environment = vec![
        KeyValuePair {
            name: job_env::NAME.into(),
            value: job_name.into(),
        },
        KeyValuePair {
            name: job_env::TRIGGER.into(),
            value: launch.trigger.into(),
        },
        KeyValuePair {
            name: job_env::RUN_ID.into(),
            value: token::run_id(&launch.token),
        },
        KeyValuePair {
            name: job_env::ATTEMPT.into(),
            value: "1".into(),
        },
    ];
    environment.extend(
        launch
            .environment
            .into_iter()
            .map(|(name, value)| KeyValuePair {
                name: name.into(),
                value,
            }),
    );
    // A schedule's `environment` replaces the job's entry of the same name: one entry per name.
    let mut user_environment = job.environment.clone();
    if let Some(extra) = launch.extra_environment {
        user_environment.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    for (name, value) in &user_environment {
        let value = template::render(value, &launch.vars)
            .map_err(|e| fail(format!("environment.{name}: {e}")))?;
        environment.push(KeyValuePair {
            name: name.clone(),
            value,
        });
    }
    let command = launch
        .command
        .map(|parts| {
            parts
                .iter()
                .enumerate()
                .map(|(i, part)| {
                    template::render(part, &launch.vars)
                        .map_err(|e| fail(format!("command[{i}]: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;

    let (cpu, memory) = sizing(job, launch.size);
    let overrides = TaskOverride {
        container_overrides: vec![ContainerOverride {
            name: job.container.clone(),
            command,
            environment,
        }],
        cpu: cpu.map(|c| c.to_string()),
        memory: memory.map(|m| m.to_string()),
    };
    // With room for the `TRACEPARENT` the launcher adds to the request (`trace::apply`).
    let overrides_chars = serde_json::to_string(&overrides)
        .map(|s| s.chars().count() + job_env::TRACEPARENT_ENTRY_CHARS)
        .unwrap_or(usize::MAX);
    if overrides_chars > MAX_OVERRIDES_CHARS {
        return Err(fail(format!(
            "container overrides would be {overrides_chars} characters of JSON; ECS allows {MAX_OVERRIDES_CHARS} (is the object key very long?)"
        )));
    }

    let mut tags = vec![
        Tag {
            key: "jobrunner:job".into(),
            value: job_name.into(),
        },
        Tag {
            key: "jobrunner:trigger".into(),
            value: launch.trigger.into(),
        },
    ];
    tags.extend(job.tags.iter().map(|(key, value)| Tag {
        key: key.clone(),
        value: value.clone(),
    }));

    let primary = RunTaskInput {
        cluster: settings.cluster.clone().unwrap_or_default(),
        task_definition: job.task_definition.clone(),
        count: 1,
        client_token: launch.token.clone(),
        started_by: launch.started_by,
        launch_type: settings.launch_type.map(|t| t.as_str().to_string()),
        capacity_provider_strategy: vec![],
        platform_version: settings.platform_version.clone(),
        network_configuration: network(&settings),
        overrides,
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
        tags,
        propagate_tags: settings
            .propagate_tags
            .and_then(|p| p.then(|| "TASK_DEFINITION".to_string())),
        enable_ecs_managed_tags: true,
    };

    let attempts = match &settings.capacity {
        Some(providers) => providers
            .iter()
            .enumerate()
            .map(|(i, provider)| RunTaskInput {
                client_token: if i == 0 {
                    launch.token.clone()
                } else {
                    token::for_attempt(&launch.token, provider)
                },
                capacity_provider_strategy: vec![CapacityProviderStrategyItem {
                    capacity_provider: provider.clone(),
                    weight: 1,
                    base: 0,
                }],
                ..primary.clone()
            })
            .collect(),
        None => vec![primary],
    };
    Ok(LaunchPlan {
        job: job_name.into(),
        run_id: token::run_id(&launch.token),
        attempt: 1,
        attempts,
        cap: None,
        overlap: None,
    })
}

/// Task-level cpu/memory: the first size tier that fits the object, else the job's own.
fn sizing(job: &Job, size: Option<u64>) -> (Option<u32>, Option<u32>) {
    let tier = size.and_then(|size| {
        job.size_tiers
            .iter()
            .find(|t| t.max_bytes.is_none_or(|max| size <= max))
    });
    match tier {
        Some(tier) => (Some(tier.cpu), Some(tier.memory)),
        None => (job.cpu, job.memory),
    }
}

pub(crate) fn network(settings: &LaunchSettings) -> Option<NetworkConfiguration> {
    let subnets = settings.subnets.clone().filter(|s| !s.is_empty())?;
    Some(NetworkConfiguration {
        awsvpc_configuration: AwsVpcConfiguration {
            subnets,
            security_groups: settings.security_groups.clone().unwrap_or_default(),
            assign_public_ip: if settings.assign_public_ip.unwrap_or(false) {
                "ENABLED"
            } else {
                "DISABLED"
            }
            .into(),
        },
    })
}

#[cfg(test)]
pub(crate) mod tests;
