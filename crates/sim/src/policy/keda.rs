//! `keda`: KEDA's `aws-sqs-queue` scaler driving a Kubernetes HorizontalPodAutoscaler
//! (bench/MODELS.md has the sources).
//!
//! - KEDA polls the queue every `pollingInterval` (30 s): when the queue has messages
//!   (visible + in flight > `activationQueueLength`, 0) a workload at zero is scaled to one;
//!   when it has had none for `cooldownPeriod` (300 s) since the last active poll, a workload
//!   whose minimum is zero is scaled to zero.
//! - Between one replica and the maximum the HPA decides every 15 s (its sync period) on
//!   KEDA's metric, visible + in flight (`scaleOnInFlight` true), against the target
//!   `queueLength` per replica (here the worker's `messages_per_task`, as the same target for
//!   every policy): desired = ceil(metric / queueLength), unchanged within the 10 %
//!   tolerance; scale-up by at most max(4 pods, 100 %) per 15 s; scale-down to the highest
//!   recommendation of the last 300 s (the default stabilization window).
//! - The HPA reads the queue through KEDA's metrics server when it syncs: live counts.
//!
//! `keda-tuned` ([`Keda::tuned`]) is the same with `pollingInterval` 10 s and no scale-up rate
//! cap (an HPA `behavior.scaleUp` policy large enough never to bind).

use std::collections::VecDeque;

use crate::engine::{Action, Policy, View};

/// KEDA + HPA defaults for one ScaledObject.
#[derive(Debug, Clone)]
pub struct Keda {
    pub name: &'static str,
    pub min: u32,
    pub max: u32,
    pub queue_length: u64,
    pub activation_queue_length: u64,
    pub polling_interval: u64,
    pub cooldown_period: u64,
    pub hpa_sync_period: u64,
    pub tolerance: f64,
    pub scale_down_window: u64,
    /// Scale-up rate cap per sync: max(pods, percent of current); `None` for no cap.
    pub scale_up_limit: Option<(u32, u32)>,
    last_active: u64,
    recommendations: VecDeque<(u64, u32)>,
}

impl Keda {
    pub fn new(min: u32, max: u32, queue_length: u64) -> Keda {
        Keda {
            name: "keda",
            min,
            max,
            queue_length: queue_length.max(1),
            activation_queue_length: 0,
            polling_interval: 30,
            cooldown_period: 300,
            hpa_sync_period: 15,
            tolerance: 0.1,
            scale_down_window: 300,
            scale_up_limit: Some((4, 100)),
            last_active: 0,
            recommendations: VecDeque::new(),
        }
    }

    /// `keda-tuned`: `pollingInterval` 10 s, no scale-up rate cap.
    pub fn tuned(min: u32, max: u32, queue_length: u64) -> Keda {
        Keda {
            name: "keda-tuned",
            polling_interval: 10,
            scale_up_limit: None,
            ..Keda::new(min, max, queue_length)
        }
    }

    fn hpa(&mut self, now: u64, metric: u64, current: u32) -> u32 {
        let floor = self.min.max(1);
        let ratio = metric as f64 / (self.queue_length as f64 * f64::from(current));
        let raw = if (ratio - 1.0).abs() <= self.tolerance {
            current
        } else {
            u32::try_from(metric.div_ceil(self.queue_length)).unwrap_or(u32::MAX)
        };
        let recommendation = raw.clamp(floor, self.max.max(floor));
        self.recommendations.push_back((now, recommendation));
        while self
            .recommendations
            .front()
            .is_some_and(|(t, _)| *t + self.scale_down_window < now)
        {
            self.recommendations.pop_front();
        }
        if recommendation > current {
            let Some((pods, percent)) = self.scale_up_limit else {
                return recommendation;
            };
            let by_percent = u64::from(current) * u64::from(percent) / 100;
            let limit = current
                .saturating_add(pods)
                .max(current.saturating_add(u32::try_from(by_percent).unwrap_or(u32::MAX)));
            recommendation.min(limit)
        } else {
            let stabilized = self
                .recommendations
                .iter()
                .map(|(_, r)| *r)
                .max()
                .unwrap_or(recommendation);
            stabilized.min(current)
        }
    }
}

impl Policy for Keda {
    fn name(&self) -> &str {
        self.name
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

impl Keda {
    /// The new desired count at `view.now`, if any.
    fn desired(&mut self, view: &View<'_>) -> Option<u32> {
        let metric = view.visible + view.in_flight;
        let now = view.now;
        if now.is_multiple_of(self.polling_interval) {
            if metric > self.activation_queue_length {
                self.last_active = now;
                if view.desired == 0 && self.max > 0 {
                    return Some(self.min.max(1).min(self.max));
                }
            } else if view.desired > 0
                && self.min == 0
                && now >= self.last_active + self.cooldown_period
            {
                self.recommendations.clear();
                return Some(0);
            }
        }
        if view.desired > 0 && now.is_multiple_of(self.hpa_sync_period) {
            let desired = self.hpa(now, metric, view.desired);
            return (desired != view.desired).then_some(desired);
        }
        None
    }
}
