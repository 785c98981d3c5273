//! `cdk-queue-processing`: what CDK's `QueueProcessingFargateService` sets up by default
//! (bench/MODELS.md has the sources).
//!
//! - Step scaling on `ApproximateNumberOfMessagesVisible`, statistic Maximum over 5 minutes,
//!   one evaluation period: an upper alarm at ≥ 100 (+1 task; +5 at ≥ 500) and a lower alarm
//!   at ≤ 0 (−1 task). Alarms are evaluated every minute on the last five published one-minute
//!   datapoints (a sliding window: the quickest reading of a 5-minute period); while an alarm
//!   stays in ALARM its scaling policy is invoked again every minute.
//! - Step scaling cooldown 300 s (CDK leaves `Cooldown` unset; the API's default applies):
//!   during a scale-out cooldown only a larger step adds capacity, and only the difference;
//!   scale-in is blocked during its cooldown; a scale-out ends a scale-in cooldown.
//! - Target tracking on the service's average CPU at 50 % ([`TargetTracker`]).
//! - When several policies act in the same minute the larger capacity wins.
//! - min 1 / max 2 unless overridden.

use crate::engine::{Action, Policy, View};
use crate::policy::tracking::{TargetTracker, Tracked};

/// The CDK pattern's scaling.
#[derive(Debug, Clone)]
pub struct CdkQueueProcessing {
    pub min: u32,
    pub max: u32,
    /// Upper alarm threshold (+`small_step`).
    pub upper: u64,
    /// Threshold of the big step (+`big_step`).
    pub big: u64,
    pub small_step: u32,
    pub big_step: u32,
    /// Lower alarm threshold (−1 task at or below it).
    pub lower: u64,
    /// Minutes in the alarm's period (statistic Maximum).
    pub period_minutes: usize,
    /// Step scaling cooldown, seconds.
    pub cooldown: u64,
    pub cpu: TargetTracker,
    out: Option<(u64, u32, u32)>,
    in_until: Option<u64>,
}

impl CdkQueueProcessing {
    pub fn new(min: u32, max: u32) -> CdkQueueProcessing {
        CdkQueueProcessing {
            min,
            max,
            upper: 100,
            big: 500,
            small_step: 1,
            big_step: 5,
            lower: 0,
            period_minutes: 5,
            cooldown: 300,
            cpu: TargetTracker::new(Tracked::Cpu, 50.0),
            out: None,
            in_until: None,
        }
    }

    /// The step scaling policies' proposal: the new desired count and the step taken.
    fn step(&self, view: &View<'_>) -> Option<(u32, u32)> {
        let published = view.metrics.published(view.now);
        if published.is_empty() {
            return None;
        }
        let window = &published[published.len().saturating_sub(self.period_minutes)..];
        let value = window.iter().map(|p| p.visible).max().unwrap_or(0);
        let desired = view.desired;
        if value >= self.upper {
            let adjustment = if value >= self.big {
                self.big_step
            } else {
                self.small_step
            };
            let target = match self.out {
                // During the cooldown only a larger step adds, and only the difference.
                Some((until, base, added)) if view.now < until => {
                    if adjustment <= added {
                        return None;
                    }
                    base + adjustment
                }
                _ => desired + adjustment,
            };
            let target = target.clamp(self.min, self.max);
            (target > desired).then_some((target, adjustment))
        } else if value <= self.lower {
            if self.in_until.is_some_and(|until| view.now < until) {
                return None;
            }
            let target = desired.saturating_sub(1).clamp(self.min, self.max);
            (target < desired).then_some((target, 1))
        } else {
            None
        }
    }

    /// The step policy's proposal was carried out: start its cooldown.
    fn step_applied(&mut self, view: &View<'_>, desired: u32, adjustment: u32) {
        if desired > view.desired {
            self.out = match self.out {
                Some((until, base, _)) if view.now < until => Some((until, base, adjustment)),
                _ => Some((view.now + self.cooldown, view.desired, adjustment)),
            };
        } else {
            self.in_until = Some(view.now + self.cooldown);
        }
    }
}

impl Policy for CdkQueueProcessing {
    fn name(&self) -> &str {
        "cdk-queue-processing"
    }

    fn initial_tasks(&self) -> u32 {
        self.min
    }

    fn act(&mut self, view: &View<'_>) -> Vec<Action> {
        self.desired(view)
            .map(Action::Desired)
            .into_iter()
            .collect()
    }
}

impl CdkQueueProcessing {
    /// The new desired count at `view.now`, if any.
    fn desired(&mut self, view: &View<'_>) -> Option<u32> {
        if !view.now.is_multiple_of(60) {
            return None;
        }
        let step = self.step(view);
        let cpu = self.cpu.propose(view, self.min, self.max);
        // Policies acting at once: the larger capacity wins (scale-out before scale-in).
        let proposals = [step.map(|(d, _)| d), cpu];
        let out = proposals
            .iter()
            .flatten()
            .filter(|p| **p > view.desired)
            .max();
        let inward = proposals
            .iter()
            .flatten()
            .filter(|p| **p < view.desired)
            .max();
        let desired = *out.or(inward)?;
        if let Some((d, adjustment)) = step.filter(|(d, _)| *d == desired) {
            self.step_applied(view, d, adjustment);
        }
        if cpu == Some(desired) {
            self.cpu.applied(view, desired);
        }
        if desired > view.desired {
            // A scale-out ends every scale-in cooldown.
            self.in_until = None;
            self.cpu.scaled_out();
        }
        Some(desired)
    }
}
