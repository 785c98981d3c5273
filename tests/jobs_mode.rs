//! Jobs mode against moto: the scaler launches standalone worker tasks for the backlog
//! (RunTask, `startedBy jobrunner/worker/<name>`), counts the ones already running on the next
//! tick, starts nothing twice for a redelivered tick, and, once the real `jobrunner-worker`
//! (run here as a local process with the tasks' own command line) has drained the queue and the
//! tasks have exited, launches nothing. Each test has its own account; time is a manual clock.
//!
//! moto ignores `clientToken`, so the same-token path of a redelivery that does not yet see its
//! tasks is tested in `jobrunner-core` (`scaler::tests`) against a fake with ECS's token memory;
//! here a redelivery sees the tasks in ListTasks, as it does on ECS once they are listed.

use std::time::Duration;

use chrono::Utc;
use jobrunner_aws::Adapters;
use jobrunner_aws::ecs::EcsTasks;
use jobrunner_aws::ecs_service::EcsServices;
use jobrunner_aws::sqs_queue::SqsQueues;
use jobrunner_aws::state_store::StateStore;
use jobrunner_core::Config;
use jobrunner_core::ports::{Clock, ManualClock};
use jobrunner_core::recording::Recorder;
use jobrunner_core::scaler::{Report, Scaler};
use jobrunner_integration_tests::fixtures::{
    LaunchFixture, create_state_table, keep_tasks_running,
};
use jobrunner_integration_tests::worker::command;

const TABLE: &str = "jobrunner-state";
const STARTED_BY: &str = "jobrunner/worker/thumbs";
/// The worker binary (`jobrunner_worker::cli::main`, built by this package).
const BINARY: &str = env!("CARGO_BIN_EXE_jobrunner-worker-under-test");

struct Fixture {
    launch: LaunchFixture,
    queue_url: String,
    config: Config,
    ports: Recorder<Adapters<ManualClock>>,
}

impl Fixture {
    /// Cluster `jobs`, task definition `thumbnails` (container `app`), queue `thumbs`, the state
    /// table, and worker `thumbs` in jobs mode (10 messages per task, at most `max_tasks`).
    async fn new(max_tasks: u32) -> Fixture {
        keep_tasks_running();
        let launch = LaunchFixture::new().await;
        let queue_url = launch
            .account
            .sqs()
            .create_queue()
            .queue_name("thumbs")
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue URL");
        create_state_table(&launch.account, TABLE).await;
        let config = launch.config(&format!(
            r#"
[state]
table = "{TABLE}"

[workers.thumbs]
mode = "jobs"
cluster = "jobs"
queue_url = "{queue_url}"
task_definition = "thumbnails"
container = "app"
command = ["true"]
idle_exit = "2s"
messages_per_task = 10
max_tasks = {max_tasks}
"#
        ));
        let account = &launch.account;
        let ports = Recorder::new(Adapters {
            ecs: Some(EcsTasks::new(account.ecs())),
            services: Some(EcsServices::new(account.ecs())),
            queues: Some(SqsQueues::new(account.sqs())),
            state: Some(StateStore::new(account.dynamodb(), TABLE)),
            task_definitions: None,
            topic: None,
            objects: None,
            clock: ManualClock::new(Utc::now()),
        });
        Fixture {
            launch,
            queue_url,
            config,
            ports,
        }
    }

    /// One invocation (no sub-minute sampling) at the clock's time; the clock stays.
    async fn tick(&self) -> Report {
        let now = self.ports.inner.clock.now();
        Scaler::for_config(&self.config, &self.ports).run(now).await
    }

    fn advance(&self) {
        self.ports.inner.clock.advance(Duration::from_secs(60));
    }

    async fn send(&self, count: usize) {
        let sqs = self.launch.account.sqs();
        for i in 0..count {
            sqs.send_message()
                .queue_url(&self.queue_url)
                .message_body(format!("message {i}"))
                .send()
                .await
                .expect("send");
        }
    }

    /// The worker's tasks whose desired status is RUNNING.
    async fn live(&self) -> Vec<aws_sdk_ecs::types::Task> {
        self.launch
            .tasks(STARTED_BY)
            .await
            .into_iter()
            .filter(|t| t.desired_status() == Some("RUNNING"))
            .collect()
    }

    /// The RunTask calls recorded since the last call.
    fn run_tasks(&self) -> Vec<serde_json::Value> {
        self.ports
            .take()
            .into_iter()
            .filter(|a| a.operation == "RunTask")
            .map(|a| a.input)
            .collect()
    }

