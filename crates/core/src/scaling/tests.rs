use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::config::{Config, Format, ScalingWindow, Worker};
use crate::error::Error;

fn worker(
    messages_per_task: u32,
    min_tasks: u32,
    max_tasks: u32,
    scale_in_after_seconds: u32,
) -> Worker {
    Worker {
        cluster: "jobs".into(),
        service: "order-workers".into(),
        queue_url: "https://sqs.us-east-1.amazonaws.com/123456789012/orders".into(),
        messages_per_task,
        min_tasks,
        max_tasks,
        scale_in_after_seconds,
        count_delayed: false,
        max_step_out: None,
        max_step_in: None,
        sample_every_seconds: None,
        windows: Vec::new(),
        mode: Default::default(),
        ..Worker::default()
    }
}

/// Monday 2024-01-01 00:00:00 UTC.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

fn obs(visible: u64, in_flight: u64, desired: u32) -> Observation {
    Observation {
        visible,
        in_flight,
        delayed: 0,
        desired,
        running: desired,
        pending: 0,
    }
}

/// Drives `decide` like the scaler does: the service's desired count follows each decision.
struct Sim {
    worker: Worker,
    history: History,
    desired: u32,
}

impl Sim {
    fn new(worker: Worker, desired: u32) -> Sim {
        Sim {
            worker,
            history: History::default(),
            desired,
        }
    }

    fn step(&mut self, seconds: i64, visible: u64, in_flight: u64) -> Decision {
        let decision = decide(
            &self.worker,
            &obs(visible, in_flight, self.desired),
            &self.history,
            at(seconds),
        );
        self.history = decision.history.clone();
        self.desired = decision.desired;
        decision
    }

    /// Runs (second, visible, in-flight) steps; returns the desired count after each.
    fn run(&mut self, steps: &[(i64, u64, u64)]) -> Vec<u32> {
        steps
            .iter()
            .map(|&(s, v, f)| self.step(s, v, f).desired)
            .collect()
    }
}

#[test]
fn from_zero_on_the_first_visible_message() {
    let mut sim = Sim::new(worker(10, 0, 50, 300), 0);
    let d = sim.step(0, 0, 0);
    assert_eq!((d.desired, d.direction), (0, Direction::Hold));
    let d = sim.step(15, 1, 0);
    assert_eq!((d.desired, d.direction), (1, Direction::Out));
    assert!(d.reason.contains("scale out 0 → 1"), "{}", d.reason);
    assert!(d.changed());
    assert_eq!(d.delta(), 1);
}

#[test]
fn burst_scales_out_at_once_to_the_ceiling_and_is_capped_by_max() {
    let mut sim = Sim::new(worker(10, 0, 50, 300), 0);
    assert_eq!(
        sim.run(&[(0, 0, 0), (60, 95, 0), (120, 1000, 0)]),
        vec![0, 10, 50]
    );
    let d = sim.step(180, 1000, 0);
    assert_eq!(d.direction, Direction::Hold);
    assert!(d.reason.contains("max_tasks 50"), "{}", d.reason);
}

#[test]
fn in_flight_messages_count_as_backlog() {
    let mut sim = Sim::new(worker(10, 0, 50, 300), 0);
    let d = sim.step(0, 0, 35);
    assert_eq!(d.desired, 4);
    assert_eq!(d.backlog, 35);
    assert_eq!(d.in_flight_floor, 4);
}

#[test]
fn in_flight_only_never_scales_to_zero() {
    // Everything was received: no visible messages, but work in progress holds its tasks for
    // as long as it lasts, well past the stabilization window.
    let mut sim = Sim::new(worker(10, 0, 50, 60), 3);
    let mut steps = vec![(0, 0, 25)];
    steps.extend((1..=10).map(|i| (i * 60, 0, 25)));
    assert!(sim.run(&steps).iter().all(|d| *d == 3));
    // The work finishes: only then, after a whole window of zero, does it reach zero.
    assert_eq!(
        sim.run(&[(660, 0, 0), (690, 0, 0), (720, 0, 0)]),
        vec![3, 3, 0]
    );
}

