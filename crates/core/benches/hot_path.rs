//! The functions' hot path, per event: decode + route + plan an S3 event (the launcher),
//! decode + classify + render a stopped task (the tracker), one scaling decision (the scaler).
//! Run with `cargo bench -p jobrunner-core --bench hot_path` (bench/run.sh uses a short
//! measurement time).

use std::hint::black_box;

use chrono::{DateTime, Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use jobrunner_core::Config;
use jobrunner_core::alert::{self, Alert, StoppedTask, TaskDefinitionLookup};
use jobrunner_core::config::Format;
use jobrunner_core::event::{self, Event, Invocation};
use jobrunner_core::scaling::{self, History, Observation, QueueDepth, ServiceCounts};
use jobrunner_core::{plan, routing};

const CONFIG: &str = include_str!("../../../examples/jobrunner.toml");
const S3_EVENT: &str = include_str!("../../../events/s3-object-created.json");
const STOPPED_EVENT: &str = include_str!("../../../events/ecs-task-stopped-non-zero-exit.json");

fn config() -> Config {
    Config::parse(CONFIG, Format::Toml).expect("the example config is valid")
}

fn direct_events(text: &str) -> Vec<Event> {
    match event::decode_invocation_text(text).expect("JSON event") {
        Invocation::Direct(events) => events.expect("supported event"),
        Invocation::SqsBatch(_) => panic!("expected a direct delivery"),
    }
}

fn s3_event(c: &mut Criterion) {
    let config = config();
    c.bench_function("s3_event/decode_route_plan", |b| {
        b.iter(|| {
            for event in direct_events(black_box(S3_EVENT)) {
                let Event::ObjectCreated(object) = event else {
                    panic!("not an S3 event")
                };
                let trigger = routing::route(&config, &object).expect("routes to thumbnails");
                black_box(plan::plan_object(&config, &trigger.job, &object).expect("plans"));
            }
        })
    });
    // Its two halves: decoding alone, routing and planning alone.
    c.bench_function("s3_event/decode", |b| {
        b.iter(|| black_box(direct_events(black_box(S3_EVENT))))
    });
    let Event::ObjectCreated(object) = direct_events(S3_EVENT).remove(0) else {
        panic!("not an S3 event")
    };
    c.bench_function("s3_event/route_plan", |b| {
        b.iter(|| {
            let trigger =
                routing::route(&config, black_box(&object)).expect("routes to thumbnails");
            black_box(plan::plan_object(&config, &trigger.job, &object).expect("plans"))
        })
    });
    // The same through the launcher's whole decision path as `jobrunner plan` runs it: the
    // recorded world answers the reads, and RunTask's JSON input is rendered.
    let payload = event::parse_json(S3_EVENT).expect("JSON");
    let now = chrono::Utc::now();
    c.bench_function("s3_event/dry_run_json", |b| {
        b.iter(|| {
            black_box(
                jobrunner_core::dryrun::dry_run_now(
                    &config,
                    jobrunner_core::dryrun::Function::Launcher,
                    black_box(&payload),
                    now,
                    jobrunner_core::dryrun::World::for_config(&config),
                )
                .expect("plans"),
            )
        })
    });
}

fn stopped_task_alert(c: &mut Criterion) {
    let config = config();
    c.bench_function("alert/decode_classify_render", |b| {
        b.iter(|| {
            for event in direct_events(black_box(STOPPED_EVENT)) {
                let Event::TaskStateChange(change) = event else {
                    panic!("not a task state change")
                };
                let task = StoppedTask::new(&config, *change, TaskDefinitionLookup::NotLookedUp);
                black_box(alert::render(&Alert::single(task)));
            }
        })
    });
}

fn scaling_decision(c: &mut Criterion) {
    let config = config();
    let worker = &config.workers["orders"];
    let start: DateTime<Utc> = "2026-01-05T09:00:00Z".parse().expect("time");
    // Ten minutes of history sampled every 10 s, the backlog rising and falling.
    let mut history = History::default();
    let mut desired = 0;
    for i in 0..60u64 {
        let backlog = (i * 37) % 400;
        let observation = Observation::new(
            QueueDepth {
                visible: backlog,
                in_flight: desired.into(),
                delayed: 0,
            },
            ServiceCounts {
                desired,
                running: desired,
                pending: 0,
            },
        );
        let decision = scaling::decide(
            worker,
            &observation,
            &history,
            start + Duration::seconds(10 * i as i64),
        );
        desired = decision.desired;
        history = decision.history;
    }
    let now = start + Duration::seconds(600);
    let observation = Observation::new(
        QueueDepth {
            visible: 120,
            in_flight: u64::from(desired),
            delayed: 0,
        },
        ServiceCounts {
            desired,
            running: desired,
            pending: 0,
        },
    );
    c.bench_function("scaling/decide", |b| {
        b.iter(|| {
            black_box(scaling::decide(
                worker,
                black_box(&observation),
                black_box(&history),
                now,
            ))
        })
    });
}

criterion_group!(benches, s3_event, stopped_task_alert, scaling_decision);
criterion_main!(benches);
