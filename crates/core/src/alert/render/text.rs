//! The readable text body for `default`/`email` subscribers.

use super::*;

/// One sentence: what happened to the task.
pub fn summary(task: &StoppedTask) -> String {
    let c = &task.classification;
    let name = task.origin.name();
    let container = c.container.as_deref().unwrap_or("?");
    let reason = c.reason.as_deref().unwrap_or("no reason given");
    match c.class {
        Class::Succeeded => format!("{name}: every essential container exited 0"),
        Class::NonZeroExit => format!(
            "{name}: container {container} exited with code {}",
            c.exit_code.map_or("?".into(), |e| e.to_string())
        ),
        Class::Oom if c.container.is_some() => format!(
            "{name}: container {container} ran out of memory{}",
            c.exit_code
                .map(|e| format!(" (exit {e})"))
                .unwrap_or_default()
        ),
        Class::Oom => format!("{name}: the task ran out of memory"),
        Class::FailedToStart => format!(
            "{name}: ECS could not start the task ({})",
            reason_head(reason)
        ),
        Class::SpotInterruption => format!(
            "{name}: AWS reclaimed the task's capacity ({})",
            task.change
                .stop_code
                .as_deref()
                .unwrap_or("SpotInterruption")
        ),
        Class::ScaledIn => format!("{name}: stopped by the service scheduler: {reason}"),
        Class::UserStopped => format!("{name}: stopped by a StopTask call: {reason}"),
        Class::Timeout => format!("{name}: stopped after running past its timeout"),
        Class::Unhealthy => format!("{name}: {reason}"),
        Class::Unknown => format!(
            "{name}: stopped ({}): {reason}",
            task.change.stop_code.as_deref().unwrap_or("no stop code")
        ),
        // Never the class of a stopped task (runs that never started are alerted by the
        // launcher and the tracker's sweep, see `alert::run`), but a stop can be read that way.
        Class::LaunchFailed | Class::MissedSchedule => format!("{name}: {reason}"),
    }
}

/// The text body under construction. Every line goes through [`TextOut::line`], which escapes
/// unsafe characters ([`safe::text`]) and clips the line, so the only line breaks in the body
/// are its own, whatever the fields hold.
pub(super) struct TextOut {
    out: String,
    max_line: usize,
}

impl TextOut {
    fn new(limits: Limits) -> TextOut {
        TextOut {
            out: String::new(),
            // A field plus its label.
            max_line: limits.field_chars + 13,
        }
    }

    pub(super) fn line(&mut self, text: &str) {
        // Clipped before escaping too, so that a huge field costs no more than a short one.
        let line = clip(&safe::text(&clip(text, self.max_line)), self.max_line);
        self.out.push_str(&line);
        self.out.push('\n');
    }
}

pub(super) fn text_body(alert: &Alert, limits: Limits) -> String {
    let mut out = TextOut::new(limits);
    let total = alert.tasks.len();
    if total == 1 {
        let task = &alert.tasks[0];
        out.line(&summary(task));
        out.line("");
        task_text(task, limits, &mut out);
    } else {
        let first = &alert.tasks[0];
        out.line(&format!(
            "{total} tasks of {} stopped with class {} ({}).",
            first.origin.describe(),
            alert.class.as_str(),
            alert.class.severity().as_str()
        ));
        let codes = exit_code_counts(alert);
        if !codes.is_empty() {
            out.line(&format!("Exit codes: {codes}"));
        }
        let shown = limits.full.min(total);
        out.line(&format!(
            "The first {shown} in full, then one line per task."
        ));
        out.line("");
        for (i, task) in alert.tasks.iter().take(shown).enumerate() {
            out.line(&format!("--- {} of {total}: {}", i + 1, summary(task)));
            task_text(task, limits, &mut out);
            out.line("");
        }
        let rest = &alert.tasks[shown..];
        if !rest.is_empty() {
            out.line(&format!("--- The other {}:", rest.len()));
            for task in rest.iter().take(limits.listed) {
                out.line(&task_line(task));
            }
            let omitted = rest.len().saturating_sub(limits.listed);
            if omitted > 0 {
                out.line(&format!(
                    "... and {omitted} more, not listed (a digest lists at most {DIGEST_LISTED} tasks, and fewer when SNS's 256 KB limit requires)."
                ));
            }
        }
    }
    if let Some(hint) = alert.class.hint() {
        out.line("");
        out.line(&format!("What to do:  {hint}"));
    }
    out.out
}

