//! Schedules: EventBridge `rate(...)`/`cron(...)` expressions, their time zones and fire times,
//! and matching a tick to its `[[triggers.schedule]]`.
//!
//! Cron parsing is croner's, in its Quartz weekday mode (1 = SUN … 7 = SAT) with a required
//! year field, which is EventBridge's dialect; on top sit EventBridge's own rules (exactly one
//! of day-of-month and day-of-week is `?`, years 1970–2199).

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

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
        TickSource::Rule { .. } => {
            by_name(&tick.name).or_else(|| tick.name.strip_prefix(RULE_PREFIX).and_then(by_name))
        }
    }
}

/// A parsed schedule expression.
#[derive(Debug, Clone)]
pub enum Expression {
    /// `rate(N unit)`: every `N` minutes, hours or days.
    Rate(Duration),
    /// `cron(min hour day-of-month month day-of-week year)`.
    Cron(Box<Cron>),
}

/// Parses an EventBridge schedule expression.
pub fn parse_expression(text: &str) -> Result<Expression, String> {
    let text = text.trim();
    if let Some(body) = text.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
        return parse_rate(body).map(Expression::Rate);
    }
    if let Some(body) = text.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
        return parse_cron(body).map(|cron| Expression::Cron(Box::new(cron)));
    }
    Err(format!(
        "'{text}' is neither rate(value unit) nor cron(minutes hours day-of-month month day-of-week year)"
    ))
}

fn parse_rate(body: &str) -> Result<Duration, String> {
    let parts: Vec<&str> = body.split_whitespace().collect();
    let [value, unit] = parts[..] else {
        return Err(format!(
            "rate({body}) must be rate(value unit), e.g. rate(5 minutes)"
        ));
    };
    let value: i64 = value
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("rate value '{value}' must be a positive whole number"))?;
    let (singular, per_unit) = match unit {
        "minute" | "minutes" => ("minute", Duration::minutes(1)),
        "hour" | "hours" => ("hour", Duration::hours(1)),
        "day" | "days" => ("day", Duration::days(1)),
        other => {
            return Err(format!(
                "rate unit '{other}' must be minute(s), hour(s) or day(s)"
            ));
        }
    };
    // EventBridge insists: rate(1 hour), rate(2 hours).
    let expected = if value == 1 {
        singular.to_string()
    } else {
        format!("{singular}s")
    };
    if unit != expected {
        return Err(format!(
            "rate({body}): write rate({value} {expected}) (singular for 1, plural otherwise)"
        ));
    }
    Ok(per_unit * value as i32)
}

fn parse_cron(body: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = body.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(format!(
            "cron({body}) has {} fields; EventBridge cron has 6: minutes hours day-of-month month day-of-week year",
            fields.len()
        ));
    }
    let (day_of_month, day_of_week, year) = (fields[2], fields[4], fields[5]);
    match (day_of_month == "?", day_of_week == "?") {
        (false, false) => {
            return Err(format!(
                "cron({body}): day-of-month ({day_of_month}) and day-of-week ({day_of_week}) are both set; one of them must be '?'"
            ));
        }
        (true, true) => {
            return Err(format!(
                "cron({body}): day-of-month and day-of-week cannot both be '?'"
            ));
        }
        _ => {}
    }
    for number in year
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
    {
        if !(1970..=2199).contains(&number.parse::<u32>().unwrap_or(0)) {
            return Err(format!("cron({body}): year {number} is outside 1970-2199"));
        }
    }
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Required)
        .alternative_weekdays(true)
        // EventBridge writes steps as `0/15`.
        .sloppy_ranges(true)
        .build()
        .parse(&format!("0 {body}"))
        .map_err(|e| format!("cron({body}): {e}"))
}

/// Parses an IANA time zone name such as `Europe/Berlin`.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!(
            "'{name}' is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC)"
        )
    })
}

