//! The worker's settings, their defaults and their validation.

use std::time::Duration;

use crate::Error;
use crate::schedule::MAX_INVISIBLE;

/// How the polling loop behaves. [`Config::new`] gives the defaults of the command-line tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The queue to poll.
    pub queue_url: String,
    /// Messages in hand at once (commands running in parallel).
    pub concurrency: usize,
    /// How long a received message stays invisible; the heartbeat extends it by this much.
    /// Whole seconds, 1 s to 12 h.
    pub visibility_timeout: Duration,
    /// Exit once nothing has been in hand and nothing received for this long.
    pub idle_exit: Option<Duration>,
    /// After a shutdown request, how long running handlers may take to finish on their own.
    pub grace: Duration,
    /// After the grace, how long a stopped handler may take to return before it is abandoned.
    pub stop_timeout: Duration,
    /// How long a failed message stays invisible before its next attempt. Whole seconds, up to 12 h.
    pub retry_delay: Duration,
    /// ReceiveMessage's long-poll wait, at most 20 s.
    pub wait_time: Duration,
    /// `ExpiresInMinutes` of each task protection request (1 to 2880); renewed at half-time.
    pub protection_minutes: u32,
}

impl Config {
    /// The defaults: one message at a time, 30 s visibility, 100 s grace, 10 s retry delay,
    /// 20 s long polls, protection for 15 minutes at a time.
    pub fn new(queue_url: impl Into<String>) -> Config {
        Config {
            queue_url: queue_url.into(),
            concurrency: 1,
            visibility_timeout: Duration::from_secs(30),
            idle_exit: None,
            grace: Duration::from_secs(100),
            stop_timeout: Duration::from_secs(15),
            retry_delay: Duration::from_secs(10),
            wait_time: Duration::from_secs(20),
            protection_minutes: 15,
        }
    }

    /// Checks every value against what SQS and the ECS agent accept.
    pub fn validate(&self) -> Result<(), Error> {
        if self.queue_url.trim().is_empty() {
            return Err(invalid("--queue-url", "is empty".into()));
        }
        if self.concurrency == 0 {
            return Err(invalid("--concurrency", "must be at least 1".into()));
        }
        whole_seconds("--visibility-timeout", self.visibility_timeout)?;
        if self.visibility_timeout < Duration::from_secs(1)
            || self.visibility_timeout > MAX_INVISIBLE
        {
            return Err(invalid(
                "--visibility-timeout",
                format!(
                    "must be between 1s and 12h, got {}",
                    humantime::format_duration(self.visibility_timeout)
                ),
            ));
        }
        whole_seconds("--retry-delay", self.retry_delay)?;
        if self.retry_delay > MAX_INVISIBLE {
            return Err(invalid(
                "--retry-delay",
                format!(
                    "must be at most 12h, got {}",
                    humantime::format_duration(self.retry_delay)
                ),
            ));
        }
        if self.idle_exit == Some(Duration::ZERO) {
            return Err(invalid("--idle-exit", "must be longer than 0s".into()));
        }
        whole_seconds("wait_time", self.wait_time)?;
        if self.wait_time > Duration::from_secs(20) {
            return Err(invalid("wait_time", "must be at most 20s".into()));
        }
        if !(1..=2880).contains(&self.protection_minutes) {
            return Err(invalid(
                "protection_minutes",
                format!(
                    "must be between 1 and 2880, got {}",
                    self.protection_minutes
                ),
            ));
        }
        Ok(())
    }
}

fn invalid(name: &'static str, reason: String) -> Error {
    Error::InvalidArgument { name, reason }
}

fn whole_seconds(name: &'static str, d: Duration) -> Result<(), Error> {
    if d.subsec_nanos() != 0 {
        return Err(invalid(
            name,
            format!(
                "SQS takes whole seconds, got {}",
                humantime::format_duration(d)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new("https://sqs.us-east-1.amazonaws.com/123456789012/jobs")
    }

    #[test]
    fn defaults_are_valid() {
        config().validate().unwrap();
    }

    #[test]
    fn rejects_what_sqs_would_reject() {
        let cases: Vec<(Config, &str)> = vec![
            (
                Config {
                    concurrency: 0,
                    ..config()
                },
                "--concurrency: must be at least 1",
            ),
            (
                Config {
                    visibility_timeout: Duration::from_millis(1500),
                    ..config()
                },
                "--visibility-timeout: SQS takes whole seconds, got 1s 500ms",
            ),
            (
                Config {
                    visibility_timeout: Duration::ZERO,
                    ..config()
                },
                "--visibility-timeout: must be between 1s and 12h, got 0s",
            ),
            (
                Config {
                    retry_delay: Duration::from_secs(13 * 3600),
                    ..config()
                },
                "--retry-delay: must be at most 12h, got 13h",
            ),
            (
                Config {
                    idle_exit: Some(Duration::ZERO),
                    ..config()
                },
                "--idle-exit: must be longer than 0s",
            ),
            (
                Config {
                    queue_url: " ".into(),
                    ..config()
                },
                "--queue-url: is empty",
            ),
            (
                Config {
                    protection_minutes: 0,
                    ..config()
                },
                "protection_minutes: must be between 1 and 2880, got 0",
            ),
        ];
        for (config, message) in cases {
            assert_eq!(config.validate().unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn zero_retry_delay_is_allowed() {
        Config {
            retry_delay: Duration::ZERO,
            ..config()
        }
        .validate()
        .unwrap();
    }
}
