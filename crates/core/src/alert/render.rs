//! Rendering an alert as an SNS Publish with `MessageStructure=json`: a readable text body for
//! `default`/`email`, one stable JSON document (schema [`SCHEMA`], see docs/alerts.md) for
//! `sqs`/`lambda`/`https`, a short printable-ASCII subject, and message attributes for
//! subscription filter policies. Everything stays within SNS's size limits.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::classify::Class;
use super::context::{JobInput, LogLink, Origin, TaskDefinitionLookup, console_url, log_links};
use super::digest::{Alert, StoppedTask};

/// The JSON document's schema name; bumped only on incompatible changes.
pub const SCHEMA: &str = "jobrunner.alert/v1";
/// Every subject starts with this.
pub const SUBJECT_PREFIX: &str = "[jobrunner]";
/// SNS wants subjects under 100 characters.
pub const MAX_SUBJECT_CHARS: usize = 99;
/// SNS's limit for one message, attributes included.
pub const MAX_PUBLISH_BYTES: usize = 262_144;
/// Tasks a digest shows in full.
pub const DIGEST_FULL: usize = 3;
/// Tasks a digest lists one line each after the full ones (more are counted, not listed).
pub const DIGEST_LISTED: usize = 200;
/// Longest free-text field (reasons, keys) kept in a message: S3 keys (≤ 1024 bytes) fit whole.
const MAX_FIELD_CHARS: usize = 1024;
/// Longest free-text field in the last-resort rendering.
const MIN_FIELD_CHARS: usize = 100;
/// Protocols that receive the JSON document.
pub const JSON_PROTOCOLS: &[&str] = &["sqs", "lambda", "https"];

/// An SNS Publish request (the topic is the adapter's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub subject: String,
    /// The `MessageStructure=json` document: `{"default": text, "email": text, "sqs": json, …}`.
    pub message: String,
    /// String message attributes: `class`, `job`, `severity`, `origin`, and `cluster` when known.
    pub attributes: BTreeMap<String, String>,
}

impl Publish {
    /// Always `json`: the message holds one body per protocol.
    pub const MESSAGE_STRUCTURE: &'static str = "json";

    /// Bytes SNS counts against [`MAX_PUBLISH_BYTES`] (message, attributes, and the subject
    /// for good measure).
    pub fn size(&self) -> usize {
        self.message.len()
            + self.subject.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + "String".len() + v.len())
                .sum::<usize>()
    }

    /// The body a protocol receives (`default` when it has no key of its own).
    pub fn body(&self, protocol: &str) -> Option<String> {
        let structure: Value = serde_json::from_str(&self.message).ok()?;
        structure
            .get(protocol)
            .or_else(|| structure.get("default"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// The request in the API's own JSON shape (`aws sns publish --cli-input-json`).
    pub fn to_input(&self, topic_arn: &str) -> Value {
        let attributes: serde_json::Map<String, Value> = self
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), json!({"DataType": "String", "StringValue": v})))
            .collect();
        json!({
            "TopicArn": topic_arn,
            "Subject": self.subject,
            "Message": self.message,
            "MessageStructure": Self::MESSAGE_STRUCTURE,
            "MessageAttributes": attributes,
        })
    }
}

