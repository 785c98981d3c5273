//! Application Auto Scaling target tracking, as used by `target-tracking` (backlog per task)
//! and by `cdk-queue-processing` (CPU at 50 %). See bench/MODELS.md for the sources.
//!
//! - The policy's alarms are evaluated once a minute on one-minute datapoints: scale-out when
//!   the last [`TargetTracker::high_points`] datapoints are all above the target, scale-in when
//!   the last [`TargetTracker::low_points`] are all below [`TargetTracker::low_factor`] × the
//!   target. While an alarm stays in ALARM its action is invoked again every minute.
//! - New capacity = ceil(current capacity × metric / target), within min/max. The current
//!   capacity is the service's desired count; from zero it counts as one (a generous
//!   assumption: proportional scaling from zero capacity would stay at zero).
//! - Scale-out cooldown: while it runs, the capacity added by the scale-out that started it is
//!   part of the capacity for the next one (the next proposal is computed from the capacity
//!   before it and applied only if larger). Scale-in cooldown: no scale-in until it ends; a
//!   scale-out ends it.

use crate::engine::{Datapoint, View};

/// Which metric is tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracked {
    /// ECS `CPUUtilization` (average over the service's tasks).
    Cpu,
    /// Metric math `ApproximateNumberOfMessagesVisible / RunningTaskCount` (running counted as
    /// at least one).
    BacklogPerTask,
}

impl Tracked {
    fn value(self, point: &Datapoint) -> Option<f64> {
        match self {
            Tracked::Cpu => point.cpu_percent,
            Tracked::BacklogPerTask => Some(point.visible as f64 / f64::from(point.running.max(1))),
        }
    }
}

/// One target tracking scaling policy's state.
#[derive(Debug, Clone)]
pub struct TargetTracker {
    pub metric: Tracked,
    pub target: f64,
    pub high_points: usize,
    pub low_points: usize,
    pub low_factor: f64,
    pub scale_out_cooldown: u64,
    pub scale_in_cooldown: u64,
    out: Option<(u64, u32)>,
    in_until: Option<u64>,
}

impl TargetTracker {
    /// The defaults Application Auto Scaling uses for an ECS service.
    pub fn new(metric: Tracked, target: f64) -> TargetTracker {
        TargetTracker {
            metric,
            target,
            high_points: 3,
            low_points: 15,
            low_factor: 0.9,
            scale_out_cooldown: 300,
            scale_in_cooldown: 300,
            out: None,
            in_until: None,
        }
    }

    /// Evaluates the alarms at `view.now` (call once a minute); returns the new desired count
    /// this policy asks for. Nothing changes until [`TargetTracker::applied`] says it was done.
    pub fn propose(&self, view: &View<'_>, min: u32, max: u32) -> Option<u32> {
        let values = |count: usize| -> Option<Vec<f64>> {
            view.metrics
                .latest(view.now, count)?
                .iter()
                .map(|p| self.metric.value(p))
                .collect()
        };
        let desired = view.desired;
        if let Some(high) = values(self.high_points).filter(|v| v.iter().all(|v| *v > self.target))
        {
            let latest = *high.last().expect("high_points > 0");
            let capacity = self
                .out_cooldown(view.now)
                .map_or(desired, |base| base)
                .max(1);
            let proposal =
                ((f64::from(capacity) * latest / self.target).ceil() as u32).clamp(min, max);
            return (proposal > desired).then_some(proposal);
        }
        let threshold = self.target * self.low_factor;
        if let Some(low) = values(self.low_points).filter(|v| v.iter().all(|v| *v < threshold)) {
            if self.in_until.is_some_and(|until| view.now < until) {
                return None;
            }
            let latest = *low.last().expect("low_points > 0");
            let proposal =
                ((f64::from(desired) * latest / self.target).ceil() as u32).clamp(min, max);
            return (proposal < desired).then_some(proposal);
        }
        None
    }

    /// The desired count went from `view.desired` to `desired` on this policy's proposal:
    /// start the cooldown.
    pub fn applied(&mut self, view: &View<'_>, desired: u32) {
        if desired > view.desired {
            if self.out_cooldown(view.now).is_none() {
                self.out = Some((view.now + self.scale_out_cooldown, view.desired));
            }
            self.in_until = None;
        } else if desired < view.desired {
            self.in_until = Some(view.now + self.scale_in_cooldown);
        }
    }

    /// The capacity before the scale-out whose cooldown is running.
    fn out_cooldown(&self, now: u64) -> Option<u32> {
        self.out
            .filter(|(until, _)| now < *until)
            .map(|(_, base)| base)
    }

    /// Another policy scaled out: a scale-in cooldown in progress stops.
    pub fn scaled_out(&mut self) {
        self.in_until = None;
    }
}
