//! Planning a manual submit: the job's RunTask with trigger `manual`, the object's or the
//! schedule tick's variables when the submit names one, and the submit's own environment.

use std::collections::BTreeMap;

use super::{Launch, LaunchPlan, build, cap, lookup};
use crate::config::Config;
use crate::error::Error;
use crate::event::Submit;
use crate::started_by::StartedBy;
use crate::template::Vars;
use crate::{job_env, token};

/// `JOB_TRIGGER` of a manual run.
pub const TRIGGER: &str = "manual";
/// Who submitted the run (the caller's ARN).
pub const SUBMITTED_BY: &str = "JOB_SUBMITTED_BY";

/// Plans the launch of a manual submit.
pub fn plan_submit(config: &Config, submit: &Submit) -> Result<LaunchPlan, Error> {
    let job = lookup(config, &submit.job)?;
    let time =
        |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut environment = vec![(SUBMITTED_BY, submit.submitted_by.clone())];
    let mut vars = Vars::from([("job", submit.job.clone())]);
    let mut command = job.command.as_deref();
    let mut started_by = StartedBy::job(&submit.job).to_string();
    let mut extra = BTreeMap::new();
    if let Some(object) = &submit.object {
        let event_time = time(&object.event_time);
        environment.extend([
            (job_env::BUCKET, object.bucket.clone()),
            (job_env::KEY, object.key.clone()),
            (job_env::SIZE, object.size.to_string()),
            (job_env::ETAG, object.etag.clone().unwrap_or_default()),
        ]);
        if let Some(version) = &object.version_id {
            environment.push((job_env::VERSION_ID, version.clone()));
        }
        environment.push((job_env::EVENT_TIME, event_time.clone()));
        vars.extend([
            ("bucket", object.bucket.clone()),
            ("key", object.key.clone()),
            ("size", object.size.to_string()),
            ("etag", object.etag.clone().unwrap_or_default()),
            ("version_id", object.version_id.clone().unwrap_or_default()),
            ("event_time", event_time),
        ]);
    }
    if let Some((name, at)) = &submit.schedule {
        let schedule = config
            .triggers
            .schedule
            .iter()
            .find(|s| s.name == *name && s.job == submit.job)
            .ok_or_else(|| Error::Plan {
                job: submit.job.clone(),
                reason: format!("no schedule '{name}' of this job in the config"),
            })?;
        let scheduled_time = time(at);
        environment.extend([
            (job_env::SCHEDULE, name.clone()),
            (job_env::SCHEDULED_TIME, scheduled_time.clone()),
        ]);
        vars.extend([
            ("schedule", name.clone()),
            ("scheduled_time", scheduled_time),
        ]);
        command = schedule.command.as_deref().or(command);
        started_by = StartedBy::schedule(&submit.job, name).to_string();
        extra.extend(schedule.environment.clone());
    }
    // The submit's own values are data: never templated (a `{` in them stays a `{`).
    let literal: BTreeMap<String, String> = submit
        .environment
        .iter()
        .map(|(k, v)| (k.clone(), v.replace('{', "{{").replace('}', "}}")))
        .collect();
    extra.extend(literal);
    let launch = Launch {
        trigger: TRIGGER,
        environment,
        vars,
        command,
        extra_environment: Some(&extra),
        started_by,
        token: token::for_submit(submit),
        size: submit.object.as_ref().map(|o| o.size),
    };
    let mut plan = build(config, &submit.job, job, launch)?;
    plan.cap = cap(config, &submit.job, job);
    Ok(plan)
}
