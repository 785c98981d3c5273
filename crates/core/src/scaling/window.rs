//! Scheduled capacity: `[[workers.<name>.windows]]`, recurring periods with their own bounds.
//!
//! Rules (validated by [`validate_windows`], applied by [`bounds_at`]):
//! - `days`: day names `MON`, `TUE`, `WED`, `THU`, `FRI`, `SAT`, `SUN` (any case) or ranges of
//!   them such as `MON-FRI` (`FRI-MON` wraps over the weekend); empty means every day. A window
//!   belongs to the day it starts on.
//! - `start` (inclusive) and `end` (exclusive) are `HH:MM` on a 24-hour clock; `end` may be
//!   `24:00` (midnight at the end of the day). An `end` earlier than `start` makes an overnight
//!   window that runs into the next day. `start == end` is rejected as ambiguous.
//! - `timezone`: an IANA name (`Europe/Berlin`, following daylight saving time), `UTC` (the
//!   default), `Z`, or a fixed offset `+HH:MM` / `-HH:MM` / `UTC+HH:MM`.
//! - `min_tasks` / `max_tasks`: each optional, falling back to the worker's own; at least one
//!   must be set, and the resulting `min_tasks <= max_tasks`. `max_tasks = 0` pauses the worker
//!   for the window (messages wait in the queue).
//! - While several windows are active, the first one in config order wins.

use chrono::{DateTime, Datelike, Duration, FixedOffset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::config::{ScalingWindow, Worker};
use crate::error::Error;

const DAY_NAMES: [&str; 7] = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
const MINUTES_PER_DAY: u16 = 24 * 60;

/// The task bounds in force at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    pub min: u32,
    pub max: u32,
    /// Index of the active window in `windows`, or `None` for the worker's own bounds.
    pub window: Option<usize>,
}

/// A window parsed into numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParsedWindow {
    /// Monday first.
    days: [bool; 7],
    start: u16,
    end: u16,
    zone: Zone,
}

/// Where a window's clock times are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Zone {
    Named(Tz),
    Fixed(FixedOffset),
}

/// Minute of the day and weekday (Monday = 0) of `now` in `zone`, and of the day before.
fn local_clock<Z: TimeZone>(now: DateTime<Utc>, zone: &Z) -> (u16, usize, usize) {
    let local = now.with_timezone(zone);
    let minute = (local.hour() * 60 + local.minute()) as u16;
    let today = local.weekday().num_days_from_monday() as usize;
    let yesterday = (local - Duration::days(1)).weekday().num_days_from_monday() as usize;
    (minute, today, yesterday)
}

impl ParsedWindow {
    /// Whether the window is active at `now`.
    pub(crate) fn contains(&self, now: DateTime<Utc>) -> bool {
        let (minute, today, yesterday) = match &self.zone {
            Zone::Named(tz) => local_clock(now, tz),
            Zone::Fixed(offset) => local_clock(now, offset),
        };
        if self.start < self.end {
            self.days[today] && (self.start..self.end).contains(&minute)
        } else {
            // Overnight: the evening part belongs to today, the morning part to yesterday.
            (self.days[today] && minute >= self.start)
                || (self.days[yesterday] && minute < self.end)
        }
    }
}

/// Validates a worker's scheduled-capacity windows; errors name `{path}.windows[i].field`.
pub fn validate_windows(path: &str, worker: &Worker) -> Result<(), Error> {
    for (i, window) in worker.windows.iter().enumerate() {
        let path = format!("{path}.windows[{i}]");
        parse(&path, window)?;
        if window.min_tasks.is_none() && window.max_tasks.is_none() {
            return Err(Error::config(
                format!("{path}.min_tasks"),
                "a window must set min_tasks, max_tasks or both",
            ));
        }
        let min = window.min_tasks.unwrap_or(worker.min_tasks);
        let max = window.max_tasks.unwrap_or(worker.max_tasks);
        if min > max {
            return Err(Error::config(
                format!("{path}.max_tasks"),
                format!(
                    "the window's max_tasks {max} is below its min_tasks {min} (unset fields fall back to the worker's)"
                ),
            ));
        }
    }
    Ok(())
}

