//! Every retry decision: class × attempt × budget × tiers × capacity, and the next attempt's
//! requests.

use super::*;
use crate::config::{Config, Format};
use crate::event::ObjectCreated;
use crate::plan::plan_object;

const CONFIG: &str = r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]
capacity = ["FARGATE_SPOT", "FARGATE"]

[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
cpu = 512
memory = 1024
[jobs.thumbnails.retry]
attempts = 3
backoff = "30s"
max_backoff = "1m"
grow_on_oom = true
exit_codes = [1, 75]

[jobs.tiered]
task_definition = "thumbnails"
container = "app"
[[jobs.tiered.size_tiers]]
max_bytes = 1000
cpu = 256
memory = 512
[[jobs.tiered.size_tiers]]
cpu = 1024
memory = 4096
[jobs.tiered.retry]
attempts = 2
grow_on_oom = true
on_interruption = "same"

[jobs.plain]
task_definition = "thumbnails"
container = "app"

[state]
table = "state"
[launcher]
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/launcher"
"#;

fn config() -> Config {
    Config::parse(CONFIG, Format::Toml).unwrap()
}

fn decision(job: &str, failed: Failed) -> Decision {
    let config = config();
    let job = config.job(job).unwrap();
    decide(job, &job.resolved(&config.defaults), &failed, "run-1")
}

fn failed(class: Class, attempt: u32) -> Failed {
    Failed {
        class,
        exit_code: Some(1),
        attempt,
        interruptions: 0,
        cpu: Some(512),
        memory: Some(1024),
    }
}

fn next(d: Decision) -> NextAttempt {
    match d {
        Decision::Retry(next) => next,
        Decision::Final(why) => panic!("expected a retry, got final: {why}"),
    }
}

fn final_reason(d: Decision) -> String {
    match d {
        Decision::Final(why) => why,
        Decision::Retry(next) => panic!("expected no retry, got {next:?}"),
    }
}

#[test]
fn a_failure_retries_until_the_budget_is_spent_with_doubling_backoff() {
    let second = next(decision("thumbnails", failed(Class::NonZeroExit, 1)));
    assert_eq!(second.attempt, 2);
    assert!(second.delay <= Duration::from_secs(30) && second.delay >= Duration::from_secs(24));
    assert_eq!((second.cpu, second.memory), (Some(512), Some(1024)));
    assert_eq!(second.capacity_provider, None);
    let third = next(decision("thumbnails", failed(Class::NonZeroExit, 2)));
    assert!(third.delay <= Duration::from_secs(60) && third.delay >= Duration::from_secs(48));
    assert_eq!(
        final_reason(decision("thumbnails", failed(Class::NonZeroExit, 3))),
        "failed after 3 attempts"
    );
}

#[test]
fn the_backoff_stops_at_max_backoff_and_is_the_same_for_a_redelivery() {
    let config = config();
    let job = config.job("thumbnails").unwrap();
    let mut settings = job.resolved(&config.defaults);
    if let Some(retry) = settings.retry.as_mut() {
        retry.attempts = 10;
    }
    let d = |attempt| {
        next(decide(
            job,
            &settings,
            &failed(Class::Timeout, attempt),
            "r",
        ))
    };
    assert!(d(8).delay <= Duration::from_secs(60));
    assert_eq!(d(4), d(4));
}

#[test]
fn exit_codes_narrow_non_zero_exit() {
    let mut other = failed(Class::NonZeroExit, 1);
    other.exit_code = Some(2);
    assert!(final_reason(decision("thumbnails", other)).contains("exit code 2"));
    let mut listed = failed(Class::NonZeroExit, 1);
    listed.exit_code = Some(75);
    next(decision("thumbnails", listed));
}

#[test]
fn classes_outside_on_and_deliberate_stops_are_final() {
    for class in [
        Class::UserStopped,
        Class::Succeeded,
        Class::ScaledIn,
        Class::Unknown,
    ] {
        assert!(
            final_reason(decision("thumbnails", failed(class, 1))).contains("not retried"),
            "{class}"
        );
    }
    assert_eq!(
        final_reason(decision("plain", failed(Class::Oom, 1))),
        "no retry configured"
    );
}

#[test]
fn an_oom_grows_to_double_memory_then_gives_up_at_the_largest() {
    let grown = next(decision("thumbnails", failed(Class::Oom, 1)));
    assert_eq!((grown.cpu, grown.memory), (Some(512), Some(2048)));
    assert!(
        grown.why.contains("memory 1024") && grown.why.contains("2048"),
        "{}",
        grown.why
    );
    let mut at_max = failed(Class::Oom, 1);
    at_max.memory = Some(4096);
    assert!(final_reason(decision("thumbnails", at_max)).contains("largest size"));
}

#[test]
fn an_oom_takes_the_next_size_tier() {
    let mut small = failed(Class::Oom, 1);
    (small.cpu, small.memory) = (Some(256), Some(512));
    let grown = next(decision("tiered", small));
    assert_eq!((grown.cpu, grown.memory), (Some(1024), Some(4096)));
    // Past the last tier: double the memory for the same cpu.
    let mut big = failed(Class::Oom, 1);
    (big.cpu, big.memory) = (Some(1024), Some(4096));
    assert_eq!(next(decision("tiered", big)).memory, Some(8192));
}

#[test]
fn an_interruption_retries_on_demand_without_using_the_budget() {
    let mut interrupted = failed(Class::SpotInterruption, 3);
    let retry = next(decision("thumbnails", interrupted));
    assert_eq!(retry.attempt, 4);
    assert_eq!(retry.interruptions, 1);
    assert_eq!(retry.capacity_provider.as_deref(), Some("FARGATE"));
    // After it, a failure still has its budget: attempt 4 with 1 interruption used 3.
    let mut after = failed(Class::NonZeroExit, 4);
    after.interruptions = 1;
    assert_eq!(
        final_reason(decision("thumbnails", after)),
        "failed after 3 attempts"
    );
    after.attempt = 3;
    next(decision("thumbnails", after));
    // At most five interruption retries.
    interrupted.interruptions = MAX_INTERRUPTIONS;
    assert!(final_reason(decision("thumbnails", interrupted)).contains("interrupted 6 times"));
    // `same` keeps the strategy.
    let same = next(decision("tiered", failed(Class::SpotInterruption, 1)));
    assert_eq!(same.capacity_provider, None);
}

#[test]
fn the_next_attempt_has_its_own_token_size_capacity_and_variables() {
    let config = config();
    let object = ObjectCreated {
        bucket: "uploads".into(),
        key: "a.jpg".into(),
        size: 10,
        etag: None,
        version_id: Some("v1".into()),
        sequencer: None,
        event_time: "2026-11-25T10:00:00Z".parse().unwrap(),
    };
    let first = plan_object(&config, "thumbnails", &object).unwrap();
    let base = first.attempts[0].client_token.clone();
    let spot = next(decision("thumbnails", failed(Class::SpotInterruption, 1)));
    let second = plan_attempt(&first, &first.run_id, &base, &spot);
    assert_eq!(second.attempt, 2);
    assert_eq!(second.run_id, first.run_id);
    assert_eq!(second.attempts.len(), 1, "on demand only");
    let input = &second.attempts[0];
    assert_eq!(
        input.capacity_provider_strategy[0].capacity_provider,
        "FARGATE"
    );
    assert_eq!(input.client_token, token::for_retry(&base, 2));
    assert_ne!(input.client_token, base);
    let env = &input.overrides.container_overrides[0].environment;
    let var = |name: &str| {
        env.iter()
            .find(|kv| kv.name == name)
            .map(|kv| kv.value.as_str())
    };
    assert_eq!(var(job_env::ATTEMPT), Some("2"));
    assert_eq!(var(job_env::INTERRUPTIONS), Some("1"));
    assert_eq!(var(job_env::RUN_ID), Some(first.run_id.as_str()));
    let oom = next(decision("thumbnails", failed(Class::Oom, 1)));
    let grown = plan_attempt(&first, &first.run_id, &base, &oom);
    assert_eq!(
        grown.attempts.len(),
        2,
        "the job's own strategy, each provider its token"
    );
    assert_eq!(grown.attempts[0].overrides.memory.as_deref(), Some("2048"));
    assert_ne!(
        grown.attempts[0].client_token,
        grown.attempts[1].client_token
    );
    assert_eq!(
        plan_attempt(&first, &first.run_id, &base, &oom),
        grown,
        "deterministic"
    );
}

#[test]
fn an_attempt_number_past_any_budget_is_never_retried() {
    // Found by the `track_stop` fuzz target: a task claiming `JOB_ATTEMPT=33` (a run the ledger
    // has no record of) was planned an attempt 34 on a Spot interruption; near u32::MAX the
    // next number overflowed.
    for attempt in [3 + MAX_INTERRUPTIONS, 33, u32::MAX] {
        let why = final_reason(decision(
            "thumbnails",
            failed(Class::SpotInterruption, attempt),
        ));
        assert!(why.contains("the most a run can reach (8"), "{why}");
    }
    let last = failed(Class::SpotInterruption, 3 + MAX_INTERRUPTIONS - 1);
    assert_eq!(next(decision("thumbnails", last)).attempt, 8);
}
