//! `jobrunner-worker` (the binary) against moto: each test has its own account and queue
//! (with a dead-letter queue), runs the worker as a separate process with `sh -c` scripts as
//! its command, and checks what the scripts recorded and what is left in the queues.
//!
//! Timing assertions are bounds that hold on a loaded machine, never exact counts of polls.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use jobrunner_integration_tests::Account;
use jobrunner_integration_tests::esm::QueueWithDlq;
use jobrunner_integration_tests::worker::{FakeAgent, command};
use tokio::process::Child;

/// The worker binary (`jobrunner_worker::cli::main`, built by this package).
const BINARY: &str = env!("CARGO_BIN_EXE_jobrunner-worker-under-test");

struct Fixture {
    account: Account,
    sqs: aws_sdk_sqs::Client,
    queue: QueueWithDlq,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A queue whose messages dead-letter after `max_receive_count` receives, with the given
    /// visibility timeout (seconds).
    async fn new(max_receive_count: u32, visibility_timeout: i32) -> Fixture {
        let account = Account::new();
        let queue =
            QueueWithDlq::create(&account, "jobs", max_receive_count, visibility_timeout).await;
        Fixture {
            sqs: account.sqs(),
            account,
            queue,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts the worker with `flags`, running `sh -c script` per message; the script finds its
    /// output directory in `$OUT`.
    async fn start(&self, flags: &[&str], script: &str, env: &[(&str, &str)]) -> Child {
        let mut worker = command(BINARY.as_ref(), &self.account, &self.out("worker.log")).await;
        worker
            .env("JOBRUNNER_QUEUE_URL", &self.queue.url)
            .env("OUT", self.dir.path())
            .envs(env.iter().copied())
            .args(flags)
            .args(["--", "sh", "-c", script]);
        worker.spawn().expect("start jobrunner-worker")
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self.out("worker.log")).unwrap_or_default()
    }

    /// Waits for the worker to exit by itself.
    async fn exit(&self, worker: &mut Child, within: Duration) -> ExitStatus {
        match tokio::time::timeout(within, worker.wait()).await {
            Ok(status) => status.expect("wait"),
            Err(_) => panic!(
                "the worker did not exit within {within:?}; logs:\n{}",
                self.logs()
            ),
        }
    }

    async fn send(&self, bodies: &[&str]) -> Vec<String> {
        let bodies: Vec<String> = bodies.iter().map(|b| b.to_string()).collect();
        self.queue.send_all(&self.sqs, &bodies).await
    }

    async fn depth(&self) -> u64 {
        QueueWithDlq::depth(&self.sqs, &self.queue.url).await
    }

    /// Messages visible right now (not in flight, not delayed).
    async fn visible(&self) -> u64 {
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .unwrap_or_default();
        attrs
            .get(&QueueAttributeName::ApproximateNumberOfMessages)
            .and_then(|v| v.parse().ok())
            .expect("ApproximateNumberOfMessages")
    }

    /// Lines of an output file (empty when the file does not exist).
    fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.out(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Waits until `path` exists.
async fn wait_for(path: &Path, within: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < within,
            "{} did not appear within {within:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sigterm(worker: &Child) {
    let pid = worker.id().expect("running") as i32;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test]
async fn each_message_is_processed_exactly_once() {
    let f = Fixture::new(5, 30).await;
    let bodies: Vec<String> = (0..20).map(|i| format!("job {i}")).collect();
    let ids = f.queue.send_all(&f.sqs, &bodies).await;
    let mut worker = f
        .start(
            &["--concurrency", "4", "--idle-exit", "3s"],
            r#"echo "$JOB_MESSAGE_ID" >> "$OUT/runs"; cat > "$OUT/body-$JOB_MESSAGE_ID"; sleep 0.2"#,
            &[],
        )
        .await;
    let status = f.exit(&mut worker, Duration::from_secs(90)).await;
    assert!(status.success(), "{status}; logs:\n{}", f.logs());
    let mut runs = f.lines("runs");
    runs.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(runs, expected, "each message once");
    for (id, body) in ids.iter().zip(&bodies) {
        assert_eq!(
            &std::fs::read_to_string(f.out(&format!("body-{id}"))).unwrap(),
            body
        );
    }
    assert_eq!(f.depth().await, 0, "every message deleted");
    assert!(f.queue.dlq_bodies(&f.sqs).await.is_empty());
}

#[tokio::test]
async fn command_gets_the_body_on_stdin_and_the_message_in_its_environment() {
    let f = Fixture::new(5, 30).await;
    let body = "héllo\nworld $(not run) *\n";
    let sent = f
        .sqs
        .send_message()
        .queue_url(&f.queue.url)
        .message_body(body)
        .message_attributes("tenant-id", string_attribute("String", "acme"))
        .message_attributes("Priority", string_attribute("Number", "5"))
        .message_attributes(
            "blob",
            MessageAttributeValue::builder()
                .data_type("Binary")
                .binary_value(Blob::new(vec![0u8, 1, 2]))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("send");
    let id = sent.message_id.unwrap();
    let mut worker = command(BINARY.as_ref(), &f.account, &f.out("worker.log")).await;
    worker
        .env("JOBRUNNER_QUEUE_URL", &f.queue.url)
        .env("OUT", f.dir.path())
        .args(["--idle-exit", "2s", "--"])
        // Arguments reach the command as they are: no shell expands `$(…)` or `*`.
        .args(["sh", "-c", r#"cat > "$OUT/stdin"; env | grep '^JOB_' | sort > "$OUT/env"; printf '%s' "$1" > "$OUT/arg""#])
        .args(["sh", "$(touch $OUT/expanded) *"]);
    let mut worker = worker.spawn().unwrap();
    let status = f.exit(&mut worker, Duration::from_secs(60)).await;
    assert!(status.success(), "{status}; logs:\n{}", f.logs());
    assert_eq!(std::fs::read_to_string(f.out("stdin")).unwrap(), body);
    let env: BTreeMap<String, String> = f
        .lines("env")
        .into_iter()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let expected: BTreeMap<String, String> = [
        ("JOB_MESSAGE_ID", id.as_str()),
        ("JOB_RECEIVE_COUNT", "1"),
        ("JOB_ATTR_tenant_id", "acme"),
        ("JOB_ATTR_Priority", "5"),
        ("JOB_ATTR_blob", "AAEC"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(env, expected);
    assert_eq!(
        std::fs::read_to_string(f.out("arg")).unwrap(),
        "$(touch $OUT/expanded) *"
    );
    assert!(!f.out("expanded").exists());
    assert_eq!(f.depth().await, 0);
}

fn string_attribute(data_type: &str, value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type(data_type)
        .string_value(value)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_failing_command_is_retried_then_dead_lettered() {
    let f = Fixture::new(2, 30).await;
    f.send(&["poison"]).await;
    let mut worker = f
        .start(
            &["--retry-delay", "1s", "--idle-exit", "4s"],
            r#"echo "$JOB_RECEIVE_COUNT" >> "$OUT/attempts"; exit 3"#,
            &[],
        )
        .await;
    let status = f.exit(&mut worker, Duration::from_secs(90)).await;
    assert!(status.success(), "{status}; logs:\n{}", f.logs());
    // Two attempts (maxReceiveCount 2), the second after the retry delay, not the 30 s
    // visibility timeout; then the queue moves it to the DLQ.
    assert_eq!(f.lines("attempts"), vec!["1", "2"], "logs:\n{}", f.logs());
    assert_eq!(f.queue.dlq_bodies(&f.sqs).await, vec!["poison"]);
    assert_eq!(f.depth().await, 0);
}

#[tokio::test]
async fn heartbeat_keeps_a_job_three_times_the_visibility_timeout_from_running_twice() {
    let f = Fixture::new(5, 3).await;
    f.send(&["long"]).await;
    let started = Instant::now();
    // Concurrency 2: the worker keeps polling while the job runs, so a lapsed visibility would
    // hand the message out again.
    let mut worker = f
        .start(
            &[
                "--visibility-timeout",
                "3s",
                "--concurrency",
                "2",
                "--idle-exit",
                "3s",
            ],
            r#"echo "$JOB_MESSAGE_ID $JOB_RECEIVE_COUNT" >> "$OUT/runs"; sleep 9"#,
            &[],
        )
        .await;
    // While the job runs, the message is never visible (without receiving it ourselves).
    wait_for(&f.out("runs"), Duration::from_secs(30)).await;
    let job_started = Instant::now();
    let mut samples = 0;
    while job_started.elapsed() < Duration::from_secs(8) {
        let visible = f.visible().await;
        assert_eq!(
            visible,
            0,
            "visible after {:?}; logs:\n{}",
            job_started.elapsed(),
            f.logs()
        );
        samples += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(samples >= 8);
    let status = f.exit(&mut worker, Duration::from_secs(60)).await;
    assert!(status.success(), "{status}; logs:\n{}", f.logs());
    assert!(started.elapsed() >= Duration::from_secs(9));
    let runs = f.lines("runs");
    assert_eq!(runs.len(), 1, "runs: {runs:?}; logs:\n{}", f.logs());
    assert!(runs[0].ends_with(" 1"), "{runs:?}");
    assert_eq!(f.depth().await, 0);
}

#[tokio::test]
async fn sigterm_lets_a_running_command_finish_within_the_grace() {
    let f = Fixture::new(5, 30).await;
    f.send(&["short"]).await;
    let mut worker = f
        .start(
            &["--grace", "30s"],
            r#"touch "$OUT/started"; trap 'touch "$OUT/signalled"' TERM; sleep 2; touch "$OUT/finished""#,
            &[],
        )
        .await;
    wait_for(&f.out("started"), Duration::from_secs(30)).await;
    let signalled = Instant::now();
    sigterm(&worker);
    let status = f.exit(&mut worker, Duration::from_secs(30)).await;
    assert!(status.success(), "{status}; logs:\n{}", f.logs());
    assert!(f.out("finished").exists(), "the command did not finish");
    assert!(
        !f.out("signalled").exists(),
        "the command was signalled within the grace"
    );
    assert!(signalled.elapsed() < Duration::from_secs(20));
    assert_eq!(f.depth().await, 0, "the finished message is deleted");
}

#[tokio::test]
async fn sigterm_past_the_grace_stops_the_command_and_returns_its_message() {
    let f = Fixture::new(5, 30).await;
    f.send(&["long"]).await;
    let mut worker = f
        .start(
            &["--grace", "1s"],
            r#"touch "$OUT/started"; sleep 60; touch "$OUT/finished""#,
            &[],
        )
        .await;
    wait_for(&f.out("started"), Duration::from_secs(30)).await;
    let signalled = Instant::now();
    sigterm(&worker);
    let status = f.exit(&mut worker, Duration::from_secs(30)).await;
    let took = signalled.elapsed();
    assert!(status.success(), "{status}; logs:\n{}", f.logs());
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(15),
        "{took:?}"
    );
    assert!(!f.out("finished").exists());
    // Visible again at once, not after the 30 s visibility timeout.
    let out = f
        .sqs
        .receive_message()
        .queue_url(&f.queue.url)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    let messages = out.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1, "logs:\n{}", f.logs());
    assert_eq!(messages[0].body.as_deref(), Some("long"));
    let count = messages[0]
        .attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .cloned();
    assert_eq!(count.as_deref(), Some("2"));
}

#[tokio::test]
async fn exits_after_the_idle_time() {
    let f = Fixture::new(5, 30).await;
    let started = Instant::now();
    let mut worker = f.start(&["--idle-exit", "2s"], "true", &[]).await;
    let status = f.exit(&mut worker, Duration::from_secs(30)).await;
    let took = started.elapsed();
    assert!(status.success(), "{status}; logs:\n{}", f.logs());
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(20),
        "{took:?}"
    );
}

#[tokio::test]
async fn holds_task_protection_while_a_message_is_in_hand() {
    let f = Fixture::new(5, 30).await;
    let agent = FakeAgent::start().await;
    f.send(&["one"]).await;
    let uri = agent.uri();
    let mut worker = f
        .start(
            &["--idle-exit", "3s"],
            r#"touch "$OUT/started"; sleep 2; touch "$OUT/finished""#,
            &[("ECS_AGENT_URI", uri.as_str())],
        )
        .await;
    wait_for(&f.out("started"), Duration::from_secs(30)).await;
    let while_running = agent.requests();
    let status = f.exit(&mut worker, Duration::from_secs(60)).await;
    assert!(status.success(), "{status}; logs:\n{}", f.logs());
    let last_running = while_running
        .last()
        .expect("protection requested before the command ran");
    assert_eq!(last_running.body["ProtectionEnabled"], true);
    assert!(
        last_running.body["ExpiresInMinutes"]
            .as_u64()
            .is_some_and(|m| m >= 1)
    );
    let all = agent.requests();
    for request in &all {
        assert_eq!(request.method, "PUT");
        assert_eq!(request.path, "/api/task-0123/task-protection/v1/state");
    }
    let last = all.last().unwrap();
    assert_eq!(
        last.body,
        serde_json::json!({"ProtectionEnabled": false}),
        "released when idle"
    );
    // Enabled once and released once for one short message (renewal is minutes away).
    assert!(all.len() <= 3, "{all:?}");
    assert_eq!(f.depth().await, 0);
}

#[tokio::test]
async fn no_protection_calls_without_messages() {
    let f = Fixture::new(5, 30).await;
    let agent = FakeAgent::start().await;
    let uri = agent.uri();
    let mut worker = f
        .start(
            &["--idle-exit", "1s"],
            "true",
            &[("ECS_AGENT_URI", uri.as_str())],
        )
        .await;
    let status = f.exit(&mut worker, Duration::from_secs(30)).await;
    assert!(status.success());
    assert!(agent.requests().is_empty());
}

#[tokio::test]
async fn bad_arguments_fail_with_a_named_reason() {
    let f = Fixture::new(5, 30).await;
    let mut worker = command(BINARY.as_ref(), &f.account, &f.out("worker.log")).await;
    let status = worker
        .args(["--visibility-timeout", "0s", "--", "true"])
        .env("JOBRUNNER_QUEUE_URL", &f.queue.url)
        .status()
        .await
        .unwrap();
    assert_eq!(status.code(), Some(2));
    assert_eq!(
        f.logs().trim(),
        "jobrunner-worker: --visibility-timeout: must be between 1s and 12h, got 0s"
    );
    let mut worker = command(BINARY.as_ref(), &f.account, &f.out("worker.log")).await;
    let status = worker
        .args(["--", "no-such-command-x"])
        .env("JOBRUNNER_QUEUE_URL", &f.queue.url)
        .status()
        .await
        .unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(
        f.logs()
            .contains("command not found or not executable: no-such-command-x")
    );
    let mut worker = command(BINARY.as_ref(), &f.account, &f.out("worker.log")).await;
    let status = worker.args(["--", "true"]).status().await.unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(
        f.logs()
            .contains("--queue-url: not given, and JOBRUNNER_QUEUE_URL is not set")
    );
}

#[tokio::test]
async fn an_unknown_queue_fails_the_worker() {
    let f = Fixture::new(5, 30).await;
    let missing = f.queue.url.replace("/jobs", "/no-such-queue");
    let mut worker = command(BINARY.as_ref(), &f.account, &f.out("worker.log")).await;
    let mut worker = worker
        .args(["--queue-url", &missing, "--idle-exit", "5s", "--", "true"])
        .spawn()
        .unwrap();
    let status = f.exit(&mut worker, Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(1), "logs:\n{}", f.logs());
    assert!(f.logs().contains("ReceiveMessage"), "{}", f.logs());
}
