//! Whole runs: every policy on small traces.

use jobrunner_core::Config;
use jobrunner_core::config::{Format, Worker};

use super::*;
use crate::trace::generate;

fn worker(extra: &str) -> Worker {
    let text = format!(
        "[workers.orders]\ncluster = \"jobs\"\nservice = \"order-workers\"\n\
         queue_url = \"https://sqs.us-east-1.amazonaws.com/123456789012/orders\"\n\
         messages_per_task = 10\nmin_tasks = 0\nmax_tasks = 50\nscale_in_after_seconds = 300\n{extra}\n\
         [state]\ntable = \"jobrunner-state\"\n"
    );
    Config::parse(&text, Format::Toml)
        .expect("valid worker")
        .workers
        .remove("orders")
        .expect("orders")
}

fn run(
    kind: PolicyKind,
    trace: &Trace,
    worker: &Worker,
    bounds: BoundsOverride,
    settings: &Settings,
) -> Run {
    compare(trace, worker, &[kind], bounds, settings)
        .expect("runs")
        .remove(0)
}

fn same_bounds() -> BoundsOverride {
    BoundsOverride {
        min: Some(0),
        max: Some(50),
    }
}

#[test]
fn burst_first_task_runs_within_20_s_plus_start_delay_with_sub_minute_sampling() {
    let settings = Settings::default();
    let fast = worker("sample_every_seconds = 10");
    for start in [60, 61, 65, 69, 79] {
        let trace = Trace::new([(start, 200)]);
        let r = run(
            PolicyKind::Jobrunner,
            &trace,
            &fast,
            BoundsOverride::default(),
            &settings,
        );
        let first = r.first_task_running.expect("a task ran");
        assert!(
            first <= 20 + settings.task_start_seconds,
            "arrival at {start}: first task after {first} s"
        );
        assert_eq!(r.unprocessed, 0);
    }
    // Without sub-minute sampling the scaler decides once a minute, as the schedule gives.
    let slow = run(
        PolicyKind::Jobrunner,
        &Trace::new([(61, 200)]),
        &worker(""),
        BoundsOverride::default(),
        &settings,
    );
    assert_eq!(slow.first_task_running, Some(59 + 45));
}

#[test]
fn every_policy_processes_every_message_once() {
    let settings = Settings {
        tail_seconds: 7200,
        work: WorkTime::Exponential { mean: 8.0 },
        ..Settings::default()
    };
    let trace = generate::spiky(5);
    for kind in PolicyKind::ALL {
        // CDK's steps never fire below 100 visible messages: give it a standing task.
        let bounds = if kind == PolicyKind::CdkQueueProcessing {
            BoundsOverride {
                min: Some(1),
                max: Some(50),
            }
        } else {
            same_bounds()
        };
        let r = run(
            kind,
            &trace,
            &worker("sample_every_seconds = 15"),
            bounds,
            &settings,
        );
        assert_eq!(r.unprocessed, 0, "{kind}");
        assert_eq!(r.completed, r.messages, "{kind}");
        assert!(r.deliveries.iter().all(|d| *d == 1), "{kind}");
    }
}

#[test]
fn jobrunner_scales_to_zero_after_the_window_and_pays_for_it() {
    // One message at 60: a task launched at 60, ready at 105, busy until 115; the scaler
    // removes it once the whole 300 s window saw no backlog.
    let settings = Settings {
        tail_seconds: 1200,
        ..Settings::default()
    };
    let r = run(
        PolicyKind::Jobrunner,
        &Trace::new([(60, 1)]),
        &worker("sample_every_seconds = 10"),
        BoundsOverride::default(),
        &settings,
    );
    assert_eq!(r.waits, vec![45]);
    assert_eq!(r.scale_actions, 2, "out once, in once");
    let alive = r.task_seconds;
    // Backlog is last non-zero at 114 (in flight); the window of 300 s ends by 420.
    assert!((360..=430).contains(&alive), "task alive {alive} s");
    let summary = Summary::of(&r);
    assert_eq!(
        summary.task_minutes,
        (alive as f64 / 60.0 * 10.0).round() / 10.0
    );
}

