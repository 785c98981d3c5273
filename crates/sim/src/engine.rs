//! The discrete-time world: one SQS queue, the worker's tasks, one-second steps.
//!
//! Everything that is not the scaling policy is modelled here, once, for every policy:
//! - every task runs `jobrunner-worker`: it long-polls the queue and works on up to
//!   [`Settings::concurrency`] messages at once (one per slot), taking a message in the same
//!   second it becomes visible; while a message is in hand its visibility is extended
//!   (heartbeat), so no message is ever delivered twice (set
//!   [`Settings::visibility_timeout_seconds`] to see workers without a heartbeat instead);
//! - a task starts `task_start_seconds` after it was asked for (provisioning, image pull,
//!   container start) and is paid for from that moment until it stops, at least
//!   [`Settings::min_billed_seconds`] (Fargate's one-minute minimum);
//! - **service tasks** follow the desired count ([`Action::Desired`]): scale-in removes pending
//!   tasks first, then idle ones; a task with a message in hand holds ECS task scale-in
//!   protection, so it finishes its message(s) and then stops (the same rule for every
//!   policy); a rise of the desired count first keeps tasks that were finishing;
//! - **standalone tasks** ([`Action::Launch`]) run until they exit by themselves: with
//!   [`Exit::Idle`] once they have had no message in hand for [`Settings::idle_exit_seconds`]
//!   (`jobrunner-worker --idle-exit`), with [`Exit::After`] after that many messages, or at
//!   once when the queue has nothing left for them (a RunTask per batch);
//! - SQS and ECS metrics reach CloudWatch as one-minute datapoints, `metric_delay_seconds`
//!   after the minute ends ([`Metrics`]); policies that read the queue directly (jobrunner,
//!   KEDA) see the live counts in [`View`].
//!
//! Within one second the order is: tasks finish messages, scaled-in service tasks with
//! nothing in hand stop, messages arrive, running tasks receive messages, standalone tasks
//! with nothing to do exit, the policy looks and acts.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::Error;
use crate::trace::Trace;
use crate::work::WorkTime;

/// The longest run simulated (last arrival + tail), and the longest start delay, metric delay
/// or idle exit accepted: 31 days of one-second steps.
pub const MAX_RUN_SECONDS: u64 = 31 * 86_400;
/// The most messages a trace may hold (each costs a few bytes of memory for the run).
pub const MAX_MESSAGES: u64 = 5_000_000;
/// The most messages one task may work on at once.
pub const MAX_CONCURRENCY: u32 = 1_000;

/// What the world looks like; the same for every policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// From a task being asked for to the task receiving messages.
    pub task_start_seconds: u64,
    /// Per-message processing time.
    pub work: WorkTime,
    /// Seed of the processing times.
    pub seed: u64,
    /// How long the run goes on after the last arrival (slow scale-in is paid for).
    pub tail_seconds: u64,
    /// How long after a minute ends its CloudWatch datapoint can be read.
    pub metric_delay_seconds: u64,
    /// Messages one task works on at once (`jobrunner-worker --concurrency`).
    pub concurrency: u32,
    /// A standalone task with [`Exit::Idle`] exits after this long with nothing in hand
    /// (`jobrunner-worker --idle-exit`).
    pub idle_exit_seconds: u64,
    /// Every task is billed at least this long (Fargate: one minute).
    pub min_billed_seconds: u64,
    /// `None`: the worker extends a message's visibility while working on it (heartbeat).
    /// `Some(V)`: workers without a heartbeat on a queue whose visibility timeout is V: a
    /// message still in hand V seconds after it was received becomes visible again and is
    /// delivered again (the first processing goes on; the first to finish deletes it). The
    /// copy in hand still counts as in flight while the visible copy waits.
    pub visibility_timeout_seconds: Option<u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            task_start_seconds: 45,
            work: WorkTime::default(),
            seed: 1,
            tail_seconds: 3600,
            metric_delay_seconds: 60,
            concurrency: 1,
            idle_exit_seconds: 20,
            min_billed_seconds: 60,
            visibility_timeout_seconds: None,
        }
    }
}

