//! `jobrunner`: validate a config, print its schema, and dry-run an event into the exact AWS
//! calls it would cause. It calls no AWS API: it runs the same core code as the Lambda functions.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jobrunner_core::{Config, schedule};

mod simulate;

#[derive(Parser)]
#[command(
    name = "jobrunner",
    version,
    about = "Event-driven job runner for ECS: offline tools over the runner's config."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a config file; exit 0 when valid, else print what is wrong and exit 1.
    Validate {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the AWS calls an event would cause, as JSON (no AWS call is made).
    Plan {
        #[arg(long)]
        config: PathBuf,
        /// An event file in any delivery shape: EventBridge, Scheduler input, S3 notification, SQS batch.
        #[arg(long)]
        event: PathBuf,
    },
    /// Print the next fire times of each schedule, in UTC and in its time zone.
    Schedules {
        #[arg(long)]
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
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Validate { config } => validate(&config),
        Command::Plan { config, event } => plan(&config, &event),
        Command::Schedules {
            config,
            from,
            count,
        } => schedules(&config, from.as_deref(), count),
        Command::Schema => schema(),
        Command::Simulate(args) => simulate::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("jobrunner: {message}");
            ExitCode::FAILURE
        }
    }
}

fn validate(path: &Path) -> Result<(), String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    for warning in jobrunner_core::config::warnings(&config) {
        eprintln!("jobrunner: WARNING: {warning}");
    }
    println!(
        "{}: valid ({} jobs, {} S3 triggers, {} schedules, {} workers, alerts {})",
        path.display(),
        config.jobs.len(),
        config.triggers.s3.len(),
        config.triggers.schedule.len(),
        config.workers.len(),
        if config.alerts.is_some() { "on" } else { "off" }
    );
    Ok(())
}

fn plan(config: &Path, event: &Path) -> Result<(), String> {
    let config = Config::load(config).map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(event)
        .map_err(|e| format!("{}: cannot read: {e}", event.display()))?;
    let payload = jobrunner_core::event::parse_json(&text)
        .map_err(|e| format!("{}: {e}", event.display()))?;
    let dry_run = jobrunner_core::dryrun::dry_run(&config, &payload)
        .map_err(|e| format!("{}: {e}", event.display()))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&dry_run).map_err(|e| e.to_string())?
    );
    Ok(())
}

fn schema() -> Result<(), String> {
    let schema = jobrunner_core::config::json_schema();
    println!(
        "{}",
        serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// The most fire times `schedules --count` lists per schedule.
const MAX_COUNT: u64 = 10_000;

fn schedules(path: &Path, from: Option<&str>, count: u64) -> Result<(), String> {
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(format!("--count {count}: list 1 to {MAX_COUNT} fire times"));
    }
    let count = count as usize;
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let from = match from {
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|e| format!("--from '{text}': not an RFC 3339 time ({e})"))?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    if config.triggers.schedule.is_empty() {
        println!("{}: no [[triggers.schedule]]", path.display());
    }
    for schedule in &config.triggers.schedule {
        let timezone = schedule
            .timezone
            .unwrap_or(jobrunner_core::config::TimeZone::UTC);
        let expression = schedule.expression.as_ref().map_or_else(
            || "(no expression: fired by a rule defined elsewhere)".to_string(),
            ToString::to_string,
        );
        println!(
            "{} (job {}, {expression}, {timezone}, overlap {})",
            schedule.name, schedule.job, schedule.overlap
        );
        for time in schedule::next_fire_times(schedule, from, count) {
            println!(
                "  {}   {}",
                time.format("%Y-%m-%dT%H:%M:%SZ"),
                time.with_timezone(&timezone.tz())
                    .format("%Y-%m-%d %H:%M %Z")
            );
        }
    }
    Ok(())
}
