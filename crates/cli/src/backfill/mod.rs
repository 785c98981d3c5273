//! `jobrunner backfill`: the objects already in a bucket become the runs their uploads would
//! have started. The prefix is listed page by page (`ListObjectsV2`, or `ListObjectVersions`
//! with `--versions`); each object a trigger routes becomes the S3 event the live upload sends,
//! put on the launcher's queue with SendMessageBatch at `--rate` messages a second. The
//! launcher then does what it does with a live event (the cap, the ledger), and since a run's
//! token is the object's bucket, key and version or ETag, an object that already had its run
//! (a live event, an earlier backfill) is not started again.
//!
//! `--dry-run` sends nothing and prints, for each routed object, the launcher's own plan in
//! `jobrunner plan`'s format (one JSON document a line). On an error or Ctrl-C the last key
//! whose messages were all sent is printed, for `--start-after`.

mod select;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jobrunner_aws::s3::{ListMode, S3Objects};
use jobrunner_aws::sqs_admin::{MAX_BATCH, SqsAdmin};
use jobrunner_core::Config;
use jobrunner_core::dryrun::{self, Function, World};
use jobrunner_core::event::{Event, encode};

use crate::{CliError, parse_time, print};
use select::{Choice, Filter, Location, Resume, Tally};

/// Messages a second when `--rate` is not given: under the launcher's ECS budget (RunTask is
/// about 20 calls a second per account and region).
const DEFAULT_RATE: f64 = 10.0;
/// Times a batch entry that SQS failed on its side is sent again.
const RESEND_TRIES: u32 = 5;

#[derive(clap::Args)]
pub struct BackfillArgs {
    /// s3://bucket/prefix: what to list (the prefix may be empty: the whole bucket).
    location: String,
    #[arg(long, env = "JOBRUNNER_CONFIG_FILE")]
    config: PathBuf,
    /// Only objects the triggers route to this job.
    #[arg(long)]
    job: Option<String>,
    /// Only objects last modified at or after this RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Only objects last modified before this RFC 3339 time.
    #[arg(long)]
    until: Option<String>,
    /// Print the launcher's plan for each routed object (`jobrunner plan`'s format, one JSON
    /// document a line); send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Messages a second sent to the launcher's queue.
    #[arg(long, default_value_t = DEFAULT_RATE)]
    rate: f64,
    /// The launcher's queue (default: the config's `[launcher] queue_url`).
    #[arg(long)]
    queue_url: Option<String>,
    /// List every version of every object (ListObjectVersions), not just the current ones:
    /// each version is its own run.
    #[arg(long)]
    versions: bool,
    /// Start after this key (exclusive): the resume point a stopped backfill printed.
    #[arg(long)]
    start_after: Option<String>,
    /// The AWS region (default: the SDK's chain: AWS_REGION, the profile).
    #[arg(long)]
    region: Option<String>,
}

/// Checked arguments.
struct Plan {
    config: Config,
    location: Location,
    filter: Filter,
    mode: ListMode,
    queue_url: Option<String>,
    rate: f64,
    start_after: Option<String>,
}

