//! `jobrunner run list|view|cancel`: the run ledger in the `[state]` table, read and cancelled
//! from a terminal. These commands talk to AWS with the default credential chain (`--region`
//! and `AWS_ENDPOINT_URL` honoured); the table is the config's `[state] table`.
//!
//! Reads go through [`LedgerReader`]; a cancel writes through the core's `Ledger::update` with
//! the same `StateStore` adapter the functions use, so it is the same conditional write.

mod render;
mod rerun;
mod target;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use chrono::{Duration, Utc};
use jobrunner_aws::Adapters;
use jobrunner_aws::ecs::EcsTasks;
use jobrunner_aws::ledger_reader::{LedgerReader, RunFilter};
use jobrunner_aws::state_store::StateStore;
use jobrunner_core::Config;
use jobrunner_core::config::State;
use jobrunner_core::ledger::{Ledger, keys};
use jobrunner_core::ports::{StateTable, Tasks};
use jobrunner_core::run::{CANCEL_REASON_PREFIX, Run, RunState};

use crate::{CliError, print};
use target::Target;

/// StopTask's `reason` limit.
const STOP_REASON_MAX: usize = 255;
/// `--since` when not given.
const DEFAULT_SINCE: &str = "24h";

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(subcommand)]
    command: RunCommand,
    /// The config naming the ledger's table (`[state] table`).
    #[arg(long, env = "JOBRUNNER_CONFIG_FILE", global = true)]
    config: Option<PathBuf>,
    /// The AWS region (default: the SDK's chain: AWS_REGION, the profile).
    #[arg(long, global = true)]
    region: Option<String>,
    /// Print JSON instead of text (states as `waiting`, `launching`, `running`, `succeeded`,
    /// `failed`, `timed_out`, `cancelled`, `skipped`).
    #[arg(long, global = true)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum RunCommand {
    /// List runs, newest first.
    List {
        /// Only runs of this job.
        #[arg(long)]
        job: Option<String>,
        /// Only runs in this state.
        #[arg(long)]
        state: Option<String>,
        /// Runs queued within this long before now (e.g. 30m, 2h, 7d); at most the ledger's
        /// retention (`[state] retention_days`).
        #[arg(long, default_value = DEFAULT_SINCE)]
        since: String,
        /// At most this many runs.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Show a run and every attempt: by run id, by object (s3://bucket/key[?versionId=V], the
    /// key as in S3, not URL-encoded; without a version the latest run of each job for the key),
    /// or by schedule tick (SCHEDULE@RFC3339).
    View {
        /// RUN_ID | s3://bucket/key[?versionId=V] | SCHEDULE@RFC3339
        target: String,
    },
    /// Stop a run's task (reason `jobrunner: cancelled by <caller ARN>`) and mark the run
    /// `cancelled`: no retry, no alert.
    Cancel { run_id: String },
    /// Start a fresh attempt of a run that ended (attempt n+1 with its own clientToken, outside
    /// the retry budget), through the launcher's queue and under the job's cap.
    Rerun { run_id: String },
}

/// Runs one `jobrunner run …` command.
pub fn run(args: RunArgs) -> Result<(), CliError> {
    let path = args.config.clone().ok_or(CliError::NoConfig)?;
    let config = Config::load(&path)?;
    let state = config
        .state
        .clone()
        .ok_or_else(|| CliError::NoStateTable(path.display().to_string()))?;
    // Bad arguments fail before any AWS call.
    let command = Checked::new(&args.command, &state)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    runtime.block_on(async {
        let sdk = sdk_config(args.region.as_deref()).await?;
        match command {
            Checked::List {
                filter,
                since,
                limit,
            } => list(&sdk, &state, &filter, since, limit, args.json).await,
            Checked::View(target) => view(&sdk, &config, &state, &target, args.json).await,
            Checked::Cancel(run_id) => {
                cancel(&sdk, &config, &state, &path, &run_id, args.json).await
            }
            Checked::Rerun(run_id) => rerun(&sdk, &config, &state, &run_id, args.json).await,
        }
    })
}

