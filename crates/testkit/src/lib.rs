//! Test helpers shared by every crate's unit tests and by the integration tests: the sample
//! events in `events/`, SQS batches as Lambda delivers them, and the failed message IDs of a
//! partial-batch response. Only JSON in and out, so any crate can use it without type clashes.

use std::path::PathBuf;

use serde_json::{Value, json};

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The file `events/<name>` (with or without `.json`), parsed.
pub fn sample(name: &str) -> Value {
    let file = if name.ends_with(".json") {
        name.to_string()
    } else {
        format!("{name}.json")
    };
    let path = repo_root().join("events").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every sample event file name in `events/`, sorted.
pub fn sample_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("events"))
        .expect("events/ exists")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// An SQS batch event whose messages carry `bodies`, with IDs `m0`, `m1`, ….
pub fn sqs_batch<S: AsRef<str>>(bodies: &[S]) -> Value {
    sqs_batch_with_ids(
        &bodies
            .iter()
            .enumerate()
            .map(|(i, body)| (format!("m{i}"), body.as_ref().to_string()))
            .collect::<Vec<_>>(),
    )
}

/// An SQS batch event of `(message ID, body)` pairs, shaped as Lambda delivers it.
pub fn sqs_batch_with_ids(messages: &[(String, String)]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| {
            json!({"messageId": id, "receiptHandle": format!("rh-{id}"), "body": body,
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobrunner",
                "awsRegion": "us-east-1"})
        })
        .collect();
    json!({ "Records": records })
}

/// An SQS batch event of `(message ID, event)` pairs, each event sent as its JSON text.
pub fn sqs_batch_of_events(events: &[(String, Value)]) -> Value {
    sqs_batch_with_ids(
        &events
            .iter()
            .map(|(id, event)| (id.clone(), event.to_string()))
            .collect::<Vec<_>>(),
    )
}

/// The message IDs a partial-batch response lists as failed, in order.
pub fn failed_ids(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("not a batch response: {response}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// An EventBridge "Object Created" event for `bucket`/`key` of `size` bytes.
pub fn s3_event(bucket: &str, key: &str, size: u64) -> Value {
    json!({"version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3",
        "account": "123456789012", "time": "2026-11-22T05:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": size, "etag": "e",
            "sequencer": format!("0A{size:X}")}, "reason": "PutObject"}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_carry_their_bodies_and_failures_read_back() {
        let batch = sqs_batch(&["a", "b"]);
        assert_eq!(batch["Records"][1]["messageId"], "m1");
        assert_eq!(batch["Records"][1]["body"], "b");
        let response = json!({"batchItemFailures": [{"itemIdentifier": "m1"}]});
        assert_eq!(failed_ids(&response), ["m1"]);
        assert!(sample_names().iter().any(|n| n == "s3-object-created.json"));
        assert_eq!(sample("s3-object-created")["source"], "aws.s3");
    }
}