/// Renders `alert`, shrinking a digest's lists until the message fits SNS's limit.
pub fn render(alert: &Alert) -> Publish {
    let total = alert.tasks.len();
    let mut full = total.min(DIGEST_FULL);
    let mut listed = (total - full).min(DIGEST_LISTED);
    loop {
        let publish = render_with(
            alert,
            Limits {
                full,
                listed,
                field_chars: MAX_FIELD_CHARS,
            },
        );
        if publish.size() <= MAX_PUBLISH_BYTES {
            return publish;
        }
        if listed > 0 {
            listed /= 2;
        } else if full > 1 {
            full -= 1;
        } else {
            return render_with(
                alert,
                Limits {
                    full: 1,
                    listed: 0,
                    field_chars: MIN_FIELD_CHARS,
                },
            );
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    full: usize,
    listed: usize,
    field_chars: usize,
}

fn render_with(alert: &Alert, limits: Limits) -> Publish {
    let text = text_body(alert, limits);
    let document = serde_json::to_string(&document(alert, limits)).unwrap_or_else(|_| "{}".into());
    let mut structure = serde_json::Map::new();
    structure.insert("default".into(), Value::String(text.clone()));
    structure.insert("email".into(), Value::String(text));
    for protocol in JSON_PROTOCOLS {
        structure.insert((*protocol).into(), Value::String(document.clone()));
    }
    Publish {
        subject: subject(alert),
        message: Value::Object(structure).to_string(),
        attributes: attributes(alert),
    }
}

/// Message attributes for SNS subscription filter policies.
pub fn attributes(alert: &Alert) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::new();
    attributes.insert("class".into(), alert.class.as_str().into());
    attributes.insert("severity".into(), alert.class.severity().as_str().into());
    attributes.insert("job".into(), non_empty(&alert.name));
    attributes.insert("origin".into(), alert.origin_kind.into());
    if let Some(cluster) = alert.tasks[0]
        .change
        .cluster_name()
        .filter(|c| !c.is_empty())
    {
        attributes.insert("cluster".into(), cluster.into());
    }
    attributes
}

fn non_empty(text: &str) -> String {
    if text.is_empty() {
        "unknown".into()
    } else {
        text.into()
    }
}

// ---------------------------------------------------------------------------------------------
// Subject

/// `[jobrunner] OOM thumbnails exit 137`; digests add the count:
/// `[jobrunner] OOM thumbnails: 12 tasks, exit 137`. Printable ASCII, under 100 characters.
pub fn subject(alert: &Alert) -> String {
    let details: Vec<String> = alert.tasks.iter().map(subject_detail).collect();
    let common = details
        .first()
        .filter(|first| details.iter().all(|d| d == *first))
        .cloned()
        .unwrap_or_default();
    let text = if alert.is_digest() {
        let detail = common.trim_start_matches(':').trim();
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(", {detail}")
        };
        format!(
            "{SUBJECT_PREFIX} {} {}: {} tasks{detail}",
            alert.class.label(),
            alert.name,
            alert.tasks.len()
        )
    } else {
        format!(
            "{SUBJECT_PREFIX} {} {}{common}",
            alert.class.label(),
            alert.name
        )
    };
    clean_subject(&text)
}

/// What follows the name in a subject, e.g. ` exit 1 (app)` or `: CannotPullContainerError`.
fn subject_detail(task: &StoppedTask) -> String {
    let c = &task.classification;
    let several = task.change.containers.len() > 1;
    match c.class {
        Class::NonZeroExit | Class::Oom => {
            let mut detail = c
                .exit_code
                .map(|code| format!(" exit {code}"))
                .unwrap_or_default();
            if let (true, Some(container)) = (several, &c.container) {
                let _ = write!(detail, " ({container})");
            }
            detail
        }
        Class::FailedToStart | Class::Unknown => {
            match c.reason.as_deref().or(task.change.stop_code.as_deref()) {
                Some(reason) => format!(": {}", reason_head(reason)),
                None => String::new(),
            }
        }
        Class::Unhealthy => match c.reason.as_deref() {
            Some(r) if r.contains("ELB") => ": ELB health checks".into(),
            Some(r) if r.to_ascii_lowercase().contains("container health") => {
                ": container health checks".into()
            }
            _ => String::new(),
        },
        Class::SpotInterruption => match task.change.stop_code.as_deref() {
            Some("TerminationNotice") => " (TerminationNotice)".into(),
            _ => String::new(),
        },
        Class::Succeeded | Class::ScaledIn | Class::UserStopped | Class::Timeout => String::new(),
    }
}

/// The error name of a reason (`CannotPullContainerError: pull image…` → `CannotPullContainerError`).
fn reason_head(reason: &str) -> &str {
    let head = reason.split(':').next().unwrap_or(reason).trim();
    if head.is_empty() || head.len() > 60 {
        reason.trim()
    } else {
        head
    }
}

/// Printable ASCII only, one line, under 100 characters.
pub fn clean_subject(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        let ch = match ch {
            ' '..='~' => ch,
            c if c.is_whitespace() || c.is_control() => ' ',
            _ => '?',
        };
        if !(ch == ' ' && (out.is_empty() || out.ends_with(' '))) {
            out.push(ch);
        }
    }
    let out = out.trim_end().to_owned();
    if out.len() <= MAX_SUBJECT_CHARS {
        return out;
    }
    format!("{}...", out[..MAX_SUBJECT_CHARS - 3].trim_end())
}