#[test]
fn scale_in_waits_for_a_whole_window_of_lower_recommendations() {
    let mut sim = Sim::new(worker(10, 0, 50, 300), 0);
    assert_eq!(sim.step(0, 50, 0).desired, 5);
    // Drained when sampled at 60 s: 5 holds until 300 s of zero samples, up to 360 s.
    for s in (60..=359).step_by(30).chain([359]) {
        let d = sim.step(s, 0, 0);
        assert_eq!(d.desired, 5, "at {s}s: {}", d.reason);
    }
    let d = sim.step(360, 0, 0);
    assert_eq!(d.desired, 0, "{}", d.reason);
    assert_eq!(d.direction, Direction::In);
    assert!(d.reason.contains("scale in 5 → 0"), "{}", d.reason);
}

#[test]
fn stabilization_uses_the_highest_recommendation_in_the_window() {
    let mut sim = Sim::new(worker(10, 0, 50, 120), 0);
    // Observed long enough to be stable.
    assert_eq!(
        sim.run(&[(0, 80, 0), (60, 80, 0), (120, 80, 0)]),
        vec![8, 8, 8]
    );
    // Falls to 6, then 2: after 120 s of lower samples, scale in to the max of the window.
    assert_eq!(sim.run(&[(180, 60, 0), (240, 20, 0)]), vec![8, 8]);
    let d = sim.step(300, 20, 0);
    assert_eq!(d.desired, 6, "{}", d.reason);
    assert_eq!(d.stabilized, 6);
    assert!(
        d.reason.contains("highest need in the last 120s was 6"),
        "{}",
        d.reason
    );
    assert_eq!(sim.step(360, 20, 0).desired, 2);
}

#[test]
fn a_spike_inside_the_window_restarts_the_wait() {
    let mut sim = Sim::new(worker(10, 0, 50, 120), 0);
    assert_eq!(
        sim.run(&[(0, 30, 0), (60, 0, 0), (120, 0, 0), (150, 30, 0)]),
        vec![3, 3, 3, 3]
    );
    // The spike, in force from 150 s until the next sample at 200 s, keeps 3 until 320 s.
    assert_eq!(
        sim.run(&[(200, 0, 0), (270, 0, 0), (319, 0, 0), (320, 0, 0)]),
        vec![3, 3, 3, 0]
    );
}

#[test]
fn trickle_keeps_one_task_and_never_flaps() {
    let mut sim = Sim::new(worker(10, 0, 50, 120), 0);
    // A message every other sample: visible 1, then 0 (consumed), then 1 ...
    let steps: Vec<_> = (0..40).map(|i| (i * 15, (i % 2) as u64, 0)).collect();
    let desired = sim.run(&steps);
    assert_eq!(desired[0], 0);
    assert!(desired[1..].iter().all(|d| *d == 1), "{desired:?}");
}

#[test]
fn drain_scales_in_gradually_with_max_step_in() {
    let mut w = worker(10, 0, 50, 60);
    w.max_step_in = Some(2);
    let mut sim = Sim::new(w, 0);
    assert_eq!(sim.step(0, 70, 0).desired, 7);
    let desired = sim.run(&[
        (30, 0, 0),
        (60, 0, 0),
        (90, 0, 0),
        (120, 0, 0),
        (150, 0, 0),
        (180, 0, 0),
    ]);
    assert_eq!(desired, vec![7, 7, 5, 3, 1, 0]);
    let mut w = worker(10, 0, 50, 60);
    w.max_step_in = Some(2);
    let mut sim = Sim::new(w, 0);
    sim.run(&[(0, 70, 0), (30, 0, 0), (60, 0, 0)]);
    assert!(
        sim.step(90, 0, 0)
            .reason
            .contains("capped by max_step_in 2")
    );
}

