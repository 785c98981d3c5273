//! Scheduled capacity: `[[workers.<name>.windows]]`, recurring periods with their own bounds.
//!
//! Rules (parsed by the config's window types, bounds checked by
//! [`crate::config::validate_windows`], applied by [`bounds_at`]):
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

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

pub use crate::config::validate_windows;
use crate::config::{ScalingWindow, WindowZone, Worker};

/// The task bounds in force at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    pub min: u32,
    pub max: u32,
    /// Index of the active window in `windows`, or `None` for the worker's own bounds.
    pub window: Option<usize>,
}

/// Minute of the day and weekday (Monday = 0) of `now` in `zone`, and of the day before.
fn local_clock<Z: TimeZone>(now: DateTime<Utc>, zone: &Z) -> (u16, usize, usize) {
    let local = now.with_timezone(zone);
    let minute = (local.hour() * 60 + local.minute()) as u16;
    let today = local.weekday().num_days_from_monday() as usize;
    let yesterday = (local - Duration::days(1)).weekday().num_days_from_monday() as usize;
    (minute, today, yesterday)
}

/// The days a window applies, Monday first (every day when `days` is empty).
fn days(window: &ScalingWindow) -> [bool; 7] {
    if window.days.is_empty() {
        return [true; 7];
    }
    let mut set = [false; 7];
    for span in &window.days {
        for (day, on) in span.days().into_iter().enumerate() {
            set[day] |= on;
        }
    }
    set
}

/// Whether `window` is active at `now`.
pub fn contains(window: &ScalingWindow, now: DateTime<Utc>) -> bool {
    let (minute, today, yesterday) = match window.timezone.clone().unwrap_or_default() {
        WindowZone::Named(zone) => local_clock(now, &zone.tz()),
        WindowZone::Fixed { offset, .. } => local_clock(now, &offset),
    };
    let days = days(window);
    let (start, end) = (window.start.minutes(), window.end.minutes());
    if start < end {
        days[today] && (start..end).contains(&minute)
    } else {
        // Overnight: the evening part belongs to today, the morning part to yesterday.
        (days[today] && minute >= start) || (days[yesterday] && minute < end)
    }
}

/// The bounds in force at `now`: the first active window's, else the worker's own.
pub fn bounds_at(worker: &Worker, now: DateTime<Utc>) -> Bounds {
    for (i, window) in worker.windows.iter().enumerate() {
        if contains(window, now) {
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
        window
            .days
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let zone = window
        .timezone
        .as_ref()
        .map_or_else(|| "UTC".to_string(), ToString::to_string);
    format!("{days} {}-{} {zone}", window.start, window.end)
}
