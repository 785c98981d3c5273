//! What `jobrunner status` shows, and how: the [`Snapshot`] of one refresh (also its `--json`
//! document), its text screen, and the frame `--watch` redraws in place. Pure functions.
//!
//! A read that failed is a [`Reading::Error`]: its cells read `error[N]` and the message is
//! listed under ERRORS at the bottom, so one unreadable queue does not hide the rest.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// One read's result: its value, or why it could not be read (`{"error": "…"}` in JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Reading<T> {
    Value(T),
    Error { error: String },
}

impl<T> Reading<T> {
    pub fn from_result<E: std::fmt::Display>(result: Result<T, E>) -> Self {
        match result {
            Ok(value) => Reading::Value(value),
            Err(e) => Reading::Error {
                error: e.to_string(),
            },
        }
    }
}

/// The deployment at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub at: DateTime<Utc>,
    /// The `[state]` table the job and failure rows come from (`None`: the config has none).
    pub table: Option<String>,
    pub jobs: Vec<JobStatus>,
    /// Failed and timed-out runs, newest first.
    pub failures: Reading<Vec<Failure>>,
    /// How far back `failures` looks, in hours.
    pub failures_since_hours: u32,
    pub workers: Vec<WorkerStatus>,
    pub dead_letter_queues: Vec<DeadLetterStatus>,
}

/// A job's slots: `slots` is `None` for a job without `max_running` (no slot record kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobStatus {
    pub job: String,
    pub max_running: Option<u32>,
    pub slots: Option<Reading<SlotCounts>>,
}

/// What a capped job's slot record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SlotCounts {
    /// Slots in use: runs holding one, and running tasks of the job that hold none.
    pub running: u32,
    /// Runs remembered in the job's line (the oldest 50 at most).
    pub waiting: u32,
}

/// A run that ended failed or timed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub run_id: String,
    pub job: String,
    pub state: String,
    /// When the run reached its state.
    pub at: DateTime<Utc>,
    /// The last attempt's class, exit code and resources, and the run's or attempt's reason.
    pub why: String,
}

/// A worker's queue and service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerStatus {
    pub worker: String,
    pub queue: Reading<QueueCounts>,
    pub service: Reading<ServiceStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QueueCounts {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    pub desired: u32,
    pub running: u32,
    pub pending: u32,
}

/// A dead-letter queue: whose it is, its URL once known, and the messages it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetterStatus {
    /// `launcher`, `worker NAME`, or the queue's name for one given with `--dlq`.
    pub of: String,
    pub url: Option<String>,
    pub messages: Reading<u64>,
}

/// `2026-11-25T10:00:00Z`.
fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Collects the messages of failed reads; each cell of one reads `error[N]`.
#[derive(Default)]
struct Errors(Vec<String>);

impl Errors {
    /// The cells of a reading: `cells(value)` when read, else `error[N]` then `-`s.
    fn cells<T>(
        &mut self,
        reading: &Reading<T>,
        width: usize,
        cells: impl FnOnce(&T) -> Vec<String>,
    ) -> Vec<String> {
        match reading {
            Reading::Value(value) => cells(value),
            Reading::Error { error } => {
                self.0.push(error.clone());
                let mut out = vec![format!("error[{}]", self.0.len())];
                out.resize(width, "-".into());
                out
            }
        }
    }
}

/// Left-aligned columns two spaces apart, trailing spaces trimmed.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| (*h).to_string()).collect();
    let mut text = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(widths.iter().copied()) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// The screen of one snapshot: jobs, last failures, workers, dead-letter queues, errors.
