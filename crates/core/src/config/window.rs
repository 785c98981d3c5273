//! The value types of a scaling window (`[[workers.<name>.windows]]`): days, clock times and
//! the zone they are read in. Parsed when the config loads; `scaling` evaluates them.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono::FixedOffset;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::types::TimeZone;

/// Day names, Monday first (the index is `Weekday::num_days_from_monday`).
pub const DAY_NAMES: [&str; 7] = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
const MINUTES_PER_DAY: u16 = 24 * 60;

/// One entry of `days`: a day (`MON`) or a range of days (`MON-FRI`; `FRI-MON` wraps over the
/// weekend), in any case.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct DaySpan {
    text: String,
    /// Monday = 0.
    from: usize,
    to: usize,
}

impl DaySpan {
    /// The days the span covers, Monday first.
    pub fn days(&self) -> [bool; 7] {
        let mut set = [false; 7];
        let mut day = self.from;
        loop {
            set[day] = true;
            if day == self.to {
                return set;
            }
            day = (day + 1) % 7;
        }
    }
}

impl FromStr for DaySpan {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let day = |name: &str| {
            let upper = name.to_ascii_uppercase();
            DAY_NAMES.iter().position(|d| *d == upper).ok_or_else(|| {
                format!(
                    "'{text}' is not a day: use MON, TUE, WED, THU, FRI, SAT, SUN or a range such as MON-FRI"
                )
            })
        };
        let (from, to) = match text.split_once('-') {
            None => (day(text)?, day(text)?),
            Some((from, to)) => (day(from)?, day(to)?),
        };
        Ok(DaySpan {
            text: text.to_string(),
            from,
            to,
        })
    }
}

impl TryFrom<String> for DaySpan {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<DaySpan> for String {
    fn from(span: DaySpan) -> String {
        span.text
    }
}

impl fmt::Display for DaySpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A time of day `HH:MM` on a 24-hour clock, as minutes after midnight. As a window's `end`
/// it may also be `24:00` (see [`WindowEnd`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeOfDay(u16);

/// A window's end: a time of day or `24:00`, midnight at the end of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct WindowEnd(u16);

impl TimeOfDay {
    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl WindowEnd {
    pub fn minutes(self) -> u16 {
        self.0
    }
}

fn parse_clock(text: &str, allow_end_of_day: bool) -> Result<u16, String> {
    let bad = || {
        let also = if allow_end_of_day { " (or 24:00)" } else { "" };
        format!("'{text}' is not a time of day: use HH:MM on a 24-hour clock{also}, e.g. 09:30")
    };
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if allow_end_of_day && h == 24 && m == 0 {
        return Ok(MINUTES_PER_DAY);
    }
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn write_clock(f: &mut fmt::Formatter<'_>, minutes: u16) -> fmt::Result {
    write!(f, "{:02}:{:02}", minutes / 60, minutes % 60)
}

macro_rules! clock_type {
    ($ty:ident, $allow_end:expr, $pattern:expr, $description:expr) => {
        impl FromStr for $ty {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                parse_clock(text, $allow_end).map($ty)
            }
        }
        impl TryFrom<String> for $ty {
            type Error = String;
            fn try_from(text: String) -> Result<Self, String> {
                text.parse()
            }
        }
        impl From<$ty> for String {
            fn from(time: $ty) -> String {
                time.to_string()
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_clock(f, self.0)
            }
        }
        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "description": $description,
                    "pattern": $pattern,
                })
            }
        }
    };
}

clock_type!(
    TimeOfDay,
    false,
    "^(?:[01][0-9]|2[0-3]):[0-5][0-9]$",
    "HH:MM on a 24-hour clock"
);
clock_type!(
    WindowEnd,
    true,
    "^(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00)$",
    "HH:MM on a 24-hour clock, or 24:00"
);

/// Where a window's clock times are read: an IANA zone (following daylight saving time) or a
/// fixed offset from UTC: `Z`, `+HH:MM`, `-HH:MM`, `+HHMM`, `+H`, optionally after `UTC` or
/// `GMT` (any case), at most 14 hours.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum WindowZone {
    Named(TimeZone),
    Fixed { offset: FixedOffset, text: String },
}

impl Default for WindowZone {
    fn default() -> Self {
        WindowZone::Named(TimeZone::UTC)
    }
}

impl FromStr for WindowZone {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if let Ok(zone) = text.parse::<TimeZone>() {
            return Ok(WindowZone::Named(zone));
        }
        parse_offset(text)
            .map(|offset| WindowZone::Fixed {
                offset,
                text: text.to_string(),
            })
            .ok_or_else(|| {
                format!(
                    "'{text}' is neither an IANA time zone (Europe/Berlin) nor a fixed UTC offset (+01:00, -05:00)"
                )
            })
    }
}

