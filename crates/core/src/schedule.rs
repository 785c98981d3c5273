//! Schedules: matching a tick to its `[[triggers.schedule]]` and validating expressions.

use crate::config::{Config, ScheduleTrigger};
use crate::error::Error;
use crate::event::{ScheduleTick, TickSource};

/// Prefix the infra gives EventBridge rule names: rule `jobrunner-NAME` fires schedule `NAME`.
pub const RULE_PREFIX: &str = "jobrunner-";

/// The schedule a tick belongs to. Scheduler ticks carry the schedule's name; a rule named
/// `NAME` or `jobrunner-NAME` fires the schedule `NAME`.
pub fn find<'c>(config: &'c Config, tick: &ScheduleTick) -> Option<&'c ScheduleTrigger> {
    let by_name = |name: &str| config.triggers.schedule.iter().find(|s| s.name == name);
    match tick.source {
        TickSource::Scheduler { .. } => by_name(&tick.name),
        TickSource::Rule { .. } => by_name(&tick.name).or_else(|| tick.name.strip_prefix(RULE_PREFIX).and_then(by_name)),
    }
}

/// Validates a schedule's expression and time zone.
pub fn validate_trigger(path: &str, schedule: &ScheduleTrigger) -> Result<(), Error> {
    if let Some(expression) = &schedule.expression {
        if !(expression.starts_with("rate(") || expression.starts_with("cron(")) {
            return Err(Error::Config {
                path: format!("{path}.expression"),
                reason: format!("'{expression}' is neither rate(...) nor cron(...)"),
            });
        }
    }
    Ok(())
}
