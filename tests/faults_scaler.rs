//! The scaler through the fault proxy (`support/fault_proxy.rs`): SQS and ECS faults.

use std::time::Duration;

use jobrunner_integration_tests::fault_proxy::{
    Fault, FaultProxy, Faults, Injection, Limits, Phase,
};
use jobrunner_integration_tests::fixtures::worker_environment;

/// Per-attempt timeout of the clients in these tests: injected slow responses come later.
const ATTEMPT: Duration = Duration::from_secs(1);
const SLOW: Duration = Duration::from_secs(2);
const STATE_TABLE: &str = "jobrunner-state";

type ProxiedScaler = jobrunner_integration_tests::scaler::MotoScaler;

/// An account with cluster `jobs`, service `order-workers` (desired 0), queue `orders` and the
/// state table; the scaler's SQS and ECS calls go through `proxy`.
async fn scaler_world(
    proxy: &FaultProxy,
) -> (jobrunner_integration_tests::Account, String, ProxiedScaler) {
    let account = jobrunner_integration_tests::Account::new();
    let queue_url = worker_environment(&account, STATE_TABLE).await;
    let text = format!(
        "[state]\ntable = \"{STATE_TABLE}\"\n\n[workers.orders]\ncluster = \"jobs\"\nservice = \"order-workers\"\nqueue_url = \"{queue_url}\"\n\
         messages_per_task = 10\nmax_tasks = 20\nscale_in_after_seconds = 60\n"
    );
    let config =
        jobrunner_core::Config::parse(&text, jobrunner_core::config::Format::Toml).unwrap();
    let scaler = ProxiedScaler::new(
        config.workers.clone(),
        jobrunner_aws::sqs_queue::SqsQueues::new(proxy.sqs(&account, ATTEMPT)),
        jobrunner_aws::ecs_service::EcsServices::new(proxy.ecs(&account, ATTEMPT)),
        jobrunner_aws::state_store::StateStore::new(account.dynamodb(), STATE_TABLE),
    );
    (account, queue_url, scaler)
}

/// One scheduled invocation, then a minute passes; returns whether it failed and the service's
/// desired count afterwards (read from moto directly).
async fn scale_tick(
    scaler: &ProxiedScaler,
    account: &jobrunner_integration_tests::Account,
) -> (bool, i32) {
    let report = scaler.tick().await;
    let services = account
        .ecs()
        .describe_services()
        .cluster("jobs")
        .services("order-workers")
        .send()
        .await
        .unwrap();
    (
        !report.failed.is_empty(),
        services.services()[0].desired_count(),
    )
}

#[tokio::test]
async fn the_scaler_holds_its_course_under_sqs_and_ecs_faults_and_recovers_when_they_stop() {
    let operations = ["GetQueueAttributes", "DescribeServices", "UpdateService"];
    let faults = Faults {
        slow_delay: SLOW,
        capacity: 0.0,
        ..Faults::each(11, 0.1, &operations)
    };
    let proxy = FaultProxy::new(Limits::unthrottled(), faults);
    let (account, queue_url, scaler) = scaler_world(&proxy).await;
    let sqs = account.sqs();
    for chunk in 0..7 {
        let entries = (0..5)
            .map(|i| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(format!("order {chunk}-{i}"))
                    .build()
                    .unwrap()
            })
            .collect();
        sqs.send_message_batch()
            .queue_url(&queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
    }
    // Whole samples fail too: the queue cannot be read, the service cannot be read, and an
    // update ECS carried out looks failed to the scaler.
    let max = jobrunner_aws::client::MAX_ATTEMPTS;
    proxy.inject(Injection::new(
        "GetQueueAttributes",
        Fault::ServerError,
        Phase::Before,
        max,
    ));
    proxy.inject(Injection::new(
        "DescribeServices",
        Fault::Unavailable,
        Phase::Before,
        max,
    ));
    proxy.inject(Injection::new(
        "UpdateService",
        Fault::Dropped,
        Phase::After,
        max,
    ));

    // 35 messages need 4 tasks: a failed sample changes nothing, and the count only goes up.
    let mut series = vec![];
    for _ in 0..8 {
        series.push(scale_tick(&scaler, &account).await);
    }
    let failures = series.iter().filter(|(failed, _)| *failed).count();
    let counts: Vec<i32> = series.iter().map(|(_, n)| *n).collect();
    assert!(failures >= 3, "the forced failures happened: {series:?}");
    assert!(
        counts.windows(2).all(|w| w[0] <= w[1]),
        "no oscillation: {counts:?}"
    );
    assert_eq!(counts.last(), Some(&4), "{counts:?}");

    // The workers take every message: in flight, they still need their 4 tasks.
    let mut handles = vec![];
    while handles.len() < 35 {
        let out = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(900)
            .send()
            .await
            .unwrap();
        handles.extend(
            out.messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.receipt_handle),
        );
    }
    for _ in 0..5 {
        let (_, desired) = scale_tick(&scaler, &account).await;
        assert_eq!(desired, 4, "no scale-in below what in-flight messages need");
    }

    // Faults stop and the work is done: back to zero after the 60 s window, and it stays there.
    proxy.set_faults(Faults::none());
    for handle in &handles {
        sqs.delete_message()
            .queue_url(&queue_url)
            .receipt_handle(handle)
            .send()
            .await
            .unwrap();
    }
    let mut after = vec![];
    for _ in 0..5 {
        let (failed, desired) = scale_tick(&scaler, &account).await;
        assert!(!failed);
        after.push(desired);
    }
    assert_eq!(
        after,
        [4, 0, 0, 0, 0],
        "holds for the window, then scales to zero"
    );
    assert!(proxy.stats().faults_injected() > 12, "{:?}", proxy.stats());
}
