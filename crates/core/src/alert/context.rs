//! Context for an alert: which job or worker a task belongs to, which input it processed, and
//! links to the task in the ECS console and to its CloudWatch Logs streams.
//!
//! The log links need the task definition's `awslogs` settings, which the event does not carry:
//! the tracker looks the task definition up (cached per warm container) and passes what it
//! found as a [`TaskDefinitionLookup`]; the dry run passes [`TaskDefinitionLookup::NotLookedUp`].

use serde::Serialize;

use crate::config::Config;
use crate::event::TaskStateChange;
use crate::job_env;
use crate::started_by::StartedBy;

/// What the tracker learned from DescribeTaskDefinition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskDefinitionInfo {
    pub containers: Vec<ContainerDefinitionInfo>,
}

/// One container definition: whether it is essential and where its logs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDefinitionInfo {
    pub name: String,
    /// ECS's default is `true`.
    pub essential: bool,
    /// Set when the container uses the `awslogs` log driver.
    pub awslogs: Option<AwsLogs>,
}

/// The `awslogs` driver's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsLogs {
    /// `awslogs-group`.
    pub group: String,
    /// `awslogs-region`; the task's region when absent.
    pub region: Option<String>,
    /// `awslogs-stream-prefix`: streams are `<prefix>/<container>/<task-id>`.
    pub stream_prefix: Option<String>,
}

impl TaskDefinitionInfo {
    pub fn container(&self, name: &str) -> Option<&ContainerDefinitionInfo> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// Whether `name` is essential; containers the definition does not list count as essential.
    pub fn is_essential(&self, name: &str) -> bool {
        self.container(name).is_none_or(|c| c.essential)
    }
}

/// The outcome of looking up a task's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskDefinitionLookup {
    Found(TaskDefinitionInfo),
    /// Not looked up (the dry run, or a stop not worth an alert).
    NotLookedUp,
    /// The lookup failed; the alert goes out without log links.
    Failed(String),
}

impl TaskDefinitionLookup {
    pub fn info(&self) -> Option<&TaskDefinitionInfo> {
        match self {
            TaskDefinitionLookup::Found(info) => Some(info),
            _ => None,
        }
    }
}

/// What started the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// A jobrunner job (`startedBy` = `jobrunner/<job>[/<schedule>]`).
    Job {
        job: String,
        schedule: Option<String>,
    },
    /// A task of an ECS service (`group` = `service:<name>`), with the `[workers]` entry that
    /// scales it when there is one.
    Service {
        service: String,
        worker: Option<String>,
    },
    /// A task the scaler launched for a jobs-mode worker (`startedBy` = `jobrunner/worker/<name>`).
    Worker { worker: String },
    /// Anything else: named by its task definition family.
    Task { family: Option<String> },
}

impl Origin {
    /// Works out what started `change`.
    pub fn of(config: &Config, change: &TaskStateChange) -> Origin {
        match change.started_by.as_deref().and_then(StartedBy::parse) {
            Some(StartedBy::Job { job }) => {
                return Origin::Job {
                    job,
                    schedule: None,
                };
            }
            Some(StartedBy::Schedule { job, schedule }) => {
                return Origin::Job {
                    job,
                    schedule: Some(schedule),
                };
            }
            Some(StartedBy::Worker { worker }) => return Origin::Worker { worker },
            None => {}
        }
        if let Some(service) = change
            .group
            .as_deref()
            .and_then(|g| g.strip_prefix("service:"))
        {
            let cluster = change.cluster_name();
            let worker = config
                .workers
                .iter()
                .find(|(_, w)| {
                    let same_service =
                        w.service == service || w.service.rsplit('/').next() == Some(service);
                    let same_cluster = cluster
                        .is_none_or(|c| w.cluster == c || w.cluster.rsplit('/').next() == Some(c));
                    same_service && same_cluster
                })
                .map(|(name, _)| name.clone());
            return Origin::Service {
                service: service.to_owned(),
                worker,
            };
        }
        if let Some(job) = change.override_env(job_env::NAME) {
            return Origin::Job {
                job: job.to_owned(),
                schedule: change.override_env(job_env::SCHEDULE).map(str::to_owned),
            };
        }
        let family = change
            .group
            .as_deref()
            .and_then(|g| g.strip_prefix("family:"))
            .or_else(|| {
                change
                    .task_definition()
                    .map(|td| td.split(':').next().unwrap_or(td))
            })
            .map(str::to_owned);
        Origin::Task { family }
    }

