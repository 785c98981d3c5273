//! Alerts about runs that never started: `launch_failed` (RunTask refused a run for good, or
//! its event could not be planned) and `missed_schedule` (a tick that produced no run). No
//! task exists, so there is no stop to describe: the alert names the job, the input, the run
//! and the reason, with the same subject rules, escaping and JSON schema as every alert.

use super::*;

/// A run that never started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnstartedRun<'a> {
    pub class: Class,
    pub job: &'a str,
    /// `s3://bucket/key` or `schedule@time`.
    pub input: &'a str,
    pub run_id: Option<&'a str>,
    pub reason: &'a str,
    pub time: DateTime<Utc>,
}

/// The Publish for a run that never started.
pub fn render_unstarted(run: &UnstartedRun<'_>) -> Publish {
    let field = |text: &str| clip(&safe::text(text), MAX_FIELD_CHARS);
    let (job, input, reason) = (field(run.job), field(run.input), field(run.reason));
    let headline = match run.class {
        Class::MissedSchedule => format!("{job}: the tick {input} produced no run"),
        _ => format!("{job}: the run for {input} could not be launched"),
    };
    let mut text = format!("{headline}\n\nJob: {job}\nInput: {input}\n");
    if let Some(run_id) = run.run_id {
        let _ = writeln!(
            text,
            "Run: {} (jobrunner run view {})",
            field(run_id),
            field(run_id)
        );
    }
    let _ = writeln!(text, "Reason: {reason}");
    let _ = writeln!(
        text,
        "Time: {}",
        run.time.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    if let Some(hint) = run.class.hint() {
        let _ = write!(text, "\n{hint}\n");
    }
    let document = json!({
        "schema": SCHEMA,
        "class": run.class.as_str(),
        "severity": run.class.severity().as_str(),
        "job": job,
        "input": input,
        "run_id": run.run_id,
        "reason": reason,
        "time": run.time.to_rfc3339_opts(SecondsFormat::Secs, true),
    })
    .to_string();
    let mut attributes = BTreeMap::new();
    attributes.insert("class".into(), run.class.as_str().into());
    attributes.insert("severity".into(), run.class.severity().as_str().into());
    attributes.insert("job".into(), clip(&safe::text(run.job), 256));
    attributes.insert("origin".into(), "job".into());
    Publish {
        subject: clean_subject(&format!(
            "{SUBJECT_PREFIX} {}: {}",
            run.class.label(),
            run.job
        )),
        message: message(&text, &document),
        attributes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launch_failure_names_job_input_and_reason_on_lines_of_its_own() {
        let publish = render_unstarted(&UnstartedRun {
            class: Class::LaunchFailed,
            job: "thumbnails",
            input: "s3://uploads/a.jpg\nConsole: https://evil.example",
            run_id: Some("0123456789abcdef0123"),
            reason: "TaskDefinition is inactive",
            time: "2026-11-25T10:00:00Z".parse().unwrap(),
        });
        assert_eq!(publish.subject, "[jobrunner] LAUNCH FAILED: thumbnails");
        let text = publish.body("email").unwrap();
        assert!(
            text.contains("Reason: TaskDefinition is inactive\n"),
            "{text}"
        );
        assert!(!text.lines().any(|l| l.starts_with("Console:")), "{text}");
        let doc: Value = serde_json::from_str(&publish.body("sqs").unwrap()).unwrap();
        assert_eq!(doc["class"], "launch_failed");
        assert_eq!(doc["run_id"], "0123456789abcdef0123");
        assert_eq!(publish.attributes["class"], "launch_failed");
        assert!(publish.size() < MAX_PUBLISH_BYTES);
    }

    #[test]
    fn a_missed_tick_says_so() {
        let publish = render_unstarted(&UnstartedRun {
            class: Class::MissedSchedule,
            job: "report",
            input: "hourly@2026-11-25T10:00:00Z",
            run_id: None,
            reason: "no run recorded 10m after the tick",
            time: "2026-11-25T10:10:00Z".parse().unwrap(),
        });
        assert_eq!(publish.subject, "[jobrunner] MISSED SCHEDULE: report");
        assert!(
            publish
                .body("default")
                .unwrap()
                .starts_with("report: the tick hourly@2026-11-25T10:00:00Z produced no run")
        );
    }
}
