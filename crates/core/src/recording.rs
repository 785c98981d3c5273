//! A port wrapper that writes down every call as an [`Action`], in order, before making it.
//!
//! `jobrunner plan` wraps the dry run's world (`dryrun`) in it; the integration tests
//! wrap the real AWS adapters in it and compare the two logs.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::action::Action;
use crate::alert::{Publish, TaskDefinitionInfo};
use crate::plan::RunTaskInput;
use crate::ports::{
    CallResult, Clock, DescribedTask, ObjectHead, Objects, Put, Queues, Record, RunTaskAnswer,
    Saved, Services, StateTable, TaskDefinitions, Tasks, Topic, WaitQueue,
};
use crate::scaling::{QueueDepth, ServiceCounts, TaskProtection};

/// What a wrapped port can tell about the answer it is about to give (the dry run's world
/// does; real adapters do not, and the default says nothing).
pub trait Explain {
    /// The assumed answer to `action`, if this port makes answers up.
    fn assumed(&self, _action: &Action) -> Option<Value> {
        None
    }
}

/// Records every call made through it, then passes it on to `inner`.
#[derive(Debug, Default)]
pub struct Recorder<P> {
    pub inner: P,
    log: Mutex<Vec<Action>>,
}

impl<P: Explain> Recorder<P> {
    pub fn new(inner: P) -> Self {
        Recorder {
            inner,
            log: Mutex::new(Vec::new()),
        }
    }

    /// Takes the calls so far, leaving the log empty.
    pub fn take(&self) -> Vec<Action> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn record(&self, action: Action) {
        let action = match self.inner.assumed(&action) {
            Some(answer) => action.assuming(answer),
            None => action,
        };
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(action);
    }
}

impl<P: Tasks + Explain> Tasks for Recorder<P> {
    fn list_tasks(
        &self,
        cluster: &str,
        started_by: &str,
    ) -> impl Future<Output = CallResult<Vec<String>>> + Send {
        self.record(Action::list_tasks(cluster, started_by));
        self.inner.list_tasks(cluster, started_by)
    }

    fn describe_tasks(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> impl Future<Output = CallResult<Vec<DescribedTask>>> + Send {
        self.record(Action::describe_tasks(cluster, task_arns));
        self.inner.describe_tasks(cluster, task_arns)
    }

    fn run_task(
        &self,
        input: &RunTaskInput,
    ) -> impl Future<Output = CallResult<RunTaskAnswer>> + Send {
        self.record(Action::run_task(input));
        self.inner.run_task(input)
    }

    fn stop_task(
        &self,
        cluster: &str,
        task_arn: &str,
        reason: &str,
    ) -> impl Future<Output = CallResult<()>> + Send {
        self.record(Action::stop_task(cluster, task_arn, reason));
        self.inner.stop_task(cluster, task_arn, reason)
    }
}

impl<P: TaskDefinitions + Explain> TaskDefinitions for Recorder<P> {
    fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> impl Future<Output = CallResult<TaskDefinitionInfo>> + Send {
        self.record(Action::describe_task_definition(task_definition));
        self.inner.describe_task_definition(task_definition)
    }
}

impl<P: Topic + Explain> Topic for Recorder<P> {
    fn topic_arn(&self) -> &str {
        self.inner.topic_arn()
    }

    fn publish(&self, message: &Publish) -> impl Future<Output = CallResult<String>> + Send {
        self.record(Action::publish(self.inner.topic_arn(), message));
        self.inner.publish(message)
    }
}

impl<P: StateTable + Explain> StateTable for Recorder<P> {
    fn table(&self) -> &str {
        self.inner.table()
    }

    fn get(&self, key: &str) -> impl Future<Output = CallResult<Option<Record>>> + Send {
        self.record(Action::get_item(self.inner.table(), key));
        self.inner.get(key)
    }

    fn put(&self, put: &Put<'_>) -> impl Future<Output = CallResult<Saved>> + Send {
        self.record(Action::put_item(self.inner.table(), put));
        self.inner.put(put)
    }
}

impl<P: WaitQueue + Explain> WaitQueue for Recorder<P> {
    fn send(
        &self,
        queue_url: &str,
        body: &str,
        delay_seconds: u32,
    ) -> impl Future<Output = CallResult<()>> + Send {
        self.record(Action::send_message(queue_url, body, delay_seconds));
        self.inner.send(queue_url, body, delay_seconds)
    }
}

impl<P: Queues + Explain> Queues for Recorder<P> {
    fn depth(&self, queue_url: &str) -> impl Future<Output = CallResult<QueueDepth>> + Send {
        self.record(Action::get_queue_attributes(queue_url));
        self.inner.depth(queue_url)
    }
}

impl<P: Services + Explain> Services for Recorder<P> {
    fn counts(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl Future<Output = CallResult<ServiceCounts>> + Send {
        self.record(Action::describe_services(cluster, service));
        self.inner.counts(cluster, service)
    }

    fn set_desired(
        &self,
        cluster: &str,
        service: &str,
        desired: u32,
    ) -> impl Future<Output = CallResult<()>> + Send {
        self.record(Action::update_service(cluster, service, desired));
        self.inner.set_desired(cluster, service, desired)
    }

    fn service_tasks(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl Future<Output = CallResult<Vec<String>>> + Send {
        self.record(Action::list_service_tasks(cluster, service));
        self.inner.service_tasks(cluster, service)
    }

    fn task_protection(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> impl Future<Output = CallResult<Vec<TaskProtection>>> + Send {
        self.record(Action::get_task_protection(cluster, task_arns));
        self.inner.task_protection(cluster, task_arns)
    }
}

impl<P: Objects + Explain> Objects for Recorder<P> {
    fn head(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = CallResult<Option<ObjectHead>>> + Send {
        self.record(Action::head_object(bucket, key, version_id));
        self.inner.head(bucket, key, version_id)
    }
}

impl<P: Clock + Explain> Clock for Recorder<P> {
    fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        self.inner.sleep(duration)
    }
}
