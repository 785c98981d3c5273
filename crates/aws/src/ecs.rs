//! Launching planned tasks on ECS: concurrency cap, overlap policy, capacity fallback and
//! idempotency conflicts, over the official `aws-sdk-ecs` client.
//!
//! A launch counts only when RunTask's `tasks[]` holds it. `failures[]` in a 200 response is
//! classified: capacity failures move on to the next capacity provider of the plan (each
//! attempt has its own deterministic token); other failures are permanent. A
//! `ConflictException` on a reused token means ECS already started the task for this event.

use std::future::Future;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::operation::run_task::RunTaskError;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerOverride,
    DesiredStatus, KeyValuePair, LaunchType, NetworkConfiguration, PlacementConstraint,
    PlacementConstraintType, PlacementStrategy, PlacementStrategyType, PropagateTags, Tag,
    TaskOverride,
};
use jobrunner_core::config::Overlap;
use jobrunner_core::plan::{LaunchPlan, RunTaskInput};
use tracing::{info, warn};

use crate::error::Error;

/// How a launch ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchOutcome {
    /// ECS started the task now.
    Started {
        task_arns: Vec<String>,
        capacity_provider: Option<String>,
    },
    /// ECS had already started a task for this event (token reuse) — nothing new started.
    AlreadyStarted { task_arns: Vec<String> },
    /// `overlap = "forbid"` and a previous run is still going.
    SkippedOverlap { running: Vec<String> },
}

/// The launcher's port: anything that can carry out a [`LaunchPlan`].
pub trait Launch {
    fn launch(
        &self,
        plan: &LaunchPlan,
    ) -> impl Future<Output = Result<LaunchOutcome, Error>> + Send;
}

/// The ECS adapter: owns the client, built once per cold start.
#[derive(Debug, Clone)]
pub struct EcsTasks {
    client: Client,
}

/// One RunTask call's result, classified.
enum Attempt {
    Started(Vec<String>),
    Conflict(Vec<String>),
    NoCapacity(String),
}

impl EcsTasks {
    pub fn new(client: Client) -> Self {
        EcsTasks { client }
    }

    /// ARNs of tasks in `cluster` started by `started_by` that are pending or running,
    /// stopping the listing once `limit` are found.
    pub async fn running_tasks(
        &self,
        cluster: &str,
        started_by: &str,
        limit: usize,
    ) -> Result<Vec<String>, Error> {
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
            let page = page.map_err(|e| Error::from_sdk("ListTasks", e))?;
            arns.extend(page.task_arns.unwrap_or_default());
            if arns.len() >= limit {
                break;
            }
        }
        Ok(arns)
    }

    /// Stops a task, with a reason ECS shows in the console and in the stop event.
    pub async fn stop_task(
        &self,
        cluster: &str,
        task_arn: &str,
        reason: &str,
    ) -> Result<(), Error> {
        self.client
            .stop_task()
            .cluster(cluster)
            .task(task_arn)
            .reason(truncate(reason, 255))
            .send()
            .await
            .map_err(|e| Error::from_sdk("StopTask", e))?;
        Ok(())
    }

    /// Running tasks that belong to this very tick (a redelivery after a successful launch):
    /// those whose container environment carries the same `JOB_SCHEDULED_TIME`.
    async fn tasks_of_tick(
        &self,
        cluster: &str,
        arns: &[String],
        input: &RunTaskInput,
    ) -> Result<Vec<String>, Error> {
        let Some(tick_time) = scheduled_time(input) else {
            return Ok(vec![]);
        };
        if arns.is_empty() {
            return Ok(vec![]);
        }
        let described = self
            .client
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(arns.to_vec()))
            .send()
            .await
            .map_err(|e| Error::from_sdk("DescribeTasks", e))?;
        Ok(described
            .tasks()
            .iter()
            .filter(|task| {
                task.overrides().is_some_and(|o| {
                    o.container_overrides()
                        .iter()
                        .flat_map(|c| c.environment())
                        .any(|kv| {
                            kv.name() == Some("JOB_SCHEDULED_TIME") && kv.value() == Some(tick_time)
                        })
                })
            })
            .filter_map(|task| task.task_arn().map(str::to_owned))
            .collect())
    }

    async fn run_task(&self, input: &RunTaskInput) -> Result<Attempt, Error> {
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
        let output = match result {
            Ok(output) => output,
            Err(err) => {
                if let Some(RunTaskError::ConflictException(conflict)) = err.as_service_error() {
                    return Ok(Attempt::Conflict(conflict.resource_ids().to_vec()));
                }
                return Err(Error::from_sdk("RunTask", err));
            }
        };
        let arns: Vec<String> = output
            .tasks()
            .iter()
            .filter_map(|t| t.task_arn().map(str::to_owned))
            .collect();
        if !arns.is_empty() {
            return Ok(Attempt::Started(arns));
        }
        let reasons: Vec<String> = output
            .failures()
            .iter()
            .map(|f| match f.detail() {
                Some(detail) => format!("{} ({detail})", f.reason().unwrap_or("no reason")),
                None => f.reason().unwrap_or("no reason").to_string(),
            })
            .collect();
        let reason = if reasons.is_empty() {
            "RunTask returned neither tasks nor failures".to_string()
        } else {
            reasons.join("; ")
        };
        if output
            .failures()
            .iter()
            .any(|f| is_capacity_failure(f.reason().unwrap_or_default()))
        {
            Ok(Attempt::NoCapacity(reason))
        } else {
            Err(Error::LaunchFailed { reason })
        }
    }
}

