//! The user's configuration: one TOML or JSON file shared by every function and the CLI.
//!
//! `Config::parse` deserializes strictly (unknown fields are errors) and then validates every
//! cross-field rule, so a config that loads is one the planner can always use.

mod model;
mod validate;

pub use model::*;
pub use validate::{STARTED_BY_PREFIX, check_name, validate_started_by};

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
                    let path = e.path().to_string();
                    Error::config(
                        if path == "." { "(root)".into() } else { path },
                        e.into_inner().to_string(),
                    )
                })?
            }
            Format::Toml => {
                let de = toml::Deserializer::parse(text)
                    .map_err(|e| Error::config("(root)", one_line(&e.to_string())))?;
                serde_path_to_error::deserialize(de).map_err(|e| {
                    let path = e.path().to_string();
                    Error::config(
                        if path == "." { "(root)".into() } else { path },
                        one_line(e.into_inner().message()),
                    )
                })?
            }
        };
        validate::validate(&config)?;
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

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
