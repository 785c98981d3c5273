//! The scaler's decision path with fake ports and a manual clock.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::config::Format;
use crate::plan::RunTaskInput;
use crate::ports::{CallResult, DescribedTask, ManualClock, Record, TaskFailure};
use crate::scaling::{QueueDepth, ServiceCounts, TaskProtection};

type AwsError = CallError;

/// Each queue answers its scripted depths in turn, repeating the last one.
#[derive(Default)]
struct FakeQueues {
    scripts: Mutex<HashMap<String, VecDeque<QueueDepth>>>,
}

impl FakeQueues {
    fn script(&self, url: &str, depths: &[(u64, u64)]) {
        let depths = depths
            .iter()
            .map(|&(visible, in_flight)| QueueDepth {
                visible,
                in_flight,
                delayed: 0,
            })
            .collect();
        self.scripts.lock().unwrap().insert(url.to_string(), depths);
    }
}

impl Queues for FakeQueues {
    async fn depth(&self, queue_url: &str) -> Result<QueueDepth, AwsError> {
        let mut scripts = self.scripts.lock().unwrap();
        let Some(script) = scripts.get_mut(queue_url) else {
            return Err(AwsError::Rejected {
                operation: "GetQueueAttributes",
                message:
                    "AWS.SimpleQueueService.NonExistentQueue: The specified queue does not exist."
                        .into(),
            });
        };
        Ok(if script.len() > 1 {
            script.pop_front().unwrap()
        } else {
            script[0]
        })
    }
}

/// Services whose desired (and running) count follows UpdateService.
#[derive(Default)]
struct FakeServices {
    counts: Mutex<HashMap<String, ServiceCounts>>,
    updates: Mutex<Vec<(String, u32)>>,
    fail_updates: AtomicBool,
    /// Per service: how many of its tasks (the first ones listed) hold scale-in protection.
    protected: Mutex<HashMap<String, usize>>,
    /// Every GetTaskProtection call's task count.
    protection_calls: Mutex<Vec<usize>>,
}

impl FakeServices {
    fn add(&self, service: &str, desired: u32) {
        self.counts.lock().unwrap().insert(
            service.into(),
            ServiceCounts {
                desired,
                running: desired,
                pending: 0,
            },
        );
    }

    fn desired(&self, service: &str) -> u32 {
        self.counts.lock().unwrap()[service].desired
    }

    fn updates(&self) -> Vec<(String, u32)> {
        self.updates.lock().unwrap().clone()
    }
}

impl Services for FakeServices {
    async fn counts(&self, _cluster: &str, service: &str) -> Result<ServiceCounts, AwsError> {
        self.counts
            .lock()
            .unwrap()
            .get(service)
            .copied()
            .ok_or_else(|| AwsError::Rejected {
                operation: "DescribeServices",
                message: format!("service '{service}': MISSING"),
            })
    }

    async fn set_desired(
        &self,
        _cluster: &str,
        service: &str,
        desired: u32,
    ) -> Result<(), AwsError> {
        if self.fail_updates.load(Ordering::SeqCst) {
            return Err(AwsError::Throttled {
                operation: "UpdateService",
                message: "ThrottlingException: Rate exceeded".into(),
            });
        }
        self.updates.lock().unwrap().push((service.into(), desired));
        self.counts.lock().unwrap().insert(
            service.into(),
            ServiceCounts {
                desired,
                running: desired,
                pending: 0,
            },
        );
        Ok(())
    }

    async fn service_tasks(&self, _cluster: &str, service: &str) -> CallResult<Vec<String>> {
        let running = self.counts.lock().unwrap()[service].running;
        Ok((0..running).map(|i| format!("arn:{service}/{i}")).collect())
    }

    async fn task_protection(
        &self,
        _cluster: &str,
        task_arns: &[String],
    ) -> CallResult<Vec<TaskProtection>> {
        assert!(task_arns.len() <= 10, "GetTaskProtection takes 10 tasks");
        self.protection_calls.lock().unwrap().push(task_arns.len());
        let protected = self.protected.lock().unwrap();
        Ok(task_arns
            .iter()
            .map(|arn| {
                let (service, i) = arn[4..].split_once('/').unwrap();
                let on = i.parse::<usize>().unwrap() < protected.get(service).copied().unwrap_or(0);
                TaskProtection {
                    task_arn: arn.clone(),
                    enabled: on,
                    expires_at: Some(t0() + secs(3600)),
                }
            })
            .collect())
    }
}