    /// The name alerts use: the job, the worker (or service), or the family.
    pub fn name(&self) -> &str {
        match self {
            Origin::Job { job, .. } => job,
            Origin::Service {
                worker: Some(worker),
                ..
            } => worker,
            Origin::Service { service, .. } => service,
            Origin::Worker { worker } => worker,
            Origin::Task {
                family: Some(family),
            } => family,
            Origin::Task { family: None } => "unknown",
        }
    }

    /// `job`, `service`, `worker` or `task`.
    pub fn kind(&self) -> &'static str {
        match self {
            Origin::Job { .. } => "job",
            Origin::Service { .. } => "service",
            Origin::Worker { .. } => "worker",
            Origin::Task { .. } => "task",
        }
    }

    /// One line: `job thumbnails`, `job report (schedule hourly)`, `worker orders (service order-workers)`.
    pub fn describe(&self) -> String {
        match self {
            Origin::Job {
                job,
                schedule: Some(schedule),
            } => format!("job {job} (schedule {schedule})"),
            Origin::Job {
                job,
                schedule: None,
            } => format!("job {job}"),
            Origin::Service {
                service,
                worker: Some(worker),
            } => format!("worker {worker} (service {service})"),
            Origin::Service {
                service,
                worker: None,
            } => format!("service {service}"),
            Origin::Worker { worker } => format!("worker {worker} (jobs mode)"),
            Origin::Task {
                family: Some(family),
            } => format!("task definition {family}"),
            Origin::Task { family: None } => "a task".into(),
        }
    }
}

/// The input a job's task processed, from the `JOB_*` variables in its container overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobInput {
    /// `s3` or `schedule`.
    pub trigger: Option<String>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub version_id: Option<String>,
    pub schedule: Option<String>,
    pub scheduled_time: Option<String>,
}

impl JobInput {
    pub fn of(change: &TaskStateChange) -> JobInput {
        let env = |name: &str| change.override_env(name).map(str::to_owned);
        JobInput {
            trigger: env(job_env::TRIGGER),
            bucket: env(job_env::BUCKET),
            key: env(job_env::KEY),
            version_id: env(job_env::VERSION_ID),
            schedule: env(job_env::SCHEDULE),
            scheduled_time: env(job_env::SCHEDULED_TIME),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bucket.is_none()
            && self.key.is_none()
            && self.scheduled_time.is_none()
            && self.schedule.is_none()
    }

    /// `s3://bucket/key`, `schedule hourly at 2024-05-01T10:00:00Z`, or `None`.
    pub fn describe(&self) -> Option<String> {
        match (
            &self.bucket,
            &self.key,
            &self.schedule,
            &self.scheduled_time,
        ) {
            (Some(bucket), Some(key), _, _) => Some(match &self.version_id {
                Some(version) => format!("s3://{bucket}/{key} (version {version})"),
                None => format!("s3://{bucket}/{key}"),
            }),
            (Some(bucket), None, _, _) => Some(format!("s3://{bucket}")),
            (_, _, Some(schedule), Some(time)) => Some(format!("schedule {schedule} at {time}")),
            (_, _, None, Some(time)) => Some(format!("scheduled time {time}")),
            (_, _, Some(schedule), None) => Some(format!("schedule {schedule}")),
            _ => None,
        }
    }
}

/// A link to one container's log stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLink {
    pub container: String,
    pub group: String,
    pub stream: String,
    pub region: String,
    pub url: String,
}

