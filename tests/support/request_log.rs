//! Writes down every request an SDK client sends, as (operation, input in the API's JSON
//! shape), so a test can compare what a function really sent with what `jobrunner plan`
//! printed. awsJson services (ECS, SQS, DynamoDB) send that JSON as the body; SNS's query
//! protocol is read back into the same shape `jobrunner plan` prints for Publish.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::{Map, Value, json};

use crate::Account;

/// The requests seen so far, in order. Clones share the log.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<(String, Value)>>>);

impl RequestLog {
    /// Takes the requests so far, leaving the log empty.
    pub fn take(&self) -> Vec<(String, Value)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    pub fn ecs(&self, account: &Account) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::from_conf(
            aws_sdk_ecs::config::Builder::from(&account.sdk)
                .interceptor(account.interceptor())
                .interceptor(self.clone())
                .build(),
        )
    }

    pub fn sqs(&self, account: &Account) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&account.sdk)
                .interceptor(account.interceptor())
                .interceptor(self.clone())
                .build(),
        )
    }

    pub fn sns(&self, account: &Account) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(&account.sdk)
                .interceptor(account.interceptor())
                .interceptor(self.clone())
                .build(),
        )
    }

    pub fn dynamodb(&self, account: &Account) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&account.sdk)
                .interceptor(account.interceptor())
                .interceptor(self.clone())
                .build(),
        )
    }
}

impl Intercept for RequestLog {
    fn name(&self) -> &'static str {
        "RequestLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let body = request.body().bytes().unwrap_or_default();
        let entry = match request.headers().get("x-amz-target") {
            Some(target) => (
                target.rsplit('.').next().unwrap_or(target).to_string(),
                serde_json::from_slice(body).unwrap_or(Value::Null),
            ),
            None => query_request(body),
        };
        self.0.lock().unwrap().push(entry);
        Ok(())
    }
}

/// An SNS query-protocol body (`Action=Publish&TopicArn=…&MessageAttributes.entry.1.Name=…`)
/// as the JSON `jobrunner plan` prints.
fn query_request(body: &[u8]) -> (String, Value) {
    let fields: BTreeMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let action = fields.get("Action").cloned().unwrap_or_default();
    let mut input = Map::new();
    let mut attributes: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for (key, value) in &fields {
        if let Some(rest) = key.strip_prefix("MessageAttributes.entry.") {
            let (index, field) = rest.split_once('.').unwrap_or((rest, ""));
            let entry = attributes.entry(index.to_string()).or_default();
            match field {
                "Name" => entry.insert("name".into(), json!(value)),
                "Value.DataType" => entry.insert("DataType".into(), json!(value)),
                "Value.StringValue" => entry.insert("StringValue".into(), json!(value)),
                _ => None,
            };
        } else if key != "Action" && key != "Version" {
            input.insert(key.clone(), json!(value));
        }
    }
    if !attributes.is_empty() {
        let named: Map<String, Value> = attributes
            .into_values()
            .map(|mut entry| {
                let name = entry
                    .remove("name")
                    .and_then(|n| n.as_str().map(str::to_owned))
                    .unwrap_or_default();
                (name, Value::Object(entry))
            })
            .collect();
        input.insert("MessageAttributes".into(), Value::Object(named));
    }
    (action, Value::Object(input))
}
