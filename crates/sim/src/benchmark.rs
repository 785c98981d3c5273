//! The scaling benchmark: every trace of a directory at the same bounds, every peer, and
//! jobrunner in both modes, with the goals of the benchmark checked.
//!
//! For each trace: (p95 wait, task-minutes) of every policy, the work floor (the processing
//! time of every message, summed), and jobrunner's better mode: the one with the lower sum of
//! its p95 wait and task-minutes each relative to `keda-tuned`'s.
//!
//! Goals: on every trace no peer dominates jobrunner (as low or lower on both metrics, lower on
//! one); on bursty and sparse traffic (`burst`, `spiky`, `trickle`) jobrunner is at least 15 %
//! better than `keda-tuned` on one metric and at most 2 % worse on the other; on steady traffic
//! (`diurnal`) its p95 is at most 2 % above `keda-tuned`'s and its task-minutes at most 1.10×
//! the work floor.

use std::fmt::Write as _;
use std::path::Path;

use jobrunner_core::config::{Worker, WorkerMode};
use serde::Serialize;

use crate::policy::jobrunner::mode_name;
use crate::report::{Summary, seconds};
use crate::{BoundsOverride, Error, PolicyKind, Settings, Trace, compare};

/// The peer every goal is measured against.
pub const REFERENCE: &str = "keda-tuned";
/// Traces of bursty or sparse traffic.
pub const BURSTY: [&str; 3] = ["burst", "spiky", "trickle"];
/// Traces of steady traffic.
pub const STEADY: [&str; 1] = ["diurnal"];

/// One trace's results.
#[derive(Debug, Clone, Serialize)]
pub struct TraceResult {
    pub trace: String,
    pub messages: u64,
    /// Processing time of every message, in minutes.
    pub work_floor_minutes: f64,
    /// jobrunner in service mode, jobrunner in jobs mode, then every peer.
    pub results: Vec<Summary>,
    /// `service` or `jobs`.
    pub better_mode: String,
}

impl TraceResult {
    /// The row of a policy by name.
    pub fn get(&self, policy: &str) -> Option<&Summary> {
        self.results.iter().find(|s| s.policy == policy)
    }

    /// jobrunner in its better mode.
    pub fn jobrunner(&self) -> &Summary {
        self.get(&format!("jobrunner ({})", self.better_mode))
            .expect("both modes ran")
    }

    /// The peers (everything but jobrunner).
    pub fn peers(&self) -> impl Iterator<Item = &Summary> {
        self.results
            .iter()
            .filter(|s| !s.policy.starts_with("jobrunner"))
    }
}

/// One goal on one trace.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    pub trace: String,
    pub goal: String,
    pub met: bool,
    pub detail: String,
}

/// The CSV traces of `dir`, by file stem, in name order.
pub fn load_traces(dir: &Path) -> Result<Vec<(String, Trace)>, Error> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::new(format!("{}: cannot read: {e}", dir.display())))?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(Error::new(format!("{}: no *.csv traces", dir.display())));
    }
    paths
        .iter()
        .map(|p| {
            let name = p
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            Ok((name, Trace::load(p)?))
        })
        .collect()
}

/// Runs every trace under jobrunner in both modes and every peer.
pub fn run(
    traces: &[(String, Trace)],
    worker: &Worker,
    bounds: BoundsOverride,
    settings: &Settings,
) -> Result<Vec<TraceResult>, Error> {
    let peers: Vec<PolicyKind> = PolicyKind::ALL
        .into_iter()
        .filter(|k| *k != PolicyKind::Jobrunner)
        .collect();
    traces
        .iter()
        .map(|(name, trace)| {
            let mut results = Vec::new();
            for mode in [WorkerMode::Service, WorkerMode::Jobs] {
                let bounds = BoundsOverride {
                    mode: Some(mode),
                    ..bounds
                };
                let runs = compare(trace, worker, &[PolicyKind::Jobrunner], bounds, settings)?;
                results.extend(runs.iter().map(Summary::of));
            }
            let runs = compare(trace, worker, &peers, bounds, settings)?;
            results.extend(runs.iter().map(Summary::of));
            let work = settings.work.durations(trace.total(), settings.seed);
            let work_floor_minutes = work.iter().map(|w| f64::from(*w)).sum::<f64>() / 60.0;
            let mut result = TraceResult {
                trace: name.clone(),
                messages: trace.total(),
                work_floor_minutes: (work_floor_minutes * 10.0).round() / 10.0,
                results,
                better_mode: String::new(),
            };
            result.better_mode = better_mode(&result).to_string();
            Ok(result)
        })
        .collect()
}

/// The mode whose p95 and task-minutes, each relative to the reference's, sum lower
/// (service on a tie).
fn better_mode(result: &TraceResult) -> &'static str {
    let score = |mode: WorkerMode| {
        let own = result.get(&format!("jobrunner ({})", mode_name(mode)));
        let reference = result.get(REFERENCE);
        match (own, reference) {
            (Some(own), Some(reference)) => {
                ratio(own.p95_wait_s as f64, reference.p95_wait_s as f64)
                    + ratio(own.task_minutes, reference.task_minutes)
            }
            _ => f64::INFINITY,
        }
    };
    if score(WorkerMode::Jobs) < score(WorkerMode::Service) {
        "jobs"
    } else {
        "service"
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else if a > 0.0 {
        f64::INFINITY
    } else {
        1.0
    }
}

