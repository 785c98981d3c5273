//! `jobrunner submit JOB`: a run started by hand, through the launcher's queue (so the job's
//! cap and the ledger apply). The CLI puts a `jobrunner.submit` event on the queue naming the
//! job, the caller (STS GetCallerIdentity's ARN) and the time; the launcher plans it with
//! trigger `manual` (`JOB_TRIGGER=manual`, `JOB_SUBMITTED_BY`), records who submitted it in the
//! ledger, and launches it. The run's identity is job, caller and time: a redelivery of the
//! message is the same run, the same command run again a new one.
//!
//! `--object s3://b/k` runs the job on an object (its size and ETag read with HeadObject), as
//! an upload would; `--schedule NAME --at T` as that schedule's tick at `T`; `--env K=V` adds
//! environment. The plan is made here first with the launcher's own code, so a bad job, name or
//! an override over ECS's 8,192 characters fails before anything is sent.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::Utc;
use jobrunner_aws::s3::S3Objects;
use jobrunner_aws::sqs_admin::SqsAdmin;
use jobrunner_core::event::submit::{Submit, check_environment};
use jobrunner_core::event::{Event, ObjectCreated};
use jobrunner_core::{Config, plan, token};

use crate::{CliError, parse_time, print};

#[derive(clap::Args)]
pub struct SubmitArgs {
    /// The job to run.
    job: String,
    #[arg(long, env = "JOBRUNNER_CONFIG_FILE")]
    config: PathBuf,
    /// Run on this object: s3://bucket/key (the key as in S3, not URL-encoded), optionally
    /// ?versionId=V.
    #[arg(long, conflicts_with = "schedule")]
    object: Option<String>,
    /// Run as this schedule's tick (with --at): the schedule's command and environment.
    #[arg(long, requires = "at")]
    schedule: Option<String>,
    /// The tick's time (RFC 3339), with --schedule.
    #[arg(long, requires = "schedule")]
    at: Option<String>,
    /// Extra environment for the container: NAME=value (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// The launcher's queue (default: the config's `[launcher] queue_url`).
    #[arg(long)]
    queue_url: Option<String>,
    /// The AWS region (default: the SDK's chain: AWS_REGION, the profile).
    #[arg(long)]
    region: Option<String>,
    /// Print the run as JSON (`run_id`, `job`, `submitted_by`, `submitted_at`).
    #[arg(long)]
    json: bool,
}

/// `--env` values, checked.
fn environment(pairs: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut environment = BTreeMap::new();
    for pair in pairs {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--env '{pair}': expected NAME=VALUE")))?;
        if environment
            .insert(name.to_string(), value.to_string())
            .is_some()
        {
            return Err(CliError::Usage(format!("--env {name}: given twice")));
        }
    }
    check_environment(&environment).map_err(|e| CliError::Usage(format!("--env: {e}")))?;
    Ok(environment)
}

/// `s3://bucket/key[?versionId=V]`.
fn object_ref(text: &str) -> Result<(String, String, Option<String>), CliError> {
    let bad = |reason: &str| CliError::Usage(format!("--object '{text}': {reason}"));
    let rest = text
        .strip_prefix("s3://")
        .ok_or_else(|| bad("expected s3://bucket/key"))?;
    let (bucket, key) = rest
        .split_once('/')
        .ok_or_else(|| bad("no key after the bucket"))?;
    let (key, version) = match key.rsplit_once("?versionId=") {
        Some((key, version)) if !version.is_empty() => (key, Some(version.to_string())),
        _ => (key, None),
    };
    if bucket.is_empty() || key.is_empty() {
        return Err(bad("expected s3://bucket/key"));
    }
    Ok((bucket.to_string(), key.to_string(), version))
}

