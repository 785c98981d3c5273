//! S3 Batch Operations' "Invoke AWS Lambda function" invocations (schema 1.0 and 2.0) and the
//! answer S3 Batch Operations expects.
//!
//! An invocation names its tasks, one object each. Schema 1.0 gives the bucket as an ARN
//! (`s3BucketArn`), 2.0 as a name (`s3Bucket`) and may carry `job.userArguments`. Keys arrive
//! URL-encoded (`+` for a space, `%XX` for each byte of UTF-8). The envelope is decoded as a
//! whole; each task on its own, so one bad task fails only itself (`PermanentFailure`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::s3::{check_key, decode_notification_key};
use super::typed;
use crate::error::Error;

/// A decoded invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInvocation {
    /// `"1.0"` or `"2.0"`: the answer repeats it.
    pub schema: SchemaVersion,
    pub invocation_id: String,
    /// The S3 Batch Operations job's id.
    pub job_id: String,
    /// `job.userArguments` (2.0 only; empty otherwise).
    pub user_arguments: BTreeMap<String, String>,
    pub tasks: Vec<BatchTask>,
}

/// The invocation schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SchemaVersion {
    #[serde(rename = "1.0")]
    V1,
    #[serde(rename = "2.0")]
    V2,
}

/// One task: its id and the object it names (or why that could not be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTask {
    pub task_id: String,
    pub object: Result<TaskObject, Error>,
}

/// The object of a task, its key decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskObject {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInvocation {
    invocation_schema_version: String,
    invocation_id: String,
    job: RawJob,
    tasks: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawJob {
    id: String,
    #[serde(default)]
    user_arguments: Option<BTreeMap<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTask {
    s3_key: String,
    #[serde(default)]
    s3_version_id: Option<String>,
    #[serde(default)]
    s3_bucket_arn: Option<String>,
    #[serde(default)]
    s3_bucket: Option<String>,
}

/// Whether `value` is an S3 Batch Operations invocation (it names its schema and its tasks).
pub fn is_invocation(value: &Value) -> bool {
    value.get("invocationSchemaVersion").is_some() && value.get("tasks").is_some()
}

/// Decodes an invocation. The envelope must be whole (an answer needs its `invocationId` and
/// each task's `taskId`); a task that names no usable object is decoded as its error.
pub fn decode(value: &Value) -> Result<BatchInvocation, Error> {
    let raw: RawInvocation = typed(value, "S3 Batch Operations invocation")?;
    let schema = match raw.invocation_schema_version.as_str() {
        "1.0" => SchemaVersion::V1,
        "2.0" => SchemaVersion::V2,
        other => {
            return Err(Error::UnsupportedEvent(format!(
                "S3 Batch Operations invocation schema {other:?} (1.0 and 2.0 are supported)"
            )));
        }
    };
    if raw.invocation_id.is_empty() {
        return Err(Error::MalformedEvent(
            "S3 Batch Operations invocation: invocationId is empty".into(),
        ));
    }
    let user_arguments = raw
        .job
        .user_arguments
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, text)
        })
        .collect();
    let tasks = raw
        .tasks
        .iter()
        .enumerate()
        .map(|(i, task)| {
            let task_id = task
                .get("taskId")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .ok_or_else(|| {
                    Error::MalformedEvent(format!(
                        "S3 Batch Operations invocation: tasks[{i}].taskId is missing"
                    ))
                })?;
            Ok(BatchTask {
                task_id: task_id.to_owned(),
                object: decode_task(schema, task),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(BatchInvocation {
        schema,
        invocation_id: raw.invocation_id,
        job_id: raw.job.id,
        user_arguments,
        tasks,
    })
}

fn decode_task(schema: SchemaVersion, task: &Value) -> Result<TaskObject, Error> {
    let raw: RawTask = typed(task, "S3 Batch Operations task")?;
    let bucket = match (schema, raw.s3_bucket_arn, raw.s3_bucket) {
        (SchemaVersion::V1, Some(arn), _) => bucket_of_arn(&arn)?,
        (SchemaVersion::V2, _, Some(bucket)) => bucket,
        (SchemaVersion::V1, None, _) => {
            return Err(Error::MalformedEvent(
                "S3 Batch Operations task (schema 1.0): s3BucketArn is missing".into(),
            ));
        }
        (SchemaVersion::V2, _, None) => {
            return Err(Error::MalformedEvent(
                "S3 Batch Operations task (schema 2.0): s3Bucket is missing".into(),
            ));
        }
    };
    if bucket.is_empty() {
        return Err(Error::MalformedEvent(
            "S3 Batch Operations task: the bucket name is empty".into(),
        ));
    }
    let key = decode_notification_key(&raw.s3_key)?;
    check_key(&key)?;
    Ok(TaskObject {
        bucket,
        key,
        // S3 writes "null" for objects written before versioning was enabled.
        version_id: raw.s3_version_id.filter(|v| !v.is_empty() && v != "null"),
    })
}

/// The bucket of an S3 bucket ARN (`arn:aws:s3:::name`, any partition).
fn bucket_of_arn(arn: &str) -> Result<String, Error> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "s3", "", "", name] if !name.is_empty() && !name.contains('/') => {
            Ok((*name).to_owned())
        }
        _ => Err(Error::MalformedEvent(format!(
            "S3 Batch Operations task: s3BucketArn {arn:?} is not an S3 bucket ARN (arn:aws:s3:::bucket)"
        ))),
    }
}