fn check(args: &BackfillArgs) -> Result<Plan, CliError> {
    let config = Config::load(&args.config)?;
    let location = Location::parse(&args.location).map_err(|reason| CliError::Target {
        value: args.location.clone(),
        reason,
    })?;
    let bad = |flag: &str, reason: String| CliError::Usage(format!("{flag}: {reason}"));
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(bad(
            "--rate",
            format!(
                "{} is not a positive number of messages a second",
                args.rate
            ),
        ));
    }
    if let Some(job) = &args.job {
        if config.job(job).is_none() {
            return Err(bad("--job", format!("no job '{job}' in the config")));
        }
        if !config
            .triggers
            .s3
            .iter()
            .any(|t| t.job == *job && t.bucket == location.bucket)
        {
            return Err(bad(
                "--job",
                format!(
                    "no [[triggers.s3]] routes bucket '{}' to job '{job}': a backfill makes the runs live uploads would (for one object by hand, `jobrunner submit {job} --object s3://…`)",
                    location.bucket
                ),
            ));
        }
    }
    if !config
        .triggers
        .s3
        .iter()
        .any(|t| t.bucket == location.bucket)
    {
        return Err(bad(
            &args.location,
            format!(
                "no [[triggers.s3]] for bucket '{}': nothing would be routed",
                location.bucket
            ),
        ));
    }
    let since = args
        .since
        .as_deref()
        .map(|t| parse_time("--since", t))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|t| parse_time("--until", t))
        .transpose()?;
    if let (Some(since), Some(until)) = (since, until)
        && since >= until
    {
        return Err(bad("--until", "must be later than --since".into()));
    }
    if let Some(key) = &args.start_after
        && !key.starts_with(&location.prefix)
    {
        return Err(bad(
            "--start-after",
            format!("'{key}' is not under the prefix '{}'", location.prefix),
        ));
    }
    let queue_url = args
        .queue_url
        .clone()
        .or_else(|| config.launcher.as_ref().map(|l| l.queue_url.clone()));
    if queue_url.is_none() && !args.dry_run {
        return Err(bad(
            "--queue-url",
            "runs go through the launcher's queue: pass it, or set [launcher] queue_url in the config".into(),
        ));
    }
    Ok(Plan {
        config,
        location,
        filter: Filter {
            job: args.job.clone(),
            since,
            until,
        },
        mode: if args.versions {
            ListMode::Versions
        } else {
            ListMode::Current
        },
        queue_url,
        rate: args.rate,
        start_after: args.start_after.clone(),
    })
}

/// Runs `jobrunner backfill`.
pub fn run(args: BackfillArgs) -> Result<(), CliError> {
    let plan = check(&args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    runtime.block_on(async {
        let sdk = crate::runs::sdk_config(args.region.as_deref()).await?;
        let mut state = State::new(plan.rate);
        let outcome = tokio::select! {
            result = backfill(&sdk, &plan, args.dry_run, &mut state) => result.map_err(Stop::Failed),
            _ = tokio::signal::ctrl_c() => Err(Stop::Interrupted),
        };
        state.progress.finish_and_clear();
        let elapsed = state.started.elapsed().as_secs_f64().max(1e-9);
        let summary = format!(
            "{} in {elapsed:.1}s ({:.0} objects/s listed, {:.0} messages/s sent)",
            state.tally.line(),
            state.tally.listed as f64 / elapsed,
            state.tally.sent as f64 / elapsed
        );
        match outcome {
            Ok(()) => {
                eprintln!("jobrunner: backfill {}: {summary}", plan.location_text());
                Ok(())
            }
            Err(stop) => {
                eprintln!("jobrunner: backfill stopped: {summary}");
                let resume = match state.resume.point() {
                    Some(key) => format!("resume with --start-after '{key}'"),
                    None => match &plan.start_after {
                        Some(key) => format!("nothing more was sent: resume with --start-after '{key}'"),
                        None => "nothing was sent in full: start again".to_string(),
                    },
                };
                Err(match stop {
                    Stop::Interrupted => CliError::Interrupted(resume),
                    Stop::Failed(error) => CliError::Backfill { error: Box::new(error), resume },
                })
            }
        }
    })
}

enum Stop {
    Interrupted,
    Failed(CliError),
}

impl Plan {
    fn location_text(&self) -> String {
        format!("s3://{}/{}", self.location.bucket, self.location.prefix)
    }
}

/// What a backfill has done so far (kept outside the work so an interruption can report it).
struct State {
    tally: Tally,
    resume: Resume,
    progress: ProgressBar,
    started: Instant,
    rate: f64,
}

impl State {
    fn new(rate: f64) -> State {
        // A bar only for a person watching: never in a pipe or a log.
        let progress = if std::io::stderr().is_terminal() && std::io::stdout().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} listed {pos} ({per_sec}) {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        } else {
            ProgressBar::hidden()
        };
        State {
            tally: Tally::default(),
            resume: Resume::default(),
            progress,
            started: Instant::now(),
            rate,
        }
    }
}

