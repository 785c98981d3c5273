//! The config's JSON Schema, derived from the Rust types (`jobrunner schema` prints it).
//!
//! Fields come from the structs (unknown fields are `additionalProperties: false`), enums list
//! their names, and the parsed value types (schedule expressions, time zones, clock times,
//! durations) carry the pattern or list of names their parser accepts.

use schemars::generate::SchemaSettings;

use super::Config;

/// The JSON Schema (draft 2020-12) of a config document.
pub fn json_schema() -> serde_json::Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<Config>();
    schema.insert("title".into(), "jobrunner configuration".into());
    schema.to_value()
}
