//! Placeholders such as `{bucket}` and `{key}` in a job's `command` and `environment`.
//!
//! Each command element and each environment value is one template, rendered on its own into
//! a plain string: nothing is ever joined into, or passed through, a shell. `{{` and `}}` are
//! literal braces.

use std::collections::BTreeMap;

use strfmt::{FmtError, Formatter};

/// Placeholders an S3 object event provides.
pub const S3_PLACEHOLDERS: &[&str] = &[
    "job",
    "bucket",
    "key",
    "size",
    "etag",
    "version_id",
    "event_time",
];
/// Placeholders a schedule tick provides.
pub const SCHEDULE_PLACEHOLDERS: &[&str] = &["job", "schedule", "scheduled_time"];

/// Values for one rendering, by placeholder name.
pub type Vars = BTreeMap<&'static str, String>;

/// Renders `template` with `vars`; an unknown placeholder or a stray brace is an error
/// naming it.
pub fn render(template: &str, vars: &Vars) -> Result<String, String> {
    strfmt::strfmt_map(template, |mut fmt: Formatter| match vars.get(fmt.key) {
        Some(value) => fmt.str(value),
        None => Err(FmtError::KeyError(fmt.key.to_string())),
    })
    .map_err(describe)
}

/// Checks that `template` only uses placeholders from `available`.
pub fn check(template: &str, available: &[&'static str]) -> Result<(), String> {
    let vars: Vars = available
        .iter()
        .map(|name| (*name, String::new()))
        .collect();
    render(template, &vars).map(|_| ()).map_err(|reason| {
        match reason.strip_prefix("unknown placeholder ") {
            Some(name) => format!(
                "placeholder {name} does not exist here (available: {})",
                list(available)
            ),
            None => reason,
        }
    })
}

fn describe(error: FmtError) -> String {
    match error {
        FmtError::KeyError(key) => format!("unknown placeholder {{{key}}}"),
        FmtError::Invalid(why) => {
            format!("bad template ({why}; write {{{{ or }}}} for a literal brace)")
        }
        FmtError::TypeError(why) => format!("bad placeholder format ({why})"),
    }
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{{{n}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars::from([
            ("bucket", "uploads".to_string()),
            ("key", "a b/ü.jpg".to_string()),
        ])
    }

    #[test]
    fn renders_each_placeholder_verbatim() {
        assert_eq!(
            render("s3://{bucket}/{key}", &vars()).unwrap(),
            "s3://uploads/a b/ü.jpg"
        );
    }

    #[test]
    fn shell_metacharacters_stay_data() {
        let vars = Vars::from([("key", "x; rm -rf / $(id)".to_string())]);
        assert_eq!(render("{key}", &vars).unwrap(), "x; rm -rf / $(id)");
    }

    #[test]
    fn doubled_braces_are_literal() {
        assert_eq!(
            render("{{not}} {bucket}", &vars()).unwrap(),
            "{not} uploads"
        );
    }

    #[test]
    fn unknown_placeholder_is_named() {
        let err = check("--out {bucket}/{nope}", S3_PLACEHOLDERS).unwrap_err();
        assert!(err.contains("{nope}"), "{err}");
        assert!(err.contains("{bucket}"), "lists what is available: {err}");
    }

    #[test]
    fn stray_brace_is_an_error() {
        assert!(check("oops {", S3_PLACEHOLDERS).is_err());
        assert!(check("{key", S3_PLACEHOLDERS).is_err());
    }

    #[test]
    fn schedule_has_no_object_placeholders() {
        assert!(check("{key}", SCHEDULE_PLACEHOLDERS).is_err());
        assert!(check("{scheduled_time}", SCHEDULE_PLACEHOLDERS).is_ok());
    }
}
