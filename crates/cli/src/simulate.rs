//! `jobrunner simulate`: one worker's queue under a traffic trace, scaled by jobrunner's real
//! decision function and by the policies users would pick instead (crates/sim).

//!
//! Output goes to stdout in one write; a closed pipe (`| head -1`) ends the command quietly.

use std::io::Write;
use std::path::PathBuf;

use jobrunner_core::Config;
use jobrunner_core::config::WorkerMode;
use jobrunner_sim::{
    BoundsOverride, PolicyKind, Settings, Summary, Trace, WorkTime, chart, report,
};

/// Arguments of `jobrunner simulate`.
#[derive(clap::Args)]
pub struct SimulateArgs {
    /// The config file holding the worker.
    #[arg(long)]
    config: PathBuf,
    /// The worker (`[workers.NAME]`) whose scaling settings jobrunner uses.
    #[arg(long)]
    worker: String,
    /// CSV with the header `time_s,arrivals`: messages arriving in each second. A directory
    /// runs the benchmark instead: every `*.csv` in it under every policy and jobrunner in both
    /// modes, as Markdown tables with the benchmark's goals (bench/RESULTS.md).
    #[arg(long)]
    trace: PathBuf,
    /// A policy to run (repeatable): jobrunner, cdk-queue-processing, target-tracking,
    /// target-tracking-step, keda, keda-tuned, keda-scaledjob, runtask-per-batch.
    /// Default: all of them.
    #[arg(long = "policy", value_name = "P")]
    policies: Vec<String>,
    /// Seconds from a rise of the desired count to the new task receiving messages.
    #[arg(long, default_value_t = 45)]
    task_start_seconds: u64,
    /// Processing time per message: seconds (10), exp:MEAN or uniform:LOW-HIGH.
    #[arg(long, default_value = "10")]
    work_seconds: String,
    /// Seed of the processing times.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print `{"results": [...]}` instead of a table.
    #[arg(long)]
    json: bool,
    /// Write an SVG chart of backlog and tasks over time.
    #[arg(long, value_name = "OUT.svg")]
    chart: Option<PathBuf>,
    /// Keep simulating this long after the last arrival (slow scale-in is paid for).
    #[arg(long, default_value_t = 3600)]
    tail_seconds: u64,
    /// Delay after a minute ends before its CloudWatch datapoint can be read (CloudWatch-based policies).
    #[arg(long, default_value_t = 60)]
    metric_delay_seconds: u64,
    /// Minimum tasks for every policy (default: the worker's; CDK's own default is 1).
    #[arg(long)]
    min_tasks: Option<u32>,
    /// Maximum tasks for every policy (default: the worker's; CDK's own default is 2).
    #[arg(long)]
    max_tasks: Option<u32>,
    /// jobrunner's mode instead of the worker's `mode`: service or jobs.
    #[arg(long, value_name = "MODE")]
    mode: Option<String>,
    /// Messages each task works on at once (`jobrunner-worker --concurrency`).
    #[arg(long, default_value_t = 1)]
    concurrency: u32,
    /// A task launched in jobs mode (or by keda-scaledjob) exits after this long with nothing
    /// to do (`jobrunner-worker --idle-exit`).
    #[arg(long, default_value_t = 20)]
    idle_exit_seconds: u64,
    /// Workers without a heartbeat on a queue with this visibility timeout: a message still
    /// being processed after it reappears and is delivered again. Default: the worker's
    /// heartbeat keeps it invisible.
    #[arg(long, value_name = "SECONDS")]
    visibility_timeout_seconds: Option<u64>,
}

pub fn run(args: SimulateArgs) -> Result<(), String> {
    let config = Config::load(&args.config).map_err(|e| e.to_string())?;
    let worker = config.workers.get(&args.worker).ok_or_else(|| {
        let names: Vec<_> = config.workers.keys().map(String::as_str).collect();
        format!(
            "--worker '{}': no [workers.{}] in {} (workers: {})",
            args.worker,
            args.worker,
            args.config.display(),
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        )
    })?;
    let settings = settings(&args)?;
    let bounds = bounds(&args)?;
    if args.trace.is_dir() {
        if !args.policies.is_empty() || args.chart.is_some() {
            return Err(format!(
                "--trace {}: a directory runs the benchmark (every policy, no chart); \
                 --policy and --chart take one trace file",
                args.trace.display()
            ));
        }
        return benchmark(&args, worker, bounds, &settings);
    }
    let trace = Trace::load(&args.trace).map_err(|e| e.to_string())?;
    if trace.total() == 0 {
        return Err(format!(
            "{}: the trace has no arrivals",
            args.trace.display()
        ));
    }
    settings
        .check(&trace)
        .map_err(|e| format!("{}: {e}", args.trace.display()))?;
    let kinds = if args.policies.is_empty() {
        PolicyKind::ALL.to_vec()
    } else {
        args.policies
            .iter()
            .map(|p| p.parse::<PolicyKind>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("--policy: {e}"))?
    };
    let runs = jobrunner_sim::compare(&trace, worker, &kinds, bounds, &settings)
        .map_err(|e| e.to_string())?;
    let summaries: Vec<Summary> = runs.iter().map(Summary::of).collect();

    if let Some(path) = &args.chart {
        let title = format!(
            "{} — worker {}",
            args.trace.file_name().map_or_else(
                || args.trace.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            ),
            args.worker
        );
        let svg = chart::svg(&title, &runs).map_err(|e| e.to_string())?;
        std::fs::write(path, svg).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    }
    let text = if args.json {
        report::to_json(&summaries) + "\n"
    } else {
        describe(&args, &trace, worker, bounds, &settings, &kinds, &summaries)
    };
    emit(&text)
}

