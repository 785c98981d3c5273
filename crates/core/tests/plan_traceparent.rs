//! `jobrunner plan` shows the `TRACEPARENT` the task would get: the one derived from the run
//! (the dry run has no invocation trace), the same on every plan of the same event.

use jobrunner_core::Config;
use jobrunner_core::config::Format;
use jobrunner_core::dryrun::{Function, World, dry_run_now};
use jobrunner_core::trace::TraceParent;
use serde_json::Value;

const CONFIG: &str = r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]

[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"

[[triggers.s3]]
job = "thumbnails"
bucket = "uploads"
"#;

fn environment_of_run_task(plan: &jobrunner_core::dryrun::DryRun) -> Vec<Value> {
    let run_task = plan
        .actions
        .iter()
        .find(|a| a.operation == "RunTask")
        .expect("a RunTask action");
    run_task.input["overrides"]["containerOverrides"][0]["environment"]
        .as_array()
        .unwrap()
        .clone()
}

fn var<'a>(environment: &'a [Value], name: &str) -> &'a str {
    environment
        .iter()
        .find(|kv| kv["name"] == name)
        .and_then(|kv| kv["value"].as_str())
        .unwrap_or_else(|| panic!("{name} in {environment:?}"))
}

#[test]
fn the_plan_shows_the_run_s_traceparent() {
    let config = Config::parse(CONFIG, Format::Toml).unwrap();
    let event = jobrunner_testkit::s3_event("uploads", "images/a.jpg", 3);
    let now = "2026-11-22T05:00:30Z".parse().unwrap();
    let plan = || {
        dry_run_now(
            &config,
            Function::Launcher,
            &event,
            now,
            World::for_config(&config),
        )
        .unwrap()
    };
    let first = plan();
    let environment = environment_of_run_task(&first);
    let traceparent = var(&environment, "TRACEPARENT");
    let run_id = var(&environment, "JOB_RUN_ID");
    assert_eq!(traceparent, TraceParent::for_run(run_id, 1).to_string());
    assert_eq!(
        environment_of_run_task(&plan()),
        environment,
        "the same event plans the same request"
    );
    // The plan's JSON carries no metric line.
    let printed = serde_json::to_string(&first).unwrap();
    assert!(!printed.contains("CloudWatchMetrics"), "{printed}");
}
