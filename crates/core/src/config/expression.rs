//! `rate(...)` and `cron(...)` schedule expressions in EventBridge's syntax, parsed once when
//! the config loads.
//!
//! Cron parsing is croner's, in its Quartz weekday mode (1 = SUN … 7 = SAT) with a required
//! year field, which is EventBridge's dialect; on top sit EventBridge's own rules (exactly one
//! of day-of-month and day-of-week is `?`, years 1970–2199, year steps such as `2024/2`).

use std::borrow::Cow;
use std::fmt;

use chrono::Duration;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The largest `rate(...)` value: every unit's period then stays far inside the calendar.
pub const MAX_RATE_VALUE: u32 = 99_999;
const FIRST_YEAR: u32 = 1970;
const LAST_YEAR: u32 = 2199;

/// A schedule expression: `rate(5 minutes)` or `cron(0 * * * ? *)`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum ScheduleExpression {
    /// `rate(N unit)`: every `N` minutes, hours or days.
    Rate(Rate),
    /// `cron(min hour day-of-month month day-of-week year)`.
    Cron(CronExpression),
}

/// `rate(value unit)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub value: u32,
    pub unit: RateUnit,
}

/// The unit of a `rate(...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    Minute,
    Hour,
    Day,
}

/// `cron(...)`, parsed; keeps the six fields as written.
#[derive(Debug, Clone)]
pub struct CronExpression {
    fields: String,
    cron: Box<Cron>,
}

impl PartialEq for CronExpression {
    fn eq(&self, other: &Self) -> bool {
        self.fields == other.fields
    }
}
impl Eq for CronExpression {}

impl CronExpression {
    /// The parsed pattern (with a leading seconds field of `0`).
    pub fn cron(&self) -> &Cron {
        &self.cron
    }
}

impl Rate {
    /// The period between two fires.
    pub fn every(self) -> Duration {
        let unit = match self.unit {
            RateUnit::Minute => Duration::minutes(1),
            RateUnit::Hour => Duration::hours(1),
            RateUnit::Day => Duration::days(1),
        };
        // At most 99,999 days: far from chrono's limits.
        unit * self.value as i32
    }
}

impl fmt::Display for ScheduleExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleExpression::Rate(rate) => {
                let unit = match rate.unit {
                    RateUnit::Minute => "minute",
                    RateUnit::Hour => "hour",
                    RateUnit::Day => "day",
                };
                let plural = if rate.value == 1 { "" } else { "s" };
                write!(f, "rate({} {unit}{plural})", rate.value)
            }
            ScheduleExpression::Cron(cron) => write!(f, "cron({})", cron.fields),
        }
    }
}

impl From<ScheduleExpression> for String {
    fn from(expression: ScheduleExpression) -> String {
        expression.to_string()
    }
}

impl TryFrom<String> for ScheduleExpression {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl std::str::FromStr for ScheduleExpression {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(body) = text.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
            return parse_rate(body).map(ScheduleExpression::Rate);
        }
        if let Some(body) = text.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
            return parse_cron(body).map(ScheduleExpression::Cron);
        }
        Err(format!(
            "'{text}' is neither rate(value unit) nor cron(minutes hours day-of-month month day-of-week year)"
        ))
    }
}

fn parse_rate(body: &str) -> Result<Rate, String> {
    let Some((value, unit)) = body.split_once(' ') else {
        return Err(format!(
            "rate({body}) must be rate(value unit), e.g. rate(5 minutes)"
        ));
    };
    let value: u32 = Some(value)
        .filter(|v| !v.is_empty() && v.len() <= 5 && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .filter(|v| (1..=MAX_RATE_VALUE).contains(v))
        .ok_or_else(|| {
            format!("rate value '{value}' must be a whole number from 1 to {MAX_RATE_VALUE}")
        })?;
    let (singular, unit) = match unit {
        "minute" | "minutes" => ("minute", RateUnit::Minute),
        "hour" | "hours" => ("hour", RateUnit::Hour),
        "day" | "days" => ("day", RateUnit::Day),
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
    if unit_text(body) != expected {
        return Err(format!(
            "rate({body}): write rate({value} {expected}) (singular for 1, plural otherwise)"
        ));
    }
    Ok(Rate { value, unit })
}

fn unit_text(body: &str) -> &str {
    body.split_once(' ').map_or("", |(_, unit)| unit)
}

fn parse_cron(body: &str) -> Result<CronExpression, String> {
    let fields: Vec<&str> = body.split(' ').collect();
    if fields.len() != 6 || fields.iter().any(|f| f.is_empty()) {
        return Err(format!(
            "cron({body}) must have 6 fields separated by single spaces: minutes hours day-of-month month day-of-week year"
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
    check_year(body, year)?;
    let cron = CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Required)
        .alternative_weekdays(true)
        // EventBridge writes steps as `0/15`.
        .sloppy_ranges(true)
        .build()
        .parse(&format!("0 {body}"))
        .map_err(|e| format!("cron({body}): {e}"))?;
    Ok(CronExpression {
        fields: body.to_string(),
        cron: Box::new(cron),
    })
}

/// EventBridge's year field: `*`, a year, a range, a list of them, each optionally with a
/// step (`2024/2`, `*/2`, `2024-2030/3`); years 1970–2199. Steps are not years.
fn check_year(body: &str, year: &str) -> Result<(), String> {
    for item in year.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step
            && !step
                .parse::<u32>()
                .is_ok_and(|s| (1..=LAST_YEAR - FIRST_YEAR).contains(&s))
        {
            return Err(format!(
                "cron({body}): year step '{step}' must be a whole number from 1 to {}",
                LAST_YEAR - FIRST_YEAR
            ));
        }
        if base == "*" {
            continue;
        }
        let (from, to) = base.split_once('-').unwrap_or((base, base));
        for number in [from, to] {
            match number.parse::<u32>() {
                Ok(n) if (FIRST_YEAR..=LAST_YEAR).contains(&n) => {}
                Ok(_) => {
                    return Err(format!(
                        "cron({body}): year {number} is outside {FIRST_YEAR}-{LAST_YEAR}"
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "cron({body}): year field '{year}' must list years ({FIRST_YEAR}-{LAST_YEAR}), ranges, '*' or steps"
                    ));
                }
            }
        }
    }
    Ok(())
}

impl JsonSchema for ScheduleExpression {
    fn schema_name() -> Cow<'static, str> {
        "ScheduleExpression".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "rate(value unit) with value 1-99999 (singular unit for 1), or cron(minutes hours day-of-month month day-of-week year) in EventBridge's syntax with exactly one of day-of-month and day-of-week '?'",
            "pattern": RATE_OR_CRON_PATTERN,
        })
    }
}

