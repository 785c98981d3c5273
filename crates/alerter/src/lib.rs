//! The alerter function: ECS tasks that stopped become classified SNS alerts.
//!
//! Accepts one "ECS Task State Change" event delivered directly by EventBridge, or an SQS batch
//! of them. Only `lastStatus` STOPPED matters; other states are ignored (debug log). Per
//! invocation it collapses duplicate deliveries, classifies each stop, drops the classes
//! `[alerts] notify_on` leaves out, looks up the task definition (cached) for log links, and
//! publishes one alert per job and class: a batch full of stops of one job becomes one digest.
//! With `[state] table`, stops already alerted by an earlier invocation are skipped.
//!
//! Nothing is dropped silently. In a batch, malformed messages and messages whose alert could
//! not be published are reported in `batchItemFailures` (retried, then dead-lettered); a
//! direct delivery fails the invocation instead, so Lambda's retries and on-failure
//! destination take over.

use std::collections::BTreeSet;
use std::future::Future;

use aws_lambda_events::sqs::SqsBatchResponse;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use jobrunner_aws::sns::SnsTopic;
use jobrunner_aws::state_store::StateStore;
use jobrunner_aws::task_definitions::TaskDefinitions;
use jobrunner_core::Config;
use jobrunner_core::alert::{
    self, Class, Publish, StoppedTask, TaskDefinitionInfo, TaskDefinitionLookup, TaskStateChange,
};
use jobrunner_core::config::Alerts;
use jobrunner_core::event::{self, Event, Invocation};
use serde::Serialize;
use serde_json::Value;
use tracing::{debug, error, info, warn};

/// How long a "this stop was alerted" mark stays in the state table: SQS's longest retention,
/// so a redelivery from the queue is always recognised.
pub const DEDUPE_TTL_DAYS: i64 = 14;

/// Prefix of the alerter's keys in the state table: `alert/<taskArn>#<version>`.
pub const DEDUPE_KEY_PREFIX: &str = "alert/";