    async fn depth(&self) -> (u64, u64) {
        let attributes = self
            .launch
            .account
            .sqs()
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .expect("attributes")
            .attributes
            .unwrap_or_default();
        let get = |name: aws_sdk_sqs::types::QueueAttributeName| {
            attributes
                .get(&name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (
            get(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages),
            get(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }
}

fn launched(report: &Report) -> usize {
    assert!(report.failed.is_empty(), "{report:?}");
    report.workers["thumbs"]
        .samples
        .iter()
        .map(|s| s.launched.len())
        .sum()
}

#[tokio::test]
async fn launches_for_the_backlog_then_counts_the_tasks_already_running() {
    let f = Fixture::new(20).await;
    f.send(25).await;
    let report = f.tick().await;
    assert_eq!(launched(&report), 3);
    let tasks = f.live().await;
    assert_eq!(tasks.len(), 3);
    for task in &tasks {
        assert_eq!(task.started_by(), Some(STARTED_BY));
        assert!(
            task.task_definition_arn()
                .is_some_and(|arn| arn.contains("task-definition/thumbnails:")),
            "{task:?}"
        );
    }
    let calls = f.run_tasks();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["count"], 3);
    assert_eq!(
        calls[0]["overrides"]["containerOverrides"][0]["command"],
        serde_json::json!([
            "jobrunner-worker",
            "--queue-url",
            f.queue_url,
            "--idle-exit",
            "2s",
            "--",
            "true"
        ])
    );

    // A minute later the 3 tasks are running and the backlog is the same: nothing more.
    f.advance();
    let report = f.tick().await;
    assert_eq!(launched(&report), 0);
    let reason = &report.workers["thumbs"].samples[0].reason;
    assert!(reason.contains("3 pending or running"), "{reason}");
    assert!(f.run_tasks().is_empty());

    // 20 more messages (45: 5 tasks): the 3 running count, 2 are launched.
    f.send(20).await;
    f.advance();
    let report = f.tick().await;
    assert_eq!(launched(&report), 2);
    assert_eq!(f.live().await.len(), 5);
}

#[tokio::test]
async fn never_more_than_max_tasks() {
    let f = Fixture::new(4).await;
    f.send(100).await;
    assert_eq!(launched(&f.tick().await), 4);
    f.advance();
    assert_eq!(launched(&f.tick().await), 0);
    assert_eq!(f.live().await.len(), 4);
}

#[tokio::test]
async fn a_redelivered_tick_starts_nothing_twice() {
    let f = Fixture::new(20).await;
    f.send(25).await;
    assert_eq!(launched(&f.tick().await), 3);
    let first = f.run_tasks();
    // The same tick again, at the same time (EventBridge redelivers, or Lambda retries).
    let again = f.tick().await;
    assert_eq!(launched(&again), 0);
    assert!(f.run_tasks().is_empty(), "no second RunTask");
    assert_eq!(f.live().await.len(), 3);
    assert_eq!(first.len(), 1);
    assert!(
        first[0]["clientToken"]
            .as_str()
            .is_some_and(|t| t.starts_with("jrw-") && t.len() == 64)
    );
}

#[tokio::test]
async fn the_worker_drains_the_queue_and_the_next_tick_launches_nothing() {
    let f = Fixture::new(20).await;
    f.send(12).await;
    assert_eq!(launched(&f.tick().await), 2);
    let call = f.run_tasks().remove(0);
    let command: Vec<String> =
        serde_json::from_value(call["overrides"]["containerOverrides"][0]["command"].clone())
            .expect("command");
    assert_eq!(command[0], "jobrunner-worker");

    // moto runs no containers: run the task's command line with the real worker binary here.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut worker = command_for(&f, &command[1..], &dir.path().join("worker.log")).await;
    let status = tokio::time::timeout(Duration::from_secs(60), worker.wait())
        .await
        .expect("the worker exits when idle")
        .expect("wait");
    assert!(status.success(), "{status:?}");
    assert_eq!(f.depth().await, (0, 0), "the queue is drained");

    // The tasks exited (moto keeps them RUNNING until told).
    let ecs = f.launch.account.ecs();
    for task in f.live().await {
        ecs.stop_task()
            .cluster("jobs")
            .task(task.task_arn().unwrap())
            .reason("idle exit")
            .send()
            .await
            .expect("stop task");
    }
    f.advance();
    let report = f.tick().await;
    assert_eq!(launched(&report), 0);
    let reason = &report.workers["thumbs"].samples[0].reason;
    assert!(reason.contains("queue empty"), "{reason}");
    assert!(f.run_tasks().is_empty());
}

/// The worker binary with `args` (the task's command after `jobrunner-worker`), in the
/// fixture's account.
async fn command_for(f: &Fixture, args: &[String], log: &std::path::Path) -> tokio::process::Child {
    let mut worker = command(BINARY.as_ref(), &f.launch.account, log).await;
    worker.args(args);
    worker.spawn().expect("spawn worker")
}
