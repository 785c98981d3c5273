//! The discrete-time world: one SQS queue, one service of worker tasks, one-second steps.
//!
//! Everything that is not the scaling policy is modelled here, once, for every policy:
//! - a task starts `task_start_seconds` after the desired count rises (provisioning, image
//!   pull, container start) and counts for task-minutes from that moment until it stops;
//! - a running task receives one message at a time (long polling: as soon as one is visible)
//!   and holds it in flight for the message's processing time;
//! - scale-in removes pending tasks first, then idle ones; a busy task finishes its current
//!   message and then stops (task scale-in protection, as the jobrunner docs recommend for
//!   workers: the same rule for every policy);
//! - a rise of the desired count first keeps tasks that were finishing their last message;
//! - SQS and ECS metrics reach CloudWatch as one-minute datapoints, `metric_delay_seconds`
//!   after the minute ends ([`Metrics`]); policies that read the queue directly (jobrunner,
//!   KEDA) see the live counts in [`View`].
//!
//! Within one second the order is: tasks finish their messages, tasks that finished starting
//! become ready, messages arrive, idle tasks receive messages, the policy looks and acts.

use std::collections::VecDeque;

use crate::trace::Trace;
use crate::work::WorkTime;

/// What the world looks like; the same for every policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// From the desired count rising to the task receiving messages.
    pub task_start_seconds: u64,
    /// Per-message processing time.
    pub work: WorkTime,
    /// Seed of the processing times.
    pub seed: u64,
    /// How long the run goes on after the last arrival (slow scale-in is paid for).
    pub tail_seconds: u64,
    /// How long after a minute ends its CloudWatch datapoint can be read.
    pub metric_delay_seconds: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            task_start_seconds: 45,
            work: WorkTime::default(),
            seed: 1,
            tail_seconds: 3600,
            metric_delay_seconds: 60,
        }
    }
}

/// One minute of metrics as CloudWatch would hold it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Datapoint {
    /// Minute index: the datapoint covers seconds `60 * minute .. 60 * minute + 60`.
    pub minute: u64,
    /// `ApproximateNumberOfMessagesVisible`: the highest count seen in the minute.
    pub visible: u64,
    /// `ApproximateNumberOfMessagesNotVisible`: the highest count seen in the minute.
    pub in_flight: u64,
    /// Tasks running at the end of the minute (Container Insights `RunningTaskCount`).
    pub running: u32,
    /// ECS `CPUUtilization` averaged over the minute (a task is at 100 % while it processes a
    /// message, 0 % while idle); `None` when no task ran in the minute.
    pub cpu_percent: Option<f64>,
}

/// CloudWatch's view of the queue and the service: one-minute datapoints, published late.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    delay: u64,
    points: Vec<Datapoint>,
}

impl Metrics {
    /// The datapoints readable at `now`, oldest first.
    pub fn published(&self, now: u64) -> &[Datapoint] {
        let n = self
            .points
            .partition_point(|p| (p.minute + 1) * 60 + self.delay <= now);
        &self.points[..n]
    }

    /// The latest `count` datapoints readable at `now`, or `None` when fewer are published.
    pub fn latest(&self, now: u64, count: usize) -> Option<&[Datapoint]> {
        let published = self.published(now);
        (published.len() >= count && count > 0).then(|| &published[published.len() - count..])
    }
}

/// What a policy can see at one instant.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// Seconds since the start of the run.
    pub now: u64,
    /// Messages waiting in the queue.
    pub visible: u64,
    /// Messages being processed.
    pub in_flight: u64,
    /// The service's desired count.
    pub desired: u32,
    /// Tasks running (finishing ones included).
    pub running: u32,
    /// Tasks starting.
    pub pending: u32,
    /// CloudWatch metrics.
    pub metrics: &'a Metrics,
}

/// A scaling policy: looks at the world every second, may set a new desired count.
pub trait Policy {
    /// The name shown in results.
    fn name(&self) -> &str;
    /// The desired count (and running tasks) at the start of the run: the policy's minimum.
    fn initial_tasks(&self) -> u32;
    /// Called once per second after the world moved; returns the new desired count, if any.
    fn decide(&mut self, view: &View<'_>) -> Option<u32>;
}

/// One point of the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Start of the interval, seconds.
    pub t: u64,
    /// Highest backlog (visible + in flight) in the interval.
    pub backlog: u64,
    /// Most tasks alive (starting, running or finishing) in the interval.
    pub tasks: u32,
}