/// A task's result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ResultCode {
    /// Launched, already launched, or nothing to do (the result string says which).
    Succeeded,
    /// Retryable (a throttled call, the job at its cap): S3 Batch Operations tries again.
    TemporaryFailure,
    /// The same task would fail the same way again.
    PermanentFailure,
}

/// One task's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    pub task_id: String,
    pub result_code: ResultCode,
    pub result_string: String,
}

/// The answer to an invocation, in the shape S3 Batch Operations reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub invocation_schema_version: SchemaVersion,
    /// What a task missing from `results` counts as (every task is answered; a missing one
    /// would be a bug, so it is tried again).
    pub treat_missing_keys_as: ResultCode,
    pub invocation_id: String,
    pub results: Vec<TaskResult>,
}

/// The longest `resultString` kept (the completion report is a CSV; long reasons are clipped).
pub const MAX_RESULT_STRING: usize = 1024;

impl BatchResponse {
    /// An empty answer to `invocation`.
    pub fn new(invocation: &BatchInvocation) -> BatchResponse {
        BatchResponse {
            invocation_schema_version: invocation.schema,
            treat_missing_keys_as: ResultCode::TemporaryFailure,
            invocation_id: invocation.invocation_id.clone(),
            results: Vec::with_capacity(invocation.tasks.len()),
        }
    }