/// A command whose arguments were checked.
enum Checked {
    List {
        filter: RunFilter,
        since: StdDuration,
        limit: usize,
    },
    View(Target),
    Cancel(String),
    Rerun(String),
}

impl Checked {
    fn new(command: &RunCommand, state: &State) -> Result<Checked, CliError> {
        Ok(match command {
            RunCommand::List {
                job,
                state: run_state,
                since,
                limit,
            } => {
                if *limit == 0 {
                    return Err(CliError::Limit);
                }
                let run_state = run_state
                    .as_deref()
                    .map(|s| {
                        s.parse::<RunState>()
                            .map_err(|_| CliError::RunState(s.to_string()))
                    })
                    .transpose()?;
                Checked::List {
                    filter: RunFilter {
                        job: job.clone(),
                        state: run_state,
                    },
                    since: parse_since(since, state.retention_days)?,
                    limit: *limit,
                }
            }
            RunCommand::View { target } => {
                Checked::View(Target::parse(target).map_err(|reason| CliError::Target {
                    value: target.clone(),
                    reason,
                })?)
            }
            RunCommand::Cancel { run_id } => {
                Checked::Cancel(target::run_id(run_id).map_err(|reason| CliError::Target {
                    value: run_id.clone(),
                    reason,
                })?)
            }
            RunCommand::Rerun { run_id } => {
                Checked::Rerun(target::run_id(run_id).map_err(|reason| CliError::Target {
                    value: run_id.clone(),
                    reason,
                })?)
            }
        })
    }
}

/// `--since`: a positive humantime duration within the ledger's retention.
fn parse_since(text: &str, retention_days: u32) -> Result<StdDuration, CliError> {
    let error = |reason: String| CliError::Since {
        value: text.to_string(),
        reason,
    };
    let since = humantime::parse_duration(text).map_err(|e| error(e.to_string()))?;
    if since.is_zero() {
        return Err(error("must be more than zero".into()));
    }
    let retention = StdDuration::from_secs(u64::from(retention_days) * 86_400);
    if since > retention {
        return Err(error(format!(
            "longer than the ledger keeps runs ([state] retention_days = {retention_days})"
        )));
    }
    Ok(since)
}

/// The SDK configuration from the default chain, with jobrunner's retries and timeouts and
/// `--region` when given. `AWS_ENDPOINT_URL` is read by the SDK itself.
pub(crate) async fn sdk_config(region: Option<&str>) -> Result<SdkConfig, CliError> {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(jobrunner_aws::client::retry_config())
        .timeout_config(jobrunner_aws::client::timeout_config());
    let loader = match region {
        Some(region) => loader.region(Region::new(region.to_string())),
        None => loader,
    };
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(CliError::NoRegion);
    }
    Ok(sdk)
}

async fn list(
    sdk: &SdkConfig,
    state: &State,
    filter: &RunFilter,
    since: StdDuration,
    limit: usize,
    json: bool,
) -> Result<(), CliError> {
    let now = Utc::now();
    let from = now - Duration::from_std(since).unwrap_or(Duration::MAX);
    let reader = LedgerReader::from_sdk_config(sdk, &state.table);
    let runs = reader.list(from, now, filter, limit).await?;
    if json {
        return print(&to_json(&runs));
    }
    if runs.is_empty() {
        eprintln!(
            "jobrunner: no runs{}{} queued since {} in table {}",
            filter
                .job
                .as_deref()
                .map(|j| format!(" of job {j}"))
                .unwrap_or_default(),
            filter.state.map(|s| format!(" {s}")).unwrap_or_default(),
            render::time(from),
            state.table
        );
        return Ok(());
    }
    print(&render::table(&runs, now))
}