pub fn text(snapshot: &Snapshot) -> String {
    let mut errors = Errors::default();
    let mut out = format!(
        "jobrunner status at {}{}\n\n",
        time(snapshot.at),
        snapshot
            .table
            .as_deref()
            .map(|t| format!(" (table {t})"))
            .unwrap_or_default()
    );

    if snapshot.jobs.is_empty() {
        out.push_str("JOBS: none configured\n");
    } else {
        let rows: Vec<Vec<String>> = snapshot
            .jobs
            .iter()
            .map(|job| {
                let cap = job
                    .max_running
                    .map_or_else(|| "none".to_string(), |c| c.to_string());
                let counts = match &job.slots {
                    None => vec!["-".into(), "-".into()],
                    Some(reading) => errors.cells(reading, 2, |s| {
                        vec![s.running.to_string(), s.waiting.to_string()]
                    }),
                };
                vec![job.job.clone(), counts[0].clone(), cap, counts[1].clone()]
            })
            .collect();
        out.push_str(&table(&["JOB", "RUNNING", "CAP", "WAITING"], &rows));
    }
    out.push('\n');

    let failures = errors.cells(&snapshot.failures, 1, |_| vec![String::new()]);
    match &snapshot.failures {
        Reading::Value(failures) if failures.is_empty() => {
            let _ = writeln!(
                out,
                "LAST FAILURES: none in the last {}h",
                snapshot.failures_since_hours
            );
        }
        Reading::Value(failures) => {
            let _ = writeln!(
                out,
                "LAST FAILURES (last {}h, newest first)",
                snapshot.failures_since_hours
            );
            let rows: Vec<Vec<String>> = failures
                .iter()
                .map(|f| {
                    vec![
                        time(f.at),
                        f.job.clone(),
                        f.state.clone(),
                        f.run_id.clone(),
                        f.why.clone(),
                    ]
                })
                .collect();
            out.push_str(&table(&["ENDED", "JOB", "STATE", "RUN ID", "WHY"], &rows));
        }
        Reading::Error { .. } => {
            let _ = writeln!(out, "LAST FAILURES: {}", failures[0]);
        }
    }
    out.push('\n');

    if snapshot.workers.is_empty() {
        out.push_str("WORKERS: none configured\n");
    } else {
        let rows: Vec<Vec<String>> = snapshot
            .workers
            .iter()
            .map(|w| {
                let mut row = vec![w.worker.clone()];
                row.extend(errors.cells(&w.queue, 3, |q| {
                    vec![
                        q.visible.to_string(),
                        q.in_flight.to_string(),
                        q.delayed.to_string(),
                    ]
                }));
                row.extend(errors.cells(&w.service, 3, |s| {
                    vec![
                        s.desired.to_string(),
                        s.running.to_string(),
                        s.pending.to_string(),
                    ]
                }));
                row
            })
            .collect();
        out.push_str(&table(
            &[
                "WORKER",
                "VISIBLE",
                "IN FLIGHT",
                "DELAYED",
                "DESIRED",
                "RUNNING",
                "PENDING",
            ],
            &rows,
        ));
    }
    out.push('\n');

    if snapshot.dead_letter_queues.is_empty() {
        out.push_str("DEAD-LETTER QUEUES: none known\n");
    } else {
        let rows: Vec<Vec<String>> = snapshot
            .dead_letter_queues
            .iter()
            .map(|d| {
                let mut row = vec![d.of.clone()];
                row.extend(errors.cells(&d.messages, 1, |m| vec![m.to_string()]));
                row.push(d.url.clone().unwrap_or_else(|| "-".into()));
                row
            })
            .collect();
        out.push_str(&table(&["DEAD-LETTER QUEUE", "MESSAGES", "URL"], &rows));
    }

    if !errors.0.is_empty() {
        out.push_str("\nERRORS\n");
        for (i, error) in errors.0.iter().enumerate() {
            let _ = writeln!(out, "[{}] {error}", i + 1);
        }
    }
    out
}

/// Move the cursor to the top-left corner.
pub const CURSOR_HOME: &str = "\x1b[H";
/// Clear from the cursor to the end of the line.
pub const CLEAR_LINE_END: &str = "\x1b[K";
/// Clear from the cursor to the end of the screen.
pub const CLEAR_SCREEN_END: &str = "\x1b[J";
pub const HIDE_CURSOR: &str = "\x1b[?25l";
pub const SHOW_CURSOR: &str = "\x1b[?25h";

