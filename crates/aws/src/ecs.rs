//! ECS tasks over the official `aws-sdk-ecs` client: list, describe, run and stop, as the
//! core's [`Tasks`] port. No policy lives here: the concurrency cap, the overlap policy and
//! what a RunTask answer means (capacity fallback, conflicts) are decided in
//! `jobrunner_core::launch`. This adapter maps the planned request field by field onto the
//! SDK and the SDK's answers back onto the port's types.

use aws_sdk_ecs::Client;
use aws_sdk_ecs::operation::run_task::RunTaskError;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerOverride,
    DesiredStatus, KeyValuePair, LaunchType, NetworkConfiguration, PlacementConstraint,
    PlacementConstraintType, PlacementStrategy, PlacementStrategyType, PropagateTags, Tag,
    TaskOverride,
};
use jobrunner_core::plan::RunTaskInput;
use jobrunner_core::ports::{DescribedTask, RunTaskAnswer, TaskFailure, Tasks};

use crate::error::Error;

/// The ECS adapter: owns the client, built once per cold start.
#[derive(Debug, Clone)]
pub struct EcsTasks {
    client: Client,
}

impl EcsTasks {
    pub fn new(client: Client) -> Self {
        EcsTasks { client }
    }
}

/// An SDK timestamp as chrono's.
fn time(at: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos())
}

impl Tasks for EcsTasks {
    async fn list_tasks(&self, cluster: &str, started_by: &str) -> Result<Vec<String>, Error> {
        let mut arns = Vec::new();
        let mut pages = self
            .client
            .list_tasks()
            .cluster(cluster)
            .started_by(started_by)
            .desired_status(DesiredStatus::Running)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| crate::error::from_sdk("ListTasks", e))?;
            arns.extend(page.task_arns.unwrap_or_default());
        }
        Ok(arns)
    }

    async fn describe_tasks(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> Result<Vec<DescribedTask>, Error> {
        let described = self
            .client
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(task_arns.to_vec()))
            .send()
            .await
            .map_err(|e| crate::error::from_sdk("DescribeTasks", e))?;
        Ok(described
            .tasks()
            .iter()
            .map(|task| DescribedTask {
                task_arn: task.task_arn().unwrap_or_default().to_owned(),
                environment: task
                    .overrides()
                    .map(|o| {
                        o.container_overrides()
                            .iter()
                            .flat_map(|c| c.environment())
                            .map(|kv| {
                                (
                                    kv.name().unwrap_or_default().to_owned(),
                                    kv.value().unwrap_or_default().to_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                last_status: task.last_status().unwrap_or_default().to_owned(),
                desired_status: task.desired_status().unwrap_or_default().to_owned(),
                created_at: task.created_at().and_then(time),
                started_at: task.started_at().and_then(time),
            })
            .collect())
    }

    async fn run_task(&self, input: &RunTaskInput) -> Result<RunTaskAnswer, Error> {
        self.send_run_task(input).await
    }

    async fn stop_task(&self, cluster: &str, task_arn: &str, reason: &str) -> Result<(), Error> {
        self.client
            .stop_task()
            .cluster(cluster)
            .task(task_arn)
            .reason(reason)
            .send()
            .await
            .map_err(|e| crate::error::from_sdk("StopTask", e))?;
        Ok(())
    }
}

impl EcsTasks {
    async fn send_run_task(&self, input: &RunTaskInput) -> Result<RunTaskAnswer, Error> {
        let result = self
            .client
            .run_task()
            .cluster(&input.cluster)
            .task_definition(&input.task_definition)
            .count(input.count)
            .client_token(&input.client_token)
            .started_by(&input.started_by)
            .set_launch_type(input.launch_type.as_deref().map(LaunchType::from))
            .set_capacity_provider_strategy(non_empty(
                input
                    .capacity_provider_strategy
                    .iter()
                    .map(|s| {
                        CapacityProviderStrategyItem::builder()
                            .capacity_provider(&s.capacity_provider)
                            .weight(s.weight)
                            .base(s.base)
                            .build()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(build_error)?,
            ))
            .set_platform_version(input.platform_version.clone())
            .set_network_configuration(network(input)?)
            .overrides(overrides(input)?)
            .set_placement_constraints(non_empty(
                input
                    .placement_constraints
                    .iter()
                    .map(|c| {
                        PlacementConstraint::builder()
                            .r#type(PlacementConstraintType::from(c.kind.as_str()))
                            .set_expression(c.expression.clone())
                            .build()
                    })
                    .collect(),
            ))
            .set_placement_strategy(non_empty(
                input
                    .placement_strategy
                    .iter()
                    .map(|s| {
                        PlacementStrategy::builder()
                            .r#type(PlacementStrategyType::from(s.kind.as_str()))
                            .set_field(s.field.clone())
                            .build()
                    })
                    .collect(),
            ))
            .set_tags(Some(
                input
                    .tags
                    .iter()
                    .map(|t| Tag::builder().key(&t.key).value(&t.value).build())
                    .collect(),
            ))
            .set_propagate_tags(input.propagate_tags.as_deref().map(PropagateTags::from))
            .enable_ecs_managed_tags(input.enable_ecs_managed_tags)
            .send()
            .await;
        match result {
            Ok(output) => Ok(RunTaskAnswer::Response {
                task_arns: output
                    .tasks()
                    .iter()
                    .filter_map(|t| t.task_arn().map(str::to_owned))
                    .collect(),
                failures: output
                    .failures()
                    .iter()
                    .map(|f| TaskFailure {
                        reason: f.reason().unwrap_or("no reason").to_owned(),
                        detail: f.detail().map(str::to_owned),
                    })
                    .collect(),
            }),
            Err(err) => match err.as_service_error() {
                Some(RunTaskError::ConflictException(conflict)) => Ok(RunTaskAnswer::Conflict {
                    task_arns: conflict.resource_ids().to_vec(),
                }),
                _ => Err(crate::error::from_sdk("RunTask", err)),
            },
        }
    }
}

fn overrides(input: &RunTaskInput) -> Result<TaskOverride, Error> {
    Ok(TaskOverride::builder()
        .set_container_overrides(Some(
            input
                .overrides
                .container_overrides
                .iter()
                .map(|c| {
                    ContainerOverride::builder()
                        .name(&c.name)
                        .set_command(c.command.clone())
                        .set_environment(Some(
                            c.environment
                                .iter()
                                .map(|kv| {
                                    KeyValuePair::builder()
                                        .name(&kv.name)
                                        .value(&kv.value)
                                        .build()
                                })
                                .collect(),
                        ))
                        .build()
                })
                .collect(),
        ))
        .set_cpu(input.overrides.cpu.clone())
        .set_memory(input.overrides.memory.clone())
        .build())
}

fn network(input: &RunTaskInput) -> Result<Option<NetworkConfiguration>, Error> {
    let Some(config) = &input.network_configuration else {
        return Ok(None);
    };
    let vpc = &config.awsvpc_configuration;
    let awsvpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(vpc.subnets.clone()))
        .set_security_groups(non_empty(vpc.security_groups.clone()))
        .assign_public_ip(AssignPublicIp::from(vpc.assign_public_ip.as_str()))
        .build()
        .map_err(build_error)?;
    Ok(Some(
        NetworkConfiguration::builder()
            .awsvpc_configuration(awsvpc)
            .build(),
    ))
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

fn build_error(err: aws_sdk_ecs::error::BuildError) -> Error {
    Error::Rejected {
        operation: "RunTask",
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests;
