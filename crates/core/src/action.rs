//! One AWS call as data: service, operation, read or write, and the request in the API's own
//! JSON shape. `jobrunner plan` prints these; the integration tests compare them with the
//! requests the functions send.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::alert::Publish;
use crate::plan::RunTaskInput;
use crate::ports::Put;

/// Attribute names of a state-table item (see `jobrunner_aws::state_store`).
pub mod item {
    pub const PK: &str = "pk";
    pub const DATA: &str = "data";
    pub const VERSION: &str = "version";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const UPDATED_AT: &str = "updated_at";
    /// The listing index's partition key (`runs#<YYYY-MM-DD>`).
    pub const LIST_PK: &str = "list_pk";
    /// The listing index's sort key (`<queued_at>#<run_id>`).
    pub const LIST_SK: &str = "list_sk";
}

/// Whether a call only reads or changes something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Read,
    Write,
}

/// One AWS call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    pub service: &'static str,
    pub operation: &'static str,
    pub kind: Kind,
    pub input: Value,
    /// For reads in a dry run: the answer the dry run assumed (see `jobrunner plan --help`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assumed: Option<Value>,
    /// Sent while an earlier call was still under way: reads that do not depend on each other
    /// go out together (the scaler's observation), in the order listed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub concurrent: bool,
}

impl Action {
    fn new(service: &'static str, operation: &'static str, kind: Kind, input: Value) -> Action {
        Action {
            service,
            operation,
            kind,
            input,
            assumed: None,
            concurrent: false,
        }
    }

    pub fn list_tasks(cluster: &str, started_by: &str) -> Action {
        Action::new(
            "ecs",
            "ListTasks",
            Kind::Read,
            json!({"cluster": cluster, "startedBy": started_by, "desiredStatus": "RUNNING"}),
        )
    }

    /// ListTasks of a service's tasks (the scaler reads their protection before scaling in).
    pub fn list_service_tasks(cluster: &str, service: &str) -> Action {
        Action::new(
            "ecs",
            "ListTasks",
            Kind::Read,
            json!({"cluster": cluster, "serviceName": service, "desiredStatus": "RUNNING"}),
        )
    }

    pub fn get_task_protection(cluster: &str, task_arns: &[String]) -> Action {
        Action::new(
            "ecs",
            "GetTaskProtection",
            Kind::Read,
            json!({"cluster": cluster, "tasks": task_arns}),
        )
    }

    pub fn describe_tasks(cluster: &str, task_arns: &[String]) -> Action {
        Action::new(
            "ecs",
            "DescribeTasks",
            Kind::Read,
            json!({"cluster": cluster, "tasks": task_arns}),
        )
    }

    pub fn run_task(input: &RunTaskInput) -> Action {
        Action::new(
            "ecs",
            "RunTask",
            Kind::Write,
            serde_json::to_value(input).unwrap_or(Value::Null),
        )
    }

    pub fn stop_task(cluster: &str, task_arn: &str, reason: &str) -> Action {
        Action::new(
            "ecs",
            "StopTask",
            Kind::Write,
            json!({"cluster": cluster, "task": task_arn, "reason": reason}),
        )
    }

    pub fn describe_task_definition(task_definition: &str) -> Action {
        Action::new(
            "ecs",
            "DescribeTaskDefinition",
            Kind::Read,
            json!({"taskDefinition": task_definition}),
        )
    }

    pub fn publish(topic_arn: &str, message: &Publish) -> Action {
        Action::new("sns", "Publish", Kind::Write, message.to_input(topic_arn))
    }

    pub fn get_item(table: &str, key: &str) -> Action {
        Action::new(
            "dynamodb",
            "GetItem",
            Kind::Read,
            json!({"TableName": table, "Key": {item::PK: {"S": key}}, "ConsistentRead": true}),
        )
    }