async fn view(
    sdk: &SdkConfig,
    config: &Config,
    state: &State,
    target: &Target,
    json: bool,
) -> Result<(), CliError> {
    let reader = LedgerReader::from_sdk_config(sdk, &state.table);
    let not_found = |what: String| CliError::NotFound {
        what,
        table: state.table.clone(),
    };
    let runs = match target {
        Target::RunId(_) | Target::Tick { .. } => {
            let (_, run_id) = target.run_ids(config).remove(0);
            let Some(run) = reader.run(&run_id).await? else {
                return Err(not_found(match target {
                    Target::Tick { schedule, time } => format!(
                        "no run of schedule {schedule} for {} (run id {run_id}){}",
                        render::time(*time),
                        if config.triggers.schedule.iter().any(|s| &s.name == schedule) {
                            String::new()
                        } else {
                            format!("; the config has no schedule named {schedule}")
                        }
                    ),
                    _ => format!("no run {run_id}"),
                }));
            };
            return if json {
                print(&to_json(&run))
            } else {
                print(&render::view(&run))
            };
        }
        Target::Object {
            bucket,
            key,
            version_id,
        } => {
            let jobs = target::jobs_for_object(config, bucket, key);
            let url = match version_id {
                Some(v) => format!("s3://{bucket}/{key}?versionId={v}"),
                None => format!("s3://{bucket}/{key}"),
            };
            if jobs.is_empty() {
                return Err(not_found(format!(
                    "no run for {url}: no [[triggers.s3]] in the config takes it"
                )));
            }
            let mut runs = Vec::new();
            if version_id.is_some() {
                for (_, run_id) in target.run_ids(config) {
                    runs.extend(reader.run(&run_id).await?);
                }
            } else {
                for job in &jobs {
                    if let Some(pointer) = reader.pointer(job, bucket, key).await? {
                        runs.extend(reader.run(&pointer.run_id).await?);
                    }
                }
            }
            if runs.is_empty() {
                return Err(not_found(format!(
                    "no run for {url} (jobs looked at: {})",
                    jobs.join(", ")
                )));
            }
            runs
        }
    };
    if json {
        return print(&to_json(&runs));
    }
    let pages: Vec<String> = runs.iter().map(render::view).collect();
    print(&pages.join("\n\n\n"))
}

async fn cancel(
    sdk: &SdkConfig,
    config: &Config,
    state: &State,
    path: &Path,
    run_id: &str,
    json: bool,
) -> Result<(), CliError> {
    let adapters: Adapters = Adapters {
        state: Some(StateStore::from_sdk_config(sdk, &state.table)),
        ecs: Some(EcsTasks::new(aws_sdk_ecs::Client::new(sdk))),
        ..Adapters::default()
    };
    let request = Cancel {
        config,
        state,
        path,
        run_id,
    };
    let (run, stopped) = cancel_run(&adapters, &request, || caller_arn(sdk)).await?;
    if json {
        return print(&to_json(&run));
    }
    print(&match stopped {
        Some(task_arn) => format!(
            "run {run_id} (job {}) cancelled; task {task_arn} stopped",
            run.job
        ),
        None => format!(
            "run {run_id} (job {}) cancelled; it had no task running",
            run.job
        ),
    })
}

async fn rerun(
    sdk: &SdkConfig,
    config: &Config,
    state: &State,
    run_id: &str,
    json: bool,
) -> Result<(), CliError> {
    let adapters: Adapters = Adapters {
        state: Some(StateStore::from_sdk_config(sdk, &state.table)),
        queues: Some(jobrunner_aws::sqs_queue::SqsQueues::from_sdk_config(sdk)),
        ..Adapters::default()
    };
    let who = caller_arn(sdk).await?;
    let (run, attempt) = rerun::rerun_run(&adapters, (config, state), run_id, &who).await?;
    if json {
        return print(&to_json(&run));
    }
    print(&format!(
        "run {run_id} (job {}): attempt {attempt} requested from the launcher's queue",
        run.job
    ))
}

/// What `run cancel` was asked.
struct Cancel<'a> {
    config: &'a Config,
    state: &'a State,
    /// The config file, for messages.
    path: &'a Path,
    run_id: &'a str,
}