#[test]
fn max_step_out_caps_each_decision() {
    let mut w = worker(1, 0, 100, 300);
    w.max_step_out = Some(4);
    let mut sim = Sim::new(w, 0);
    assert_eq!(
        sim.run(&[(0, 10, 0), (15, 10, 0), (30, 10, 0), (45, 10, 0)]),
        vec![4, 8, 10, 10]
    );
    let mut w = worker(1, 0, 100, 300);
    w.max_step_out = Some(4);
    let d = decide(&w, &obs(10, 0, 0), &History::default(), at(0));
    assert!(
        d.reason.contains("capped by max_step_out 4"),
        "{}",
        d.reason
    );
}

#[test]
fn min_tasks_is_kept_and_reached_at_once() {
    let mut w = worker(10, 2, 10, 60);
    w.max_step_out = Some(1);
    let d = decide(&w, &obs(0, 0, 0), &History::default(), at(0));
    assert_eq!(d.desired, 2, "bounds win over step caps: {}", d.reason);
    let mut sim = Sim::new(worker(10, 2, 10, 60), 2);
    assert_eq!(
        sim.run(&[(0, 0, 0), (60, 0, 0), (120, 0, 0)]),
        vec![2, 2, 2]
    );
}

#[test]
fn count_delayed_adds_delayed_messages() {
    let mut w = worker(10, 0, 50, 60);
    let o = Observation {
        visible: 5,
        in_flight: 0,
        delayed: 20,
        desired: 0,
        running: 0,
        pending: 0,
    };
    assert_eq!(decide(&w, &o, &History::default(), at(0)).desired, 1);
    w.count_delayed = true;
    let d = decide(&w, &o, &History::default(), at(0));
    assert_eq!((d.desired, d.backlog), (3, 25));
    assert!(d.reason.contains("20 delayed"), "{}", d.reason);
}

#[test]
fn cold_start_waits_a_window_before_scaling_in() {
    // No history (first run, or the state was lost): 4 tasks and an empty queue.
    let mut sim = Sim::new(worker(10, 0, 50, 120), 4);
    let d = sim.step(0, 0, 0);
    assert_eq!(d.desired, 4);
    assert!(!d.stable);
    assert!(
        d.reason
            .contains("scale-in waits for 120s of observations, have 0s"),
        "{}",
        d.reason
    );
    assert_eq!(
        sim.run(&[(60, 0, 0), (119, 0, 0), (120, 0, 0)]),
        vec![4, 4, 0]
    );
}

#[test]
fn a_sampling_gap_restarts_the_history() {
    let mut sim = Sim::new(worker(10, 0, 50, 60), 0);
    assert_eq!(
        sim.run(&[(0, 30, 0), (30, 30, 0), (60, 30, 0)]),
        vec![3, 3, 3]
    );
    // The scaler missed 10 minutes; one empty sample is not enough to drop to zero.
    let d = sim.step(660, 0, 0);
    assert_eq!(d.desired, 3);
    assert!(
        d.reason.contains("restarted after a sampling gap"),
        "{}",
        d.reason
    );
    assert_eq!(d.history.since, Some(at(660)));
    assert_eq!(sim.run(&[(690, 0, 0), (720, 0, 0)]), vec![3, 0]);
}

#[test]
fn history_stays_small_and_round_trips_through_json() {
    let mut sim = Sim::new(worker(10, 0, 50, 3600), 0);
    for i in 0..2000 {
        sim.step(i * 5, (i % 7) as u64 * 10, 0);
    }
    // A sliding-window maximum keeps at most one sample per distinct recommendation.
    assert!(sim.history.samples.len() <= 7, "{:?}", sim.history.samples);
    assert!(
        sim.history
            .samples
            .windows(2)
            .all(|w| w[0].at < w[1].at && w[0].tasks > w[1].tasks)
    );
    assert!(
        sim.history
            .samples
            .iter()
            .rev()
            .skip(1)
            .all(|s| s.until.is_some())
    );
    assert_eq!(sim.history.samples.last().unwrap().until, None);
    let json = serde_json::to_string(&sim.history).unwrap();
    assert_eq!(serde_json::from_str::<History>(&json).unwrap(), sim.history);
    assert_eq!(
        serde_json::from_str::<History>("{}").unwrap(),
        History::default()
    );
}

