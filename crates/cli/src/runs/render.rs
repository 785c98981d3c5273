//! How runs read for people: the `run list` table and the `run view` page. Pure functions of
//! the runs and the current time.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use jobrunner_core::cost::Estimate;
use jobrunner_core::run::{Attempt, Run, RunInput};

/// `2026-11-25T10:00:00Z`.
pub fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `45s`, `2m10s`, `1h05m`, `2d03h`.
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// How long the run's tasks have run: from the first task's start (else launch) to the last
/// task's stop, or to now while the run goes on. `None` before any task launched.
pub fn run_seconds(run: &Run, now: DateTime<Utc>) -> Option<i64> {
    let first = run.attempts.first()?;
    let from = first.started_at.or(first.launched_at)?;
    let to = match run.last_attempt().and_then(|a| a.stopped_at) {
        Some(stopped) => stopped,
        None if run.state.is_final() => run.updated_at,
        None => now,
    };
    Some((to - from).num_seconds())
}

/// The `run list` table: a header and one aligned row per run, in the order given.
pub fn table(runs: &[Run], now: DateTime<Utc>) -> String {
    let mut rows = vec![
        [
            "RUN ID", "JOB", "STATE", "INPUT", "QUEUED", "DURATION", "ATTEMPTS",
        ]
        .map(String::from),
    ];
    for run in runs {
        rows.push([
            run.run_id.clone(),
            run.job.clone(),
            run.state.to_string(),
            run.input.describe(),
            time(run.queued_at),
            run_seconds(run, now).map_or_else(|| "-".into(), duration),
            run.attempts.len().to_string(),
        ]);
    }
    let mut widths = [0; 7];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text.pop();
    text
}

fn cost(estimate: &Estimate) -> String {
    format!(
        "${:.4} ({:.0} vCPU-s, {:.0} GB-s)",
        estimate.usd, estimate.vcpu_seconds, estimate.gb_seconds
    )
}

/// The `run view` page: the run, then every attempt.
pub fn view(run: &Run) -> String {
    let mut lines: Vec<(String, String)> = vec![
        ("run".into(), run.run_id.clone()),
        ("job".into(), run.job.clone()),
        ("state".into(), run.state.to_string()),
    ];
    let mut field = |name: &str, value: String| lines.push((name.into(), value));
    if let Some(reason) = &run.reason {
        field("reason", reason.clone());
    }
    field("input", run.input.describe());
    if let RunInput::S3 { etag, size, .. } = &run.input {
        if let Some(size) = size {
            field("size", format!("{size} bytes"));
        }
        if let Some(etag) = etag {
            field("etag", etag.clone());
        }
    }
    field("queued", time(run.queued_at));
    field("updated", time(run.updated_at));
    if let Some(who) = &run.cancelled_by {
        field("cancelled by", who.clone());
    }
    field(
        "cost",
        run.cost()
            .map_or_else(|| "- (no task has stopped yet)".into(), |c| cost(&c)),
    );
    field("attempts", run.attempts.len().to_string());
    let mut text = aligned(&lines, "");
    for attempt in &run.attempts {
        text.push_str(&format!("\n\nattempt {}\n", attempt.number));
        text.push_str(&aligned(&attempt_lines(attempt), "  "));
    }
    text
}

