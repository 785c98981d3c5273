//! Retries that read the failure: whether a failed attempt is tried again, after how long, and
//! how the next attempt differs (an OOM at the next size, a Spot interruption on demand).
//! Pure: the tracker decides from the stop event and the run's record, and [`plan_attempt`]
//! turns the launcher's plan of the run's first attempt into the next attempt's requests.
//!
//! - `attempts` counts every attempt, the first included; Spot interruptions (and lack of
//!   capacity) never use it up, and are retried at most [`MAX_INTERRUPTIONS`] times per run.
//! - The delay before attempt `n + 1` is `backoff × 2^(n − 1)` (attempts that used the budget),
//!   at most `max_backoff`, shortened by up to 20% of jitter derived from the run id (the same
//!   for every redelivery of one stop).
//! - Every attempt has its own deterministic clientToken ([`token::for_retry`]), so a
//!   redelivered stop never starts two tasks of one attempt.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::class::Class;
use crate::config::{Job, LaunchSettings, OnInterruption, Retry};
use crate::fargate;
use crate::job_env;
use crate::plan::{CapacityProviderStrategyItem, KeyValuePair, LaunchPlan};
use crate::token;

/// Interruption retries a run may take, beyond `attempts`.
pub const MAX_INTERRUPTIONS: u32 = 5;

/// The attempt that failed, as its stop event and the ledger tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    pub class: Class,
    pub exit_code: Option<i64>,
    /// `JOB_ATTEMPT` of the failed task.
    pub attempt: u32,
    /// Interruption retries before it (`JOB_INTERRUPTIONS`).
    pub interruptions: u32,
    /// The task's size.
    pub cpu: Option<u32>,
    pub memory: Option<u32>,
}

/// The attempt to make next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextAttempt {
    pub attempt: u32,
    pub interruptions: u32,
    pub delay: Duration,
    pub cpu: Option<u32>,
    pub memory: Option<u32>,
    /// Only this capacity provider (a Spot interruption retried on demand); `None`: the job's
    /// own strategy.
    pub capacity_provider: Option<String>,
    /// Why, for the ledger and the logs: `oom: memory 1024 → 2048 MiB`.
    pub why: String,
}

/// What follows a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Retry(NextAttempt),
    /// No further attempt; why.
    Final(String),
}

/// Decides what follows `failed`, an attempt of `job` (with its resolved `settings`) in run
/// `run_id`.
pub fn decide(job: &Job, settings: &LaunchSettings, failed: &Failed, run_id: &str) -> Decision {
    let Some(retry) = &settings.retry else {
        return Decision::Final("no retry configured".into());
    };
    // No run gets further than its budget plus its interruptions. A run the ledger has no
    // record of is rebuilt from the task's own `JOB_ATTEMPT`: a number past that (or near
    // u32::MAX) is never retried.
    let most = retry.attempts.saturating_add(MAX_INTERRUPTIONS);
    if failed.attempt >= most {
        return Decision::Final(format!(
            "attempt {} is the most a run can reach ({most}: retry.attempts plus {MAX_INTERRUPTIONS} interruptions)",
            failed.attempt
        ));
    }
    match failed.class {
        Class::SpotInterruption => interruption(retry, settings, failed, run_id),
        class if retry.on.contains(&class) => {
            if class == Class::NonZeroExit
                && let (Some(codes), Some(code)) = (&retry.exit_codes, failed.exit_code)
                && !codes.contains(&code)
            {
                return Decision::Final(format!("exit code {code} is not in retry.exit_codes"));
            }
            failure(retry, job, failed, run_id)
        }
        class => Decision::Final(format!("class '{class}' is not retried")),
    }
}

fn interruption(
    retry: &Retry,
    settings: &LaunchSettings,
    failed: &Failed,
    run_id: &str,
) -> Decision {
    if failed.interruptions >= MAX_INTERRUPTIONS {
        return Decision::Final(format!(
            "interrupted {} times, the most a run is retried for interruptions",
            failed.interruptions + 1
        ));
    }
    let on_demand = match retry.on_interruption {
        OnInterruption::OnDemand => settings
            .capacity
            .iter()
            .flatten()
            .find(|p| !p.contains("SPOT"))
            .cloned(),
        OnInterruption::Same => None,
    };
    let why = match &on_demand {
        Some(provider) => format!("spot_interruption: retried on {provider}"),
        None => "spot_interruption: retried with the same strategy".into(),
    };
    Decision::Retry(NextAttempt {
        attempt: failed.attempt + 1,
        interruptions: failed.interruptions + 1,
        delay: jittered(retry.backoff.duration(), run_id, failed.attempt + 1),
        cpu: failed.cpu,
        memory: failed.memory,
        capacity_provider: on_demand,
        why,
    })
}