/// The world's settings from the flags.
fn settings(args: &SimulateArgs) -> Result<Settings, String> {
    let work: WorkTime = args
        .work_seconds
        .parse()
        .map_err(|e| format!("--work-seconds: {e}"))?;
    Ok(Settings {
        task_start_seconds: args.task_start_seconds,
        work,
        seed: args.seed,
        tail_seconds: args.tail_seconds,
        metric_delay_seconds: args.metric_delay_seconds,
        concurrency: args.concurrency,
        idle_exit_seconds: args.idle_exit_seconds,
        visibility_timeout_seconds: args.visibility_timeout_seconds,
        ..Settings::default()
    })
}

/// The bounds and mode overrides from the flags.
fn bounds(args: &SimulateArgs) -> Result<BoundsOverride, String> {
    let mode = match args.mode.as_deref() {
        None => None,
        Some("service") => Some(WorkerMode::Service),
        Some("jobs") => Some(WorkerMode::Jobs),
        Some(other) => {
            return Err(format!("--mode '{other}': use service or jobs"));
        }
    };
    Ok(BoundsOverride {
        min: args.min_tasks,
        max: args.max_tasks,
        mode,
    })
}

/// `--trace DIR`: the benchmark over every trace in DIR.
fn benchmark(
    args: &SimulateArgs,
    worker: &jobrunner_core::config::Worker,
    bounds: BoundsOverride,
    settings: &Settings,
) -> Result<(), String> {
    use jobrunner_sim::benchmark;
    let traces = benchmark::load_traces(&args.trace).map_err(|e| e.to_string())?;
    for (name, trace) in &traces {
        settings
            .check(trace)
            .map_err(|e| format!("{}/{name}.csv: {e}", args.trace.display()))?;
    }
    let results = benchmark::run(&traces, worker, bounds, settings).map_err(|e| e.to_string())?;
    let goals = benchmark::goals(&results);
    let text = if args.json {
        benchmark::to_json(&results, &goals) + "\n"
    } else {
        benchmark::markdown(&results, &goals)
    };
    emit(&text)
}

/// Writes `text` to stdout; a reader that went away (a closed pipe) is not an error.
fn emit(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("stdout: {e}")),
    }
}

/// The table with a header naming the trace, the worker and the settings.
fn describe(
    args: &SimulateArgs,
    trace: &Trace,
    worker: &jobrunner_core::config::Worker,
    bounds: BoundsOverride,
    settings: &Settings,
    kinds: &[PolicyKind],
    summaries: &[Summary],
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let sampling = worker
        .sample_every_seconds
        .map_or("once a minute".to_string(), |s| format!("every {s}s"));
    let mode = jobrunner_sim::policy::jobrunner::mode_name(bounds.mode.unwrap_or(worker.mode));
    let _ = writeln!(
        out,
        "{}: {} messages from {} to {}, then {} more; worker {} ({} messages per task, tasks {}–{}, jobrunner in {mode} mode, samples {sampling})",
        args.trace.display(),
        trace.total(),
        report::seconds(trace.first_arrival().unwrap_or(0)),
        report::seconds(trace.last_arrival().unwrap_or(0)),
        report::seconds(args.tail_seconds),
        args.worker,
        worker.messages_per_task,
        bounds.min.unwrap_or(worker.min_tasks),
        bounds.max.unwrap_or(worker.max_tasks),
    );
    let _ = writeln!(
        out,
        "task start {}s, work {} s/message (seed {}), {} per task at once, idle exit {}s, {}, CloudWatch datapoints readable {}s after their minute{}",
        settings.task_start_seconds,
        settings.work,
        settings.seed,
        settings.concurrency,
        settings.idle_exit_seconds,
        settings.visibility_timeout_seconds.map_or_else(
            || "visibility extended while working (heartbeat)".to_string(),
            |v| format!("no heartbeat: visibility timeout {v}s")
        ),
        settings.metric_delay_seconds,
        if bounds.min.is_none()
            && bounds.max.is_none()
            && kinds.contains(&PolicyKind::CdkQueueProcessing)
        {
            "; cdk-queue-processing at its default 1–2 tasks (--min-tasks/--max-tasks to compare at the same bounds)"
        } else {
            ""
        }
    );
    out.push('\n');
    out.push_str(&report::table(summaries));
    if summaries.iter().any(|s| s.unprocessed > 0) {
        out.push_str(
            "(≥: messages were still waiting at the end; their waits count as a lower bound)\n",
        );
    }
    out
}
