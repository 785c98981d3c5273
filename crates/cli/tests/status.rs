//! `jobrunner status` against moto server: a state table with a capped job's slot record and
//! finished runs, a launcher queue whose dead-letter queue holds messages, a worker queue and
//! service, a queue that does not exist; the CLI run as a user runs it. `--watch` is driven
//! through a pseudo-terminal: two refreshes drawn in place, then Ctrl-C.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration as StdDuration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{Duration, Utc};
use jobrunner_aws::Adapters;
use jobrunner_aws::state_store::StateStore;
use jobrunner_core::Config;
use jobrunner_core::class::Class;
use jobrunner_core::config::Format;
use jobrunner_core::ledger::keys;
use jobrunner_core::ledger::slots::{Holder, Waiter};
use jobrunner_core::ledger::{Ledger, Slots, Stored};
use jobrunner_core::run::{Attempt, Run, RunInput, RunState};
use serde_json::Value;

// Shared with the `run` tests, which use all of it.
#[allow(dead_code)]
mod moto;

use moto::Account;

/// One test's deployment in its own moto account.
struct Deployment {
    account: Account,
    config: PathBuf,
    /// The worker service's counts as moto reports them.
    service_desired: i32,
    service_running: i32,
    service_pending: i32,
    missing_queue: String,
    tracker_dlq: String,
}

impl Deployment {
    async fn new(name: &str) -> Deployment {
        let account = Account::new();
        let sdk = account.sdk();
        let table = format!("jobrunner-state-{name}");
        moto::create_state_table(&account.sdk(), &table).await;

        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let queue = |name: &'static str, attributes: Option<(QueueAttributeName, String)>| {
            let sqs = sqs.clone();
            async move {
                let mut request = sqs.create_queue().queue_name(name);
                if let Some((k, v)) = attributes {
                    request = request.attributes(k, v);
                }
                request
                    .send()
                    .await
                    .unwrap()
                    .queue_url()
                    .unwrap()
                    .to_string()
            }
        };
        let send = |url: String, n: usize| {
            let sqs = sqs.clone();
            async move {
                for i in 0..n {
                    sqs.send_message()
                        .queue_url(&url)
                        .message_body(format!("m{i}"))
                        .send()
                        .await
                        .unwrap();
                }
            }
        };
        let arn = |url: String| {
            let sqs = sqs.clone();
            async move {
                sqs.get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(QueueAttributeName::QueueArn)
                    .send()
                    .await
                    .unwrap()
                    .attributes()
                    .unwrap()[&QueueAttributeName::QueueArn]
                    .clone()
            }
        };
        let redrive = |arn: String| {
            Some((
                QueueAttributeName::RedrivePolicy,
                format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"5"}}"#),
            ))
        };
        let launcher_dlq = queue("launcher-dlq", None).await;
        send(launcher_dlq.clone(), 2).await;
        let launcher = queue("launcher", redrive(arn(launcher_dlq).await)).await;
        let orders_dlq = queue("orders-dlq", None).await;
        send(orders_dlq.clone(), 1).await;
        let orders = queue("orders", redrive(arn(orders_dlq).await)).await;
        send(orders.clone(), 3).await;
        let tracker_dlq = queue("tracker-dlq", None).await;
        let missing_queue = launcher.replace("/launcher", "/no-such-queue");

        let ecs = aws_sdk_ecs::Client::new(&sdk);
        ecs.create_cluster()
            .cluster_name("jobs")
            .send()
            .await
            .unwrap();
        ecs.register_task_definition()
            .family("order-worker")
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("app")
                    .image("busybox")
                    .memory(512)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let service = ecs
            .create_service()
            .cluster("jobs")
            .service_name("order-workers")
            .task_definition("order-worker")
            .desired_count(2)
            .send()
            .await
            .unwrap();
        let service = service.service().unwrap();

        let text = format!(
            r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]
capacity = ["FARGATE"]

