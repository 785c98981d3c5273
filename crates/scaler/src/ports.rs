//! The narrow ports the scaler needs, their AWS adapters, and clocks.
//!
//! The handler is generic over these traits so unit tests run it against in-memory fakes and
//! a [`ManualClock`] (sleeping advances it: sub-minute sampling costs no wall time in tests).

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobrunner_aws::Error;
use jobrunner_aws::ecs_service::EcsServices;
use jobrunner_aws::sqs_queue::SqsQueues;
use jobrunner_aws::state_store::StateStore;
pub use jobrunner_aws::state_store::{Record, Saved};
use jobrunner_core::scaling::{QueueDepth, ServiceCounts};

/// Reads a queue's approximate message counts (SQS GetQueueAttributes).
pub trait QueueReader {
    fn depth(&self, queue_url: &str) -> impl Future<Output = Result<QueueDepth, Error>> + Send;
}

/// Reads and sets a service's task counts (ECS DescribeServices / UpdateService).
pub trait ServiceControl {
    fn counts(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl Future<Output = Result<ServiceCounts, Error>> + Send;
    fn set_desired(
        &self,
        cluster: &str,
        service: &str,
        desired: u32,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Small versioned state (DynamoDB): `save` writes only if the version is still `expected`
/// (`None`: only if the key is new) and otherwise reports [`Saved::Conflict`].
pub trait StateRepo {
    fn load(&self, key: &str) -> impl Future<Output = Result<Option<Record>, Error>> + Send;
    fn save(
        &self,
        key: &str,
        data: &str,
        expected: Option<u64>,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Saved, Error>> + Send;
}

/// The time, and a way to wait (injectable so tests do not wait).
pub trait Clock {
    fn now(&self) -> DateTime<Utc>;
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send;
}

impl QueueReader for SqsQueues {
    async fn depth(&self, queue_url: &str) -> Result<QueueDepth, Error> {
        SqsQueues::depth(self, queue_url).await
    }
}

impl ServiceControl for EcsServices {
    async fn counts(&self, cluster: &str, service: &str) -> Result<ServiceCounts, Error> {
        EcsServices::counts(self, cluster, service).await
    }

    async fn set_desired(&self, cluster: &str, service: &str, desired: u32) -> Result<(), Error> {
        EcsServices::set_desired(self, cluster, service, desired).await
    }
}

impl StateRepo for StateStore {
    async fn load(&self, key: &str) -> Result<Option<Record>, Error> {
        self.get(key).await
    }

    async fn save(
        &self,
        key: &str,
        data: &str,
        expected: Option<u64>,
        expires_at: DateTime<Utc>,
    ) -> Result<Saved, Error> {
        self.put(key, data, expected, expires_at).await
    }
}

/// Wall-clock time and tokio's sleep.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }
}

/// A clock that only moves when told to, or when something sleeps on it.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(now: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(now),
        }
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().expect("clock lock") = now;
    }

    pub fn advance(&self, duration: Duration) {
        let mut now = self.now.lock().expect("clock lock");
        *now += chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock lock")
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        self.advance(duration);
        std::future::ready(())
    }
}

impl<T: Clock + Sync> Clock for &T {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        (**self).sleep(duration)
    }
}