/// ECS for jobs mode: the tasks each `startedBy` has running, and RunTask with ECS's token
/// memory (the same token answers the tasks it started, a different count is a conflict).
#[derive(Default)]
struct FakeTasks {
    live: Mutex<HashMap<String, Vec<String>>>,
    calls: Mutex<Vec<RunTaskInput>>,
    tokens: Mutex<HashMap<String, (i32, Vec<String>)>>,
    /// Capacity providers with no capacity: RunTask answers `failures[]` for them.
    exhausted: Mutex<Vec<String>>,
    /// ListTasks answers nothing (a list that has not caught up yet).
    stale_list: AtomicBool,
}

impl FakeTasks {
    fn calls(&self) -> Vec<RunTaskInput> {
        self.calls.lock().unwrap().clone()
    }

    fn stop_all(&self) {
        self.live.lock().unwrap().clear();
    }
}

impl Tasks for FakeTasks {
    async fn list_tasks(&self, _cluster: &str, started_by: &str) -> CallResult<Vec<String>> {
        if self.stale_list.load(Ordering::SeqCst) {
            return Ok(vec![]);
        }
        Ok(self
            .live
            .lock()
            .unwrap()
            .get(started_by)
            .cloned()
            .unwrap_or_default())
    }

    async fn describe_tasks(&self, _: &str, _: &[String]) -> CallResult<Vec<DescribedTask>> {
        unreachable!("the scaler describes no task")
    }

    async fn run_task(&self, input: &RunTaskInput) -> CallResult<RunTaskAnswer> {
        self.calls.lock().unwrap().push(input.clone());
        if let Some((count, arns)) = self.tokens.lock().unwrap().get(&input.client_token) {
            return Ok(if *count == input.count {
                RunTaskAnswer::Response {
                    task_arns: arns.clone(),
                    failures: vec![],
                }
            } else {
                RunTaskAnswer::Conflict {
                    task_arns: arns.clone(),
                }
            });
        }
        let provider = input
            .capacity_provider_strategy
            .first()
            .map(|p| p.capacity_provider.clone());
        if provider.is_some_and(|p| self.exhausted.lock().unwrap().contains(&p)) {
            return Ok(RunTaskAnswer::Response {
                task_arns: vec![],
                failures: vec![TaskFailure {
                    reason: "Capacity is unavailable at this time".into(),
                    detail: None,
                }],
            });
        }
        let mut live = self.live.lock().unwrap();
        let tasks = live.entry(input.started_by.clone()).or_default();
        let arns: Vec<String> = (0..input.count)
            .map(|i| format!("arn:task/{}-{i}", &input.client_token[..12]))
            .collect();
        tasks.extend(arns.clone());
        self.tokens
            .lock()
            .unwrap()
            .insert(input.client_token.clone(), (input.count, arns.clone()));
        Ok(RunTaskAnswer::Response {
            task_arns: arns,
            failures: vec![],
        })
    }

    async fn stop_task(&self, _: &str, _: &str, _: &str) -> CallResult<()> {
        unreachable!("the scaler stops no task")
    }
}

/// Versioned items; `interfere` makes "another invocation" write just before the next save.
#[derive(Default)]
struct FakeState {
    items: Mutex<HashMap<String, Record>>,
    interfere: AtomicBool,
}

impl FakeState {
    fn state(&self, worker: &str) -> (WorkerState, u64) {
        let record = self.items.lock().unwrap()[&state_key(worker)].clone();
        (serde_json::from_str(&record.data).unwrap(), record.version)
    }
}

impl StateTable for FakeState {
    fn table(&self) -> &str {
        "state"
    }

    async fn get(&self, key: &str) -> Result<Option<Record>, AwsError> {
        Ok(self.items.lock().unwrap().get(key).cloned())
    }

    async fn put(&self, put: &Put<'_>) -> Result<Saved, AwsError> {
        let (key, data, expected) = (put.key, put.data, put.expected);
        let mut items = self.items.lock().unwrap();
        if self.interfere.swap(false, Ordering::SeqCst) {
            let version = items.get(key).map_or(1, |r| r.version + 1);
            let data = items
                .get(key)
                .map_or_else(|| "{}".to_string(), |r| r.data.clone());
            items.insert(key.into(), Record { data, version });
        }
        let current = items.get(key).map(|r| r.version);
        if current != expected {
            return Ok(Saved::Conflict);
        }
        let version = expected.map_or(1, |v| v + 1);
        items.insert(
            key.into(),
            Record {
                data: data.into(),
                version,
            },
        );
        Ok(Saved::Written { version })
    }
}

