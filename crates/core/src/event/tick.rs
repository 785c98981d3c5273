//! Schedule ticks: an EventBridge rule's "Scheduled Event", or the input jobrunner sets on an
//! EventBridge Scheduler schedule.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::typed;
use crate::error::Error;

/// `source` of the input the infra sets on each EventBridge Scheduler schedule.
pub const SCHEDULER_SOURCE: &str = "jobrunner.scheduler";

/// One firing of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleTick {
    /// The schedule's name (Scheduler) or the rule's name (EventBridge rule).
    pub name: String,
    /// The time the tick was due; the same for every delivery and retry of the tick.
    pub scheduled_time: DateTime<Utc>,
    pub source: TickSource,
}

/// Which service fired the tick, and its ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickSource {
    Rule { arn: String },
    Scheduler { arn: Option<String> },
}

pub(super) fn decode_rule_event(
    resources: &[String],
    time: DateTime<Utc>,
) -> Result<ScheduleTick, Error> {
    let arn = resources
        .iter()
        .find(|r| r.contains(":rule/"))
        .ok_or_else(|| {
            Error::MalformedEvent("Scheduled Event has no rule ARN in 'resources'".into())
        })?;
    // arn:aws:events:REGION:ACCOUNT:rule/NAME or rule/BUS/NAME
    let name = arn.rsplit('/').next().unwrap_or_default();
    // EventBridge rule names: 1–64 of letters, digits, `.`, `-` and `_`.
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(Error::MalformedEvent(format!(
            "rule ARN {arn:?} does not end in a rule name (1-64 of A-Z a-z 0-9 . - _)"
        )));
    }
    Ok(ScheduleTick {
        name: name.to_string(),
        scheduled_time: time,
        source: TickSource::Rule { arn: arn.clone() },
    })
}

#[derive(Deserialize)]
struct SchedulerInput {
    schedule: String,
    scheduled_time: String,
    schedule_arn: Option<String>,
}

pub(super) fn decode_scheduler_input(value: &Value) -> Result<ScheduleTick, Error> {
    let input: SchedulerInput = typed(value, "EventBridge Scheduler input")?;
    let scheduled_time = DateTime::parse_from_rfc3339(&input.scheduled_time)
        .map_err(|_| {
            Error::MalformedEvent(format!(
                "scheduled_time {:?} is not an RFC 3339 time (set it to <aws.scheduler.scheduled-time>)",
                input.scheduled_time
            ))
        })?
        .with_timezone(&Utc);
    if input.schedule.is_empty() {
        return Err(Error::MalformedEvent(
            "EventBridge Scheduler input: 'schedule' is empty".into(),
        ));
    }
    Ok(ScheduleTick {
        name: input.schedule,
        scheduled_time,
        source: TickSource::Scheduler {
            arn: input.schedule_arn,
        },
    })
}
