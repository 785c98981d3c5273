//! All the adapters a function needs, as one value that implements every core port it uses.
//!
//! Each function's `main` builds only the clients it calls; a port whose adapter was not built
//! answers with a rejection naming what is missing (a wiring mistake, never a silent no-op).

use std::time::Duration;

use chrono::{DateTime, Utc};
use jobrunner_core::alert::{Publish, TaskDefinitionInfo};
use jobrunner_core::plan::RunTaskInput;
use jobrunner_core::ports::{
    CallError, CallResult, Clock, DescribedTask, ObjectHead, Objects, Put, Queues, Record,
    RunTaskAnswer, Saved, Services, StateTable, TaskDefinitions, Tasks, Topic, WaitQueue,
};
use jobrunner_core::recording::Explain;
use jobrunner_core::scaling::{QueueDepth, ServiceCounts, TaskProtection};

use crate::ecs::EcsTasks;
use crate::ecs_service::EcsServices;
use crate::s3::S3Objects;
use crate::sns::SnsTopic;
use crate::sqs_queue::SqsQueues;
use crate::state_store::StateStore;
use crate::task_definitions::TaskDefinitions as TaskDefinitionCache;

/// The adapters of one function, built once per cold start, and its clock (the wall clock in
/// Lambda; a manual one where a test drives time).
#[derive(Debug, Default)]
pub struct Adapters<C = SystemClock> {
    pub ecs: Option<EcsTasks>,
    pub task_definitions: Option<TaskDefinitionCache>,
    pub topic: Option<SnsTopic>,
    pub state: Option<StateStore>,
    pub queues: Option<SqsQueues>,
    pub services: Option<EcsServices>,
    /// S3 HeadObject (the launcher, when a job needs it).
    pub objects: Option<S3Objects>,
    pub clock: C,
}

/// Wall-clock time and tokio's sleep.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration) -> impl std::future::Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }
}

fn missing(operation: &'static str, what: &str) -> CallError {
    CallError::Rejected {
        operation,
        message: format!("no {what} adapter was built for this function"),
    }
}

impl<C: Sync> Explain for Adapters<C> {}

impl<C: Sync> Tasks for Adapters<C> {
    async fn list_tasks(&self, cluster: &str, started_by: &str) -> CallResult<Vec<String>> {
        let ecs = self
            .ecs
            .as_ref()
            .ok_or_else(|| missing("ListTasks", "ECS"))?;
        ecs.list_tasks(cluster, started_by).await
    }

    async fn describe_tasks(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> CallResult<Vec<DescribedTask>> {
        let ecs = self
            .ecs
            .as_ref()
            .ok_or_else(|| missing("DescribeTasks", "ECS"))?;
        ecs.describe_tasks(cluster, task_arns).await
    }

    async fn run_task(&self, input: &RunTaskInput) -> CallResult<RunTaskAnswer> {
        let ecs = self.ecs.as_ref().ok_or_else(|| missing("RunTask", "ECS"))?;
        ecs.run_task(input).await
    }

    async fn stop_task(&self, cluster: &str, task_arn: &str, reason: &str) -> CallResult<()> {
        let ecs = self
            .ecs
            .as_ref()
            .ok_or_else(|| missing("StopTask", "ECS"))?;
        ecs.stop_task(cluster, task_arn, reason).await
    }
}

impl<C: Sync> TaskDefinitions for Adapters<C> {
    async fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> CallResult<TaskDefinitionInfo> {
        let cache = self
            .task_definitions
            .as_ref()
            .ok_or_else(|| missing("DescribeTaskDefinition", "ECS task definition"))?;
        cache.get(task_definition).await
    }
}

impl<C: Sync> Topic for Adapters<C> {
    fn topic_arn(&self) -> &str {
        self.topic.as_ref().map_or("", SnsTopic::topic_arn)
    }

    async fn publish(&self, message: &Publish) -> CallResult<String> {
        let topic = self
            .topic
            .as_ref()
            .ok_or_else(|| missing("Publish", "SNS"))?;
        topic.publish(message).await
    }
}

impl<C: Sync> StateTable for Adapters<C> {
    fn table(&self) -> &str {
        self.state.as_ref().map_or("", StateStore::table)
    }

    async fn get(&self, key: &str) -> CallResult<Option<Record>> {
        let state = self
            .state
            .as_ref()
            .ok_or_else(|| missing("GetItem", "DynamoDB"))?;
        state.get(key).await
    }

    async fn put(&self, put: &Put<'_>) -> CallResult<Saved> {
        let state = self
            .state
            .as_ref()
            .ok_or_else(|| missing("PutItem", "DynamoDB"))?;
        state.put(put).await
    }
}

impl<C: Sync> Queues for Adapters<C> {
    async fn depth(&self, queue_url: &str) -> CallResult<QueueDepth> {
        let queues = self
            .queues
            .as_ref()
            .ok_or_else(|| missing("GetQueueAttributes", "SQS"))?;
        queues.depth(queue_url).await
    }
}

impl<C: Sync> WaitQueue for Adapters<C> {
    async fn send(&self, queue_url: &str, body: &str, delay_seconds: u32) -> CallResult<()> {
        let queues = self
            .queues
            .as_ref()
            .ok_or_else(|| missing("SendMessage", "SQS"))?;
        queues.send(queue_url, body, delay_seconds).await
    }
}

impl<C: Sync> Services for Adapters<C> {
    async fn counts(&self, cluster: &str, service: &str) -> CallResult<ServiceCounts> {
        let services = self
            .services
            .as_ref()
            .ok_or_else(|| missing("DescribeServices", "ECS service"))?;
        services.counts(cluster, service).await
    }

    async fn set_desired(&self, cluster: &str, service: &str, desired: u32) -> CallResult<()> {
        let services = self
            .services
            .as_ref()
            .ok_or_else(|| missing("UpdateService", "ECS service"))?;
        services.set_desired(cluster, service, desired).await
    }

    async fn service_tasks(&self, cluster: &str, service: &str) -> CallResult<Vec<String>> {
        let services = self
            .services
            .as_ref()
            .ok_or_else(|| missing("ListTasks", "ECS service"))?;
        services.service_tasks(cluster, service).await
    }

    async fn task_protection(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> CallResult<Vec<TaskProtection>> {
        let services = self
            .services
            .as_ref()
            .ok_or_else(|| missing("GetTaskProtection", "ECS service"))?;
        services.task_protection(cluster, task_arns).await
    }
}

impl<C: Sync> Objects for Adapters<C> {
    async fn head(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> CallResult<Option<ObjectHead>> {
        let objects = self
            .objects
            .as_ref()
            .ok_or_else(|| missing("HeadObject", "S3"))?;
        objects.head(bucket, key, version_id).await
    }
}

impl<C: Clock> Clock for Adapters<C> {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn sleep(&self, duration: Duration) -> impl std::future::Future<Output = ()> + Send {
        self.clock.sleep(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_port_without_its_adapter_is_a_named_rejection() {
        let adapters: Adapters = Adapters::default();
        let err = adapters.list_tasks("jobs", "x").await.unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("no ECS adapter"), "{err}");
        assert_eq!(adapters.topic_arn(), "");
    }
}