/// The AWS console's host for a partition and region.
fn console_host(partition: Option<&str>, region: &str) -> String {
    match partition {
        Some("aws-cn") => "console.amazonaws.cn".into(),
        Some("aws-us-gov") => "console.amazonaws-us-gov.com".into(),
        _ => format!("{region}.console.aws.amazon.com"),
    }
}

/// The task's page in the ECS console.
pub fn console_url(change: &TaskStateChange) -> Option<String> {
    let region = change.region()?;
    let cluster = change.cluster_name()?;
    // Names ECS cannot have (clusters ≤ 255 characters, task IDs 32) get no link.
    if cluster.len() > MAX_NAME_BYTES || change.task_id().len() > MAX_NAME_BYTES {
        return None;
    }
    let host = console_host(change.partition(), region);
    Some(format!(
        "https://{host}/ecs/v2/clusters/{}/tasks/{}/configuration?region={region}",
        encode_path(cluster),
        encode_path(change.task_id())
    ))
}

/// Longest name (cluster, container, task ID) ECS allows, in bytes of ASCII.
const MAX_NAME_BYTES: usize = 255;
/// Longest log group or log stream name CloudWatch Logs allows.
const MAX_LOG_NAME: usize = 512;

/// One link per container whose logs go to CloudWatch Logs, in the event's container order.
pub fn log_links(change: &TaskStateChange, info: &TaskDefinitionInfo) -> Vec<LogLink> {
    log_links_iter(change, info).collect()
}

/// [`log_links`], built lazily: a renderer that shows a few links builds only those.
pub(super) fn log_links_iter<'a>(
    change: &'a TaskStateChange,
    info: &'a TaskDefinitionInfo,
) -> impl Iterator<Item = LogLink> + 'a {
    let task_region = change.region();
    let mut names: Vec<&str> = change.containers.iter().map(|c| c.name.as_str()).collect();
    for definition in &info.containers {
        if !names.contains(&definition.name.as_str()) {
            names.push(&definition.name);
        }
    }
    names
        .into_iter()
        .filter(move |_| task_region.is_some())
        .filter_map(move |name| {
            let task_region = task_region?;
            let logs = info.container(name)?.awslogs.as_ref()?;
            // Without a stream prefix the stream name is the Docker container ID, unknown here.
            let prefix = logs.stream_prefix.as_deref()?;
            let region = logs.region.as_deref().unwrap_or(task_region);
            // A stream or group CloudWatch Logs cannot have is no link (and no 200 KB URL).
            let stream_len = prefix.len() + name.len() + change.task_id().len() + 2;
            if stream_len > MAX_LOG_NAME || logs.group.len() > MAX_LOG_NAME {
                return None;
            }
            let stream = format!("{prefix}/{name}/{}", change.task_id());
            let url = format!(
                "https://{}/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{}/log-events/{}",
                console_host(change.partition(), region),
                console_fragment(&logs.group),
                console_fragment(&stream)
            );
            Some(LogLink { container: name.to_owned(), group: logs.group.clone(), stream, region: region.to_owned(), url })
        })
}

/// Percent-encodes everything but unreserved characters.
fn encode_path(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 15)] as char);
        }
    }
    out
}

/// The CloudWatch console's fragment encoding: URL-encode twice, then write `%` as `$`
/// (`/ecs/app` → `$252Fecs$252Fapp`).
fn console_fragment(text: &str) -> String {
    encode_path(&encode_path(text)).replace('%', "$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_fragment_matches_the_console() {
        assert_eq!(
            console_fragment("/ecs/thumbnails"),
            "$252Fecs$252Fthumbnails"
        );
        assert_eq!(console_fragment("ecs/app/abc"), "ecs$252Fapp$252Fabc");
    }
}