/// The alerter's one error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The event is bad: retrying cannot help.
    #[error(transparent)]
    Core(#[from] jobrunner_core::Error),
    /// AWS said no, or not now.
    #[error(transparent)]
    Aws(#[from] jobrunner_aws::Error),
    /// An event this function does not handle (e.g. an S3 event sent to the alerter's queue).
    #[error("the alerter does not handle {0}")]
    WrongFunction(&'static str),
    /// The config has no `[alerts]` section.
    #[error("invalid config: alerts: the alerter needs an [alerts] section with topic_arn")]
    NoAlerts,
}

impl Error {
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Core(e) => e.is_retryable(),
            Error::Aws(e) => e.is_retryable(),
            Error::WrongFunction(_) | Error::NoAlerts => false,
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        let error_type = if e.is_retryable() {
            "jobrunner.Retryable"
        } else {
            "jobrunner.Permanent"
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// The alerter's ports: publishing, task definition lookup, and (optionally) remembering
/// which stops were alerted across invocations.
pub trait AlertPorts: Sync {
    /// What alerts need from a task definition (cached by the adapter).
    fn task_definition(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<TaskDefinitionInfo, jobrunner_aws::Error>> + Send;

    /// Publishes one alert; returns the message ID.
    fn publish(
        &self,
        message: &Publish,
    ) -> impl Future<Output = Result<String, jobrunner_aws::Error>> + Send;

    /// Whether an earlier invocation already alerted `key` (`taskArn#version`).
    fn already_alerted(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<bool, jobrunner_aws::Error>> + Send;

    /// Remembers that `key` was alerted.
    fn record_alerted(
        &self,
        key: &str,
        class: Class,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), jobrunner_aws::Error>> + Send;
}

/// The real adapters, built once per cold start.
#[derive(Debug)]
pub struct AwsPorts {
    pub topic: SnsTopic,
    pub task_definitions: TaskDefinitions,
    /// `[state] table`, when configured: cross-invocation dedupe.
    pub state: Option<StateStore>,
}

impl AlertPorts for AwsPorts {
    async fn task_definition(&self, arn: &str) -> Result<TaskDefinitionInfo, jobrunner_aws::Error> {
        self.task_definitions.get(arn).await
    }

    async fn publish(&self, message: &Publish) -> Result<String, jobrunner_aws::Error> {
        self.topic.publish(message).await
    }

    async fn already_alerted(&self, key: &str) -> Result<bool, jobrunner_aws::Error> {
        match &self.state {
            Some(state) => Ok(state
                .get(&format!("{DEDUPE_KEY_PREFIX}{key}"))
                .await?
                .is_some()),
            None => Ok(false),
        }
    }

    async fn record_alerted(
        &self,
        key: &str,
        class: Class,
        now: DateTime<Utc>,
    ) -> Result<(), jobrunner_aws::Error> {
        let Some(state) = &self.state else {
            return Ok(());
        };
        let data = serde_json::json!({"class": class.as_str(), "alerted_at": now.to_rfc3339_opts(SecondsFormat::Secs, true)}).to_string();
        // A conflict means another invocation alerted it too: the mark is there either way.
        state
            .put(
                &format!("{DEDUPE_KEY_PREFIX}{key}"),
                &data,
                None,
                now + Duration::days(DEDUPE_TTL_DAYS),
            )
            .await?;
        Ok(())
    }
}

/// The `[alerts]` section, which the alerter cannot work without (checked at init).
pub fn alerts(config: &Config) -> Result<&Alerts, Error> {
    config.alerts.as_ref().ok_or(Error::NoAlerts)
}

/// What an invocation returns: a batch response for SQS, a summary for a direct delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Response {
    Batch(SqsBatchResponse),
    Direct(Summary),
}

/// What one invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// SNS messages published (a digest counts once).
    pub published: usize,
    /// Stopped tasks covered by those messages.
    pub alerted_tasks: usize,
    /// Stopped tasks whose class `notify_on` leaves out.
    pub quiet: usize,
    /// Deliveries skipped as duplicates (in this batch, or alerted by an earlier invocation).
    pub duplicates: usize,
    /// Tasks whose alert could not be published.
    pub failed: usize,
}

/// Handles one invocation payload at time `now`.
pub async fn handle(
    config: &Config,
    ports: &impl AlertPorts,
    payload: &Value,
    now: DateTime<Utc>,
) -> Result<Response, Error> {
    let alerts = alerts(config)?;
    match event::decode_invocation(payload)? {
        Invocation::Direct(events) => {
            let events = events.inspect_err(|e| error!(error = %e, "rejected event"))?;
            let mut stops = vec![];
            for event in events {
                if let Some(change) = accept(event).inspect_err(|e| log_failure(None, e))? {
                    stops.push(("direct".to_owned(), change));
                }
            }
            let (summary, failures) = alert_all(config, alerts, ports, stops, now).await;
            match failures.into_iter().next() {
                Some((_, e)) => Err(e),
                None => Ok(Response::Direct(summary)),
            }
        }
        Invocation::SqsBatch(messages) => {
            let mut failed: BTreeSet<String> = BTreeSet::new();
            let mut order: Vec<String> = vec![];
            let mut stops = vec![];
            for message in messages {
                order.push(message.message_id.clone());
                let accepted = message.events.map_err(Error::from).and_then(|events| {
                    events
                        .into_iter()
                        .map(accept)
                        .collect::<Result<Vec<_>, _>>()
                });
                match accepted {
                    Ok(changes) => stops.extend(
                        changes
                            .into_iter()
                            .flatten()
                            .map(|c| (message.message_id.clone(), c)),
                    ),
                    Err(e) => {
                        log_failure(Some(&message.message_id), &e);
                        failed.insert(message.message_id);
                    }
                }
            }
            let (summary, failures) = alert_all(config, alerts, ports, stops, now).await;
            failed.extend(failures.into_iter().flat_map(|(ids, _)| ids));
            info!(?summary, failed_messages = failed.len(), "batch done");
            let mut response = SqsBatchResponse::default();
            for id in order.into_iter().filter(|id| failed.remove(id)) {
                response.add_failure(id);
            }
            Ok(Response::Batch(response))
        }
    }
}

/// The stopped tasks of an event; other events are ignored or refused.
fn accept(event: Event) -> Result<Option<TaskStateChange>, Error> {
    match event {
        Event::TaskStateChange(change) if change.is_stopped() => Ok(Some(*change)),
        Event::TaskStateChange(change) => {
            debug!(task_arn = %change.task_arn, last_status = %change.last_status, "not STOPPED: ignored");
            Ok(None)
        }
        Event::Ignored(reason) => {
            info!(%reason, "ignored");
            Ok(None)
        }
        Event::ObjectCreated(_) => Err(Error::WrongFunction(
            "S3 Object Created events (that is the launcher's job)",
        )),
        Event::ScheduleTick(_) => Err(Error::WrongFunction(
            "schedule ticks (that is the launcher's job)",
        )),
    }
}

/// Dedupes, classifies, groups and publishes. Returns what happened and, per alert that could
/// not be published, the deliveries behind it with the error.
async fn alert_all(
    config: &Config,
    alerts: &Alerts,
    ports: &impl AlertPorts,
    stops: Vec<(String, TaskStateChange)>,
    now: DateTime<Utc>,
) -> (Summary, Vec<(Vec<String>, Error)>) {
    let mut summary = Summary::default();
    let received = stops.len();
    let unique = alert::dedupe(stops);
    summary.duplicates = received - unique.len();
    let mut tasks = vec![];
    let mut quiet = vec![];
    for (deliveries, change) in unique {
        // The task definition can only change a failure class (which containers are
        // essential): stops that cannot become an alert need no lookups.
        let first_guess = alert::classify(&change, None).class;
        if !alert::wants(alerts, first_guess)
            && !matches!(
                first_guess,
                Class::NonZeroExit | Class::Oom | Class::Unknown
            )
        {
            quiet.push(StoppedTask::new(
                config,
                change,
                TaskDefinitionLookup::NotLookedUp,
            ));
            continue;
        }
        let key = change.dedupe_key();
        match ports.already_alerted(&key).await {
            Ok(true) => {
                info!(%key, "already alerted by an earlier invocation: skipped");
                summary.duplicates += deliveries.len();
                continue;
            }
            Ok(false) => {}
            Err(e) => {
                warn!(%key, error = %e, "cannot tell whether this stop was alerted before: alerting (a duplicate beats a lost alert)")
            }
        }
        let definition = match &change.task_definition_arn {
            Some(arn) => match ports.task_definition(arn).await {
                Ok(info) => TaskDefinitionLookup::Found(info),
                Err(e) => {
                    warn!(task_definition = %arn, error = %e, "task definition lookup failed: alerting without log links");
                    TaskDefinitionLookup::Failed(e.to_string())
                }
            },
            None => TaskDefinitionLookup::NotLookedUp,
        };
        tasks.push(StoppedTask::new(config, change, definition).with_deliveries(deliveries));
    }
    let (groups, not_wanted) = alert::group(alerts, tasks);
    quiet.extend(not_wanted);
    summary.quiet = quiet.len();
    for task in &quiet {
        info!(task_arn = %task.change.task_arn, class = task.class().as_str(), name = task.origin.name(), "stopped; class not in alerts.notify_on: no alert");
    }
    let mut failures = vec![];
    for group in groups {
        let publish = alert::render(&group);
        let tasks = group.tasks.len();
        match ports.publish(&publish).await {
            Ok(message_id) => {
                summary.published += 1;
                summary.alerted_tasks += tasks;
                info!(%message_id, subject = %publish.subject, class = group.class.as_str(), name = %group.name, tasks, "alert published");
                for task in &group.tasks {
                    if let Err(e) = ports
                        .record_alerted(&task.change.dedupe_key(), task.class(), now)
                        .await
                    {
                        warn!(task_arn = %task.change.task_arn, error = %e, "alert sent, but not recorded: a redelivery may alert again");
                    }
                }
            }
            Err(e) => {
                let e = Error::from(e);
                summary.failed += tasks;
                let deliveries: Vec<String> = group.deliveries().map(str::to_owned).collect();
                log_failure(None, &e);
                error!(subject = %publish.subject, ?deliveries, "alert not published");
                failures.push((deliveries, e));
            }
        }
    }
    (summary, failures)
}

fn log_failure(message_id: Option<&str>, e: &Error) {
    if e.is_retryable() {
        warn!(message_id, error = %e, "will retry: the event stays in its queue");
    } else {
        error!(message_id, error = %e, "permanent failure: the event goes to the dead-letter queue after its retries");
    }
}

#[cfg(test)]
mod tests;