/// The grammar of [`OFFSET_PATTERN`], with hours at most 14 (and 14 only as `14:00`).
fn parse_offset(text: &str) -> Option<FixedOffset> {
    let upper = text.to_ascii_uppercase();
    let prefixed = upper
        .strip_prefix("UTC")
        .or_else(|| upper.strip_prefix("GMT"));
    let rest = prefixed.unwrap_or(&upper);
    if rest == "Z" || (rest.is_empty() && prefixed.is_some()) {
        return FixedOffset::east_opt(0);
    }
    let (sign, digits) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    if !digits.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return None;
    }
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) if (1..=2).contains(&h.len()) && m.len() == 2 => (h, m),
        Some(_) => return None,
        None if digits.len() == 4 => digits.split_at(2),
        None if (1..=2).contains(&digits.len()) => (digits, "00"),
        None => return None,
    };
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 14 || m > 59 || (h == 14 && m > 0) {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// Fixed offsets the schema accepts (the same grammar as [`parse_offset`]).
const OFFSET_PATTERN: &str = "^(?:(?:[Uu][Tt][Cc]|[Gg][Mm][Tt])(?:[Zz]|[+-](?:(?:0?[0-9]|1[0-3])(?::[0-5][0-9])?|(?:0[0-9]|1[0-3])[0-5][0-9]|14(?::?00)?))?|[Zz]|[+-](?:(?:0?[0-9]|1[0-3])(?::[0-5][0-9])?|(?:0[0-9]|1[0-3])[0-5][0-9]|14(?::?00)?))$";

impl fmt::Display for WindowZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowZone::Named(zone) => zone.fmt(f),
            WindowZone::Fixed { text, .. } => f.write_str(text),
        }
    }
}

impl TryFrom<String> for WindowZone {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<WindowZone> for String {
    fn from(zone: WindowZone) -> String {
        zone.to_string()
    }
}

impl JsonSchema for WindowZone {
    fn schema_name() -> Cow<'static, str> {
        "WindowZone".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let named = generator.subschema_for::<TimeZone>();
        json_schema!({
            "description": "An IANA time zone name or a fixed UTC offset such as +01:00",
            "anyOf": [
                named,
                {"type": "string", "pattern": OFFSET_PATTERN},
            ],
        })
    }
}

impl JsonSchema for DaySpan {
    fn schema_name() -> Cow<'static, str> {
        "DaySpan".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // Day names in any case, without the regex `i` flag that JSON Schema lacks.
        let any_case = |name: &str| {
            name.chars()
                .map(|c| format!("[{}{}]", c, c.to_ascii_lowercase()))
                .collect::<String>()
        };
        let day = format!("(?:{})", DAY_NAMES.map(any_case).join("|"));
        json_schema!({
            "type": "string",
            "description": "A day (MON) or a range of days (MON-FRI)",
            "pattern": format!("^{day}(?:-{day})?$"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_spans() {
        let span: DaySpan = "fri-mon".parse().unwrap();
        assert_eq!(span.days(), [true, false, false, false, true, true, true]);
        assert_eq!(span.to_string(), "fri-mon");
        assert_eq!(
            "WED".parse::<DaySpan>().unwrap().days(),
            [false, false, true, false, false, false, false]
        );
        for bad in ["", "MONDAY", "MON-", " MON", "MON-FRI-SAT"] {
            let err = bad.parse::<DaySpan>().unwrap_err();
            assert!(err.contains("is not a day"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn clock_times() {
        assert_eq!("09:30".parse::<TimeOfDay>().unwrap().minutes(), 570);
        assert_eq!("24:00".parse::<WindowEnd>().unwrap().minutes(), 1440);
        assert_eq!("24:00".parse::<WindowEnd>().unwrap().to_string(), "24:00");
        assert!("24:00".parse::<TimeOfDay>().is_err());
        for bad in ["9:30", "09:60", "25:00", "0930", "09:30:00", "24:01"] {
            assert!(bad.parse::<WindowEnd>().is_err(), "{bad}");
        }
    }

    #[test]
    fn zones() {
        let offset = |text: &str| match text.parse::<WindowZone>() {
            Ok(WindowZone::Fixed { offset, .. }) => Some(offset.local_minus_utc()),
            Ok(WindowZone::Named(zone)) => panic!("{text} parsed as {zone}"),
            Err(_) => None,
        };
        assert_eq!(offset("+01:00"), Some(3600));
        assert_eq!(offset("utc-05:30"), Some(-19800));
        assert_eq!(offset("+0130"), Some(5400));
        assert_eq!(offset("-3"), Some(-10800));
        assert_eq!(offset("Z"), Some(0));
        assert_eq!(offset("utc"), Some(0));
        assert_eq!(offset("+14:00"), Some(50400));
        for bad in [
            "", "+15:00", "+14:30", "+130", "+1:3", "UTC+", "+01:00 ", "CET+1",
        ] {
            assert_eq!(offset(bad), None, "{bad:?}");
        }
        assert_eq!(
            "Europe/Berlin".parse::<WindowZone>().unwrap(),
            WindowZone::Named("Europe/Berlin".parse().unwrap())
        );
    }
}
