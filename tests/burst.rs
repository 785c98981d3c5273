//! Burst: N S3 "Object Created" events (plus duplicates, events no trigger matches and
//! permanently bad messages) in an SQS queue with a dead-letter queue, drained by the launcher
//! the way Lambda's event source mapping does, through the ECS-faithful fault proxy with
//! throttling and faults on. Every object must be launched exactly once, none lost, and the
//! dead-letter queue must hold exactly the bad messages.
//!
//! Environment: `BURST_EVENTS` (objects, default 1000), `BURST_POLLERS` (concurrent batches,
//! default 2), `BURST_SEED` (fault seed, default 1), `BURST_FAULT_RATE` (per kind of fault
//! per RunTask call, default 0.002), `BURST_MAX_RECEIVE_COUNT` (default 3),
//! `BURST_VISIBILITY_TIMEOUT` (seconds, default 5). The ECS clients use jobrunner's own retry
//! config. The last line printed is the summary (see `make burst` / `scripts/burst.sh`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use jobrunner_aws::ecs::EcsTasks;
use jobrunner_integration_tests::esm::{EsmConfig, EsmStats, EventSourceMapping, QueueWithDlq};
use jobrunner_integration_tests::fault_proxy::{FaultProxy, Faults, Limits};
use jobrunner_integration_tests::fixtures::{LaunchFixture, THUMBNAILS, keep_tasks_running};
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

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn object_created(key: &str, n: u64) -> Value {
    json!({
        "version": "0", "id": format!("00000000-0000-4000-8000-{n:012}"), "detail-type": "Object Created",
        "source": "aws.s3", "account": "123456789012", "time": "2026-11-22T05:00:00Z", "region": "us-east-1",
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

/// Tasks in the fixture's cluster started by `started_by`, as moto lists them (any status).
async fn task_count(fx: &LaunchFixture, started_by: &str) -> u64 {
    let ecs = fx.account.ecs();
    let mut count = 0;
    for status in [
        aws_sdk_ecs::types::DesiredStatus::Running,
        aws_sdk_ecs::types::DesiredStatus::Stopped,
    ] {
        let mut pages = ecs
            .list_tasks()
            .cluster(&fx.cluster)
            .started_by(started_by)
            .desired_status(status)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            count += page.expect("list tasks").task_arns().len() as u64;
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_launches_every_object_exactly_once() {
    let events: u64 = env_or("BURST_EVENTS", 1000);
    let pollers: usize = env_or("BURST_POLLERS", 2);
    let seed: u64 = env_or("BURST_SEED", 1);
    let fault_rate: f64 = env_or("BURST_FAULT_RATE", 0.002);
    let max_receive_count: u32 = env_or("BURST_MAX_RECEIVE_COUNT", 3);
    let visibility_timeout: i32 = env_or("BURST_VISIBILITY_TIMEOUT", VISIBILITY_TIMEOUT);

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

    // The queue: every object once, 1% delivered twice (S3/EventBridge deliver at least
    // once), a few objects no trigger matches, and the bad messages, shuffled.
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
    let sent = bodies.len() as u64;

    let faults = Faults {
        seed,
        server_error: fault_rate,
        unavailable: fault_rate,
        dropped: fault_rate,
        slow: fault_rate,
        capacity: fault_rate,
        slow_delay: SLOW_DELAY,
        operations: vec!["RunTask".into()],
        phase: None,
    };
    let proxy = FaultProxy::new(Limits::ecs(), faults);
    let config = Arc::new(fx.config(THUMBNAILS));
    // One ECS client per poller: each concurrent batch is its own Lambda environment, with
    // its own SDK retry quota.
    let retry = jobrunner_aws::client::retry_config();
    let clients: Arc<Vec<EcsTasks>> = Arc::new(
        (0..pollers)
            .map(|_| {
                let client = proxy.ecs(&fx.account, ATTEMPT_TIMEOUT);
                EcsTasks::new(aws_sdk_ecs::Client::from_conf(
                    client
                        .config()
                        .to_builder()
                        .retry_config(retry.clone())
                        .build(),
                ))
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
        let (config, clients) = (config.clone(), clients.clone());
        async move {
            jobrunner_launcher::handle(&config, &clients[poller], &Invocation::now(event.clone()))
                .await
                .map_err(|e| e.to_string())
        }
    };
    // S3 hands the events to SQS at once; the feeder keeps BACKLOG of them in the moto queue
    // (moto's ReceiveMessage costs O(queue length): a 10,000-message queue would make moto,
    // not ECS's limits, the bottleneck). The launcher always has a full queue in front of it.
    let all_sent = Arc::new(std::sync::atomic::AtomicBool::new(false));
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
    let per_object = proxy.tasks_per_object();
    let expected: BTreeSet<String> = keys.iter().map(|k| format!("uploads/{k}")).collect();
    let launched = per_object.keys().filter(|o| expected.contains(*o)).count() as u64;
    let unexpected: Vec<&String> = per_object
        .keys()
        .filter(|o| !expected.contains(*o))
        .collect();
    let duplicates_started: u64 = per_object
        .values()
        .map(|&n| u64::from(n.saturating_sub(1)))
        .sum();
    let tokens_started_twice = proxy.launches().values().filter(|l| l.launches > 1).count();
    let lost: Vec<&String> = expected
        .iter()
        .filter(|o| !per_object.contains_key(*o))
        .collect();
    let dlq_bodies = queue.dlq_bodies(&sqs).await;
    let dlq = dlq_bodies.len() as u64;
    let moto_tasks = task_count(&fx, "jobrunner/thumbnails").await;

    let (first, last) = proxy.launch_window().expect("something launched");
    let seconds = last.duration_since(started).as_secs_f64();
    let rate = launched as f64 / seconds;
    let s = proxy.stats();
    println!(
        "burst: sent={sent} (objects={events} duplicate_deliveries={} unmatched={} bad={}) pollers={pollers} seed={seed} fault_rate={fault_rate}/kind \
         max_receive_count={max_receive_count} visibility_timeout={visibility_timeout}s attempt_timeout={ATTEMPT_TIMEOUT:?}",
        duplicates.len(),
        unmatched.len(),
        bad.len()
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
    println!(
        "events={events} launched={launched} duplicates={duplicates_started} lost={} dlq={dlq} seconds={seconds:.1} launch_rate={rate:.1}/s limit={LIMIT:.0}/s",
        lost.len()
    );

    outcome.expect("the queue drained");
    assert!(
        lost.is_empty(),
        "{} objects never launched, e.g. {:?}",
        lost.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
    assert_eq!(duplicates_started, 0, "objects launched more than once");
    assert_eq!(
        tokens_started_twice, 0,
        "a client token started tasks twice"
    );
    assert!(
        unexpected.is_empty(),
        "launched what no trigger matches: {unexpected:?}"
    );
    assert_eq!(
        proxy.launches().len() as u64,
        events,
        "one token per object"
    );
    assert_eq!(moto_tasks, events, "moto holds one task per object");
    let dlq_set: BTreeMap<&String, usize> = dlq_bodies.iter().fold(BTreeMap::new(), |mut m, b| {
        *m.entry(b).or_default() += 1;
        m
    });
    let bad_set: BTreeMap<&String, usize> = bad.iter().fold(BTreeMap::new(), |mut m, b| {
        *m.entry(b).or_default() += 1;
        m
    });
    assert_eq!(
        dlq_set, bad_set,
        "the dead-letter queue holds exactly the bad messages"
    );
}