// ---------------------------------------------------------------------------------------------
// Text body

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
    }
}

fn text_body(alert: &Alert, limits: Limits) -> String {
    let mut out = String::new();
    let total = alert.tasks.len();
    if total == 1 {
        let task = &alert.tasks[0];
        let _ = writeln!(out, "{}\n", clip(&summary(task), limits.field_chars));
        task_text(task, limits, &mut out);
    } else {
        let first = &alert.tasks[0];
        let _ = writeln!(
            out,
            "{total} tasks of {} stopped with class {} ({}).",
            first.origin.describe(),
            alert.class.as_str(),
            alert.class.severity().as_str()
        );
        let codes = exit_code_counts(alert);
        if !codes.is_empty() {
            let _ = writeln!(out, "Exit codes: {codes}");
        }
        let shown = limits.full.min(total);
        let _ = writeln!(out, "The first {shown} in full, then one line per task.\n");
        for (i, task) in alert.tasks.iter().take(shown).enumerate() {
            let _ = writeln!(
                out,
                "--- {} of {total}: {}",
                i + 1,
                clip(&summary(task), limits.field_chars)
            );
            task_text(task, limits, &mut out);
            out.push('\n');
        }
        let rest = &alert.tasks[shown..];
        if !rest.is_empty() {
            let _ = writeln!(out, "--- The other {}:", rest.len());
            for task in rest.iter().take(limits.listed) {
                let _ = writeln!(out, "{}", clip(&task_line(task), limits.field_chars));
            }
            let omitted = rest.len().saturating_sub(limits.listed);
            if omitted > 0 {
                let _ = writeln!(
                    out,
                    "... and {omitted} more, not listed (a digest lists at most {DIGEST_LISTED} tasks, and fewer when SNS's 256 KB limit requires)."
                );
            }
        }
    }
    if let Some(hint) = alert.class.hint() {
        let _ = writeln!(out, "\nWhat to do:  {hint}");
    }
    out
}

