//! The `jobrunner-worker` command line: flags, logging, signals, then [`Worker::run`] with a
//! [`CommandHandler`]. The binary's `main` is [`main`].

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use crate::{CommandHandler, Config, EcsAgent, Error, SqsQueue, Worker};
use clap::Parser;

/// Runs COMMAND once per SQS message: the body on stdin, the message id, receive count and
/// attributes in the environment (JOB_MESSAGE_ID, JOB_RECEIVE_COUNT, JOB_ATTR_<NAME>).
/// Exit 0 deletes the message; any other exit retries it after --retry-delay.
#[derive(Debug, Parser)]
#[command(name = "jobrunner-worker", version)]
struct Cli {
    /// The queue to poll [default: $JOBRUNNER_QUEUE_URL].
    #[arg(long, value_name = "URL")]
    queue_url: Option<String>,
    /// Messages handled at once (commands running in parallel).
    #[arg(long, value_name = "N", default_value_t = 1)]
    concurrency: usize,
    /// How long a received message stays invisible; extended while its command runs.
    #[arg(long, value_name = "D", default_value = "30s", value_parser = humantime::parse_duration)]
    visibility_timeout: Duration,
    /// Exit 0 once the queue has given nothing for this long (and nothing is in hand).
    #[arg(long, value_name = "D", value_parser = humantime::parse_duration)]
    idle_exit: Option<Duration>,
    /// On SIGTERM, how long running commands may take to finish before they are stopped.
    #[arg(long, value_name = "D", default_value = "100s", value_parser = humantime::parse_duration)]
    grace: Duration,
    /// How long a failed message stays invisible before it is tried again.
    #[arg(long, value_name = "D", default_value = "10s", value_parser = humantime::parse_duration)]
    retry_delay: Duration,
    /// Print no metric lines (by default one Embedded Metric Format line per settled message
    /// goes to stdout: messages_processed / messages_failed, message_duration).
    #[arg(long)]
    no_metrics: bool,
    /// The command and its arguments (run directly, never through a shell).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

impl Cli {
    fn config(&self, env_queue_url: Option<String>) -> Result<Config, Error> {
        let queue_url = self
            .queue_url
            .clone()
            .or(env_queue_url)
            .ok_or(Error::InvalidArgument {
                name: "--queue-url",
                reason: "not given, and JOBRUNNER_QUEUE_URL is not set".into(),
            })?;
        let config = Config {
            concurrency: self.concurrency,
            visibility_timeout: self.visibility_timeout,
            idle_exit: self.idle_exit,
            grace: self.grace,
            retry_delay: self.retry_delay,
            ..Config::new(queue_url)
        };
        config.validate()?;
        Ok(config)
    }
}

/// Parses the command line, runs the worker, and gives the process's exit code: 0 after a
/// shutdown or an idle exit, 1 on a runtime failure, 2 on bad arguments.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let setup = cli
        .config(
            std::env::var("JOBRUNNER_QUEUE_URL")
                .ok()
                .filter(|u| !u.is_empty()),
        )
        .and_then(|config| Ok((config, CommandHandler::new(cli.command.clone())?)))
        .and_then(|(config, handler)| Ok((config, handler, EcsAgent::from_env()?)));
    let metrics = !cli.no_metrics;
    let (config, handler, agent) = match setup {
        Ok(setup) => setup,
        Err(e) => {
            eprintln!("jobrunner-worker: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("jobrunner-worker: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, handler, agent, metrics)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "worker failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    config: Config,
    handler: CommandHandler,
    agent: Option<EcsAgent>,
    metrics: bool,
) -> Result<(), Error> {
    let shutdown = crate::shutdown_signal()?;
    let queue = SqsQueue::new(crate::sqs_client().await, &config.queue_url);
    tracing::info!(
        queue_url = %config.queue_url,
        concurrency = config.concurrency,
        visibility_timeout_s = config.visibility_timeout.as_secs(),
        task_protection = agent.is_some(),
        "worker started"
    );
    let lines = metrics.then(|| crate::MetricLines::new(&config.queue_url, std::io::stdout()));
    let mut worker = Worker::new(queue, handler, agent, config)?;
    if let Some(lines) = lines {
        worker = worker.with_metrics(lines);
    }
    let summary = worker.run(shutdown).await?;
    tracing::info!(done = summary.done, failed = summary.failed, returned = summary.returned, exit = ?summary.exit, "worker exiting");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("jobrunner-worker").chain(args.iter().copied()))
    }

    #[test]
    fn flags_and_command() {
        let cli = parse(&[
            "--queue-url",
            "https://q",
            "--concurrency",
            "4",
            "--visibility-timeout",
            "2m",
            "--idle-exit",
            "30s",
            "--grace",
            "90s",
            "--retry-delay",
            "0s",
            "--",
            "resize",
            "--width",
            "512",
        ])
        .unwrap();
        let config = cli.config(None).unwrap();
        assert_eq!(config.queue_url, "https://q");
        assert_eq!(config.concurrency, 4);
        assert_eq!(config.visibility_timeout, Duration::from_secs(120));
        assert_eq!(config.idle_exit, Some(Duration::from_secs(30)));
        assert_eq!(config.grace, Duration::from_secs(90));
        assert_eq!(config.retry_delay, Duration::ZERO);
        assert_eq!(cli.command, vec!["resize", "--width", "512"]);
    }

    #[test]
    fn defaults_and_the_queue_url_from_the_environment() {
        let cli = parse(&["--", "true"]).unwrap();
        let config = cli.config(Some("https://env-q".into())).unwrap();
        assert_eq!(config, Config::new("https://env-q"));
        assert_eq!(
            cli.config(None).unwrap_err().to_string(),
            "--queue-url: not given, and JOBRUNNER_QUEUE_URL is not set"
        );
    }

    #[test]
    fn bad_input_is_named() {
        assert!(parse(&["--queue-url", "q"]).is_err(), "no command");
        let e = parse(&["--grace", "soon", "--", "true"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--grace"), "{e}");
        let cli = parse(&[
            "--queue-url",
            "q",
            "--visibility-timeout",
            "1500ms",
            "--",
            "true",
        ])
        .unwrap();
        assert_eq!(
            cli.config(None).unwrap_err().to_string(),
            "--visibility-timeout: SQS takes whole seconds, got 1s 500ms"
        );
    }
}
