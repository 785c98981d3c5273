//! The `detail` of an "ECS Task State Change" event as typed structs.
//!
//! The detail mirrors DescribeTasks' `Task`. Only the fields the tracker reads are declared;
//! everything else (attachments, attributes, and fields AWS adds over time) is ignored. Fields
//! that real events sometimes send as `null` decode as absent.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::Error;

/// `lastStatus` of a task that has stopped for good.
pub const STOPPED: &str = "STOPPED";

/// The `detail` of an "ECS Task State Change" event (the fields jobrunner reads).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStateChange {
    pub task_arn: String,
    pub last_status: String,
    /// Increments on every state change of the task; redeliveries of one event repeat it.
    #[serde(default, deserialize_with = "lenient_int")]
    pub version: Option<u64>,
    pub cluster_arn: Option<String>,
    pub task_definition_arn: Option<String>,
    pub desired_status: Option<String>,
    /// TaskFailedToStart, EssentialContainerExited, UserInitiated, ServiceSchedulerInitiated,
    /// SpotInterruption, TerminationNotice.
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    /// `jobrunner/<job>` or `jobrunner/<job>/<schedule>` for jobrunner's tasks.
    pub started_by: Option<String>,
    /// `family:<family>` or `service:<service>`.
    pub group: Option<String>,
    pub launch_type: Option<String>,
    pub capacity_provider_name: Option<String>,
    pub availability_zone: Option<String>,
    /// Task-level CPU units (a string in events, e.g. `"256"`).
    #[serde(default, deserialize_with = "lenient_string")]
    pub cpu: Option<String>,
    /// Task-level memory in MiB (a string in events, e.g. `"512"`).
    #[serde(default, deserialize_with = "lenient_string")]
    pub memory: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub containers: Vec<ContainerState>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub overrides: TaskOverrides,
    pub created_at: Option<DateTime<Utc>>,
    pub pull_started_at: Option<DateTime<Utc>>,
    pub pull_stopped_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub stopping_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
}

/// One container of the task as the event reports it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// Absent when the container never ran (or ECS could not read it).
    #[serde(default, deserialize_with = "lenient_int")]
    pub exit_code: Option<i64>,
    /// E.g. `OutOfMemoryError: Container killed due to memory usage`.
    pub reason: Option<String>,
    pub last_status: Option<String>,
    pub image: Option<String>,
}

/// `overrides` of the task: what RunTask changed, including jobrunner's `JOB_*` variables.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOverrides {
    #[serde(default, deserialize_with = "null_as_default")]
    pub container_overrides: Vec<ContainerOverride>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverride {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub environment: Vec<KeyValue>,
    pub command: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct KeyValue {
    pub name: Option<String>,
    pub value: Option<String>,
}

impl TaskStateChange {
    /// Decodes an event's `detail`, naming the offending field when it does not fit.
    pub fn from_detail(detail: &Value) -> Result<Self, Error> {
        crate::event::typed(detail, "ECS Task State Change detail")
    }

    /// True when the task has stopped (the only state the tracker acts on).
    pub fn is_stopped(&self) -> bool {
        self.last_status == STOPPED
    }

    /// The identity of one delivery: `taskArn#version` (redeliveries share it).
    pub fn dedupe_key(&self) -> String {
        format!("{}#{}", self.task_arn, self.version.unwrap_or(0))
    }

    /// The task's ID: the last segment of its ARN.
    pub fn task_id(&self) -> &str {
        self.task_arn.rsplit('/').next().unwrap_or(&self.task_arn)
    }

    /// The region in the task ARN.
    pub fn region(&self) -> Option<&str> {
        arn_field(&self.task_arn, 3)
    }

    /// The partition in the task ARN (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn partition(&self) -> Option<&str> {
        arn_field(&self.task_arn, 1)
    }

    /// The account in the task ARN.
    pub fn account(&self) -> Option<&str> {
        arn_field(&self.task_arn, 4)
    }

    /// The cluster's name, from `clusterArn` or the (long-format) task ARN.
    pub fn cluster_name(&self) -> Option<&str> {
        if let Some(name) = self
            .cluster_arn
            .as_deref()
            .and_then(|arn| arn.split_once(":cluster/"))
            .map(|(_, name)| name)
        {
            return Some(name);
        }
        // arn:aws:ecs:region:account:task/CLUSTER/ID (the old format has no cluster segment).
        let resource = self.task_arn.splitn(6, ':').nth(5)?;
        let mut parts = resource.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("task"), Some(cluster), Some(_)) => Some(cluster),
            _ => None,
        }
    }

    /// The task definition as `family:revision`, from its ARN.
    pub fn task_definition(&self) -> Option<&str> {
        let arn = self.task_definition_arn.as_deref()?;
        Some(
            arn.rsplit_once(":task-definition/")
                .map(|(_, name)| name)
                .unwrap_or(arn),
        )
    }

    /// The value of an environment variable set in the task's container overrides.
    pub fn override_env(&self, name: &str) -> Option<&str> {
        self.overrides
            .container_overrides
            .iter()
            .flat_map(|o| o.environment.iter())
            .find(|kv| kv.name.as_deref() == Some(name))
            .and_then(|kv| kv.value.as_deref())
    }

    /// Run time: stopped − started, or stopped − created for tasks that never started.
    pub fn run_seconds(&self) -> Option<i64> {
        let stopped = self.stopped_at?;
        let from = self.started_at.or(self.created_at)?;
        Some((stopped - from).num_seconds().max(0))
    }
}

fn arn_field(arn: &str, index: usize) -> Option<&str> {
    arn.strip_prefix("arn:")?;
    arn.split(':').nth(index).filter(|s| !s.is_empty())
}

fn null_as_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

/// An integer, or a string holding one (some producers quote numbers).
fn lenient_int<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
{
    let text = match Option::<Value>::deserialize(de)? {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(other) => other.to_string(),
    };
    text.parse()
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("expected an integer, got {text}")))
}

fn lenient_string<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(de)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a string, got {other}"
        ))),
    }
}