/// `137 x12, 1 x2`: how often each exit code of the class's containers occurs.
fn exit_code_counts(alert: &Alert) -> String {
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
fn task_line(task: &StoppedTask) -> String {
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

fn task_text(task: &StoppedTask, limits: Limits, out: &mut String) {
    let change = &task.change;
    let clipped = |text: &str| clip(text, limits.field_chars);
    let mut field = |label: &str, value: &str| {
        let label = if label.is_empty() {
            String::new()
        } else {
            format!("{label}:")
        };
        let _ = writeln!(out, "{label:<12} {value}");
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
    for (i, container) in change.containers.iter().enumerate() {
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
            let links = log_links(change, info);
            if links.is_empty() {
                field(
                    "Logs",
                    "none in CloudWatch Logs (no container uses the awslogs driver with a stream prefix)",
                );
            }
            for (i, link) in links.iter().enumerate() {
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

fn time(t: DateTime<Utc>) -> String {
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
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}... [truncated]", &text[..cut]),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON document (docs/alerts.md describes the schema)

#[derive(Debug, Serialize)]
struct Document {
    schema: &'static str,
    class: Class,
    severity: &'static str,
    name: String,
    origin: &'static str,
    summary: String,
    hint: Option<&'static str>,
    count: usize,
    tasks: Vec<TaskDocument>,
    more_tasks: Vec<TaskLine>,
    omitted: usize,
    truncated: bool,
}

#[derive(Debug, Serialize)]
struct TaskDocument {
    task_arn: String,
    task_id: String,
    version: Option<u64>,
    cluster: Option<String>,
    region: Option<String>,
    account: Option<String>,
    task_definition_arn: Option<String>,
    origin: Origin,
    started_by: Option<String>,
    group: Option<String>,
    launch_type: Option<String>,
    capacity_provider: Option<String>,
    availability_zone: Option<String>,
    cpu: Option<String>,
    memory: Option<String>,
    class: Class,
    summary: String,
    container: Option<String>,
    exit_code: Option<i64>,
    reason: Option<String>,
    stop_code: Option<String>,
    stopped_reason: Option<String>,
    containers: Vec<ContainerDocument>,
    input: JobInput,
    created_at: Option<String>,
    started_at: Option<String>,
    stopping_at: Option<String>,
    stopped_at: Option<String>,
    run_seconds: Option<i64>,
    console_url: Option<String>,
    logs: Vec<LogLink>,
    /// `found`, `no_awslogs`, `not_looked_up` or `unavailable`.
    logs_status: &'static str,
}

#[derive(Debug, Serialize)]
struct ContainerDocument {
    name: String,
    exit_code: Option<i64>,
    reason: Option<String>,
    last_status: Option<String>,
    /// `null` when the task definition was not looked up.
    essential: Option<bool>,
}

#[derive(Debug, Serialize)]
struct TaskLine {
    task_arn: String,
    stopped_at: Option<String>,
    exit_code: Option<i64>,
    input: JobInput,
}

fn document(alert: &Alert, limits: Limits) -> Document {
    let total = alert.tasks.len();
    let full = limits.full.min(total);
    let listed = limits.listed.min(total - full);
    let first = &alert.tasks[0];
    Document {
        schema: SCHEMA,
        class: alert.class,
        severity: alert.class.severity().as_str(),
        name: alert.name.clone(),
        origin: alert.origin_kind,
        summary: if total == 1 {
            clip(&summary(first), limits.field_chars)
        } else {
            format!(
                "{total} tasks of {} stopped with class {}",
                first.origin.describe(),
                alert.class.as_str()
            )
        },
        hint: alert.class.hint(),
        count: total,
        tasks: alert
            .tasks
            .iter()
            .take(full)
            .map(|t| task_document(t, limits.field_chars))
            .collect(),
        more_tasks: alert.tasks[full..]
            .iter()
            .take(listed)
            .map(|t| TaskLine {
                task_arn: t.change.task_arn.clone(),
                stopped_at: t.change.stopped_at.map(time),
                exit_code: t.classification.exit_code,
                input: clip_input(JobInput::of(&t.change), limits.field_chars),
            })
            .collect(),
        omitted: total - full - listed,
        truncated: limits.field_chars < MAX_FIELD_CHARS,
    }
}

fn task_document(task: &StoppedTask, max: usize) -> TaskDocument {
    let change = &task.change;
    let opt = |text: &Option<String>| text.as_deref().map(|t| clip(t, max));
    let info = task.definition.info();
    let logs = info.map(|i| log_links(change, i)).unwrap_or_default();
    TaskDocument {
        task_arn: change.task_arn.clone(),
        task_id: change.task_id().to_owned(),
        version: change.version,
        cluster: change.cluster_name().map(str::to_owned),
        region: change.region().map(str::to_owned),
        account: change.account().map(str::to_owned),
        task_definition_arn: change.task_definition_arn.clone(),
        origin: task.origin.clone(),
        started_by: change.started_by.clone(),
        group: change.group.clone(),
        launch_type: change.launch_type.clone(),
        capacity_provider: change.capacity_provider_name.clone(),
        availability_zone: change.availability_zone.clone(),
        cpu: change.cpu.clone(),
        memory: change.memory.clone(),
        class: task.class(),
        summary: clip(&summary(task), max),
        container: task.classification.container.clone(),
        exit_code: task.classification.exit_code,
        reason: opt(&task.classification.reason),
        stop_code: change.stop_code.clone(),
        stopped_reason: opt(&change.stopped_reason),
        containers: change
            .containers
            .iter()
            .map(|c| ContainerDocument {
                name: c.name.clone(),
                exit_code: c.exit_code,
                reason: opt(&c.reason),
                last_status: c.last_status.clone(),
                essential: info.map(|i| i.is_essential(&c.name)),
            })
            .collect(),
        input: clip_input(JobInput::of(change), max),
        created_at: change.created_at.map(time),
        started_at: change.started_at.map(time),
        stopping_at: change.stopping_at.map(time),
        stopped_at: change.stopped_at.map(time),
        run_seconds: change.run_seconds(),
        console_url: console_url(change),
        logs_status: match (&task.definition, logs.is_empty()) {
            (TaskDefinitionLookup::Found(_), false) => "found",
            (TaskDefinitionLookup::Found(_), true) => "no_awslogs",
            (TaskDefinitionLookup::NotLookedUp, _) => "not_looked_up",
            (TaskDefinitionLookup::Failed(_), _) => "unavailable",
        },
        logs,
    }
}

fn clip_input(mut input: JobInput, max: usize) -> JobInput {
    input.key = input.key.map(|k| clip(&k, max));
    input
}