impl Settings {
    /// Checks the settings against a trace: the run must fit [`MAX_RUN_SECONDS`] and the trace
    /// [`MAX_MESSAGES`]; returns the last second simulated.
    pub fn check(&self, trace: &Trace) -> Result<u64, Error> {
        for (flag, value) in [
            ("--task-start-seconds", self.task_start_seconds),
            ("--tail-seconds", self.tail_seconds),
            ("--metric-delay-seconds", self.metric_delay_seconds),
            ("--idle-exit-seconds", self.idle_exit_seconds),
            ("min_billed_seconds", self.min_billed_seconds),
            (
                "--visibility-timeout-seconds",
                self.visibility_timeout_seconds.unwrap_or(0),
            ),
        ] {
            if value > MAX_RUN_SECONDS {
                return Err(Error::new(format!(
                    "{flag} {value}: at most {MAX_RUN_SECONDS} (31 days)"
                )));
            }
        }
        if self.visibility_timeout_seconds == Some(0) {
            return Err(Error::new(
                "--visibility-timeout-seconds 0: must be at least 1".to_string(),
            ));
        }
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            return Err(Error::new(format!(
                "--concurrency {}: must be 1 to {MAX_CONCURRENCY}",
                self.concurrency
            )));
        }
        let messages = trace.total();
        if messages > MAX_MESSAGES {
            return Err(Error::new(format!(
                "the trace holds {messages} messages; the simulator takes at most {MAX_MESSAGES}"
            )));
        }
        let last = trace.last_arrival().unwrap_or(0);
        match last.checked_add(self.tail_seconds) {
            Some(end) if end <= MAX_RUN_SECONDS => Ok(end),
            _ => Err(Error::new(format!(
                "the last arrival at second {last} plus --tail-seconds {} goes past the longest \
                 run simulated, {MAX_RUN_SECONDS} s (31 days)",
                self.tail_seconds
            ))),
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
    /// ECS `CPUUtilization` averaged over the minute (a task is at 100 % while every slot
    /// processes a message, 0 % while idle); `None` when no task ran in the minute.
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
    /// Messages that arrived in this second.
    pub arrived: u64,
    /// Messages waiting in the queue.
    pub visible: u64,
    /// Messages being processed.
    pub in_flight: u64,
    /// The service's desired count.
    pub desired: u32,
    /// Tasks running (finishing ones included), service and standalone.
    pub running: u32,
    /// Tasks starting, service and standalone.
    pub pending: u32,
    /// Service tasks holding scale-in protection: a message in hand.
    pub protected: u32,
    /// CloudWatch metrics.
    pub metrics: &'a Metrics,
}

/// How a standalone task ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// After [`Settings::idle_exit_seconds`] with nothing in hand (`jobrunner-worker --idle-exit`).
    Idle,
    /// After working on this many messages, or as soon as it has nothing in hand and the queue
    /// is empty (a task launched for one batch).
    After(u32),
}

/// What a policy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Set the service's desired count.
    Desired(u32),
    /// Launch standalone tasks (RunTask), each ending by `exit`.
    Launch { tasks: u32, exit: Exit },
}

/// A scaling policy: looks at the world every second, may act.
pub trait Policy {
    /// The name shown in results.
    fn name(&self) -> &str;
    /// The desired count (and running service tasks) at the start of the run.
    fn initial_tasks(&self) -> u32;
    /// Called once per second after the world moved; what to do, if anything.
    fn act(&mut self, view: &View<'_>) -> Vec<Action>;
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
    /// How many times each message started processing: 0 or 1 with the worker's heartbeat,
    /// more without one when processing outlasts the visibility timeout.
    pub deliveries: Vec<u8>,
    /// Messages whose processing finished.
    pub completed: u64,
    /// Task-seconds billed: every second a task existed (starting, running or finishing),
    /// at least [`Settings::min_billed_seconds`] per task.
    pub task_seconds: u64,
    /// The work floor: the processing time of every message, summed.
    pub work_seconds: u64,
    /// Tasks started over the run (initial ones included).
    pub tasks_started: u64,
    /// Changes of the desired count and launches.
    pub scale_actions: u32,
    /// Seconds from the first message's arrival to the first task running (0 when one was).
    pub first_task_running: Option<u64>,
    /// Seconds simulated.
    pub duration: u64,
    /// Backlog and tasks over time.
    pub timeline: Vec<Sample>,
}

#[derive(Debug, Clone)]
struct Task {
    /// Standalone task and how it ends; `None` for a service task.
    exit: Option<Exit>,
    launched_at: u64,
    ready_at: u64,
    /// Each message in hand: when it is done, and which it is.
    in_hand: Vec<(u64, usize)>,
    /// Messages taken so far.
    taken: u32,
    /// The last second it had a message in hand (or became ready).
    last_busy: u64,
    /// A scaled-in service task finishing its messages (protected until then).
    draining: bool,
}

impl Task {
    fn new(now: u64, start_delay: u64, exit: Option<Exit>) -> Task {
        Task {
            exit,
            launched_at: now,
            ready_at: now + start_delay,
            in_hand: Vec::new(),
            taken: 0,
            last_busy: now + start_delay,
            draining: false,
        }
    }

