//! The `jobrunner` command as a user runs it: exit codes, stdout JSON, stderr messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;

use common::{jobrunner, repo};

fn plan(event: &Path) -> (Output, Value) {
    let output = jobrunner(&[
        "plan",
        "--config",
        repo("examples/jobrunner.toml").to_str().unwrap(),
        "--event",
        event.to_str().unwrap(),
    ]);
    let json = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, json)
}

/// The plan's first action of `operation`.
fn action<'a>(json: &'a Value, operation: &str) -> &'a Value {
    json["actions"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["operation"] == operation))
        .unwrap_or_else(|| panic!("no {operation} in {json}"))
}

fn env_value(input: &Value, name: &str) -> Option<String> {
    input["overrides"]["containerOverrides"][0]["environment"]
        .as_array()?
        .iter()
        .find(|kv| kv["name"] == name)
        .and_then(|kv| kv["value"].as_str().map(str::to_owned))
}

fn write_temp(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("jobrunner-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn validate_accepts_the_example() {
    let output = jobrunner(&[
        "validate",
        "--config",
        repo("examples/jobrunner.toml").to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn validate_names_the_bad_field() {
    let text = std::fs::read_to_string(repo("examples/jobrunner.toml"))
        .unwrap()
        .replace("cpu = 512\nmemory = 1024", "cpu = 512\nmemory = 512");
    let output = jobrunner(&[
        "validate",
        "--config",
        write_temp("bad.toml", &text).to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("jobs.thumbnails.size_tiers[0].cpu"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

#[test]
fn plan_prints_the_run_task_input() {
    let (output, json) = plan(&repo("events/s3-object-created.json"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let operations: Vec<&str> = json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["operation"].as_str().unwrap())
        .collect();
    assert_eq!(
        operations,
        [
            "GetItem", "GetItem", "PutItem", "RunTask", "PutItem", "GetItem", "PutItem"
        ],
        "the run, the job's slot taken, the launch, the run recorded, the object's pointer"
    );
    assert_eq!(json["actions"][0]["kind"], "read");
    let key = |i: usize| {
        let input = &json["actions"][i]["input"];
        input["Key"]["pk"]["S"]
            .as_str()
            .or(input["Item"]["pk"]["S"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let token = action(&json, "RunTask")["input"]["clientToken"]
        .as_str()
        .unwrap();
    let run_id = &token["jr1-".len().."jr1-".len() + 20];
    assert_eq!(key(0), format!("run/{run_id}"), "the run id is the token's");
    assert_eq!(key(2), "slots/thumbnails");
    assert_eq!(key(4), format!("run/{run_id}"));
    assert!(
        json["actions"][4]["input"]["Item"]["list_pk"]["S"]
            .as_str()
            .is_some_and(|p| p.starts_with("runs#")),
        "a run is listed: {}",
        json["actions"][4]
    );
    assert_eq!(key(6), "object/thumbnails/uploads/images/cat.jpg");
    let action = action(&json, "RunTask");
    assert_eq!(action["service"], "ecs");
    assert_eq!(action["kind"], "write");
    let input = &action["input"];
    assert_eq!(env_value(input, "JOB_BUCKET").as_deref(), Some("uploads"));
    assert_eq!(
        env_value(input, "JOB_KEY").as_deref(),
        Some("images/cat.jpg")
    );
    let token = input["clientToken"].as_str().unwrap();
    assert!(
        token.len() <= 64 && token.bytes().all(|b| (33..=126).contains(&b)),
        "{token}"
    );
    assert_eq!(json["skipped"], serde_json::json!([]));
}

#[test]
fn plan_token_is_stable_per_event_and_changes_per_version() {
    let text = std::fs::read_to_string(repo("events/s3-object-created.json")).unwrap();
    let token_of = |name: &str, text: &str| {
        action(&plan(&write_temp(name, text)).1, "RunTask")["input"]["clientToken"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let original = token_of("a.json", &text);
    assert_eq!(
        original,
        token_of(
            "b.json",
            &text.replace("17793124-05d4-b198", "00000000-0000-0000")
        ),
        "redelivery"
    );
    assert_ne!(
        original,
        token_of(
            "c.json",
            &text.replace("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", "v2")
        ),
        "another version"
    );
}

#[test]
fn unmatched_event_is_skipped_with_exit_zero() {
    let text = std::fs::read_to_string(repo("events/s3-object-created.json"))
        .unwrap()
        .replace("images/cat.jpg", "docs/readme.txt");
    let (output, json) = plan(&write_temp("skip.json", &text));
    assert!(output.status.success());
    assert_eq!(json["actions"], serde_json::json!([]));
    assert!(
        json["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("docs/readme.txt")
    );
}

#[test]
fn not_json_fails_with_one_line() {
    let (output, _) = plan(&write_temp("garbage.json", "{ this is not json"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not JSON"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1);
    assert!(output.stdout.is_empty());
}

#[test]
fn plan_of_a_schedule_shows_the_overlap_check() {
    let (output, json) = plan(&repo("events/schedule-rule-event.json"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let list = action(&json, "ListTasks");
    assert_eq!(list["input"]["startedBy"], "jobrunner/report/hourly-report");
    let run = action(&json, "RunTask");
    assert_eq!(
        env_value(&run["input"], "JOB_SCHEDULED_TIME").as_deref(),
        Some("2026-11-22T06:00:00Z")
    );
}

#[test]
fn with_a_run_going_a_forbidding_schedule_plans_no_launch() {
    let output = jobrunner(&[
        "plan",
        "--config",
        repo("examples/jobrunner.toml").to_str().unwrap(),
        "--event",
        repo("events/schedule-rule-event.json").to_str().unwrap(),
        "--running",
        "1",
    ]);
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let operations: Vec<&str> = json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["operation"].as_str().unwrap())
        .collect();
    assert!(!operations.contains(&"RunTask"), "{operations:?}");
    assert!(operations.contains(&"DescribeTasks"), "{operations:?}");
    assert!(
        json["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("overlap = forbid")
    );
}

#[test]
fn plan_now_sets_the_time_of_every_decision() {
    let args = |now: &str| {
        let output = jobrunner(&[
            "plan",
            "--config",
            repo("examples/jobrunner.toml").to_str().unwrap(),
            "--event",
            repo("events/ecs-task-stopped-oom.json").to_str().unwrap(),
            "--now",
            now,
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let json = args("2026-11-22T07:00:00Z");
    assert_eq!(json["function"], "tracker");
    let put = action(&json, "PutItem");
    assert_eq!(
        put["input"]["Item"]["updated_at"]["S"],
        "2026-11-22T07:00:00.000Z"
    );
    let output = jobrunner(&[
        "plan",
        "--config",
        repo("examples/jobrunner.toml").to_str().unwrap(),
        "--event",
        repo("events/ecs-task-stopped-oom.json").to_str().unwrap(),
        "--now",
        "yesterday",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--now 'yesterday'"), "{stderr}");
}

#[test]
fn a_closed_pipe_ends_quietly() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_jobrunner"))
        .args([
            "schedules",
            "--config",
            repo("examples/jobrunner.toml").to_str().unwrap(),
            "--count",
            "5000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn schedules_lists_fire_times_in_utc_and_local_time() {
    let output = jobrunner(&[
        "schedules",
        "--config",
        repo("examples/jobrunner.toml").to_str().unwrap(),
        "--from",
        "2026-11-22T05:10:00Z",
        "--count",
        "2",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("2026-11-22T06:00:00Z   2026-11-22 07:00 CET"),
        "{stdout}"
    );
    assert!(stdout.contains("2026-11-22T07:00:00Z"), "{stdout}");
}