/// The outcome of one policy on one trace.
#[derive(Debug, Clone)]
pub struct Run {
    pub policy: String,
    /// Messages in the trace.
    pub messages: u64,
    /// Wait (arrival → processing start) of every message, ascending; a message never
    /// processed counts with its wait so far at the end of the run (a lower bound).
    pub waits: Vec<u64>,
    /// Messages never started: still in the queue when the run ended.
    pub unprocessed: u64,
    /// How many times each message started processing (0 or 1).
    pub deliveries: Vec<u8>,
    /// Messages whose processing finished.
    pub completed: u64,
    /// Task-seconds: every second a task existed (starting, running or finishing).
    pub task_seconds: u64,
    /// Changes of the desired count.
    pub scale_actions: u32,
    /// Seconds from the first message's arrival to the first task running (0 when one was).
    pub first_task_running: Option<u64>,
    /// Seconds simulated.
    pub duration: u64,
    /// Backlog and tasks over time.
    pub timeline: Vec<Sample>,
}

#[derive(Debug, Clone, Copy)]
struct Task {
    ready_at: u64,
    busy_until: Option<u64>,
    draining: bool,
}

/// Runs `policy` against `trace`.
pub fn simulate(trace: &Trace, policy: &mut dyn Policy, settings: &Settings) -> Run {
    let messages = trace.total();
    let work = settings.work.durations(messages, settings.seed);
    let first_arrival = trace.first_arrival();
    let end = trace.last_arrival().unwrap_or(0) + settings.tail_seconds;
    let step = timeline_step(end);

    let initial = policy.initial_tasks();
    let mut tasks: Vec<Task> = (0..initial)
        .map(|_| Task {
            ready_at: 0,
            busy_until: None,
            draining: false,
        })
        .collect();
    let mut desired = initial;
    let mut queue: VecDeque<(usize, u64)> = VecDeque::new();
    let mut arrivals = trace.points().iter().peekable();
    let mut next_message = 0usize;
    let mut waits = Vec::with_capacity(messages as usize);
    let mut deliveries = vec![0u8; messages as usize];
    let mut in_flight = 0u64;
    let mut completed = 0u64;
    let mut task_seconds = 0u64;
    let mut scale_actions = 0u32;
    let mut first_task_running = None;
    let mut metrics = Metrics {
        delay: settings.metric_delay_seconds,
        points: Vec::new(),
    };
    let mut minute = MinuteAccumulator::default();
    let mut timeline = Vec::new();
    let mut sample = Sample {
        t: 0,
        backlog: 0,
        tasks: 0,
    };

    for now in 0..=end {
        // Messages finish; finishing tasks that were scaled in stop.
        for task in tasks.iter_mut() {
            if task.busy_until == Some(now) {
                task.busy_until = None;
                in_flight -= 1;
                completed += 1;
            }
        }
        tasks.retain(|task| !(task.draining && task.busy_until.is_none()));

        // Messages arrive.
        while let Some(&&(t, n)) = arrivals.peek() {
            if t > now {
                break;
            }
            for _ in 0..n {
                queue.push_back((next_message, t));
                next_message += 1;
            }
            arrivals.next();
        }

        // Idle running tasks receive messages.
        for task in tasks.iter_mut() {
            if task.ready_at <= now && !task.draining && task.busy_until.is_none() {
                let Some((id, arrived)) = queue.pop_front() else {
                    break;
                };
                waits.push(now - arrived);
                deliveries[id] += 1;
                in_flight += 1;
                task.busy_until = Some(now + u64::from(work[id]));
            }
        }

        let running = tasks.iter().filter(|t| t.ready_at <= now).count() as u32;
        let pending = tasks.len() as u32 - running;
        let busy = tasks.iter().filter(|t| t.busy_until.is_some()).count() as u32;
        if first_task_running.is_none()
            && running > 0
            && let Some(first) = first_arrival.filter(|first| *first <= now)
        {
            first_task_running = Some(now - first);
        }

        // CloudWatch's minute.
        let visible = queue.len() as u64;
        minute.add(visible, in_flight, running, busy);
        if now % 60 == 59 {
            metrics.points.push(minute.finish(now / 60, running));
        }

        // The policy looks and acts.
        let view = View {
            now,
            visible,
            in_flight,
            desired,
            running,
            pending,
            metrics: &metrics,
        };
        if let Some(target) = policy.decide(&view)
            && target != desired
        {
            scale_actions += 1;
            resize(
                &mut tasks,
                desired,
                target,
                now,
                settings.task_start_seconds,
            );
            desired = target;
        }

        task_seconds += tasks.len() as u64;
        if now % step == 0 && now > 0 {
            timeline.push(sample);
            sample = Sample {
                t: now,
                backlog: 0,
                tasks: 0,
            };
        }
        sample.backlog = sample.backlog.max(visible + in_flight);
        sample.tasks = sample.tasks.max(tasks.len() as u32);
    }
    timeline.push(sample);

    // Every arrival is within the run: a message never started is still in the queue.
    let unprocessed = queue.len() as u64;
    waits.extend(queue.iter().map(|(_, arrived)| end - arrived));
    waits.sort_unstable();
    Run {
        policy: policy.name().to_string(),
        messages,
        waits,
        unprocessed,
        deliveries,
        completed,
        task_seconds,
        scale_actions,
        first_task_running,
        duration: end + 1,
        timeline,
    }
}