/// `137 x12, 1 x2`: how often each exit code of the class's containers occurs.
pub(super) fn exit_code_counts(alert: &Alert) -> String {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for task in &alert.tasks {
        if let Some(code) = task.classification.exit_code {
            *counts.entry(code).or_default() += 1;
        }
    }
    counts
        .iter()
        .map(|(code, n)| format!("{code} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line of a digest's list: `<task id>  stopped <time>  exit 1  s3://bucket/key`.
pub(super) fn task_line(task: &StoppedTask) -> String {
    let mut line = task.change.task_id().to_owned();
    if let Some(stopped) = task.change.stopped_at {
        let _ = write!(line, "  stopped {}", time(stopped));
    }
    if let Some(code) = task.classification.exit_code {
        let _ = write!(line, "  exit {code}");
    }
    if let Some(input) = JobInput::of(&task.change).describe() {
        let _ = write!(line, "  {input}");
    }
    line
}

pub(super) fn task_text(task: &StoppedTask, limits: Limits, out: &mut TextOut) {
    let change = &task.change;
    let clipped = |text: &str| clip(text, limits.field_chars);
    let mut field = |label: &str, value: &str| {
        let label = if label.is_empty() {
            String::new()
        } else {
            format!("{label}:")
        };
        out.line(&format!("{label:<12} {value}"));
    };
    field("Origin", &clipped(&task.origin.describe()));
    if let Some(input) = JobInput::of(change).describe() {
        field("Input", &clipped(&input));
    }
    field(
        "Class",
        &format!(
            "{} ({})",
            task.class().as_str(),
            task.class().severity().as_str()
        ),
    );
    for (i, line) in task.history.iter().enumerate() {
        field(if i == 0 { "Attempts" } else { "" }, &clipped(line));
    }
    // The task's own reason is on the Stop line.
    if let Some(reason) = task
        .classification
        .reason
        .as_ref()
        .filter(|r| Some(*r) != change.stopped_reason.as_ref())
    {
        field("Reason", &clipped(reason));
    }
    let stop = match (&change.stop_code, &change.stopped_reason) {
        (Some(code), Some(reason)) => Some(format!("{code}: {reason}")),
        (Some(code), None) => Some(code.clone()),
        (None, Some(reason)) => Some(reason.clone()),
        (None, None) => None,
    };
    if let Some(stop) = stop {
        field("Stop", &clipped(&stop));
    }
    let definition = task.definition.info();
    for (i, container) in change.containers.iter().take(limits.containers).enumerate() {
        let mut line = container.name.clone();
        if definition.is_some_and(|d| !d.is_essential(&container.name)) {
            line.push_str(" (not essential)");
        }
        match container.exit_code {
            Some(code) => {
                let _ = write!(line, ": exit {code}");
            }
            None => line.push_str(": no exit code"),
        }
        if let Some(reason) = &container.reason {
            let _ = write!(line, ", {reason}");
        }
        field(if i == 0 { "Containers" } else { "" }, &clipped(&line));
    }
    let hidden = change.containers.len().saturating_sub(limits.containers);
    if hidden > 0 {
        field(
            if limits.containers == 0 {
                "Containers"
            } else {
                ""
            },
            &format!("... and {hidden} more containers, not shown"),
        );
    }
    if let Some(created) = change.created_at {
        field("Created", &time(created));
    }
    if let Some(started) = change.started_at {
        field("Started", &time(started));
    }
    if let Some(stopped) = change.stopped_at {
        let ran = match (change.started_at, change.run_seconds()) {
            (Some(_), Some(secs)) => format!(" (ran {})", duration(secs)),
            (None, Some(secs)) => format!(
                " ({} after it was created; it never started)",
                duration(secs)
            ),
            _ => String::new(),
        };
        field("Stopped", &format!("{}{ran}", time(stopped)));
    }
    field("Task", &change.task_arn);
    let placement: Vec<String> = [
        change.task_definition().map(str::to_owned),
        change
            .capacity_provider_name
            .clone()
            .or_else(|| change.launch_type.clone()),
        change.availability_zone.clone(),
        match (&change.cpu, &change.memory) {
            (Some(cpu), Some(memory)) => Some(format!("{cpu} CPU units, {memory} MiB")),
            _ => None,
        },
    ]
    .into_iter()
    .flatten()
    .collect();
    if !placement.is_empty() {
        field("Definition", &placement.join(", "));
    }
    if let Some(url) = console_url(change) {
        field("Console", &url);
    }
    match &task.definition {
        TaskDefinitionLookup::Found(info) => {
            let links: Vec<LogLink> = log_links_iter(change, info)
                .take(limits.containers.max(1))
                .collect();
            if links.is_empty() {
                field(
                    "Logs",
                    "none in CloudWatch Logs (no container uses the awslogs driver with a stream prefix)",
                );
            }
            for (i, link) in links.iter().take(limits.containers).enumerate() {
                field(
                    if i == 0 { "Logs" } else { "" },
                    &format!("{}: {}", link.container, link.url),
                );
            }
        }
        TaskDefinitionLookup::NotLookedUp => {
            field("Logs", "(needs a live DescribeTaskDefinition lookup)")
        }
        TaskDefinitionLookup::Failed(error) => {
            field("Logs", &format!("(unavailable: {})", clipped(error)))
        }
    }
}

pub(super) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `45s`, `2m 41s`, `1h 03m 10s`, `2d 04h 00m`.
pub fn duration(secs: i64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s:02}s"),
        (0, _, _) => format!("{h}h {m:02}m {s:02}s"),
        _ => format!("{d}d {h:02}h {m:02}m"),
    }
}

/// At most `max` characters, marked when cut.
pub(super) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}... [truncated]", &text[..cut]),
    }
}