/// Cancels a run through the ports: load it, refuse a run that ended, stop its task if it has
/// one running (`who` names the caller), then write it `cancelled` with the ledger's
/// conditional update. Returns the run as stored and the task stopped, if any.
async fn cancel_run<P, W, F>(
    ports: &P,
    request: &Cancel<'_>,
    who: W,
) -> Result<(Run, Option<String>), CliError>
where
    P: Tasks + StateTable,
    W: FnOnce() -> F,
    F: Future<Output = Result<String, CliError>>,
{
    let Cancel {
        config,
        state,
        path,
        run_id,
    } = *request;
    let ledger = Ledger::new(ports, state);
    let key = keys::run_key(run_id);
    let not_found = || CliError::NotFound {
        what: format!("no run {run_id}"),
        table: state.table.clone(),
    };
    let Some((run, version)) = ledger.load::<Run>(&key).await? else {
        return Err(not_found());
    };
    if run.state.is_final() {
        return Err(CliError::Refused(already_ended(&run)));
    }
    let who = who().await?;
    let stopped = match running_task(&run) {
        Some(task_arn) => {
            let cluster = cluster_of(task_arn)
                .or_else(|| job_cluster(config, &run.job))
                .ok_or_else(|| CliError::NoCluster {
                    task_arn: task_arn.to_string(),
                    job: run.job.clone(),
                    config: path.display().to_string(),
                })?;
            ports
                .stop_task(&cluster, task_arn, &stop_reason(&who))
                .await?;
            Some(task_arn.to_string())
        }
        None => None,
    };
    let now = Utc::now();
    let mut refused = None;
    let updated = ledger
        .update(&key, Some(Some((run, version))), now, |run| {
            refused = None;
            let Some(run) = run else {
                return false;
            };
            match run.cancel(&who, now) {
                Ok(()) => true,
                Err(reason) => {
                    refused = Some(reason);
                    false
                }
            }
        })
        .await?;
    let Some(run) = updated else {
        return Err(not_found());
    };
    // The tracker may have recorded the stop (and with it the cancel) first: that is success.
    if run.state != RunState::Cancelled {
        return Err(CliError::Refused(
            refused.unwrap_or_else(|| already_ended(&run)),
        ));
    }
    Ok((run, stopped))
}

fn already_ended(run: &Run) -> String {
    format!(
        "run {} already ended ({}): nothing to cancel",
        run.run_id, run.state
    )
}

/// The latest attempt's task while it has not stopped.
fn running_task(run: &Run) -> Option<&str> {
    let attempt = run.last_attempt()?;
    if attempt.stopped_at.is_some() || attempt.last_status.as_deref() == Some("STOPPED") {
        return None;
    }
    attempt.task_arn.as_deref()
}

/// The cluster in a task ARN of the long format (`…:task/<cluster>/<id>`).
fn cluster_of(task_arn: &str) -> Option<String> {
    let resource = task_arn.splitn(6, ':').nth(5)?;
    let (cluster, _id) = resource.strip_prefix("task/")?.split_once('/')?;
    (!cluster.is_empty()).then(|| cluster.to_string())
}

/// The job's cluster in the config (for a task ARN of the old format, without its cluster).
fn job_cluster(config: &Config, job: &str) -> Option<String> {
    config.job(job)?.resolved(&config.defaults).cluster
}

/// `jobrunner: cancelled by <who>`, clipped to StopTask's 255 characters.
fn stop_reason(who: &str) -> String {
    let reason = format!("{CANCEL_REASON_PREFIX}{who}");
    reason.chars().take(STOP_REASON_MAX).collect()
}

