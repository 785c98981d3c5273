//! [`CommandHandler`]: runs a command per message, never through a shell.
//!
//! The command gets the message body on stdin and `JOB_MESSAGE_ID`, `JOB_RECEIVE_COUNT` and
//! `JOB_ATTR_<NAME>` (one per message attribute) in its environment, on top of the worker's
//! own. It runs in its own process group, so a Ctrl-C or a signal aimed at the worker does not
//! reach it; only when the worker stops it (after the shutdown grace) does the whole group get
//! SIGTERM and, if still there after `kill_after`, SIGKILL.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::{Error, Handler, Message, Outcome, Stop};

/// Runs `program args…` once per message.
#[derive(Debug, Clone)]
pub struct CommandHandler {
    program: OsString,
    args: Vec<OsString>,
    kill_after: Duration,
}

impl CommandHandler {
    /// `command[0]` is the program (a path, or a name looked up in `PATH`), the rest its
    /// arguments. Fails when the program cannot be found, so a typo is not a queue's worth of
    /// failed messages.
    pub fn new(command: Vec<OsString>) -> Result<CommandHandler, Error> {
        let mut parts = command.into_iter();
        let program = parts.next().ok_or_else(|| Error::InvalidArgument {
            name: "COMMAND",
            reason: "missing: give the command to run after `--`".into(),
        })?;
        if find_program(&program, std::env::var_os("PATH").as_deref()).is_none() {
            return Err(Error::CommandNotFound(
                program.to_string_lossy().into_owned(),
            ));
        }
        Ok(CommandHandler {
            program,
            args: parts.collect(),
            kill_after: Duration::from_secs(10),
        })
    }

    /// How long a stopped command has between SIGTERM and SIGKILL (default 10 s).
    pub fn kill_after(mut self, kill_after: Duration) -> CommandHandler {
        self.kill_after = kill_after;
        self
    }
}

