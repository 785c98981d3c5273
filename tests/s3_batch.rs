//! S3 Batch Operations invocations and `skip_missing` against moto: objects in S3, HeadObject
//! through the real adapter, tasks read back from ECS, runs from the ledger's table.

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use chrono::{DateTime, Duration, Utc};
use jobrunner_aws::Adapters;
use jobrunner_aws::s3::S3Objects;
use jobrunner_core::dryrun::{self, Function, World};
use jobrunner_core::ports::StateTable;
use jobrunner_integration_tests::Account;
use jobrunner_integration_tests::fixtures::{LaunchFixture, create_state_table, launcher_ports};
use jobrunner_lambda::Invocation;
use serde_json::{Value, json};

const TABLE: &str = "state";

/// An S3 client in the test's own moto account (path-style, as on any local endpoint).
fn s3(account: &Account) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&account.sdk)
            .force_path_style(true)
            .interceptor(account.interceptor())
            .build(),
    )
}

/// The launcher's ports with the ledger's table and HeadObject.
fn ports(fx: &LaunchFixture) -> Adapters {
    Adapters {
        objects: Some(S3Objects::new(s3(&fx.account))),
        ..launcher_ports(&fx.account, Some(TABLE), None)
    }
}

/// A bucket of the test's own (bucket names are global), versioned when asked.
async fn bucket(fx: &LaunchFixture, versioned: bool) -> String {
    let name = format!("uploads-{}", fx.account.id);
    let client = s3(&fx.account);
    client
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create bucket");
    if versioned {
        client
            .put_bucket_versioning()
            .bucket(&name)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("versioning");
    }
    name
}

/// Puts `size` bytes at `key`; returns (version id, ETag without quotes).
async fn put(fx: &LaunchFixture, bucket: &str, key: &str, size: usize) -> (Option<String>, String) {
    let out = s3(&fx.account)
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(vec![b'x'; size].into())
        .send()
        .await
        .expect("put object");
    (
        out.version_id().map(str::to_owned),
        out.e_tag().unwrap_or_default().trim_matches('"').to_owned(),
    )
}