/// The caller's ARN (STS GetCallerIdentity): who cancelled.
pub(crate) async fn caller_arn(sdk: &SdkConfig) -> Result<String, CliError> {
    let output = aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| jobrunner_aws::error::from_sdk("GetCallerIdentity", e))?;
    output
        .arn()
        .map(str::to_owned)
        .ok_or(CliError::Call(jobrunner_aws::Error::Rejected {
            operation: "GetCallerIdentity",
            message: "no ARN in the answer".into(),
        }))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use jobrunner_core::config::Format;
    use jobrunner_core::plan::RunTaskInput;
    use jobrunner_core::ports::{
        CallError, CallResult, DescribedTask, Put, Record, RunTaskAnswer, Saved,
    };
    use jobrunner_core::run::{Attempt, RunInput};

    use super::*;

    /// One run item, and a task service that records stops; `on_stop` is what the tracker
    /// writes when it sees the stop before the CLI writes.
    #[derive(Default)]
    struct Fake {
        stored: Mutex<Option<Record>>,
        stops: Mutex<Vec<(String, String, String)>>,
        on_stop: Option<RunState>,
    }

    impl Fake {
        fn with(run: &Run, on_stop: Option<RunState>) -> Fake {
            Fake {
                stored: Mutex::new(Some(Record {
                    data: serde_json::to_string(run).unwrap(),
                    version: 1,
                })),
                on_stop,
                ..Fake::default()
            }
        }

        fn stored(&self) -> (Run, u64) {
            let record = self.stored.lock().unwrap().clone().unwrap();
            (serde_json::from_str(&record.data).unwrap(), record.version)
        }
    }

    fn unused<T>(operation: &'static str) -> CallResult<T> {
        Err(CallError::Rejected {
            operation,
            message: "not used by run cancel".into(),
        })
    }

    impl StateTable for Fake {
        fn table(&self) -> &str {
            "state"
        }

        async fn get(&self, _key: &str) -> CallResult<Option<Record>> {
            Ok(self.stored.lock().unwrap().clone())
        }

        async fn put(&self, put: &Put<'_>) -> CallResult<Saved> {
            let mut stored = self.stored.lock().unwrap();
            if stored.as_ref().map(|r| r.version) != put.expected {
                return Ok(Saved::Conflict);
            }
            let version = put.expected.map_or(1, |v| v + 1);
            *stored = Some(Record {
                data: put.data.to_string(),
                version,
            });
            Ok(Saved::Written { version })
        }
    }

    impl Tasks for Fake {
        async fn list_tasks(&self, _: &str, _: &str) -> CallResult<Vec<String>> {
            unused("ListTasks")
        }

        async fn describe_tasks(&self, _: &str, _: &[String]) -> CallResult<Vec<DescribedTask>> {
            unused("DescribeTasks")
        }

        async fn run_task(&self, _: &RunTaskInput) -> CallResult<RunTaskAnswer> {
            unused("RunTask")
        }

        async fn stop_task(&self, cluster: &str, task_arn: &str, reason: &str) -> CallResult<()> {
            self.stops
                .lock()
                .unwrap()
                .push((cluster.into(), task_arn.into(), reason.into()));
            if let Some(state) = self.on_stop {
                let mut stored = self.stored.lock().unwrap();
                let record = stored.as_mut().unwrap();
                let mut run: Run = serde_json::from_str(&record.data).unwrap();
                run.state = state;
                record.data = serde_json::to_string(&run).unwrap();
                record.version += 1;
            }
            Ok(())
        }
    }

    const CONFIG: &str = r#"
[jobs.thumbnails]
task_definition = "t"
container = "app"
cluster = "batch"
capacity = ["FARGATE"]
subnets = ["subnet-1"]

