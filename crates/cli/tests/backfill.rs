//! `jobrunner backfill` and `jobrunner dlq` against moto server: a bucket of 2,500 objects
//! under mixed prefixes and sizes, backfilled twice through the launcher's queue while "live"
//! S3 events for some of the same objects arrive, ends with exactly one task per object routed
//! (counted in moto's ECS by the tasks' `JOB_RUN_ID`, and in the ledger); a dry run sends
//! nothing; an interrupted backfill goes on from the key it printed; a dead-lettered message's
//! reason is listed; a manual submit is one run with trigger `manual` and its submitter. The launcher is the core's own `launcher::handle` over the AWS adapters,
//! fed from the queue as Lambda's SQS event source would.
//!
//! moto ignores `clientToken`, so a second task for one run could only be avoided by the
//! ledger's record of the run: these tests count tasks, which is what a user would see.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_ecs::types::{ContainerDefinition, DesiredStatus, NetworkMode};
use jobrunner_aws::Adapters;
use jobrunner_aws::ecs::EcsTasks;
use jobrunner_aws::sqs_queue::SqsQueues;
use jobrunner_aws::state_store::StateStore;
use jobrunner_core::config::Format;
use jobrunner_core::event::ObjectCreated;
use jobrunner_core::ledger::Ledger;
use jobrunner_core::ledger::keys;
use jobrunner_core::run::Run;
use jobrunner_core::{Config, token};
use serde_json::{Value, json};

mod moto;

use moto::Account;

/// One test's world: an account with a cluster, a bucket, the launcher's queue (with a DLQ),
/// the state table, and a config naming them.
struct World {
    account: Account,
    sdk: SdkConfig,
    /// S3 bucket names are global in moto (one namespace for all accounts): one per test.
    bucket: String,
    queue_url: String,
    dlq_url: String,
    config_path: PathBuf,
    config: Config,
    adapters: Adapters,
}

