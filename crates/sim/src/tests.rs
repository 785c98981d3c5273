//! Whole runs: every policy on small traces.

use jobrunner_core::Config;
use jobrunner_core::config::{Format, Worker};

use super::*;
use crate::trace::generate;

/// A worker in jobs mode, as `simulate --mode jobs` runs it (the service-mode config with
/// its mode switched: the simulator needs no task definition).
fn jobs_worker(extra: &str) -> Worker {
    Worker {
        mode: jobrunner_core::config::WorkerMode::Jobs,
        ..worker(extra)
    }
}

fn worker(extra: &str) -> Worker {
    let window = if extra.contains("scale_in_after_seconds") {
        ""
    } else {
        "scale_in_after_seconds = 300\n"
    };
    let text = format!(
        "[workers.orders]\ncluster = \"jobs\"\nservice = \"order-workers\"\n\
         queue_url = \"https://sqs.us-east-1.amazonaws.com/123456789012/orders\"\n\
         messages_per_task = 10\nmin_tasks = 0\nmax_tasks = 50\n{window}{extra}\n\
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
        mode: None,
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
                mode: None,
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
        mode: None,
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

fn no_minimum() -> Settings {
    Settings {
        min_billed_seconds: 0,
        ..Settings::default()
    }
}

#[test]
fn runtask_per_batch_pays_the_fargate_minimum() {
    // One message at 100: its batch closes at 105, the task is ready at 150, works until 160
    // and exits: 55 s alive, billed 60.
    let trace = Trace::new([(100, 1)]);
    let w = worker("");
    let billed = run(
        PolicyKind::RunTaskPerBatch,
        &trace,
        &w,
        same_bounds(),
        &Settings::default(),
    );
    assert_eq!(billed.waits, vec![50]);
    assert_eq!(billed.tasks_started, 1);
    assert_eq!(billed.task_seconds, 60);
    let exact = run(
        PolicyKind::RunTaskPerBatch,
        &trace,
        &w,
        same_bounds(),
        &no_minimum(),
    );
    assert_eq!(exact.task_seconds, 55);
    // 25 messages at once: batches of 10, 10 and 5, one task each, every message once.
    let r = run(
        PolicyKind::RunTaskPerBatch,
        &Trace::new([(100, 25)]),
        &w,
        same_bounds(),
        &Settings::default(),
    );
    assert_eq!(r.tasks_started, 3);
    assert_eq!(r.completed, 25);
    assert!(r.deliveries.iter().all(|d| *d == 1));
}

#[test]
fn jobs_mode_launches_for_the_backlog_once_and_tasks_exit_when_idle() {
    // 25 messages at 60, 10 per task: one launch of 3 tasks at 60 (later samples count them
    // as pending/running), ready at 105. One task takes 9 messages (busy until 195), two take
    // 8 (busy until 185); each exits 20 s after its last busy second: at 204, 204 and 214.
    let w = jobs_worker("sample_every_seconds = 5");
    let r = run(
        PolicyKind::Jobrunner,
        &Trace::new([(60, 25)]),
        &w,
        same_bounds(),
        &Settings::default(),
    );
    assert_eq!(r.policy, "jobrunner (jobs)");
    assert_eq!(r.scale_actions, 1);
    assert_eq!(r.tasks_started, 3);
    assert_eq!(r.completed, 25);
    assert_eq!(r.task_seconds, 2 * (204 - 60) + (214 - 60));
    assert_eq!(r.timeline.last().unwrap().tasks, 0);
    // --mode overrides the worker's mode.
    let service = run(
        PolicyKind::Jobrunner,
        &Trace::new([(60, 25)]),
        &w,
        BoundsOverride {
            mode: Some(jobrunner_core::config::WorkerMode::Service),
            ..same_bounds()
        },
        &Settings::default(),
    );
    assert_eq!(service.policy, "jobrunner (service)");
    assert!(service.task_seconds > r.task_seconds, "the window is paid");
}

#[test]
fn jobs_mode_respects_max_tasks_counting_live_tasks() {
    let w = jobs_worker("sample_every_seconds = 5");
    let bounds = BoundsOverride {
        min: Some(0),
        max: Some(4),
        mode: None,
    };
    let r = run(
        PolicyKind::Jobrunner,
        &Trace::new([(0, 200), (300, 200)]),
        &w,
        bounds,
        &Settings::default(),
    );
    let peak = r.timeline.iter().map(|s| s.tasks).max().unwrap();
    assert_eq!(peak, 4);
    assert_eq!(r.completed, 400);
}

/// Wraps a policy and records every desired count it sets below the protected count.
struct Guard {
    inner: Box<dyn Policy>,
    violations: Vec<(u64, u32, u32)>,
    floors_seen: u32,
}

impl Policy for Guard {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn initial_tasks(&self) -> u32 {
        self.inner.initial_tasks()
    }
    fn act(&mut self, view: &View<'_>) -> Vec<Action> {
        let actions = self.inner.act(view);
        for action in &actions {
            if let Action::Desired(n) = action {
                if *n < view.protected {
                    self.violations.push((view.now, *n, view.protected));
                }
                if *n == view.protected && *n > 0 {
                    self.floors_seen += 1;
                }
            }
        }
        actions
    }
}

#[test]
fn service_mode_never_sets_desired_below_the_protected_tasks() {
    // Long jobs (200 s) and a short window (60 s): the backlog's need falls while tasks are
    // still busy, and the scaler must keep them.
    let w = worker("sample_every_seconds = 5\nscale_in_after_seconds = 60");
    let settings = Settings {
        work: WorkTime::Uniform {
            low: 20.0,
            high: 400.0,
        },
        ..Settings::default()
    };
    let trace = Trace::new([(0, 40), (30, 5), (900, 12)]);
    let mut guard = Guard {
        inner: policy::build(PolicyKind::Jobrunner, &w, same_bounds(), epoch()).unwrap(),
        violations: Vec::new(),
        floors_seen: 0,
    };
    let r = simulate(&trace, &mut guard, &settings).unwrap();
    assert!(guard.violations.is_empty(), "{:?}", guard.violations);
    assert!(guard.floors_seen > 0, "the protected count was the floor");
    assert_eq!(r.completed, r.messages);
    assert!(r.deliveries.iter().all(|d| *d == 1));
}

#[test]
fn protection_never_lets_scale_in_kill_a_busy_task() {
    // Every peer scales in aggressively on a spiky trace with long, varied jobs: no message
    // is lost or delivered twice, and every one completes.
    let settings = Settings {
        work: WorkTime::Exponential { mean: 60.0 },
        concurrency: 2,
        tail_seconds: 7200,
        ..Settings::default()
    };
    let trace = generate::spiky(3);
    for kind in PolicyKind::ALL {
        if kind == PolicyKind::CdkQueueProcessing {
            continue;
        }
        let r = run(
            kind,
            &trace,
            &worker("sample_every_seconds = 5\nscale_in_after_seconds = 60"),
            same_bounds(),
            &settings,
        );
        assert_eq!(r.completed, r.messages, "{kind}");
        assert!(r.deliveries.iter().all(|d| *d == 1), "{kind}");
    }
}

#[test]
fn keda_tuned_scales_up_without_a_rate_cap() {
    let settings = Settings::default();
    let trace = generate::burst();
    let w = worker("");
    let tasks_at = |r: &Run, t: u64| r.timeline.iter().find(|s| s.t == t).unwrap().tasks;
    // Activation at the poll of 60 (one task), the HPA's sync at 75 goes to the maximum.
    let tuned = run(PolicyKind::KedaTuned, &trace, &w, same_bounds(), &settings);
    assert_eq!(tasks_at(&tuned, 70), 50);
    // Defaults: at most max(4 pods, 100 %) more per 15 s sync.
    let default = run(PolicyKind::Keda, &trace, &w, same_bounds(), &settings);
    assert_eq!(tasks_at(&default, 70), 5);
    // Polling every 10 s: a lone message at 61 is seen at 70, not 90.
    let lone = run(
        PolicyKind::KedaTuned,
        &Trace::new([(61, 1)]),
        &w,
        same_bounds(),
        &settings,
    );
    assert_eq!(lone.waits, vec![9 + 45]);
}

#[test]
fn target_tracking_step_starts_a_task_for_one_message() {
    // One message at 30: minute 0's datapoint (visible 1) is readable at 120; the step adds a
    // task, ready at 165. Target tracking alone never sees 10 per task.
    let trace = Trace::new([(30, 1)]);
    let w = worker("");
    let step = run(
        PolicyKind::TargetTrackingStep,
        &trace,
        &w,
        same_bounds(),
        &Settings::default(),
    );
    assert_eq!(step.waits, vec![135]);
    let plain = run(
        PolicyKind::TargetTracking,
        &trace,
        &w,
        same_bounds(),
        &Settings::default(),
    );
    assert_eq!(plain.unprocessed, 1);
}

#[test]
fn keda_scaledjob_launches_jobs_that_exit_when_idle() {
    let r = run(
        PolicyKind::KedaScaledJob,
        &Trace::new([(61, 45)]),
        &worker(""),
        same_bounds(),
        &Settings::default(),
    );
    // Seen at the poll of 90: ⌈45 / 10⌉ = 5 jobs; at 120 they are still pending: none more.
    // At 150 they run and 35 are visible: ⌈35 / 10⌉ = 4 more (the accurate strategy expects
    // a queue length without the running jobs' messages, so it does not subtract them); at
    // 180 the 4 are pending and cover the 20 visible; by 210 the queue is empty.
    assert_eq!(r.tasks_started, 5 + 4);
    assert_eq!(r.first_task_running, Some(90 - 61 + 45));
    assert_eq!(r.completed, 45);
    assert_eq!(r.timeline.last().unwrap().tasks, 0);
}

#[test]
fn runs_too_large_to_simulate_are_one_line_errors() {
    let w = worker("");
    let kinds = [PolicyKind::Keda];
    let tail = Settings {
        tail_seconds: u64::MAX - 3,
        ..Settings::default()
    };
    let e = compare(&Trace::new([(10, 1)]), &w, &kinds, same_bounds(), &tail).unwrap_err();
    assert!(e.to_string().contains("--tail-seconds"), "{e}");
    let far = Trace::new([(u64::MAX - 1, 1)]);
    let e = compare(&far, &w, &kinds, same_bounds(), &Settings::default()).unwrap_err();
    assert!(e.to_string().contains("31 days"), "{e}");
    let huge = Trace::new((0..2000).map(|t| (t, u32::MAX)));
    let e = compare(&huge, &w, &kinds, same_bounds(), &Settings::default()).unwrap_err();
    assert!(e.to_string().contains("at most 5000000"), "{e}");
    let zero = Settings {
        concurrency: 0,
        ..Settings::default()
    };
    let e = compare(&Trace::new([(1, 1)]), &w, &kinds, same_bounds(), &zero).unwrap_err();
    assert!(e.to_string().contains("--concurrency"), "{e}");
    let many = BoundsOverride {
        min: Some(0),
        max: Some(u32::MAX),
        mode: None,
    };
    let e = compare(
        &Trace::new([(1, 1)]),
        &w,
        &kinds,
        many,
        &Settings::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("at most 100000 tasks"), "{e}");
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn worker_mode_comes_from_the_config_and_is_checked() {
    assert_eq!(worker("").mode, jobrunner_core::config::WorkerMode::Service);
    // A jobs-mode worker from the config runs jobrunner in jobs mode.
    let jobs = "[defaults]\nsubnets = [\"subnet-1\"]\n\
                [workers.orders]\ncluster = \"jobs\"\n\
                queue_url = \"https://sqs.us-east-1.amazonaws.com/1/q\"\n\
                task_definition = \"w\"\ncontainer = \"app\"\ncommand = [\"run\"]\n\
                messages_per_task = 10\nmax_tasks = 5\nmode = \"jobs\"\n\
                [state]\ntable = \"t\"\n";
    let w = Config::parse(jobs, Format::Toml)
        .unwrap()
        .workers
        .remove("orders")
        .unwrap();
    assert_eq!(w.mode, jobrunner_core::config::WorkerMode::Jobs);
    let r = run(
        PolicyKind::Jobrunner,
        &Trace::new([(60, 25)]),
        &w,
        same_bounds(),
        &Settings::default(),
    );
    assert_eq!(r.policy, "jobrunner (jobs)");
    let text = "[workers.orders]\ncluster = \"jobs\"\nservice = \"s\"\n\
                queue_url = \"https://sqs.us-east-1.amazonaws.com/1/q\"\n\
                messages_per_task = 10\nmax_tasks = 5\nmode = \"cron\"\n\
                [state]\ntable = \"t\"\n";
    let e = Config::parse(text, Format::Toml).unwrap_err().to_string();
    assert!(
        e.contains("cron") && e.contains("service") && e.contains("jobs"),
        "{e}"
    );
}

#[test]
fn benchmark_picks_the_better_mode_and_checks_the_goals() {
    let traces = vec![
        ("burst".to_string(), generate::burst()),
        (
            "trickle".to_string(),
            Trace::new((1..=20).map(|i| (i * 900, 1))),
        ),
    ];
    let settings = Settings {
        idle_exit_seconds: 5,
        ..Settings::default()
    };
    let results = benchmark::run(
        &traces,
        &worker("sample_every_seconds = 5"),
        same_bounds(),
        &settings,
    )
    .unwrap();
    // 1,000 messages of 10 s.
    assert_eq!(results[0].work_floor_minutes, 166.7);
    for result in &results {
        assert_eq!(result.results.len(), PolicyKind::ALL.len() + 1);
        assert_eq!(result.better_mode, "jobs", "{}", result.trace);
    }
    let goals = benchmark::goals(&results);
    assert_eq!(
        goals.len(),
        4,
        "dominance + keda-tuned on each bursty trace"
    );
    assert!(goals.iter().all(|g| g.met), "{goals:#?}");
    let text = benchmark::markdown(&results, &goals);
    assert!(
        text.contains("**jobrunner (jobs)** (better mode)"),
        "{text}"
    );
    assert!(text.contains("4 of 4 goals met"), "{text}");
}

#[test]
fn domination_needs_no_worse_on_both_and_better_on_one() {
    let row = |p95: u64, tm: f64| Summary {
        policy: "x".into(),
        p50_wait_s: 0,
        p95_wait_s: p95,
        max_wait_s: p95,
        task_minutes: tm,
        scale_actions: 0,
        first_task_running_s: None,
        messages: 1,
        unprocessed: 0,
        redelivered: 0,
    };
    let own = row(50, 95.0);
    assert!(benchmark::dominates(&row(50, 94.9), &own));
    assert!(benchmark::dominates(&row(49, 95.0), &own));
    assert!(!benchmark::dominates(&row(50, 95.0), &own), "a tie");
    assert!(!benchmark::dominates(&row(49, 96.0), &own));
}
