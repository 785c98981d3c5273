//! `jobrunner run rerun <RUN_ID>`: a fresh attempt of a run that ended, by hand. The run's next
//! attempt is planned in the ledger (the core's `Run::plan_rerun`, the same conditional write
//! the tracker's retries use) and requested from the launcher's queue, which launches it like
//! a retry: attempt n+1 with its own clientToken, under the job's cap.

use chrono::Utc;
use jobrunner_core::Config;
use jobrunner_core::config::State;
use jobrunner_core::event::RetryRequest;
use jobrunner_core::ledger::{Ledger, keys};
use jobrunner_core::ports::{StateTable, WaitQueue};
use jobrunner_core::run::Run;

use crate::CliError;

/// Plans the rerun of `run_id` (`who` is the caller) and sends its request. Returns the run as
/// stored and the attempt's number.
pub(super) async fn rerun_run<P: StateTable + WaitQueue>(
    ports: &P,
    (config, state): (&Config, &State),
    run_id: &str,
    who: &str,
) -> Result<(Run, u32), CliError> {
    let Some(launcher) = &config.launcher else {
        return Err(CliError::Refused(
            "a rerun is launched through the launcher's queue: the config has no [launcher] queue_url"
                .into(),
        ));
    };
    let ledger = Ledger::new(ports, state);
    let now = Utc::now();
    let mut planned = Err(format!("no run {run_id}"));
    let run = ledger
        .update(
            &keys::run_key(run_id),
            None,
            now,
            |run: &mut Option<Run>| {
                planned = match run.as_mut() {
                    Some(run) => run.plan_rerun(who, now),
                    None => Err(format!("no run {run_id}")),
                };
                planned.is_ok()
            },
        )
        .await?;
    let attempt = planned.map_err(CliError::Refused)?;
    let run = run.ok_or_else(|| CliError::Refused(format!("no run {run_id}")))?;
    let request = RetryRequest {
        run_id: run_id.to_string(),
        attempt,
        not_before: now,
    };
    ports
        .send(&launcher.queue_url, &request.to_document().to_string(), 0)
        .await?;
    Ok((run, attempt))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use jobrunner_core::config::Format;
    use jobrunner_core::ports::{CallResult, Put, Record, Saved};
    use jobrunner_core::run::{RunInput, RunState};

    use super::*;

    #[derive(Default)]
    struct Fake {
        item: Mutex<Option<Record>>,
        sent: Mutex<Vec<(String, String, u32)>>,
    }

    impl StateTable for Fake {
        fn table(&self) -> &str {
            "state"
        }
        async fn get(&self, _key: &str) -> CallResult<Option<Record>> {
            Ok(self.item.lock().unwrap().clone())
        }
        async fn put(&self, put: &Put<'_>) -> CallResult<Saved> {
            let version = put.expected.map_or(1, |v| v + 1);
            *self.item.lock().unwrap() = Some(Record {
                data: put.data.to_string(),
                version,
            });
            Ok(Saved::Written { version })
        }
    }

    impl WaitQueue for Fake {
        async fn send(&self, queue_url: &str, body: &str, delay: u32) -> CallResult<()> {
            self.sent
                .lock()
                .unwrap()
                .push((queue_url.into(), body.into(), delay));
            Ok(())
        }
    }

    fn config(launcher: bool) -> Config {
        let mut text = "[state]\ntable = \"state\"\n".to_string();
        if launcher {
            text.push_str(
                "[launcher]\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/1/launcher\"\n",
            );
        }
        Config::parse(&text, Format::Toml).unwrap()
    }

    fn stored(state: RunState) -> Fake {
        let now = Utc::now();
        let mut run = Run::new(
            "0123456789abcdef0123",
            "report",
            RunInput::Schedule {
                schedule: "hourly".into(),
                scheduled_time: now,
            },
            now,
            now,
        );
        run.state = state;
        let fake = Fake::default();
        *fake.item.lock().unwrap() = Some(Record {
            data: serde_json::to_string(&run).unwrap(),
            version: 1,
        });
        fake
    }

    #[tokio::test]
    async fn an_ended_run_gets_its_next_attempt_requested() {
        let fake = stored(RunState::Failed);
        let config = config(true);
        let state = config.state.clone().unwrap();
        let (run, attempt) = rerun_run(&fake, (&config, &state), "0123456789abcdef0123", "ops")
            .await
            .unwrap();
        assert_eq!(attempt, 2);
        assert_eq!(run.state, RunState::Waiting);
        let sent = fake.sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].0.ends_with("/launcher"));
        let request: serde_json::Value = serde_json::from_str(&sent[0].1).unwrap();
        assert_eq!(request["source"], "jobrunner.retry");
        assert_eq!(request["attempt"], 2);
    }

    #[tokio::test]
    async fn a_running_run_or_a_config_without_a_queue_is_refused() {
        let config = config(true);
        let state = config.state.clone().unwrap();
        let fake = stored(RunState::Running);
        let err = rerun_run(&fake, (&config, &state), "0123456789abcdef0123", "ops")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("is running"), "{err}");
        assert!(fake.sent.lock().unwrap().is_empty());
        let no_queue = self::config(false);
        let err = rerun_run(
            &stored(RunState::Failed),
            (&no_queue, &state),
            "0123456789abcdef0123",
            "ops",
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("queue_url"), "{err}");
    }
}