    /// Adds a task's result, its text clipped to [`MAX_RESULT_STRING`] bytes.
    pub fn push(&mut self, task_id: &str, result_code: ResultCode, text: &str) {
        let mut end = text.len().min(MAX_RESULT_STRING);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.results.push(TaskResult {
            task_id: task_id.to_owned(),
            result_code,
            result_string: text[..end].to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn v1(key: &str) -> Value {
        json!({
            "invocationSchemaVersion": "1.0",
            "invocationId": "inv-1",
            "job": {"id": "job-1"},
            "tasks": [{"taskId": "t1", "s3Key": key, "s3VersionId": "v1",
                       "s3BucketArn": "arn:aws:s3:::uploads"}]
        })
    }

    #[test]
    fn an_invocation_names_both_its_schema_and_its_tasks() {
        assert!(is_invocation(&v1("k")));
        let mut no_tasks = v1("k");
        no_tasks.as_object_mut().unwrap().remove("tasks");
        assert!(!is_invocation(&no_tasks));
        let mut no_schema = v1("k");
        no_schema
            .as_object_mut()
            .unwrap()
            .remove("invocationSchemaVersion");
        assert!(!is_invocation(&no_schema));
    }

    #[test]
    fn result_strings_are_clipped_on_a_character_boundary() {
        let invocation = decode(&v1("k")).unwrap();
        let mut response = BatchResponse::new(&invocation);
        // "a" then two-byte characters: byte 1,024 falls inside one, so 1,023 bytes are kept.
        let text = format!("a{}", "é".repeat(MAX_RESULT_STRING));
        response.push("t1", ResultCode::PermanentFailure, &text);
        response.push("t2", ResultCode::Succeeded, "short");
        assert_eq!(response.results[0].result_string, text[..1023]);
        assert_eq!(response.results[1].result_string, "short");
    }

    fn v2(key: &str) -> Value {
        json!({
            "invocationSchemaVersion": "2.0",
            "invocationId": "inv-2",
            "job": {"id": "job-2", "userArguments": {"reason": "reprocess", "n": 3}},
            "tasks": [{"taskId": "t2", "s3Key": key, "s3VersionId": null, "s3Bucket": "uploads"}]
        })
    }

    fn only_object(value: &Value) -> Result<TaskObject, Error> {
        let invocation = decode(value).unwrap();
        assert_eq!(invocation.tasks.len(), 1);
        invocation.tasks.into_iter().next().unwrap().object
    }

    #[test]
    fn schema_1_names_the_bucket_by_arn() {
        let invocation = decode(&v1("images/cat.jpg")).unwrap();
        assert_eq!(invocation.schema, SchemaVersion::V1);
        assert_eq!(invocation.invocation_id, "inv-1");
        assert_eq!(invocation.job_id, "job-1");
        assert!(invocation.user_arguments.is_empty());
        assert_eq!(invocation.tasks[0].task_id, "t1");
        assert_eq!(
            invocation.tasks[0].object,
            Ok(TaskObject {
                bucket: "uploads".into(),
                key: "images/cat.jpg".into(),
                version_id: Some("v1".into()),
            })
        );
    }

    #[test]
    fn schema_2_names_the_bucket_and_carries_user_arguments() {
        let invocation = decode(&v2("a.jpg")).unwrap();
        assert_eq!(invocation.schema, SchemaVersion::V2);
        assert_eq!(invocation.user_arguments["reason"], "reprocess");
        assert_eq!(invocation.user_arguments["n"], "3");
        let object = invocation.tasks[0].object.clone().unwrap();
        assert_eq!(object.bucket, "uploads");
        assert_eq!(object.version_id, None);
    }

    #[test]
    fn keys_are_url_decoded_plus_as_space_and_utf8_escapes() {
        let object = only_object(&v2("in/my+file%2B1+%C3%A9t%C3%A9%20%E6%97%A5.jpg")).unwrap();
        assert_eq!(object.key, "in/my file+1 été 日.jpg");
        let object = only_object(&v1("100%25+done.txt")).unwrap();
        assert_eq!(object.key, "100% done.txt");
    }

    #[test]
    fn a_bad_key_fails_its_task_with_a_reason_not_the_invocation() {
        for (key, expected) in [
            ("bad%zzkey", "invalid %-escape"),
            ("trail%", "invalid %-escape"),
            ("%FF%FE", "not valid URL-encoded UTF-8"),
            ("", "object key is empty"),
            ("a/%2E%2E/b", "'..'"),
            ("x%0Ay", "control characters"),
        ] {
            let err = only_object(&v1(key)).unwrap_err();
            assert!(err.to_string().contains(expected), "{key}: {err}");
            assert!(!err.is_retryable());
        }
    }

    #[test]
    fn the_null_version_is_no_version() {
        let mut event = v1("a");
        event["tasks"][0]["s3VersionId"] = json!("null");
        assert_eq!(only_object(&event).unwrap().version_id, None);
    }

    #[test]
    fn a_task_without_its_schemas_bucket_field_fails_alone() {
        let mut event = v1("a");
        event["tasks"][0]["s3BucketArn"] = Value::Null;
        event["tasks"][0]["s3Bucket"] = json!("uploads");
        let err = only_object(&event).unwrap_err();
        assert!(err.to_string().contains("s3BucketArn is missing"), "{err}");
        let mut event = v1("a");
        event["tasks"][0]["s3BucketArn"] = json!("arn:aws:s3:::uploads/prefix");
        let err = only_object(&event).unwrap_err();
        assert!(err.to_string().contains("not an S3 bucket ARN"), "{err}");
        let mut event = v2("a");
        event["tasks"][0]["s3Bucket"] = Value::Null;
        let err = only_object(&event).unwrap_err();
        assert!(err.to_string().contains("s3Bucket is missing"), "{err}");
    }

    #[test]
    fn arns_of_other_partitions_name_their_bucket() {
        assert_eq!(
            bucket_of_arn("arn:aws-cn:s3:::logs").unwrap(),
            "logs".to_string()
        );
        assert!(bucket_of_arn("arn:aws:sqs:us-east-1:1:q").is_err());
    }

    #[test]
    fn a_broken_envelope_is_an_error_naming_the_field() {
        let mut event = v1("a");
        event["invocationSchemaVersion"] = json!("3.0");
        let err = decode(&event).unwrap_err();
        assert!(err.to_string().contains("schema \"3.0\""), "{err}");
        let mut event = v1("a");
        event["tasks"][0]["taskId"] = Value::Null;
        let err = decode(&event).unwrap_err();
        assert!(err.to_string().contains("tasks[0].taskId"), "{err}");
        let mut event = v1("a");
        event.as_object_mut().unwrap().remove("invocationId");
        let err = decode(&event).unwrap_err();
        assert!(err.to_string().contains("invocationId"), "{err}");
    }

    #[test]
    fn is_invocation_tells_batch_invocations_apart() {
        assert!(is_invocation(&v1("a")));
        assert!(!is_invocation(&json!({"detail-type": "Object Created"})));
    }

    #[test]
    fn the_response_has_s3_batch_operations_shape() {
        let invocation = decode(&v2("a")).unwrap();
        let mut response = BatchResponse::new(&invocation);
        response.push("t2", ResultCode::Succeeded, "launched");
        response.push("t3", ResultCode::PermanentFailure, &"é".repeat(1000));
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(json["invocationSchemaVersion"], "2.0");
        assert_eq!(json["treatMissingKeysAs"], "TemporaryFailure");
        assert_eq!(json["invocationId"], "inv-2");
        assert_eq!(
            json["results"][0],
            json!({"taskId": "t2", "resultCode": "Succeeded", "resultString": "launched"})
        );
        let clipped = json["results"][1]["resultString"].as_str().unwrap();
        assert!(clipped.len() <= MAX_RESULT_STRING && clipped.starts_with('é'));
    }
}