/// The next `count` fire times of `schedule` after `from`. Cron expressions are evaluated in
/// the schedule's time zone (UTC by default); rates count from `from`.
pub fn next_fire_times(
    schedule: &ScheduleTrigger,
    from: DateTime<Utc>,
    count: usize,
) -> Result<Vec<DateTime<Utc>>, String> {
    let Some(expression) = &schedule.expression else {
        return Ok(vec![]);
    };
    let timezone = schedule
        .timezone
        .as_deref()
        .map(parse_timezone)
        .transpose()?
        .unwrap_or(Tz::UTC);
    match parse_expression(expression)? {
        Expression::Rate(every) => Ok((1..=count as i32).map(|k| from + every * k).collect()),
        Expression::Cron(cron) => {
            let mut times = Vec::with_capacity(count);
            let mut cursor = from.with_timezone(&timezone);
            while times.len() < count {
                match cron.find_next_occurrence(&cursor, false) {
                    Ok(next) => {
                        times.push(next.with_timezone(&Utc));
                        cursor = next;
                    }
                    Err(_) => break,
                }
            }
            Ok(times)
        }
    }
}

/// Validates a schedule's expression and time zone.
pub fn validate_trigger(path: &str, schedule: &ScheduleTrigger) -> Result<(), Error> {
    if let Some(expression) = &schedule.expression {
        parse_expression(expression).map_err(|reason| Error::Config {
            path: format!("{path}.expression"),
            reason,
        })?;
    }
    if let Some(timezone) = &schedule.timezone {
        parse_timezone(timezone).map_err(|reason| Error::Config {
            path: format!("{path}.timezone"),
            reason,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overlap;

    fn schedule(expression: &str, timezone: Option<&str>) -> ScheduleTrigger {
        ScheduleTrigger {
            name: "s".into(),
            job: "j".into(),
            expression: Some(expression.into()),
            timezone: timezone.map(Into::into),
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
        .unwrap()
        .iter()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .collect()
    }

    #[test]
    fn valid_expressions_parse() {
        for text in [
            "rate(1 minute)",
            "rate(5 minutes)",
            "rate(1 hour)",
            "rate(12 hours)",
            "rate(1 day)",
            "cron(0 * * * ? *)",
            "cron(15 10 ? * 6L 2026-2030)",
            "cron(0/15 * ? * MON-FRI *)",
            "cron(0 8 1 * ? *)",
            "cron(0 18 ? * 2#1 *)",
            "cron(0 12 L * ? *)",
            "cron(0 9 15W * ? *)",
        ] {
            assert!(
                parse_expression(text).is_ok(),
                "{text}: {:?}",
                parse_expression(text).err()
            );
        }
    }

    #[test]
    fn invalid_expressions_say_why() {
        for (text, expected) in [
            ("every hour", "neither rate"),
            ("rate(0 minutes)", "positive"),
            ("rate(1 minutes)", "rate(1 minute)"),
            ("rate(5 minute)", "rate(5 minutes)"),
            ("rate(5 weeks)", "unit"),
            ("rate(five minutes)", "positive"),
            ("cron(0 * * * *)", "has 5 fields"),
            ("cron(0 12 1 * MON *)", "both set"),
            ("cron(0 12 ? * ? *)", "cannot both be '?'"),
            ("cron(0 25 * * ? *)", "cron(0 25"),
            ("cron(0 12 * * ? 2300)", "outside 1970-2199"),
        ] {
            let err = parse_expression(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
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
    fn unknown_time_zone_is_rejected() {
        let err = validate_trigger(
            "triggers.schedule[0]",
            &schedule("rate(1 hour)", Some("Mars/Olympus")),
        )
        .unwrap_err();
        assert_eq!(
            err,
            Error::Config {
                path: "triggers.schedule[0].timezone".into(),
                reason: parse_timezone("Mars/Olympus").unwrap_err()
            }
        );
    }
}
