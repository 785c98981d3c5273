//! The launcher through the ECS-faithful fault proxy (`support/fault_proxy.rs`): the proxy's
//! client-token memory and throttling, and the launcher under them and under injected faults
//! (tasks read back from moto). The tracker's and the scaler's fault tests are beside it.

use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{AssignPublicIp, AwsVpcConfiguration, LaunchType, NetworkConfiguration};
use jobrunner_aws::Adapters;
use jobrunner_aws::ecs::EcsTasks;
use jobrunner_core::event::{self, Event};
use jobrunner_core::launcher::Outcome;
use jobrunner_core::launcher::launch;
use jobrunner_integration_tests::fault_proxy::{
    Fault, FaultProxy, Faults, Injection, Limits, Phase, Rate,
};
use jobrunner_integration_tests::fixtures::{LaunchFixture, THUMBNAILS, keep_tasks_running};
use jobrunner_lambda::Invocation;
use serde_json::{Value, json};

/// Per-attempt timeout of the clients in these tests: injected slow responses come later.
const ATTEMPT: Duration = Duration::from_secs(1);
const SLOW: Duration = Duration::from_secs(2);

/// An EventBridge "Object Created" event for `key` (its sequencer derived from `n`).
fn object_created(key: &str, n: u64) -> Value {
    json!({
        "version": "0", "id": format!("00000000-0000-4000-8000-{n:012}"), "detail-type": "Object Created",
        "source": "aws.s3", "account": "123456789012", "time": "2026-11-22T05:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:s3:::uploads"],
        "detail": {"version": "0", "bucket": {"name": "uploads"},
            "object": {"key": key, "size": 1024, "etag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": format!("{n:018X}")},
            "request-id": "R", "requester": "123456789012", "reason": "PutObject"}
    })
}

fn decoded(value: &Value) -> Event {
    event::decode_event(value).expect("valid event").remove(0)
}

use jobrunner_testkit::{failed_ids, sqs_batch_of_events as sqs_batch};

/// Delivers the bodies as SQS batches of 10, redelivering failed messages (as SQS would after
/// the visibility timeout) until none fail or `rounds` are used; returns the rounds used.
async fn drain(
    config: &jobrunner_core::Config,
    ecs: &Adapters,
    events: Vec<(String, Value)>,
    rounds: usize,
) -> usize {
    let mut pending = events;
    for round in 1..=rounds {
        let mut failed = Vec::new();
        for batch in pending.chunks(10) {
            let response =
                jobrunner_launcher::handle(config, ecs, &Invocation::now(sqs_batch(batch)))
                    .await
                    .expect("SQS batches always answer");
            let ids = failed_ids(&response);
            failed.extend(batch.iter().filter(|(id, _)| ids.contains(id)).cloned());
        }
        if failed.is_empty() {
            return round;
        }
        pending = failed;
    }
    panic!(
        "{} messages still failing after {rounds} rounds",
        pending.len()
    );
}

/// A raw RunTask in the fixture's network (for requests the launcher would not make).
async fn run_task(
    fx: &LaunchFixture,
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    family: &str,
    token: &str,
    count: i32,
) -> Result<Vec<String>, aws_sdk_ecs::error::SdkError<aws_sdk_ecs::operation::run_task::RunTaskError>>
{
    let network = NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .subnets(&fx.subnet)
                .security_groups(&fx.security_group)
                .assign_public_ip(AssignPublicIp::Disabled)
                .build()
                .unwrap(),
        )
        .build();
    let out = ecs
        .run_task()
        .cluster(cluster)
        .task_definition(family)
        .launch_type(LaunchType::Fargate)
        .count(count)
        .client_token(token)
        .started_by("faults-test")
        .network_configuration(network)
        .send()
        .await?;
    Ok(out
        .tasks()
        .iter()
        .filter_map(|t| t.task_arn().map(str::to_owned))
        .collect())
}

/// The launcher's ports with ECS through `client` (no ledger: these configs have no `[state]`).
fn ports(client: aws_sdk_ecs::Client) -> Adapters {
    Adapters {
        ecs: Some(EcsTasks::new(client)),
        ..Adapters::default()
    }
}

