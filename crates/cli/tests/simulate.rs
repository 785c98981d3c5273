//! `jobrunner simulate` as a user runs it: oversize traces and flags are one-line errors, a
//! closed pipe ends it quietly, `--mode` and the benchmark over a directory of traces.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;

use common::{jobrunner, repo};

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jobrunner-sim-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn simulate(trace: &Path, extra: &[&str]) -> Output {
    let config = repo("bench/jobrunner.toml");
    let mut args = vec![
        "simulate",
        "--config",
        config.to_str().unwrap(),
        "--worker",
        "orders",
        "--trace",
        trace.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    jobrunner(&args)
}

/// Exit 1 with exactly one line on stderr that contains `expected`, and no panic.
fn assert_one_line_error(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("jobrunner: "), "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_trace_with_huge_times_is_a_one_line_error() {
    let dir = scratch("times");
    let trace = dir.join("far.csv");
    std::fs::write(&trace, "time_s,arrivals\n5,1\n18446744073709551615,1\n").unwrap();
    assert_one_line_error(&simulate(&trace, &[]), "31 days");
    std::fs::write(&trace, "time_s,arrivals\n1000000000000,1\n").unwrap();
    assert_one_line_error(&simulate(&trace, &[]), "31 days");
}

#[test]
fn a_trace_with_huge_arrivals_is_a_one_line_error_without_allocating_it() {
    let dir = scratch("arrivals");
    let trace = dir.join("many.csv");
    let mut text = String::from("time_s,arrivals\n");
    for t in 0..4000 {
        text.push_str(&format!("{t},4294967295\n"));
    }
    std::fs::write(&trace, text).unwrap();
    // 17 billion messages: a few bytes each would be tens of gigabytes.
    assert_one_line_error(&simulate(&trace, &[]), "at most 5000000");
}

#[test]
fn tail_seconds_near_the_largest_integer_is_a_one_line_error() {
    let trace = repo("bench/traces/burst.csv");
    assert_one_line_error(
        &simulate(&trace, &["--tail-seconds", "18446744073709551615"]),
        "--tail-seconds",
    );
    assert_one_line_error(
        &simulate(&trace, &["--tail-seconds", "18446744073709551555"]),
        "--tail-seconds",
    );
    assert_one_line_error(
        &simulate(&trace, &["--task-start-seconds", "18446744073709551615"]),
        "--task-start-seconds",
    );
    assert_one_line_error(
        &simulate(&trace, &["--max-tasks", "4294967295"]),
        "at most 100000 tasks",
    );
    assert_one_line_error(&simulate(&trace, &["--concurrency", "0"]), "--concurrency");
}

#[test]
fn a_closed_pipe_ends_it_quietly() {
    for trace in ["bench/traces/diurnal.csv", "bench/traces"] {
        let config = repo("bench/jobrunner.toml");
        let trace = repo(trace);
        let mut child = Command::new(env!("CARGO_BIN_EXE_jobrunner"))
            .args([
                "simulate",
                "--config",
                config.to_str().unwrap(),
                "--worker",
                "orders",
                "--trace",
                trace.to_str().unwrap(),
                "--min-tasks",
                "0",
                "--max-tasks",
                "50",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run jobrunner");
        // The reader goes away before anything is written (the simulation takes a while).
        drop(child.stdout.take());
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "{status:?}: {stderr}");
        assert_eq!(stderr, "", "quiet");
    }
}

#[test]
fn mode_overrides_the_workers_mode() {
    let trace = repo("bench/traces/burst.csv");
    let output = simulate(&trace, &["--mode", "jobs", "--policy", "jobrunner"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("jobrunner (jobs)"), "{stdout}");
    assert!(stdout.contains("jobrunner in jobs mode"), "{stdout}");
    let output = simulate(&trace, &["--policy", "jobrunner"]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("jobrunner (service)"));
    assert_one_line_error(&simulate(&trace, &["--mode", "cron"]), "--mode 'cron'");
}

#[test]
fn without_the_heartbeat_long_messages_run_twice() {
    let dir = scratch("heartbeat");
    let trace = dir.join("two.csv");
    std::fs::write(&trace, "time_s,arrivals\n10,30\n").unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--policy",
            "keda-tuned",
            "--work-seconds",
            "120",
            "--min-tasks",
            "0",
            "--max-tasks",
            "50",
            "--json",
        ];
        args.extend_from_slice(extra);
        let output = simulate(&trace, &args);
        assert!(output.status.success(), "{output:?}");
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        json["results"][0]["redelivered"].as_u64().unwrap()
    };
    assert_eq!(run(&[]), 0, "the worker's heartbeat");
    assert!(run(&["--visibility-timeout-seconds", "30"]) > 0);
    assert_one_line_error(
        &simulate(&trace, &["--visibility-timeout-seconds", "0"]),
        "--visibility-timeout-seconds 0",
    );
}

#[test]
fn a_directory_of_traces_runs_the_benchmark() {
    let dir = scratch("bench");
    std::fs::copy(repo("bench/traces/burst.csv"), dir.join("burst.csv")).unwrap();
    std::fs::copy(repo("bench/traces/trickle.csv"), dir.join("trickle.csv")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a trace").unwrap();
    let output = simulate(
        &dir,
        &[
            "--min-tasks",
            "0",
            "--max-tasks",
            "50",
            "--idle-exit-seconds",
            "5",
            "--json",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let traces = json["traces"].as_array().unwrap();
    let names: Vec<&str> = traces
        .iter()
        .map(|t| t["trace"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["burst", "trickle"]);
    assert_eq!(traces[0]["work_floor_minutes"], 166.7);
    for t in traces {
        assert_eq!(t["better_mode"], "jobs");
        assert_eq!(t["results"].as_array().unwrap().len(), 9);
    }
    assert!(
        json["goals"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["met"] == true)
    );
    assert_one_line_error(
        &simulate(&dir, &["--policy", "keda"]),
        "--policy and --chart take one trace file",
    );
    let empty = scratch("empty");
    assert_one_line_error(&simulate(&empty, &[]), "no *.csv traces");
}
