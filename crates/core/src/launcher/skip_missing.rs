//! `skip_missing`: an event that waited (at its job's cap, or a retry sent back through the
//! launcher's queue) may name an object deleted meanwhile. For a job with `skip_missing = true`
//! the launcher reads the object version with HeadObject just before launching such a run; a
//! deleted object's run ends `skipped`, with the reason in the ledger, and its slot is freed.
//! An event launched at once is not checked (its object was just written).

use chrono::{DateTime, Utc};
use tracing::info;

use super::launch::Identity;
use super::{LaunchPorts, Outcome, skipped, waiting};
use crate::config::Config;
use crate::error::Error;
use crate::event::Event;
use crate::ledger::{Ledger, Loaded, keys};
use crate::run::{Run, RunInput, RunState};

/// Why the run's object is gone, when the job skips missing objects and the event waited.
pub(super) async fn missing(
    config: &Config,
    ports: &impl LaunchPorts,
    event: &Event,
    identity: &Identity,
    loaded: &Loaded<Run>,
) -> Result<Option<String>, Error> {
    if !config.job(&identity.job).is_some_and(|j| j.skip_missing) {
        return Ok(None);
    }
    let RunInput::S3 {
        bucket,
        key,
        version_id,
        ..
    } = &identity.input
    else {
        return Ok(None);
    };
    let waited = matches!(event, Event::Retry(_))
        || loaded
            .as_ref()
            .is_some_and(|(run, _)| run.state == RunState::Waiting);
    if !waited {
        return Ok(None);
    }
    if ports
        .head(bucket, key, version_id.as_deref())
        .await?
        .is_some()
    {
        return Ok(None);
    }
    let version = version_id
        .as_deref()
        .map(|v| format!(" version {v}"))
        .unwrap_or_default();
    Ok(Some(format!(
        "object s3://{bucket}/{key}{version} no longer exists (skip_missing)"
    )))
}

/// Ends the run `skipped` for `reason` and gives its slot back.
pub(super) async fn skip<P: LaunchPorts>(
    config: &Config,
    ledger: &Ledger<'_, P>,
    (identity, attempt): (&Identity, u32),
    loaded: Loaded<Run>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    info!(job = %identity.job, run_id = %identity.run_id, %reason, "object deleted while the event waited: run skipped");
    ledger
        .update(
            &keys::run_key(&identity.run_id),
            Some(loaded),
            now,
            |run: &mut Option<Run>| {
                run.get_or_insert_with(|| identity.new_run(now))
                    .end_unlaunched(RunState::Skipped, reason, now)
            },
        )
        .await?;
    waiting::release(config, ledger, (identity, attempt), now).await?;
    Ok(skipped(reason.to_owned()))
}
