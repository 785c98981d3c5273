//! `jobrunner`: validate a config, print its schema, dry-run an event through a function's own
//! decision path, list schedule fire times, simulate scaling policies (none of these calls an
//! AWS API); list, view and cancel runs in the run ledger (`run`), launch a bucket's existing
//! objects (`backfill`), start a run by hand (`submit`) and redrive dead-letter queues (`dlq`),
//! which do; and show the deployment's state on one screen (`status`, which reads).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use jobrunner_core::dryrun::{self, Function, World};
use jobrunner_core::{Config, schedule};

mod backfill;
mod dlq;
mod runs;
mod simulate;
mod status;
mod submit;

#[derive(Parser)]
#[command(
    name = "jobrunner",
    version,
    about = "Event-driven job runner for ECS: tools over the runner's config, and its runs."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a config file; exit 0 when valid, else print what is wrong and exit 1.
    Validate {
        #[arg(long, env = "JOBRUNNER_CONFIG_FILE")]
        config: PathBuf,
    },
    /// Print every AWS call a function would make for an event, in order, reads included, as
    /// JSON. Runs the function's own decision code; no AWS call is made: reads are answered
    /// from the assumptions below (defaults: nothing running, empty queues, nothing stored).
    Plan(PlanArgs),
    /// Print the next fire times of each schedule, in UTC and in its time zone.
    Schedules {
        #[arg(long, env = "JOBRUNNER_CONFIG_FILE")]
        config: PathBuf,
        /// Start from this RFC 3339 time instead of now.
        #[arg(long)]
        from: Option<String>,
        /// How many fire times per schedule (at most 10000).
        #[arg(long, default_value_t = 5)]
        count: u64,
    },
    /// Print the config's JSON Schema (draft 2020-12), derived from the types the runner loads.
    Schema,
    /// Simulate a worker's queue under a traffic trace: jobrunner's scaler against the alternatives.
    Simulate(simulate::SimulateArgs),
    /// The run ledger: list runs, view one with its attempts, cancel one (calls AWS).
    Run(runs::RunArgs),
    /// One screen of the deployment now: jobs' slots, last failures, workers, dead letters
    /// (calls AWS; reads only).
    Status(status::StatusArgs),
    /// Start a run of a job by hand, through the launcher's queue (calls AWS).
    Submit(submit::SubmitArgs),
    /// Launch the objects already in a bucket as their uploads would have (calls AWS).
    Backfill(backfill::BackfillArgs),
    /// Look at a dead-letter queue, and move its messages back to their queue (calls AWS).
    Dlq(dlq::DlqArgs),
}

#[derive(clap::Args)]
struct PlanArgs {
    #[arg(long, env = "JOBRUNNER_CONFIG_FILE")]
    config: PathBuf,
    /// An event file in any delivery shape: EventBridge, Scheduler input, S3 notification, SQS batch.
    #[arg(long)]
    event: PathBuf,
    /// The function to run: by default the tracker for task state changes, else the launcher
    /// (name `scaler` for the scaler's tick).
    #[arg(long, value_enum)]
    function: Option<FunctionArg>,
    /// The time to decide at (RFC 3339); default now.
    #[arg(long)]
    now: Option<String>,
    /// Assume ListTasks finds this many running tasks for each `startedBy` (cap, overlap).
    #[arg(long, default_value_t = 0)]
    running: usize,
    /// Assume each worker queue holds this many visible messages (scaler).
    #[arg(long, default_value_t = 0)]
    visible: u64,
    /// Assume each worker queue has this many messages in flight (scaler).
    #[arg(long, default_value_t = 0)]
    in_flight: u64,
    /// Assume each worker service runs (and desires) this many tasks (scaler).
    #[arg(long, default_value_t = 0)]
    service_running: u32,
}

#[derive(Clone, Copy, ValueEnum)]
enum FunctionArg {
    Launcher,
    Tracker,
    Scaler,
}

impl From<FunctionArg> for Function {
    fn from(arg: FunctionArg) -> Self {
        match arg {
            FunctionArg::Launcher => Function::Launcher,
            FunctionArg::Tracker => Function::Tracker,
            FunctionArg::Scaler => Function::Scaler,
        }
    }
}

