//! Cross-field rules of the config. Each failure names the field path and the reason.

use std::collections::{BTreeMap, BTreeSet};

use super::model::*;
use crate::class::Class;
use crate::error::Error;
use crate::{fargate, job_env, template};

/// Prefix of every `startedBy` jobrunner sets; ECS allows 128 characters of `[A-Za-z0-9_/-]`.
pub use crate::started_by::PREFIX as STARTED_BY_PREFIX;
/// Prefix the infra gives EventBridge rule names: rule `jobrunner-NAME` fires schedule `NAME`.
pub const RULE_PREFIX: &str = "jobrunner-";
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
        let path = schedule_path(i, schedule);
        check_schedule(config, &path, schedule)?;
        if !schedule_names.insert(schedule.name.as_str()) {
            return Err(Error::config(
                format!("{path}.name"),
                format!("duplicate schedule name '{}'", schedule.name),
            ));
        }
    }
    check_rule_names(config)?;
    for (name, worker) in &config.workers {
        check_worker(config, &format!("workers.{name}"), name, worker)?;
    }
    if !config.workers.is_empty() && config.state.is_none() {
        let first = config.workers.keys().next().map_or("", String::as_str);
        return Err(Error::config(
            "state.table",
            format!(
                "workers ({first}, …) need a [state] table: the scaler keeps each worker's history there and refuses to start without it"
            ),
        ));
    }

    if let Some(alerts) = &config.alerts {
        check_alerts(alerts)?;
    }
    if let Some(state) = &config.state {
        require_non_empty("state.table", &state.table)?;
        if state.retention_days == 0 {
            return Err(Error::config(
                "state.retention_days",
                "must be at least 1 (days a run stays in the ledger)",
            ));
        }
    }
    if let Some(launcher) = &config.launcher {
        check_launcher(launcher)?;
    }
    let retried = config
        .jobs
        .iter()
        .find(|(_, job)| job.resolved(&config.defaults).retry.is_some());
    if let Some((name, _)) = retried
        && (config.state.is_none() || config.launcher.is_none())
    {
        return Err(Error::config(
            format!("jobs.{name}.retry"),
            "retries need [state] (the ledger) and [launcher] queue_url (where a retry waits its delay)",
        ));
    }
    if let Some(prices) = &config.prices {
        for (field, value) in [
            ("vcpu_hour", prices.vcpu_hour),
            ("gb_hour", prices.gb_hour),
            ("spot_vcpu_hour", prices.spot_vcpu_hour),
            ("spot_gb_hour", prices.spot_gb_hour),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(Error::config(
                    format!("prices.{field}"),
                    format!("{value} is not a price (USD per hour, zero or more)"),
                ));
            }
        }
    }
    Ok(())
}

/// Classes a retry may name in `on` (interruptions have `on_interruption`).
const RETRYABLE: &[Class] = &[
    Class::FailedToStart,
    Class::Oom,
    Class::NonZeroExit,
    Class::Timeout,
    Class::Unhealthy,
    Class::Unknown,
];

/// SQS keeps a message at most 12 hours invisible; a retry waits at most that long.
const MAX_BACKOFF_SECS: u64 = 12 * 3600;

fn check_retry(path: &str, retry: &Retry) -> Check {
    if !(1..=10).contains(&retry.attempts) {
        return Err(Error::config(
            format!("{path}.attempts"),
            format!(
                "{} is out of range: 1 to 10 attempts, the first included",
                retry.attempts
            ),
        ));
    }
    for (field, value) in [
        ("backoff", &retry.backoff),
        ("max_backoff", &retry.max_backoff),
    ] {
        if value.as_secs() > MAX_BACKOFF_SECS {
            return Err(Error::config(
                format!("{path}.{field}"),
                format!("{value} is over the 12h a retry may wait"),
            ));
        }
    }
    if let Some(class) = retry.on.iter().find(|c| !RETRYABLE.contains(c)) {
        let names: Vec<&str> = RETRYABLE.iter().map(|c| c.as_str()).collect();
        return Err(Error::config(
            format!("{path}.on"),
            format!(
                "'{class}' is not a failure a retry can act on: use {}",
                names.join(", ")
            ),
        ));
    }
    if retry.exit_codes.is_some() && !retry.on.contains(&Class::NonZeroExit) {
        return Err(Error::config(
            format!("{path}.exit_codes"),
            "exit_codes narrows non_zero_exit, which `on` leaves out",
        ));
    }
    Ok(())
}

