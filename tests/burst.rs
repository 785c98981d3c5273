//! Burst: N S3 "Object Created" events (plus duplicates, events no trigger matches and
//! permanently bad messages) in an SQS queue with a dead-letter queue, drained by the launcher
//! the way Lambda's event source mapping does, through the ECS-faithful fault proxy with
//! throttling and faults on. Every object must be launched exactly once, none lost, and the
//! dead-letter queue must hold exactly the bad messages. Two scenarios:
//!
//! - **Uncapped** ([`a_burst_launches_every_object_exactly_once`]): no ledger, no cap; the
//!   launcher runs as fast as ECS lets it.
//! - **At the cap** ([`at_the_cap_every_object_waits_its_turn_and_none_is_dead_lettered`]):
//!   the job has `max_running = M`, the run ledger (`[state]` table) and `[launcher] queue_url`
//!   = the burst queue itself. Events that find no free slot are put back in that queue with a
//!   delay and acknowledged; the test plays ECS's part for the running tasks: each task "runs"
//!   for `BURST_TASK_SECONDS`, then the test stops it in moto (StopTask) and hands its STOPPED
//!   Task State Change event (built from the task as StopTask returns it, the same `Task` as DescribeTasks) to the tracker, which frees the slot.
//!   The fault proxy counts the tasks running in moto after every start and every stop
//!   (`max_running_seen`, never above M); good events found in the dead-letter queue
//!   (`dlq_good`) must be 0.
//!
//!   No task stops before the job has first had M tasks running, so the cap is reached
//!   however slowly the machine launches (a debug build on a busy machine may launch fewer
//!   than M tasks per task duration).
//!
//!   Time is scaled: `BURST_TASK_SECONDS` real seconds (default 2; `make burst` 3) stand for a
//!   5-minute task, i.e. 100× at 3 s. The launcher's `wait_seconds` is 1 (its smallest value,
//!   `BURST_WAIT_SECONDS`), standing for 100 s at that scale; the queue's visibility timeout
//!   and `maxReceiveCount` are the low ones of the uncapped scenario. So every waiting event is
//!   looked at again and again (hundreds of times for the last of 10,000 events, which in real
//!   time would wait about 200 × 5 minutes ≈ 17 hours) while the receive count of each message
//!   it is in stays at 1: what must hold is that no good event ever reaches the dead-letter
//!   queue and the cap is never exceeded, however long the wait. The ledger's own clocks (the
//!   90 s before a silent waiter leaves the line, the 60 s between reconciliations, the 120 s
//!   grace before reconciliation frees a slot) are not scaled.
//!
//! Environment: `BURST_EVENTS` (objects; default 1000 uncapped, 200 at the cap),
//! `BURST_POLLERS` (concurrent batches, default 2), `BURST_SEED` (fault seed, default 1),
//! `BURST_FAULT_RATE` (per kind of fault per RunTask call, default 0.002),
//! `BURST_MAX_RECEIVE_COUNT` (default 3), `BURST_VISIBILITY_TIMEOUT` (seconds, default 5),
//! `BURST_MIN_RATE` (launches/s the uncapped burst must reach, default 0: not asserted); at the
//! cap also `BURST_MAX_RUNNING` (M, default 20), `BURST_TASK_SECONDS` (default 2),
//! `BURST_WAIT_SECONDS` (default 1) and `BURST_BACKLOG` (messages the feeder keeps in the queue,
//! default 2 × M). The ECS clients use jobrunner's own retry config. The last line printed is
//! the summary (see `make burst` / `scripts/burst.sh`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{DesiredStatus, Task};
use aws_smithy_types::date_time::Format;
use jobrunner_aws::Adapters;
use jobrunner_aws::ecs::EcsTasks;
use jobrunner_aws::sns::SnsTopic;
use jobrunner_aws::sqs_queue::SqsQueues;
use jobrunner_aws::state_store::StateStore;
use jobrunner_aws::task_definitions::TaskDefinitions;
use jobrunner_core::Config;
use jobrunner_core::ledger::{Slots, keys};
use jobrunner_core::ports::StateTable;
use jobrunner_core::run::Run;
use jobrunner_integration_tests::REGION;
use jobrunner_integration_tests::esm::{
    EsmConfig, EsmStats, EventSourceMapping, QueueWithDlq, sqs_event,
};
use jobrunner_integration_tests::fault_proxy::{FaultProxy, Faults, Limits};
use jobrunner_integration_tests::fixtures::{
    LaunchFixture, THUMBNAILS, alert_topic, create_state_table, keep_tasks_running, launcher_ports,
};
use jobrunner_lambda::Invocation;
use serde_json::{Value, json};

