//! Reading and updating a service's task counts: ECS DescribeServices and UpdateService.

use jobrunner_core::scaling::ServiceCounts;

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