impl World {
    async fn new(name: &str) -> World {
        let account = Account::new();
        let sdk = account.sdk();
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        ecs.create_cluster()
            .cluster_name("jobs")
            .send()
            .await
            .expect("cluster");
        for family in ["thumbnails", "index"] {
            ecs.register_task_definition()
                .family(family)
                .network_mode(NetworkMode::Awsvpc)
                .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
                .cpu("256")
                .memory("512")
                .container_definitions(
                    ContainerDefinition::builder()
                        .name("app")
                        .image("busybox")
                        .memory(512)
                        .build(),
                )
                .send()
                .await
                .expect("task definition");
        }
        let subnet = ec2_first(&account.id, "DescribeSubnets", "subnetId");
        let group = ec2_first(&account.id, "DescribeSecurityGroups", "groupId");
        let bucket = format!("uploads-{name}-{}", std::process::id());
        s3(&sdk)
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("bucket");
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let dlq_url = sqs
            .create_queue()
            .queue_name("launcher-dlq")
            .send()
            .await
            .expect("dlq")
            .queue_url
            .unwrap();
        let dlq_arn = format!("arn:aws:sqs:{}:{}:launcher-dlq", moto::REGION, account.id);
        let queue_url = sqs
            .create_queue()
            .queue_name("launcher")
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
                json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}).to_string(),
            )
            .send()
            .await
            .expect("queue")
            .queue_url
            .unwrap();
        let table = format!("jobrunner-state-{name}");
        moto::create_state_table(&sdk, &table).await;
        let text = format!(
            r#"
[defaults]
cluster = "jobs"
subnets = ["{subnet}"]
security_groups = ["{group}"]
capacity = ["FARGATE"]

[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"

[jobs.index]
task_definition = "index"
container = "app"

[[triggers.s3]]
job = "thumbnails"
bucket = "{bucket}"
prefix = "images/"
suffix = ".jpg"

[[triggers.s3]]
job = "index"
bucket = "{bucket}"
prefix = "docs/"
max_size = 4096

[state]
table = "{table}"

[launcher]
queue_url = "{queue_url}"
"#
        );
        let config_path = std::env::temp_dir().join(format!(
            "jobrunner-backfill-{}-{name}.toml",
            std::process::id()
        ));
        std::fs::write(&config_path, &text).unwrap();
        let config = Config::parse(&text, Format::Toml).expect("config");
        let adapters = Adapters {
            ecs: Some(EcsTasks::new(ecs)),
            state: Some(StateStore::from_sdk_config(&sdk, &table)),
            queues: Some(SqsQueues::from_sdk_config(&sdk)),
            ..Adapters::default()
        };
        World {
            account,
            sdk,
            bucket,
            queue_url,
            dlq_url,
            config_path,
            config,
            adapters,
        }
    }

    /// `jobrunner backfill --config <this world's> args…`.
    fn backfill(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["backfill", "--config", self.config_path.to_str().unwrap()];
        all.extend_from_slice(args);
        self.account.jobrunner(&all)
    }

    /// Puts objects (key, size) concurrently; returns each key's ETag (unquoted).
    async fn put_objects(&self, objects: &[(String, usize)]) -> BTreeMap<String, String> {
        let mut set = tokio::task::JoinSet::new();
        for chunk in objects.chunks(objects.len().div_ceil(8).max(1)) {
            let client = s3(&self.sdk);
            let chunk = chunk.to_vec();
            let bucket = self.bucket.clone();
            set.spawn(async move {
                let mut etags = BTreeMap::new();
                for (key, size) in chunk {
                    // Content differs per key, so ETags do too.
                    let mut body = key.clone().into_bytes();
                    body.resize(size, b'.');
                    let out = client
                        .put_object()
                        .bucket(&bucket)
                        .key(&key)
                        .body(body.into())
                        .send()
                        .await
                        .expect("put object");
                    etags.insert(key, out.e_tag.unwrap().trim_matches('"').to_string());
                }
                etags
            });
        }
        let mut etags = BTreeMap::new();
        while let Some(part) = set.join_next().await {
            etags.extend(part.unwrap());
        }
        etags
    }

    /// A live "Object Created" event as S3 → EventBridge → the launcher's queue delivers it.
    async fn send_live(&self, key: &str, size: usize, etag: &str, sequencer: &str) {
        let event = json!({
            "version": "0", "id": format!("live-{sequencer}"), "detail-type": "Object Created",
            "source": "aws.s3", "account": self.account.id, "time": "2026-11-25T10:00:00Z",
            "region": moto::REGION, "resources": [format!("arn:aws:s3:::{}", self.bucket)],
            "detail": {"version": "0", "bucket": {"name": self.bucket},
                "object": {"key": key, "size": size, "etag": etag, "sequencer": sequencer},
                "request-id": "R", "requester": "123456789012", "reason": "PutObject"}
        });
        aws_sdk_sqs::Client::new(&self.sdk)
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(event.to_string())
            .send()
            .await
            .expect("live event");
    }

    /// Feeds the launcher's queue to the launcher until it is empty, as Lambda's SQS event
    /// source does (batches of 10; failed messages stay for a later receive). Returns the
    /// launcher's summed summary (launched, already launched, skipped) over the batches.
    async fn drain(&self) -> (usize, usize, usize) {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let (mut launched, mut already, mut skipped) = (0, 0, 0);
        loop {
            let out = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .send()
                .await
                .expect("receive");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return (launched, already, skipped);
            }
            let records: Vec<Value> = messages
                .iter()
                .map(|m| {
                    json!({"eventSource": "aws:sqs", "messageId": m.message_id(),
                        "body": m.body(), "receiptHandle": m.receipt_handle()})
                })
                .collect();
            let payload = json!({"Records": records});
            let handled = jobrunner_core::launcher::handle(
                &self.config,
                &self.adapters,
                &payload,
                chrono::Utc::now(),
            )
            .await
            .expect("launcher");
            assert!(
                handled.failed.is_empty(),
                "launcher failures: {:?}",
                handled.failed
            );
            launched += handled.summary.launched;
            already += handled.summary.already_launched;
            skipped += handled.summary.skipped;
            for m in &messages {
                sqs.delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }

    /// Every task in the cluster (any status) by its `JOB_RUN_ID`: run id → task count.
    async fn tasks_by_run(&self) -> BTreeMap<String, usize> {
        let ecs = aws_sdk_ecs::Client::new(&self.sdk);
        let mut arns = vec![];
        for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
            let mut next = None;
            loop {
                let page = ecs
                    .list_tasks()
                    .cluster("jobs")
                    .desired_status(status.clone())
                    .set_next_token(next)
                    .send()
                    .await
                    .expect("list tasks");
                arns.extend(page.task_arns.unwrap_or_default());
                next = page.next_token;
                if next.is_none() {
                    break;
                }
            }
        }
        let mut runs = BTreeMap::new();
        for chunk in arns.chunks(100) {
            let tasks = ecs
                .describe_tasks()
                .cluster("jobs")
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .expect("describe tasks")
                .tasks
                .unwrap_or_default();
            for task in tasks {
                let run_id = task
                    .overrides()
                    .and_then(|o| o.container_overrides().first())
                    .and_then(|c| {
                        c.environment()
                            .iter()
                            .find(|kv| kv.name() == Some("JOB_RUN_ID"))
                            .and_then(|kv| kv.value().map(str::to_owned))
                    })
                    .expect("JOB_RUN_ID on every task");
                *runs.entry(run_id).or_default() += 1;
            }
        }
        runs
    }

    async fn queue_count(&self, url: &str) -> u64 {
        let out = aws_sdk_sqs::Client::new(&self.sdk)
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("attributes");
        out.attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

fn s3(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// The run id a routed object's run has.
fn run_id_of(bucket: &str, job: &str, key: &str, etag: &str) -> String {
    let object = ObjectCreated {
        bucket: bucket.into(),
        key: key.into(),
        size: 0,
        etag: Some(etag.into()),
        version_id: None,
        sequencer: None,
        event_time: chrono::Utc::now(),
    };
    token::run_id(&token::for_object(job, &object))
}

/// 2,500 objects: images/ (.jpg routed to thumbnails, .png not), docs/ (at most 4 KiB routed
/// to index), logs/ (no trigger); sizes from a few bytes to 12 KiB. Returns (key, size, job).
fn bucket_contents() -> Vec<(String, usize, Option<&'static str>)> {
    let mut objects = vec![];
    for i in 0..1000 {
        let (key, job) = if i % 5 == 4 {
            (format!("images/{:03}/{i:05}.png", i / 100), None)
        } else {
            (
                format!("images/{:03}/{i:05}.jpg", i / 100),
                Some("thumbnails"),
            )
        };
        objects.push((key, 10 + (i * 37) % 9000, job));
    }
    for i in 0..800 {
        let size = if i % 2 == 0 { 100 + i } else { 5000 + i * 7 };
        let job = (size <= 4096).then_some("index");
        objects.push((format!("docs/{i:05} report.txt"), size, job));
    }
    for i in 0..700 {
        objects.push((format!("logs/2026/{i:05}.log"), 1 + i * 17, None));
    }
    objects
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bucket_backfilled_twice_alongside_live_events_gets_one_run_per_object() {
    let world = World::new("twice").await;
    let contents = bucket_contents();
    assert_eq!(contents.len(), 2500);
    let objects: Vec<(String, usize)> = contents.iter().map(|(k, s, _)| (k.clone(), *s)).collect();
    let etags = world.put_objects(&objects).await;
    let routed: Vec<(&str, &str)> = contents
        .iter()
        .filter_map(|(k, _, job)| job.map(|j| (j, k.as_str())))
        .collect();
    assert_eq!(routed.len(), 1200);

    // Live events for 150 routed objects, before and between the backfills.
    for (n, (key, size, _)) in contents
        .iter()
        .filter(|(_, _, j)| j.is_some())
        .take(150)
        .enumerate()
    {
        world
            .send_live(key, *size, &etags[key], &format!("{n:018X}"))
            .await;
    }
    let (launched_live, ..) = world.drain().await;
    assert_eq!(launched_live, 150);

    // First backfill: timed, as a user runs it (no rate limit to speak of).
    let started = Instant::now();
    let output = world.backfill(&[&format!("s3://{}/", world.bucket), "--rate", "100000"]);
    let elapsed = started.elapsed().as_secs_f64();
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = stderr(&output);
    assert!(
        summary.contains("listed 2500, routed 1200 (index 400, thumbnails 800), skipped 1300 (no trigger matches 1300), sent 1200"),
        "{summary}"
    );
    println!(
        "backfill of 2,500 objects (1,200 routed) against moto: {elapsed:.2}s, {:.0} objects/s listed, {:.0} messages/s sent",
        2500.0 / elapsed,
        1200.0 / elapsed
    );
    println!("{}", summary.trim());

    // More live events (some for objects just backfilled) arrive with the backfill's messages.
    for (n, (key, size, _)) in contents
        .iter()
        .filter(|(_, _, j)| j.is_some())
        .skip(100)
        .take(100)
        .enumerate()
    {
        world
            .send_live(key, *size, &etags[key], &format!("{:018X}", 1000 + n))
            .await;
    }
    let (launched, already, _) = world.drain().await;
    assert_eq!(
        (launched, already),
        (1050, 250),
        "launched, already launched"
    );

    // The second backfill launches nothing new.
    let output = world.backfill(&[&format!("s3://{}/", world.bucket), "--rate", "100000"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let (launched, already, _) = world.drain().await;
    assert_eq!((launched, already), (0, 1200));

    // One task per routed object, with the run id its token gives; and the ledger has each.
    let tasks = world.tasks_by_run().await;
    let expected: BTreeSet<String> = routed
        .iter()
        .map(|(job, key)| run_id_of(&world.bucket, job, key, &etags[*key]))
        .collect();
    assert_eq!(expected.len(), 1200);
    assert_eq!(tasks.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(
        tasks.values().all(|&n| n == 1),
        "a run with two tasks: {:?}",
        tasks.iter().find(|(_, n)| **n > 1)
    );
    let state = world.config.state.clone().unwrap();
    let ledger = Ledger::new(&world.adapters, &state);
    for id in expected.iter().step_by(40) {
        let (run, _) = ledger
            .load::<Run>(&keys::run_key(id))
            .await
            .expect("ledger")
            .expect("run recorded");
        assert_eq!(run.attempts.len(), 1);
        assert!(run.attempts[0].task_arn.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_prints_the_launchers_plans_and_sends_nothing() {
    let world = World::new("dry").await;
    let objects = vec![
        ("images/a.jpg".to_string(), 10),
        ("images/b.png".to_string(), 10),
        ("docs/c d.txt".to_string(), 10),
    ];
    world.put_objects(&objects).await;
    let output = world.backfill(&[&format!("s3://{}/", world.bucket), "--dry-run"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let plans: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(plans.len(), 2, "{stdout}");
    // `jobrunner plan`'s document: the launcher's calls, the RunTask with the run's token.
    let run_task = plans[0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["operation"] == "RunTask")
        .expect("a RunTask");
    assert_eq!(run_task["input"]["taskDefinition"], "index");
    assert!(stderr(&output).contains("sent 0"), "{}", stderr(&output));
    assert_eq!(world.queue_count(&world.queue_url).await, 0);
    assert!(world.tasks_by_run().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_backfill_goes_on_from_the_key_it_printed() {
    let world = World::new("resume").await;
    let objects: Vec<(String, usize)> = (0..300)
        .map(|i| (format!("images/{i:04}.jpg"), 20))
        .collect();
    let etags = world.put_objects(&objects).await;
    // 20 messages a second: interrupted after about two seconds.
    let child = world
        .account
        .command(&[
            "backfill",
            "--config",
            world.config_path.to_str().unwrap(),
            &format!("s3://{}/images/", world.bucket),
            "--rate",
            "20",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start backfill");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let text = stderr(&output);
    let resume = text
        .split("--start-after '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no resume point in: {text}"))
        .to_string();
    let done: usize = resume
        .trim_start_matches("images/")
        .trim_end_matches(".jpg")
        .parse()
        .unwrap();
    assert!((10..290).contains(&done), "resume after {resume}: {text}");
    let sent_before = world.queue_count(&world.queue_url).await as usize;
    assert!(
        sent_before > done,
        "everything up to the resume key was sent"
    );

    let output = world.backfill(&[
        &format!("s3://{}/images/", world.bucket),
        "--start-after",
        &resume,
        "--rate",
        "100000",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("listed {}", 299 - done)),
        "{}",
        stderr(&output)
    );
    world.drain().await;
    let tasks = world.tasks_by_run().await;
    let expected: BTreeSet<String> = objects
        .iter()
        .map(|(key, _)| run_id_of(&world.bucket, "thumbnails", key, &etags[key]))
        .collect();
    assert_eq!(tasks.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(tasks.values().all(|&n| n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_fail_before_any_call_with_one_line() {
    let world = World::new("args").await;
    let root = format!("s3://{}/", world.bucket);
    let images = format!("s3://{}/images/", world.bucket);
    let cases = [
        (vec!["uploads/images"], "expected s3://bucket/prefix"),
        (vec!["s3://other/"], "no [[triggers.s3]] for bucket 'other'"),
        (vec![root.as_str(), "--job", "nope"], "--job: no job 'nope'"),
        (
            vec![root.as_str(), "--rate", "0"],
            "--rate: 0 is not a positive number",
        ),
        (
            vec![root.as_str(), "--since", "yesterday"],
            "--since 'yesterday': not an RFC 3339 time",
        ),
        (
            vec![images.as_str(), "--start-after", "docs/a"],
            "--start-after: 'docs/a' is not under the prefix 'images/'",
        ),
    ];
    for (args, expected) in cases {
        let output = world.backfill(&args);
        let text = stderr(&output);
        assert!(!output.status.success(), "{args:?}");
        assert!(text.contains(expected), "{args:?}: {text}");
        assert_eq!(text.trim().lines().count(), 1, "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_message_is_listed_with_its_reason_and_left_in_place() {
    let world = World::new("dlq").await;
    let sqs = aws_sdk_sqs::Client::new(&world.sdk);
    // A message the launcher cannot decode, and an object event, both dead-lettered.
    for body in [
        r#"{"hello": "world"}"#.to_string(),
        json!({"version": "0", "detail-type": "Object Created", "source": "aws.s3",
            "time": "2026-11-25T10:00:00Z", "detail": {"bucket": {"name": world.bucket},
            "object": {"key": "images/x.jpg", "size": 3, "etag": "e1"}}})
        .to_string(),
    ] {
        sqs.send_message()
            .queue_url(&world.dlq_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let output = world.account.jobrunner(&[
        "dlq",
        "list",
        "launcher",
        "--config",
        world.config_path.to_str().unwrap(),
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed["count"], 2);
    assert!(listed["oldest_age_seconds"].as_i64().unwrap() >= 0);
    let messages = listed["messages"].as_array().unwrap();
    let reasons: Vec<&str> = messages
        .iter()
        .map(|m| m["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("cannot decode")),
        "{reasons:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m["event"] == format!("s3://{}/images/x.jpg", world.bucket)),
        "{messages:?}"
    );
    // Peeking released them: still there, visible.
    assert_eq!(world.queue_count(&world.dlq_url).await, 2);
    let text = world.account.jobrunner(&[
        "dlq",
        "list",
        "launcher",
        "--config",
        world.config_path.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.starts_with("launcher dead-letter queue"), "{text}");
    assert!(text.contains("2 messages"), "{text}");
    // The tracker's queue is not in the config.
    let output = world.account.jobrunner(&[
        "dlq",
        "list",
        "tracker",
        "--config",
        world.config_path.to_str().unwrap(),
    ]);
    assert!(
        stderr(&output).contains("pass --queue-url"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redriven_event_of_a_run_already_launched_starts_nothing_again() {
    // The move itself is StartMessageMoveTask, which moto lacks (its call is checked with
    // aws-smithy-mocks in the adapter's tests); here a message moved back to the queue is
    // handled by the launcher as after a redrive: its run is recognised by its token.
    let world = World::new("redrive").await;
    let etags = world.put_objects(&[("images/r.jpg".to_string(), 50)]).await;
    world
        .send_live("images/r.jpg", 50, &etags["images/r.jpg"], "0A")
        .await;
    assert_eq!(world.drain().await.0, 1);
    // The same event again, as a redrive delivers it.
    world
        .send_live("images/r.jpg", 50, &etags["images/r.jpg"], "0A")
        .await;
    assert_eq!(world.drain().await, (0, 1, 0));
    assert_eq!(world.tasks_by_run().await.len(), 1);
    // `dlq redrive` reaches SQS with the DLQ and the source queue (moto answers that the
    // action is not implemented, which the command reports in one line).
    let output = world.account.jobrunner(&[
        "dlq",
        "redrive",
        "launcher",
        "--config",
        world.config_path.to_str().unwrap(),
    ]);
    let text = stderr(&output);
    assert!(
        output.status.success() || text.contains("StartMessageMoveTask"),
        "{text}"
    );
}

/// The first `<field>` of an EC2 query action's answer in `account` (moto's default VPC).
fn ec2_first(account: &str, action: &str, field: &str) -> String {
    let body = format!("Action={action}&Version=2016-11-15");
    let host = moto::endpoint().trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&host).expect("connect");
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n\
         x-moto-account-id: {account}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let open = format!("<{field}>");
    let start = response
        .find(&open)
        .unwrap_or_else(|| panic!("no {field}: {response}"))
        + open.len();
    let end = start + response[start..].find('<').unwrap();
    response[start..end].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_is_one_manual_run_recorded_with_its_submitter() {
    let world = World::new("submit").await;
    let etags = world.put_objects(&[("images/s.jpg".to_string(), 64)]).await;
    let object = format!("s3://{}/images/s.jpg", world.bucket);
    let submit = |extra: &[&str]| {
        let mut args = vec![
            "submit",
            "thumbnails",
            "--config",
            world.config_path.to_str().unwrap(),
            "--object",
            &object,
            "--json",
        ];
        args.extend_from_slice(extra);
        world.account.jobrunner(&args)
    };
    let output = submit(&["--env", "MODE=full {key}"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    let run_id = answer["run_id"].as_str().unwrap().to_string();
    assert_eq!(answer["submitted_by"], world.account.user_arn.as_str());

    // A redelivery of the same message is the same run.
    let sqs = aws_sdk_sqs::Client::new(&world.sdk);
    let received = sqs
        .receive_message()
        .queue_url(&world.queue_url)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    let body = received.messages()[0].body().unwrap().to_string();
    sqs.send_message()
        .queue_url(&world.queue_url)
        .message_body(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(world.drain().await, (1, 1, 0));

    let tasks = world.tasks_by_run().await;
    assert_eq!(tasks.get(&run_id), Some(&1));
    let ecs = aws_sdk_ecs::Client::new(&world.sdk);
    let arns = ecs
        .list_tasks()
        .cluster("jobs")
        .send()
        .await
        .unwrap()
        .task_arns
        .unwrap_or_default();
    let task = ecs
        .describe_tasks()
        .cluster("jobs")
        .set_tasks(Some(arns))
        .send()
        .await
        .unwrap()
        .tasks
        .unwrap()
        .remove(0);
    let env: BTreeMap<String, String> = task.overrides().unwrap().container_overrides()[0]
        .environment()
        .iter()
        .map(|kv| {
            (
                kv.name().unwrap().to_string(),
                kv.value().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(env["JOB_TRIGGER"], "manual");
    assert_eq!(env["JOB_SUBMITTED_BY"], world.account.user_arn);
    assert_eq!(env["JOB_KEY"], "images/s.jpg");
    assert_eq!(env["JOB_ETAG"], etags["images/s.jpg"]);
    assert_eq!(
        env["MODE"], "full {key}",
        "a submit's values are data, never templated"
    );
    let state = world.config.state.clone().unwrap();
    let (run, _) = Ledger::new(&world.adapters, &state)
        .load::<Run>(&keys::run_key(&run_id))
        .await
        .unwrap()
        .expect("run recorded");
    let input = serde_json::to_value(&run.input).unwrap();
    assert_eq!(input["trigger"], "manual");
    assert_eq!(input["submitted_by"], world.account.user_arn.as_str());

    // The same command again is a new run.
    let output = submit(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(world.drain().await, (1, 0, 0));
    assert_eq!(world.tasks_by_run().await.len(), 2);

    // Bad overrides fail before anything is sent, in one line.
    for (env, expected) in [("JOB_KEY=x", "reserved"), ("1A=x", "letters, digits")] {
        let output = submit(&["--env", env]);
        assert!(!output.status.success());
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
        assert_eq!(stderr(&output).trim().lines().count(), 1);
    }
    let big = format!("BIG={}", "x".repeat(9000));
    let output = submit(&["--env", &big]);
    assert!(stderr(&output).contains("8192"), "{}", stderr(&output));
    assert_eq!(world.queue_count(&world.queue_url).await, 0);
}