[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
max_running = 5

[jobs.report]
task_definition = "report"
container = "app"

[workers.orders]
cluster = "jobs"
service = "order-workers"
queue_url = "{orders}"
messages_per_task = 10
max_tasks = 5

[workers.mail]
cluster = "jobs"
service = "mail-workers"
queue_url = "{missing_queue}"
messages_per_task = 10
max_tasks = 5

[state]
table = "{table}"
retention_days = 7

[launcher]
queue_url = "{launcher}"
"#
        );
        let config = std::env::temp_dir().join(format!(
            "jobrunner-cli-status-{}-{name}.toml",
            std::process::id()
        ));
        std::fs::write(&config, &text).unwrap();
        let parsed = Config::parse(&text, Format::Toml).unwrap();
        let state = parsed.state.expect("[state]");
        let adapters = Adapters {
            state: Some(StateStore::from_sdk_config(&sdk, &table)),
            ..Adapters::default()
        };
        let ledger = Ledger::new(&adapters, &state);
        let now = Utc::now();
        let ago = |minutes: i64| now - Duration::minutes(minutes);

        // thumbnails: 3 runs hold a slot, 1 task runs untracked, 2 runs wait in line.
        let mut slots = Slots {
            untracked: 1,
            ..Slots::default()
        };
        for i in 1..=3 {
            slots.holders.insert(
                format!("holder{i}"),
                Holder {
                    attempt: 1,
                    since: ago(5),
                },
            );
        }
        for i in 1..=2 {
            slots.line.push(Waiter {
                run_id: format!("waiter{i}"),
                queued_at: ago(3),
                seen_at: ago(0),
            });
        }
        put(&ledger, &keys::slots_key("thumbnails"), slots).await;

        let mut failed = finished("run-failed", "thumbnails", RunState::Failed, ago(30));
        failed.attempts.push(Attempt {
            number: 1,
            class: Some(Class::Oom),
            reason: Some("OutOfMemoryError: container killed".into()),
            exit_codes: BTreeMap::from([("app".into(), 137)]),
            ..Attempt::default()
        });
        let timed_out = finished("run-timed-out", "report", RunState::TimedOut, ago(20));
        let ok = finished("run-ok", "report", RunState::Succeeded, ago(10));
        for run in [failed, timed_out, ok] {
            put(&ledger, &keys::run_key(&run.run_id), run).await;
        }

        Deployment {
            account,
            config,
            service_desired: service.desired_count(),
            service_running: service.running_count(),
            service_pending: service.pending_count(),
            missing_queue,
            tracker_dlq,
        }
    }

    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "status",
            "--config",
            self.config.to_str().unwrap(),
            "--dlq",
            &self.tracker_dlq,
        ];
        args.extend_from_slice(extra);
        args
    }

    fn status(&self, extra: &[&str]) -> Output {
        self.account.jobrunner(&self.args(extra))
    }
}

/// A run that ended in `state`, last updated `at` (its queued time too).
fn finished(id: &str, job: &str, state: RunState, at: chrono::DateTime<Utc>) -> Run {
    let input = RunInput::Schedule {
        schedule: "hourly".into(),
        scheduled_time: at,
    };
    let mut run = Run::new(id, job, input, at, at);
    run.state = state;
    run
}

async fn put<T: Stored + Clone>(ledger: &Ledger<'_, Adapters>, key: &str, value: T) {
    ledger
        .update(key, None, Utc::now(), |item: &mut Option<T>| {
            *item = Some(value.clone());
            true
        })
        .await
        .expect("ledger write");
}

fn succeeded(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "exit {:?}\nstderr: {}\nstdout: {stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
    );
    stdout
}

