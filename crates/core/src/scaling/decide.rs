//! The scaling decision: one observation, the worker's policy and the recent history in; the
//! new desired count, a reason and the updated history out. Pure and deterministic.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::window::{Bounds, bounds_at, describe};
use crate::config::Worker;

/// A gap between two samples longer than this (or than the stabilization window, if longer)
/// discards the history: what happened in between is unknown, so scale-in waits for a whole
/// new window of observations.
pub const MAX_SAMPLE_GAP_SECONDS: i64 = 180;

/// What the scaler saw at one instant: the queue's approximate counts (SQS
/// GetQueueAttributes) and the service's task counts (ECS DescribeServices).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// `ApproximateNumberOfMessages`: waiting to be received.
    pub visible: u64,
    /// `ApproximateNumberOfMessagesNotVisible`: received by a worker, not yet deleted.
    pub in_flight: u64,
    /// `ApproximateNumberOfMessagesDelayed`: not receivable yet.
    pub delayed: u64,
    /// The service's `desiredCount`.
    pub desired: u32,
    /// The service's `runningCount`.
    pub running: u32,
    /// The service's `pendingCount`.
    pub pending: u32,
}

impl Observation {
    /// Combines the two reads the scaler makes.
    pub fn new(queue: QueueDepth, service: ServiceCounts) -> Observation {
        Observation {
            visible: queue.visible,
            in_flight: queue.in_flight,
            delayed: queue.delayed,
            desired: service.desired,
            running: service.running,
            pending: service.pending,
        }
    }

    /// The messages that need a task: visible and in flight, plus delayed when `count_delayed`.
    pub fn backlog(&self, count_delayed: bool) -> u64 {
        self.visible
            .saturating_add(self.in_flight)
            .saturating_add(if count_delayed { self.delayed } else { 0 })
    }
}

/// A queue's approximate message counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDepth {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

/// A service's task counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCounts {
    pub desired: u32,
    pub running: u32,
    pub pending: u32,
}

/// One past recommendation: the tasks the backlog needed at `at`, before min/max bounds. It
/// stays in force until the next sample (`until`; `None` for the latest one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub at: DateTime<Utc>,
    pub tasks: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// The recent recommendations of one worker: a plain value the caller stores and passes back
/// to the next [`decide`] (the scaler keeps it in DynamoDB, a simulator in memory).
///
/// A sample's recommendation holds from its time until the next sample, so the window of the
/// last `scale_in_after_seconds` includes the sample in force at its start. Only the samples
/// that can still matter are kept: those in force within the window that no later sample
/// equals or exceeds (a sliding-window maximum), so the size is bounded by the number of
/// distinct recommendations, not by the sampling rate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Start of the uninterrupted run of observations (scale-in needs a whole window of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Oldest first, strictly decreasing `tasks`; the last one is the latest sample.
    #[serde(default)]
    pub samples: Vec<Sample>,
}

impl History {
    /// The time of the latest sample.
    pub fn last_sample_at(&self) -> Option<DateTime<Utc>> {
        self.samples.last().map(|s| s.at)
    }
}

/// Which way a decision moves the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Out,
    In,
    Hold,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Out => "scale_out",
            Direction::In => "scale_in",
            Direction::Hold => "hold",
        }
    }
}

/// The outcome of one [`decide`] call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The desired count to set (equal to `previous` when holding).
    pub desired: u32,
    /// The observed desired count.
    pub previous: u32,
    pub direction: Direction,
    /// Messages counted: visible + in flight (+ delayed with `count_delayed`).
    pub backlog: u64,
    /// `ceil(backlog / messages_per_task)`, before bounds: this sample's recommendation.
    pub recommended: u32,
    /// The highest recommendation in the stabilization window (this one included).
    pub stabilized: u32,
    /// Tasks the in-flight messages alone need: `ceil(in_flight / messages_per_task)`.
    pub in_flight_floor: u32,
    /// The bounds in force (a window's or the worker's).
    pub bounds: Bounds,
    /// Whether the history covered a whole stabilization window (scale-in allowed).
    pub stable: bool,
    /// One human-readable line.
    pub reason: String,
    /// The history to pass to the next call.
    pub history: History,
    /// The service's tasks holding scale-in protection, when the scaler read them (it does
    /// before scaling in; see [`super::respect_protection`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<u32>,
}

