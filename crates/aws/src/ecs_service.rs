//! Reading and updating a service's task counts (ECS DescribeServices and UpdateService) and
//! reading its tasks' scale-in protection (ListTasks by serviceName, GetTaskProtection).

use aws_sdk_ecs::types::DesiredStatus;
use jobrunner_core::scaling::{ServiceCounts, TaskProtection};

use crate::error::Error;

/// ECS services, through one shared client (cluster and service are named per call).
#[derive(Debug, Clone)]
pub struct EcsServices {
    client: aws_sdk_ecs::Client,
}

impl EcsServices {
    pub fn new(client: aws_sdk_ecs::Client) -> Self {
        EcsServices { client }
    }

    /// Builds the client from the shared SDK configuration ([`crate::client::load`]).
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig) -> Self {
        EcsServices::new(aws_sdk_ecs::Client::new(sdk))
    }

    /// The service's desired, running and pending counts. A missing or inactive service is a
    /// permanent error.
    pub async fn counts(&self, cluster: &str, service: &str) -> Result<ServiceCounts, Error> {
        let output = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| crate::error::from_sdk("DescribeServices", e))?;
        let Some(found) = output.services().first() else {
            let reason = output
                .failures()
                .first()
                .and_then(|f| f.reason())
                .unwrap_or("not returned");
            return Err(Error::Rejected {
                operation: "DescribeServices",
                message: format!("service '{service}' in cluster '{cluster}': {reason}"),
            });
        };
        if let Some(status) = found.status().filter(|s| *s != "ACTIVE") {
            return Err(Error::Rejected {
                operation: "DescribeServices",
                message: format!("service '{service}' in cluster '{cluster}' is {status}"),
            });
        }
        let count = |n: i32| u32::try_from(n).unwrap_or(0);
        Ok(ServiceCounts {
            desired: count(found.desired_count()),
            running: count(found.running_count()),
            pending: count(found.pending_count()),
        })
    }

    /// Sets the service's desired count.
    pub async fn set_desired(
        &self,
        cluster: &str,
        service: &str,
        desired: u32,
    ) -> Result<(), Error> {
        let desired = i32::try_from(desired).unwrap_or(i32::MAX);
        self.client
            .update_service()
            .cluster(cluster)
            .service(service)
            .desired_count(desired)
            .send()
            .await
            .map_err(|e| crate::error::from_sdk("UpdateService", e))?;
        Ok(())
    }

    /// ARNs of the service's tasks whose desired status is RUNNING, every page.
    pub async fn service_tasks(&self, cluster: &str, service: &str) -> Result<Vec<String>, Error> {
        let mut arns = Vec::new();
        let mut pages = self
            .client
            .list_tasks()
            .cluster(cluster)
            .service_name(service)
            .desired_status(DesiredStatus::Running)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| crate::error::from_sdk("ListTasks", e))?;
            arns.extend(page.task_arns.unwrap_or_default());
        }
        Ok(arns)
    }

    /// The scale-in protection of `task_arns` (at most 10). Tasks in `failures[]` (stopped
    /// since they were listed) are left out.
    pub async fn task_protection(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> Result<Vec<TaskProtection>, Error> {
        if task_arns.is_empty() {
            return Ok(Vec::new());
        }
        let output = self
            .client
            .get_task_protection()
            .cluster(cluster)
            .set_tasks(Some(task_arns.to_vec()))
            .send()
            .await
            .map_err(|e| crate::error::from_sdk("GetTaskProtection", e))?;
        Ok(output
            .protected_tasks()
            .iter()
            .map(|t| TaskProtection {
                task_arn: t.task_arn().unwrap_or_default().to_owned(),
                enabled: t.protection_enabled(),
                expires_at: t
                    .expiration_date()
                    .and_then(|at| chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos())),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    use aws_sdk_ecs::operation::update_service::UpdateServiceOutput;
    use aws_sdk_ecs::types::{Failure, Service};
    use aws_smithy_mocks::{mock, mock_client};

    use super::*;

    #[tokio::test]
    async fn reads_counts_and_updates() {
        let describe = mock!(aws_sdk_ecs::Client::describe_services)
            .match_requests(|r| r.cluster() == Some("jobs") && r.services() == ["workers"])
            .then_output(|| {
                DescribeServicesOutput::builder()
                    .services(
                        Service::builder()
                            .status("ACTIVE")
                            .desired_count(3)
                            .running_count(2)
                            .pending_count(1)
                            .build(),
                    )
                    .build()
            });
        let update = mock!(aws_sdk_ecs::Client::update_service)
            .match_requests(|r| r.desired_count() == Some(5) && r.service() == Some("workers"))
            .then_output(|| UpdateServiceOutput::builder().build());
        let services = EcsServices::new(mock_client!(aws_sdk_ecs, [&describe, &update]));
        assert_eq!(
            services.counts("jobs", "workers").await.unwrap(),
            ServiceCounts {
                desired: 3,
                running: 2,
                pending: 1
            }
        );
        services.set_desired("jobs", "workers", 5).await.unwrap();
        assert_eq!(update.num_calls(), 1);
    }

    #[tokio::test]
    async fn lists_the_service_tasks_and_reads_their_protection() {
        use aws_sdk_ecs::operation::get_task_protection::GetTaskProtectionOutput;
        use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
        use aws_sdk_ecs::types::ProtectedTask;
        let list = mock!(aws_sdk_ecs::Client::list_tasks)
            .match_requests(|r| {
                r.cluster() == Some("jobs")
                    && r.service_name() == Some("workers")
                    && r.desired_status() == Some(&DesiredStatus::Running)
            })
            .then_output(|| {
                ListTasksOutput::builder()
                    .task_arns("arn:t/1")
                    .task_arns("arn:t/2")
                    .build()
            });
        let get = mock!(aws_sdk_ecs::Client::get_task_protection)
            .match_requests(|r| r.cluster() == Some("jobs") && r.tasks() == ["arn:t/1", "arn:t/2"])
            .then_output(|| {
                GetTaskProtectionOutput::builder()
                    .protected_tasks(
                        ProtectedTask::builder()
                            .task_arn("arn:t/1")
                            .protection_enabled(true)
                            .expiration_date(aws_smithy_types::DateTime::from_secs(2_000_000_000))
                            .build(),
                    )
                    .protected_tasks(
                        ProtectedTask::builder()
                            .task_arn("arn:t/2")
                            .protection_enabled(false)
                            .build(),
                    )
                    .failures(Failure::builder().arn("arn:t/3").reason("MISSING").build())
                    .build()
            });
        let services = EcsServices::new(mock_client!(aws_sdk_ecs, [&list, &get]));
        let arns = services.service_tasks("jobs", "workers").await.unwrap();
        assert_eq!(arns, ["arn:t/1", "arn:t/2"]);
        let protections = services.task_protection("jobs", &arns).await.unwrap();
        assert_eq!(protections.len(), 2);
        assert!(protections[0].enabled);
        assert_eq!(
            protections[0].expires_at.map(|t| t.timestamp()),
            Some(2_000_000_000)
        );
        assert!(!protections[1].enabled);
        // No tasks, no call.
        assert!(
            services
                .task_protection("jobs", &[])
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(get.num_calls(), 1);
    }

    #[tokio::test]
    async fn missing_and_draining_services_are_rejected() {
        let missing = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| {
            DescribeServicesOutput::builder()
                .failures(Failure::builder().reason("MISSING").build())
                .build()
        });
        let services = EcsServices::new(mock_client!(aws_sdk_ecs, [&missing]));
        let err = services.counts("jobs", "nope").await.unwrap_err();
        assert!(err.to_string().contains("MISSING"), "{err}");
        assert!(!err.is_retryable());

        let draining = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| {
            DescribeServicesOutput::builder()
                .services(Service::builder().status("DRAINING").build())
                .build()
        });
        let services = EcsServices::new(mock_client!(aws_sdk_ecs, [&draining]));
        assert!(
            services
                .counts("jobs", "old")
                .await
                .unwrap_err()
                .to_string()
                .contains("DRAINING")
        );
    }
}
