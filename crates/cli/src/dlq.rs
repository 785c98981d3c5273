//! `jobrunner dlq list|redrive <launcher|tracker>`: what is in a function's dead-letter queue,
//! and moving it back. The DLQ is found from its source queue's redrive policy (the launcher's
//! queue is the config's `[launcher] queue_url`; the tracker's is given with `--queue-url`), or
//! named with `--dlq-url`.
//!
//! `list` looks at the messages without consuming them (each is received with a short
//! visibility timeout and released at once) and gives each one's reason where it can be known
//! without the function's log: a Lambda on-failure record carries its condition and error; a
//! message the function cannot decode fails the same way again; for the launcher, its own
//! decision code is run on the event (as `jobrunner plan` does) and a failure it would meet is
//! shown. `redrive` starts SQS `StartMessageMoveTask` back to the source queue; the launcher
//! then recognises runs that already have their task by their token, and starts only the rest.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::ValueEnum;
use jobrunner_aws::sqs_admin::{PeekedMessage, QueueRef, SqsAdmin};
use jobrunner_core::Config;
use jobrunner_core::dryrun::{self, Function, World};
use jobrunner_core::event::{self, Event};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{CliError, print};

#[derive(clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(clap::Subcommand)]
enum DlqCommand {
    /// Count the messages, the oldest's age, and each message's event and reason.
    List {
        #[command(flatten)]
        queues: QueueArgs,
        /// Look at this many messages at most.
        #[arg(long, default_value_t = 100)]
        max: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Move every message back to the source queue (SQS StartMessageMoveTask).
    Redrive {
        #[command(flatten)]
        queues: QueueArgs,
        /// Messages a second the move may go at (SQS's own default when not given; 1-500).
        #[arg(long)]
        rate: Option<i32>,
        /// Wait for the move to end and print how many messages moved.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(clap::Args)]
struct QueueArgs {
    /// Whose dead-letter queue.
    function: Which,
    /// The config (the launcher's queue is its `[launcher] queue_url`).
    #[arg(long, env = "JOBRUNNER_CONFIG_FILE")]
    config: Option<PathBuf>,
    /// The function's source queue (its redrive policy names the DLQ).
    #[arg(long)]
    queue_url: Option<String>,
    /// The dead-letter queue itself (default: from the source queue's redrive policy).
    #[arg(long)]
    dlq_url: Option<String>,
    /// The AWS region (default: the SDK's chain: AWS_REGION, the profile).
    #[arg(long)]
    region: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Launcher,
    Tracker,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Launcher => "launcher",
            Which::Tracker => "tracker",
        }
    }
}

/// Runs one `jobrunner dlq …` command.
pub fn run(args: DlqArgs) -> Result<(), CliError> {
    let queues = match &args.command {
        DlqCommand::List { queues, .. } | DlqCommand::Redrive { queues, .. } => queues,
    };
    let config = queues.config.as_deref().map(Config::load).transpose()?;
    let source_url = queues.queue_url.clone().or_else(|| match queues.function {
        Which::Launcher => config
            .as_ref()?
            .launcher
            .as_ref()
            .map(|l| l.queue_url.clone()),
        Which::Tracker => None,
    });
    if let DlqCommand::Redrive {
        rate: Some(rate), ..
    } = &args.command
        && !(1..=500).contains(rate)
    {
        return Err(CliError::Usage(format!(
            "--rate {rate}: SQS moves 1 to 500 messages a second"
        )));
    }
    if source_url.is_none()
        && (queues.dlq_url.is_none() || matches!(args.command, DlqCommand::Redrive { .. }))
    {
        return Err(CliError::Usage(match queues.function {
            Which::Launcher => "the launcher's queue is unknown: pass --config with [launcher] queue_url, or --queue-url".into(),
            Which::Tracker => "the tracker's queue is not in the config: pass --queue-url (the tracker's SQS buffer)".into(),
        }));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    runtime.block_on(async {
        let sdk = crate::runs::sdk_config(queues.region.as_deref()).await?;
        let sqs = SqsAdmin::from_sdk_config(&sdk);
        let dlq = match (&queues.dlq_url, &source_url) {
            (Some(url), _) => sqs.queue(url).await?,
            (None, Some(source)) => sqs.dead_letter_queue(source).await?.ok_or_else(|| {
                CliError::Usage(format!(
                    "{source}: no redrive policy: the queue has no dead-letter queue"
                ))
            })?,
            (None, None) => unreachable_queue()?,
        };
        match args.command {
            DlqCommand::List { max, json, .. } => {
                list(&sqs, queues.function, config.as_ref(), &dlq, max, json).await
            }
            DlqCommand::Redrive { rate, wait, .. } => {
                let source = sqs.queue(source_url.as_deref().unwrap_or_default()).await?;
                redrive(&sqs, queues.function, &dlq, &source, rate, wait).await
            }
        }
    })
}

fn unreachable_queue() -> Result<QueueRef, CliError> {
    Err(CliError::Usage("no queue given".into()))
}

/// One message as `list` shows it.
#[derive(Debug, Serialize)]
struct Shown {
    message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_at: Option<DateTime<Utc>>,
    receive_count: u32,
    /// The event, in a few words.
    event: String,
    reason: String,
}

async fn list(
    sqs: &SqsAdmin,
    function: Which,
    config: Option<&Config>,
    dlq: &QueueRef,
    max: usize,
    json: bool,
) -> Result<(), CliError> {
    let counts = sqs.counts(&dlq.url).await?;
    let messages = sqs.peek(&dlq.url, max).await?;
    let now = Utc::now();
    let shown: Vec<Shown> = messages
        .iter()
        .map(|m| explain(function, config, m, now))
        .collect();
    let oldest = shown.iter().filter_map(|m| m.sent_at).min();
    let count = counts.visible + counts.in_flight + counts.delayed;
    if json {
        return print(
            &serde_json::to_string_pretty(&json!({
                "function": function.name(),
                "queue_url": dlq.url,
                "count": count,
                "visible": counts.visible,
                "in_flight": counts.in_flight,
                "oldest_sent_at": oldest,
                "oldest_age_seconds": oldest.map(|t| (now - t).num_seconds()),
                "messages": shown,
            }))
            .unwrap_or_default(),
        );
    }
    let age = oldest.map_or_else(String::new, |t| {
        format!(", oldest sent {} ago", ago(now - t))
    });
    print(&format!(
        "{} dead-letter queue {}: {count} messages ({} visible, {} in flight){age}",
        function.name(),
        dlq.url,
        counts.visible,
        counts.in_flight
    ))?;
    for m in &shown {
        let sent = m.sent_at.map_or_else(
            || "?".into(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
        print(&format!(
            "  {}  sent {sent}  received {}x  {}\n    reason: {}",
            m.message_id, m.receive_count, m.event, m.reason
        ))?;
    }
    if shown.len() < count as usize {
        print(&format!("  ({} shown; --max for more)", shown.len()))?;
    }
    Ok(())
}

/// What `message` is and why it is here, as far as can be known without the function's log.
fn explain(
    function: Which,
    config: Option<&Config>,
    message: &PeekedMessage,
    now: DateTime<Utc>,
) -> Shown {
    let (event, reason) = match event::parse_json(&message.body) {
        Err(e) => (
            "not JSON".into(),
            format!("the function cannot read it: {e}"),
        ),
        Ok(value) => {
            let recorded = destination_reason(&value);
            match event::decode_event(&value) {
                Err(e) => (
                    "undecodable".into(),
                    recorded.unwrap_or_else(|| format!("the function cannot decode it: {e}")),
                ),
                Ok(events) => {
                    let event = events.iter().map(describe).collect::<Vec<_>>().join("; ");
                    let replayed = match (function, config) {
                        (Which::Launcher, Some(config)) => launcher_failure(config, &value, now),
                        _ => None,
                    };
                    let reason = recorded.or(replayed).unwrap_or_else(|| {
                        format!(
                            "not recorded with the message (the {} logged it with message id {}, after {} receives)",
                            function.name(),
                            message.message_id,
                            message.receive_count.saturating_sub(1)
                        )
                    });
                    (event, reason)
                }
            }
        }
    };
    Shown {
        message_id: message.message_id.clone(),
        sent_at: message.sent_at,
        receive_count: message.receive_count,
        event,
        reason,
    }
}

/// A Lambda on-failure record's condition and the error the function returned.
fn destination_reason(value: &Value) -> Option<String> {
    let context = value.get("requestContext")?;
    let condition = context
        .get("condition")
        .and_then(Value::as_str)
        .unwrap_or("failed");
    let payload = value.get("responsePayload");
    let error = payload
        .and_then(|p| p.get("errorMessage").or_else(|| p.get("errorType")))
        .and_then(Value::as_str);
    Some(match error {
        Some(error) => format!("{condition}: {error}"),
        None => condition.to_string(),
    })
}

/// The failure the launcher's own decisions meet on `value` today, if any.
fn launcher_failure(config: &Config, value: &Value, now: DateTime<Utc>) -> Option<String> {
    match dryrun::dry_run_now(
        config,
        Function::Launcher,
        value,
        now,
        World::for_config(config),
    ) {
        Err(e) => Some(e.to_string()),
        Ok(run) => run.failed.first().map(|f| {
            format!(
                "{}{}",
                f.reason,
                if f.retryable { " (retryable)" } else { "" }
            )
        }),
    }
}

fn describe(event: &Event) -> String {
    match event {
        Event::ObjectCreated(o) => match &o.version_id {
            Some(v) => format!("s3://{}/{}?versionId={v}", o.bucket, o.key),
            None => format!("s3://{}/{}", o.bucket, o.key),
        },
        Event::ScheduleTick(t) => format!(
            "{}@{}",
            t.name,
            t.scheduled_time.format("%Y-%m-%dT%H:%M:%SZ")
        ),
        Event::TaskStateChange(c) => format!("task {}", c.task_arn),
        Event::Retry(r) => format!("retry of run {} attempt {}", r.run_id, r.attempt),
        Event::Ignored(why) => format!("ignored ({why})"),
        Event::Submit(s) => format!("submit of {} by {}", s.job, s.submitted_by),
    }
}

fn ago(age: chrono::Duration) -> String {
    let secs = age.num_seconds().max(0) as u64;
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

async fn redrive(
    sqs: &SqsAdmin,
    function: Which,
    dlq: &QueueRef,
    source: &QueueRef,
    rate: Option<i32>,
    wait: bool,
) -> Result<(), CliError> {
    let handle = sqs.start_move(&dlq.arn, &source.arn, rate).await?;
    print(&format!(
        "{} dead-letter queue: moving its messages back to {} (task {handle}); runs that already have their task are recognised by their token and not started again",
        function.name(),
        source.url
    ))?;
    if !wait {
        return Ok(());
    }
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Some(task) = sqs.latest_move(&dlq.arn).await? else {
            continue;
        };
        if task.status == "RUNNING" {
            continue;
        }
        let line = format!(
            "move {}: {} messages moved{}",
            task.status.to_lowercase(),
            task.moved,
            task.failure_reason
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
        if task.status == "COMPLETED" {
            return print(&line);
        }
        return Err(CliError::Refused(line));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use jobrunner_core::config::Format;

    use super::*;

    fn message(body: &str) -> PeekedMessage {
        PeekedMessage {
            message_id: "m-1".into(),
            body: body.into(),
            sent_at: Some("2026-11-25T10:00:00Z".parse().unwrap()),
            receive_count: 6,
            attributes: HashMap::new(),
        }
    }

    fn config() -> Config {
        Config::parse(
            "[defaults]\ncluster = \"jobs\"\nsubnets = [\"s\"]\n[jobs.a]\ntask_definition = \"a\"\ncontainer = \"app\"\n[[triggers.s3]]\njob = \"a\"\nbucket = \"uploads\"\n",
            Format::Toml,
        )
        .unwrap()
    }

    #[test]
    fn reasons_come_from_the_record_the_decoder_or_the_launchers_own_decisions() {
        let now = "2026-11-25T12:00:00Z".parse().unwrap();
        let config = config();
        let shown = explain(Which::Launcher, Some(&config), &message("{nope"), now);
        assert!(
            shown.reason.starts_with("the function cannot read it"),
            "{}",
            shown.reason
        );
        let shown = explain(
            Which::Launcher,
            Some(&config),
            &message(r#"{"hello": 1}"#),
            now,
        );
        assert_eq!(shown.event, "undecodable");
        let record = json!({
            "version": "1.0",
            "requestContext": {"condition": "RetriesExhausted"},
            "requestPayload": {"source": "jobrunner.scheduler", "schedule": "nightly", "scheduled_time": "2026-11-25T02:00:00Z"},
            "responsePayload": {"errorMessage": "ThrottlingException: Rate exceeded"}
        });
        let shown = explain(
            Which::Launcher,
            Some(&config),
            &message(&record.to_string()),
            now,
        );
        assert_eq!(
            shown.reason,
            "RetriesExhausted: ThrottlingException: Rate exceeded"
        );
        assert_eq!(shown.event, "nightly@2026-11-25T02:00:00Z");
        let object = json!({"version": "0", "detail-type": "Object Created", "source": "aws.s3",
            "time": "2026-11-25T10:00:00Z", "detail": {"bucket": {"name": "uploads"},
            "object": {"key": "a.txt", "size": 1, "etag": "e"}}});
        let shown = explain(
            Which::Launcher,
            Some(&config),
            &message(&object.to_string()),
            now,
        );
        assert_eq!(shown.event, "s3://uploads/a.txt");
        assert!(
            shown.reason.contains("message id m-1") && shown.reason.contains("5 receives"),
            "{}",
            shown.reason
        );
    }

    #[test]
    fn ages_read_as_durations() {
        assert_eq!(ago(chrono::Duration::seconds(3723)), "1h 2m 3s");
        assert_eq!(ago(chrono::Duration::seconds(-5)), "0s");
    }
}