/// Whether `peer` dominates `own`: no worse on both metrics, better on one.
pub fn dominates(peer: &Summary, own: &Summary) -> bool {
    let no_worse = peer.p95_wait_s <= own.p95_wait_s && peer.task_minutes <= own.task_minutes;
    let better = peer.p95_wait_s < own.p95_wait_s || peer.task_minutes < own.task_minutes;
    no_worse && better
}

fn change(own: f64, reference: f64) -> String {
    if reference == 0.0 {
        return "n/a".into();
    }
    format!("{:+.1} %", (own - reference) / reference * 100.0)
}

/// The benchmark's goals on every trace.
pub fn goals(results: &[TraceResult]) -> Vec<Goal> {
    let mut goals = Vec::new();
    for result in results {
        let own = result.jobrunner();
        let trace = result.trace.clone();
        let dominating: Vec<&str> = result
            .peers()
            .filter(|p| dominates(p, own))
            .map(|p| p.policy.as_str())
            .collect();
        goals.push(Goal {
            trace: trace.clone(),
            goal: "dominated by no peer on (p95 wait, task-minutes)".into(),
            met: dominating.is_empty() && own.unprocessed == 0,
            detail: if dominating.is_empty() {
                "none".into()
            } else {
                format!("dominated by {}", dominating.join(", "))
            },
        });
        let Some(reference) = result.get(REFERENCE) else {
            continue;
        };
        let (p95, ref_p95) = (own.p95_wait_s as f64, reference.p95_wait_s as f64);
        let (tm, ref_tm) = (own.task_minutes, reference.task_minutes);
        let versus = format!(
            "p95 {} vs {} ({}); task-minutes {tm:.1} vs {ref_tm:.1} ({})",
            seconds(own.p95_wait_s),
            seconds(reference.p95_wait_s),
            change(p95, ref_p95),
            change(tm, ref_tm)
        );
        if BURSTY.contains(&trace.as_str()) {
            let met = (p95 <= 0.85 * ref_p95 && tm <= 1.02 * ref_tm)
                || (tm <= 0.85 * ref_tm && p95 <= 1.02 * ref_p95);
            goals.push(Goal {
                trace: trace.clone(),
                goal: format!(
                    "≥ 15 % better than {REFERENCE} on one metric, ≤ 2 % worse on the other"
                ),
                met,
                detail: versus.clone(),
            });
        }
        if STEADY.contains(&trace.as_str()) {
            goals.push(Goal {
                trace: trace.clone(),
                goal: format!("p95 within 2 % of {REFERENCE}'s"),
                met: p95 <= 1.02 * ref_p95,
                detail: versus.clone(),
            });
            let floor = result.work_floor_minutes;
            goals.push(Goal {
                trace,
                goal: "task-minutes ≤ 1.10 × the work floor".into(),
                met: tm <= 1.10 * floor,
                detail: format!("{tm:.1} vs {floor:.1} ({:.3}×)", ratio(tm, floor)),
            });
        }
    }
    goals
}

/// The results and goals as Markdown tables.
pub fn markdown(results: &[TraceResult], goals: &[Goal]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| trace | messages | work floor (task-min) | policy | p95 wait | task-minutes | × floor | unprocessed |"
    );
    let _ = writeln!(out, "|---|---:|---:|---|---:|---:|---:|---:|");
    for result in results {
        for (i, s) in result.results.iter().enumerate() {
            let better = s.policy == format!("jobrunner ({})", result.better_mode);
            let name = if better {
                format!("**{}** (better mode)", s.policy)
            } else {
                s.policy.clone()
            };
            let mark = if s.unprocessed > 0 { "≥" } else { "" };
            let (trace, messages, floor) = if i == 0 {
                (
                    result.trace.clone(),
                    result.messages.to_string(),
                    format!("{:.1}", result.work_floor_minutes),
                )
            } else {
                Default::default()
            };
            let _ = writeln!(
                out,
                "| {trace} | {messages} | {floor} | {name} | {mark}{} | {:.1} | {:.2} | {} |",
                seconds(s.p95_wait_s),
                s.task_minutes,
                ratio(s.task_minutes, result.work_floor_minutes),
                s.unprocessed
            );
        }
    }
    out.push('\n');
    let _ = writeln!(out, "| trace | goal | result | measured |");
    let _ = writeln!(out, "|---|---|---|---|");
    for g in goals {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            g.trace,
            g.goal,
            if g.met { "met" } else { "**missed**" },
            g.detail
        );
    }
    let met = goals.iter().filter(|g| g.met).count();
    let _ = writeln!(out, "\n{met} of {} goals met.", goals.len());
    out
}

/// `{"traces": [...], "goals": [...]}`.
pub fn to_json(results: &[TraceResult], goals: &[Goal]) -> String {
    #[derive(Serialize)]
    struct Out<'a> {
        traces: &'a [TraceResult],
        goals: &'a [Goal],
    }
    serde_json::to_string_pretty(&Out {
        traces: results,
        goals,
    })
    .expect("results serialize")
}