impl Launch for EcsTasks {
    async fn launch(&self, plan: &LaunchPlan) -> Result<LaunchOutcome, Error> {
        let Some(first) = plan.attempts.first() else {
            return Err(Error::LaunchFailed {
                reason: format!("job '{}' has no launch attempt planned", plan.job),
            });
        };
        let cluster = first.cluster.as_str();

        if let Some(cap) = &plan.cap {
            let limit = cap.max_running as usize;
            let mut running = 0;
            for started_by in &cap.started_by {
                running += self
                    .running_tasks(cluster, started_by, limit - running.min(limit))
                    .await?
                    .len();
                if running >= limit {
                    return Err(Error::AtCap {
                        job: plan.job.clone(),
                        running: running as u32,
                        max_running: cap.max_running,
                    });
                }
            }
        }

        if let Some(check) = &plan.overlap {
            let running = self
                .running_tasks(cluster, &check.started_by, usize::MAX)
                .await?;
            let this_tick = self.tasks_of_tick(cluster, &running, first).await?;
            if !this_tick.is_empty() {
                return Ok(LaunchOutcome::AlreadyStarted {
                    task_arns: this_tick,
                });
            }
            match check.policy {
                Overlap::Forbid if !running.is_empty() => {
                    return Ok(LaunchOutcome::SkippedOverlap { running });
                }
                Overlap::Replace => {
                    let reason = format!(
                        "jobrunner: replaced by the run scheduled for {}",
                        scheduled_time(first).unwrap_or("now")
                    );
                    for arn in &running {
                        info!(task_arn = %arn, job = %plan.job, "stopping the previous run (overlap = replace)");
                        self.stop_task(cluster, arn, &reason).await?;
                    }
                }
                _ => {}
            }
        }

        let mut capacity_reasons = Vec::new();
        for attempt in &plan.attempts {
            let provider = attempt
                .capacity_provider_strategy
                .first()
                .map(|s| s.capacity_provider.clone());
            match self.run_task(attempt).await? {
                Attempt::Started(task_arns) => {
                    return Ok(LaunchOutcome::Started {
                        task_arns,
                        capacity_provider: provider,
                    });
                }
                Attempt::Conflict(task_arns) => {
                    return Ok(LaunchOutcome::AlreadyStarted { task_arns });
                }
                Attempt::NoCapacity(reason) => {
                    warn!(job = %plan.job, capacity_provider = provider.as_deref().unwrap_or("(launch type)"), %reason, "no capacity; trying the next capacity provider");
                    capacity_reasons.push(format!(
                        "{}: {reason}",
                        provider.as_deref().unwrap_or("launch type")
                    ));
                }
            }
        }
        Err(Error::NoCapacity {
            reason: capacity_reasons.join("; "),
        })
    }
}

/// Failures that another capacity provider, or a later retry, may not have.
pub fn is_capacity_failure(reason: &str) -> bool {
    reason.starts_with("Capacity is unavailable") || reason.starts_with("RESOURCE:")
}

fn scheduled_time(input: &RunTaskInput) -> Option<&str> {
    input
        .overrides
        .container_overrides
        .iter()
        .flat_map(|c| &c.environment)
        .find(|kv| kv.name == "JOB_SCHEDULED_TIME")
        .map(|kv| kv.value.as_str())
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

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests;