/// RunTask's documented sustained rate (calls/s, one task per call here).
const LIMIT: f64 = 20.0;
/// The SDK's per-attempt timeout in this test; injected slow answers take longer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
const SLOW_DELAY: Duration = Duration::from_millis(1500);
/// Default visibility timeout, seconds: short, so that failed messages come back quickly.
const VISIBILITY_TIMEOUT: i32 = 5;
/// Messages the feeder keeps in the queue (visible and in flight).
const BACKLOG: u64 = 200;
/// Give up when nothing new launches and nothing leaves the queue for this long.
const STALL: Duration = Duration::from_secs(90);
/// At the cap, give up when nothing new launches for this long (a leaked slot comes back
/// through reconciliation within about three minutes).
const CAP_STALL: Duration = Duration::from_secs(300);
/// The state table of the capped scenario.
const TABLE: &str = "jobrunner-state";
/// The job's `startedBy`.
const STARTED_BY: &str = "jobrunner/thumbnails";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Object `n`'s event: uploaded `n` milliseconds into the burst (its place in line).
fn object_created(key: &str, n: u64) -> Value {
    let base = chrono::DateTime::parse_from_rfc3339("2026-11-22T05:00:00Z").expect("time");
    let time = (base + chrono::Duration::milliseconds(n as i64))
        .to_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({
        "version": "0", "id": format!("00000000-0000-4000-8000-{n:012}"), "detail-type": "Object Created",
        "source": "aws.s3", "account": "123456789012", "time": time, "region": "us-east-1",
        "resources": ["arn:aws:s3:::uploads"],
        "detail": {"version": "0", "bucket": {"name": "uploads"},
            "object": {"key": key, "size": 1024 + n, "etag": format!("{n:032x}"), "sequencer": format!("{n:018X}")},
            "request-id": "R", "requester": "123456789012", "reason": "PutObject"}
    })
}

/// Messages no retry can fix: each must end in the dead-letter queue.
fn bad_messages() -> Vec<String> {
    vec![
        "this is not JSON {".into(),
        "[1, 2, 3]".into(),
        json!({"version": "0", "id": "bad-1", "detail-type": "Object Created", "source": "aws.s3", "time": "2026-11-22T05:00:00Z",
            "detail": {"bucket": {"name": "uploads"}}})
        .to_string(),
        json!({"version": "0", "id": "bad-2", "detail-type": "ECS Task State Change", "source": "aws.ecs", "time": "2026-11-22T05:00:00Z",
            "detail": {"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/jobs/abc", "lastStatus": "STOPPED", "desiredStatus": "STOPPED",
                "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/jobs", "containers": [], "version": 3}})
        .to_string(),
        format!("{}{}", "[".repeat(100), "]".repeat(100)),
    ]
}

/// A deterministic shuffle (xorshift64*; no `rand` in the workspace).
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for i in (1..items.len()).rev() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let j = (state.wrapping_mul(0x2545_f491_4f6c_dd1d) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// What goes into the queue.
struct Burst {
    keys: Vec<String>,
    /// Everything, shuffled.
    bodies: Vec<String>,
    duplicates: usize,
    unmatched: usize,
    bad: Vec<String>,
}

impl Burst {
    /// Every object once, 1% delivered twice (S3/EventBridge deliver at least once), a few
    /// objects no trigger matches, and the bad messages, shuffled.
    fn new(events: u64, seed: u64) -> Burst {
        let keys: Vec<String> = (0..events)
            .map(|i| format!("images/burst/{i:06}.jpg"))
            .collect();
        let mut bodies: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| object_created(key, i as u64).to_string())
            .collect();
        let duplicates: Vec<String> = bodies.iter().step_by(100).cloned().collect();
        bodies.extend(duplicates.iter().cloned());
        let unmatched: Vec<String> = (0..5)
            .map(|i| object_created(&format!("docs/{i}.pdf"), 1_000_000 + i).to_string())
            .collect();
        bodies.extend(unmatched.iter().cloned());
        let bad = bad_messages();
        bodies.extend(bad.iter().cloned());
        shuffle(&mut bodies, seed);
        Burst {
            keys,
            bodies,
            duplicates: duplicates.len(),
            unmatched: unmatched.len(),
            bad,
        }
    }

    fn expected(&self) -> BTreeSet<String> {
        self.keys.iter().map(|k| format!("uploads/{k}")).collect()
    }
}

/// The same seeded rate of each kind of fault on RunTask.
fn runtask_faults(seed: u64, rate: f64) -> Faults {
    Faults {
        seed,
        server_error: rate,
        unavailable: rate,
        dropped: rate,
        slow: rate,
        capacity: rate,
        slow_delay: SLOW_DELAY,
        operations: vec!["RunTask".into()],
        phase: None,
    }
}

/// An ECS adapter through the proxy with jobrunner's own retry config: each concurrent batch
/// is its own Lambda environment, with its own SDK retry quota.
fn ecs_through(proxy: &FaultProxy, fx: &LaunchFixture) -> EcsTasks {
    let client = proxy.ecs(&fx.account, ATTEMPT_TIMEOUT);
    EcsTasks::new(aws_sdk_ecs::Client::from_conf(
        client
            .config()
            .to_builder()
            .retry_config(jobrunner_aws::client::retry_config())
            .build(),
    ))
}

/// Task ARNs in the fixture's cluster started by `started_by` with `status` as moto lists them.
async fn task_arns(fx: &LaunchFixture, started_by: &str, status: DesiredStatus) -> Vec<String> {
    let mut arns = vec![];
    let mut pages = fx
        .account
        .ecs()
        .list_tasks()
        .cluster(&fx.cluster)
        .started_by(started_by)
        .desired_status(status)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        arns.extend(page.expect("list tasks").task_arns.unwrap_or_default());
    }
    arns
}

