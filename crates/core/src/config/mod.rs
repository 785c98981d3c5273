//! The user's configuration: one TOML or JSON file shared by every function and the CLI.
//!
//! `Config::parse` deserializes strictly (unknown fields are errors) and then validates every
//! cross-field rule, so a config that loads is one the planner can always use.

mod expression;
mod model;
mod schema;
mod types;
mod validate;
mod window;

pub use expression::{CronExpression, MAX_RATE_VALUE, Rate, RateUnit, ScheduleExpression};
pub use model::*;
pub use schema::json_schema;
pub use types::{HumanDuration, TimeZone};
pub use validate::{
    RULE_PREFIX, STARTED_BY_PREFIX, Warning, check_name, is_tag_char, validate_started_by,
    validate_windows, warnings,
};
pub use window::{DAY_NAMES, DaySpan, TimeOfDay, WindowEnd, WindowZone};

use std::path::Path;

use crate::error::Error;

/// The two file formats a config may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Json,
}

impl Format {
    /// Chooses the format by file extension (`.json`, otherwise TOML).
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Toml,
        }
    }

    /// Guesses the format of inline text: JSON objects start with `{`.
    pub fn sniff(text: &str) -> Format {
        if text.trim_start().starts_with('{') {
            Format::Json
        } else {
            Format::Toml
        }
    }
}

impl Config {
    /// Parses and validates a config document.
    pub fn parse(text: &str, format: Format) -> Result<Config, Error> {
        let config: Config = match format {
            Format::Json => {
                let de = &mut serde_json::Deserializer::from_str(text);
                serde_path_to_error::deserialize(de).map_err(|e| {
                    let path = named_path(e.path(), || serde_json::from_str(text).ok());
                    Error::config(path, e.into_inner().to_string())
                })?
            }
            Format::Toml => {
                let de = toml::Deserializer::parse(text)
                    .map_err(|e| Error::config("(root)", one_line(&e.to_string())))?;
                serde_path_to_error::deserialize(de).map_err(|e| {
                    let path = named_path(e.path(), || toml::from_str(text).ok());
                    Error::config(path, one_line(e.into_inner().message()))
                })?
            }
        };
        validate::validate(&config)?;
        #[cfg(test)]
        tests::assert_schema_accepts(text, format);
        Ok(config)
    }

    /// Reads a config file; the extension chooses TOML or JSON.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(path.display().to_string(), format!("cannot read file: {e}"))
        })?;
        Config::parse(&text, Format::from_path(path))
    }

    /// Loads the config the way every Lambda function does at init: inline text in
    /// `JOBRUNNER_CONFIG`, or a file named by `JOBRUNNER_CONFIG_FILE`.
    pub fn from_env() -> Result<Config, Error> {
        if let Ok(text) = std::env::var(ENV_INLINE) {
            return Config::parse(&text, Format::sniff(&text));
        }
        match std::env::var(ENV_FILE) {
            Ok(path) => Config::load(Path::new(&path)),
            Err(_) => Err(Error::config(
                "(environment)",
                format!("set {ENV_INLINE} (inline TOML/JSON) or {ENV_FILE} (a path)"),
            )),
        }
    }

    /// The job a trigger names; validation guarantees it exists.
    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.get(name)
    }
}

/// Environment variable holding the config inline.
pub const ENV_INLINE: &str = "JOBRUNNER_CONFIG";
/// Environment variable naming the config file.
pub const ENV_FILE: &str = "JOBRUNNER_CONFIG_FILE";

/// The path of a field that failed to deserialize, with the `name` of each list entry that
/// has one: `triggers.schedule[1] (nightly).expression`. `raw` reads the document loosely
/// (only on this error path) to find those names.
fn named_path(
    path: &serde_path_to_error::Path,
    raw: impl FnOnce() -> Option<serde_json::Value>,
) -> String {
    use serde_path_to_error::Segment;
    let raw = raw();
    let mut node = raw.as_ref();
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                node = node.and_then(|n| n.get(index));
                out.push_str(&format!("[{index}]"));
                if let Some(name) = node.and_then(|n| n.get("name")).and_then(|n| n.as_str()) {
                    out.push_str(&format!(" ({name})"));
                }
            }
            Segment::Map { key } => {
                node = node.and_then(|n| n.get(key));
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    if out.is_empty() { "(root)".into() } else { out }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
