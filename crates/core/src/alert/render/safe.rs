//! The one rule for untrusted text in alerts. Every field of a stopped task's event can be
//! chosen by whoever calls RunTask or StopTask (`stoppedReason`, container names and reasons,
//! `startedBy`, the `JOB_*` variables, even the ARNs), so no field may add a line to an email,
//! reorder what a reader sees, or hide text. The characters that could: controls (Unicode `Cc`:
//! CR, LF, tab, NUL, DEL, C1), line and paragraph separators (`Zl`, `Zp`: U+2028, U+2029) and
//! format characters (`Cf`: bidi overrides and isolates, zero-width characters, the BOM,
//! invisible tag characters).
//!
//! - Text (the `default`/`email` body, message attributes): each such character is written as
//!   a visible escape, `\n`, `\r`, `\t` or `\u{202e}` ([`text`]).
//! - JSON (the document for `sqs`/`lambda`/`https`): values stay exact for machines; each such
//!   character is written as a JSON `\uXXXX` escape, which serde_json does for C0 controls only
//!   ([`json`]).
//!
//! The subject is stricter still (printable ASCII, see `subject.rs`).

use std::borrow::Cow;
use std::fmt::Write as _;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Whether `c` can break a line, reorder or hide text.
pub fn is_unsafe(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// `text` with every unsafe character written as a visible escape (`\n`, `\u{202e}`).
/// Idempotent: escapes contain only safe characters.
pub fn text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Serialized JSON with every unsafe character (inside its strings, the only place JSON text
/// can hold one) written as a `\uXXXX` escape: the same values, no raw unsafe character.
pub fn json(serialized: String) -> String {
    if !serialized.chars().any(is_unsafe) {
        return serialized;
    }
    let mut out = String::with_capacity(serialized.len() + 16);
    for c in serialized.chars() {
        if is_unsafe(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_characters() {
        for c in [
            '\n',
            '\r',
            '\t',
            '\0',
            '\u{7f}',
            '\u{85}',
            '\u{2028}',
            '\u{2029}',
            '\u{202e}',
            '\u{2066}',
            '\u{200b}',
            '\u{feff}',
            '\u{e0041}',
            '\u{61c}',
            '\u{ad}',
        ] {
            assert!(is_unsafe(c), "{c:?}");
        }
        for c in ['a', ' ', 'é', '☃', '😀', '\u{301}', '\\', '"', '\u{a0}'] {
            assert!(!is_unsafe(c), "{c:?}");
        }
    }

    #[test]
    fn text_escapes_visibly_and_is_idempotent() {
        let hostile = "ok\r\nConsole: x\u{2028}y\u{202e}z\0\u{e0041}\t";
        let escaped = text(hostile);
        assert_eq!(
            escaped,
            "ok\\r\\nConsole: x\\u{2028}y\\u{202e}z\\u{0}\\u{e0041}\\t"
        );
        assert_eq!(text(&escaped), escaped);
        assert!(matches!(text("plain café"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_keeps_the_values_and_drops_the_raw_characters() {
        let value = serde_json::json!({"reason": "a\u{2028}b\u{202e}c\u{7f}\u{85}\u{e0041}\n"});
        let escaped = json(value.to_string());
        assert!(!escaped.chars().any(is_unsafe), "{escaped}");
        assert!(escaped.contains("\\u2028") && escaped.contains("\\udb40\\udc41"));
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, value);
    }
}