fn no_retries(ecs: aws_sdk_ecs::Client) -> aws_sdk_ecs::Client {
    aws_sdk_ecs::Client::from_conf(
        ecs.config()
            .to_builder()
            .retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled())
            .build(),
    )
}

#[tokio::test]
async fn same_token_and_parameters_returns_the_original_task() {
    let fx = LaunchFixture::new().await;
    let proxy = FaultProxy::new(Limits::ecs(), Faults::none());
    let ecs = ports(proxy.ecs(&fx.account, ATTEMPT));
    let config = fx.config(THUMBNAILS);
    let event = decoded(&object_created("images/a.jpg", 1));

    let first = jobrunner_core::launcher::process(&config, &ecs, &event, chrono::Utc::now())
        .await
        .unwrap();
    let second = jobrunner_core::launcher::process(&config, &ecs, &event, chrono::Utc::now())
        .await
        .unwrap();
    let arns = |o: &Outcome| match o {
        Outcome::Launched { task_arns, .. } | Outcome::AlreadyLaunched { task_arns, .. } => {
            task_arns.clone()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        arns(&first),
        arns(&second),
        "the replay names the original task"
    );
    assert_eq!(
        fx.tasks("jobrunner/thumbnails").await.len(),
        1,
        "moto started one task"
    );
    // Bounds, not counts: on a loaded machine an answer can outlive the 1 s attempt timeout,
    // and the SDK's retry is then one more replay, never one more task.
    let stats = proxy.stats();
    assert!(stats.runtask_calls() >= 2, "{stats:?}");
    assert_eq!(stats.tasks_started, 1, "{stats:?}");
    assert_eq!(stats.replays, stats.runtask_calls() - 1, "{stats:?}");
}

#[tokio::test]
async fn same_token_with_other_parameters_is_a_conflict_naming_the_original_tasks() {
    let fx = LaunchFixture::new().await;
    let proxy = FaultProxy::new(Limits::ecs(), Faults::none());
    let client = proxy.ecs(&fx.account, ATTEMPT);
    let event = decoded(&object_created("images/b.jpg", 2));

    let Outcome::Launched { task_arns, .. } = jobrunner_core::launcher::process(
        &fx.config(THUMBNAILS),
        &ports(client.clone()),
        &event,
        chrono::Utc::now(),
    )
    .await
    .unwrap() else {
        panic!("not launched")
    };
    // The config changed between two deliveries of one event: same token, other command.
    let changed = fx.config(&THUMBNAILS.replace("\"resize\"", "\"resize-v2\""));
    let outcome = jobrunner_core::launcher::process(
        &changed,
        &ports(client.clone()),
        &event,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        outcome,
        Outcome::AlreadyLaunched {
            job: "thumbnails".into(),
            task_arns: task_arns.clone()
        }
    );

    // The raw error, as ECS words it.
    let token = proxy.launches().keys().next().unwrap().clone();
    let err = run_task(&fx, &client, "jobs", "report", &token, 1)
        .await
        .unwrap_err();
    let service = err.as_service_error().expect("a service error");
    assert!(service.is_conflict_exception(), "{service:?}");
    let aws_sdk_ecs::operation::run_task::RunTaskError::ConflictException(conflict) = service
    else {
        unreachable!()
    };
    assert_eq!(conflict.resource_ids(), task_arns.as_slice());
    assert_eq!(proxy.stats().conflicts, 2);
    assert_eq!(fx.tasks("jobrunner/thumbnails").await.len(), 1);
}

#[tokio::test]
async fn tokens_are_remembered_per_cluster_for_24_hours() {
    let fx = LaunchFixture::new().await;
    fx.account
        .ecs()
        .create_cluster()
        .cluster_name("other")
        .send()
        .await
        .unwrap();
    let proxy = FaultProxy::new(Limits::ecs(), Faults::none());
    let ecs = proxy.ecs(&fx.account, ATTEMPT);

    let first = run_task(&fx, &ecs, "jobs", "thumbnails", "token-1", 1)
        .await
        .unwrap();
    let clusters = fx
        .account
        .ecs()
        .describe_clusters()
        .clusters("jobs")
        .send()
        .await
        .unwrap();
    let cluster_arn = clusters.clusters()[0].cluster_arn().unwrap().to_string();
    assert_eq!(
        run_task(&fx, &ecs, &cluster_arn, "thumbnails", "token-1", 1)
            .await
            .unwrap(),
        first,
        "a cluster ARN is the same cluster"
    );
    let other = run_task(&fx, &ecs, "other", "thumbnails", "token-1", 1)
        .await
        .unwrap();
    assert_ne!(other, first, "another cluster does not know the token");

    proxy.advance(Duration::from_secs(23 * 3600));
    assert_eq!(
        run_task(&fx, &ecs, "jobs", "thumbnails", "token-1", 1)
            .await
            .unwrap(),
        first,
        "remembered after 23 hours"
    );
    proxy.advance(Duration::from_secs(3600));
    let later = run_task(&fx, &ecs, "jobs", "thumbnails", "token-1", 1)
        .await
        .unwrap();
    assert_ne!(later, first, "forgotten after 24 hours");
    assert_eq!(proxy.launches()["token-1"].launches, 3);
}

#[tokio::test]
async fn runtask_is_throttled_past_20_calls_a_second() {
    let fx = LaunchFixture::new().await;
    let proxy = FaultProxy::new(Limits::ecs(), Faults::none());
    let ecs = no_retries(proxy.ecs(&fx.account, Duration::from_secs(10)));

    let started = Instant::now();
    let calls = (0..40).map(|i| {
        let (fx, ecs) = (&fx, ecs.clone());
        async move { run_task(fx, &ecs, "jobs", "thumbnails", &format!("t-{i}"), 1).await }
    });
    let results = futures_join_all(calls).await;
    let elapsed = started.elapsed().as_secs_f64();

    let ok = results.iter().filter(|r| r.is_ok()).count();
    let refilled = (elapsed * 20.0).ceil() as usize;
    assert!(
        ok >= 20 && ok <= 20 + refilled,
        "{ok} calls admitted in {elapsed:.2}s"
    );
    for err in results.into_iter().filter_map(Result::err) {
        let service = err.as_service_error().expect("a service error");
        assert_eq!(
            aws_smithy_types::error::metadata::ProvideErrorMetadata::code(service),
            Some("ThrottlingException")
        );
        assert_eq!(
            aws_smithy_types::error::metadata::ProvideErrorMetadata::message(service),
            Some("Rate exceeded")
        );
        let classified = jobrunner_aws::error::from_sdk("RunTask", err);
        assert!(
            matches!(classified, jobrunner_aws::Error::Throttled { .. })
                && classified.is_retryable(),
            "{classified:?}"
        );
    }
    assert_eq!(proxy.stats().throttled as usize, 40 - ok);
}

#[tokio::test]
async fn fargate_launches_burst_to_100_tasks() {
    let fx = LaunchFixture::new().await;
    let proxy = FaultProxy::new(Limits::ecs(), Faults::none());
    let ecs = no_retries(proxy.ecs(&fx.account, Duration::from_secs(10)));

    // 12 calls of 10 tasks at once: the RunTask bucket (20) admits them all, the launch
    // bucket (100) only 10 of them.
    let calls = (0..12).map(|i| {
        let (fx, ecs) = (&fx, ecs.clone());
        async move { run_task(fx, &ecs, "jobs", "thumbnails", &format!("ten-{i}"), 10).await }
    });
    let started = Instant::now();
    let results = futures_join_all(calls).await;
    let elapsed = started.elapsed().as_secs_f64();
    let ok: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    // The launch bucket refills 20 tasks a second: a slow machine spreading the calls out
    // may admit one call of 10 more per half second.
    let refilled = (elapsed * 20.0 / 10.0).floor() as usize;
    assert!(
        ok.len() >= 10 && ok.len() <= 10 + refilled,
        "{} calls admitted in {elapsed:.2}s",
        ok.len()
    );
    assert!(ok.iter().all(|arns| arns.len() == 10));
    let stats = proxy.stats();
    let refused = (12 - ok.len()) as u64;
    assert_eq!(
        (
            stats.throttled,
            stats.throttled_launches,
            stats.tasks_started
        ),
        (refused, refused, 10 * ok.len() as u64)
    );
}

#[tokio::test]
async fn a_lost_answer_is_retried_by_the_sdk_and_replayed_not_relaunched() {
    let fx = LaunchFixture::new().await;
    let config = fx.config(THUMBNAILS);
    for (n, fault) in [
        Fault::ServerError,
        Fault::Unavailable,
        Fault::Dropped,
        Fault::Slow,
    ]
    .into_iter()
    .enumerate()
    {
        let proxy = FaultProxy::new(
            Limits::ecs(),
            Faults {
                slow_delay: SLOW,
                ..Faults::none()
            },
        );
        proxy.inject(Injection::new("RunTask", fault, Phase::After, 1));
        let ecs = ports(proxy.ecs(&fx.account, ATTEMPT));
        let key = format!("images/lost-{n}.jpg");
        let outcome = jobrunner_core::launcher::process(
            &config,
            &ecs,
            &decoded(&object_created(&key, 100 + n as u64)),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        assert!(
            matches!(outcome, Outcome::Launched { .. }),
            "{fault:?}: {outcome:?}"
        );
        // The first call reached moto, then its answer was lost: every later call (the SDK's
        // retry, and any more a loaded machine's timeouts cause) is a replay.
        let stats = proxy.stats();
        assert!(stats.runtask_calls() >= 2, "{fault:?}: {stats:?}");
        assert_eq!(
            (stats.tasks_started, stats.faults_of(fault)),
            (1, 1),
            "{fault:?}: {stats:?}"
        );
        assert_eq!(
            stats.replays,
            stats.runtask_calls() - 1,
            "{fault:?}: {stats:?}"
        );
    }
    assert_eq!(
        fx.tasks("jobrunner/thumbnails").await.len(),
        4,
        "one task per event"
    );
}

#[tokio::test]
async fn a_fault_before_the_request_arrives_is_retried_and_launches_once() {
    let fx = LaunchFixture::new().await;
    let config = fx.config(THUMBNAILS);
    let proxy = FaultProxy::new(
        Limits::ecs(),
        Faults {
            slow_delay: SLOW,
            ..Faults::none()
        },
    );
    for fault in [Fault::ServerError, Fault::Unavailable, Fault::Dropped] {
        proxy.inject(Injection::new("RunTask", fault, Phase::Before, 1));
    }
    let ecs = ports(proxy.ecs(&fx.account, ATTEMPT));
    let outcome = jobrunner_core::launcher::process(
        &config,
        &ecs,
        &decoded(&object_created("images/before.jpg", 7)),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert!(matches!(outcome, Outcome::Launched { .. }), "{outcome:?}");
    // Three calls never reached moto, the fourth launched; any later one (a timeout on a
    // loaded machine) is a replay.
    let stats = proxy.stats();
    assert!(stats.runtask_calls() >= 4, "{stats:?}");
    assert_eq!(
        (stats.tasks_started, stats.faults_injected()),
        (1, 3),
        "{stats:?}"
    );
    assert_eq!(stats.replays, stats.runtask_calls() - 4, "{stats:?}");
}

#[tokio::test]
async fn without_client_token_memory_a_lost_answer_launches_twice() {
    // The control experiment: moto alone (no token memory) turns one retry into a duplicate,
    // which is what the proxy's counters would catch.
    let fx = LaunchFixture::new().await;
    let proxy = FaultProxy::new(
        Limits {
            remember_client_tokens: false,
            ..Limits::ecs()
        },
        Faults::none(),
    );
    proxy.inject(Injection::new(
        "RunTask",
        Fault::ServerError,
        Phase::After,
        1,
    ));
    let ecs = ports(proxy.ecs(&fx.account, ATTEMPT));
    jobrunner_core::launcher::process(
        &fx.config(THUMBNAILS),
        &ecs,
        &decoded(&object_created("images/dup.jpg", 9)),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(proxy.tasks_per_object()["uploads/images/dup.jpg"], 2);
    assert_eq!(fx.tasks("jobrunner/thumbnails").await.len(), 2);
}

#[tokio::test]
async fn no_capacity_falls_back_to_the_next_provider_then_fails_back_to_the_queue() {
    let fx = LaunchFixture::new().await;
    let config = fx.config(&THUMBNAILS.replace(
        "container = \"app\"",
        "container = \"app\"\ncapacity = [\"FARGATE_SPOT\", \"FARGATE\"]",
    ));
    let proxy = FaultProxy::new(Limits::ecs(), Faults::none());
    let ecs = ports(proxy.ecs(&fx.account, ATTEMPT));

    // Spot has no capacity: the plan's next attempt (FARGATE, its own token) starts the task.
    proxy.inject(
        Injection::new("RunTask", Fault::NoCapacity, Phase::Before, 1).matching("FARGATE_SPOT"),
    );
    let outcome = jobrunner_core::launcher::process(
        &config,
        &ecs,
        &decoded(&object_created("images/spot.jpg", 11)),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert!(matches!(outcome, Outcome::Launched { .. }), "{outcome:?}");
    assert_eq!(proxy.launches().len(), 1);

    // Neither has capacity: the message goes back to its queue; its redelivery launches.
    proxy.inject(Injection::new(
        "RunTask",
        Fault::NoCapacity,
        Phase::Before,
        2,
    ));
    let batch = sqs_batch(&[("m1".into(), object_created("images/none.jpg", 12))]);
    let response = jobrunner_launcher::handle(&config, &ecs, &Invocation::now(batch.clone()))
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), ["m1"]);
    let response = jobrunner_launcher::handle(&config, &ecs, &Invocation::now(batch.clone()))
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    assert_eq!(proxy.stats().faults_of(Fault::NoCapacity), 3);
    assert_eq!(
        proxy
            .tasks_per_object()
            .values()
            .copied()
            .collect::<Vec<_>>(),
        [1, 1]
    );
    assert_eq!(fx.tasks("jobrunner/thumbnails").await.len(), 2);
}

#[tokio::test]
async fn throttling_beyond_the_sdk_retries_sends_the_message_back_as_retryable() {
    let fx = LaunchFixture::new().await;
    let limits = Limits::ecs().with_api(
        "RunTask",
        Rate {
            burst: 1.0,
            per_second: 0.001,
        },
    );
    let proxy = FaultProxy::new(limits, Faults::none());
    let ecs = ports(proxy.ecs(&fx.account, ATTEMPT));
    let config = fx.config(THUMBNAILS);

    let batch = sqs_batch(&[
        ("a".into(), object_created("images/t1.jpg", 21)),
        ("b".into(), object_created("images/t2.jpg", 22)),
    ]);
    let response = jobrunner_launcher::handle(&config, &ecs, &Invocation::now(batch.clone()))
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), ["b"]);
    let stats = proxy.stats();
    assert_eq!(
        stats.throttled,
        u64::from(jobrunner_aws::client::MAX_ATTEMPTS),
        "every SDK attempt was throttled"
    );

    let err = jobrunner_core::launcher::process(
        &config,
        &ecs,
        &decoded(&object_created("images/t2.jpg", 22)),
        chrono::Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn exhausted_server_errors_are_transient() {
    let fx = LaunchFixture::new().await;
    let proxy = FaultProxy::new(Limits::ecs(), Faults::none());
    let ecs = ports(proxy.ecs(&fx.account, ATTEMPT));
    let plan_event = decoded(&object_created("images/5xx.jpg", 31));
    for fault in [Fault::ServerError, Fault::Unavailable, Fault::Dropped] {
        proxy.inject(Injection::new(
            "RunTask",
            fault,
            Phase::Before,
            jobrunner_aws::client::MAX_ATTEMPTS,
        ));
        let err = jobrunner_core::launcher::process(
            &fx.config(THUMBNAILS),
            &ecs,
            &plan_event,
            chrono::Utc::now(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                jobrunner_core::Error::Call(jobrunner_aws::Error::Transient { .. })
            ),
            "{fault:?}: {err:?}"
        );
        assert!(err.is_retryable());
    }
    assert_eq!(proxy.stats().tasks_started, 0);
}

#[tokio::test]
async fn seeded_faults_repeat_run_after_run_and_nothing_is_lost_or_doubled() {
    keep_tasks_running();
    // Twice, each run on a fresh account. Draws are a hash of (seed, token, arrival), pinned by
    // the proxy's own `draws_are_deterministic_and_roughly_uniform`; totals are not compared
    // across runs, since a loaded machine's extra timeouts add arrivals (and so draws).
    for _ in 0..2 {
        let fx = LaunchFixture::new().await;
        let faults = Faults {
            slow_delay: SLOW,
            ..Faults::each(42, 0.05, &["RunTask"])
        };
        let proxy = FaultProxy::new(Limits::unthrottled(), faults);
        let ecs = ports(proxy.ecs(&fx.account, ATTEMPT));
        let events: Vec<(String, Value)> = (0..40)
            .map(|i| {
                (
                    format!("m{i}"),
                    object_created(&format!("images/seeded-{i}.jpg"), 1000 + i),
                )
            })
            .collect();
        drain(&fx.config(THUMBNAILS), &ecs, events, 10).await;

        let per_object = proxy.tasks_per_object();
        assert_eq!(per_object.len(), 40, "every object launched");
        assert!(
            per_object.values().all(|&n| n == 1),
            "no object launched twice: {per_object:?}"
        );
        assert_eq!(fx.tasks("jobrunner/thumbnails").await.len(), 40);
        assert!(proxy.stats().faults_injected() > 0, "{:?}", proxy.stats());
    }
}

#[tokio::test]
async fn a_cap_check_under_faults_still_launches_once() {
    // With max_running the launcher calls ListTasks first; faults there must not double launches.
    keep_tasks_running();
    let fx = LaunchFixture::new().await;
    let config = fx.config(&THUMBNAILS.replace(
        "container = \"app\"",
        "container = \"app\"\nmax_running = 1000",
    ));
    let faults = Faults {
        slow_delay: SLOW,
        ..Faults::each(7, 0.05, &["RunTask", "ListTasks"])
    };
    let proxy = FaultProxy::new(Limits::unthrottled(), faults);
    let ecs = ports(proxy.ecs(&fx.account, ATTEMPT));
    let events: Vec<(String, Value)> = (0..20)
        .map(|i| {
            (
                format!("c{i}"),
                object_created(&format!("images/cap-{i}.jpg"), 2000 + i),
            )
        })
        .collect();
    drain(&config, &ecs, events, 10).await;
    assert!(proxy.tasks_per_object().values().all(|&n| n == 1));
    assert_eq!(proxy.tasks_per_object().len(), 20);
    assert!(proxy.stats().calls_of("ListTasks") >= 20);
}

#[tokio::test]
async fn the_launch_port_reports_a_replay_as_started() {
    // ECS gives no sign that an answer is a replay: the adapter reports Started both times,
    // and only one task exists.
    let fx = LaunchFixture::new().await;
    let proxy = FaultProxy::ecs_faithful();
    let ecs = ports(proxy.ecs(&fx.account, ATTEMPT));
    let config = fx.config(THUMBNAILS);
    let Event::ObjectCreated(object) = decoded(&object_created("images/port.jpg", 41)) else {
        unreachable!()
    };
    let plan = jobrunner_core::plan::plan_object(&config, "thumbnails", &object).unwrap();
    let event = Event::ObjectCreated(object);
    let now = chrono::Utc::now();
    let first = launch(&config, &ecs, &event, Ok(plan.clone()), now)
        .await
        .unwrap();
    let second = launch(&config, &ecs, &event, Ok(plan), now).await.unwrap();
    assert!(matches!(&first, Outcome::Launched { .. }));
    assert_eq!(first, second);
}

/// Joins futures concurrently (no `futures` crate in the workspace).
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(out) => outputs[i] = Some(out),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}