fn failure(retry: &Retry, job: &Job, failed: &Failed, run_id: &str) -> Decision {
    let used = failed.attempt.saturating_sub(failed.interruptions);
    if used >= retry.attempts {
        return Decision::Final(format!(
            "failed after {used} attempt{}",
            if used == 1 { "" } else { "s" }
        ));
    }
    let (mut cpu, mut memory) = (failed.cpu, failed.memory);
    let mut why = format!("{}: retried", failed.class);
    if failed.class == Class::Oom && retry.grow_on_oom {
        match grow(job, failed.cpu, failed.memory) {
            Some((c, m)) => {
                why = format!(
                    "oom: {} → cpu {c} / memory {m} MiB",
                    match (failed.cpu, failed.memory) {
                        (Some(fc), Some(fm)) => format!("cpu {fc} / memory {fm} MiB"),
                        _ => "the task definition's size".into(),
                    }
                );
                (cpu, memory) = (Some(c), Some(m));
            }
            None => {
                return Decision::Final(
                    "oom at the largest size: no bigger tier or valid Fargate memory".into(),
                );
            }
        }
    }
    let doubling = 2u32.saturating_pow(used.saturating_sub(1));
    let delay = retry
        .backoff
        .duration()
        .saturating_mul(doubling)
        .min(retry.max_backoff.duration());
    Decision::Retry(NextAttempt {
        attempt: failed.attempt + 1,
        interruptions: failed.interruptions,
        delay: jittered(delay, run_id, failed.attempt + 1),
        cpu,
        memory,
        capacity_provider: None,
        why,
    })
}

/// The next size after an OOM at (`cpu`, `memory`): the first size tier with more memory,
/// else double the memory for the same cpu (up to Fargate's largest for it).
pub fn grow(job: &Job, cpu: Option<u32>, memory: Option<u32>) -> Option<(u32, u32)> {
    let (cpu, memory) = (cpu.or(job.cpu)?, memory.or(job.memory)?);
    if let Some(tier) = job.size_tiers.iter().find(|t| t.memory > memory) {
        return Some((tier.cpu, tier.memory));
    }
    fargate::doubled_memory(cpu, memory).map(|m| (cpu, m))
}

/// `delay` less up to 20%, by a fraction derived from the run and attempt.
fn jittered(delay: Duration, run_id: &str, attempt: u32) -> Duration {
    let digest = Sha256::new()
        .chain_update(run_id.as_bytes())
        .chain_update(attempt.to_be_bytes())
        .finalize();
    let fraction = f64::from(digest[0]) / 255.0;
    delay.mul_f64(1.0 - 0.2 * fraction)
}

/// The requests of attempt `next` of a run whose first attempt `first` planned (and whose
/// first token was `base_token`): the attempt's own tokens, `JOB_ATTEMPT` and
/// `JOB_INTERRUPTIONS`, its size and capacity. The run id stays the run's.
pub fn plan_attempt(
    first: &LaunchPlan,
    run_id: &str,
    base_token: &str,
    next: &NextAttempt,
) -> LaunchPlan {
    let attempt_token = token::for_retry(base_token, next.attempt);
    let mut attempts: Vec<_> = match &next.capacity_provider {
        Some(provider) => first
            .attempts
            .first()
            .map(|input| {
                let mut input = input.clone();
                input.capacity_provider_strategy = vec![CapacityProviderStrategyItem {
                    capacity_provider: provider.clone(),
                    weight: 1,
                    base: 0,
                }];
                vec![input]
            })
            .unwrap_or_default(),
        None => first.attempts.clone(),
    };
    for (i, input) in attempts.iter_mut().enumerate() {
        input.client_token = match (i, input.capacity_provider_strategy.first()) {
            (0, _) | (_, None) => attempt_token.clone(),
            (_, Some(strategy)) => token::for_attempt(&attempt_token, &strategy.capacity_provider),
        };
        if next.cpu.is_some() {
            input.overrides.cpu = next.cpu.map(|c| c.to_string());
        }
        if next.memory.is_some() {
            input.overrides.memory = next.memory.map(|m| m.to_string());
        }
        for container in &mut input.overrides.container_overrides {
            set(&mut container.environment, job_env::RUN_ID, run_id);
            set(
                &mut container.environment,
                job_env::ATTEMPT,
                &next.attempt.to_string(),
            );
            if next.interruptions > 0 {
                set(
                    &mut container.environment,
                    job_env::INTERRUPTIONS,
                    &next.interruptions.to_string(),
                );
            }
        }
    }
    LaunchPlan {
        job: first.job.clone(),
        run_id: run_id.into(),
        attempt: next.attempt,
        attempts,
        cap: first.cap.clone(),
        // The run's own earlier attempt has stopped: overlap policies apply to ticks, not retries.
        overlap: None,
    }
}

fn set(environment: &mut Vec<KeyValuePair>, name: &str, value: &str) {
    match environment.iter_mut().find(|kv| kv.name == name) {
        Some(kv) => kv.value = value.into(),
        None => environment.push(KeyValuePair {
            name: name.into(),
            value: value.into(),
        }),
    }
}

#[cfg(test)]
mod tests;
