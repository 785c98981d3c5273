//! Cross-field rules of the config. Each failure names the field path and the reason.

use std::collections::BTreeSet;

use super::model::*;
use crate::error::Error;
use crate::{fargate, template};

/// Prefix of every `startedBy` jobrunner sets; ECS allows 128 characters of `[A-Za-z0-9_/-]`.
pub const STARTED_BY_PREFIX: &str = "jobrunner/";
const STARTED_BY_MAX: usize = 128;
/// Tags jobrunner adds to every task (`jobrunner:job`, `jobrunner:trigger`); ECS allows 50.
const OWN_TAGS: usize = 2;

type Check = Result<(), Error>;

pub(super) fn validate(config: &Config) -> Check {
    check_settings("defaults", &config.defaults)?;
    for (name, job) in &config.jobs {
        check_job(config, name, job)?;
    }
    for (i, trigger) in config.triggers.s3.iter().enumerate() {
        check_s3_trigger(config, &format!("triggers.s3[{i}]"), trigger)?;
    }
    let mut schedule_names = BTreeSet::new();
    for (i, schedule) in config.triggers.schedule.iter().enumerate() {
        let path = format!("triggers.schedule[{i}]");
        check_schedule(config, &path, schedule)?;
        if !schedule_names.insert(schedule.name.as_str()) {
            return Err(Error::config(
                format!("{path}.name"),
                format!("duplicate schedule name '{}'", schedule.name),
            ));
        }
    }
    for (name, worker) in &config.workers {
        check_worker(&format!("workers.{name}"), name, worker)?;
    }

    if let Some(alerts) = &config.alerts {
        check_alerts(alerts)?;
    }
    if let Some(state) = &config.state {
        require_non_empty("state.table", &state.table)?;
    }
    Ok(())
}

/// Checks a `startedBy` value against ECS's rules (128 characters of `[A-Za-z0-9_/-]`).
pub fn validate_started_by(started_by: &str) -> Result<(), String> {
    if started_by.len() > STARTED_BY_MAX {
        return Err(format!(
            "startedBy '{started_by}' exceeds {STARTED_BY_MAX} characters"
        ));
    }
    if let Some(bad) = started_by
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/')))
    {
        return Err(format!(
            "startedBy '{started_by}' has '{bad}', outside ECS's charset"
        ));
    }
    Ok(())
}

