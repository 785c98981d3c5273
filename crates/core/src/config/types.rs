//! Value types of the config that are more than a number or a string: time zones and
//! human-written durations. Each parses once, when the config loads, and writes back the text
//! it was read from.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono_tz::{TZ_VARIANTS, Tz};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// An IANA time zone such as `Europe/Berlin` (daylight saving time included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZone(pub Tz);

impl TimeZone {
    pub const UTC: TimeZone = TimeZone(Tz::UTC);

    pub fn tz(self) -> Tz {
        self.0
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

impl FromStr for TimeZone {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        name.parse::<Tz>().map(TimeZone).map_err(|_| {
            format!(
                "'{name}' is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC)"
            )
        })
    }
}

impl TryFrom<String> for TimeZone {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        name.parse()
    }
}

impl From<TimeZone> for String {
    fn from(zone: TimeZone) -> String {
        zone.to_string()
    }
}

impl JsonSchema for TimeZone {
    fn schema_name() -> Cow<'static, str> {
        "TimeZone".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
        json_schema!({
            "type": "string",
            "description": "An IANA time zone name, e.g. Europe/Berlin",
            "enum": names,
        })
    }
}

/// A duration written for people: `30m`, `1h 30m`, `90 seconds`, `2d`.
///
/// One or more `<number><unit>` parts separated by single spaces (a space may also sit between
/// a number and its unit). Units: `ms`; `s`, `sec`, `secs`, `second`, `seconds`; `m`, `min`,
/// `mins`, `minute`, `minutes`; `h`, `hr`, `hrs`, `hour`, `hours`; `d`, `day`, `days`; `w`,
/// `week`, `weeks`. humantime does the arithmetic; the text is kept and written back as read.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct HumanDuration {
    text: String,
    duration: std::time::Duration,
}

/// Units a [`HumanDuration`] accepts, longest first (the order the schema's pattern tries them).
const DURATION_UNITS: &[&str] = &[
    "seconds", "minutes", "second", "minute", "hours", "weeks", "secs", "mins", "hour", "days",
    "week", "sec", "min", "hrs", "day", "ms", "hr", "s", "m", "h", "d", "w",
];

impl HumanDuration {
    /// `n` seconds, written `<n>s`.
    pub fn from_secs_text(n: u64) -> HumanDuration {
        HumanDuration {
            text: format!("{n}s"),
            duration: std::time::Duration::from_secs(n),
        }
    }

    /// `n` minutes, written `<n>m`.
    pub fn from_minutes(n: u64) -> HumanDuration {
        HumanDuration {
            text: format!("{n}m"),
            duration: std::time::Duration::from_secs(n * 60),
        }
    }

    pub fn duration(&self) -> std::time::Duration {
        self.duration
    }

    pub fn as_secs(&self) -> u64 {
        self.duration.as_secs()
    }
}

impl PartialEq for HumanDuration {
    fn eq(&self, other: &Self) -> bool {
        self.duration == other.duration
    }
}
impl Eq for HumanDuration {}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "'{text}' is not a duration: write e.g. 30s, 15m, 1h 30m, 2d (units ms, s, m, h, d, w)"
            )
        };
        if !is_duration_text(text) {
            return Err(bad());
        }
        let duration = humantime::parse_duration(text).map_err(|e| format!("'{text}': {e}"))?;
        Ok(HumanDuration {
            text: text.to_string(),
            duration,
        })
    }
}

/// The grammar of the schema's pattern: `<digits>[ ]<unit>` parts joined by single spaces.
fn is_duration_text(text: &str) -> bool {
    let mut rest = text;
    loop {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        rest = rest.strip_prefix(' ').unwrap_or(rest);
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        if !DURATION_UNITS.contains(&&rest[..letters]) {
            return false;
        }
        rest = &rest[letters..];
        if rest.is_empty() {
            return true;
        }
        match rest.strip_prefix(' ') {
            Some(next) => rest = next,
            None => return false,
        }
    }
}

impl TryFrom<String> for HumanDuration {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<HumanDuration> for String {
    fn from(duration: HumanDuration) -> String {
        duration.text
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "HumanDuration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let unit = format!("(?:{})", DURATION_UNITS.join("|"));
        json_schema!({
            "type": "string",
            "description": "A duration such as 30s, 15m, 1h 30m or 2d",
            "pattern": format!("^[0-9]+ ?{unit}(?: [0-9]+ ?{unit})*$"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_write_back_as_read() {
        for (text, secs) in [
            ("30s", 30),
            ("15m", 900),
            ("30m", 1800),
            ("1h 30m", 5400),
            ("90 seconds", 90),
            ("2d", 172_800),
            ("1w", 604_800),
            ("1 hour", 3600),
            ("1h 1m 1s", 3661),
        ] {
            let duration: HumanDuration = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(duration.as_secs(), secs, "{text}");
            assert_eq!(duration.to_string(), text);
            let json = serde_json::to_value(&duration).unwrap();
            assert_eq!(json, text, "serializes back to the same text");
            let again: HumanDuration = serde_json::from_value(json).unwrap();
            assert_eq!(again.to_string(), text);
        }
        assert_eq!(
            "250ms".parse::<HumanDuration>().unwrap().duration(),
            std::time::Duration::from_millis(250)
        );
        assert_eq!(
            "90m".parse::<HumanDuration>().unwrap(),
            "1h 30m".parse::<HumanDuration>().unwrap(),
            "equal durations compare equal whatever their text"
        );
    }

    #[test]
    fn bad_durations_say_how_to_write_one() {
        for text in [
            "", "30", "m", "30 m m", "1.5h", "30x", "-5m", "1h  30m", " 30m", "30m ", "1M",
            "2 years",
        ] {
            let err = text.parse::<HumanDuration>().unwrap_err();
            assert!(err.contains("not a duration"), "{text:?}: {err}");
        }
        let err = "99999999999999999999w"
            .parse::<HumanDuration>()
            .unwrap_err();
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn time_zones_are_iana_names() {
        let zone: TimeZone = "Europe/Berlin".parse().unwrap();
        assert_eq!(zone.tz(), Tz::Europe__Berlin);
        assert_eq!(serde_json::to_value(zone).unwrap(), "Europe/Berlin");
        let err = "Mars/Olympus".parse::<TimeZone>().unwrap_err();
        assert!(err.contains("not an IANA time zone"), "{err}");
    }
}