/// What the schema accepts as an expression: exact for rates, the field structure for cron.
const RATE_OR_CRON_PATTERN: &str = r"^(?:rate\((?:1 (?:minute|hour|day)|(?:[2-9]|[1-9][0-9]{1,4}) (?:minutes|hours|days))\)|cron\([^ ?]+ [^ ?]+ (?:\? [^ ?]+ [^ ?]+|[^ ?]+ [^ ?]+ \?) [^ ?]+\))$";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ScheduleExpression, String> {
        text.parse()
    }

    #[test]
    fn valid_expressions_parse_and_print_as_written() {
        for text in [
            "rate(1 minute)",
            "rate(5 minutes)",
            "rate(1 hour)",
            "rate(12 hours)",
            "rate(1 day)",
            "rate(99999 days)",
            "cron(0 * * * ? *)",
            "cron(15 10 ? * 6L 2026-2030)",
            "cron(0/15 * ? * MON-FRI *)",
            "cron(0 8 1 * ? *)",
            "cron(0 18 ? * 2#1 *)",
            "cron(0 12 L * ? *)",
            "cron(0 9 15W * ? *)",
            "cron(0 9 1 1 ? 2024/2)",
            "cron(0 9 1 1 ? */2)",
            "cron(0 9 1 1 ? 2026-2040/5)",
        ] {
            let expression = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(expression.to_string(), text);
            let json = serde_json::to_value(&expression).unwrap();
            assert_eq!(json, text);
            assert_eq!(
                serde_json::from_value::<ScheduleExpression>(json).unwrap(),
                expression
            );
        }
    }

    #[test]
    fn invalid_expressions_say_why() {
        for (text, expected) in [
            ("every hour", "neither rate"),
            ("rate(0 minutes)", "from 1 to 99999"),
            ("rate(1 minutes)", "rate(1 minute)"),
            ("rate(5 minute)", "rate(5 minutes)"),
            ("rate(5 weeks)", "unit"),
            ("rate(five minutes)", "from 1 to 99999"),
            ("rate(2147483647 days)", "from 1 to 99999"),
            ("rate(100000 minutes)", "from 1 to 99999"),
            ("rate(-1 days)", "from 1 to 99999"),
            ("rate(+5 minutes)", "from 1 to 99999"),
            ("cron(0 * * * *)", "6 fields"),
            ("cron(0  * * * ? *)", "single spaces"),
            ("cron(0 12 1 * MON *)", "both set"),
            ("cron(0 12 ? * ? *)", "cannot both be '?'"),
            ("cron(0 25 * * ? *)", "cron(0 25"),
            ("cron(0 12 * * ? 2300)", "outside 1970-2199"),
            ("cron(0 12 * * ? 2024/0)", "year step '0'"),
            ("cron(0 12 * * ? 1900-2030)", "year 1900"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn rate_periods() {
        assert_eq!(
            parse("rate(99999 days)").unwrap(),
            ScheduleExpression::Rate(Rate {
                value: 99_999,
                unit: RateUnit::Day
            })
        );
        let ScheduleExpression::Rate(rate) = parse("rate(90 minutes)").unwrap() else {
            panic!("a rate")
        };
        assert_eq!(rate.every(), Duration::minutes(90));
    }
}