async fn backfill(
    sdk: &aws_config::SdkConfig,
    plan: &Plan,
    dry_run: bool,
    state: &mut State,
) -> Result<(), CliError> {
    let s3 = S3Objects::from_config(sdk);
    let sqs = SqsAdmin::from_sdk_config(sdk);
    let mut listing = s3.list(
        &plan.location.bucket,
        &plan.location.prefix,
        plan.mode,
        plan.start_after.as_deref(),
        1000,
    );
    let mut batch: Vec<String> = Vec::with_capacity(MAX_BATCH);
    let now = Utc::now();
    while let Some(page) = listing.next_page().await? {
        for listed in page {
            let choice = select::choose(&plan.config, &plan.location.bucket, &plan.filter, &listed);
            state.tally.count(&choice);
            state.progress.inc(1);
            let Choice::Launch { object, .. } = choice else {
                state.resume.listed(&listed.key, false);
                continue;
            };
            state.resume.listed(&listed.key, !dry_run);
            let event = Event::ObjectCreated(object);
            let Some(document) = encode(&event) else {
                continue;
            };
            if dry_run {
                print_plan(&plan.config, &document, now)?;
                continue;
            }
            batch.push(document.to_string());
            if batch.len() == MAX_BATCH {
                send(&sqs, plan, state, &mut batch).await?;
            }
        }
        state.progress.set_message(format!(
            "routed {} sent {}",
            state.tally.routed, state.tally.sent
        ));
    }
    state.resume.finished_listing();
    if !batch.is_empty() {
        send(&sqs, plan, state, &mut batch).await?;
    }
    Ok(())
}

/// The launcher's plan for one event, as `jobrunner plan` prints it (one line).
fn print_plan(
    config: &Config,
    document: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), CliError> {
    let dry_run = dryrun::dry_run_now(
        config,
        Function::Launcher,
        document,
        now,
        World::for_config(config),
    )?;
    print(&serde_json::to_string(&dry_run).unwrap_or_default())
}

/// Sends `batch` (emptying it), paced to the rate, resending what SQS failed on its side.
async fn send(
    sqs: &SqsAdmin,
    plan: &Plan,
    state: &mut State,
    batch: &mut Vec<String>,
) -> Result<(), CliError> {
    let queue_url = plan.queue_url.as_deref().unwrap_or_default();
    // Pace: the messages sent so far may not run ahead of the rate since the start.
    let due = Duration::from_secs_f64((state.tally.sent + batch.len() as u64) as f64 / state.rate);
    let elapsed = state.started.elapsed();
    if due > elapsed {
        tokio::time::sleep(due - elapsed).await;
    }
    let mut pending: Vec<String> = std::mem::take(batch);
    for attempt in 0..=RESEND_TRIES {
        let failures = sqs.send_batch(queue_url, &pending).await?;
        if let Some(refused) = failures.iter().find(|f| f.sender_fault) {
            return Err(CliError::Usage(format!(
                "{queue_url}: SQS refused a message: {} {}",
                refused.code, refused.message
            )));
        }
        // SQS takes a batch's entries independently; the failed ones are sent again. Order
        // does not matter to the launcher; the resume point counts only what is sent.
        let failed: Vec<usize> = failures.iter().map(|f| f.index).collect();
        state.tally.sent += (pending.len() - failed.len()) as u64;
        pending = failed
            .iter()
            .filter_map(|&i| pending.get(i).cloned())
            .collect();
        if pending.is_empty() {
            break;
        }
        if attempt == RESEND_TRIES {
            return Err(CliError::Usage(format!(
                "{queue_url}: {} messages still failing after {RESEND_TRIES} resends ({})",
                pending.len(),
                failures.first().map(|f| f.code.as_str()).unwrap_or("?")
            )));
        }
        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
    }
    state.resume.sent(state.tally.sent);
    Ok(())
}