/// Where `program` would be run from: itself when it contains a `/`, else the first
/// executable file of that name in `path`.
pub fn find_program(program: &OsStr, path: Option<&OsStr>) -> Option<PathBuf> {
    let candidate = Path::new(program);
    if program.is_empty() {
        return None;
    }
    if candidate.components().count() > 1 || program.to_string_lossy().contains('/') {
        return is_executable(candidate).then(|| candidate.to_path_buf());
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The environment a message's command gets, besides the worker's own: one entry per
/// variable. Attribute names that map to the same variable keep the value of the one sorting
/// last (as `docs/worker.md` says); a value holding NUL, which no environment can carry (and
/// SQS never delivers), is left out with a warning rather than failing the command's start.
pub fn message_env(message: &Message) -> Vec<(String, String)> {
    let mut env = vec![
        ("JOB_MESSAGE_ID".to_string(), message.id.replace('\0', "")),
        (
            "JOB_RECEIVE_COUNT".to_string(),
            message.receive_count.to_string(),
        ),
    ];
    let mut attributes = std::collections::BTreeMap::new();
    for (name, value) in &message.attributes {
        if value.contains('\0') {
            tracing::warn!(attribute = %name.escape_debug(), "attribute value holds NUL: not passed to the command");
            continue;
        }
        attributes.insert(attribute_variable(name), value.clone());
    }
    env.extend(attributes);
    env
}

/// `JOB_ATTR_<NAME>`: the attribute's name keeps its case; characters other than ASCII
/// letters, digits and `_` become `_`.
pub fn attribute_variable(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("JOB_ATTR_{name}")
}

fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

fn signal_group(pid: Option<u32>, signal: Signal) {
    let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(Pid::from_raw)
    else {
        return;
    };
    if let Err(e) = kill_process_group(pid, signal) {
        tracing::debug!(pid = pid.as_raw_nonzero().get(), error = %e, "signal not delivered");
    }
}

impl Handler for CommandHandler {
    async fn handle(&self, message: Message, mut stop: Stop) -> Outcome {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(message_env(&message))
            .stdin(Stdio::piped())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                return Outcome::Failed(format!(
                    "cannot start {}: {e}",
                    self.program.to_string_lossy()
                ));
            }
        };
        let pid = child.id();
        if let Some(mut stdin) = child.stdin.take() {
            let body = message.body;
            // A command that exits without reading its input closes the pipe: not an error.
            tokio::spawn(async move {
                let _ = stdin.write_all(body.as_bytes()).await;
            });
        }
        tokio::select! {
            status = child.wait() => {
                return match status {
                    Ok(status) if status.success() => Outcome::Done,
                    Ok(status) => Outcome::Failed(describe_status(status)),
                    Err(e) => Outcome::Failed(format!("waiting for the command: {e}")),
                };
            }
            _ = stop.requested() => {}
        }
        tracing::warn!(message_id = %message.id, "stopping the command: SIGTERM");
        signal_group(pid, Signal::TERM);
        if tokio::time::timeout(self.kill_after, child.wait())
            .await
            .is_err()
        {
            tracing::warn!(message_id = %message.id, "the command outlived SIGTERM: SIGKILL");
            signal_group(pid, Signal::KILL);
            let _ = child.wait().await;
        }
        Outcome::Interrupted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tokio::time::Instant;

    fn sh(script: &str) -> CommandHandler {
        CommandHandler::new(vec!["sh".into(), "-c".into(), script.into()]).unwrap()
    }

    fn message(body: &str) -> Message {
        Message {
            id: "m-1".into(),
            receipt_handle: "r".into(),
            body: body.into(),
            receive_count: 2,
            attributes: BTreeMap::from([
                ("tenant-id".to_string(), "acme".to_string()),
                ("Trace.Id".to_string(), "t-9".to_string()),
            ]),
        }
    }

    #[test]
    fn attribute_names_keep_case_and_lose_punctuation() {
        assert_eq!(attribute_variable("tenant-id"), "JOB_ATTR_tenant_id");
        assert_eq!(attribute_variable("Trace.Id"), "JOB_ATTR_Trace_Id");
        assert_eq!(attribute_variable("already_OK9"), "JOB_ATTR_already_OK9");
        assert_eq!(attribute_variable("é"), "JOB_ATTR__");
    }

    #[test]
    fn environment_of_a_message() {
        let env = message_env(&message(""));
        assert_eq!(
            env,
            vec![
                ("JOB_MESSAGE_ID".to_string(), "m-1".to_string()),
                ("JOB_RECEIVE_COUNT".to_string(), "2".to_string()),
                ("JOB_ATTR_Trace_Id".to_string(), "t-9".to_string()),
                ("JOB_ATTR_tenant_id".to_string(), "acme".to_string()),
            ]
        );
    }

    #[test]
    fn colliding_attribute_names_give_one_variable_the_last_name_wins() {
        let mut message = message("");
        message.attributes = BTreeMap::from([
            ("a-b".to_string(), "dash".to_string()),
            ("a.b".to_string(), "dot".to_string()),
            ("nul".to_string(), "x\0y".to_string()),
        ]);
        let env = message_env(&message);
        let named: Vec<_> = env
            .iter()
            .filter(|(n, _)| n.starts_with("JOB_ATTR_"))
            .collect();
        assert_eq!(
            named,
            [&("JOB_ATTR_a_b".to_string(), "dot".to_string())],
            "`a.b` sorts after `a-b`; the NUL value is left out"
        );
    }

    #[test]
    fn finds_programs_on_the_path_only_when_executable() {
        assert!(find_program(OsStr::new("sh"), std::env::var_os("PATH").as_deref()).is_some());
        assert!(find_program(OsStr::new("/bin/sh"), None).is_some());
        assert!(find_program(OsStr::new("no-such-program-x"), Some(OsStr::new("/bin"))).is_none());
        let plain = tempfile::NamedTempFile::new().unwrap();
        assert!(
            find_program(plain.path().as_os_str(), None).is_none(),
            "not executable"
        );
        assert!(find_program(OsStr::new(""), None).is_none());
        assert_eq!(
            CommandHandler::new(vec!["no-such-program-x".into()])
                .unwrap_err()
                .to_string(),
            "command not found or not executable: no-such-program-x"
        );
        assert_eq!(
            CommandHandler::new(vec![]).unwrap_err().to_string(),
            "COMMAND: missing: give the command to run after `--`"
        );
    }

    #[tokio::test]
    async fn body_on_stdin_and_message_in_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!(
            "{{ cat; echo; echo \"$JOB_MESSAGE_ID $JOB_RECEIVE_COUNT $JOB_ATTR_tenant_id\"; }} > {}",
            out.display()
        );
        let (_switch, stop) = Stop::new();
        let outcome = sh(&script).handle(message("line 1\nline 2 ✓"), stop).await;
        assert_eq!(outcome, Outcome::Done);
        assert_eq!(
            std::fs::read_to_string(out).unwrap(),
            "line 1\nline 2 ✓\nm-1 2 acme\n"
        );
    }

    #[tokio::test]
    async fn exit_status_decides_the_outcome() {
        let (_switch, stop) = Stop::new();
        assert_eq!(
            sh("exit 3").handle(message(""), stop.clone()).await,
            Outcome::Failed("exit status 3".into())
        );
        assert_eq!(
            sh("kill -9 $$").handle(message(""), stop.clone()).await,
            Outcome::Failed("killed by signal 9".into())
        );
        // A command that ignores its input still succeeds.
        assert_eq!(
            sh("true").handle(message(&"x".repeat(1 << 20)), stop).await,
            Outcome::Done
        );
    }

    #[tokio::test]
    async fn stop_sends_sigterm_to_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("term");
        // The shell records the SIGTERM; its child `sleep` is stopped with it.
        let script = format!(
            "trap 'touch {}; exit 143' TERM; sleep 30 & wait",
            marker.display()
        );
        let (switch, stop) = Stop::new();
        let handler = sh(&script);
        let started = Instant::now();
        let run = tokio::spawn(async move { handler.handle(message(""), stop).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        switch.send(true).unwrap();
        assert_eq!(run.await.unwrap(), Outcome::Interrupted);
        assert!(marker.exists(), "the command did not get SIGTERM");
        assert!(started.elapsed() < Duration::from_secs(8));
    }

    #[tokio::test]
    async fn sigkill_follows_when_sigterm_is_ignored() {
        let (switch, stop) = Stop::new();
        let handler =
            sh("trap '' TERM; while :; do sleep 0.1; done").kill_after(Duration::from_millis(500));
        let run = tokio::spawn(async move { handler.handle(message(""), stop).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stopped = Instant::now();
        switch.send(true).unwrap();
        assert_eq!(run.await.unwrap(), Outcome::Interrupted);
        let took = stopped.elapsed();
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_secs(8),
            "{took:?}"
        );
    }
}