    fn is_service(&self) -> bool {
        self.exit.is_none()
    }

    fn busy(&self) -> bool {
        !self.in_hand.is_empty()
    }

    /// Slots free to receive into at `now`.
    fn free_slots(&self, now: u64, concurrency: u32) -> u32 {
        if self.ready_at > now || self.draining {
            return 0;
        }
        let free = concurrency.saturating_sub(self.in_hand.len() as u32);
        match self.exit {
            Some(Exit::After(quota)) => free.min(quota.saturating_sub(self.taken)),
            _ => free,
        }
    }

    /// Whether a standalone task ends at `now` (after receiving; `queue_empty` then).
    fn exits(&self, now: u64, idle_exit: u64, queue_empty: bool) -> bool {
        if self.ready_at > now || self.busy() {
            return false;
        }
        match self.exit {
            None => false,
            Some(Exit::Idle) => queue_empty && now >= self.last_busy + idle_exit,
            Some(Exit::After(quota)) => self.taken >= quota || queue_empty,
        }
    }
}

/// Runs `policy` against `trace`; an error when the run is too large to simulate
/// ([`Settings::check`]).
pub fn simulate(trace: &Trace, policy: &mut dyn Policy, settings: &Settings) -> Result<Run, Error> {
    let end = settings.check(trace)?;
    let messages = trace.total();
    let work = settings.work.durations(messages, settings.seed);
    let work_seconds = work.iter().map(|w| u64::from(*w)).sum();
    let first_arrival = trace.first_arrival();
    let step = timeline_step(end);
    let concurrency = settings.concurrency;
    let start_delay = settings.task_start_seconds;

    let initial = policy.initial_tasks();
    let mut tasks: Vec<Task> = (0..initial).map(|_| Task::new(0, 0, None)).collect();
    let mut tasks_started = u64::from(initial);
    let mut desired = initial;
    let mut queue: VecDeque<(usize, u64)> = VecDeque::new();
    let mut arrivals = trace.points().iter().peekable();
    let mut next_message = 0usize;
    let mut waits = Vec::with_capacity(messages as usize);
    let mut deliveries = vec![0u8; messages as usize];
    // Messages deleted (their processing finished once).
    let mut deleted = vec![false; messages as usize];
    // Without a heartbeat: (second, message) when a received message becomes visible again.
    let mut reappear: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
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
    // A task removed at `now` was counted for seconds launched_at..now.
    let billed_extra = |task: &Task, now: u64| {
        settings
            .min_billed_seconds
            .saturating_sub(now - task.launched_at)
    };

    for now in 0..=end {
        // Messages finish; scaled-in service tasks with nothing left in hand stop.
        for task in tasks.iter_mut() {
            task.in_hand.retain(|&(done, id)| {
                if done != now {
                    return true;
                }
                in_flight -= 1;
                if !deleted[id] {
                    deleted[id] = true;
                    completed += 1;
                }
                false
            });
        }
        tasks.retain(|task| {
            let stop = task.draining && !task.busy();
            if stop {
                task_seconds += billed_extra(task, now);
            }
            !stop
        });

        // Messages arrive.
        let mut arrived = 0u64;
        while let Some(&&(t, n)) = arrivals.peek() {
            if t > now {
                break;
            }
            for _ in 0..n {
                queue.push_back((next_message, t));
                next_message += 1;
            }
            arrived += u64::from(n);
            arrivals.next();
        }
        // Without a heartbeat, messages still in hand past the visibility timeout reappear.
        while let Some(&Reverse((t, id))) = reappear.peek() {
            if t > now {
                break;
            }
            reappear.pop();
            if !deleted[id] {
                queue.push_back((id, now));
            }
        }

        // A message deleted while a copy of it waited visible is gone from the queue.
        if settings.visibility_timeout_seconds.is_some() {
            queue.retain(|(id, _)| !deleted[*id]);
        }

        // Running tasks receive messages into their free slots.
        for task in tasks.iter_mut() {
            for _ in 0..task.free_slots(now, concurrency) {
                let Some((id, arrived_at)) = queue.pop_front() else {
                    break;
                };
                if deliveries[id] == 0 {
                    waits.push(now - arrived_at);
                }
                deliveries[id] = deliveries[id].saturating_add(1);
                in_flight += 1;
                task.taken += 1;
                task.in_hand.push((now + u64::from(work[id]), id));
                if let Some(timeout) = settings.visibility_timeout_seconds
                    && u64::from(work[id]) > timeout
                {
                    reappear.push(Reverse((now + timeout, id)));
                }
            }
            if task.busy() {
                task.last_busy = now;
            }
        }

        // Standalone tasks with nothing to do exit.
        let queue_empty = queue.is_empty();
        tasks.retain(|task| {
            let exits = task.exits(now, settings.idle_exit_seconds, queue_empty);
            if exits {
                task_seconds += billed_extra(task, now);
            }
            !exits
        });

        let running = tasks.iter().filter(|t| t.ready_at <= now).count() as u32;
        let pending = tasks.len() as u32 - running;
        let protected = tasks.iter().filter(|t| t.is_service() && t.busy()).count() as u32;
        let busy_slots: usize = tasks.iter().map(|t| t.in_hand.len()).sum();
        if first_task_running.is_none()
            && running > 0
            && let Some(first) = first_arrival.filter(|first| *first <= now)
        {
            first_task_running = Some(now - first);
        }

        // CloudWatch's minute.
        let visible = queue.len() as u64;
        minute.add(
            visible,
            in_flight,
            running,
            busy_slots as f64 / f64::from(concurrency),
        );
        if now % 60 == 59 {
            metrics.points.push(minute.finish(now / 60, running));
        }

        // The policy looks and acts.
        let view = View {
            now,
            arrived,
            visible,
            in_flight,
            desired,
            running,
            pending,
            protected,
            metrics: &metrics,
        };
        for action in policy.act(&view) {
            match action {
                Action::Desired(target) if target != desired => {
                    scale_actions += 1;
                    tasks_started +=
                        u64::from(resize(&mut tasks, desired, target, now, start_delay));
                    desired = target;
                }
                Action::Desired(_) => {}
                Action::Launch { tasks: 0, .. } => {}
                Action::Launch { tasks: count, exit } => {
                    scale_actions += 1;
                    tasks_started += u64::from(count);
                    tasks.extend((0..count).map(|_| Task::new(now, start_delay, Some(exit))));
                }
            }
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
    for task in &tasks {
        task_seconds += billed_extra(task, end + 1);
    }

    // Every arrival is within the run: a message never started is still in the queue.
    let never_started: Vec<u64> = queue
        .iter()
        .filter(|(id, _)| deliveries[*id] == 0)
        .map(|(_, arrived)| end - arrived)
        .collect();
    let unprocessed = never_started.len() as u64;
    waits.extend(never_started);
    waits.sort_unstable();
    Ok(Run {
        policy: policy.name().to_string(),
        messages,
        waits,
        unprocessed,
        deliveries,
        completed,
        task_seconds,
        work_seconds,
        tasks_started,
        scale_actions,
        first_task_running,
        duration: end + 1,
        timeline,
    })
}

/// Applies a new desired count to the service's tasks (standalone tasks are left alone);
/// returns the tasks started.
fn resize(tasks: &mut Vec<Task>, from: u32, to: u32, now: u64, start_delay: u64) -> u32 {
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
        tasks.extend((0..add).map(|_| Task::new(now, start_delay, None)));
        return add;
    }
    let mut remove = from - to;
    // Pending tasks first (newest first), then idle running ones: they stop at once.
    while remove > 0 {
        let pending = tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.is_service() && t.ready_at > now && !t.draining)
            .max_by_key(|(_, t)| t.ready_at)
            .map(|(i, _)| i);
        let idle = || {
            tasks
                .iter()
                .position(|t| t.is_service() && t.ready_at <= now && !t.draining && !t.busy())
        };
        match pending.or_else(idle) {
            Some(i) => {
                tasks.swap_remove(i);
                remove -= 1;
            }
            None => break,
        }
    }
    // Protected tasks finish what they hold, then stop.
    for task in tasks.iter_mut().filter(|t| t.is_service() && !t.draining) {
        if remove == 0 {
            break;
        }
        task.draining = true;
        remove -= 1;
    }
    0
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
    /// `busy`: tasks' worth of busy slots.
    fn add(&mut self, visible: u64, in_flight: u64, running: u32, busy: f64) {
        self.visible = self.visible.max(visible);
        self.in_flight = self.in_flight.max(in_flight);
        if running > 0 {
            self.cpu_sum += 100.0 * busy.min(f64::from(running)) / f64::from(running);
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
        fn act(&mut self, view: &View<'_>) -> Vec<Action> {
            self.script
                .iter()
                .filter(|(t, _)| *t == view.now)
                .map(|(_, n)| Action::Desired(*n))
                .collect()
        }
    }

    fn settings(work: f64, tail: u64) -> Settings {
        Settings {
            task_start_seconds: 45,
            work: WorkTime::Fixed(work),
            seed: 1,
            tail_seconds: tail,
            metric_delay_seconds: 60,
            concurrency: 1,
            idle_exit_seconds: 20,
            min_billed_seconds: 0,
            visibility_timeout_seconds: None,
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
        let run = simulate(&trace, &mut policy, &settings(7.0, 7200)).unwrap();
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
        let run = simulate(&trace, &mut policy, &settings(5.0, 1000)).unwrap();
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
        let run = simulate(&trace, &mut policy, &settings(30.0, 100)).unwrap();
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
        let run = simulate(&trace, &mut policy, &settings(10.0, 600)).unwrap();
        // Ready at 57: messages start at 57, 67, 77.
        assert_eq!(run.waits, vec![47, 57, 67]);
        assert_eq!(run.first_task_running, Some(47));
    }

    #[test]
    fn a_task_works_on_as_many_messages_as_it_has_slots() {
        let trace = Trace::new([(0, 5)]);
        let mut policy = Scripted {
            initial: 1,
            script: vec![],
        };
        let two = Settings {
            concurrency: 2,
            ..settings(10.0, 100)
        };
        let run = simulate(&trace, &mut policy, &two).unwrap();
        assert_eq!(run.waits, vec![0, 0, 10, 10, 20]);
        assert_eq!(run.completed, 5);
    }

    #[test]
    fn scale_in_stops_idle_tasks_at_once_and_busy_ones_after_their_messages() {
        // Two tasks, one busy until 40 with two messages in hand. Scaled to one at 1: the idle
        // task stops at once. Scaled to zero at 5: the busy one is protected, takes nothing new
        // (the message at 20 waits) and stops when its messages are done at 40.
        let trace = Trace::new([(0, 2), (20, 1)]);
        let mut policy = Scripted {
            initial: 2,
            script: vec![(1, 1), (5, 0), (60, 1)],
        };
        let two = Settings {
            concurrency: 2,
            ..settings(40.0, 200)
        };
        let run = simulate(&trace, &mut policy, &two).unwrap();
        // 0 → 1 at 60 starts a new task, ready at 105.
        assert_eq!(run.waits, vec![0, 0, 85]);
        // Alive: the idle task 0..1, the busy one 0..40, the new one 60..=220.
        assert_eq!(run.task_seconds, 1 + 40 + 161);
        assert_eq!(run.completed, 3);
        assert!(run.deliveries.iter().all(|d| *d == 1));
    }

    #[test]
    fn the_heartbeat_keeps_a_long_message_from_running_twice() {
        // One message of 100 s, two idle tasks, a 30 s visibility timeout.
        let trace = Trace::new([(0, 1)]);
        let run_with = |visibility: Option<u64>| {
            let mut policy = Scripted {
                initial: 2,
                script: vec![],
            };
            let world = Settings {
                visibility_timeout_seconds: visibility,
                ..settings(100.0, 200)
            };
            simulate(&trace, &mut policy, &world).unwrap()
        };
        let heartbeat = run_with(None);
        assert_eq!(heartbeat.deliveries, vec![1]);
        // Without one it reappears at 30 (the second task takes it) and at 60 (both tasks busy:
        // it waits) until the first copy finishes at 100 and deletes it.
        let without = run_with(Some(30));
        assert_eq!(without.deliveries, vec![2]);
        assert_eq!(without.completed, 1);
        assert_eq!(without.waits, vec![0]);
        assert_eq!(without.unprocessed, 0);
        assert!(
            Settings {
                visibility_timeout_seconds: Some(0),
                ..Settings::default()
            }
            .check(&trace)
            .is_err()
        );
    }

    #[test]
    fn unprocessed_messages_count_with_their_wait_so_far() {
        let trace = Trace::new([(0, 2)]);
        let mut policy = Scripted {
            initial: 0,
            script: vec![],
        };
        let run = simulate(&trace, &mut policy, &settings(10.0, 100)).unwrap();
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
            fn act(&mut self, view: &View<'_>) -> Vec<Action> {
                self.0
                    .push((view.now, view.metrics.published(view.now).len()));
                Vec::new()
            }
        }
        let mut probe = Probe(Vec::new());
        simulate(&trace, &mut probe, &settings(1.0, 200)).unwrap();
        let seen = |t: u64| probe.0.iter().find(|(now, _)| *now == t).unwrap().1;
        assert_eq!(seen(119), 0);
        assert_eq!(seen(120), 1, "minute 0 readable at 60 + 60");
        assert_eq!(seen(180), 2);
    }
}
