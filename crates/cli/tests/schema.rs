//! `jobrunner schema`, `jobrunner schedules` bounds and validation warnings, as a user runs them.

use std::process::Output;

mod common;

use common::{jobrunner, repo};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn schema_prints_the_config_json_schema() {
    let output = jobrunner(&["schema"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["additionalProperties"], false);
    for field in ["defaults", "jobs", "triggers", "workers", "alerts", "state"] {
        assert!(schema["properties"].get(field).is_some(), "{field}");
    }
    let classes = schema["$defs"]["Class"].to_string();
    for class in ["succeeded", "scaled_in", "user_stopped", "non_zero_exit"] {
        assert!(classes.contains(class), "{class}: {classes}");
    }
    assert_eq!(schema, jobrunner_core::config::json_schema());
}

#[test]
fn schedules_count_beyond_the_limit_is_a_one_line_error() {
    let config = repo("examples/jobrunner.toml");
    for count in ["3000000000", "0", "10001"] {
        let output = jobrunner(&[
            "schedules",
            "--config",
            config.to_str().unwrap(),
            "--count",
            count,
        ]);
        assert_eq!(output.status.code(), Some(1), "{count}");
        let message = stderr(&output);
        assert_eq!(message.trim_end().lines().count(), 1, "{message}");
        assert!(message.contains("--count"), "{message}");
        assert!(!message.contains("panicked"), "{message}");
        assert!(output.stdout.is_empty());
    }
    let output = jobrunner(&[
        "schedules",
        "--config",
        config.to_str().unwrap(),
        "--from",
        "2026-11-22T05:10:00Z",
        "--count",
        "10000",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().count(),
        10_001
    );
}

#[test]
fn validate_warns_about_placeholders_in_shell_scripts() {
    let text = std::fs::read_to_string(repo("examples/jobrunner.toml"))
        .unwrap()
        .replace(
            r#"command = ["resize", "--input", "s3://{bucket}/{key}", "--width", "512"]"#,
            r#"command = ["sh", "-c", "resize --input s3://{bucket}/{key}"]"#,
        );
    let path =
        std::env::temp_dir().join(format!("jobrunner-cli-{}-shell.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let output = jobrunner(&["validate", "--config", path.to_str().unwrap()]);
    std::fs::remove_file(&path).ok();
    assert!(
        output.status.success(),
        "a warning does not fail validation"
    );
    let message = stderr(&output);
    assert!(
        message.contains("WARNING: jobs.thumbnails.command[2]"),
        "{message}"
    );
    assert!(message.contains("sh -c"), "{message}");
}