/// Tasks in the fixture's cluster started by `started_by`, as moto lists them (any status).
async fn task_count(fx: &LaunchFixture, started_by: &str) -> u64 {
    let running = task_arns(fx, started_by, DesiredStatus::Running).await;
    let stopped = task_arns(fx, started_by, DesiredStatus::Stopped).await;
    (running.len() + stopped.len()) as u64
}

/// Stops `arn` in moto and returns the task as ECS describes it (StopTask answers with the
/// same `Task` DescribeTasks does). moto's ECS walks its task dictionary without a lock, so a
/// call that meets a concurrent RunTask can fail with HTTP 500 ("dictionary changed size during
/// iteration"): such calls are tried again (StopTask is idempotent). Returns the task and the
/// number of such retries.
async fn stop_in_moto(ecs: &aws_sdk_ecs::Client, cluster: &str, arn: &str) -> (Task, u64) {
    let mut retries = 0;
    loop {
        match ecs
            .stop_task()
            .cluster(cluster)
            .task(arn)
            .reason("Essential container in task exited")
            .send()
            .await
        {
            Ok(out) => return (out.task.expect("StopTask answers with the task"), retries),
            Err(e) if retries < 50 => {
                retries += 1;
                eprintln!("burst: StopTask {arn} failed in moto, trying again: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("StopTask {arn}: {e:?}"),
        }
    }
}

/// A variable of the task's container overrides.
fn env_of(task: &Task, name: &str) -> Option<String> {
    task.overrides()?
        .container_overrides()
        .iter()
        .flat_map(|c| c.environment())
        .find(|kv| kv.name() == Some(name))
        .and_then(|kv| kv.value().map(str::to_owned))
}

/// The ECS "Task State Change" event of `task` stopping after its essential container exited
/// with 0, in the shape EventBridge delivers (its `detail` mirrors DescribeTasks' Task).
fn stopped_event(task: &Task, account: &str, stopped_at: &str) -> Value {
    let time =
        |t: Option<&aws_smithy_types::DateTime>| t.and_then(|t| t.fmt(Format::DateTime).ok());
    let overrides: Vec<Value> = task
        .overrides()
        .map(|o| o.container_overrides())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            json!({
                "name": c.name(),
                "command": c.command(),
                "environment": c.environment().iter()
                    .map(|kv| json!({"name": kv.name(), "value": kv.value()}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut names: Vec<&str> = task.containers().iter().filter_map(|c| c.name()).collect();
    if names.is_empty() {
        names = vec!["app"];
    }
    let containers: Vec<Value> = names
        .iter()
        .map(|name| json!({"name": name, "lastStatus": "STOPPED", "exitCode": 0, "taskArn": task.task_arn()}))
        .collect();
    let task_arn = task.task_arn().unwrap_or_default();
    let created = time(task.created_at());
    let started = time(task.started_at()).or_else(|| created.clone());
    // moto keeps no version: RUNNING would be 2, so STOPPED is 3 at least.
    let version = if task.version() > 0 {
        task.version().max(3)
    } else {
        3
    };
    json!({
        "version": "0",
        "id": format!("stop-{}", task_arn.rsplit('/').next().unwrap_or_default()),
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": account,
        "time": stopped_at,
        "region": REGION,
        "resources": [task_arn],
        "detail": {
            "taskArn": task_arn,
            "clusterArn": task.cluster_arn(),
            "taskDefinitionArn": task.task_definition_arn(),
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "version": version,
            "group": task.group(),
            "startedBy": task.started_by(),
            "launchType": task.launch_type().map(|l| l.as_str()),
            "capacityProviderName": task.capacity_provider_name(),
            "cpu": task.cpu(),
            "memory": task.memory(),
            "overrides": {"containerOverrides": overrides},
            "containers": containers,
            "stopCode": "EssentialContainerExited",
            "stoppedReason": "Essential container in task exited",
            "createdAt": created,
            "startedAt": started,
            "stoppingAt": stopped_at,
            "stoppedAt": stopped_at,
        }
    })
}

/// What the test saw ECS (through the proxy) and moto do, common to both scenarios.
struct Tally {
    launched: u64,
    duplicates_started: u64,
    tokens_started_twice: usize,
    unexpected: Vec<String>,
    lost: Vec<String>,
}

impl Tally {
    fn of(proxy: &FaultProxy, burst: &Burst) -> Tally {
        let per_object = proxy.tasks_per_object();
        let expected = burst.expected();
        Tally {
            launched: per_object.keys().filter(|o| expected.contains(*o)).count() as u64,
            unexpected: per_object
                .keys()
                .filter(|o| !expected.contains(*o))
                .cloned()
                .collect(),
            duplicates_started: per_object
                .values()
                .map(|&n| u64::from(n.saturating_sub(1)))
                .sum(),
            tokens_started_twice: proxy.launches().values().filter(|l| l.launches > 1).count(),
            lost: expected
                .iter()
                .filter(|o| !per_object.contains_key(*o))
                .cloned()
                .collect(),
        }
    }

    fn assert_exactly_once(&self, proxy: &FaultProxy, events: u64) {
        assert!(
            self.lost.is_empty(),
            "{} objects never launched, e.g. {:?}",
            self.lost.len(),
            self.lost.iter().take(5).collect::<Vec<_>>()
        );
        assert_eq!(
            self.duplicates_started, 0,
            "objects launched more than once"
        );
        assert_eq!(
            self.tokens_started_twice, 0,
            "a client token started tasks twice"
        );
        assert!(
            self.unexpected.is_empty(),
            "launched what no trigger matches: {:?}",
            self.unexpected
        );
        assert_eq!(
            proxy.launches().len() as u64,
            events,
            "one token per object"
        );
    }
}

fn counted(bodies: &[String]) -> BTreeMap<&String, usize> {
    bodies.iter().fold(BTreeMap::new(), |mut m, b| {
        *m.entry(b).or_default() += 1;
        m
    })
}

fn print_esm(stats: &EsmStats) {
    println!(
        "burst: esm receives={} received={} invocations={} batch_item_failures={} deleted={} time_in receive={}ms handler={}ms delete={}ms",
        EsmStats::get(&stats.receives),
        EsmStats::get(&stats.messages_received),
        EsmStats::get(&stats.invocations),
        EsmStats::get(&stats.batch_item_failures),
        EsmStats::get(&stats.deleted),
        EsmStats::get(&stats.receive_ms),
        EsmStats::get(&stats.handler_ms),
        EsmStats::get(&stats.delete_ms)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_launches_every_object_exactly_once() {
    let events: u64 = env_or("BURST_EVENTS", 1000);
    let pollers: usize = env_or("BURST_POLLERS", 2);
    let seed: u64 = env_or("BURST_SEED", 1);
    let fault_rate: f64 = env_or("BURST_FAULT_RATE", 0.002);
    let max_receive_count: u32 = env_or("BURST_MAX_RECEIVE_COUNT", 3);
    let visibility_timeout: i32 = env_or("BURST_VISIBILITY_TIMEOUT", VISIBILITY_TIMEOUT);
    let min_rate: f64 = env_or("BURST_MIN_RATE", 0.0);

    keep_tasks_running();
    let fx = LaunchFixture::new().await;
    let sqs = fx.account.sqs();
    let queue = QueueWithDlq::create(
        &fx.account,
        "launcher",
        max_receive_count,
        visibility_timeout,
    )
    .await;
    let burst = Burst::new(events, seed);
    let bodies = burst.bodies.clone();
    let sent = bodies.len() as u64;

    let proxy = FaultProxy::new(Limits::ecs(), runtask_faults(seed, fault_rate));
    let config = Arc::new(fx.config(THUMBNAILS));
    // No ledger: the launcher needs ECS only.
    let ports: Arc<Vec<Adapters>> = Arc::new(
        (0..pollers)
            .map(|_| Adapters {
                ecs: Some(ecs_through(&proxy, &fx)),
                ..Adapters::default()
            })
            .collect(),
    );
    let esm = EventSourceMapping::new(
        sqs.clone(),
        queue.clone(),
        EsmConfig {
            pollers,
            batch_size: 10,
            visibility_timeout,
            wait_time_seconds: 1,
        },
    );
    let stop = esm.stopper();
    let stats = esm.stats.clone();

    let started = Instant::now();
    let handler = move |poller: usize, event: Value| {
        let (config, ports) = (config.clone(), ports.clone());
        async move {
            jobrunner_launcher::handle(&config, &ports[poller], &Invocation::now(event))
                .await
                .map_err(|e| e.to_string())
        }
    };
    // S3 hands the events to SQS at once; the feeder keeps BACKLOG of them in the moto queue
    // (moto's ReceiveMessage costs O(queue length): a 10,000-message queue would make moto,
    // not ECS's limits, the bottleneck). The launcher always has a full queue in front of it.
    let all_sent = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (sqs, queue, stats, all_sent) =
            (sqs.clone(), queue.clone(), stats.clone(), all_sent.clone());
        async move {
            let mut next = 0usize;
            while next < bodies.len() {
                let in_queue = (next as u64).saturating_sub(EsmStats::get(&stats.deleted));
                if in_queue >= BACKLOG {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                let take = ((BACKLOG - in_queue) as usize).min(bodies.len() - next);
                queue.send_all(&sqs, &bodies[next..next + take]).await;
                next += take;
            }
            all_sent.store(true, Ordering::Relaxed);
        }
    };
    let monitor = {
        let (proxy, sqs, queue, stats) = (proxy.clone(), sqs.clone(), queue.clone(), stats.clone());
        async move {
            let mut last_change = Instant::now();
            let mut last_seen = (0, 0);
            let mut last_report = Instant::now();
            let mut last_depth_check = Instant::now();
            let outcome = loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let launched = proxy.tasks_per_object().len() as u64;
                let deleted = EsmStats::get(&stats.deleted);
                if (launched, deleted) != last_seen {
                    last_seen = (launched, deleted);
                    last_change = Instant::now();
                }
                if last_report.elapsed() >= Duration::from_secs(10) {
                    last_report = Instant::now();
                    let s = proxy.stats();
                    eprintln!(
                        "burst: {:>5.0}s launched={launched}/{events} runtask_calls={} throttled={} faults={} replays={} deleted={deleted}/{sent}",
                        started.elapsed().as_secs_f64(),
                        s.runtask_calls(),
                        s.throttled,
                        s.faults_injected(),
                        s.replays,
                    );
                }
                // Done when everything was sent and the queue is empty (deleted or moved to the
                // dead-letter queue); asking moto only then, and at most every 2 s, keeps its
                // load down.
                if all_sent.load(Ordering::Relaxed)
                    && (launched == events || last_depth_check.elapsed() >= Duration::from_secs(2))
                {
                    last_depth_check = Instant::now();
                    if QueueWithDlq::depth(&sqs, &queue.url).await == 0 {
                        break Ok(());
                    }
                }
                if last_change.elapsed() > STALL {
                    let depth = QueueWithDlq::depth(&sqs, &queue.url).await;
                    break Err(format!(
                        "stalled: {launched} of {events} objects launched, {depth} messages left in the queue"
                    ));
                }
            };
            stop.store(true, Ordering::Relaxed);
            outcome
        }
    };
    let ((), (), outcome) = tokio::join!(feeder, esm.run(handler), monitor);
    let drained = started.elapsed();

    // What happened, from the proxy (what ECS started) and the queues.
    let tally = Tally::of(&proxy, &burst);
    let dlq_bodies = queue.dlq_bodies(&sqs).await;
    let dlq = dlq_bodies.len() as u64;
    let moto_tasks = task_count(&fx, STARTED_BY).await;

    let (first, last) = proxy.launch_window().expect("something launched");
    let seconds = last.duration_since(started).as_secs_f64();
    let rate = tally.launched as f64 / seconds;
    let s = proxy.stats();
    println!(
        "burst: sent={sent} (objects={events} duplicate_deliveries={} unmatched={} bad={}) pollers={pollers} seed={seed} fault_rate={fault_rate}/kind \
         max_receive_count={max_receive_count} visibility_timeout={visibility_timeout}s attempt_timeout={ATTEMPT_TIMEOUT:?}",
        burst.duplicates,
        burst.unmatched,
        burst.bad.len()
    );
    println!(
        "burst: runtask_calls={} throttled={} (launch bucket {}) faults={:?} replays={} conflicts={} tasks_started={} moto_tasks={moto_tasks} moto_time={}ms \
         first_launch={:.1}s drained={:.1}s",
        s.runtask_calls(),
        s.throttled,
        s.throttled_launches,
        s.faults,
        s.replays,
        s.conflicts,
        s.tasks_started,
        s.forward_ms,
        first.duration_since(started).as_secs_f64(),
        drained.as_secs_f64()
    );
    print_esm(&stats);
    println!(
        "events={events} launched={} duplicates={} lost={} dlq={dlq} seconds={seconds:.1} launch_rate={rate:.1}/s limit={LIMIT:.0}/s",
        tally.launched,
        tally.duplicates_started,
        tally.lost.len()
    );

    outcome.expect("the queue drained");
    tally.assert_exactly_once(&proxy, events);
    assert_eq!(moto_tasks, events, "moto holds one task per object");
    assert_launch_rate(tally.launched, first, last, rate, min_rate);
    assert_eq!(
        counted(&dlq_bodies),
        counted(&burst.bad),
        "the dead-letter queue holds exactly the bad messages"
    );
}

/// The launch rate is what ECS allows, never more: between the first and the last launch no
/// more tasks than the Fargate launch bucket's burst (100) plus its refill (20/s). With
/// `BURST_MIN_RATE` set (`make burst` sets it; `make test` leaves it at 0, since speed is
/// measured, not asserted, in tests) the rate from the first event to the last launch must
/// reach it.
fn assert_launch_rate(launched: u64, first: Instant, last: Instant, rate: f64, min_rate: f64) {
    const LAUNCH_BURST: f64 = 100.0;
    let window = last.duration_since(first).as_secs_f64();
    let allowed = LAUNCH_BURST + LIMIT * window;
    assert!(
        launched as f64 <= allowed + 1.0,
        "{launched} tasks in {window:.1}s: more than ECS admits ({allowed:.0})"
    );
    assert!(
        rate >= min_rate,
        "launch_rate={rate:.1}/s below BURST_MIN_RATE={min_rate}/s"
    );
}

/// The capped job: `[jobs.thumbnails]` with `max_running`, the ledger, the launcher's own
/// queue (the burst queue) and the tracker's alerts.
fn capped_config(
    fx: &LaunchFixture,
    max_running: u32,
    queue_url: &str,
    wait_seconds: u32,
    topic_arn: &str,
) -> Config {
    fx.config(&format!(
        r#"
[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
command = ["resize", "s3://{{bucket}}/{{key}}"]
max_running = {max_running}

[[triggers.s3]]
job = "thumbnails"
bucket = "uploads"
prefix = "images/"

[state]
table = "{TABLE}"

[launcher]
queue_url = "{queue_url}"
wait_seconds = {wait_seconds}

[alerts]
topic_arn = "{topic_arn}"
"#
    ))
}

/// What the test, playing ECS's part, did with the running tasks.
#[derive(Debug, Default)]
struct Stops {
    stopped: u64,
    tracker_invocations: u64,
    /// State changes the tracker recorded in the ledger.
    recorded: u64,
    /// Alerts the tracker published (every task exits 0: none expected).
    published: u64,
    /// Deliveries the tracker failed (retried, as SQS would).
    tracker_failures: u64,
    /// Stopped tasks per `JOB_KEY` (their container overrides, as ECS describes them).
    job_keys: BTreeMap<String, u32>,
    /// StopTask calls moto failed with HTTP 500 and that were tried again.
    moto_retries: u64,
}

/// Stops each task moto started once it has run `task_time` (StopTask in moto, then its
/// STOPPED event, built from the task StopTask returns, to the tracker in SQS batches of 10), until `done` is set and every task
/// is stopped. No task stops before `cap` tasks have run at once (or `done`): the first wave
/// fills the job's cap however slowly this machine launches.
async fn stop_tasks(
    fx: &LaunchFixture,
    proxy: &FaultProxy,
    config: &Config,
    ports: &Adapters,
    task_time: Duration,
    cap: u64,
    done: &AtomicBool,
) -> Stops {
    let ecs = fx.account.ecs();
    let mut stops = Stops::default();
    let mut seen = 0;
    let mut pending: VecDeque<(Instant, String)> = VecDeque::new();
    let mut undelivered: Vec<Value> = vec![];
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let new = proxy.started_tasks(seen);
        seen += new.len();
        pending.extend(new);
        if proxy.running().max_running < cap && !done.load(Ordering::Relaxed) {
            continue;
        }
        let due: Vec<String> = std::iter::from_fn(|| {
            pending
                .front()
                .is_some_and(|(at, _)| at.elapsed() >= task_time)
                .then(|| pending.pop_front().map(|(_, arn)| arn))
                .flatten()
        })
        .collect();
        let mut stopping = tokio::task::JoinSet::new();
        for arn in due.clone() {
            let (ecs, cluster, proxy) = (ecs.clone(), fx.cluster.clone(), proxy.clone());
            stopping.spawn(async move {
                let stopped = stop_in_moto(&ecs, &cluster, &arn).await;
                proxy.tasks_stopped(1);
                stopped
            });
        }
        let stopped_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        while let Some(stopped) = stopping.join_next().await {
            let (task, retries) = stopped.expect("stopper panicked");
            stops.moto_retries += retries;
            let key = env_of(&task, "JOB_KEY").unwrap_or_default();
            *stops.job_keys.entry(key).or_insert(0) += 1;
            undelivered.push(stopped_event(&task, &fx.account.id, &stopped_at));
        }
        stops.stopped += due.len() as u64;
        undelivered = track(config, ports, std::mem::take(&mut undelivered), &mut stops).await;
        if done.load(Ordering::Relaxed)
            && pending.is_empty()
            && undelivered.is_empty()
            && proxy.started_tasks(seen).is_empty()
        {
            return stops;
        }
    }
}

/// Hands `events` to the tracker in SQS batches of 10; returns those it failed.
async fn track(
    config: &Config,
    ports: &Adapters,
    events: Vec<Value>,
    stops: &mut Stops,
) -> Vec<Value> {
    let mut failed = vec![];
    for (n, chunk) in events.chunks(10).enumerate() {
        let messages: Vec<aws_sdk_sqs::types::Message> = chunk
            .iter()
            .enumerate()
            .map(|(i, event)| {
                aws_sdk_sqs::types::Message::builder()
                    .message_id(format!("stop-{n}-{i}"))
                    .receipt_handle(format!("stop-{n}-{i}"))
                    .body(event.to_string())
                    .build()
            })
            .collect();
        let payload = sqs_event(&messages, "arn:aws:sqs:us-east-1:000000000000:tracker");
        stops.tracker_invocations += 1;
        match jobrunner_core::tracker::handle(config, ports, &payload, chrono::Utc::now()).await {
            Ok(handled) => {
                stops.recorded += handled.summary.recorded as u64;
                stops.published += handled.summary.published as u64;
                for failure in &handled.failed {
                    eprintln!("burst: tracker failed a stop: {}", failure.error);
                    stops.tracker_failures += 1;
                    if let Some(i) = failure
                        .message_id
                        .as_deref()
                        .and_then(|id| id.rsplit('-').next())
                        .and_then(|i| i.parse::<usize>().ok())
                    {
                        failed.push(chunk[i].clone());
                    }
                }
            }
            Err(error) => {
                eprintln!("burst: tracker invocation failed: {error}");
                stops.tracker_failures += chunk.len() as u64;
                failed.extend(chunk.iter().cloned());
            }
        }
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_every_object_waits_its_turn_and_none_is_dead_lettered() {
    let events: u64 = env_or("BURST_EVENTS", 200);
    let max_running: u32 = env_or("BURST_MAX_RUNNING", 20);
    let task_seconds: f64 = env_or("BURST_TASK_SECONDS", 2.0);
    let wait_seconds: u32 = env_or("BURST_WAIT_SECONDS", 1);
    let backlog: u64 = env_or("BURST_BACKLOG", 2 * u64::from(max_running));
    let pollers: usize = env_or("BURST_POLLERS", 2);
    let seed: u64 = env_or("BURST_SEED", 1);
    let fault_rate: f64 = env_or("BURST_FAULT_RATE", 0.002);
    let max_receive_count: u32 = env_or("BURST_MAX_RECEIVE_COUNT", 3);
    let visibility_timeout: i32 = env_or("BURST_VISIBILITY_TIMEOUT", VISIBILITY_TIMEOUT);
    let task_time = Duration::from_secs_f64(task_seconds);

    keep_tasks_running();
    let fx = LaunchFixture::new().await;
    create_state_table(&fx.account, TABLE).await;
    let (topic_arn, _) = alert_topic(&fx.account).await;
    let sqs = fx.account.sqs();
    let queue = QueueWithDlq::create(
        &fx.account,
        "launcher",
        max_receive_count,
        visibility_timeout,
    )
    .await;
    let burst = Burst::new(events, seed);
    let bodies = burst.bodies.clone();
    let sent = bodies.len() as u64;

    let proxy = FaultProxy::new(Limits::ecs(), runtask_faults(seed, fault_rate));
    let config = Arc::new(capped_config(
        &fx,
        max_running,
        &queue.url,
        wait_seconds,
        &topic_arn,
    ));
    // The launcher's ECS and SQS calls go through the proxy (faults on RunTask only): its
    // SendMessage count is the number of times an event was put back in line.
    let ports: Arc<Vec<Adapters>> = Arc::new(
        (0..pollers)
            .map(|_| Adapters {
                ecs: Some(ecs_through(&proxy, &fx)),
                queues: Some(SqsQueues::new(
                    proxy.sqs(&fx.account, Duration::from_secs(5)),
                )),
                ..launcher_ports(&fx.account, Some(TABLE), None)
            })
            .collect(),
    );
    let tracker_ports = Adapters {
        state: Some(StateStore::new(fx.account.dynamodb(), TABLE)),
        task_definitions: Some(TaskDefinitions::new(fx.account.ecs())),
        topic: Some(SnsTopic::new(fx.account.sns(), &topic_arn)),
        ..Adapters::default()
    };
    let esm = EventSourceMapping::new(
        sqs.clone(),
        queue.clone(),
        EsmConfig {
            pollers,
            batch_size: 10,
            visibility_timeout,
            wait_time_seconds: 1,
        },
    );
    let stop = esm.stopper();
    let stats = esm.stats.clone();

    let started = Instant::now();
    let handler = {
        let config = config.clone();
        move |poller: usize, event: Value| {
            let (config, ports) = (config.clone(), ports.clone());
            async move {
                jobrunner_launcher::handle(&config, &ports[poller], &Invocation::now(event))
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    };
    // The feeder keeps `backlog` messages in the queue (visible, in flight and delayed:
    // waiting events are in there, launched ones are deleted), for moto's sake as above.
    let all_sent = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (sqs, queue, all_sent) = (sqs.clone(), queue.clone(), all_sent.clone());
        async move {
            let mut next = 0usize;
            while next < bodies.len() {
                let depth = QueueWithDlq::depth(&sqs, &queue.url).await;
                if depth >= backlog {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                let take = ((backlog - depth) as usize).min(bodies.len() - next);
                queue.send_all(&sqs, &bodies[next..next + take]).await;
                next += take;
            }
            all_sent.store(true, Ordering::Relaxed);
        }
    };
    let tasks_done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (proxy, sqs, queue, stats, tasks_done) = (
            proxy.clone(),
            sqs.clone(),
            queue.clone(),
            stats.clone(),
            tasks_done.clone(),
        );
        async move {
            let mut last_change = Instant::now();
            let mut last_seen = 0;
            let mut last_report = Instant::now();
            let mut last_depth_check = Instant::now();
            let outcome = loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let launched = proxy.tasks_per_object().len() as u64;
                if launched != last_seen {
                    last_seen = launched;
                    last_change = Instant::now();
                }
                if last_report.elapsed() >= Duration::from_secs(10) {
                    last_report = Instant::now();
                    let s = proxy.stats();
                    let gauge = proxy.running();
                    eprintln!(
                        "burst: {:>5.0}s launched={launched}/{events} running={} max_running_seen={} stopped={} resends={} runtask_calls={} throttled={} faults={} deleted={}",
                        started.elapsed().as_secs_f64(),
                        gauge.running,
                        gauge.max_running,
                        gauge.stopped,
                        s.executed_of("SendMessage"),
                        s.runtask_calls(),
                        s.throttled,
                        s.faults_injected(),
                        EsmStats::get(&stats.deleted),
                    );
                }
                if all_sent.load(Ordering::Relaxed)
                    && (launched == events || last_depth_check.elapsed() >= Duration::from_secs(2))
                {
                    last_depth_check = Instant::now();
                    if QueueWithDlq::depth(&sqs, &queue.url).await == 0 {
                        break Ok(());
                    }
                }
                if last_change.elapsed() > CAP_STALL {
                    let depth = QueueWithDlq::depth(&sqs, &queue.url).await;
                    break Err(format!(
                        "stalled: {launched} of {events} objects launched, {depth} messages left in the queue"
                    ));
                }
            };
            stop.store(true, Ordering::Relaxed);
            tasks_done.store(true, Ordering::Relaxed);
            outcome
        }
    };
    let stopper = stop_tasks(
        &fx,
        &proxy,
        &config,
        &tracker_ports,
        task_time,
        u64::from(max_running),
        &tasks_done,
    );
    let ((), (), outcome, stops) = tokio::join!(feeder, esm.run(handler), monitor, stopper);
    let drained = started.elapsed();

    let tally = Tally::of(&proxy, &burst);
    let gauge = proxy.running();
    let dlq_bodies = queue.dlq_bodies(&sqs).await;
    let dlq = dlq_bodies.len() as u64;
    let bad: BTreeSet<&String> = burst.bad.iter().collect();
    let dlq_good = dlq_bodies.iter().filter(|b| !bad.contains(b)).count();
    // Every task moto holds was stopped (and described) by the stopper: its JOB_KEYs cover
    // them all. (DescribeTasks of all 10,000 at the end would cost moto minutes: it compares
    // every task it holds with every ARN asked for.)
    let moto_tasks = task_count(&fx, STARTED_BY).await;
    let job_key_duplicates: u64 = stops
        .job_keys
        .values()
        .map(|&n| u64::from(n.saturating_sub(1)))
        .sum();
    let still_running = task_arns(&fx, STARTED_BY, DesiredStatus::Running).await;
    let slots: Option<Slots> = tracker_ports
        .get(&keys::slots_key("thumbnails"))
        .await
        .expect("read the slots")
        .map(|record| serde_json::from_str(&record.data).expect("slots item"));

    let slots = slots.expect("the job's slots item exists");
    let mut leaked: Vec<(String, Option<String>)> = vec![];
    for (run_id, holder) in &slots.holders {
        let run: Option<Run> = tracker_ports
            .get(&keys::run_key(run_id))
            .await
            .expect("read a run")
            .map(|record| serde_json::from_str(&record.data).expect("run item"));
        eprintln!(
            "burst: slot still held by run {run_id} (since {}): {run:?}",
            holder.since
        );
        leaked.push((run_id.clone(), run.map(|r| r.state.to_string())));
    }

    let (first, last) = proxy.launch_window().expect("something launched");
    let seconds = last.duration_since(started).as_secs_f64();
    let rate = tally.launched as f64 / seconds;
    let s = proxy.stats();
    let resends = s.executed_of("SendMessage");
    println!(
        "burst: sent={sent} (objects={events} duplicate_deliveries={} unmatched={} bad={}) pollers={pollers} seed={seed} fault_rate={fault_rate}/kind \
         max_receive_count={max_receive_count} visibility_timeout={visibility_timeout}s attempt_timeout={ATTEMPT_TIMEOUT:?} \
         max_running={max_running} task_seconds={task_seconds} (standing for 300 s) wait_seconds={wait_seconds} backlog={backlog}",
        burst.duplicates,
        burst.unmatched,
        burst.bad.len()
    );
    println!(
        "burst: runtask_calls={} throttled={} (launch bucket {}) faults={:?} replays={} conflicts={} tasks_started={} moto_tasks={moto_tasks} \
         resends={resends} ({:.1} per object) stopped={} tracker_invocations={} recorded={} alerts={} tracker_failures={} slots_leaked={} moto_stop_retries={} first_launch={:.1}s drained={:.1}s",
        s.runtask_calls(),
        s.throttled,
        s.throttled_launches,
        s.faults,
        s.replays,
        s.conflicts,
        s.tasks_started,
        resends as f64 / events.max(1) as f64,
        stops.stopped,
        stops.tracker_invocations,
        stops.recorded,
        stops.published,
        stops.tracker_failures,
        leaked.len(),
        stops.moto_retries,
        first.duration_since(started).as_secs_f64(),
        drained.as_secs_f64()
    );
    print_esm(&stats);
    println!(
        "events={events} launched={} duplicates={} lost={} dlq={dlq} seconds={seconds:.1} launch_rate={rate:.1}/s limit={LIMIT:.0}/s \
         max_running_seen={} dlq_good={dlq_good}",
        tally.launched,
        tally.duplicates_started.max(job_key_duplicates),
        tally.lost.len(),
        gauge.max_running,
    );

    outcome.expect("the queue drained");
    tally.assert_exactly_once(&proxy, events);
    assert_eq!(moto_tasks, events, "moto holds one task per object");
    assert_eq!(job_key_duplicates, 0, "a JOB_KEY in more than one task");
    assert_eq!(
        stops.job_keys.len() as u64,
        events,
        "one JOB_KEY per object among the stopped tasks"
    );
    assert!(
        gauge.max_running <= u64::from(max_running),
        "{} tasks ran at once; the cap is {max_running}",
        gauge.max_running
    );
    assert_eq!(
        gauge.max_running,
        u64::from(max_running).min(events),
        "the job never reached its cap ({} at most): the scenario did not load it",
        gauge.max_running
    );
    assert_eq!(dlq_good, 0, "good events were dead-lettered");
    assert_eq!(
        counted(&dlq_bodies),
        counted(&burst.bad),
        "the dead-letter queue holds exactly the bad messages"
    );
    assert!(
        resends > 0,
        "no event ever waited: the scenario did not reach the cap"
    );
    assert_eq!(stops.stopped, events, "every task was stopped by the test");
    assert!(
        still_running.is_empty(),
        "tasks left running: {still_running:?}"
    );
    assert!(
        stops.recorded >= events,
        "the tracker recorded {} stops in their runs, fewer than the {events} tasks",
        stops.recorded
    );
    assert_eq!(stops.published, 0, "tasks that exit 0 raise no alert");
    // A slot still held now belongs to a run whose task has stopped: reconciliation frees it
    // (when the job next looks full and the holder is past its grace). Each must be such a run.
    for (run_id, state) in &leaked {
        assert_eq!(
            state.as_deref(),
            Some("succeeded"),
            "run {run_id} holds a slot after every task stopped, and is not done"
        );
    }
}