    pub fn put_item(table: &str, put: &Put<'_>) -> Action {
        let version = put.expected.map_or(1, |v| v + 1);
        let mut input = json!({
            "TableName": table,
            "Item": {
                item::PK: {"S": put.key},
                item::DATA: {"S": put.data},
                item::VERSION: {"N": version.to_string()},
                item::EXPIRES_AT: {"N": put.expires_at.timestamp().to_string()},
                item::UPDATED_AT: {"S": rfc3339_millis(put.now)},
            },
        });
        if let (Some(listing), Some(item)) = (&put.listing, input["Item"].as_object_mut()) {
            item.insert(item::LIST_PK.into(), json!({"S": listing.partition}));
            item.insert(item::LIST_SK.into(), json!({"S": listing.sort}));
        }
        let condition = match put.expected {
            None => json!({
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": item::PK},
            }),
            Some(expected) => json!({
                "ConditionExpression": "#v = :expected",
                "ExpressionAttributeNames": {"#v": item::VERSION},
                "ExpressionAttributeValues": {":expected": {"N": expected.to_string()}},
            }),
        };
        if let (Some(input), Value::Object(condition)) = (input.as_object_mut(), condition) {
            input.extend(condition);
        }
        Action::new("dynamodb", "PutItem", Kind::Write, input)
    }

    pub fn send_message(queue_url: &str, body: &str, delay_seconds: u32) -> Action {
        Action::new(
            "sqs",
            "SendMessage",
            Kind::Write,
            json!({"QueueUrl": queue_url, "MessageBody": body, "DelaySeconds": delay_seconds}),
        )
    }

    pub fn get_queue_attributes(queue_url: &str) -> Action {
        Action::new(
            "sqs",
            "GetQueueAttributes",
            Kind::Read,
            json!({"QueueUrl": queue_url, "AttributeNames": QUEUE_ATTRIBUTES}),
        )
    }

    pub fn describe_services(cluster: &str, service: &str) -> Action {
        Action::new(
            "ecs",
            "DescribeServices",
            Kind::Read,
            json!({"cluster": cluster, "services": [service]}),
        )
    }

    pub fn update_service(cluster: &str, service: &str, desired: u32) -> Action {
        Action::new(
            "ecs",
            "UpdateService",
            Kind::Write,
            json!({"cluster": cluster, "service": service, "desiredCount": desired}),
        )
    }

    /// HeadObject (the request in S3's API shape: `Bucket`, `Key`, `VersionId`).
    pub fn head_object(bucket: &str, key: &str, version_id: Option<&str>) -> Action {
        let mut input = json!({"Bucket": bucket, "Key": key});
        if let Some(version) = version_id {
            input["VersionId"] = json!(version);
        }
        Action::new("s3", "HeadObject", Kind::Read, input)
    }

    /// This action with the dry run's assumed answer attached.
    pub fn assuming(mut self, answer: Value) -> Action {
        self.assumed = Some(answer);
        self
    }
}

/// The queue attributes the scaler reads.
pub const QUEUE_ATTRIBUTES: [&str; 3] = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
];

/// RFC 3339 with milliseconds, UTC (`2026-11-22T05:00:00.000Z`).
pub fn rfc3339_millis(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_item_carries_the_condition_for_new_and_existing_items() {
        let now: DateTime<Utc> = "2026-11-22T05:00:00Z".parse().unwrap();
        let fresh = Action::put_item(
            "state",
            &Put {
                key: "k",
                data: "{}",
                expected: None,
                expires_at: now,
                now,
                listing: None,
            },
        );
        assert_eq!(
            fresh.input["ConditionExpression"],
            "attribute_not_exists(#pk)"
        );
        assert_eq!(fresh.input["Item"]["version"]["N"], "1");
        let update = Action::put_item(
            "state",
            &Put {
                key: "k",
                data: "{}",
                expected: Some(4),
                expires_at: now,
                now,
                listing: None,
            },
        );
        assert_eq!(update.input["Item"]["version"]["N"], "5");
        assert_eq!(
            update.input["ExpressionAttributeValues"][":expected"]["N"],
            "4"
        );
        assert_eq!(update.kind, Kind::Write);
        assert_eq!(
            serde_json::to_value(&update).unwrap()["kind"],
            Value::from("write")
        );
    }
}
