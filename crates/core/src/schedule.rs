//! Schedules: fire times of `[[triggers.schedule]]` expressions in their time zones, and
//! matching a tick to its schedule. Expressions and zones are parsed when the config loads
//! (see [`crate::config::ScheduleExpression`]).

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;

pub use crate::config::RULE_PREFIX;
use crate::config::{Config, ScheduleExpression, ScheduleTrigger};
use crate::event::{ScheduleTick, TickSource};

/// The schedule a tick belongs to. Scheduler ticks carry the schedule's name; a rule named
/// `NAME` or `jobrunner-NAME` fires the schedule `NAME`.
pub fn find<'c>(config: &'c Config, tick: &ScheduleTick) -> Option<&'c ScheduleTrigger> {
    let by_name = |name: &str| config.triggers.schedule.iter().find(|s| s.name == name);
    match tick.source {
        TickSource::Scheduler { .. } => by_name(&tick.name),
        TickSource::Rule { .. } => {
            by_name(&tick.name).or_else(|| tick.name.strip_prefix(RULE_PREFIX).and_then(by_name))
        }
    }
}

/// The next `count` fire times of `schedule` after `from`. Cron expressions are evaluated in
/// the schedule's time zone (UTC by default) as EventBridge Scheduler does: a local time that
/// a daylight-saving change skips does not fire, and one it repeats fires once. Rates count
/// from `from`. The list ends early where the calendar (or year 2199) ends.
pub fn next_fire_times(
    schedule: &ScheduleTrigger,
    from: DateTime<Utc>,
    count: usize,
) -> Vec<DateTime<Utc>> {
    let Some(expression) = &schedule.expression else {
        return vec![];
    };
    let timezone = schedule.timezone.map_or(Tz::UTC, |zone| zone.tz());
    let mut times = Vec::with_capacity(count.min(1024));
    match expression {
        ScheduleExpression::Rate(rate) => {
            let mut next = from;
            while times.len() < count {
                match next.checked_add_signed(rate.every()) {
                    Some(time) => next = time,
                    None => break,
                }
                times.push(next);
            }
        }
        ScheduleExpression::Cron(cron) => {
            let cron = cron.cron();
            let mut cursor = from.with_timezone(&timezone);
            let mut last_local: Option<NaiveDateTime> = None;
            while times.len() < count {
                let Ok(next) = cron.find_next_occurrence(&cursor, false) else {
                    break;
                };
                cursor = next;
                let local = next.naive_local();
                // croner moves a time inside a spring-forward gap to the gap's end; EventBridge
                // skips it. A fall-back repeat of a local time fires once.
                let matches = cron.is_time_matching(&next).unwrap_or(false);
                if !matches || last_local.is_some_and(|last| local <= last) {
                    continue;
                }
                last_local = Some(local);
                times.push(next.with_timezone(&Utc));
            }
        }
    }
    times
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overlap;

    fn schedule(expression: &str, timezone: Option<&str>) -> ScheduleTrigger {
        ScheduleTrigger {
            name: "s".into(),
            job: "j".into(),
            expression: Some(expression.parse().unwrap()),
            timezone: timezone.map(|zone| zone.parse().unwrap()),
            overlap: Overlap::Allow,
            environment: Default::default(),
            command: None,
        }
    }

    fn times(expression: &str, timezone: Option<&str>, from: &str, count: usize) -> Vec<String> {
        next_fire_times(
            &schedule(expression, timezone),
            from.parse().unwrap(),
            count,
        )
        .iter()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .collect()
    }

    #[test]
    fn day_of_week_numbers_follow_eventbridge() {
        // 2026-11-22 is a Sunday. EventBridge: 1 = SUN, 2 = MON.
        assert_eq!(
            times("cron(0 9 ? * 2 *)", None, "2026-11-22T00:00:00Z", 1),
            ["2026-11-23T09:00:00Z"]
        );
        assert_eq!(
            times("cron(0 9 ? * 1 *)", None, "2026-11-22T00:00:00Z", 1),
            ["2026-11-22T09:00:00Z"]
        );
        assert_eq!(
            times("cron(0 9 ? * MON *)", None, "2026-11-22T00:00:00Z", 1),
            ["2026-11-23T09:00:00Z"]
        );
    }

    #[test]
    fn cron_runs_in_the_schedule_time_zone() {
        // 02:00 in Berlin is 01:00 UTC in winter.
        assert_eq!(
            times(
                "cron(0 2 * * ? *)",
                Some("Europe/Berlin"),
                "2026-11-22T00:00:00Z",
                2
            ),
            ["2026-11-22T01:00:00Z", "2026-11-23T01:00:00Z"]
        );
    }

    #[test]
    fn rate_counts_from_the_start() {
        assert_eq!(
            times("rate(30 minutes)", None, "2026-11-22T00:00:00Z", 2),
            ["2026-11-22T00:30:00Z", "2026-11-22T01:00:00Z"]
        );
    }

    #[test]
    fn hourly_cron_fires_on_the_hour() {
        assert_eq!(
            times("cron(0 * * * ? *)", None, "2026-11-22T05:10:00Z", 2),
            ["2026-11-22T06:00:00Z", "2026-11-22T07:00:00Z"]
        );
    }

    #[test]
    fn a_time_skipped_by_daylight_saving_never_fires() {
        // Berlin springs forward on 2026-03-29: 02:00-03:00 local does not exist.
        assert_eq!(
            times(
                "cron(30 2 * * ? *)",
                Some("Europe/Berlin"),
                "2026-03-27T12:00:00Z",
                3
            ),
            [
                "2026-03-28T01:30:00Z",
                "2026-03-30T00:30:00Z",
                "2026-03-31T00:30:00Z"
            ]
        );
        // Every 30 minutes: 02:00 and 02:30 are skipped, 03:00 (01:00Z) follows 01:30 (00:30Z).
        assert_eq!(
            times(
                "cron(0/30 * * * ? *)",
                Some("Europe/Berlin"),
                "2026-03-29T00:15:00Z",
                2
            ),
            ["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z"]
        );
    }

    #[test]
    fn a_time_repeated_by_daylight_saving_fires_once() {
        // Berlin falls back on 2026-10-25: 02:00-03:00 local happens twice.
        assert_eq!(
            times(
                "cron(30 2 * * ? *)",
                Some("Europe/Berlin"),
                "2026-10-24T12:00:00Z",
                2
            ),
            ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
        );
    }

    #[test]
    fn the_largest_rate_lists_fire_times_without_overflow() {
        let listed = times("rate(99999 days)", None, "2026-01-01T00:00:00Z", 1000);
        assert!(
            !listed.is_empty() && listed.len() < 1000,
            "{}",
            listed.len()
        );
        assert_eq!(listed[0], "2299-10-16T00:00:00Z");
    }

    #[test]
    fn counts_beyond_i32_do_not_wrap() {
        let trigger = schedule("cron(0 0 1 1 ? 2026-2028)", None);
        let listed = next_fire_times(
            &trigger,
            "2025-06-01T00:00:00Z".parse().unwrap(),
            usize::MAX,
        );
        assert_eq!(listed.len(), 3, "the year field ends the list");
    }
}
