//! The stable JSON document for `sqs`/`lambda`/`https` subscribers (schema in docs/alerts.md).

use super::*;

#[derive(Debug, Serialize)]
pub(super) struct Document {
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
pub(super) struct TaskDocument {
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
    /// A run's attempts, when it failed for good after retries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attempts: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct ContainerDocument {
    name: String,
    exit_code: Option<i64>,
    reason: Option<String>,
    last_status: Option<String>,
    /// `null` when the task definition was not looked up.
    essential: Option<bool>,
}

#[derive(Debug, Serialize)]
pub(super) struct TaskLine {
    task_arn: String,
    stopped_at: Option<String>,
    exit_code: Option<i64>,
    input: JobInput,
}

/// The document as published: every string clipped to the limits, unsafe characters escaped.
pub(super) fn json_document(alert: &Alert, limits: Limits) -> String {
    let mut value = serde_json::to_value(document(alert, limits)).unwrap_or_else(|_| json!({}));
    let hidden = alert
        .tasks
        .iter()
        .take(limits.full)
        .any(|t| t.change.containers.len() > limits.containers);
    if clip_strings(&mut value, limits.field_chars) || hidden {
        value["truncated"] = Value::Bool(true);
    }
    safe::json(value.to_string())
}

/// Clips every string in `value`, however deep: no field, present or future, escapes the limit.
/// True when one was clipped.
fn clip_strings(value: &mut Value, max: usize) -> bool {
    match value {
        Value::String(text) if text.chars().nth(max).is_some() => {
            *text = clip(text, max);
            true
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |cut, v| clip_strings(v, max) | cut),
        Value::Object(map) => map
            .values_mut()
            .fold(false, |cut, v| clip_strings(v, max) | cut),
        _ => false,
    }
}

pub(super) fn document(alert: &Alert, limits: Limits) -> Document {
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
            .map(|t| task_document(t, limits))
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
        truncated: limits.is_cut(),
    }
}

pub(super) fn task_document(task: &StoppedTask, limits: Limits) -> TaskDocument {
    let change = &task.change;
    let max = limits.field_chars;
    let opt = |text: &Option<String>| text.as_deref().map(|t| clip(t, max));
    let info = task.definition.info();
    let mut logs: Vec<LogLink> = info
        .map(|i| {
            log_links_iter(change, i)
                .take(limits.containers.max(1))
                .collect()
        })
        .unwrap_or_default();
    let logs_found = !logs.is_empty();
    logs.truncate(limits.containers);
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
            .take(limits.containers)
            .map(|c| ContainerDocument {
                name: c.name.clone(),
                exit_code: c.exit_code,
                reason: opt(&c.reason),
                last_status: c.last_status.clone(),
                essential: info.map(|i| i.is_essential(&c.name)),
            })
            .collect(),
        attempts: task.history.iter().map(|l| clip(l, max)).collect(),
        input: clip_input(JobInput::of(change), max),
        created_at: change.created_at.map(time),
        started_at: change.started_at.map(time),
        stopping_at: change.stopping_at.map(time),
        stopped_at: change.stopped_at.map(time),
        run_seconds: change.run_seconds(),
        console_url: console_url(change),
        logs_status: match (&task.definition, logs_found) {
            (TaskDefinitionLookup::Found(_), true) => "found",
            (TaskDefinitionLookup::Found(_), false) => "no_awslogs",
            (TaskDefinitionLookup::NotLookedUp, _) => "not_looked_up",
            (TaskDefinitionLookup::Failed(_), _) => "unavailable",
        },
        logs,
    }
}

pub(super) fn clip_input(mut input: JobInput, max: usize) -> JobInput {
    input.key = input.key.map(|k| clip(&k, max));
    input
}