fn attempt_lines(attempt: &Attempt) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    let mut field = |name: &str, value: String| lines.push((name.to_string(), value));
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".into());
    field(
        "task",
        attempt
            .task_arn
            .clone()
            .unwrap_or_else(|| "- (not placed)".into()),
    );
    if let Some(status) = &attempt.last_status {
        field("status", status.clone());
    }
    let mut placement: Vec<String> = attempt.capacity_provider.iter().cloned().collect();
    if let Some(cpu) = attempt.cpu {
        placement.push(format!("cpu {cpu}"));
    }
    if let Some(memory) = attempt.memory {
        placement.push(format!("memory {memory} MiB"));
    }
    if !placement.is_empty() {
        field("capacity", placement.join(", "));
    }
    field("launched", or_dash(attempt.launched_at.map(time)));
    field("started", or_dash(attempt.started_at.map(time)));
    field("stopped", or_dash(attempt.stopped_at.map(time)));
    field(
        "durations",
        format!(
            "launch->start {}, start->stop {}",
            or_dash(attempt.start_seconds().map(duration)),
            or_dash(attempt.run_seconds().map(duration))
        ),
    );
    if !attempt.exit_codes.is_empty() {
        field(
            "exit codes",
            attempt
                .exit_codes
                .iter()
                .map(|(container, code)| format!("{container}={code}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if let Some(class) = attempt.class {
        field("class", class.to_string());
    }
    if let Some(code) = &attempt.stop_code {
        field("stop code", code.clone());
    }
    if let Some(reason) = &attempt.reason {
        field("reason", reason.clone());
    }
    if let Some(url) = &attempt.log_url {
        field("logs", url.clone());
    }
    if let Some(estimate) = &attempt.cost {
        field("cost", cost(estimate));
    }
    lines
}

fn aligned(lines: &[(String, String)], indent: &str) -> String {
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    lines
        .iter()
        .map(|(name, value)| format!("{indent}{name:<width$}  {value}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use jobrunner_core::class::Class;
    use jobrunner_core::run::RunState;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn finished_run() -> Run {
        let mut run = Run::new(
            "0123456789abcdef0123",
            "thumbnails",
            RunInput::S3 {
                bucket: "uploads".into(),
                key: "in/a b.jpg".into(),
                version_id: Some("v1".into()),
                etag: Some("abc".into()),
                size: Some(2048),
            },
            at("2026-11-25T10:00:00Z"),
            at("2026-11-25T10:03:10Z"),
        );
        run.state = RunState::Succeeded;
        run.attempts.push(Attempt {
            number: 1,
            task_arn: Some("arn:aws:ecs:us-east-1:1:task/jobs/t1".into()),
            capacity_provider: Some("FARGATE_SPOT".into()),
            cpu: Some(512),
            memory: Some(1024),
            launched_at: Some(at("2026-11-25T10:00:01Z")),
            started_at: Some(at("2026-11-25T10:00:46Z")),
            stopped_at: Some(at("2026-11-25T10:02:56Z")),
            last_status: Some("STOPPED".into()),
            exit_codes: [("app".to_string(), 0)].into(),
            class: Some(Class::Succeeded),
            stop_code: Some("EssentialContainerExited".into()),
            reason: Some("Essential container in task exited".into()),
            log_url: Some("https://logs.example/t1".into()),
            cost: Some(Estimate {
                vcpu_seconds: 65.0,
                gb_seconds: 130.0,
                usd: 0.00051,
            }),
            ..Attempt::default()
        });
        run
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(-3), "0s");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(130), "2m10s");
        assert_eq!(duration(3900), "1h05m");
        assert_eq!(duration(2 * 86400 + 3 * 3600 + 59), "2d03h");
    }

    #[test]
    fn a_run_lasts_from_its_first_start_to_its_last_stop_or_now() {
        let now = at("2026-11-25T12:00:00Z");
        let mut run = finished_run();
        assert_eq!(run_seconds(&run, now), Some(130));
        run.state = RunState::Running;
        run.attempts[0].stopped_at = None;
        assert_eq!(run_seconds(&run, now), Some(7154));
        run.attempts.clear();
        assert_eq!(run_seconds(&run, now), None);
    }

    #[test]
    fn the_table_aligns_its_columns() {
        let mut waiting = Run::new(
            "fedcba9876543210fedc",
            "report",
            RunInput::Schedule {
                schedule: "hourly".into(),
                scheduled_time: at("2026-11-25T11:00:00Z"),
            },
            at("2026-11-25T11:00:00Z"),
            at("2026-11-25T11:00:00Z"),
        );
        waiting.reason = Some("at its cap".into());
        let table = table(&[waiting, finished_run()], at("2026-11-25T12:00:00Z"));
        let expected = "\
RUN ID                JOB         STATE      INPUT                                 QUEUED                DURATION  ATTEMPTS
fedcba9876543210fedc  report      waiting    hourly@2026-11-25T11:00:00Z           2026-11-25T11:00:00Z  -         0
0123456789abcdef0123  thumbnails  succeeded  s3://uploads/in/a b.jpg?versionId=v1  2026-11-25T10:00:00Z  2m10s     1";
        assert_eq!(table, expected);
    }

    #[test]
    fn the_view_shows_every_attempt() {
        let text = view(&finished_run());
        for line in [
            "run       0123456789abcdef0123",
            "state     succeeded",
            "input     s3://uploads/in/a b.jpg?versionId=v1",
            "cost      $0.0005 (65 vCPU-s, 130 GB-s)",
            "attempt 1",
            "  task        arn:aws:ecs:us-east-1:1:task/jobs/t1",
            "  capacity    FARGATE_SPOT, cpu 512, memory 1024 MiB",
            "  durations   launch->start 45s, start->stop 2m10s",
            "  exit codes  app=0",
            "  class       succeeded",
            "  stop code   EssentialContainerExited",
            "  reason      Essential container in task exited",
            "  logs        https://logs.example/t1",
        ] {
            assert!(text.contains(line), "no '{line}' in\n{text}");
        }
    }
}