#[test]
fn time_going_backwards_does_not_break_the_history() {
    let w = worker(10, 0, 50, 60);
    let first = decide(&w, &obs(30, 0, 0), &History::default(), at(100));
    let second = decide(&w, &obs(10, 0, 3), &first.history, at(90));
    assert_eq!(second.desired, 3);
    assert!(
        second
            .history
            .samples
            .windows(2)
            .all(|w| w[0].at <= w[1].at)
    );
}

#[test]
fn decision_is_serializable_for_reports() {
    let d = decide(
        &worker(10, 0, 50, 60),
        &obs(30, 0, 0),
        &History::default(),
        at(0),
    );
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["direction"], "out");
    assert_eq!(json["desired"], 3);
    assert_eq!(Direction::Out.as_str(), "scale_out");
}

// --- windows ---------------------------------------------------------------------------------

fn window(
    days: &[&str],
    start: &str,
    end: &str,
    timezone: Option<&str>,
    min: Option<u32>,
    max: Option<u32>,
) -> ScalingWindow {
    ScalingWindow {
        days: days.iter().map(|d| d.parse().unwrap()).collect(),
        start: start.parse().unwrap(),
        end: end.parse().unwrap(),
        timezone: timezone.map(|zone| zone.parse().unwrap()),
        min_tasks: min,
        max_tasks: max,
    }
}

#[test]
fn business_hours_window_raises_min_while_active() {
    let mut w = worker(10, 0, 20, 60);
    w.windows
        .push(window(&["MON-FRI"], "09:00", "17:00", None, Some(5), None));
    // Monday 08:59: worker bounds.
    assert_eq!(
        bounds_at(&w, at(8 * 3600 + 59 * 60)),
        Bounds {
            min: 0,
            max: 20,
            window: None
        }
    );
    assert_eq!(
        bounds_at(&w, at(9 * 3600)),
        Bounds {
            min: 5,
            max: 20,
            window: Some(0)
        }
    );
    assert_eq!(bounds_at(&w, at(17 * 3600)).window, None);
    // Saturday 2024-01-06 10:00: not a listed day.
    assert_eq!(bounds_at(&w, at(5 * 86400 + 10 * 3600)).window, None);

    let mut sim = Sim::new(w, 0);
    let d = sim.step(9 * 3600, 0, 0);
    assert_eq!(d.desired, 5);
    assert!(
        d.reason
            .contains("min_tasks 5 of window 0 (MON-FRI 09:00-17:00 UTC)"),
        "{}",
        d.reason
    );
    // The window ends: the backlog needed nothing all along, so its min goes at once.
    let end = 17 * 3600;
    assert_eq!(
        sim.run(&[
            (end - 60, 0, 0),
            (end, 0, 0),
            (end + 30, 0, 0),
            (end + 60, 0, 0)
        ]),
        vec![5, 0, 0, 0]
    );
}

#[test]
fn window_lowering_max_applies_at_once() {
    let mut w = worker(10, 0, 20, 300);
    w.windows
        .push(window(&[], "22:00", "06:00", None, None, Some(2)));
    let mut sim = Sim::new(w, 0);
    assert_eq!(sim.step(21 * 3600, 200, 0).desired, 20);
    let d = sim.step(22 * 3600, 200, 0);
    assert_eq!(d.desired, 2, "{}", d.reason);
    assert!(d.reason.contains("max_tasks 2 of window 0"), "{}", d.reason);
    // Overnight: still active at 05:59 the next day, not at 06:00.
    assert_eq!(sim.step(86400 + 5 * 3600 + 59 * 60, 200, 0).desired, 2);
    assert_eq!(sim.step(86400 + 6 * 3600, 200, 0).desired, 20);
}

