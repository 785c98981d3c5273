//! A port wrapper that writes down every call as an [`Action`], in order, before making it,
//! marking the calls sent while an earlier one was still under way ([`Action::concurrent`]).
//!
//! `jobrunner plan` wraps the dry run's world (`dryrun`) in it; the integration tests
//! wrap the real AWS adapters in it and compare the two logs.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// Calls recorded whose futures have not yet finished (or been dropped).
    in_flight: AtomicUsize,
}

impl<P: Explain> Recorder<P> {
    pub fn new(inner: P) -> Self {
        Recorder {
            inner,
            log: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Takes the calls so far, leaving the log empty.
    pub fn take(&self) -> Vec<Action> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Records `action`, then makes the call: `call` is created before it is recorded but
    /// does nothing until polled, and counts as under way until it finishes or is dropped.
    fn call<F: Future + Send>(
        &self,
        action: Action,
        call: F,
    ) -> impl Future<Output = F::Output> + Send {
        let concurrent = self.in_flight.fetch_add(1, Ordering::SeqCst) > 0;
        let under_way = UnderWay(&self.in_flight);
        let action = match self.inner.assumed(&action) {
            Some(answer) => action.assuming(answer),
            None => action,
        };
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Action {
                concurrent,
                ..action
            });
        async move {
            let _under_way = under_way;
            call.await
        }
    }
}

/// One recorded call under way: leaves the count when the call finishes or is dropped.
struct UnderWay<'a>(&'a AtomicUsize);

impl Drop for UnderWay<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<P: Tasks + Explain> Tasks for Recorder<P> {
    fn list_tasks(
        &self,
        cluster: &str,
        started_by: &str,
    ) -> impl Future<Output = CallResult<Vec<String>>> + Send {
        self.call(
            Action::list_tasks(cluster, started_by),
            self.inner.list_tasks(cluster, started_by),
        )
    }

    fn describe_tasks(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> impl Future<Output = CallResult<Vec<DescribedTask>>> + Send {
        self.call(
            Action::describe_tasks(cluster, task_arns),
            self.inner.describe_tasks(cluster, task_arns),
        )
    }

    fn run_task(
        &self,
        input: &RunTaskInput,
    ) -> impl Future<Output = CallResult<RunTaskAnswer>> + Send {
        self.call(Action::run_task(input), self.inner.run_task(input))
    }

    fn stop_task(
        &self,
        cluster: &str,
        task_arn: &str,
        reason: &str,
    ) -> impl Future<Output = CallResult<()>> + Send {
        self.call(
            Action::stop_task(cluster, task_arn, reason),
            self.inner.stop_task(cluster, task_arn, reason),
        )
    }
}

impl<P: TaskDefinitions + Explain> TaskDefinitions for Recorder<P> {
    fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> impl Future<Output = CallResult<TaskDefinitionInfo>> + Send {
        self.call(
            Action::describe_task_definition(task_definition),
            self.inner.describe_task_definition(task_definition),
        )
    }
}

impl<P: Topic + Explain> Topic for Recorder<P> {
    fn topic_arn(&self) -> &str {
        self.inner.topic_arn()
    }

    fn publish(&self, message: &Publish) -> impl Future<Output = CallResult<String>> + Send {
        self.call(
            Action::publish(self.inner.topic_arn(), message),
            self.inner.publish(message),
        )
    }
}

impl<P: StateTable + Explain> StateTable for Recorder<P> {
    fn table(&self) -> &str {
        self.inner.table()
    }

    fn get(&self, key: &str) -> impl Future<Output = CallResult<Option<Record>>> + Send {
        self.call(
            Action::get_item(self.inner.table(), key),
            self.inner.get(key),
        )
    }

    fn put(&self, put: &Put<'_>) -> impl Future<Output = CallResult<Saved>> + Send {
        self.call(
            Action::put_item(self.inner.table(), put),
            self.inner.put(put),
        )
    }
}

impl<P: WaitQueue + Explain> WaitQueue for Recorder<P> {
    fn send(
        &self,
        queue_url: &str,
        body: &str,
        delay_seconds: u32,
    ) -> impl Future<Output = CallResult<()>> + Send {
        self.call(
            Action::send_message(queue_url, body, delay_seconds),
            self.inner.send(queue_url, body, delay_seconds),
        )
    }
}

impl<P: Queues + Explain> Queues for Recorder<P> {
    fn depth(&self, queue_url: &str) -> impl Future<Output = CallResult<QueueDepth>> + Send {
        self.call(
            Action::get_queue_attributes(queue_url),
            self.inner.depth(queue_url),
        )
    }
}

impl<P: Services + Explain> Services for Recorder<P> {
    fn counts(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl Future<Output = CallResult<ServiceCounts>> + Send {
        self.call(
            Action::describe_services(cluster, service),
            self.inner.counts(cluster, service),
        )
    }

    fn set_desired(
        &self,
        cluster: &str,
        service: &str,
        desired: u32,
    ) -> impl Future<Output = CallResult<()>> + Send {
        self.call(
            Action::update_service(cluster, service, desired),
            self.inner.set_desired(cluster, service, desired),
        )
    }

    fn service_tasks(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl Future<Output = CallResult<Vec<String>>> + Send {
        self.call(
            Action::list_service_tasks(cluster, service),
            self.inner.service_tasks(cluster, service),
        )
    }

    fn task_protection(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> impl Future<Output = CallResult<Vec<TaskProtection>>> + Send {
        self.call(
            Action::get_task_protection(cluster, task_arns),
            self.inner.task_protection(cluster, task_arns),
        )
    }
}

impl<P: Objects + Explain> Objects for Recorder<P> {
    fn head(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = CallResult<Option<ObjectHead>>> + Send {
        self.call(
            Action::head_object(bucket, key, version_id),
            self.inner.head(bucket, key, version_id),
        )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::CallError;

    /// A table whose reads answer at once, on their first poll.
    struct Table;

    impl Explain for Table {}

    impl StateTable for Table {
        fn table(&self) -> &str {
            "state"
        }

        async fn get(&self, _key: &str) -> CallResult<Option<Record>> {
            Ok(None)
        }

        async fn put(&self, _put: &Put<'_>) -> CallResult<Saved> {
            Err(CallError::Rejected {
                operation: "PutItem",
                message: "not in this test".into(),
            })
        }
    }

    #[test]
    fn calls_sent_while_another_is_under_way_are_concurrent() {
        let recorder = Recorder::new(Table);
        pollster::block_on(async {
            // One after another: neither overlaps.
            recorder.get("a").await.unwrap();
            recorder.get("b").await.unwrap();
            // Sent together: the second and third go out while the first is under way.
            let (a, b, c) = futures::join!(recorder.get("c"), recorder.get("d"), recorder.get("e"));
            assert!(a.is_ok() && b.is_ok() && c.is_ok());
            // A call dropped unanswered is no longer under way.
            drop(recorder.get("f"));
            recorder.get("g").await.unwrap();
        });
        let concurrent: Vec<(String, bool)> = recorder
            .take()
            .iter()
            .map(|a| {
                (
                    a.input["Key"]["pk"]["S"].as_str().unwrap().to_string(),
                    a.concurrent,
                )
            })
            .collect();
        let expected = [
            ("a", false),
            ("b", false),
            ("c", false),
            ("d", true),
            ("e", true),
            ("f", false),
            ("g", false),
        ];
        let expected: Vec<(String, bool)> =
            expected.iter().map(|(k, c)| (k.to_string(), *c)).collect();
        assert_eq!(concurrent, expected);
    }
}
