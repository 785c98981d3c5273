//! The narrow ports the handlers' drivers call: ECS tasks and task definitions, the alert
//! topic, the state table, queues, services and the clock.
//!
//! The AWS adapters (`jobrunner-aws`) implement them over the official SDK clients; the dry
//! run implements them with documented default answers (the dry run's world); the recorder
//! wraps either and writes down every call as an action. A port does I/O and nothing else:
//! every decision about what to call, and what an answer means, is the driver's.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::alert::{Publish, TaskDefinitionInfo};
use crate::plan::RunTaskInput;
use crate::scaling::{QueueDepth, ServiceCounts, TaskProtection};

pub use crate::error::CallError;

/// What a port call returns.
pub type CallResult<T> = Result<T, CallError>;

/// A task as DescribeTasks reports it (the fields the launch policies and time limits read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedTask {
    pub task_arn: String,
    /// The container overrides' environment, every container's, in order.
    pub environment: Vec<(String, String)>,
    /// `lastStatus` (e.g. PENDING, RUNNING).
    pub last_status: String,
    /// `desiredStatus` (RUNNING, or STOPPED once something asked it to stop).
    pub desired_status: String,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
}

impl DescribedTask {
    /// The value of `name` in the task's override environment.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.environment
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// RunTask's answer, unclassified: the launch policy decides what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunTaskAnswer {
    /// `tasks[]` and `failures[]` of a 200 response.
    Response {
        task_arns: Vec<String>,
        failures: Vec<TaskFailure>,
    },
    /// `ConflictException`: the token was used with other parameters; these tasks exist.
    Conflict { task_arns: Vec<String> },
}

/// One entry of RunTask's `failures[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    pub reason: String,
    pub detail: Option<String>,
}

/// ECS tasks: list, describe, run and stop. Nothing else.
pub trait Tasks: Sync {
    /// ARNs of the tasks in `cluster` started by `started_by` whose desired status is RUNNING.
    fn list_tasks(
        &self,
        cluster: &str,
        started_by: &str,
    ) -> impl Future<Output = CallResult<Vec<String>>> + Send;

    /// The tasks behind `task_arns` (at most 100).
    fn describe_tasks(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> impl Future<Output = CallResult<Vec<DescribedTask>>> + Send;

    fn run_task(
        &self,
        input: &RunTaskInput,
    ) -> impl Future<Output = CallResult<RunTaskAnswer>> + Send;

    /// Stops a task; `reason` is at most 255 characters (the driver clips it).
    fn stop_task(
        &self,
        cluster: &str,
        task_arn: &str,
        reason: &str,
    ) -> impl Future<Output = CallResult<()>> + Send;
}

/// ECS task definitions (DescribeTaskDefinition).
pub trait TaskDefinitions: Sync {
    fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> impl Future<Output = CallResult<TaskDefinitionInfo>> + Send;
}

/// The alert topic (SNS Publish).
pub trait Topic: Sync {
    /// The topic's ARN.
    fn topic_arn(&self) -> &str;

    /// Publishes one message; returns its message ID.
    fn publish(&self, message: &Publish) -> impl Future<Output = CallResult<String>> + Send;
}

/// One stored value and the version to pass back to [`StateTable::put`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub data: String,
    pub version: u64,
}

/// The outcome of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// Written; this is the item's new version.
    Written { version: u64 },
    /// Someone else wrote first (the item's version is not the expected one).
    Conflict,
}

/// A write to the state table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put<'a> {
    pub key: &'a str,
    /// The caller's JSON document.
    pub data: &'a str,
    /// The version the item must still have; `None`: the item must not exist yet.
    pub expected: Option<u64>,
    /// When DynamoDB's TTL may delete the item.
    pub expires_at: DateTime<Utc>,
    /// The time of the write, for people reading the table.
    pub now: DateTime<Utc>,
    /// The item's keys in the listing index (runs only).
    pub listing: Option<Listing>,
}

/// An item's place in the table's listing index (`ledger::keys::LIST_INDEX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub partition: String,
    pub sort: String,
}

/// Small versioned state (DynamoDB `[state] table`), with conditional writes.
pub trait StateTable: Sync {
    /// The table's name.
    fn table(&self) -> &str;

