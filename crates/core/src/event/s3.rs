//! S3 "Object Created": EventBridge detail (raw keys) and classic notifications (URL-encoded keys).

use chrono::{DateTime, Utc};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::Value;

use super::{Event, typed};
use crate::error::Error;

/// S3's limit on key length, in bytes.
const MAX_KEY_BYTES: usize = 1024;

/// A created object, whichever way it was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    pub bucket: String,
    /// The key as stored in S3 (never URL-encoded).
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// Orders events of one key; redeliveries of one event share it.
    pub sequencer: Option<String>,
    pub event_time: DateTime<Utc>,
}

#[derive(Deserialize)]
struct EventBridgeDetail {
    bucket: BucketRef,
    object: EventBridgeObject,
}

#[derive(Deserialize)]
struct BucketRef {
    name: String,
}

#[derive(Deserialize)]
struct EventBridgeObject {
    key: String,
    size: Option<u64>,
    etag: Option<String>,
    #[serde(rename = "version-id")]
    version_id: Option<String>,
    sequencer: Option<String>,
}

pub(super) fn decode_eventbridge_detail(
    detail: &Value,
    time: DateTime<Utc>,
) -> Result<ObjectCreated, Error> {
    let detail: EventBridgeDetail = typed(detail, "S3 Object Created detail")?;
    let size = required_size(detail.object.size, "S3 Object Created detail: object.size")?;
    object(
        detail.bucket.name,
        detail.object.key,
        size,
        detail.object.etag,
        detail.object.version_id,
        detail.object.sequencer,
        time,
    )
}

#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "Records")]
    records: Vec<NotificationRecord>,
}

#[derive(Deserialize)]
struct NotificationRecord {
    #[serde(rename = "eventSource")]
    event_source: String,
    #[serde(rename = "eventName")]
    event_name: String,
    #[serde(rename = "eventTime")]
    event_time: DateTime<Utc>,
    s3: NotificationEntity,
}

#[derive(Deserialize)]
struct NotificationEntity {
    bucket: BucketRef,
    object: NotificationObject,
}

#[derive(Deserialize)]
struct NotificationObject {
    key: String,
    /// Absent for events other than ObjectCreated (which start no job).
    size: Option<u64>,
    #[serde(rename = "eTag")]
    etag: Option<String>,
    #[serde(rename = "versionId")]
    version_id: Option<String>,
    sequencer: Option<String>,
}

/// Decodes a classic S3 event notification (to SQS, SNS or Lambda). Its keys are URL-encoded
/// with `+` for spaces.
pub(super) fn decode_notification(value: &Value) -> Result<Vec<Event>, Error> {
    let notification: Notification = typed(value, "S3 notification")?;
    notification
        .records
        .into_iter()
        .enumerate()
        .map(|(i, record)| {
            if record.event_source != "aws:s3" {
                return Err(Error::UnsupportedEvent(format!(
                    "S3 notification: Records[{i}] is from {:?}",
                    record.event_source
                )));
            }
            if !record.event_name.starts_with("ObjectCreated:") {
                return Ok(Event::Ignored(format!(
                    "S3 {:?} events start no job",
                    record.event_name
                )));
            }
            let o = record.s3.object;
            let size = required_size(
                o.size,
                &format!("S3 notification: Records[{i}].s3.object.size"),
            )?;
            let key = decode_notification_key(&o.key)?;
            object(
                record.s3.bucket.name,
                key,
                size,
                o.etag,
                o.version_id,
                o.sequencer,
                record.event_time,
            )
            .map(Event::ObjectCreated)
        })
        .collect()
}

/// A created object always has a size: without one the event is malformed (launching it as a
/// zero-byte object would pick the wrong size tier and pass `max_size` routing).
fn required_size(size: Option<u64>, field: &str) -> Result<u64, Error> {
    size.ok_or_else(|| Error::MalformedEvent(format!("{field} is missing")))
}

/// Classic notifications form-encode keys: `+` is a space, `%XX` a byte of UTF-8. S3 writes a
/// literal `%` as `%25`, so a `%` not followed by two hex digits means the key was not encoded
/// by S3: it is rejected rather than guessed (a guess could process another object).
pub fn decode_notification_key(encoded: &str) -> Result<String, Error> {
    let bytes = encoded.as_bytes();
    if let Some(at) = (0..bytes.len()).find(|&i| {
        bytes[i] == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    }) {
        return Err(Error::MalformedEvent(format!(
            "object key {encoded:?} has an invalid %-escape at byte {at} (S3 writes '%' as %25)"
        )));
    }
    let plus_decoded = encoded.replace('+', " ");
    percent_decode_str(&plus_decoded)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|_| {
            Error::MalformedEvent(format!(
                "object key {encoded:?} is not valid URL-encoded UTF-8"
            ))
        })
}

fn object(
    bucket: String,
    key: String,
    size: u64,
    etag: Option<String>,
    version_id: Option<String>,
    sequencer: Option<String>,
    event_time: DateTime<Utc>,
) -> Result<ObjectCreated, Error> {
    if bucket.is_empty() {
        return Err(Error::MalformedEvent("bucket name is empty".into()));
    }
    check_key(&key)?;
    // S3 sends "null" as the version of objects in unversioned buckets.
    let version_id = version_id.filter(|v| !v.is_empty() && v != "null");
    Ok(ObjectCreated {
        bucket,
        key,
        size,
        etag: etag.filter(|e| !e.is_empty()),
        version_id,
        sequencer,
        event_time,
    })
}

/// Keys are passed to containers as data; refuse the ones no job should be started for.
pub(super) fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::MalformedEvent("object key is empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::MalformedEvent(format!(
            "object key is {} bytes; S3 keys are at most {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(Error::MalformedEvent(format!(
            "object key {key:?} contains control characters"
        )));
    }
    if key.split('/').any(|segment| segment == "..") {
        return Err(Error::MalformedEvent(format!(
            "object key {key:?} has a '..' path segment"
        )));
    }
    Ok(())
}