/// The bounds in force at `now`: the first active window's, else the worker's own.
pub fn bounds_at(worker: &Worker, now: DateTime<Utc>) -> Bounds {
    for (i, window) in worker.windows.iter().enumerate() {
        // Validation rejected unparsable windows; should one slip through, it never applies.
        if parse("", window).is_ok_and(|parsed| parsed.contains(now)) {
            return Bounds {
                min: window.min_tasks.unwrap_or(worker.min_tasks),
                max: window.max_tasks.unwrap_or(worker.max_tasks),
                window: Some(i),
            };
        }
    }
    Bounds {
        min: worker.min_tasks,
        max: worker.max_tasks,
        window: None,
    }
}

/// A short description of a window for decision reasons, e.g. `MON-FRI 09:00-17:00 +01:00`.
pub fn describe(window: &ScalingWindow) -> String {
    let days = if window.days.is_empty() {
        "daily".to_string()
    } else {
        window.days.join(",")
    };
    let zone = window.timezone.as_deref().unwrap_or("UTC");
    format!("{days} {}-{} {zone}", window.start, window.end)
}

pub(crate) fn parse(path: &str, window: &ScalingWindow) -> Result<ParsedWindow, Error> {
    let days = parse_days(&format!("{path}.days"), &window.days)?;
    let start = parse_time(&format!("{path}.start"), &window.start, false)?;
    let end = parse_time(&format!("{path}.end"), &window.end, true)?;
    if start == end {
        return Err(Error::config(
            format!("{path}.end"),
            format!(
                "end {} equals start: use start = \"00:00\", end = \"24:00\" for a whole day",
                window.end
            ),
        ));
    }
    let zone = match window
        .timezone
        .as_deref()
        .map(str::trim)
        .map(str::parse::<Tz>)
    {
        Some(Ok(tz)) => Zone::Named(tz),
        _ => Zone::Fixed(parse_offset(
            &format!("{path}.timezone"),
            window.timezone.as_deref(),
        )?),
    };
    Ok(ParsedWindow {
        days,
        start,
        end,
        zone,
    })
}

fn parse_days(path: &str, days: &[String]) -> Result<[bool; 7], Error> {
    if days.is_empty() {
        return Ok([true; 7]);
    }
    let mut set = [false; 7];
    for (i, item) in days.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let day = |name: &str| -> Result<usize, Error> {
            let upper = name.trim().to_ascii_uppercase();
            DAY_NAMES.iter().position(|d| *d == upper).ok_or_else(|| {
                Error::config(
                    &item_path,
                    format!("'{name}' is not a day: use MON, TUE, WED, THU, FRI, SAT, SUN or a range such as MON-FRI"),
                )
            })
        };
        match item.split_once('-') {
            None => set[day(item)?] = true,
            Some((from, to)) => {
                let (from, to) = (day(from)?, day(to)?);
                let mut d = from;
                loop {
                    set[d] = true;
                    if d == to {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
        }
    }
    Ok(set)
}

/// `HH:MM` to minutes after midnight; `24:00` only where `allow_end_of_day`.
fn parse_time(path: &str, text: &str, allow_end_of_day: bool) -> Result<u16, Error> {
    let bad = || {
        Error::config(
            path,
            format!("'{text}' is not a time of day: use HH:MM on a 24-hour clock, e.g. 09:30"),
        )
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

/// `UTC`, `Z`, `+HH:MM`, `-HH:MM`, `UTC+HH:MM`, `UTC-HH:MM` (also without the colon).
fn parse_offset(path: &str, zone: Option<&str>) -> Result<FixedOffset, Error> {
    let Some(zone) = zone.map(str::trim) else {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    };
    let bad = || {
        Error::config(
            path,
            format!(
                "'{zone}' is neither an IANA time zone (Europe/Berlin) nor a fixed UTC offset (+01:00, -05:00)"
            ),
        )
    };
    let upper = zone.to_ascii_uppercase();
    let rest = upper
        .strip_prefix("UTC")
        .or_else(|| upper.strip_prefix("GMT"))
        .unwrap_or(&upper);
    if rest.is_empty() || rest == "Z" {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    }
    let (sign, digits) = match rest.as_bytes()[0] {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() == 4 => digits.split_at(2),
        None if !digits.is_empty() && digits.len() <= 2 => (digits, "00"),
        None => return Err(bad()),
    };
    if h.is_empty()
        || h.len() > 2
        || m.len() != 2
        || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 14 || m > 59 || (h == 14 && m > 0) {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}