#[test]
fn cloudwatch_policies_wait_for_published_datapoints() {
    let settings = Settings::default();
    let trace = Trace::new([(60, 600)]);
    let w = worker("");
    // Minute 1's datapoint (600 visible) is readable at 180; the CDK step alarm acts then.
    let cdk = run(
        PolicyKind::CdkQueueProcessing,
        &trace,
        &w,
        same_bounds(),
        &settings,
    );
    assert_eq!(cdk.first_task_running, Some(180 - 60 + 45));
    // Target tracking needs three datapoints above target: minutes 1, 2 and 3, readable at 300.
    let tt = run(
        PolicyKind::TargetTracking,
        &trace,
        &w,
        same_bounds(),
        &settings,
    );
    assert_eq!(tt.first_task_running, Some(300 - 60 + 45));
    // KEDA polls every 30 s and reads the queue itself.
    let keda = run(PolicyKind::Keda, &trace, &w, same_bounds(), &settings);
    assert_eq!(keda.first_task_running, Some(45));
    let keda_late = run(
        PolicyKind::Keda,
        &Trace::new([(61, 600)]),
        &w,
        same_bounds(),
        &settings,
    );
    assert_eq!(keda_late.first_task_running, Some(29 + 45));
}

#[test]
fn cdk_defaults_to_one_to_two_tasks() {
    let settings = Settings::default();
    let r = run(
        PolicyKind::CdkQueueProcessing,
        &generate::burst(),
        &worker(""),
        BoundsOverride::default(),
        &settings,
    );
    assert_eq!(
        r.first_task_running,
        Some(0),
        "min 1: a task is always running"
    );
    let peak = r.timeline.iter().map(|s| s.tasks).max().unwrap();
    assert_eq!(peak, 2);
}

#[test]
fn keda_scales_up_in_steps_and_down_after_stabilization() {
    let settings = Settings {
        tail_seconds: 1800,
        ..Settings::default()
    };
    let r = run(
        PolicyKind::Keda,
        &generate::burst(),
        &worker(""),
        same_bounds(),
        &settings,
    );
    assert_eq!(r.unprocessed, 0);
    let peak = r.timeline.iter().map(|s| s.tasks).max().unwrap();
    assert_eq!(peak, 50);
    let last = r.timeline.last().unwrap();
    assert_eq!(last.tasks, 0, "back to zero after the cooldown");
}

#[test]
fn runs_are_deterministic_for_a_seed() {
    let settings = Settings {
        work: WorkTime::Exponential { mean: 12.0 },
        seed: 9,
        ..Settings::default()
    };
    let trace = generate::spiky(2);
    let w = worker("sample_every_seconds = 10");
    let a = compare(&trace, &w, &PolicyKind::ALL, same_bounds(), &settings).unwrap();
    let b = compare(&trace, &w, &PolicyKind::ALL, same_bounds(), &settings).unwrap();
    let summaries = |runs: &[Run]| runs.iter().map(Summary::of).collect::<Vec<_>>();
    assert_eq!(summaries(&a), summaries(&b));
    let other = compare(
        &trace,
        &w,
        &PolicyKind::ALL,
        same_bounds(),
        &Settings {
            seed: 10,
            ..settings
        },
    )
    .unwrap();
    assert_ne!(summaries(&a), summaries(&other));
}

#[test]
fn chart_renders_every_policy() {
    let settings = Settings {
        tail_seconds: 600,
        ..Settings::default()
    };
    let runs = compare(
        &generate::burst(),
        &worker(""),
        &PolicyKind::ALL,
        same_bounds(),
        &settings,
    )
    .unwrap();
    let svg = chart::svg("burst", &runs).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
    for kind in PolicyKind::ALL {
        assert!(svg.contains(kind.as_str()), "{kind} in the legend");
    }
}

#[test]
fn bounds_are_checked() {
    let bad = BoundsOverride {
        min: Some(5),
        max: Some(2),
    };
    let e = compare(
        &generate::burst(),
        &worker(""),
        &[PolicyKind::Keda],
        bad,
        &Settings::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("min_tasks 5"), "{e}");
}