/// Runs `jobrunner submit`.
pub fn run(args: SubmitArgs) -> Result<(), CliError> {
    let config = Config::load(&args.config)?;
    if config.job(&args.job).is_none() {
        return Err(CliError::Usage(format!(
            "no job '{}' in the config",
            args.job
        )));
    }
    let environment = environment(&args.env)?;
    let object = args.object.as_deref().map(object_ref).transpose()?;
    let schedule = match (&args.schedule, &args.at) {
        (Some(name), Some(at)) => {
            let Some(trigger) = config.triggers.schedule.iter().find(|s| s.name == *name) else {
                return Err(CliError::Usage(format!(
                    "--schedule: no schedule '{name}' in the config"
                )));
            };
            if trigger.job != args.job {
                return Err(CliError::Usage(format!(
                    "--schedule {name} runs job '{}', not '{}'",
                    trigger.job, args.job
                )));
            }
            Some((name.clone(), parse_time("--at", at)?))
        }
        _ => None,
    };
    let queue_url = args
        .queue_url
        .clone()
        .or_else(|| config.launcher.as_ref().map(|l| l.queue_url.clone()))
        .ok_or_else(|| {
            CliError::Usage(
                "a submit goes through the launcher's queue: pass --queue-url, or set [launcher] queue_url in the config".into(),
            )
        })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    runtime.block_on(async {
        let sdk = crate::runs::sdk_config(args.region.as_deref()).await?;
        let submitted_at = Utc::now();
        let object = match object {
            None => None,
            Some((bucket, key, version)) => {
                let head = S3Objects::from_config(&sdk)
                    .head(&bucket, &key, version.as_deref())
                    .await
                    .map_err(jobrunner_core::Error::from)?
                    .ok_or_else(|| CliError::Usage(format!("s3://{bucket}/{key}: no such object")))?;
                Some(ObjectCreated {
                    bucket,
                    key,
                    size: head.size,
                    etag: head.etag.map(|etag| etag.trim_matches('"').to_owned()),
                    version_id: head.version_id.or(version),
                    sequencer: None,
                    event_time: submitted_at,
                })
            }
        };
        let submit = Submit {
            job: args.job.clone(),
            submitted_by: crate::runs::caller_arn(&sdk).await?,
            submitted_at,
            object,
            schedule,
            environment,
        };
        // The launcher's own plan, here first: what it would refuse is refused now.
        let planned = plan::plan_submit(&config, &submit)?;
        let document = Event::Submit(submit.clone());
        let body = jobrunner_core::event::encode(&document)
            .unwrap_or_default()
            .to_string();
        let failed = SqsAdmin::from_sdk_config(&sdk)
            .send_batch(&queue_url, &[body])
            .await?;
        if let Some(f) = failed.first() {
            return Err(CliError::Usage(format!("{queue_url}: SQS refused the submit: {} {}", f.code, f.message)));
        }
        let run_id = token::run_id(&token::for_submit(&submit));
        debug_assert_eq!(run_id, planned.run_id);
        if args.json {
            return print(
                &serde_json::json!({"run_id": run_id, "job": submit.job,
                    "submitted_by": submit.submitted_by, "submitted_at": submit.submitted_at})
                .to_string(),
            );
        }
        print(&format!(
            "run {run_id} of job {} submitted to the launcher's queue (jobrunner run view {run_id})",
            submit.job
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_pairs_are_checked_like_config_environment() {
        let env = environment(&["A=1".into(), "B=x=y".into(), "C=".into()]).unwrap();
        assert_eq!(env["B"], "x=y");
        assert_eq!(env["C"], "");
        let error = |pairs: &[&str]| {
            environment(&pairs.iter().map(|p| p.to_string()).collect::<Vec<_>>())
                .unwrap_err()
                .to_string()
        };
        assert!(error(&["A"]).contains("expected NAME=VALUE"));
        assert!(error(&["A=1", "A=2"]).contains("given twice"));
        assert!(error(&["JOB_KEY=x"]).contains("reserved"));
        assert!(error(&["1A=x"]).contains("letters, digits"));
    }

    #[test]
    fn objects_are_s3_urls_with_an_optional_version() {
        assert_eq!(
            object_ref("s3://b/in/a b.jpg").unwrap(),
            ("b".into(), "in/a b.jpg".into(), None)
        );
        assert_eq!(
            object_ref("s3://b/k?versionId=v1").unwrap().2.as_deref(),
            Some("v1")
        );
        assert!(object_ref("b/k").is_err());
        assert!(object_ref("s3://b").is_err());
        assert!(object_ref("s3:///k").is_err());
    }
}
