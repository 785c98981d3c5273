//! Per-policy results: wait percentiles, task-minutes, scale actions, time to the first task.

use serde::Serialize;

use crate::engine::Run;

/// One row of results (the JSON shape of `jobrunner simulate --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub policy: String,
    /// Median wait, arrival → processing start, seconds.
    pub p50_wait_s: u64,
    pub p95_wait_s: u64,
    pub max_wait_s: u64,
    /// Task-minutes paid (a task counts from its launch until it stops).
    pub task_minutes: f64,
    /// Changes of the desired count.
    pub scale_actions: u32,
    /// Seconds from the first message to the first task running (0 if one already ran;
    /// `null` if none ever ran).
    pub first_task_running_s: Option<u64>,
    /// Messages in the trace.
    pub messages: u64,
    /// Messages never started by the end of the run; their waits count as a lower bound.
    pub unprocessed: u64,
    /// Messages processed more than once (only without the worker's heartbeat).
    pub redelivered: u64,
}

impl Summary {
    pub fn of(run: &Run) -> Summary {
        Summary {
            policy: run.policy.clone(),
            p50_wait_s: percentile(&run.waits, 50.0),
            p95_wait_s: percentile(&run.waits, 95.0),
            max_wait_s: run.waits.last().copied().unwrap_or(0),
            task_minutes: (run.task_seconds as f64 / 60.0 * 10.0).round() / 10.0,
            scale_actions: run.scale_actions,
            first_task_running_s: run.first_task_running,
            messages: run.messages,
            unprocessed: run.unprocessed,
            redelivered: run.deliveries.iter().filter(|d| **d > 1).count() as u64,
        }
    }
}

/// Nearest-rank percentile of ascending `values` (0 when empty).
pub fn percentile(values: &[u64], p: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// `{"results": [...]}`, pretty-printed, fields in the order of [`Summary`].
pub fn to_json(summaries: &[Summary]) -> String {
    #[derive(Serialize)]
    struct Results<'a> {
        results: &'a [Summary],
    }
    serde_json::to_string_pretty(&Results { results: summaries }).expect("summaries serialize")
}

/// A plain-text table; waits of runs that left messages unprocessed are marked `≥`.
pub fn table(summaries: &[Summary]) -> String {
    let mut rows = vec![[
        "policy".to_string(),
        "p50 wait".into(),
        "p95 wait".into(),
        "max wait".into(),
        "task-min".into(),
        "actions".into(),
        "first task".into(),
        "unprocessed".into(),
        "redelivered".into(),
    ]];
    for s in summaries {
        let mark = if s.unprocessed > 0 { "≥" } else { "" };
        rows.push([
            s.policy.clone(),
            format!("{mark}{}", seconds(s.p50_wait_s)),
            format!("{mark}{}", seconds(s.p95_wait_s)),
            format!("{mark}{}", seconds(s.max_wait_s)),
            format!("{:.1}", s.task_minutes),
            s.scale_actions.to_string(),
            s.first_task_running_s.map_or("never".into(), seconds),
            s.unprocessed.to_string(),
            s.redelivered.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let pad = widths[i] - cell.chars().count();
                if i == 0 {
                    format!("{cell}{}", " ".repeat(pad))
                } else {
                    format!("{}{cell}", " ".repeat(pad))
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `42 s`, `3m05s`, `2h01m`.
pub fn seconds(s: u64) -> String {
    match s {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), 50);
        assert_eq!(percentile(&values, 95.0), 95);
        assert_eq!(percentile(&values, 100.0), 100);
        assert_eq!(percentile(&[7], 95.0), 7);
        assert_eq!(percentile(&[], 95.0), 0);
    }

    #[test]
    fn json_has_the_documented_fields_in_order() {
        let summary = Summary {
            policy: "jobrunner".into(),
            p50_wait_s: 1,
            p95_wait_s: 2,
            max_wait_s: 3,
            task_minutes: 4.5,
            scale_actions: 6,
            first_task_running_s: None,
            messages: 7,
            unprocessed: 0,
            redelivered: 0,
        };
        let text = to_json(&[summary]);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let row = &value["results"][0];
        for key in [
            "policy",
            "p50_wait_s",
            "p95_wait_s",
            "max_wait_s",
            "task_minutes",
            "scale_actions",
            "first_task_running_s",
        ] {
            assert!(row.get(key).is_some(), "{key}");
        }
        assert!(row["first_task_running_s"].is_null());
        let keys: Vec<usize> = [
            "\"policy\"",
            "\"p50_wait_s\"",
            "\"task_minutes\"",
            "\"first_task_running_s\"",
        ]
        .iter()
        .map(|k| text.find(k).unwrap())
        .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(seconds(59), "59 s");
        assert_eq!(seconds(185), "3m05s");
        assert_eq!(seconds(7260), "2h01m");
    }
}
