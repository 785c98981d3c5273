//! The scaler's decision path over real adapters (on moto, directly or through the fault
//! proxy) with a clock the test moves.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobrunner_aws::Adapters;
use jobrunner_core::config::Worker;
use jobrunner_core::ports::{Clock, ManualClock};
use jobrunner_core::scaler::{Report, Scaler};

/// Workers and their adapters.
#[derive(Debug)]
pub struct MotoScaler {
    pub workers: BTreeMap<String, Worker>,
    pub ports: Adapters<ManualClock>,
}

impl MotoScaler {
    /// A scaler over SQS, ECS services and the state table, starting at the wall clock's now.
    pub fn new(
        workers: BTreeMap<String, Worker>,
        queues: jobrunner_aws::sqs_queue::SqsQueues,
        services: jobrunner_aws::ecs_service::EcsServices,
        state: jobrunner_aws::state_store::StateStore,
    ) -> Self {
        MotoScaler {
            workers,
            ports: Adapters {
                ecs: None,
                task_definitions: None,
                topic: None,
                state: Some(state),
                queues: Some(queues),
                services: Some(services),
                objects: None,
                clock: ManualClock::new(Utc::now()),
            },
        }
    }

    pub fn clock(&self) -> &ManualClock {
        &self.ports.clock
    }

    /// One invocation sampling until `deadline`.
    pub async fn run(&self, deadline: DateTime<Utc>) -> Report {
        Scaler::new(&self.workers, &self.ports).run(deadline).await
    }

    /// One invocation without sub-minute sampling, then the clock moves on a minute.
    pub async fn tick(&self) -> Report {
        let report = self.run(self.ports.clock.now()).await;
        self.ports.clock.advance(Duration::from_secs(60));
        report
    }
}