/// Why a command failed: one line on stderr, exit status 1.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Core(#[from] jobrunner_core::Error),
    /// The core refused an input file; the message names the file.
    #[error("{file}: {error}")]
    File {
        file: String,
        error: jobrunner_core::Error,
    },
    #[error("{path}: cannot read: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{flag} '{value}': not an RFC 3339 time ({reason})")]
    Time {
        flag: &'static str,
        value: String,
        reason: chrono::ParseError,
    },
    #[error("--count {count}: list 1 to {max} fire times")]
    Count { count: u64, max: u64 },
    #[error("{0}")]
    Simulate(String),
    #[error(
        "no config: pass --config FILE or set JOBRUNNER_CONFIG_FILE (its [state] table holds the runs)"
    )]
    NoConfig,
    #[error("{0}: no [state] table: the run ledger lives in it")]
    NoStateTable(String),
    #[error("no AWS region: pass --region or set AWS_REGION")]
    NoRegion,
    #[error("cannot start the async runtime: {0}")]
    Runtime(String),
    #[error("--watch {seconds}: refresh every 1 to {max} seconds")]
    Watch { seconds: u64, max: u64 },
    #[error("--limit 0: list at least 1 run")]
    Limit,
    #[error("--state '{0}': not a run state (one of {states})", states = jobrunner_core::run::RunState::NAMES.join(", "))]
    RunState(String),
    #[error("--since '{value}': {reason}")]
    Since { value: String, reason: String },
    #[error("'{value}': {reason}")]
    Target { value: String, reason: String },
    /// Nothing in the ledger for what was asked.
    #[error("{what} in table {table}")]
    NotFound { what: String, table: String },
    /// The ledger refused the change (a run already ended).
    #[error("{0}")]
    Refused(String),
    #[error(
        "task {task_arn} names no cluster and job '{job}' has none in {config}: cannot stop it"
    )]
    NoCluster {
        task_arn: String,
        job: String,
        config: String,
    },
    #[error(transparent)]
    Call(#[from] jobrunner_aws::Error),
    /// An argument that cannot work, named with why.
    #[error("{0}")]
    Usage(String),
    /// Ctrl-C: where to go on from.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// A backfill that failed part way, and where to go on from.
    #[error("{error}; {resume}")]
    Backfill {
        error: Box<CliError>,
        resume: String,
    },
    /// Writing the output failed (other than a closed pipe, which ends quietly).
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Validate { config } => validate(&config),
        Command::Plan(args) => plan(&args),
        Command::Schedules {
            config,
            from,
            count,
        } => schedules(&config, from.as_deref(), count),
        Command::Schema => schema(),
        Command::Simulate(args) => simulate::run(args).map_err(CliError::Simulate),
        Command::Run(args) => runs::run(args),
        Command::Status(args) => status::run(args),
        Command::Backfill(args) => backfill::run(args),
        Command::Submit(args) => submit::run(args),
        Command::Dlq(args) => dlq::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jobrunner: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `text` and a newline to stdout; a closed pipe (`| head`) is reported as
/// [`CliError::Output`] with `BrokenPipe`, which `main` ends quietly.
pub(crate) fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}

pub(crate) fn parse_time(flag: &'static str, value: &str) -> Result<DateTime<Utc>, CliError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|reason| CliError::Time {
            flag,
            value: value.to_string(),
            reason,
        })
}

fn validate(path: &Path) -> Result<(), CliError> {
    let config = Config::load(path)?;
    for warning in jobrunner_core::config::warnings(&config) {
        eprintln!("jobrunner: WARNING: {warning}");
    }
    print(&format!(
        "{}: valid ({} jobs, {} S3 triggers, {} schedules, {} workers, alerts {})",
        path.display(),
        config.jobs.len(),
        config.triggers.s3.len(),
        config.triggers.schedule.len(),
        config.workers.len(),
        if config.alerts.is_some() { "on" } else { "off" }
    ))
}

fn plan(args: &PlanArgs) -> Result<(), CliError> {
    let config = Config::load(&args.config)?;
    let file = args.event.display().to_string();
    let text = std::fs::read_to_string(&args.event).map_err(|error| CliError::Read {
        path: file.clone(),
        error,
    })?;
    let in_file = |error| CliError::File {
        file: file.clone(),
        error,
    };
    let payload = jobrunner_core::event::parse_json(&text).map_err(in_file)?;
    let now = match &args.now {
        Some(text) => parse_time("--now", text)?,
        None => Utc::now(),
    };
    let function = args
        .function
        .map(Function::from)
        .unwrap_or_else(|| Function::for_payload(&payload));
    let world = World {
        running: args.running,
        visible: args.visible,
        in_flight: args.in_flight,
        service_running: args.service_running,
        ..World::for_config(&config)
    };
    let dry_run = dryrun::dry_run_now(&config, function, &payload, now, world).map_err(in_file)?;
    print(&serde_json::to_string_pretty(&dry_run).unwrap_or_default())
}

fn schema() -> Result<(), CliError> {
    let schema = jobrunner_core::config::json_schema();
    print(&serde_json::to_string_pretty(&schema).unwrap_or_default())
}

/// The most fire times `schedules --count` lists per schedule.
const MAX_COUNT: u64 = 10_000;

fn schedules(path: &Path, from: Option<&str>, count: u64) -> Result<(), CliError> {
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(CliError::Count {
            count,
            max: MAX_COUNT,
        });
    }
    let count = count as usize;
    let config = Config::load(path)?;
    let from = match from {
        Some(text) => parse_time("--from", text)?,
        None => Utc::now(),
    };
    if config.triggers.schedule.is_empty() {
        print(&format!("{}: no [[triggers.schedule]]", path.display()))?;
    }
    for schedule in &config.triggers.schedule {
        let timezone = schedule
            .timezone
            .unwrap_or(jobrunner_core::config::TimeZone::UTC);
        let expression = schedule.expression.as_ref().map_or_else(
            || "(no expression: fired by a rule defined elsewhere)".to_string(),
            ToString::to_string,
        );
        print(&format!(
            "{} (job {}, {expression}, {timezone}, overlap {})",
            schedule.name, schedule.job, schedule.overlap
        ))?;
        for time in schedule::next_fire_times(schedule, from, count) {
            print(&format!(
                "  {}   {}",
                time.format("%Y-%m-%dT%H:%M:%SZ"),
                time.with_timezone(&timezone.tz())
                    .format("%Y-%m-%d %H:%M %Z")
            ))?;
        }
    }
    Ok(())
}