impl Decision {
    /// Whether the service's desired count must be updated.
    pub fn changed(&self) -> bool {
        self.desired != self.previous
    }

    /// New minus previous desired count: positive out, negative in, zero hold.
    pub fn delta(&self) -> i64 {
        i64::from(self.desired) - i64::from(self.previous)
    }
}

/// Decides a worker service's desired count.
///
/// - The backlog (visible + in-flight, + delayed with `count_delayed`) needs
///   `ceil(backlog / messages_per_task)` tasks; that recommendation is clamped to the bounds in
///   force (an active window's `min_tasks`/`max_tasks`, else the worker's).
/// - **Out** at once when the clamped recommendation exceeds the current desired count (from
///   zero on the first message), at most `max_step_out` tasks per decision.
/// - **In** only to the highest recommendation in force during the last
///   `scale_in_after_seconds` (each sample's recommendation holds until the next sample; all
///   of them must be lower than the current count), never below what
///   the in-flight messages need, at most `max_step_in` per decision, and only once the history
///   covers a whole window (after a cold start or a gap in sampling the scaler waits a window
///   first). Zero is therefore reached only after visible and in-flight messages were zero
///   for the whole window.
/// - Bounds win over step caps and stabilization: a window that raises `min_tasks` or lowers
///   `max_tasks` takes effect at once.
///
/// `now` must not go backwards between calls (if it does, the latest sample's time is used).
pub fn decide(
    worker: &Worker,
    observation: &Observation,
    history: &History,
    now: DateTime<Utc>,
) -> Decision {
    let per_task = u64::from(worker.messages_per_task.max(1));
    let backlog = observation.backlog(worker.count_delayed);
    let recommended = tasks_for(backlog, per_task);
    let in_flight_floor = tasks_for(observation.in_flight, per_task);
    let window = Duration::seconds(i64::from(worker.scale_in_after_seconds));
    let bounds = bounds_at(worker, now);

    let (history, gap) = record(history, now, recommended, window);
    let now = history.last_sample_at().unwrap_or(now);
    let stabilized = history.samples.first().map_or(recommended, |s| s.tasks);
    let observed = now - history.since.unwrap_or(now);
    let stable = observed >= window;

    let previous = observation.desired;
    let clamp = |n: u32| n.clamp(bounds.min, bounds.max);
    let want_out = clamp(recommended);
    // The in-flight floor is implied (the backlog counts in-flight messages); kept as a guard.
    let want_in = clamp(stabilized.max(in_flight_floor));
    let seconds = window.num_seconds();
    let mut notes = Vec::new();
    let bound_note = |n: u32| -> Option<String> {
        let (field, value) = match n {
            n if n < bounds.min => ("min_tasks", bounds.min),
            n if n > bounds.max => ("max_tasks", bounds.max),
            _ => return None,
        };
        Some(match bounds.window {
            Some(i) => format!(
                "{field} {value} of window {i} ({})",
                describe(&worker.windows[i])
            ),
            None => format!("{field} {value}"),
        })
    };

    let (desired, action) = if want_out > previous {
        let mut desired = want_out;
        notes.extend(bound_note(recommended));
        if let Some(step) = worker
            .max_step_out
            .filter(|step| desired > previous.saturating_add(*step))
        {
            desired = previous.saturating_add(step);
            notes.push(format!("capped by max_step_out {step}"));
        }
        if desired < bounds.min {
            desired = bounds.min;
            notes.retain(|n| !n.starts_with("capped"));
        }
        (desired, format!("scale out {previous} → {desired}"))
    } else if want_in < previous || previous > bounds.max {
        if !stable && previous <= bounds.max {
            let have = if gap {
                "restarted after a sampling gap".to_string()
            } else {
                format!("have {}s", observed.num_seconds())
            };
            notes.push(format!(
                "scale-in waits for {seconds}s of observations, {have}"
            ));
            (previous, format!("hold {previous}"))
        } else {
            let target = if stable { want_in } else { bounds.max };
            let mut desired = target;
            if stable && stabilized > recommended && clamp(stabilized) > want_out {
                notes.push(format!(
                    "highest need in the last {seconds}s was {stabilized}"
                ));
            }
            if let Some(step) = worker
                .max_step_in
                .filter(|step| desired < previous.saturating_sub(*step))
            {
                desired = previous.saturating_sub(step);
                notes.push(format!("capped by max_step_in {step}"));
            }
            if desired > bounds.max {
                desired = bounds.max;
                notes.retain(|n| !n.starts_with("capped"));
            }
            if previous > bounds.max {
                notes.extend(bound_note(previous));
                if !stable && want_in < bounds.max {
                    notes.push(format!("below that after {seconds}s of observations"));
                }
            } else {
                notes.extend(bound_note(stabilized.max(in_flight_floor)));
            }
            (desired, format!("scale in {previous} → {desired}"))
        }
    } else if previous > want_out {
        notes.push(format!(
            "a need of {stabilized} within the last {seconds}s keeps {previous}"
        ));
        (previous, format!("hold {previous}"))
    } else {
        notes.extend(bound_note(recommended));
        (previous, format!("hold {previous}"))
    };

    let mut need = format!(
        "{} visible + {} in flight",
        observation.visible, observation.in_flight
    );
    if worker.count_delayed {
        need.push_str(&format!(" + {} delayed", observation.delayed));
    }
    let reason = format!(
        "backlog {backlog} ({need}) needs {} at {} per task; {action}{}",
        tasks(recommended),
        worker.messages_per_task,
        suffix(&notes)
    );

    let direction = match desired.cmp(&previous) {
        std::cmp::Ordering::Greater => Direction::Out,
        std::cmp::Ordering::Less => Direction::In,
        std::cmp::Ordering::Equal => Direction::Hold,
    };
    Decision {
        desired,
        previous,
        direction,
        backlog,
        recommended,
        stabilized,
        in_flight_floor,
        bounds,
        stable,
        reason,
        history,
        protected: None,
    }
}