[state]
table = "state"
"#;

    fn running(task_arn: &str) -> Run {
        let at = "2026-11-25T10:00:00Z".parse().unwrap();
        let mut run = Run::new(
            "0123456789abcdef0123",
            "thumbnails",
            RunInput::S3 {
                bucket: "uploads".into(),
                key: "a.jpg".into(),
                version_id: None,
                etag: None,
                size: None,
            },
            at,
            at,
        );
        run.state = RunState::Running;
        run.attempts.push(Attempt {
            number: 1,
            task_arn: Some(task_arn.into()),
            last_status: Some("RUNNING".into()),
            ..Attempt::default()
        });
        run
    }

    async fn cancel_with(fake: &Fake) -> Result<(Run, Option<String>), CliError> {
        let config = Config::parse(CONFIG, Format::Toml).unwrap();
        let request = Cancel {
            config: &config,
            state: config.state.as_ref().unwrap(),
            path: Path::new("jobrunner.toml"),
            run_id: "0123456789abcdef0123",
        };
        cancel_run(fake, &request, || async {
            Ok("arn:aws:iam::1:user/ana".to_string())
        })
        .await
    }

    const ARN: &str = "arn:aws:ecs:us-east-1:1:task/jobs/t1";

    #[tokio::test]
    async fn stops_the_task_then_writes_the_run_cancelled() {
        let fake = Fake::with(&running(ARN), None);
        let (run, stopped) = cancel_with(&fake).await.unwrap();
        assert_eq!(stopped.as_deref(), Some(ARN));
        assert_eq!(
            *fake.stops.lock().unwrap(),
            [(
                "jobs".to_string(),
                ARN.to_string(),
                "jobrunner: cancelled by arn:aws:iam::1:user/ana".to_string()
            )]
        );
        let (stored, version) = fake.stored();
        assert_eq!((stored.state, version), (RunState::Cancelled, 2));
        assert_eq!(stored, run);
        assert_eq!(
            stored.cancelled_by.as_deref(),
            Some("arn:aws:iam::1:user/ana")
        );
    }

    #[tokio::test]
    async fn a_stop_the_tracker_recorded_first_is_still_a_cancel() {
        let fake = Fake::with(&running(ARN), Some(RunState::Cancelled));
        let (run, _) = cancel_with(&fake).await.unwrap();
        assert_eq!(run.state, RunState::Cancelled);
        assert_eq!(fake.stored().1, 2, "the tracker's write stands");
    }

    #[tokio::test]
    async fn a_run_that_ends_while_its_task_is_stopped_is_refused() {
        let fake = Fake::with(&running(ARN), Some(RunState::Succeeded));
        let err = cancel_with(&fake).await.unwrap_err().to_string();
        assert_eq!(
            err,
            "run 0123456789abcdef0123 already ended (succeeded): nothing to cancel"
        );
        assert_eq!(fake.stored().0.state, RunState::Succeeded);
    }

    #[tokio::test]
    async fn a_task_arn_without_its_cluster_is_stopped_in_the_jobs_cluster() {
        let old = "arn:aws:ecs:us-east-1:1:task/t1";
        let fake = Fake::with(&running(old), None);
        cancel_with(&fake).await.unwrap();
        assert_eq!(fake.stops.lock().unwrap()[0].0, "batch");
    }

    #[tokio::test]
    async fn an_ended_run_is_refused_before_anything_is_stopped() {
        let mut done = running(ARN);
        done.state = RunState::Failed;
        let fake = Fake::with(&done, None);
        let err = cancel_with(&fake).await.unwrap_err().to_string();
        assert!(err.contains("already ended (failed)"), "{err}");
        assert!(fake.stops.lock().unwrap().is_empty());
        assert_eq!(fake.stored().1, 1);
    }

    #[test]
    fn since_is_a_positive_duration_within_the_retention() {
        assert_eq!(parse_since("2h", 30).unwrap(), StdDuration::from_secs(7200));
        assert_eq!(
            parse_since("30d", 30).unwrap(),
            StdDuration::from_secs(30 * 86400)
        );
        for (text, why) in [
            ("31d", "retention_days = 30"),
            ("0s", "more than zero"),
            ("2 fortnights", "unknown time unit"),
        ] {
            let err = parse_since(text, 30).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.starts_with(&format!("--since '{text}'")), "{err}");
        }
    }

    #[test]
    fn the_cluster_comes_from_the_task_arn() {
        assert_eq!(
            cluster_of("arn:aws:ecs:us-east-1:123456789012:task/jobs/0123abcd").as_deref(),
            Some("jobs")
        );
        assert_eq!(
            cluster_of("arn:aws:ecs:us-east-1:123456789012:task/0123abcd"),
            None
        );
        assert_eq!(cluster_of("not-an-arn"), None);
    }

    #[test]
    fn the_stop_reason_names_the_caller_within_255_characters() {
        assert_eq!(
            stop_reason("arn:aws:iam::1:user/ana"),
            "jobrunner: cancelled by arn:aws:iam::1:user/ana"
        );
        let long = format!("arn:aws:sts::1:assumed-role/{}", "r".repeat(300));
        let reason = stop_reason(&long);
        assert_eq!(reason.len(), STOP_REASON_MAX);
        assert!(reason.starts_with(CANCEL_REASON_PREFIX));
    }
}
