//! Placeholders such as `{bucket}` and `{key}` in a job's `command` and `environment`.
//!
//! Each command element and each environment value is one template, rendered on its own into
//! a plain string: nothing is ever joined into, or passed through, a shell. `{{` and `}}` are
//! literal braces. A placeholder is only ever a plain `{name}`: no format specs (`{key:.3}`,
//! `{key:>100000}`), no spaces, so a value is always inserted whole and as it is.

use std::collections::BTreeMap;

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

/// One piece of a parsed template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'t> {
    /// Text copied as it is (`{{`/`}}` already turned into single braces).
    Text(&'t str),
    /// A `{name}` placeholder.
    Placeholder(&'t str),
}

/// Splits `template` into text and placeholders. A placeholder is `{` + a name (a lowercase
/// letter, then lowercase letters, digits and `_`) + `}`; any other brace must be doubled.
pub fn parse(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let bad = |why: String| format!("bad template ({why}; write {{{{ or }}}} for a literal brace)");
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        if at > 0 {
            pieces.push(Piece::Text(&rest[..at]));
        }
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{{") {
            pieces.push(Piece::Text("{"));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            pieces.push(Piece::Text("}"));
            rest = after;
        } else if tail.starts_with('}') {
            return Err(bad("a single '}'".into()));
        } else {
            let Some(end) = tail.find('}') else {
                return Err(bad("'{' is never closed".into()));
            };
            let inside = &tail[1..end];
            let plain = inside.starts_with(|c: char| c.is_ascii_lowercase())
                && inside
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !plain {
                return Err(format!(
                    "placeholder {{{inside}}} is not a plain {{name}}: format specs, spaces and other characters are not allowed (write {{{{ or }}}} for a literal brace)"
                ));
            }
            pieces.push(Piece::Placeholder(inside));
            rest = &tail[end + 1..];
        }
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// Renders `template` with `vars`; an unknown placeholder or a stray brace is an error
/// naming it.
pub fn render(template: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    for piece in parse(template)? {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Placeholder(name) => match vars.get(name) {
                Some(value) => out.push_str(value),
                None => return Err(format!("unknown placeholder {{{name}}}")),
            },
        }
    }
    Ok(out)
}

/// The placeholders `template` uses (empty when it has none or does not parse).
pub fn placeholders(template: &str) -> Vec<&str> {
    parse(template)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Placeholder(name) => Some(name),
            Piece::Text(_) => None,
        })
        .collect()
}

/// Checks that `template` only uses placeholders from `available`.
pub fn check(template: &str, available: &[&'static str]) -> Result<(), String> {
    for name in placeholders_checked(template)? {
        if !available.contains(&name) {
            return Err(format!(
                "placeholder {{{name}}} does not exist here (available: {})",
                list(available)
            ));
        }
    }
    Ok(())
}

fn placeholders_checked(template: &str) -> Result<Vec<&str>, String> {
    parse(template)?;
    Ok(placeholders(template))
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
    fn only_plain_placeholders() {
        for template in [
            "{key:.3}",
            "{key:>100000}",
            "{ key }",
            "{key!r}",
            "{0}x{}",
            "{Key}",
            "{key}}",
        ] {
            let err = check(template, S3_PLACEHOLDERS).unwrap_err();
            assert!(
                err.contains("not a plain") || err.contains("bad template"),
                "{template}: {err}"
            );
            assert!(render(template, &vars()).is_err(), "{template}");
        }
        assert_eq!(
            render("{{key:.3}} {key}", &vars()).unwrap(),
            "{key:.3} a b/ü.jpg",
            "doubled braces stay literal, even around a format spec"
        );
        assert_eq!(placeholders("a{key}b{bucket}{{x}}"), ["key", "bucket"]);
    }

    #[test]
    fn long_values_are_inserted_whole() {
        let vars = Vars::from([("key", "k".repeat(5000))]);
        assert_eq!(render("{key}", &vars).unwrap().len(), 5000);
    }

    #[test]
    fn schedule_has_no_object_placeholders() {
        assert!(check("{key}", SCHEDULE_PLACEHOLDERS).is_err());
        assert!(check("{scheduled_time}", SCHEDULE_PLACEHOLDERS).is_ok());
    }
}