/// The `thumbnails` job (size tiers; `extra` job fields) on `bucket`'s `in/`, the ledger, `tail`.
fn config(fx: &LaunchFixture, bucket: &str, extra: &str, tail: &str) -> jobrunner_core::Config {
    fx.config(&format!(
        r#"
[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
command = ["resize", "s3://{{bucket}}/{{key}}"]
{extra}
[[jobs.thumbnails.size_tiers]]
max_bytes = 1000
cpu = 256
memory = 512
[[jobs.thumbnails.size_tiers]]
cpu = 1024
memory = 2048

[[triggers.s3]]
job = "thumbnails"
bucket = "{bucket}"
prefix = "in/"

[state]
table = "{TABLE}"
{tail}
"#
    ))
}

fn invocation(schema: &str, bucket: &str, tasks: &[(&str, &str, Option<&str>)]) -> Value {
    let tasks: Vec<Value> = tasks
        .iter()
        .map(|(id, key, version)| {
            let mut task = json!({"taskId": id, "s3Key": key, "s3VersionId": version});
            if schema == "1.0" {
                task["s3BucketArn"] = json!(format!("arn:aws:s3:::{bucket}"));
            } else {
                task["s3Bucket"] = json!(bucket);
            }
            task
        })
        .collect();
    json!({"invocationSchemaVersion": schema, "invocationId": format!("inv-{schema}"),
        "job": {"id": "batch-job", "userArguments": {"why": "test"}}, "tasks": tasks})
}

async fn answer(config: &jobrunner_core::Config, ports: &Adapters, payload: &Value) -> Value {
    jobrunner_launcher::handle(config, ports, &Invocation::now(payload.clone()))
        .await
        .expect("an answer for S3 Batch Operations")
}

fn env_of(task: &aws_sdk_ecs::types::Task, name: &str) -> Option<String> {
    task.overrides()?
        .container_overrides()
        .iter()
        .flat_map(|c| c.environment())
        .find(|kv| kv.name() == Some(name))
        .and_then(|kv| kv.value().map(str::to_owned))
}

const ENCODED: &str = "in/summer+2026/caf%C3%A9+%2B+cr%C3%A8me+br%C3%BBl%C3%A9e.jpg";
const DECODED: &str = "in/summer 2026/café + crème brûlée.jpg";

#[tokio::test]
async fn both_schemas_launch_one_run_for_an_encoded_key() {
    let fx = LaunchFixture::new().await;
    create_state_table(&fx.account, TABLE).await;
    let bucket = bucket(&fx, true).await;
    let (version, etag) = put(&fx, &bucket, DECODED, 2000).await;
    let version = version.expect("a versioned bucket gives a version id");
    let config = config(&fx, &bucket, "", "");
    let ports = ports(&fx);

    let v1 = answer(
        &config,
        &ports,
        &invocation("1.0", &bucket, &[("t1", ENCODED, Some(&version))]),
    )
    .await;
    assert_eq!(v1["invocationSchemaVersion"], "1.0");
    assert_eq!(v1["invocationId"], "inv-1.0");
    assert_eq!(v1["treatMissingKeysAs"], "TemporaryFailure");
    assert_eq!(v1["results"][0]["taskId"], "t1");
    assert_eq!(v1["results"][0]["resultCode"], "Succeeded", "{v1}");
    assert!(
        v1["results"][0]["resultString"]
            .as_str()
            .unwrap()
            .starts_with("launched run "),
        "{v1}"
    );
    // Schema 2.0 names the bucket, not its ARN, and here no version: HeadObject finds the
    // current one, the same object version, so the same run.
    let v2 = answer(
        &config,
        &ports,
        &invocation("2.0", &bucket, &[("t2", ENCODED, None)]),
    )
    .await;
    assert_eq!(v2["invocationSchemaVersion"], "2.0");
    assert_eq!(v2["results"][0]["resultCode"], "Succeeded", "{v2}");
    assert!(
        v2["results"][0]["resultString"]
            .as_str()
            .unwrap()
            .starts_with("already launched"),
        "{v2}"
    );
    let tasks = fx.tasks("jobrunner/thumbnails").await;
    assert_eq!(tasks.len(), 1, "one run per object version");
    let task = &tasks[0];
    assert_eq!(env_of(task, "JOB_KEY").as_deref(), Some(DECODED));
    assert_eq!(env_of(task, "JOB_BUCKET"), Some(bucket.clone()));
    assert_eq!(env_of(task, "JOB_SIZE").as_deref(), Some("2000"));
    assert_eq!(env_of(task, "JOB_VERSION_ID"), Some(version));
    assert_eq!(env_of(task, "JOB_ETAG"), Some(etag));
}

#[tokio::test]
async fn a_redelivered_batch_sizes_by_head_object_and_starts_nothing_twice() {
    let fx = LaunchFixture::new().await;
    create_state_table(&fx.account, TABLE).await;
    let bucket = bucket(&fx, false).await;
    put(&fx, &bucket, "in/small.jpg", 10).await;
    put(&fx, &bucket, "in/large.jpg", 5000).await;
    let config = config(&fx, &bucket, "", "");
    let ports = ports(&fx);
    let payload = invocation(
        "1.0",
        &bucket,
        &[
            ("s", "in/small.jpg", None),
            ("l", "in/large.jpg", None),
            ("gone", "in/never-written.jpg", None),
            ("bad", "in/bad%zz.jpg", None),
        ],
    );
    let first = answer(&config, &ports, &payload).await;
    let codes = |answer: &Value| -> Vec<String> {
        answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["resultCode"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        codes(&first),
        [
            "Succeeded",
            "Succeeded",
            "PermanentFailure",
            "PermanentFailure"
        ],
        "{first}"
    );
    assert!(
        first["results"][2]["resultString"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
    assert!(
        first["results"][3]["resultString"]
            .as_str()
            .unwrap()
            .contains("invalid %-escape")
    );
    // S3 Batch Operations retries, or the job is run again: nothing starts twice.
    let second = answer(&config, &ports, &payload).await;
    assert_eq!(codes(&second)[..2], ["Succeeded", "Succeeded"]);
    for i in 0..2 {
        assert!(
            second["results"][i]["resultString"]
                .as_str()
                .unwrap()
                .starts_with("already launched"),
            "{second}"
        );
    }
    let tasks = fx.tasks("jobrunner/thumbnails").await;
    assert_eq!(tasks.len(), 2);
    let cpu_of = |key: &str| {
        let task = tasks
            .iter()
            .find(|t| env_of(t, "JOB_KEY").as_deref() == Some(key))
            .expect("a task for the key");
        (
            task.overrides().and_then(|o| o.cpu()).map(str::to_owned),
            env_of(task, "JOB_SIZE"),
        )
    };
    assert_eq!(
        cpu_of("in/small.jpg"),
        (Some("256".into()), Some("10".into()))
    );
    assert_eq!(
        cpu_of("in/large.jpg"),
        (Some("1024".into()), Some("5000".into()))
    );
}

#[tokio::test]
async fn skip_missing_ends_a_waited_run_of_a_deleted_object_skipped() {
    let fx = LaunchFixture::new().await;
    create_state_table(&fx.account, TABLE).await;
    let bucket = bucket(&fx, false).await;
    put(&fx, &bucket, "in/a.jpg", 10).await;
    put(&fx, &bucket, "in/b.jpg", 10).await;
    let queue_url = fx
        .account
        .sqs()
        .create_queue()
        .queue_name("launcher")
        .send()
        .await
        .expect("queue")
        .queue_url
        .unwrap();
    let config = config(
        &fx,
        &bucket,
        "max_running = 1\nskip_missing = true",
        &format!("[launcher]\nqueue_url = \"{queue_url}\""),
    );
    let ports = ports(&fx);
    let t0: DateTime<Utc> = Utc::now();
    let handle = |key: &str, at: DateTime<Utc>| {
        let payload = jobrunner_testkit::s3_event(&bucket, key, 10);
        let (config, ports) = (&config, &ports);
        async move {
            jobrunner_launcher::handle(config, ports, &Invocation::at(payload, at))
                .await
                .unwrap()
        }
    };
    assert_eq!(handle("in/a.jpg", t0).await["launched"], 1);
    assert_eq!(handle("in/b.jpg", t0).await["waiting"], 1);
    // b is deleted while it waits; a's task ends (its slot is reclaimed by reconciliation).
    s3(&fx.account)
        .delete_object()
        .bucket(&bucket)
        .key("in/b.jpg")
        .send()
        .await
        .unwrap();
    let task = fx.tasks("jobrunner/thumbnails").await[0]
        .task_arn()
        .unwrap()
        .to_owned();
    fx.account
        .ecs()
        .stop_task()
        .cluster(&fx.cluster)
        .task(task)
        .send()
        .await
        .unwrap();
    let later = handle("in/b.jpg", t0 + Duration::minutes(10)).await;
    assert_eq!(later["skipped"], 1, "{later}");
    assert_eq!(fx.tasks("jobrunner/thumbnails").await.len(), 1);
    // The run of b is skipped in the ledger, with the reason.
    let event =
        jobrunner_core::event::decode_event(&jobrunner_testkit::s3_event(&bucket, "in/b.jpg", 10))
            .unwrap()
            .remove(0);
    let jobrunner_core::event::Event::ObjectCreated(object) = event else {
        panic!("an object event");
    };
    let run_id =
        jobrunner_core::token::run_id(&jobrunner_core::token::for_object("thumbnails", &object));
    let record = ports
        .get(&format!("run/{run_id}"))
        .await
        .unwrap()
        .expect("the run is in the ledger");
    let run: Value = serde_json::from_str(&record.data).unwrap();
    assert_eq!(run["state"], "skipped", "{run}");
    let reason = run["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("s3://{bucket}/in/b.jpg no longer exists")),
        "{reason}"
    );
}

#[test]
fn plan_shows_the_head_object_call_of_a_batch_task() {
    let config = jobrunner_core::Config::parse(
        &std::fs::read_to_string(jobrunner_testkit::repo_root().join("examples/jobrunner.toml"))
            .unwrap(),
        jobrunner_core::config::Format::Toml,
    )
    .unwrap();
    let payload = jobrunner_testkit::sample("s3-batch-v2");
    let now = "2026-11-22T06:00:00Z".parse().unwrap();
    let plan = dryrun::dry_run_now(
        &config,
        Function::Launcher,
        &payload,
        now,
        World::for_config(&config),
    )
    .unwrap();
    let first = &plan.actions[0];
    assert_eq!(first.operation, "HeadObject");
    assert_eq!(first.input["Bucket"], "uploads");
    assert_eq!(
        first.input["Key"],
        "images/summer 2026/café + crème brûlée.jpg"
    );
    assert!(plan.actions.iter().any(|a| a.operation == "RunTask"));
    assert_eq!(plan.response["results"][0]["resultCode"], "Succeeded");
}