#[test]
fn a_lowered_max_applies_even_before_the_history_is_stable() {
    let mut w = worker(10, 0, 20, 300);
    w.windows
        .push(window(&[], "00:00", "24:00", None, None, Some(4)));
    let d = decide(&w, &obs(0, 0, 12), &History::default(), at(0));
    assert_eq!(
        (d.desired, d.direction, d.stable),
        (4, Direction::In, false)
    );
    assert!(d.reason.contains("scale in 12 → 4 (max_tasks 4 of window 0 (daily 00:00-24:00 UTC); below that after 300s of observations)"), "{}", d.reason);
    let d = decide(&w, &obs(40, 0, 12), &History::default(), at(0));
    assert_eq!(d.desired, 4);
    assert!(
        d.reason
            .ends_with("scale in 12 → 4 (max_tasks 4 of window 0 (daily 00:00-24:00 UTC))"),
        "{}",
        d.reason
    );
}

#[test]
fn overnight_window_belongs_to_the_day_it_starts() {
    let mut w = worker(10, 0, 20, 300);
    w.windows
        .push(window(&["FRI"], "22:00", "02:00", None, Some(3), None));
    // Friday 2024-01-05 23:00 and Saturday 01:00 are inside; Thursday 23:00 and Friday 01:00 not.
    assert_eq!(bounds_at(&w, at(4 * 86400 + 23 * 3600)).window, Some(0));
    assert_eq!(bounds_at(&w, at(5 * 86400 + 3600)).window, Some(0));
    assert_eq!(bounds_at(&w, at(3 * 86400 + 23 * 3600)).window, None);
    assert_eq!(bounds_at(&w, at(4 * 86400 + 3600)).window, None);
}

#[test]
fn window_timezone_offsets_shift_the_clock() {
    let mut w = worker(10, 0, 20, 300);
    w.windows.push(window(
        &["MON"],
        "09:00",
        "10:00",
        Some("+02:00"),
        Some(4),
        None,
    ));
    // 09:00 at +02:00 is 07:00 UTC.
    assert_eq!(bounds_at(&w, at(7 * 3600)).window, Some(0));
    assert_eq!(bounds_at(&w, at(9 * 3600)).window, None);
    w.windows[0].timezone = Some("UTC-05:00".parse().unwrap());
    assert_eq!(bounds_at(&w, at(14 * 3600)).window, Some(0));
    // Sunday 23:30 UTC is Monday 01:30 at +02:00.
    w.windows[0] = window(&["MON"], "01:00", "02:00", Some("+0200"), Some(4), None);
    assert_eq!(bounds_at(&w, at(-1800)).window, Some(0));
}

#[test]
fn first_active_window_wins() {
    let mut w = worker(10, 0, 20, 300);
    w.windows
        .push(window(&["MON"], "00:00", "24:00", None, Some(7), None));
    w.windows
        .push(window(&[], "00:00", "24:00", None, Some(1), Some(3)));
    assert_eq!(
        bounds_at(&w, at(60)),
        Bounds {
            min: 7,
            max: 20,
            window: Some(0)
        }
    );
    assert_eq!(
        bounds_at(&w, at(86400 + 60)),
        Bounds {
            min: 1,
            max: 3,
            window: Some(1)
        }
    );
}

#[test]
fn valid_windows_pass() {
    let mut w = worker(10, 0, 20, 300);
    for zone in [
        None,
        Some("UTC"),
        Some("Z"),
        Some("utc"),
        Some("+05:30"),
        Some("-0800"),
        Some("UTC+1"),
        Some("GMT-03:00"),
    ] {
        w.windows = vec![window(
            &["mon", "WED-FRI", "SAT-MON"],
            "00:00",
            "24:00",
            zone,
            Some(0),
            Some(0),
        )];
        assert_eq!(validate_windows("workers.orders", &w), Ok(()), "{zone:?}");
    }
}

#[test]
fn config_validation_checks_windows() {
    let text = r#"
[workers.orders]
cluster = "jobs"
service = "order-workers"
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"
messages_per_task = 10
max_tasks = 50

[state]
table = "jobrunner-state"

[[workers.orders.windows]]
days = ["MON-FRI"]
start = "09:00"
end = "25:00"
min_tasks = 2
"#;
    match Config::parse(text, Format::Toml) {
        Err(Error::Config { path, .. }) => assert_eq!(path, "workers.orders.windows[0].end"),
        other => panic!("expected a config error, got {other:?}"),
    }
    let fixed = text.replace("25:00", "17:00");
    let config = Config::parse(&fixed, Format::Toml).unwrap();
    assert_eq!(config.workers["orders"].windows[0].min_tasks, Some(2));
}