/// The workers and every fake port in one place, which is the ports bundle itself.
struct TestScaler {
    workers: BTreeMap<String, Worker>,
    queues: FakeQueues,
    services: FakeServices,
    tasks: FakeTasks,
    state: FakeState,
    clock: ManualClock,
    defaults: LaunchSettings,
    /// When set, the observation's reads each wait for the others ([`TestScaler::meet`]).
    meeting: Option<Meeting>,
}

/// Reads that must all be under way before any answers.
struct Meeting {
    expected: usize,
    arrived: AtomicUsize,
}

impl TestScaler {
    /// Arrives at the meeting and waits, a bounded number of turns, for the other reads: a
    /// read sent after the previous one answered waits in vain and fails.
    async fn meet(&self, operation: &'static str) -> CallResult<()> {
        let Some(meeting) = &self.meeting else {
            return Ok(());
        };
        meeting.arrived.fetch_add(1, Ordering::SeqCst);
        for _ in 0..100 {
            if meeting.arrived.load(Ordering::SeqCst) >= meeting.expected {
                return Ok(());
            }
            tokio::task::yield_now().await;
        }
        Err(CallError::Rejected {
            operation,
            message: "sent alone: the other reads were not under way".into(),
        })
    }

    async fn run(&self, deadline: DateTime<Utc>) -> Report {
        let mut scaler = Scaler::new(&self.workers, self);
        scaler.defaults = Some(&self.defaults);
        scaler.run(deadline).await
    }

    async fn handle(&self, payload: Value) -> Report {
        Scaler::new(&self.workers, self)
            .handle(&payload, None)
            .await
    }
}

impl Queues for TestScaler {
    async fn depth(&self, queue_url: &str) -> CallResult<QueueDepth> {
        self.meet("GetQueueAttributes").await?;
        self.queues.depth(queue_url).await
    }
}

impl Services for TestScaler {
    async fn counts(&self, cluster: &str, service: &str) -> CallResult<ServiceCounts> {
        self.meet("DescribeServices").await?;
        self.services.counts(cluster, service).await
    }

    async fn set_desired(&self, cluster: &str, service: &str, desired: u32) -> CallResult<()> {
        self.services.set_desired(cluster, service, desired).await
    }

    async fn service_tasks(&self, cluster: &str, service: &str) -> CallResult<Vec<String>> {
        self.services.service_tasks(cluster, service).await
    }

    async fn task_protection(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> CallResult<Vec<TaskProtection>> {
        self.services.task_protection(cluster, task_arns).await
    }
}

impl Tasks for TestScaler {
    async fn list_tasks(&self, cluster: &str, started_by: &str) -> CallResult<Vec<String>> {
        self.meet("ListTasks").await?;
        self.tasks.list_tasks(cluster, started_by).await
    }

    async fn describe_tasks(&self, c: &str, arns: &[String]) -> CallResult<Vec<DescribedTask>> {
        self.tasks.describe_tasks(c, arns).await
    }

    async fn run_task(&self, input: &RunTaskInput) -> CallResult<RunTaskAnswer> {
        self.tasks.run_task(input).await
    }

    async fn stop_task(&self, cluster: &str, arn: &str, reason: &str) -> CallResult<()> {
        self.tasks.stop_task(cluster, arn, reason).await
    }
}

impl StateTable for TestScaler {
    fn table(&self) -> &str {
        self.state.table()
    }

    async fn get(&self, key: &str) -> CallResult<Option<Record>> {
        self.meet("GetItem").await?;
        self.state.get(key).await
    }