/// `screen` drawn over the previous one without clearing the whole screen first (no flicker):
/// the cursor goes home, each line overwrites the old one and clears what is left of it, and
/// whatever was below the new screen is cleared last. `footer` goes on the last line.
pub fn frame(screen: &str, footer: &str) -> String {
    let mut out = String::from(CURSOR_HOME);
    for line in screen.lines().chain(std::iter::once(footer)) {
        out.push_str(line);
        out.push_str(CLEAR_LINE_END);
        out.push('\n');
    }
    out.push_str(CLEAR_SCREEN_END);
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            at: at(),
            table: Some("state".into()),
            jobs: vec![
                JobStatus {
                    job: "thumbnails".into(),
                    max_running: Some(5),
                    slots: Some(Reading::Value(SlotCounts {
                        running: 5,
                        waiting: 12,
                    })),
                },
                JobStatus {
                    job: "report".into(),
                    max_running: None,
                    slots: None,
                },
            ],
            failures: Reading::Value(vec![Failure {
                run_id: "r-1".into(),
                job: "thumbnails".into(),
                state: "failed".into(),
                at: at(),
                why: "#2 oom exit 137".into(),
            }]),
            failures_since_hours: 24,
            workers: vec![
                WorkerStatus {
                    worker: "orders".into(),
                    queue: Reading::Value(QueueCounts {
                        visible: 40,
                        in_flight: 3,
                        delayed: 0,
                    }),
                    service: Reading::Value(ServiceStatus {
                        desired: 4,
                        running: 3,
                        pending: 1,
                    }),
                },
                WorkerStatus {
                    worker: "mail".into(),
                    queue: Reading::Error {
                        error: "GetQueueAttributes: AccessDenied: no".into(),
                    },
                    service: Reading::Value(ServiceStatus {
                        desired: 1,
                        running: 1,
                        pending: 0,
                    }),
                },
            ],
            dead_letter_queues: vec![DeadLetterStatus {
                of: "launcher".into(),
                url: Some("https://sqs/launcher-dlq".into()),
                messages: Reading::Value(2),
            }],
        }
    }

    #[test]
    fn the_screen_lists_each_part_in_aligned_columns() {
        let text = text(&snapshot());
        let expected = "\
jobrunner status at 2026-11-25T10:00:00Z (table state)

JOB         RUNNING  CAP   WAITING
thumbnails  5        5     12
report      -        none  -

LAST FAILURES (last 24h, newest first)
ENDED                 JOB         STATE   RUN ID  WHY
2026-11-25T10:00:00Z  thumbnails  failed  r-1     #2 oom exit 137

WORKER  VISIBLE   IN FLIGHT  DELAYED  DESIRED  RUNNING  PENDING
orders  40        3          0        4        3        1
mail    error[1]  -          -        1        1        0

DEAD-LETTER QUEUE  MESSAGES  URL
launcher           2         https://sqs/launcher-dlq

ERRORS
[1] GetQueueAttributes: AccessDenied: no
";
        assert_eq!(text, expected);
    }

    #[test]
    fn failed_reads_are_numbered_in_screen_order() {
        let mut s = snapshot();
        s.jobs[0].slots = Some(Reading::Error {
            error: "GetItem: ResourceNotFoundException: no table".into(),
        });
        s.failures = Reading::Error {
            error: "Query: ResourceNotFoundException: no table".into(),
        };
        s.dead_letter_queues[0].messages = Reading::Error {
            error: "GetQueueAttributes: gone".into(),
        };
        let text = text(&s);
        assert!(text.contains("thumbnails  error[1]  5     -\n"), "{text}");
        assert!(text.contains("LAST FAILURES: error[2]\n"), "{text}");
        assert!(text.contains("mail    error[3]"), "{text}");
        assert!(text.contains("launcher           error[4]"), "{text}");
        assert!(text.ends_with(
            "ERRORS\n[1] GetItem: ResourceNotFoundException: no table\n\
             [2] Query: ResourceNotFoundException: no table\n\
             [3] GetQueueAttributes: AccessDenied: no\n\
             [4] GetQueueAttributes: gone\n"
        ));
    }

    #[test]
    fn empty_parts_say_so() {
        let s = Snapshot {
            at: at(),
            table: None,
            jobs: vec![],
            failures: Reading::Value(vec![]),
            failures_since_hours: 24,
            workers: vec![],
            dead_letter_queues: vec![],
        };
        assert_eq!(
            text(&s),
            "jobrunner status at 2026-11-25T10:00:00Z\n\nJOBS: none configured\n\n\
             LAST FAILURES: none in the last 24h\n\nWORKERS: none configured\n\n\
             DEAD-LETTER QUEUES: none known\n"
        );
    }

    #[test]
    fn json_has_values_and_error_objects() {
        let value = serde_json::to_value(snapshot()).unwrap();
        assert_eq!(
            value["jobs"][0],
            serde_json::json!({"job": "thumbnails", "max_running": 5, "slots": {"running": 5, "waiting": 12}})
        );
        assert_eq!(
            value["jobs"][1],
            serde_json::json!({"job": "report", "max_running": null, "slots": null})
        );
        assert_eq!(
            value["workers"][1]["queue"],
            serde_json::json!({"error": "GetQueueAttributes: AccessDenied: no"})
        );
        assert_eq!(
            value["workers"][0]["service"],
            serde_json::json!({"desired": 4, "running": 3, "pending": 1})
        );
        assert_eq!(value["dead_letter_queues"][0]["messages"], 2);
        assert_eq!(value["at"], "2026-11-25T10:00:00Z");
        assert_eq!(value["failures"][0]["why"], "#2 oom exit 137");
    }

    #[test]
    fn a_frame_redraws_in_place_without_a_full_clear() {
        let frame = frame("a\nbb\n", "every 2s");
        assert_eq!(frame, "\x1b[Ha\x1b[K\nbb\x1b[K\nevery 2s\x1b[K\n\x1b[J");
        assert!(!frame.contains("\x1b[2J"));
    }
}
