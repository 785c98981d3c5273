//! `jobrunner status`: one screen of the deployment as it is now. Per job its running slots,
//! cap and waiting runs (the ledger's `slots/<job>` records), the last failed or timed-out
//! runs (the `runs-by-day` index), per worker its queue and service counts, and the depth of
//! each dead-letter queue known: the launcher queue's and each worker queue's (from their
//! `RedrivePolicy`), plus any given with `--dlq`. Reads only.
//!
//! `--watch` redraws the screen in place every few seconds until Ctrl-C; `--json` prints the
//! same snapshot as one JSON document (one line per refresh with `--watch`). A read that
//! fails shows as an error cell; the command itself fails only on a bad config or arguments.

mod render;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use futures::future::join_all;
use jobrunner_aws::status_reader::StatusReader;
use jobrunner_core::Config;
use jobrunner_core::run::Run;

use crate::CliError;
use render::{
    DeadLetterStatus, Failure, JobStatus, QueueCounts, Reading, ServiceStatus, SlotCounts,
    Snapshot, WorkerStatus,
};

/// Failures listed at most.
const FAILURES_SHOWN: usize = 5;
/// How far back failures are looked for (at most the ledger's retention).
const FAILURES_SINCE_HOURS: u32 = 24;
/// `--watch` without a value.
const DEFAULT_WATCH_SECONDS: &str = "2";
/// The longest `--watch` interval.
const MAX_WATCH_SECONDS: u64 = 3600;

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The config of the deployment (its jobs, workers, `[state]` table and launcher queue).
    #[arg(long, env = "JOBRUNNER_CONFIG_FILE")]
    config: PathBuf,
    /// The AWS region (default: the SDK's chain: AWS_REGION, the profile).
    #[arg(long)]
    region: Option<String>,
    /// Refresh the screen in place every SECONDS (default 2) until Ctrl-C.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = DEFAULT_WATCH_SECONDS)]
    watch: Option<u64>,
    /// Print the snapshot as JSON (with --watch, one document per line and refresh).
    #[arg(long)]
    json: bool,
    /// Another dead-letter queue to show (repeatable), e.g. the tracker's, which the config
    /// does not name.
    #[arg(long = "dlq", value_name = "QUEUE_URL")]
    dead_letter_queues: Vec<String>,
}