    async fn put(&self, put: &Put<'_>) -> CallResult<Saved> {
        self.state.put(put).await
    }
}

impl Clock for TestScaler {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn sleep(&self, duration: Duration) -> impl std::future::Future<Output = ()> + Send {
        self.clock.sleep(duration)
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap()
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

const WORKERS: &str = r#"
[state]
table = "jobrunner-state"

[workers.orders]
cluster = "jobs"
service = "orders"
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"
messages_per_task = 10
max_tasks = 20
scale_in_after_seconds = 60

[workers.emails]
cluster = "jobs"
service = "emails"
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/emails"
messages_per_task = 1
max_tasks = 5
scale_in_after_seconds = 60
sample_every_seconds = 15
"#;

const ORDERS: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/orders";
const EMAILS: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/emails";

fn scaler(only: &[&str]) -> TestScaler {
    let mut workers = Config::parse(WORKERS, Format::Toml).unwrap().workers;
    workers.retain(|name, _| only.contains(&name.as_str()));
    TestScaler {
        workers,
        queues: FakeQueues::default(),
        services: FakeServices::default(),
        tasks: FakeTasks::default(),
        state: FakeState::default(),
        clock: ManualClock::new(t0()),
        defaults: LaunchSettings::default(),
        meeting: None,
    }
}

/// One invocation without sub-minute sampling room.
async fn tick(scaler: &TestScaler) -> Report {
    scaler.run(scaler.clock.now()).await
}

#[tokio::test]
async fn scales_out_from_zero_and_saves_the_history() {
    let s = scaler(&["orders"]);
    s.queues.script(ORDERS, &[(25, 0)]);
    s.services.add("orders", 0);
    let report = tick(&s).await;
    assert!(report.failed.is_empty());
    assert_eq!(s.services.updates(), vec![("orders".to_string(), 3)]);
    let sample = &report.workers["orders"].samples[0];
    assert_eq!(
        (
            sample.visible,
            sample.previous,
            sample.desired,
            sample.updated
        ),
        (25, 0, 3, true)
    );
    assert_eq!(sample.direction, Direction::Out);
    assert!(
        sample.reason.contains("scale out 0 → 3"),
        "{}",
        sample.reason
    );

    let (state, version) = s.state.state("orders");
    assert_eq!(version, 1);
    assert_eq!(state.history.samples.len(), 1);
    assert_eq!(state.history.since, Some(t0()));
    let action = state.last_action.unwrap();
    assert_eq!((action.at, action.from, action.to), (t0(), 0, 3));
}

#[tokio::test]
async fn the_observation_reads_go_out_together() {
    // The stored state, the queue and the service: each read waits for the other two.
    let meeting = || Meeting {
        expected: 3,
        arrived: AtomicUsize::new(0),
    };
    let mut s = scaler(&["orders"]);
    s.meeting = Some(meeting());
    s.queues.script(ORDERS, &[(25, 0)]);
    s.services.add("orders", 0);
    let report = tick(&s).await;
    assert_eq!(report.workers["orders"].error, None);
    assert_eq!(s.services.updates(), vec![("orders".to_string(), 3)]);

    // Jobs mode: the stored state, the queue and the worker's tasks.
    let mut s = jobs_scaler("");
    s.meeting = Some(meeting());
    s.queues.script(JOBS, &[(25, 0)]);
    let report = tick(&s).await;
    assert_eq!(report.workers["thumbs"].error, None);
    assert_eq!(launched(&report, "thumbs"), 3);

    // A read the others wait for in vain fails them: a fourth that never comes, as a read
    // sent only after the previous one answered would never come.
    let mut s = scaler(&["orders"]);
    s.meeting = Some(Meeting {
        expected: 4,
        arrived: AtomicUsize::new(0),
    });
    s.queues.script(ORDERS, &[(25, 0)]);
    s.services.add("orders", 0);
    let error = tick(&s).await.workers["orders"].error.clone().unwrap();
    assert!(error.contains("sent alone"), "{error}");
}

#[tokio::test]
async fn updates_only_when_the_count_changes() {
    let s = scaler(&["orders"]);
    s.queues.script(ORDERS, &[(25, 0)]);
    s.services.add("orders", 3);
    let report = tick(&s).await;
    assert!(s.services.updates().is_empty());
    assert!(!report.workers["orders"].samples[0].updated);
    // The state is still written: the sample belongs to the history.
    assert_eq!(s.state.state("orders").1, 1);
    assert_eq!(s.state.state("orders").0.last_action, None);
}

#[tokio::test]
async fn scale_in_waits_for_the_window_across_invocations() {
    let s = scaler(&["orders"]);
    s.queues.script(ORDERS, &[(25, 5), (0, 0)]);
    s.services.add("orders", 0);
    tick(&s).await;
    assert_eq!(s.services.desired("orders"), 3);
    s.clock.advance(Duration::from_secs(60));
    let report = tick(&s).await;
    assert_eq!(report.workers["orders"].samples[0].desired, 3, "{report:?}");
    // The 3-task need was in force until the 60 s sample; 60 s later the window is clear.
    s.clock.advance(Duration::from_secs(60));
    let report = tick(&s).await;
    assert_eq!(s.services.desired("orders"), 0, "{report:?}");
    assert_eq!(s.state.state("orders").1, 3);
    let action = s.state.state("orders").0.last_action.unwrap();
    assert_eq!((action.from, action.to), (3, 0));
}

#[tokio::test]
async fn a_failing_worker_does_not_block_the_others() {
    let s = scaler(&["orders", "emails"]);
    s.queues.script(ORDERS, &[(45, 0)]);
    // No script for the emails queue: it does not exist.
    s.services.add("orders", 0);
    s.services.add("emails", 0);
    let report = tick(&s).await;
    assert_eq!(report.failed, vec!["emails".to_string()]);
    let error = report.workers["emails"].error.as_deref().unwrap();
    assert!(error.contains("NonExistentQueue"), "{error}");
    assert_eq!(s.services.updates(), vec![("orders".to_string(), 5)]);
    assert!(report.workers["orders"].error.is_none());
}

#[tokio::test]
async fn a_failed_update_is_reported() {
    let s = scaler(&["orders"]);
    s.queues.script(ORDERS, &[(45, 0)]);
    s.services.add("orders", 0);
    s.services.fail_updates.store(true, Ordering::SeqCst);
    let report = tick(&s).await;
    assert_eq!(report.failed, vec!["orders".to_string()]);
    assert!(
        report.workers["orders"]
            .error
            .as_deref()
            .unwrap()
            .contains("UpdateService throttled")
    );
}

#[tokio::test]
async fn sub_minute_sampling_reacts_within_the_invocation() {
    let s = scaler(&["emails", "orders"]);
    // emails samples every 15 s; messages arrive after the first sample.
    s.queues.script(EMAILS, &[(0, 0), (3, 0), (3, 1), (0, 0)]);
    s.queues.script(ORDERS, &[(0, 0)]);
    s.services.add("emails", 0);
    s.services.add("orders", 0);
    let event = json!({"detail-type": "Scheduled Event", "time": "2024-01-01T12:00:00Z"});
    s.clock.set(t0() + secs(1));
    let report = s.handle(event).await;
    let emails = &report.workers["emails"].samples;
    let times: Vec<_> = emails.iter().map(|x| (x.at - t0()).num_seconds()).collect();
    // Sampled at 1, 16, 31, 46 s: the next would be 61 s, past the 55 s deadline.
    assert_eq!(times, vec![1, 16, 31, 46]);
    assert_eq!(
        emails.iter().map(|x| x.desired).collect::<Vec<_>>(),
        vec![0, 3, 4, 4]
    );
    assert_eq!(
        s.services.updates(),
        vec![("emails".to_string(), 3), ("emails".to_string(), 4)]
    );
    // orders has no sample_every_seconds: one sample.
    assert_eq!(report.workers["orders"].samples.len(), 1);
    assert_eq!(s.state.state("emails").1, 4);
    // The sleeps were the clock's: 45 s passed without waiting.
    assert_eq!(s.clock.now(), t0() + secs(46));
}

#[tokio::test]
async fn a_conflicting_write_skips_the_sample_and_rereads() {
    let s = scaler(&["emails"]);
    s.queues.script(EMAILS, &[(2, 0)]);
    s.services.add("emails", 0);
    tick(&s).await;
    assert_eq!(s.state.state("emails").1, 1);
    // Another invocation writes between this one's read and its write.
    s.services.add("emails", 0);
    s.state.interfere.store(true, Ordering::SeqCst);
    s.clock.advance(Duration::from_secs(60));
    let report = s.run(s.clock.now() + secs(20)).await;
    let emails = &report.workers["emails"];
    assert_eq!(emails.conflicts, 1);
    // The conflicting sample did nothing; the next one (15 s later) wrote on top of the winner.
    assert_eq!(emails.samples.len(), 1);
    assert_eq!(
        s.services.updates(),
        vec![("emails".to_string(), 2), ("emails".to_string(), 2)]
    );
    assert_eq!(s.state.state("emails").1, 3);
    assert!(report.failed.is_empty());
}

#[tokio::test]
async fn unreadable_state_starts_afresh() {
    let s = scaler(&["orders"]);
    s.state.items.lock().unwrap().insert(
        state_key("orders"),
        Record {
            data: "not json".into(),
            version: 7,
        },
    );
    s.queues.script(ORDERS, &[(10, 0)]);
    s.services.add("orders", 0);
    let report = tick(&s).await;
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(s.state.state("orders").1, 8);
    assert_eq!(s.services.desired("orders"), 1);
}

#[test]
fn sampling_stops_before_the_next_minute_and_the_lambda_deadline() {
    let start = t0() + secs(2);
    assert_eq!(sampling_deadline(start, Some(t0()), None), t0() + secs(55));
    // No or implausible event time: counted from the start.
    assert_eq!(sampling_deadline(start, None, None), start + secs(55));
    assert_eq!(
        sampling_deadline(start, Some(t0() - secs(600)), None),
        start + secs(55)
    );
    assert_eq!(
        sampling_deadline(start, Some(t0() + secs(600)), None),
        start + secs(55)
    );
    // A 30 s Lambda timeout ends sampling 5 s before it.
    assert_eq!(
        sampling_deadline(start, Some(t0()), Some(start + secs(30))),
        start + secs(25)
    );
}

#[tokio::test]
async fn no_workers_is_an_empty_report() {
    let s = scaler(&[]);
    let report = s.handle(json!({})).await;
    assert_eq!(report, Report::default());
}

#[test]
fn report_serializes_for_the_lambda_response() {
    let mut report = Report::default();
    report.workers.insert(
        "a".into(),
        WorkerReport {
            error: Some("boom".into()),
            ..Default::default()
        },
    );
    report.failed.push("a".into());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json,
        json!({"workers": {"a": {"samples": [], "error": "boom"}}, "failed": ["a"]})
    );
}

#[test]
fn emf_documents_name_the_metrics() {
    let workers = Config::parse(WORKERS, Format::Toml).unwrap().workers;
    let observation = Observation {
        visible: 12,
        in_flight: 3,
        delayed: 1,
        desired: 0,
        running: 0,
        pending: 0,
    };
    let decision = decide(&workers["orders"], &observation, &History::default(), t0());
    let doc = metrics::decision("orders", &observation, &decision, t0());
    let directive = &doc["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(doc["_aws"]["Timestamp"], t0().timestamp_millis());
    assert_eq!(directive["Namespace"], "jobrunner");
    assert_eq!(directive["Dimensions"], json!([["worker"]]));
    let names: Vec<_> = directive["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["backlog", "in_flight", "desired", "decision"]);
    // Every metric and dimension named in the directive is a top-level member.
    for name in names.iter().chain(&["worker"]) {
        assert!(doc.get(*name).is_some(), "{name} missing");
    }
    assert_eq!(
        (
            doc["backlog"].as_u64(),
            doc["in_flight"].as_u64(),
            doc["desired"].as_u64()
        ),
        (Some(15), Some(3), Some(2))
    );
    assert_eq!(doc["decision"], 2);
    assert_eq!(doc["direction"], "scale_out");
    // One line.
    assert!(!doc.to_string().contains('\n'));

    let error = metrics::error("orders", "boom", t0());
    assert_eq!(error["errors"], 1);
    assert_eq!(
        error["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
        "errors"
    );
}

#[tokio::test]
async fn the_sample_event_drives_an_invocation() {
    let event = jobrunner_testkit::sample("scaler-tick");
    let scheduled: DateTime<Utc> = event["time"].as_str().unwrap().parse().unwrap();
    let s = scaler(&["emails"]);
    s.queues.script(EMAILS, &[(1, 0)]);
    s.services.add("emails", 0);
    s.clock.set(scheduled + secs(3));
    let report = s.handle(event).await;
    let times: Vec<_> = report.workers["emails"]
        .samples
        .iter()
        .map(|x| (x.at - scheduled).num_seconds())
        .collect();
    assert_eq!(times, vec![3, 18, 33, 48]);
    assert_eq!(s.services.updates(), vec![("emails".to_string(), 1)]);
}

#[tokio::test]
async fn an_invocation_fails_when_every_worker_failed() {
    let s = scaler(&["orders", "emails"]);
    // Neither queue exists.
    s.services.add("orders", 0);
    s.services.add("emails", 0);
    let error = s.handle(json!({})).await.into_result().unwrap_err();
    assert!(error.is_retryable());
    let message = error.to_string();
    assert!(
        message.starts_with("every worker failed (2): "),
        "{message}"
    );
    assert!(message.contains("emails: "), "{message}");
    assert!(message.contains("NonExistentQueue"), "{message}");
    assert!(s.services.updates().is_empty());
}

#[tokio::test]
async fn an_invocation_with_some_workers_failed_succeeds() {
    let s = scaler(&["orders", "emails"]);
    s.queues.script(ORDERS, &[(45, 0)]);
    s.services.add("orders", 0);
    s.services.add("emails", 0);
    let report = s.handle(json!({})).await.into_result().unwrap();
    assert_eq!(report.failed, vec!["emails".to_string()]);
    assert_eq!(s.services.updates(), vec![("orders".to_string(), 5)]);
}

const JOBS: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/thumbs";

/// A scaler of one jobs-mode worker `thumbs` (10 per task, at most 8 tasks) plus `extra`.
fn jobs_scaler(extra: &str) -> TestScaler {
    let max = if extra.contains("max_tasks") {
        ""
    } else {
        "max_tasks = 8"
    };
    let text = format!(
        r#"
[defaults]
subnets = ["subnet-1"]
security_groups = ["sg-1"]

[state]
table = "jobrunner-state"

[workers.thumbs]
mode = "jobs"
cluster = "jobs"
queue_url = "{JOBS}"
task_definition = "thumbs:3"
container = "app"
command = ["thumbs", "--fast"]
messages_per_task = 10
{max}
{extra}
"#
    );
    let config = Config::parse(&text, Format::Toml).unwrap();
    TestScaler {
        workers: config.workers.clone(),
        queues: FakeQueues::default(),
        services: FakeServices::default(),
        tasks: FakeTasks::default(),
        state: FakeState::default(),
        clock: ManualClock::new(t0()),
        defaults: config.defaults.clone(),
        meeting: None,
    }
}

fn launched(report: &Report, worker: &str) -> usize {
    report.workers[worker]
        .samples
        .iter()
        .map(|s| s.launched.len())
        .sum()
}

#[tokio::test]
async fn jobs_mode_launches_what_the_backlog_needs_and_counts_live_tasks_next_tick() {
    let s = jobs_scaler("");
    s.queues.script(JOBS, &[(25, 0)]);
    let report = tick(&s).await;
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(launched(&report, "thumbs"), 3);
    let calls = s.tasks.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(
        (
            call.count,
            call.started_by.as_str(),
            call.task_definition.as_str()
        ),
        (3, "jobrunner/worker/thumbs", "thumbs:3")
    );
    assert_eq!(
        call.overrides.container_overrides[0].command.as_deref(),
        Some(
            &[
                "jobrunner-worker",
                "--queue-url",
                JOBS,
                "--idle-exit",
                "60s",
                "--",
                "thumbs",
                "--fast"
            ]
            .map(String::from)[..]
        )
    );
    let network = call.network_configuration.as_ref().unwrap();
    assert_eq!(network.awsvpc_configuration.subnets, ["subnet-1"]);
    let sample = &report.workers["thumbs"].samples[0];
    assert!(sample.reason.contains("needs 3 tasks"), "{}", sample.reason);
    assert_eq!((sample.previous, sample.desired), (0, 3));
    // The EMF line carries the decision.
    let doc = report.metrics.last().unwrap();
    assert_eq!(
        (doc["mode"].as_str(), doc["decision"].as_u64()),
        (Some("jobs"), Some(3))
    );

    // A minute later 12 more messages arrived (37 in all): the 3 live tasks count.
    s.clock.advance(Duration::from_secs(60));
    s.queues.script(JOBS, &[(30, 7)]);
    let report = tick(&s).await;
    assert_eq!(launched(&report, "thumbs"), 1);
    let sample = &report.workers["thumbs"].samples[0];
    assert!(
        sample.reason.contains("3 pending or running"),
        "{}",
        sample.reason
    );

    // The queue is empty: nothing is launched (the tasks leave by themselves).
    s.clock.advance(Duration::from_secs(60));
    s.queues.script(JOBS, &[(0, 0)]);
    s.tasks.stop_all();
    let report = tick(&s).await;
    assert_eq!(launched(&report, "thumbs"), 0);
    assert!(
        report.workers["thumbs"].samples[0]
            .reason
            .contains("queue empty"),
        "{report:?}"
    );
    assert_eq!(s.tasks.calls().len(), 2);
}

#[tokio::test]
async fn jobs_mode_never_exceeds_max_tasks_and_batches_ten_per_call() {
    let s = jobs_scaler("max_step_out = 30\nmax_tasks = 25");
    s.queues.script(JOBS, &[(1000, 0)]);
    let report = tick(&s).await;
    assert_eq!(launched(&report, "thumbs"), 25);
    let counts: Vec<i32> = s.tasks.calls().iter().map(|c| c.count).collect();
    assert_eq!(counts, [10, 10, 5]);
    let tokens: std::collections::BTreeSet<String> = s
        .tasks
        .calls()
        .iter()
        .map(|c| c.client_token.clone())
        .collect();
    assert_eq!(tokens.len(), 3, "one token per call");
    assert!(
        report.workers["thumbs"].samples[0]
            .reason
            .contains("max_tasks 25")
    );
    // Next tick: 25 live, still a big backlog: nothing more.
    s.clock.advance(Duration::from_secs(60));
    let report = tick(&s).await;
    assert_eq!(launched(&report, "thumbs"), 0);
    assert_eq!(s.tasks.calls().len(), 3);
}

#[tokio::test]
async fn jobs_mode_redelivered_tick_starts_nothing_twice() {
    let s = jobs_scaler("");
    s.queues.script(JOBS, &[(25, 0)]);
    tick(&s).await;
    // The same tick again (a redelivery at the same time) while ListTasks has not caught up:
    // the same decision sends the same token, and ECS answers with the tasks it started.
    s.tasks.stale_list.store(true, Ordering::SeqCst);
    let again = tick(&s).await;
    let calls = s.tasks.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].client_token, calls[1].client_token);
    assert_eq!(
        s.tasks.live.lock().unwrap()["jobrunner/worker/thumbs"].len(),
        3
    );
    assert_eq!(
        launched(&again, "thumbs"),
        3,
        "the original tasks are reported"
    );
    // A redelivery that sees more messages asks for more with the same token: ECS refuses
    // (ConflictException naming the tasks) and nothing more starts.
    s.queues.script(JOBS, &[(45, 0)]);
    let conflict = tick(&s).await;
    assert!(conflict.failed.is_empty());
    assert_eq!(
        s.tasks.live.lock().unwrap()["jobrunner/worker/thumbs"].len(),
        3
    );
    // The next slot is a new decision with new tokens.
    s.clock.advance(Duration::from_secs(60));
    tick(&s).await;
    assert_ne!(
        s.tasks.calls().last().unwrap().client_token,
        calls[0].client_token
    );
}

#[tokio::test]
async fn jobs_mode_falls_back_to_the_next_capacity_provider() {
    let s = jobs_scaler(r#"capacity = ["FARGATE_SPOT", "FARGATE"]"#);
    s.tasks
        .exhausted
        .lock()
        .unwrap()
        .push("FARGATE_SPOT".into());
    s.queues.script(JOBS, &[(15, 0)]);
    let report = tick(&s).await;
    assert!(report.failed.is_empty(), "{report:?}");
    let calls = s.tasks.calls();
    let providers: Vec<&str> = calls
        .iter()
        .map(|c| c.capacity_provider_strategy[0].capacity_provider.as_str())
        .collect();
    assert_eq!(providers, ["FARGATE_SPOT", "FARGATE"]);
    assert_eq!(calls[1].count, 2);
    assert_eq!(
        calls[1].client_token,
        crate::token::for_attempt(&calls[0].client_token, "FARGATE")
    );
    assert_eq!(launched(&report, "thumbs"), 2);

    // With no capacity anywhere the worker's sample fails, naming the reason.
    let s = jobs_scaler(r#"capacity = ["FARGATE_SPOT"]"#);
    s.tasks
        .exhausted
        .lock()
        .unwrap()
        .push("FARGATE_SPOT".into());
    s.queues.script(JOBS, &[(15, 0)]);
    let report = tick(&s).await;
    let error = report.workers["thumbs"].error.as_deref().unwrap();
    assert!(
        error.contains("2 of 2 tasks not started") && error.contains("Capacity"),
        "{error}"
    );
}

#[tokio::test]
async fn scale_in_stops_at_the_protected_tasks() {
    let s = scaler(&["orders"]);
    s.services.add("orders", 15);
    s.services
        .protected
        .lock()
        .unwrap()
        .insert("orders".into(), 4);
    s.queues.script(ORDERS, &[(0, 0)]);
    // No scale-in before a whole window of observations: protection is not read.
    tick(&s).await;
    assert!(s.services.protection_calls.lock().unwrap().is_empty());
    s.clock.advance(Duration::from_secs(61));
    let report = tick(&s).await;
    assert_eq!(s.services.desired("orders"), 4);
    // 15 tasks: two GetTaskProtection calls of at most 10.
    assert_eq!(*s.services.protection_calls.lock().unwrap(), [10, 5]);
    let sample = &report.workers["orders"].samples[0];
    assert_eq!(sample.protected, Some(4));
    assert!(
        sample.reason.contains("4 tasks hold scale-in protection"),
        "{}",
        sample.reason
    );
    assert_eq!(report.metrics.last().unwrap()["protected"], 4);
    // Once the tasks released protection, the next tick goes on to zero.
    s.services
        .protected
        .lock()
        .unwrap()
        .insert("orders".into(), 0);
    s.clock.advance(Duration::from_secs(60));
    tick(&s).await;
    assert_eq!(s.services.desired("orders"), 0);
}

#[tokio::test]
async fn protection_holds_the_count_when_every_task_is_protected() {
    let s = scaler(&["orders"]);
    s.services.add("orders", 3);
    s.services
        .protected
        .lock()
        .unwrap()
        .insert("orders".into(), 3);
    s.queues.script(ORDERS, &[(0, 0)]);
    tick(&s).await;
    s.clock.advance(Duration::from_secs(61));
    let report = tick(&s).await;
    assert!(s.services.updates().is_empty(), "no UpdateService");
    let sample = &report.workers["orders"].samples[0];
    assert_eq!(sample.direction, Direction::Hold);
    assert!(
        sample.reason.contains("desiredCount stays 3"),
        "{}",
        sample.reason
    );
}