/// Applies a new desired count to the tasks.
fn resize(tasks: &mut Vec<Task>, from: u32, to: u32, now: u64, start_delay: u64) {
    if to > from {
        let mut add = to - from;
        // Tasks finishing their last message stay on.
        for task in tasks.iter_mut().filter(|t| t.draining) {
            if add == 0 {
                break;
            }
            task.draining = false;
            add -= 1;
        }
        tasks.extend((0..add).map(|_| Task {
            ready_at: now + start_delay,
            busy_until: None,
            draining: false,
        }));
        return;
    }
    let mut remove = from - to;
    // Pending tasks first (newest first), then idle running ones: they stop at once.
    while remove > 0 {
        let pending = tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.ready_at > now && !t.draining)
            .max_by_key(|(_, t)| t.ready_at)
            .map(|(i, _)| i);
        let idle = || {
            tasks
                .iter()
                .position(|t| t.ready_at <= now && !t.draining && t.busy_until.is_none())
        };
        match pending.or_else(idle) {
            Some(i) => {
                tasks.swap_remove(i);
                remove -= 1;
            }
            None => break,
        }
    }
    // Busy tasks finish their message, then stop (scale-in protection).
    for task in tasks.iter_mut().filter(|t| !t.draining) {
        if remove == 0 {
            break;
        }
        task.draining = true;
        remove -= 1;
    }
}

/// Chart resolution: at most about 1,500 points.
fn timeline_step(end: u64) -> u64 {
    let raw = (end / 1500).max(10);
    raw.div_ceil(10) * 10
}

#[derive(Debug, Default)]
struct MinuteAccumulator {
    visible: u64,
    in_flight: u64,
    cpu_sum: f64,
    cpu_seconds: u32,
}

impl MinuteAccumulator {
    fn add(&mut self, visible: u64, in_flight: u64, running: u32, busy: u32) {
        self.visible = self.visible.max(visible);
        self.in_flight = self.in_flight.max(in_flight);
        if running > 0 {
            self.cpu_sum += 100.0 * f64::from(busy.min(running)) / f64::from(running);
            self.cpu_seconds += 1;
        }
    }

    fn finish(&mut self, minute: u64, running: u32) -> Datapoint {
        let point = Datapoint {
            minute,
            visible: self.visible,
            in_flight: self.in_flight,
            running,
            cpu_percent: (self.cpu_seconds > 0).then(|| self.cpu_sum / f64::from(self.cpu_seconds)),
        };
        *self = MinuteAccumulator::default();
        point
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets the desired count from a script: `(second, desired)`.
    struct Scripted {
        initial: u32,
        script: Vec<(u64, u32)>,
    }

    impl Policy for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn initial_tasks(&self) -> u32 {
            self.initial
        }
        fn decide(&mut self, view: &View<'_>) -> Option<u32> {
            self.script
                .iter()
                .find(|(t, _)| *t == view.now)
                .map(|(_, n)| *n)
        }
    }