/// Runs `jobrunner status`.
pub fn run(args: StatusArgs) -> Result<(), CliError> {
    let config = Config::load(&args.config)?;
    if let Some(seconds) = args.watch
        && !(1..=MAX_WATCH_SECONDS).contains(&seconds)
    {
        return Err(CliError::Watch {
            seconds,
            max: MAX_WATCH_SECONDS,
        });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    runtime.block_on(async {
        let sdk = crate::runs::sdk_config(args.region.as_deref()).await?;
        let reader = StatusReader::from_sdk_config(&sdk);
        match args.watch {
            None => {
                let snapshot = snapshot(&reader, &config, &args.dead_letter_queues).await;
                if args.json {
                    crate::print(&serde_json::to_string_pretty(&snapshot).unwrap_or_default())
                } else {
                    write_out(&render::text(&snapshot))
                }
            }
            Some(seconds) => watch(&reader, &config, &args, seconds).await,
        }
    })
}

/// Refreshes every `seconds` until Ctrl-C (SIGINT), which ends it with status 0.
async fn watch(
    reader: &StatusReader,
    config: &Config,
    args: &StatusArgs,
    seconds: u64,
) -> Result<(), CliError> {
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let interval = StdDuration::from_secs(seconds);
    if !args.json {
        write_out(render::HIDE_CURSOR)?;
    }
    let result: Result<(), CliError> = async {
        loop {
            let snapshot = tokio::select! {
                _ = &mut interrupted => return Ok(()),
                s = snapshot(reader, config, &args.dead_letter_queues) => s,
            };
            if args.json {
                write_out(&format!(
                    "{}\n",
                    serde_json::to_string(&snapshot).unwrap_or_default()
                ))?;
            } else {
                let footer = format!("every {seconds}s; Ctrl-C to stop");
                write_out(&render::frame(&render::text(&snapshot), &footer))?;
            }
            tokio::select! {
                _ = &mut interrupted => return Ok(()),
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
    .await;
    if !args.json {
        // The cursor comes back, below the last screen.
        write_out(render::SHOW_CURSOR)?;
    }
    result
}

/// Writes `text` to stdout as is (a closed pipe ends quietly, as for `print`).
fn write_out(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}

/// Reads everything the screen shows, each read on its own so one failure stays in its cell.
async fn snapshot(reader: &StatusReader, config: &Config, extra_dlqs: &[String]) -> Snapshot {
    let at = Utc::now();
    let table = config.state.as_ref().map(|s| s.table.clone());
    let since_hours = config.state.as_ref().map_or(FAILURES_SINCE_HOURS, |s| {
        FAILURES_SINCE_HOURS.min(s.retention_days.saturating_mul(24))
    });

    let jobs = join_all(config.jobs.iter().map(|(name, job)| {
        let table = table.clone();
        async move {
            let slots = match (job.max_running, table) {
                (None, _) => None,
                (Some(_), None) => Some(no_table()),
                (Some(_), Some(table)) => Some(Reading::from_result(
                    reader.slots(&table, name).await.map(|slots| {
                        let slots = slots.unwrap_or_default();
                        SlotCounts {
                            running: slots.used(),
                            waiting: u32::try_from(slots.line.len()).unwrap_or(u32::MAX),
                        }
                    }),
                )),
            };
            JobStatus {
                job: name.clone(),
                max_running: job.max_running,
                slots,
            }
        }
    }));

    let failures = async {
        match &table {
            None => no_table(),
            Some(table) => Reading::from_result(
                reader
                    .failures(
                        table,
                        at - Duration::hours(i64::from(since_hours)),
                        at,
                        FAILURES_SHOWN,
                    )
                    .await
                    .map(|runs| runs.iter().map(failure).collect()),
            ),
        }
    };

    let workers = join_all(config.workers.iter().map(|(name, worker)| async move {
        let (queue, service) = tokio::join!(
            reader.queue(&worker.queue_url),
            reader.service(&worker.cluster, &worker.service)
        );
        let dead_letter = queue.as_ref().ok().and_then(|q| q.dead_letter_arn.clone());
        let status = WorkerStatus {
            worker: name.clone(),
            queue: Reading::from_result(queue.map(|q| QueueCounts {
                visible: q.depth.visible,
                in_flight: q.depth.in_flight,
                delayed: q.depth.delayed,
            })),
            service: Reading::from_result(service.map(|s| ServiceStatus {
                desired: s.desired,
                running: s.running,
                pending: s.pending,
            })),
        };
        (
            status,
            dead_letter.map(|arn| (format!("worker {name}"), arn)),
        )
    }));

    let launcher_dlq = async {
        let queue_url = &config.launcher.as_ref()?.queue_url;
        match reader.queue(queue_url).await {
            Ok(q) => match q.dead_letter_arn {
                Some(arn) => Some(dead_letter(reader, "launcher".into(), arn).await),
                None => None,
            },
            Err(e) => Some(DeadLetterStatus {
                of: "launcher".into(),
                url: None,
                messages: Reading::Error {
                    error: format!("the launcher queue's redrive policy: {e}"),
                },
            }),
        }
    };

    let (jobs, failures, workers, launcher_dlq) =
        tokio::join!(jobs, failures, workers, launcher_dlq);
    let mut dead_letter_queues = Vec::new();
    dead_letter_queues.extend(launcher_dlq);
    let (workers, worker_dlqs): (Vec<_>, Vec<_>) = workers.into_iter().unzip();
    let mut more = Vec::new();
    for (of, arn) in worker_dlqs.into_iter().flatten() {
        more.push(dead_letter(reader, of, arn));
    }
    let given = extra_dlqs.iter().map(|url| async move {
        let of = url.rsplit('/').next().unwrap_or(url).to_string();
        DeadLetterStatus {
            of,
            url: Some(url.clone()),
            messages: Reading::from_result(reader.queue(url).await.map(|q| q.depth.visible)),
        }
    });
    let (more, given) = tokio::join!(join_all(more), join_all(given));
    dead_letter_queues.extend(more);
    dead_letter_queues.extend(given);

    Snapshot {
        at,
        table,
        jobs,
        failures,
        failures_since_hours: since_hours,
        workers,
        dead_letter_queues,
    }
}

/// The cell of a ledger read when the config names no table.
fn no_table<T>() -> Reading<T> {
    Reading::Error {
        error: "the config has no [state] table".into(),
    }
}

/// The depth of the dead-letter queue `arn`, labelled `of`.
async fn dead_letter(reader: &StatusReader, of: String, arn: String) -> DeadLetterStatus {
    let url = match reader.queue_url(&arn).await {
        Ok(url) => url,
        Err(e) => {
            return DeadLetterStatus {
                of,
                url: None,
                messages: Reading::from_result(Err::<u64, _>(e)),
            };
        }
    };
    let messages = Reading::from_result(reader.queue(&url).await.map(|q| q.depth.visible));
    DeadLetterStatus {
        of,
        url: Some(url),
        messages,
    }
}

/// A failed run as the screen lists it: its last attempt as `run view` describes it (class,
/// exit code, resources, task, reason), else the run's own reason.
fn failure(run: &Run) -> Failure {
    let attempt = run.last_attempt();
    let mut why = attempt.map(|a| a.describe()).unwrap_or_default();
    if let Some(reason) = run
        .reason
        .as_deref()
        .filter(|_| attempt.is_none_or(|a| a.reason.is_none()))
    {
        if !why.is_empty() {
            why.push_str(": ");
        }
        why.push_str(reason);
    }
    Failure {
        run_id: run.run_id.clone(),
        job: run.job.clone(),
        state: run.state.to_string(),
        at: run.updated_at,
        why,
    }
}