fn check_launcher(launcher: &LauncherSettings) -> Check {
    require_non_empty("launcher.queue_url", &launcher.queue_url)?;
    if !launcher.queue_url.starts_with("https://") && !launcher.queue_url.starts_with("http://") {
        return Err(Error::config(
            "launcher.queue_url",
            format!("'{}' is not an SQS queue URL", launcher.queue_url),
        ));
    }
    if !(1..=900).contains(&launcher.wait_seconds) {
        return Err(Error::config(
            "launcher.wait_seconds",
            format!(
                "{} is out of range: SQS delays a message 1 to 900 seconds",
                launcher.wait_seconds
            ),
        ));
    }
    Ok(())
}

/// `triggers.schedule[i] (name)`: errors name a schedule by its name as well as its index.
fn schedule_path(i: usize, schedule: &ScheduleTrigger) -> String {
    format!("triggers.schedule[{i}] ({})", schedule.name)
}

/// A rule named `jobrunner-x` fires the schedule `x` *or* a schedule named `jobrunner-x`:
/// with both in one config, a tick could start the wrong job.
fn check_rule_names(config: &Config) -> Check {
    let schedules = &config.triggers.schedule;
    for (i, schedule) in schedules.iter().enumerate() {
        let Some(short) = schedule.name.strip_prefix(RULE_PREFIX) else {
            continue;
        };
        if let Some(other) = schedules.iter().find(|s| s.name == short) {
            return Err(Error::config(
                format!("{}.name", schedule_path(i, schedule)),
                format!(
                    "'{}' and '{}' are ambiguous: a rule named '{}' fires either; rename one",
                    schedule.name, other.name, schedule.name
                ),
            ));
        }
    }
    Ok(())
}

/// Something that validates but is probably not what the author meant. `jobrunner validate`
/// prints these; they never stop a config from loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The field, e.g. `jobs.report.command[2]`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Shells whose `-c` argument is a script: a placeholder there is run as code.
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "fish"];

/// Warnings about a valid config: today, placeholders fed to a shell's `-c` script, where an
/// object key such as `x; rm -rf /` becomes a command (the "never through a shell" promise
/// holds only for commands that do not call a shell themselves).
pub fn warnings(config: &Config) -> Vec<Warning> {
    let mut warnings = Vec::new();
    for (name, job) in &config.jobs {
        shell_warnings(
            &format!("jobs.{name}"),
            job.command.as_deref(),
            &mut warnings,
        );
    }
    for (i, schedule) in config.triggers.schedule.iter().enumerate() {
        shell_warnings(
            &schedule_path(i, schedule),
            schedule.command.as_deref(),
            &mut warnings,
        );
    }
    warnings
}

fn shell_warnings(path: &str, command: Option<&[String]>, warnings: &mut Vec<Warning>) {
    let Some(command) = command else { return };
    let Some(shell) = command.iter().position(|part| {
        let program = part.rsplit('/').next().unwrap_or(part);
        SHELLS.contains(&program)
    }) else {
        return;
    };
    // `sh -ec SCRIPT [NAME ARGS…]`: flags up to the first non-flag; with `c` among them, that
    // first non-flag is the script (later arguments are `$0`, `$1`…: safe when quoted).
    let mut reads_script = false;
    for (i, part) in command.iter().enumerate().skip(shell + 1) {
        if part.starts_with('-') && !part.starts_with("--") {
            reads_script |= part.contains('c');
            continue;
        }
        let used = template::placeholders(part);
        if reads_script && !used.is_empty() {
            warnings.push(Warning {
                path: format!("{path}.command[{i}]"),
                message: format!(
                    "placeholder {{{}}} goes into the script of `{} -c`: a crafted value (an object key such as `x; rm -rf ~`) runs as shell code; pass it as an argument after the script (\"$1\") or in environment (\"$VAR\")",
                    used[0], command[shell]
                ),
            });
        }
        break;
    }
}