#[test]
fn reasons_read_well() {
    let mut w = worker(10, 0, 8, 60);
    w.max_step_in = Some(3);
    let mut sim = Sim::new(w, 2);
    let mut lines = Vec::new();
    for (s, v, f) in [
        (0, 0, 0),
        (15, 35, 0),
        (30, 200, 10),
        (45, 0, 45),
        (60, 0, 45),
        (120, 0, 0),
        (165, 0, 0),
        (180, 0, 0),
        (200, 0, 0),
    ] {
        let d = sim.step(s, v, f);
        lines.push(format!("{s:>4}s {:>2} {}", d.desired, d.reason));
    }
    let text = lines.join("\n");
    println!("{text}");
    let expected = [
        "backlog 0 (0 visible + 0 in flight) needs 0 tasks at 10 per task; hold 2 (scale-in waits for 60s of observations, have 0s)",
        "backlog 35 (35 visible + 0 in flight) needs 4 tasks at 10 per task; scale out 2 → 4",
        "backlog 210 (200 visible + 10 in flight) needs 21 tasks at 10 per task; scale out 4 → 8 (max_tasks 8)",
        "backlog 45 (0 visible + 45 in flight) needs 5 tasks at 10 per task; hold 8 (a need of 21 within the last 60s keeps 8)",
        "backlog 45 (0 visible + 45 in flight) needs 5 tasks at 10 per task; hold 8 (a need of 21 within the last 60s keeps 8)",
        "backlog 0 (0 visible + 0 in flight) needs 0 tasks at 10 per task; scale in 8 → 5 (highest need in the last 60s was 5)",
        "backlog 0 (0 visible + 0 in flight) needs 0 tasks at 10 per task; hold 5 (a need of 5 within the last 60s keeps 5)",
        "backlog 0 (0 visible + 0 in flight) needs 0 tasks at 10 per task; scale in 5 → 2 (capped by max_step_in 3)",
        "backlog 0 (0 visible + 0 in flight) needs 0 tasks at 10 per task; scale in 2 → 0",
    ];
    for (line, want) in lines.iter().zip(expected) {
        assert!(line.ends_with(want), "{line}\n  wanted: {want}");
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever the backlog does: bounds hold, scale-out is immediate, scale-in never goes
        /// below the in-flight need, and nothing is removed before a whole window was observed.
        #[test]
        fn decisions_keep_their_promises(
            per_task in 1u32..20,
            min in 0u32..5,
            extra in 1u32..40,
            window in 0u32..400,
            step_out in proptest::option::of(1u32..10),
            step_in in proptest::option::of(1u32..10),
            steps in proptest::collection::vec((1i64..120, 0u64..500, 0u64..200), 1..60),
        ) {
            let mut w = worker(per_task, min, min + extra, window);
            w.max_step_out = step_out;
            w.max_step_in = step_in;
            let mut sim = Sim::new(w.clone(), 0);
            let mut t = 0;
            for (dt, visible, in_flight) in steps {
                t += dt;
                let previous = sim.desired;
                let d = sim.step(t, visible, in_flight);
                prop_assert!(d.desired >= w.min_tasks && d.desired <= w.max_tasks, "{}", d.reason);
                let need = d.recommended.clamp(w.min_tasks, w.max_tasks);
                if need > previous {
                    prop_assert!(d.desired > previous, "{}", d.reason);
                    prop_assert!(d.desired <= need);
                    if step_out.is_none() { prop_assert_eq!(d.desired, need); }
                }
                if d.desired < previous {
                    prop_assert!(d.stable, "{}", d.reason);
                    prop_assert!(d.desired >= d.in_flight_floor.min(w.max_tasks), "{}", d.reason);
                    prop_assert!(d.desired >= need, "{}", d.reason);
                    if let Some(step) = step_in { prop_assert!(previous - d.desired <= step); }
                }
                prop_assert_eq!(d.changed(), d.desired != previous);
                prop_assert!(d.history.samples.len() as u32 <= d.history.samples.first().map_or(0, |s| s.tasks) + 1);
            }
        }
    }
}

