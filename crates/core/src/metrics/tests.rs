//! Every metric document against the EMF specification and the catalogue
//! (`docs/metrics.md`): names, units, dimension sets, bounded dimension values.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::*;
use crate::class::Class;
use crate::cost::Estimate;
use crate::run::{Attempt, Run, RunInput, RunState};

fn t0() -> DateTime<Utc> {
    "2026-11-25T10:00:00Z".parse().unwrap()
}

/// The (name, unit) pairs of a document's one directive, and its dimension sets.
fn shape(document: &Value) -> (Vec<(String, String)>, Value) {
    check(document).unwrap_or_else(|e| panic!("{e}: {document}"));
    let directive = &document["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "jobrunner");
    assert_eq!(
        document["_aws"]["Timestamp"],
        json!(t0().timestamp_millis())
    );
    let metrics = directive["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["Name"].as_str().unwrap().to_string(),
                m["Unit"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (metrics, directive["Dimensions"].clone())
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, u)| (n.to_string(), u.to_string()))
        .collect()
}

#[test]
fn the_checker_rejects_what_the_specification_forbids() {
    let good = Document::new(t0(), &[&["job"]])
        .dimension("job", "thumbnails")
        .metric("runs_launched", Unit::Count, 1)
        .build();
    assert_eq!(check(&good), Ok(()));
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut document = good.clone();
        f(&mut document);
        check(&document).unwrap_err()
    };
    assert!(broken(&|d| d["_aws"]["Timestamp"] = json!("now")).contains("Timestamp"));
    assert!(broken(&|d| d["_aws"]["CloudWatchMetrics"] = json!([])).contains("CloudWatchMetrics"));
    assert!(
        broken(&|d| {
            d.as_object_mut().unwrap().remove("job");
        })
        .contains("'job'")
    );
    assert!(broken(&|d| d["job"] = json!(7)).contains("'job'"));
    assert!(broken(&|d| d["job"] = json!("")).contains("printable ASCII"));
    assert!(broken(&|d| d["job"] = json!("naïve")).contains("printable ASCII"));
    assert!(
        broken(&|d| {
            d.as_object_mut().unwrap().remove("runs_launched");
        })
        .contains("top-level number")
    );
    assert!(broken(&|d| d["runs_launched"] = json!("1")).contains("top-level number"));
    assert!(
        broken(&|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Dollars"))
            .contains("unit")
    );
    assert!(
        broken(&|d| d["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!(""))
            .contains("namespace")
    );
    let many: Vec<String> = (0..31).map(|i| format!("d{i}")).collect();
    assert!(
        broken(&|d| {
            for name in &many {
                d[name.as_str()] = json!("x");
            }
            d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = json!([many]);
        })
        .contains("31 dimensions")
    );
    assert!(
        broken(&|d| {
            let metrics: Vec<Value> = (0..101).map(|i| json!({"Name": format!("m{i}")})).collect();
            for i in 0..101 {
                d[format!("m{i}")] = json!(1);
            }
            d["_aws"]["CloudWatchMetrics"][0]["Metrics"] = json!(metrics);
        })
        .contains("101 metric definitions")
    );
}

#[test]
fn dimension_values_are_clipped_to_cloudwatch_s_limit() {
    let long = "j".repeat(2000);
    let document = Document::new(t0(), &[&["job"]])
        .dimension("job", &long)
        .metric("runs_waiting", Unit::Count, 1)
        .build();
    assert_eq!(
        document["job"].as_str().unwrap().len(),
        MAX_DIMENSION_VALUE_CHARS
    );
    check(&document).unwrap();
}

#[test]
fn launcher_documents_follow_the_catalogue() {
    use launcher::Fate;
    for (fate, metric) in [
        (Fate::AlreadyLaunched, "runs_already_launched"),
        (Fate::Waiting, "runs_waiting"),
        (Fate::Skipped, "runs_skipped"),
        (Fate::Failed, "launch_failures"),
    ] {
        let document = launcher::event("thumbnails", fate, t0());
        let (metrics, dimensions) = shape(&document);
        assert_eq!(metrics, pairs(&[(metric, "Count")]));
        assert_eq!(dimensions, json!([["job"]]));
        assert_eq!(document["job"], "thumbnails");
        assert_eq!(document[metric], 1);
    }
    let launched = launcher::event(
        "thumbnails",
        Fate::Launched {
            received: t0() - Duration::milliseconds(250),
            answered: t0(),
            queued_at: t0() - Duration::milliseconds(42_500),
        },
        t0(),
    );
    let (metrics, dimensions) = shape(&launched);
    assert_eq!(
        metrics,
        pairs(&[
            ("runs_launched", "Count"),
            ("launch_latency", "Milliseconds"),
            ("queue_wait", "Seconds"),
        ])
    );
    assert_eq!(dimensions, json!([["job"]]));
    assert_eq!(launched["launch_latency"], 250);
    assert_eq!(launched["queue_wait"], 42.5);
    // A clock that went backwards gives zero, never a negative latency.
    let skewed = launcher::event(
        "thumbnails",
        Fate::Launched {
            received: t0() + Duration::seconds(1),
            answered: t0(),
            queued_at: t0() + Duration::seconds(1),
        },
        t0(),
    );
    assert_eq!(
        (
            skewed["launch_latency"].as_i64(),
            skewed["queue_wait"].as_f64()
        ),
        (Some(0), Some(0.0))
    );

    let slots = launcher::slots("thumbnails", 3, 5, t0());
    let (metrics, dimensions) = shape(&slots);
    assert_eq!(
        metrics,
        pairs(&[("running", "Count"), ("max_running", "Count")])
    );
    assert_eq!(dimensions, json!([["job"]]));
    assert_eq!(
        (slots["running"].as_u64(), slots["max_running"].as_u64()),
        (Some(3), Some(5))
    );
}

fn run(state: RunState, attempts: Vec<Attempt>) -> Run {
    let mut run = Run::new(
        "0123456789abcdef",
        "report",
        RunInput::Schedule {
            schedule: "hourly".into(),
            scheduled_time: t0(),
        },
        t0(),
        t0(),
    );
    run.state = state;
    run.attempts = attempts;
    run
}

fn attempt(number: u32) -> Attempt {
    Attempt {
        number,
        task_arn: Some(format!("arn:task/{number}")),
        launched_at: Some(t0()),
        ..Attempt::default()
    }
}

#[test]
fn a_run_s_progress_gives_each_tracker_metric_once() {
    let launched = run(RunState::Launching, vec![attempt(1)]);
    let started_attempt = Attempt {
        started_at: Some(t0() + Duration::seconds(35)),
        ..attempt(1)
    };
    let running = run(RunState::Running, vec![started_attempt.clone()]);
    let documents = tracker::run_changed(Some(&launched), &running, 1, None, t0());
    assert_eq!(documents.len(), 1);
    let (metrics, dimensions) = shape(&documents[0]);
    assert_eq!(metrics, pairs(&[("time_to_running", "Seconds")]));
    assert_eq!(dimensions, json!([["job"]]));
    assert_eq!(documents[0]["time_to_running"], 35.0);
    // The same change again (a redelivery) counts nothing.
    assert!(tracker::run_changed(Some(&running), &running, 1, None, t0()).is_empty());

    let stopped_attempt = Attempt {
        stopped_at: Some(t0() + Duration::seconds(95)),
        class: Some(Class::NonZeroExit),
        cost: Some(Estimate {
            vcpu_seconds: 60.0,
            gb_seconds: 120.0,
            usd: 0.0012,
        }),
        ..started_attempt.clone()
    };
    let failed = run(RunState::Failed, vec![stopped_attempt.clone()]);
    let documents = tracker::run_changed(Some(&running), &failed, 1, None, t0());
    assert_eq!(documents.len(), 2, "{documents:?}");
    let (metrics, _) = shape(&documents[0]);
    assert_eq!(
        metrics,
        pairs(&[("run_duration", "Seconds"), ("run_cost", "None")])
    );
    assert_eq!(documents[0]["run_duration"], 60.0);
    assert_eq!(documents[0]["run_cost"], 0.0012);
    let (metrics, dimensions) = shape(&documents[1]);
    assert_eq!(metrics, pairs(&[("runs_finished", "Count")]));
    assert_eq!(
        dimensions,
        json!([["job", "outcome"], ["job", "outcome", "class"]])
    );
    assert_eq!(
        (
            &documents[1]["job"],
            &documents[1]["outcome"],
            &documents[1]["class"]
        ),
        (&json!("report"), &json!("failed"), &json!("non_zero_exit"))
    );
    assert!(tracker::run_changed(Some(&failed), &failed, 1, None, t0()).is_empty());

    // A failed attempt with a retry planned: the run waits (not final), `retries` counts.
    let retrying = run(
        RunState::Waiting,
        vec![
            stopped_attempt,
            Attempt {
                number: 2,
                ..Attempt::default()
            },
        ],
    );
    let documents = tracker::run_changed(Some(&running), &retrying, 1, None, t0());
    let names: Vec<String> = documents
        .iter()
        .flat_map(|d| shape(d).0.into_iter().map(|(n, _)| n))
        .collect();
    assert_eq!(names, ["run_duration", "run_cost", "retries"]);
    assert!(tracker::run_changed(Some(&retrying), &retrying, 1, None, t0()).is_empty());
}

#[test]
fn a_run_the_ledger_did_not_know_counts_from_nothing() {
    let done = run(
        RunState::Succeeded,
        vec![Attempt {
            started_at: Some(t0() + Duration::seconds(5)),
            stopped_at: Some(t0() + Duration::seconds(10)),
            class: Some(Class::Succeeded),
            ..attempt(1)
        }],
    );
    let documents = tracker::run_changed(None, &done, 1, None, t0());
    let names: Vec<String> = documents
        .iter()
        .flat_map(|d| shape(d).0.into_iter().map(|(n, _)| n))
        .collect();
    assert_eq!(names, ["time_to_running", "run_duration", "runs_finished"]);
    assert_eq!(documents[2]["outcome"], "succeeded");
    assert_eq!(documents[2]["class"], "succeeded");
}

#[test]
fn every_final_outcome_is_one_of_the_four_and_skipped_is_none() {
    assert_eq!(tracker::outcome(RunState::Succeeded), Some("succeeded"));
    assert_eq!(tracker::outcome(RunState::Failed), Some("failed"));
    assert_eq!(tracker::outcome(RunState::TimedOut), Some("timed_out"));
    assert_eq!(tracker::outcome(RunState::Cancelled), Some("cancelled"));
    for state in [
        RunState::Waiting,
        RunState::Launching,
        RunState::Running,
        RunState::Skipped,
    ] {
        assert_eq!(tracker::outcome(state), None);
    }
    // A cancelled run without a classified stop still has a class dimension.
    let cancelled = run(RunState::Cancelled, vec![]);
    let documents = tracker::run_changed(None, &cancelled, 1, None, t0());
    assert_eq!(documents[0]["class"], "unknown");
    shape(&documents[0]);
}

#[test]
fn timeouts_and_missed_schedules() {
    let (metrics, dimensions) = shape(&tracker::timeout("report", t0()));
    assert_eq!(metrics, pairs(&[("timeouts", "Count")]));
    assert_eq!(dimensions, json!([["job"]]));
    let missed = tracker::missed_schedules("report", 3, t0());
    let (metrics, _) = shape(&missed);
    assert_eq!(metrics, pairs(&[("missed_schedules", "Count")]));
    assert_eq!(missed["missed_schedules"], 3);
}

#[test]
fn worker_documents_carry_the_queue_name_not_its_url() {
    assert_eq!(
        worker::queue_name("https://sqs.us-east-1.amazonaws.com/123456789012/orders"),
        "orders"
    );
    assert_eq!(
        worker::queue_name("http://127.0.0.1:5000/123456789012/orders/"),
        "orders"
    );
    assert_eq!(worker::queue_name("orders"), "orders");
    let done = worker::message("orders", true, 1234, t0());
    let (metrics, dimensions) = shape(&done);
    assert_eq!(
        metrics,
        pairs(&[
            ("messages_processed", "Count"),
            ("message_duration", "Milliseconds")
        ])
    );
    assert_eq!(dimensions, json!([["queue"]]));
    assert_eq!(done["queue"], "orders");
    assert_eq!(done["message_duration"], 1234);
    let failed = worker::message("orders", false, 5, t0());
    assert_eq!(shape(&failed).0[0].0, "messages_failed");
}

#[test]
fn lines_are_one_json_document_each() {
    let documents = vec![
        launcher::event("a", launcher::Fate::Waiting, t0()),
        worker::message("q", true, 1, t0()),
    ];
    let mut out = vec![];
    write_lines(&documents, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    for (line, document) in lines.iter().zip(&documents) {
        assert_eq!(&serde_json::from_str::<Value>(line).unwrap(), document);
    }
    let mut nothing = vec![];
    print_to(&[], &mut nothing);
    assert!(nothing.is_empty());
}

#[test]
fn time_to_running_starts_at_the_task_s_created_at_when_the_change_has_it() {
    let launched = run(RunState::Launching, vec![attempt(1)]);
    let running = run(
        RunState::Running,
        vec![Attempt {
            started_at: Some(t0() + Duration::seconds(35)),
            ..attempt(1)
        }],
    );
    let created = Some(t0() + Duration::seconds(5));
    let documents = tracker::run_changed(Some(&launched), &running, 1, created, t0());
    assert_eq!(documents[0]["time_to_running"], 30.0);
}