/// Names of jobs, schedules and workers end up in `startedBy`, tags and ARNs.
pub fn check_name(path: &str, name: &str) -> Check {
    if name.is_empty() || name.len() > 64 {
        return Err(Error::config(
            path,
            format!("name '{name}' must be 1 to 64 characters"),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(Error::config(
            path,
            format!(
                "name '{name}' has '{bad}': only letters, digits, '-' and '_' are allowed (ECS startedBy charset)"
            ),
        ));
    }
    Ok(())
}

fn require_non_empty(path: &str, value: &str) -> Check {
    if value.trim().is_empty() {
        Err(Error::config(path, "must not be empty"))
    } else {
        Ok(())
    }
}

fn check_settings(path: &str, settings: &LaunchSettings) -> Check {
    if settings.capacity.is_some() && settings.launch_type.is_some() {
        return Err(Error::config(
            format!("{path}.launch_type"),
            "launch_type and capacity are exclusive (RunTask takes one or the other)",
        ));
    }
    if let Some(capacity) = &settings.capacity {
        if capacity.is_empty() {
            return Err(Error::config(
                format!("{path}.capacity"),
                "must list at least one capacity provider",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, provider) in capacity.iter().enumerate() {
            require_non_empty(&format!("{path}.capacity[{i}]"), provider)?;
            if !seen.insert(provider) {
                return Err(Error::config(
                    format!("{path}.capacity[{i}]"),
                    format!("'{provider}' is listed twice"),
                ));
            }
        }
    }
    for (field, list) in [
        ("subnets", &settings.subnets),
        ("security_groups", &settings.security_groups),
    ] {
        for (i, item) in list.iter().flatten().enumerate() {
            require_non_empty(&format!("{path}.{field}[{i}]"), item)?;
        }
    }
    Ok(())
}

fn check_job(config: &Config, name: &str, job: &Job) -> Check {
    let path = format!("jobs.{name}");
    check_name(&path, name)?;
    require_non_empty(&format!("{path}.task_definition"), &job.task_definition)?;
    require_non_empty(&format!("{path}.container"), &job.container)?;
    check_settings(&path, &job.own_settings())?;
    let settings = job.resolved(&config.defaults);
    match &settings.cluster {
        Some(cluster) => require_non_empty(&format!("{path}.cluster"), cluster)?,
        None => {
            return Err(Error::config(
                format!("{path}.cluster"),
                "no cluster: set it on the job or in [defaults]",
            ));
        }
    }
    if settings.is_fargate() {
        if settings.subnets.as_ref().is_none_or(|s| s.is_empty()) {
            return Err(Error::config(
                format!("{path}.subnets"),
                "Fargate tasks need at least one subnet: set subnets on the job or in [defaults]",
            ));
        }
        if settings.placement_constraints.is_some() || settings.placement_strategy.is_some() {
            return Err(Error::config(
                format!("{path}.placement_strategy"),
                "placement settings apply to EC2 only, not Fargate",
            ));
        }
    }
    if job.max_running == Some(0) {
        return Err(Error::config(
            format!("{path}.max_running"),
            "must be at least 1 (omit it for no cap)",
        ));
    }
    check_sizing(&path, job, settings.is_fargate())?;
    check_overrides(
        &path,
        job.command.as_deref(),
        &job.environment,
        &placeholders_for_job(config, name),
    )?;
    check_tags(&path, &job.tags)?;
    if job.task_definition.contains(char::is_whitespace) {
        return Err(Error::config(
            format!("{path}.task_definition"),
            "must not contain spaces",
        ));
    }
    Ok(())
}

fn check_sizing(path: &str, job: &Job, fargate: bool) -> Check {
    let pair = |path: String, cpu: u32, memory: u32| -> Check {
        if fargate && !fargate::is_valid_pair(cpu, memory) {
            return Err(Error::config(
                path,
                format!(
                    "cpu {cpu} with memory {memory} is not a valid Fargate combination (memory for cpu {cpu}: {})",
                    fargate::describe_valid_memory(cpu)
                ),
            ));
        }
        if cpu == 0 || memory == 0 {
            return Err(Error::config(path, "cpu and memory must be positive"));
        }
        Ok(())
    };
    match (job.cpu, job.memory) {
        (Some(cpu), Some(memory)) => pair(format!("{path}.cpu"), cpu, memory)?,
        (None, None) => {}
        _ => {
            return Err(Error::config(
                format!("{path}.cpu"),
                "set cpu and memory together, or neither",
            ));
        }
    }
    let mut previous: Option<u64> = None;
    let last = job.size_tiers.len().saturating_sub(1);
    for (i, tier) in job.size_tiers.iter().enumerate() {
        let tier_path = format!("{path}.size_tiers[{i}]");
        pair(format!("{tier_path}.cpu"), tier.cpu, tier.memory)?;
        match tier.max_bytes {
            None if i != last => {
                return Err(Error::config(
                    format!("{tier_path}.max_bytes"),
                    "only the last size tier may omit max_bytes (it takes everything larger)",
                ));
            }
            Some(max) if previous.is_some_and(|p| max <= p) => {
                return Err(Error::config(
                    format!("{tier_path}.max_bytes"),
                    "size tiers must be in increasing max_bytes order",
                ));
            }
            Some(max) => previous = Some(max),
            None => {}
        }
    }
    Ok(())
}

/// Placeholders every trigger of a job provides (a template may only use those).
fn placeholders_for_job(config: &Config, job: &str) -> Vec<&'static str> {
    let s3 = config.triggers.s3.iter().any(|t| t.job == job);
    let schedule = config.triggers.schedule.iter().any(|t| t.job == job);
    match (s3, schedule) {
        (true, false) => template::S3_PLACEHOLDERS.to_vec(),
        (false, true) => template::SCHEDULE_PLACEHOLDERS.to_vec(),
        (true, true) => vec!["job"],
        // Not triggered yet: allow anything a trigger could provide.
        (false, false) => {
            let mut all = template::S3_PLACEHOLDERS.to_vec();
            all.extend(
                template::SCHEDULE_PLACEHOLDERS
                    .iter()
                    .filter(|p| **p != "job"),
            );
            all
        }
    }
}

fn check_overrides(
    path: &str,
    command: Option<&[String]>,
    environment: &std::collections::BTreeMap<String, String>,
    placeholders: &[&'static str],
) -> Check {
    for (i, part) in command.unwrap_or_default().iter().enumerate() {
        template::check(part, placeholders)
            .map_err(|reason| Error::config(format!("{path}.command[{i}]"), reason))?;
    }
    for (key, value) in environment {
        let key_path = format!("{path}.environment.{key}");
        let valid_name = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(Error::config(
                key_path,
                "environment variable names are letters, digits and '_', not starting with a digit",
            ));
        }
        if key.starts_with("JOB_") {
            return Err(Error::config(
                key_path,
                "names starting with JOB_ are reserved for the variables jobrunner sets",
            ));
        }
        template::check(value, placeholders).map_err(|reason| Error::config(key_path, reason))?;
    }
    Ok(())
}

fn check_tags(path: &str, tags: &std::collections::BTreeMap<String, String>) -> Check {
    if tags.len() + OWN_TAGS > 50 {
        return Err(Error::config(
            format!("{path}.tags"),
            format!(
                "at most {} tags (ECS allows 50; jobrunner adds {OWN_TAGS})",
                50 - OWN_TAGS
            ),
        ));
    }
    for (key, value) in tags {
        let tag_path = format!("{path}.tags.{key}");
        if key.is_empty() || key.len() > 128 {
            return Err(Error::config(tag_path, "tag keys are 1 to 128 characters"));
        }
        if key.to_ascii_lowercase().starts_with("aws:") || key.starts_with("jobrunner:") {
            return Err(Error::config(
                tag_path,
                "the aws: and jobrunner: tag prefixes are reserved",
            ));
        }
        if value.len() > 256 {
            return Err(Error::config(
                tag_path,
                "tag values are at most 256 characters",
            ));
        }
    }
    Ok(())
}

fn check_job_reference(config: &Config, path: &str, job: &str) -> Check {
    if config.jobs.contains_key(job) {
        Ok(())
    } else {
        let known = config.jobs.keys().cloned().collect::<Vec<_>>().join(", ");
        Err(Error::config(
            format!("{path}.job"),
            format!("unknown job '{job}' (jobs: {known})"),
        ))
    }
}

fn check_s3_trigger(config: &Config, path: &str, trigger: &S3Trigger) -> Check {
    check_job_reference(config, path, &trigger.job)?;
    require_non_empty(&format!("{path}.bucket"), &trigger.bucket)?;
    if let (Some(min), Some(max)) = (trigger.min_size, trigger.max_size)
        && min > max
    {
        return Err(Error::config(
            format!("{path}.min_size"),
            format!("min_size {min} is larger than max_size {max}"),
        ));
    }
    Ok(())
}

fn check_schedule(config: &Config, path: &str, schedule: &ScheduleTrigger) -> Check {
    check_name(&format!("{path}.name"), &schedule.name)?;
    check_job_reference(config, path, &schedule.job)?;
    validate_started_by(&crate::plan::started_by_schedule(
        &schedule.job,
        &schedule.name,
    ))
    .map_err(|reason| Error::config(format!("{path}.name"), reason))?;
    check_overrides(
        path,
        schedule.command.as_deref(),
        &schedule.environment,
        template::SCHEDULE_PLACEHOLDERS,
    )?;
    crate::schedule::validate_trigger(path, schedule)
}

fn check_worker(path: &str, name: &str, worker: &Worker) -> Check {
    check_name(path, name)?;
    require_non_empty(&format!("{path}.cluster"), &worker.cluster)?;
    require_non_empty(&format!("{path}.service"), &worker.service)?;
    if !worker.queue_url.starts_with("https://") && !worker.queue_url.starts_with("http://") {
        return Err(Error::config(
            format!("{path}.queue_url"),
            "must be the queue's URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)",
        ));
    }
    if worker.messages_per_task == 0 {
        return Err(Error::config(
            format!("{path}.messages_per_task"),
            "must be at least 1",
        ));
    }
    if worker.max_tasks == 0 || worker.min_tasks > worker.max_tasks {
        return Err(Error::config(
            format!("{path}.max_tasks"),
            format!(
                "max_tasks {} must be at least 1 and not below min_tasks {}",
                worker.max_tasks, worker.min_tasks
            ),
        ));
    }
    if worker
        .sample_every_seconds
        .is_some_and(|s| !(5..=60).contains(&s))
    {
        return Err(Error::config(
            format!("{path}.sample_every_seconds"),
            "must be between 5 and 60",
        ));
    }
    for (field, step) in [
        ("max_step_out", worker.max_step_out),
        ("max_step_in", worker.max_step_in),
    ] {
        if step == Some(0) {
            return Err(Error::config(
                format!("{path}.{field}"),
                "must be at least 1 (omit it for no cap)",
            ));
        }
    }
    crate::scaling::validate_windows(path, worker)
}

fn check_alerts(alerts: &Alerts) -> Check {
    if !alerts.topic_arn.starts_with("arn:") || !alerts.topic_arn.contains(":sns:") {
        return Err(Error::config(
            "alerts.topic_arn",
            format!("'{}' is not an SNS topic ARN", alerts.topic_arn),
        ));
    }
    for (i, class) in alerts.notify_on.iter().enumerate() {
        if !crate::alert::CLASS_NAMES.contains(&class.as_str()) {
            return Err(Error::config(
                format!("alerts.notify_on[{i}]"),
                format!(
                    "unknown alert class '{class}' (classes: {})",
                    crate::alert::CLASS_NAMES.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