#[tokio::test]
async fn json_reports_slots_failures_workers_and_dead_letters() {
    let d = Deployment::new("json").await;
    let json: Value = serde_json::from_str(&succeeded(&d.status(&["--json"]))).unwrap();

    assert_eq!(
        json["jobs"],
        serde_json::json!([
            {"job": "report", "max_running": null, "slots": null},
            {"job": "thumbnails", "max_running": 5, "slots": {"running": 4, "waiting": 2}},
        ])
    );
    let failures = json["failures"].as_array().expect("failures read");
    let listed: Vec<(&str, &str)> = failures
        .iter()
        .map(|f| (f["run_id"].as_str().unwrap(), f["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [("run-timed-out", "timed_out"), ("run-failed", "failed")]
    );
    let why = failures[1]["why"].as_str().unwrap();
    assert!(
        why.starts_with("#1 oom exit 137") && why.ends_with(": OutOfMemoryError: container killed"),
        "{why}"
    );

    let workers = json["workers"].as_array().unwrap();
    assert_eq!(workers[0]["worker"], "mail");
    assert!(
        workers[0]["queue"]["error"]
            .as_str()
            .unwrap()
            .contains("GetQueueAttributes"),
        "{}",
        workers[0]
    );
    assert!(
        workers[0]["service"]["error"]
            .as_str()
            .unwrap()
            .contains("mail-workers"),
        "{}",
        workers[0]
    );
    assert_eq!(workers[1]["worker"], "orders");
    assert_eq!(
        workers[1]["queue"],
        serde_json::json!({"visible": 3, "in_flight": 0, "delayed": 0})
    );
    assert_eq!(workers[1]["service"]["desired"], d.service_desired);
    assert_eq!(workers[1]["service"]["running"], d.service_running);
    assert_eq!(workers[1]["service"]["pending"], d.service_pending);
    assert_eq!(d.service_desired, 2);

    let dlqs: Vec<(&str, &Value)> = json["dead_letter_queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["of"].as_str().unwrap(), &q["messages"]))
        .collect();
    assert_eq!(
        dlqs,
        [
            ("launcher", &Value::from(2)),
            ("worker orders", &Value::from(1)),
            ("tracker-dlq", &Value::from(0)),
        ]
    );
    assert!(
        json["dead_letter_queues"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with("/launcher-dlq")
    );
    assert!(d.missing_queue.ends_with("/no-such-queue"));
}

#[tokio::test]
async fn text_shows_one_screen_with_error_cells() {
    let d = Deployment::new("text").await;
    let text = succeeded(&d.status(&[]));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("jobrunner status at "), "{text}");
    assert!(lines[0].ends_with("(table jobrunner-state-text)"), "{text}");
    let squeezed: Vec<String> = lines
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let has = |line: &str| {
        assert!(
            squeezed.iter().any(|l| l == line),
            "no line '{line}' in:\n{text}"
        );
    };
    has("JOB RUNNING CAP WAITING");
    has("report - none -");
    has("thumbnails 4 5 2");
    has("WORKER VISIBLE IN FLIGHT DELAYED DESIRED RUNNING PENDING");
    has("mail error[1] - - error[2] - -");
    has(&format!(
        "orders 3 0 0 {} {} {}",
        d.service_desired, d.service_running, d.service_pending
    ));
    assert!(
        squeezed
            .iter()
            .any(|l| l.starts_with("worker orders 1 http") && l.ends_with("/orders-dlq")),
        "{text}"
    );
    assert!(
        squeezed.iter().any(|l| l.starts_with("launcher 2 ")),
        "{text}"
    );
    assert!(
        squeezed.iter().any(|l| l.starts_with("tracker-dlq 0 ")),
        "{text}"
    );
    assert!(
        squeezed
            .iter()
            .any(|l| l.contains(" thumbnails failed run-failed #1 oom exit 137")),
        "{text}"
    );
    assert!(
        squeezed
            .iter()
            .any(|l| l.starts_with("[1] GetQueueAttributes")),
        "{text}"
    );
    assert!(
        squeezed
            .iter()
            .any(|l| l.starts_with("[2] DescribeServices") && l.contains("mail-workers")),
        "{text}"
    );
    // A plain run writes no terminal control sequences.
    assert!(!text.contains('\x1b'), "{text:?}");
}

#[test]
fn bad_watch_intervals_fail_before_any_call() {
    let config = std::env::temp_dir().join(format!(
        "jobrunner-cli-status-{}-watch.toml",
        std::process::id()
    ));
    std::fs::write(
        &config,
        "[defaults]\ncluster = \"c\"\nsubnets = [\"s\"]\n[jobs.a]\ntask_definition = \"t\"\ncontainer = \"c\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_jobrunner"))
        .args([
            "status",
            "--config",
            config.to_str().unwrap(),
            "--watch",
            "0",
        ])
        .env_remove("AWS_REGION")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "jobrunner: --watch 0: refresh every 1 to 3600 seconds\n"
    );
}

/// `jobrunner status --watch 1` in a pseudo-terminal (its controlling terminal, so Ctrl-C is
/// the terminal's SIGINT): two frames drawn in place, then Ctrl-C ends it with status 0.
#[tokio::test]
async fn watch_redraws_in_place_and_stops_on_ctrl_c() {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

    let d = Deployment::new("watch").await;
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    rustix::termios::tcsetwinsize(
        &master,
        rustix::termios::Winsize {
            ws_row: 60,
            ws_col: 200,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .unwrap();
    let slave_path = ptsname(&master, Vec::new()).unwrap();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(slave_path.to_str().unwrap())
        .unwrap();

    // `setsid --ctty` makes the terminal the command's controlling terminal.
    let inner = d.account.command(&d.args(&["--watch", "1"]));
    let mut command = Command::new("setsid");
    command
        .arg("--ctty")
        .arg(inner.get_program())
        .args(inner.get_args())
        .env_clear()
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    let mut child = command.spawn().expect("run setsid");
    drop(command);

    let mut terminal = std::fs::File::from(master);
    let mut reader = terminal.try_clone().unwrap();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        // Reading fails (EIO) once the last process holding the terminal exits.
        while let Ok(n) = reader.read(&mut buffer) {
            if n == 0 || tx.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = String::new();
    let read_until = |screen: &mut String, done: &dyn Fn(&str) -> bool, what: &str| {
        let deadline = Instant::now() + StdDuration::from_secs(30);
        while !done(screen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(bytes) => screen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!("no {what} within 30s; the terminal showed:\n{screen:?}"),
            }
        }
    };
    let frames = |s: &str| s.matches("\x1b[H").count();
    read_until(
        &mut screen,
        &|s: &str| frames(s) >= 2 && s.rfind("\x1b[J") > s.rfind("\x1b[H"),
        "two frames",
    );

    assert!(screen.starts_with("\x1b[?25l\x1b[H"), "{screen:?}");
    let last = &screen[screen.rfind("\x1b[H").unwrap()..];
    let lines: Vec<String> = last
        .trim_start_matches("\x1b[H")
        .split("\x1b[K\r\n")
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(lines[0].starts_with("jobrunner status at "), "{lines:?}");
    assert!(lines.iter().any(|l| l == "thumbnails 4 5 2"), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("launcher 2 ")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l == "every 1s; Ctrl-C to stop"),
        "{lines:?}"
    );
    // Redrawn in place: no full-screen clear, no terminal reset, no alternate screen.
    for sequence in ["\x1b[2J", "\x1b[3J", "\x1bc", "\x1b[?1049h"] {
        assert!(!screen.contains(sequence), "{sequence:?} in {screen:?}");
    }

    terminal.write_all(b"\x03").unwrap();
    let deadline = Instant::now() + StdDuration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running after Ctrl-C");
        std::thread::sleep(StdDuration::from_millis(50));
    };
    while let Ok(bytes) = rx.recv_timeout(StdDuration::from_millis(500)) {
        screen.push_str(&String::from_utf8_lossy(&bytes));
    }
    assert!(status.success(), "exit {status:?}; terminal: {screen:?}");
    assert!(
        screen.trim_end_matches("^C").ends_with("\x1b[?25h"),
        "the cursor is shown again: {screen:?}"
    );
}