#[test]
fn windows_in_an_iana_zone_follow_daylight_saving() {
    let mut worker = worker(10, 0, 20, 300);
    worker.windows = vec![window(
        &[],
        "09:00",
        "17:00",
        Some("Europe/Berlin"),
        Some(4),
        None,
    )];
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    // 09:00 in Berlin is 08:00 UTC in winter (CET) and 07:00 UTC in summer (CEST).
    assert_eq!(bounds_at(&worker, at("2026-01-15T07:30:00Z")).min, 0);
    assert_eq!(bounds_at(&worker, at("2026-01-15T08:00:00Z")).min, 4);
    assert_eq!(bounds_at(&worker, at("2026-07-15T07:00:00Z")).min, 4);
    assert_eq!(bounds_at(&worker, at("2026-07-15T15:00:00Z")).min, 0);
}

mod jobs_mode {
    use super::*;
    use crate::scaling::jobs::{self, decide_jobs};
    use crate::scaling::{QueueDepth, TaskProtection, protected_count, respect_protection};

    fn jobs_worker(max_tasks: u32) -> Worker {
        Worker {
            mode: crate::config::WorkerMode::Jobs,
            service: String::new(),
            task_definition: Some("thumbs".into()),
            container: Some("app".into()),
            command: Some(vec!["thumbs".into()]),
            ..worker(10, 0, max_tasks, 300)
        }
    }

    fn queue(visible: u64, in_flight: u64) -> QueueDepth {
        QueueDepth {
            visible,
            in_flight,
            delayed: 0,
        }
    }

    #[test]
    fn launches_what_the_backlog_needs_less_the_live_tasks() {
        let w = jobs_worker(50);
        let d = decide_jobs(&w, &queue(20, 5), 0, t0());
        assert_eq!((d.backlog, d.recommended, d.launch), (25, 3, 3));
        assert_eq!(d.direction, Direction::Out);
        // Pending and running tasks count; in-flight messages are counted in the backlog.
        let d = decide_jobs(&w, &queue(20, 5), 2, t0());
        assert_eq!((d.launch, d.target()), (1, 3));
        assert!(
            d.reason.contains("2 pending or running; launch 1"),
            "{}",
            d.reason
        );
        let d = decide_jobs(&w, &queue(20, 5), 7, t0());
        assert_eq!((d.launch, d.direction), (0, Direction::Hold));
    }

    #[test]
    fn an_empty_queue_launches_nothing() {
        let d = decide_jobs(&jobs_worker(50), &queue(0, 0), 0, t0());
        assert_eq!(d.launch, 0);
        assert!(d.reason.contains("queue empty"), "{}", d.reason);
        assert!(jobs::launches("w", &jobs_worker(50), &Default::default(), &d).is_empty());
    }

    #[test]
    fn max_tasks_and_max_step_out_cap_the_launches() {
        let d = decide_jobs(&jobs_worker(4), &queue(1000, 0), 1, t0());
        assert_eq!((d.recommended, d.launch), (100, 3));
        assert!(d.reason.contains("max_tasks 4"), "{}", d.reason);
        let w = Worker {
            max_step_out: Some(2),
            ..jobs_worker(50)
        };
        let d = decide_jobs(&w, &queue(1000, 0), 0, t0());
        assert_eq!(d.launch, 2);
        assert!(d.reason.contains("max_step_out 2"), "{}", d.reason);
        // A window's max_tasks = 0 pauses the worker.
        let w = Worker {
            windows: vec![
                toml::from_str("start = \"00:00\"\nend = \"24:00\"\nmax_tasks = 0").unwrap(),
            ],
            ..jobs_worker(50)
        };
        assert_eq!(decide_jobs(&w, &queue(1000, 0), 0, t0()).launch, 0);
    }