fn tasks_for(messages: u64, per_task: u64) -> u32 {
    u32::try_from(messages.div_ceil(per_task)).unwrap_or(u32::MAX)
}

fn suffix(notes: &[String]) -> String {
    if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    }
}

/// Adds this sample to the history, restarting it after a gap; returns whether it restarted.
fn record(history: &History, now: DateTime<Utc>, tasks: u32, window: Duration) -> (History, bool) {
    let max_gap = window.max(Duration::seconds(MAX_SAMPLE_GAP_SECONDS));
    let mut history = history.clone();
    let mut gap = false;
    let now = match history.last_sample_at() {
        Some(last) if now - last > max_gap => {
            history = History::default();
            gap = true;
            now
        }
        Some(last) => now.max(last),
        None => now,
    };
    history.since = Some(history.since.map_or(now, |since| since.min(now)));
    if let Some(latest) = history.samples.last_mut() {
        latest.until = Some(now);
    }
    while history.samples.last().is_some_and(|s| s.tasks <= tasks) {
        history.samples.pop();
    }
    history.samples.push(Sample {
        at: now,
        tasks,
        until: None,
    });
    // Drop samples superseded before the window started (the latest one always stays).
    let start = now - window;
    let keep_from = history
        .samples
        .iter()
        .position(|s| s.until.is_none_or(|until| until > start))
        .unwrap_or(0);
    history.samples.drain(..keep_from);
    (history, gap)
}

fn tasks(n: u32) -> String {
    if n == 1 {
        "1 task".into()
    } else {
        format!("{n} tasks")
    }
}
