//! The subject line: printable ASCII, under 100 characters, most important first.

use super::*;

/// `[jobrunner] OOM thumbnails exit 137`; digests add the count:
/// `[jobrunner] OOM thumbnails: 12 tasks, exit 137`. Printable ASCII, under 100 characters.
pub fn subject(alert: &Alert) -> String {
    let details: Vec<String> = alert.tasks.iter().map(subject_detail).collect();
    let common = details
        .first()
        .filter(|first| details.iter().all(|d| d == *first))
        .cloned()
        .unwrap_or_default();
    let text = if alert.is_digest() {
        let detail = common.trim_start_matches(':').trim();
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(", {detail}")
        };
        format!(
            "{SUBJECT_PREFIX} {} {}: {} tasks{detail}",
            alert.class.label(),
            alert.name,
            alert.tasks.len()
        )
    } else {
        format!(
            "{SUBJECT_PREFIX} {} {}{common}",
            alert.class.label(),
            alert.name
        )
    };
    clean_subject(&text)
}

/// What follows the name in a subject, e.g. ` exit 1 (app)` or `: CannotPullContainerError`.
pub(super) fn subject_detail(task: &StoppedTask) -> String {
    let c = &task.classification;
    let several = task.change.containers.len() > 1;
    match c.class {
        Class::NonZeroExit | Class::Oom => {
            let mut detail = c
                .exit_code
                .map(|code| format!(" exit {code}"))
                .unwrap_or_default();
            if let (true, Some(container)) = (several, &c.container) {
                let _ = write!(detail, " ({container})");
            }
            detail
        }
        Class::FailedToStart | Class::Unknown => {
            match c.reason.as_deref().or(task.change.stop_code.as_deref()) {
                Some(reason) => format!(": {}", reason_head(reason)),
                None => String::new(),
            }
        }
        Class::Unhealthy => match c.reason.as_deref() {
            Some(r) if r.contains("ELB") => ": ELB health checks".into(),
            Some(r) if r.to_ascii_lowercase().contains("container health") => {
                ": container health checks".into()
            }
            _ => String::new(),
        },
        Class::SpotInterruption => match task.change.stop_code.as_deref() {
            Some("TerminationNotice") => " (TerminationNotice)".into(),
            _ => String::new(),
        },
        Class::Succeeded
        | Class::ScaledIn
        | Class::UserStopped
        | Class::Timeout
        | Class::LaunchFailed
        | Class::MissedSchedule => String::new(),
    }
}

/// The error name of a reason (`CannotPullContainerError: pull image…` → `CannotPullContainerError`).
pub(super) fn reason_head(reason: &str) -> &str {
    let head = reason.split(':').next().unwrap_or(reason).trim();
    if head.is_empty() || head.len() > 60 {
        reason.trim()
    } else {
        head
    }
}

/// Printable ASCII only, one line, under 100 characters.
pub fn clean_subject(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        let ch = match ch {
            ' '..='~' => ch,
            c if c.is_whitespace() || c.is_control() => ' ',
            _ => '?',
        };
        if !(ch == ' ' && (out.is_empty() || out.ends_with(' '))) {
            out.push(ch);
        }
    }
    let out = out.trim_end().to_owned();
    if out.len() <= MAX_SUBJECT_CHARS {
        return out;
    }
    format!("{}...", out[..MAX_SUBJECT_CHARS - 3].trim_end())
}