    /// Reads an item (strongly consistent), or `None`.
    fn get(&self, key: &str) -> impl Future<Output = CallResult<Option<Record>>> + Send;

    /// Writes if the stored version is still `put.expected`.
    fn put(&self, put: &Put<'_>) -> impl Future<Output = CallResult<Saved>> + Send;
}

/// Sending a message to an SQS queue (SendMessage): how the launcher puts an event that
/// waits at its job's cap back in line.
pub trait WaitQueue: Sync {
    /// Sends `body` to `queue_url`, invisible for `delay_seconds` (0-900).
    fn send(
        &self,
        queue_url: &str,
        body: &str,
        delay_seconds: u32,
    ) -> impl Future<Output = CallResult<()>> + Send;
}

/// SQS queue depth (GetQueueAttributes).
pub trait Queues: Sync {
    fn depth(&self, queue_url: &str) -> impl Future<Output = CallResult<QueueDepth>> + Send;
}

/// ECS service counts (DescribeServices), desired count (UpdateService) and the scale-in
/// protection of the service's tasks (ListTasks, GetTaskProtection).
pub trait Services: Sync {
    fn counts(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl Future<Output = CallResult<ServiceCounts>> + Send;

    fn set_desired(
        &self,
        cluster: &str,
        service: &str,
        desired: u32,
    ) -> impl Future<Output = CallResult<()>> + Send;

    /// ARNs of the service's tasks whose desired status is RUNNING (ListTasks by serviceName).
    fn service_tasks(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl Future<Output = CallResult<Vec<String>>> + Send;

    /// The scale-in protection of `task_arns` (at most 10: GetTaskProtection). Tasks ECS
    /// cannot answer for (stopped meanwhile) are left out.
    fn task_protection(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> impl Future<Output = CallResult<Vec<TaskProtection>>> + Send;
}

/// The time, and a way to wait (a manual clock in tests and the dry run).
pub trait Clock: Sync {
    fn now(&self) -> DateTime<Utc>;
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send;
}

impl<T: Tasks> Tasks for &T {
    fn list_tasks(
        &self,
        cluster: &str,
        started_by: &str,
    ) -> impl Future<Output = CallResult<Vec<String>>> + Send {
        (**self).list_tasks(cluster, started_by)
    }
    fn describe_tasks(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> impl Future<Output = CallResult<Vec<DescribedTask>>> + Send {
        (**self).describe_tasks(cluster, task_arns)
    }
    fn run_task(
        &self,
        input: &RunTaskInput,
    ) -> impl Future<Output = CallResult<RunTaskAnswer>> + Send {
        (**self).run_task(input)
    }
    fn stop_task(
        &self,
        cluster: &str,
        task_arn: &str,
        reason: &str,
    ) -> impl Future<Output = CallResult<()>> + Send {
        (**self).stop_task(cluster, task_arn, reason)
    }
}

impl<T: Clock> Clock for &T {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        (**self).sleep(duration)
    }
}

/// A clock that only moves when told to, or when something sleeps on it: sleeping advances
/// it, so sub-minute sampling costs no wall time in tests and the dry run.
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(now: DateTime<Utc>) -> Self {
        ManualClock {
            now: std::sync::Mutex::new(now),
        }
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    pub fn advance(&self, duration: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        self.advance(duration);
        std::future::ready(())
    }
}

/// What HeadObject tells about one object version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectHead {
    /// `Content-Length`, in bytes.
    pub size: u64,
    /// `ETag` as S3 reports it (quotes included).
    pub etag: Option<String>,
    /// The version HeadObject found (`None` in an unversioned bucket).
    pub version_id: Option<String>,
    /// `Last-Modified`.
    pub last_modified: Option<DateTime<Utc>>,
}

/// S3 objects: their metadata (HeadObject), for a batch task's size and ETag and for an event
/// that waited whose object may have been deleted since.
pub trait Objects: Sync {
    /// The object's metadata, or `None` when the key (or that version) does not exist or is a
    /// delete marker.
    fn head(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = CallResult<Option<ObjectHead>>> + Send;
}

impl<T: Objects> Objects for &T {
    fn head(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = CallResult<Option<ObjectHead>>> + Send {
        (**self).head(bucket, key, version_id)
    }
}
