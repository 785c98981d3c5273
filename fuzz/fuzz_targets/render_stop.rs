//! Hostile ECS stop events through alert rendering. Input that is a JSON object is the event
//! (or its `detail`) as it is. Otherwise the first four bytes amplify the event (a task ARN of
//! up to 300 KB, up to 1,020 containers, container names of up to 200 KB, up to 4 copies in
//! one digest) and the rest is the `detail` as JSON, or, when it is not JSON, the
//! `stoppedReason`. Whatever the event, what is published fits SNS's 256 KB (message and
//! attributes), and no text body, attribute or subject holds a control, line-separator or
//! format character other than the body's own line breaks.
#![no_main]

use std::sync::LazyLock;

use jobrunner_core::Config;
use jobrunner_core::alert::{
    Alert, AwsLogs, ContainerDefinitionInfo, MAX_PUBLISH_BYTES, MAX_SUBJECT_CHARS, StoppedTask,
    TaskDefinitionInfo, TaskDefinitionLookup, render,
};
use jobrunner_core::config::Format;
use jobrunner_core::event::TaskStateChange;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    Config::parse(include_str!("../../examples/jobrunner.toml"), Format::Toml).expect("example config")
});

/// Control, separator or format characters (the same categories as the renderer's rule,
/// listed independently here so a bug in one is not hidden by the other).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{ad}' | '\u{61c}' | '\u{180e}' | '\u{feff}')
        || ('\u{200b}'..='\u{200f}').contains(&c)
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2060}'..='\u{206f}').contains(&c)
        || ('\u{fff9}'..='\u{fffb}').contains(&c)
        || ('\u{e0000}'..='\u{e007f}').contains(&c)
}

fn detail(rest: &[u8]) -> Value {
    let text = String::from_utf8_lossy(rest);
    match serde_json::from_str::<Value>(&text) {
        Ok(value) if value.is_object() => value,
        _ => json!({
            "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/jobs/0123456789abcdef",
            "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/jobs",
            "lastStatus": "STOPPED", "stopCode": "UserInitiated", "stoppedReason": text,
            "startedBy": format!("jobrunner/{text}"),
            "containers": [{"name": text, "exitCode": 137, "reason": text}],
            "overrides": {"containerOverrides": [{"name": "app", "environment": [
                {"name": "JOB_NAME", "value": text}, {"name": "JOB_KEY", "value": text},
                {"name": "JOB_BUCKET", "value": "uploads"}]}]},
        }),
    }
}

fuzz_target!(|data: &[u8]| {
    // A whole event (or detail) as JSON is rendered as it is; anything else is amplified.
    let whole = serde_json::from_slice::<Value>(data).ok().filter(Value::is_object);
    let (arn_repeat, containers, name_repeat, copies, mut detail) = match whole {
        Some(event) => (0, 0, 0, 2, event.get("detail").cloned().unwrap_or(event)),
        None if data.len() >= 4 => (
            data[0] as usize * 1_200,
            data[1] as usize * 4,
            data[2] as usize * 800,
            1 + data[3] as usize % 4,
            detail(&data[4..]),
        ),
        None => return,
    };
    let Some(object) = detail.as_object_mut() else { return };
    if arn_repeat > 0 {
        let arn = object.get("taskArn").and_then(Value::as_str).unwrap_or("arn:aws:ecs:us-east-1:1:task/c/").to_owned();
        object.insert("taskArn".into(), json!(format!("{arn}{}", "\u{202e}\n".repeat(arn_repeat / 2))));
    }
    if containers > 0 {
        // At most 1 MB of names in all, to keep an execution short (the unit test
        // `a_hostile_stop_event_fits_in_one_sns_message` has a 200 KB name among 1,000).
        let name_len = name_repeat.min(1_000_000 / containers).max(1);
        let list: Vec<Value> = (0..containers)
            .map(|i| json!({"name": format!("{i}{}", "n\r".repeat(name_len / 2)), "exitCode": 137, "reason": "OutOfMemoryError\nConsole: https://evil.example"}))
            .collect();
        object.insert("containers".into(), Value::Array(list));
    }
    let Ok(change) = TaskStateChange::from_detail(&detail) else { return };
    let definition = TaskDefinitionInfo {
        containers: change
            .containers
            .iter()
            .take(50)
            .map(|c| ContainerDefinitionInfo {
                name: c.name.clone(),
                essential: true,
                awslogs: Some(AwsLogs { group: format!("/ecs/{}", c.name), region: None, stream_prefix: Some("ecs\n".into()) }),
            })
            .collect(),
    };
    let mut tasks: Vec<StoppedTask> = (0..copies)
        .map(|i| {
            let mut change = change.clone();
            change.task_arn.push_str(&i.to_string());
            let lookup = if i % 2 == 0 { TaskDefinitionLookup::Found(definition.clone()) } else { TaskDefinitionLookup::Failed("lookup\nfailed".into()) };
            StoppedTask::new(&CONFIG, change, lookup)
        })
        .collect();
    // One alert for the first task, and a digest of all of them.
    let mut digest = Alert::single(tasks.remove(0));
    let single = digest.clone();
    digest.tasks.extend(tasks);
    for alert in [single, digest] {
        let publish = render(&alert);
        let attribute_bytes: usize = publish.attributes.iter().map(|(k, v)| k.len() + "String".len() + v.len()).sum();
        assert!(publish.message.len() + attribute_bytes <= MAX_PUBLISH_BYTES, "{} bytes", publish.size());
        assert!(publish.size() <= MAX_PUBLISH_BYTES);
        assert!(publish.subject.len() <= MAX_SUBJECT_CHARS && publish.subject.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{:?}", publish.subject);
        for (name, value) in &publish.attributes {
            assert!(!value.chars().any(is_unsafe), "attribute {name} = {value:?}");
        }
        assert!(!publish.message.chars().any(is_unsafe), "raw unsafe character in the message");
        let structure: Value = serde_json::from_str(&publish.message).expect("message is JSON");
        for protocol in ["default", "email"] {
            let text = structure[protocol].as_str().expect("text body");
            assert!(!text.chars().any(|c| c != '\n' && is_unsafe(c)), "unsafe character in the {protocol} body");
            assert!(!text.lines().any(|l| l.starts_with("Console:") && !l.starts_with("Console:     https://")), "forged line");
        }
        for protocol in ["sqs", "lambda", "https"] {
            let document = structure[protocol].as_str().expect("document");
            assert!(!document.chars().any(is_unsafe), "raw unsafe character in the {protocol} document");
            let _: Value = serde_json::from_str(document).expect("document is JSON");
        }
    }
});