/// Checks a `startedBy` value against ECS's rules (128 characters of `[A-Za-z0-9_/-]`).
pub fn validate_started_by(started_by: &str) -> Result<(), String> {
    crate::started_by::validate(started_by)
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
    if let Some(retry) = &settings.retry {
        check_retry(&format!("{path}.retry"), retry)?;
    }
    for (field, limit) in [
        ("max_runtime", &settings.max_runtime),
        ("start_timeout", &settings.start_timeout),
    ] {
        if limit.as_ref().is_some_and(|l| l.as_secs() == 0) {
            return Err(Error::config(
                format!("{path}.{field}"),
                "must be at least one second (a zero limit would stop every task at once)",
            ));
        }
    }
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
    if let (Some(retry), Some(cpu), Some(memory)) = (&settings.retry, job.cpu, job.memory)
        && retry.grow_on_oom
        && job.size_tiers.is_empty()
        && fargate::doubled_memory(cpu, memory).is_none()
    {
        return Err(Error::config(
            format!("{path}.retry.grow_on_oom"),
            format!(
                "no valid Fargate size is bigger than cpu {cpu} / memory {memory}: an OOM cannot retry bigger"
            ),
        ));
    }
    match &settings.cluster {
        Some(cluster) => require_non_empty(&format!("{path}.cluster"), cluster)?,
        None => {
            return Err(Error::config(
                format!("{path}.cluster"),
                "no cluster: set it on the job or in [defaults]",
            ));
        }
    }
    if settings.may_use_fargate() && settings.subnets.as_ref().is_none_or(|s| s.is_empty()) {
        return Err(Error::config(
            format!("{path}.subnets"),
            "Fargate tasks need at least one subnet: set subnets on the job or in [defaults]",
        ));
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
    if job.skip_missing {
        check_skip_missing(config, &path, name)?;
    }
    check_sizing(&path, job, settings.may_use_fargate())?;
    check_overrides(
        &path,
        job.command.as_deref(),
        &job.environment,
        &placeholders_for_job(config, name),
    )?;
    let environment: BTreeMap<&str, &str> = job
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let trigger = if config.triggers.s3.iter().any(|t| t.job == name) {
        "s3"
    } else {
        "schedule"
    };
    check_overrides_fit(
        &path,
        &job.container,
        job.command.as_deref(),
        &environment,
        &[(job_env::NAME, name), (job_env::TRIGGER, trigger)],
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

/// `skip_missing` reads the object an event names, and knows an event waited from the ledger.
fn check_skip_missing(config: &Config, path: &str, name: &str) -> Check {
    let path = format!("{path}.skip_missing");
    if !config.triggers.s3.iter().any(|t| t.job == name) {
        return Err(Error::config(
            path,
            "applies only to S3-triggered jobs: no [[triggers.s3]] routes to this job",
        ));
    }
    if config.state.is_none() {
        return Err(Error::config(
            path,
            "needs the run ledger ([state] table) to know that an event waited",
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
        if key.starts_with(job_env::RESERVED_PREFIX) {
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
        let key_chars = key.chars().count();
        if key_chars == 0 || key_chars > 128 {
            return Err(Error::config(tag_path, "tag keys are 1 to 128 characters"));
        }
        if key.to_ascii_lowercase().starts_with("aws:") || key.starts_with("jobrunner:") {
            return Err(Error::config(
                tag_path,
                "the aws: and jobrunner: tag prefixes are reserved",
            ));
        }
        if value.chars().count() > 256 {
            return Err(Error::config(
                tag_path,
                "tag values are at most 256 characters",
            ));
        }
        for (what, text) in [("key", key), ("value", value)] {
            if let Some(bad) = text.chars().find(|c| !is_tag_char(*c)) {
                return Err(Error::config(
                    tag_path,
                    format!(
                        "tag {what} has {bad:?}: ECS allows letters, digits, spaces and _ . : / = + - @"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// ECS's tag charset, `[\p{L}\p{Z}\p{N}_.:/=+\-@]`: letters, separators (spaces), numbers and
/// `_ . : / = + - @`. Line and paragraph separators and marks are refused even where Unicode
/// calls them letters or spaces, to stay inside what every ECS API accepts.
pub fn is_tag_char(c: char) -> bool {
    matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@' | ' ')
        || c.is_ascii_alphanumeric()
        || (!c.is_ascii()
            && (c.is_alphanumeric() || (c.is_whitespace() && !c.is_control()))
            && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}'))
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
    validate_started_by(
        &crate::started_by::StartedBy::schedule(&schedule.job, &schedule.name).to_string(),
    )
    .map_err(|reason| Error::config(format!("{path}.name"), reason))?;
    check_overrides(
        path,
        schedule.command.as_deref(),
        &schedule.environment,
        template::SCHEDULE_PLACEHOLDERS,
    )?;
    if let Some(job) = config.jobs.get(&schedule.job) {
        let environment: BTreeMap<&str, &str> = job
            .environment
            .iter()
            .chain(&schedule.environment)
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        check_overrides_fit(
            path,
            &job.container,
            schedule.command.as_deref().or(job.command.as_deref()),
            &environment,
            &[
                (job_env::NAME, &schedule.job),
                (job_env::TRIGGER, "schedule"),
                (job_env::SCHEDULE, &schedule.name),
                (job_env::SCHEDULED_TIME, MIN_TIME),
            ],
        )?;
    }
    Ok(())
}

/// The shortest RFC 3339 time jobrunner passes (`JOB_SCHEDULED_TIME`, `JOB_EVENT_TIME`).
const MIN_TIME: &str = "2026-01-01T00:00:00Z";

/// Variables every launch sets, at their shortest: the run id (20 hex digits), the first
/// attempt, and the trace context the launcher adds.
const EVERY_LAUNCH: [(&str, &str); 3] = [
    (job_env::RUN_ID, "00000000000000000000"),
    (job_env::ATTEMPT, "1"),
    (
        job_env::TRACEPARENT,
        "00-00000000000000000000000000000000-0000000000000000-00",
    ),
];

/// Fails when the container overrides RunTask would get can never fit ECS's 8,192 characters:
/// the fixed part (container name, command, environment with every placeholder empty, the
/// `JOB_*` variables and `TRACEPARENT` at their shortest) is already too long.
fn check_overrides_fit(
    path: &str,
    container: &str,
    command: Option<&[String]>,
    environment: &BTreeMap<&str, &str>,
    job_variables: &[(&str, &str)],
) -> Check {
    let empty = |template: &str| {
        let mut out = String::new();
        for piece in template::parse(template).unwrap_or_default() {
            if let template::Piece::Text(text) = piece {
                out.push_str(text);
            }
        }
        out
    };
    let variables: Vec<serde_json::Value> = job_variables
        .iter()
        .chain(&EVERY_LAUNCH)
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .chain(environment.iter().map(|(k, v)| (k.to_string(), empty(v))))
        .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
        .collect();
    let mut container_override = serde_json::json!({"name": container, "environment": variables});
    if let Some(command) = command {
        container_override["command"] = command.iter().map(|part| empty(part)).collect();
    }
    let overrides = serde_json::json!({"containerOverrides": [container_override]});
    let chars = overrides.to_string().chars().count();
    if chars > crate::ecs_limits::MAX_OVERRIDES_CHARS {
        return Err(Error::config(
            format!("{path}.command"),
            format!(
                "the container overrides are at least {chars} characters of JSON before any placeholder is filled in; ECS allows {}: shorten command and environment",
                crate::ecs_limits::MAX_OVERRIDES_CHARS
            ),
        ));
    }
    Ok(())
}

fn check_worker(config: &Config, path: &str, name: &str, worker: &Worker) -> Check {
    check_name(path, name)?;
    match worker.mode {
        WorkerMode::Service => check_service_worker(path, worker)?,
        WorkerMode::Jobs => check_jobs_worker(config, path, name, worker)?,
    }
    require_non_empty(&format!("{path}.cluster"), &worker.cluster)?;
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
    check_windows(path, worker)
}

/// Service mode: a service to scale, and none of jobs mode's fields.
fn check_service_worker(path: &str, worker: &Worker) -> Check {
    require_non_empty(&format!("{path}.service"), &worker.service)?;
    let jobs_only = [
        ("task_definition", worker.task_definition.is_some()),
        ("container", worker.container.is_some()),
        ("command", worker.command.is_some()),
        ("idle_exit", worker.idle_exit.is_some()),
    ];
    for (field, set) in jobs_only.into_iter().chain(launch_fields(worker)) {
        if set {
            return Err(Error::config(
                format!("{path}.{field}"),
                "applies to mode = \"jobs\" only (a service's tasks come from the service)",
            ));
        }
    }
    Ok(())
}

/// The launch settings a worker may set (jobs mode), and whether each is set.
fn launch_fields(worker: &Worker) -> [(&'static str, bool); 9] {
    [
        ("subnets", worker.subnets.is_some()),
        ("security_groups", worker.security_groups.is_some()),
        ("assign_public_ip", worker.assign_public_ip.is_some()),
        ("capacity", worker.capacity.is_some()),
        ("launch_type", worker.launch_type.is_some()),
        ("platform_version", worker.platform_version.is_some()),
        (
            "placement_constraints",
            worker.placement_constraints.is_some(),
        ),
        ("placement_strategy", worker.placement_strategy.is_some()),
        ("propagate_tags", worker.propagate_tags.is_some()),
    ]
}

/// Jobs mode: what to run and where, bounds that make sense for tasks that exit when idle,
/// and a `startedBy` no job shares.
fn check_jobs_worker(config: &Config, path: &str, name: &str, worker: &Worker) -> Check {
    if !worker.service.is_empty() {
        return Err(Error::config(
            format!("{path}.service"),
            "mode = \"jobs\" launches standalone tasks: remove service (or use mode = \"service\")",
        ));
    }
    let required = |field: &str, value: &Option<String>| match value {
        Some(value) => require_non_empty(&format!("{path}.{field}"), value),
        None => Err(Error::config(
            format!("{path}.{field}"),
            "is required in mode = \"jobs\"",
        )),
    };
    required("task_definition", &worker.task_definition)?;
    required("container", &worker.container)?;
    match worker.command.as_deref() {
        None | Some([]) => {
            return Err(Error::config(
                format!("{path}.command"),
                "is required in mode = \"jobs\": the command jobrunner-worker runs per message",
            ));
        }
        Some(command) => require_non_empty(&format!("{path}.command[0]"), &command[0])?,
    }
    if worker.idle_exit.as_ref().is_some_and(|d| d.as_secs() == 0) {
        return Err(Error::config(
            format!("{path}.idle_exit"),
            "must be at least one second",
        ));
    }
    let warm = |min: u32| min > 0;
    if warm(worker.min_tasks) {
        return Err(Error::config(
            format!("{path}.min_tasks"),
            "must be 0 in mode = \"jobs\": its tasks exit when the queue is idle, so none stay warm (use mode = \"service\")",
        ));
    }
    if let Some(i) = worker
        .windows
        .iter()
        .position(|w| w.min_tasks.is_some_and(warm))
    {
        return Err(Error::config(
            format!("{path}.windows[{i}].min_tasks"),
            "must be 0 in mode = \"jobs\": its tasks exit when the queue is idle",
        ));
    }
    if worker.max_step_in.is_some() {
        return Err(Error::config(
            format!("{path}.max_step_in"),
            "applies to mode = \"service\" only: jobs-mode tasks leave by themselves",
        ));
    }
    check_settings(path, &worker.own_settings())?;
    let settings = worker.resolved(&config.defaults);
    if settings.may_use_fargate() && settings.subnets.as_ref().is_none_or(|s| s.is_empty()) {
        return Err(Error::config(
            format!("{path}.subnets"),
            "Fargate tasks need at least one subnet: set subnets on the worker or in [defaults]",
        ));
    }
    if settings.is_fargate()
        && (settings.placement_constraints.is_some() || settings.placement_strategy.is_some())
    {
        return Err(Error::config(
            format!("{path}.placement_strategy"),
            "placement settings apply to EC2 only, not Fargate",
        ));
    }
    validate_started_by(&worker_started_by(name)).map_err(|reason| Error::config(path, reason))?;
    if config.jobs.contains_key(WORKER_STARTED_BY_SEGMENT) {
        return Err(Error::config(
            format!("jobs.{}", WORKER_STARTED_BY_SEGMENT),
            format!(
                "a job named '{}' would share startedBy '{}' with jobs-mode worker '{name}': rename the job",
                WORKER_STARTED_BY_SEGMENT,
                worker_started_by(name)
            ),
        ));
    }
    Ok(())
}

/// A worker's scheduled-capacity windows: the bounds each leaves in force, and `start != end`.
/// Errors name `{path}.windows[i].field`.
pub fn validate_windows(path: &str, worker: &Worker) -> Check {
    check_windows(path, worker)
}

fn check_windows(path: &str, worker: &Worker) -> Check {
    for (i, window) in worker.windows.iter().enumerate() {
        let path = format!("{path}.windows[{i}]");
        if window.start.minutes() == window.end.minutes() {
            return Err(Error::config(
                format!("{path}.end"),
                format!(
                    "end {} equals start: use start = \"00:00\", end = \"24:00\" for a whole day",
                    window.end
                ),
            ));
        }
        if window.min_tasks.is_none() && window.max_tasks.is_none() {
            return Err(Error::config(
                format!("{path}.min_tasks"),
                "a window must set min_tasks, max_tasks or both",
            ));
        }
        let min = window.min_tasks.unwrap_or(worker.min_tasks);
        let max = window.max_tasks.unwrap_or(worker.max_tasks);
        if min > max {
            return Err(Error::config(
                format!("{path}.max_tasks"),
                format!(
                    "the window's max_tasks {max} is below its min_tasks {min} (unset fields fall back to the worker's)"
                ),
            ));
        }
    }
    Ok(())
}

fn check_alerts(alerts: &Alerts) -> Check {
    if !alerts.topic_arn.starts_with("arn:") || !alerts.topic_arn.contains(":sns:") {
        return Err(Error::config(
            "alerts.topic_arn",
            format!("'{}' is not an SNS topic ARN", alerts.topic_arn),
        ));
    }
    Ok(())
}
