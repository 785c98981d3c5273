//! Looking up task definitions for alerts: which containers are essential and where their
//! logs go (the `awslogs` driver's group, region and stream prefix).
//!
//! A task definition revision never changes, so each one is described once per warm Lambda
//! container and cached by ARN (bounded; the cache starts over when full).

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{LogDriver, TaskDefinition};
use jobrunner_core::alert::{AwsLogs, ContainerDefinitionInfo, TaskDefinitionInfo};

use crate::error::Error;

/// Cached task definitions at most; the cache is cleared when it would grow past this.
pub const CACHE_CAPACITY: usize = 256;

/// DescribeTaskDefinition behind a per-container cache.
#[derive(Debug)]
pub struct TaskDefinitions {
    client: Client,
    cache: Mutex<HashMap<String, TaskDefinitionInfo>>,
}

impl TaskDefinitions {
    pub fn new(client: Client) -> Self {
        TaskDefinitions {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// What alerts need from a task definition (ARN, or `family:revision`).
    pub async fn get(&self, task_definition: &str) -> Result<TaskDefinitionInfo, Error> {
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(task_definition)
        {
            return Ok(hit.clone());
        }
        let output = self
            .client
            .describe_task_definition()
            .task_definition(task_definition)
            .send()
            .await
            .map_err(|e| crate::error::from_sdk("DescribeTaskDefinition", e))?;
        let info = output
            .task_definition()
            .map(info)
            .ok_or_else(|| Error::Rejected {
                operation: "DescribeTaskDefinition",
                message: format!("no task definition returned for {task_definition}"),
            })?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(task_definition.to_owned(), info.clone());
        Ok(info)
    }
}

/// The parts of a task definition alerts use.
pub fn info(definition: &TaskDefinition) -> TaskDefinitionInfo {
    TaskDefinitionInfo {
        containers: definition
            .container_definitions()
            .iter()
            .map(|c| ContainerDefinitionInfo {
                name: c.name().unwrap_or_default().to_owned(),
                essential: c.essential().unwrap_or(true),
                awslogs: c
                    .log_configuration()
                    .filter(|l| *l.log_driver() == LogDriver::Awslogs)
                    .and_then(|l| {
                        let options = l.options()?;
                        Some(AwsLogs {
                            group: options.get("awslogs-group")?.clone(),
                            region: options.get("awslogs-region").cloned(),
                            stream_prefix: options.get("awslogs-stream-prefix").cloned(),
                        })
                    }),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::operation::describe_task_definition::{
        DescribeTaskDefinitionError, DescribeTaskDefinitionOutput,
    };
    use aws_sdk_ecs::types::error::ClientException;
    use aws_sdk_ecs::types::{ContainerDefinition, LogConfiguration};
    use aws_smithy_mocks::{mock, mock_client};

    use super::*;

    fn definition() -> TaskDefinition {
        let awslogs = LogConfiguration::builder()
            .log_driver(LogDriver::Awslogs)
            .options("awslogs-group", "/ecs/thumbnails")
            .options("awslogs-region", "us-east-1")
            .options("awslogs-stream-prefix", "ecs")
            .build()
            .unwrap();
        TaskDefinition::builder()
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .log_configuration(awslogs)
                    .build(),
            )
            .container_definitions(
                ContainerDefinition::builder()
                    .name("otel-collector")
                    .essential(false)
                    .build(),
            )
            .build()
    }

    #[tokio::test]
    async fn describes_once_then_caches() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/thumbnails:7";
        let rule = mock!(Client::describe_task_definition)
            .match_requests(move |r| r.task_definition() == Some(arn))
            .then_output(|| {
                DescribeTaskDefinitionOutput::builder()
                    .task_definition(definition())
                    .build()
            });
        let lookups = TaskDefinitions::new(mock_client!(aws_sdk_ecs, [&rule]));
        let first = lookups.get(arn).await.unwrap();
        assert_eq!(
            first.containers[0],
            ContainerDefinitionInfo {
                name: "app".into(),
                essential: true,
                awslogs: Some(AwsLogs {
                    group: "/ecs/thumbnails".into(),
                    region: Some("us-east-1".into()),
                    stream_prefix: Some("ecs".into())
                }),
            }
        );
        assert!(!first.containers[1].essential);
        assert_eq!(first.containers[1].awslogs, None);
        assert_eq!(lookups.get(arn).await.unwrap(), first);
        assert_eq!(
            rule.num_calls(),
            1,
            "the second lookup is served from the cache"
        );
    }

    #[tokio::test]
    async fn a_missing_definition_is_permanent() {
        let rule = mock!(Client::describe_task_definition).then_error(|| {
            DescribeTaskDefinitionError::ClientException(
                ClientException::builder()
                    .message("Unable to describe task definition.")
                    .build(),
            )
        });
        let lookups = TaskDefinitions::new(mock_client!(aws_sdk_ecs, [&rule]));
        let err = lookups.get("nope:1").await.unwrap_err();
        assert!(!err.is_retryable(), "{err}");
    }
}