    #[test]
    fn tokens_are_the_same_within_a_slot_and_new_in_the_next() {
        let w = jobs_worker(50);
        let a = decide_jobs(&w, &queue(25, 0), 0, t0() + Duration::seconds(3));
        let b = decide_jobs(&w, &queue(45, 0), 0, t0() + Duration::seconds(41));
        let c = decide_jobs(&w, &queue(25, 0), 0, t0() + Duration::seconds(60));
        let token = |d: &jobs::JobsDecision| {
            jobs::launches("thumbs", &w, &Default::default(), d)[0]
                .client_token
                .clone()
        };
        assert_eq!(token(&a), token(&b), "one decision per slot");
        assert_ne!(token(&a), token(&c));
        assert_eq!(token(&a).len(), 64);
        assert!(token(&a).bytes().all(|b| (33..=126).contains(&b)));
        assert_ne!(
            jobs::client_token("thumbs", a.slot, 0),
            jobs::client_token("thumbs", a.slot, 1)
        );
        assert_ne!(
            jobs::client_token("thumbs", a.slot, 0),
            jobs::client_token("other", a.slot, 0)
        );
        // With sub-minute sampling the slot is the sampling period.
        let fast = Worker {
            sample_every_seconds: Some(10),
            ..jobs_worker(50)
        };
        assert_eq!(
            jobs::slot(&fast, t0() + Duration::seconds(19)),
            t0() + Duration::seconds(10)
        );
    }

    #[test]
    fn the_command_runs_jobrunner_worker_with_the_users_command_after_the_separator() {
        let w = Worker {
            idle_exit: Some("2m".parse().unwrap()),
            ..jobs_worker(5)
        };
        assert_eq!(
            jobs::command(&w),
            [
                "jobrunner-worker",
                "--queue-url",
                "https://sqs.us-east-1.amazonaws.com/123456789012/orders",
                "--idle-exit",
                "120s",
                "--",
                "thumbs"
            ]
        );
    }

    #[test]
    fn protection_floors_a_scale_in_only() {
        let now = t0();
        let protections = [
            TaskProtection {
                task_arn: "a".into(),
                enabled: true,
                expires_at: Some(now + Duration::minutes(5)),
            },
            TaskProtection {
                task_arn: "b".into(),
                enabled: true,
                expires_at: Some(now - Duration::minutes(1)),
            },
            TaskProtection {
                task_arn: "c".into(),
                enabled: false,
                expires_at: None,
            },
            TaskProtection {
                task_arn: "d".into(),
                enabled: true,
                expires_at: None,
            },
        ];
        assert_eq!(
            protected_count(&protections, now),
            2,
            "expired and off don't count"
        );

        let w = worker(10, 0, 20, 60);
        let observation = Observation {
            desired: 6,
            running: 6,
            ..Observation::default()
        };
        let first = decide(&w, &observation, &History::default(), now);
        let d = decide(
            &w,
            &observation,
            &first.history,
            now + Duration::seconds(61),
        );
        assert_eq!((d.previous, d.desired), (6, 0));
        let floored = respect_protection(d.clone(), 2);
        assert_eq!((floored.desired, floored.direction), (2, Direction::In));
        assert_eq!(floored.protected, Some(2));
        assert!(
            floored.reason.contains("desiredCount 2, not 0"),
            "{}",
            floored.reason
        );
        // More protected than the count: hold, never scale out for it.
        let held = respect_protection(d.clone(), 9);
        assert_eq!((held.desired, held.direction), (6, Direction::Hold));
        // None protected: the decision stands.
        assert_eq!(respect_protection(d.clone(), 0).desired, 0);
        // A scale-out is untouched.
        let out = decide(
            &w,
            &Observation {
                visible: 100,
                ..observation
            },
            &History::default(),
            now,
        );
        assert_eq!(respect_protection(out.clone(), 3).desired, out.desired);
    }
}