    fn settings(work: f64, tail: u64) -> Settings {
        Settings {
            task_start_seconds: 45,
            work: WorkTime::Fixed(work),
            seed: 1,
            tail_seconds: tail,
            metric_delay_seconds: 60,
        }
    }

    #[test]
    fn every_message_is_processed_exactly_once() {
        let trace = crate::trace::generate::spiky(3);
        let mut policy = Scripted {
            initial: 0,
            script: vec![
                (0, 5),
                (3000, 1),
                (3001, 9),
                (9000, 2),
                (9005, 0),
                (9010, 4),
            ],
        };
        let run = simulate(&trace, &mut policy, &settings(7.0, 7200));
        assert_eq!(run.unprocessed, 0);
        assert_eq!(run.completed, run.messages);
        assert!(run.deliveries.iter().all(|d| *d == 1));
        assert_eq!(run.waits.len() as u64, run.messages);
        assert_eq!(run.scale_actions, 6);
    }

    #[test]
    fn task_minutes_count_every_second_a_task_exists() {
        // No messages: 2 tasks from the start, a third launched at 100, all gone at 400.
        let trace = Trace::new([(0, 0)]);
        let mut policy = Scripted {
            initial: 2,
            script: vec![(100, 3), (400, 0)],
        };
        let run = simulate(&trace, &mut policy, &settings(5.0, 1000));
        // Seconds 0..=399 for two tasks, 100..=399 for the third (starting included).
        assert_eq!(run.task_seconds, 2 * 400 + 300);
        assert_eq!(run.duration, 1001);
    }

    #[test]
    fn a_task_scaled_in_finishes_its_message_first() {
        let trace = Trace::new([(0, 1)]);
        let mut policy = Scripted {
            initial: 1,
            script: vec![(5, 0)],
        };
        let run = simulate(&trace, &mut policy, &settings(30.0, 100));
        assert_eq!(run.completed, 1);
        assert_eq!(run.waits, vec![0]);
        // The task lives seconds 0..=29: it stops when its message is done at 30.
        assert_eq!(run.task_seconds, 30);
    }

    #[test]
    fn tasks_start_after_the_start_delay_and_messages_wait_for_them() {
        let trace = Trace::new([(10, 3)]);
        let mut policy = Scripted {
            initial: 0,
            script: vec![(12, 1)],
        };
        let run = simulate(&trace, &mut policy, &settings(10.0, 600));
        // Ready at 57: messages start at 57, 67, 77.
        assert_eq!(run.waits, vec![47, 57, 67]);
        assert_eq!(run.first_task_running, Some(47));
    }

    #[test]
    fn unprocessed_messages_count_with_their_wait_so_far() {
        let trace = Trace::new([(0, 2)]);
        let mut policy = Scripted {
            initial: 0,
            script: vec![],
        };
        let run = simulate(&trace, &mut policy, &settings(10.0, 100));
        assert_eq!(run.unprocessed, 2);
        assert_eq!(run.waits, vec![100, 100]);
        assert_eq!(run.first_task_running, None);
    }

    #[test]
    fn metrics_are_published_after_the_minute_and_the_delay() {
        let trace = Trace::new([(30, 5)]);
        struct Probe(Vec<(u64, usize)>);
        impl Policy for Probe {
            fn name(&self) -> &str {
                "probe"
            }
            fn initial_tasks(&self) -> u32 {
                0
            }
            fn decide(&mut self, view: &View<'_>) -> Option<u32> {
                self.0
                    .push((view.now, view.metrics.published(view.now).len()));
                None
            }
        }
        let mut probe = Probe(Vec::new());
        simulate(&trace, &mut probe, &settings(1.0, 200));
        let seen = |t: u64| probe.0.iter().find(|(now, _)| *now == t).unwrap().1;
        assert_eq!(seen(119), 0);
        assert_eq!(seen(120), 1, "minute 0 readable at 60 + 60");
        assert_eq!(seen(180), 2);
    }
}
