//! Fixtures on moto: a cluster, a task definition, the default subnet, and a config using them.

use std::io::{Read, Write};
use std::net::TcpStream;

use aws_sdk_ecs::types::{ContainerDefinition, NetworkMode};
use jobrunner_core::Config;
use jobrunner_core::config::Format;

use crate::{Account, endpoint};

/// What the launcher tests need in their account.
pub struct LaunchFixture {
    pub account: Account,
    pub cluster: String,
    pub subnet: String,
    pub security_group: String,
}

impl LaunchFixture {
    /// Creates cluster `jobs` and the task definitions `thumbnails` and `report` (container `app`).
    pub async fn new() -> LaunchFixture {
        let account = Account::new();
        let ecs = account.ecs();
        ecs.create_cluster()
            .cluster_name("jobs")
            .send()
            .await
            .expect("create cluster");
        for family in ["thumbnails", "report"] {
            ecs.register_task_definition()
                .family(family)
                .network_mode(NetworkMode::Awsvpc)
                .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
                .cpu("256")
                .memory("512")
                // moto's RunTask needs container memory.
                .container_definitions(
                    ContainerDefinition::builder()
                        .name("app")
                        .image("public.ecr.aws/docker/library/busybox")
                        .memory(512)
                        .build(),
                )
                .send()
                .await
                .expect("register task definition");
        }
        let subnet = ec2_first(&account, "DescribeSubnets", "subnetId");
        let security_group = ec2_first(&account, "DescribeSecurityGroups", "groupId");
        LaunchFixture {
            account,
            cluster: "jobs".into(),
            subnet,
            security_group,
        }
    }

    /// A config whose `[defaults]` use this account's network, followed by `rest`.
    pub fn config(&self, rest: &str) -> Config {
        let text = format!(
            "[defaults]\ncluster = \"{}\"\nsubnets = [\"{}\"]\nsecurity_groups = [\"{}\"]\ncapacity = [\"FARGATE\"]\n{rest}",
            self.cluster, self.subnet, self.security_group
        );
        Config::parse(&text, Format::Toml).expect("valid test config")
    }

    /// ARNs of the tasks in the cluster started by `started_by` (any status).
    pub async fn tasks(&self, started_by: &str) -> Vec<aws_sdk_ecs::types::Task> {
        let ecs = self.account.ecs();
        let mut arns = Vec::new();
        for status in [
            aws_sdk_ecs::types::DesiredStatus::Running,
            aws_sdk_ecs::types::DesiredStatus::Stopped,
        ] {
            let page = ecs
                .list_tasks()
                .cluster(&self.cluster)
                .started_by(started_by)
                .desired_status(status)
                .send()
                .await
                .expect("list tasks");
            arns.extend(page.task_arns.unwrap_or_default());
        }
        if arns.is_empty() {
            return vec![];
        }
        ecs.describe_tasks()
            .cluster(&self.cluster)
            .set_tasks(Some(arns))
            .include(aws_sdk_ecs::types::TaskField::Tags)
            .send()
            .await
            .expect("describe tasks")
            .tasks
            .unwrap_or_default()
    }
}

/// Keeps moto's ECS tasks RUNNING instead of advancing them on every DescribeTasks.
pub fn keep_tasks_running() {
    let body =
        r#"{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000}}"#;
    let response = http_post(
        "/moto-api/state-manager/set-transition",
        "application/json",
        body,
        None,
    );
    assert!(
        response.starts_with("HTTP/1.1 20"),
        "set-transition: {response}"
    );
}

/// The first `<field>` in the answer of an EC2 query action (moto's default VPC has them).
fn ec2_first(account: &Account, action: &str, field: &str) -> String {
    let body = format!("Action={action}&Version=2016-11-15");
    let response = http_post(
        "/",
        "application/x-www-form-urlencoded",
        &body,
        Some(&account.id),
    );
    let open = format!("<{field}>");
    let start = response
        .find(&open)
        .unwrap_or_else(|| panic!("{action}: no {field} in {response}"))
        + open.len();
    let end = start + response[start..].find('<').expect("closing tag");
    response[start..end].to_string()
}

/// A minimal HTTP/1.1 POST to moto (test setup only; the product talks to AWS via the SDK).
fn http_post(path: &str, content_type: &str, body: &str, account: Option<&str>) -> String {
    let host = endpoint().trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).expect("connect to moto");
    let account_header = account
        .map(|a| format!("x-moto-account-id: {a}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n\
         {account_header}Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

/// Creates the DynamoDB state table of `[state] table` as the CDK construct does: partition
/// key `pk` (string) and the listing index `runs-by-day` (`list_pk`, `list_sk`, all attributes).
pub async fn create_state_table(account: &Account, name: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    use jobrunner_core::ledger::keys::{LIST_INDEX, LIST_PK, LIST_SK};
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute definition")
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("key schema")
    };
    account
        .dynamodb()
        .create_table()
        .table_name(name)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute(LIST_PK))
        .attribute_definitions(attribute(LIST_SK))
        .key_schema(key("pk", KeyType::Hash))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(LIST_INDEX)
                .key_schema(key(LIST_PK, KeyType::Hash))
                .key_schema(key(LIST_SK, KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("listing index"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create state table");
}

/// The launcher's ports in `account`: ECS always; the ledger's table, the SQS client (events
/// that wait are sent back to their queue) and the alert topic when given.
pub fn launcher_ports(
    account: &Account,
    table: Option<&str>,
    topic_arn: Option<&str>,
) -> jobrunner_aws::Adapters {
    jobrunner_aws::Adapters {
        ecs: Some(jobrunner_aws::ecs::EcsTasks::new(account.ecs())),
        state: table.map(|t| jobrunner_aws::state_store::StateStore::new(account.dynamodb(), t)),
        queues: Some(jobrunner_aws::sqs_queue::SqsQueues::new(account.sqs())),
        topic: topic_arn.map(|arn| jobrunner_aws::sns::SnsTopic::new(account.sns(), arn)),
        ..jobrunner_aws::Adapters::default()
    }
}

/// An SNS topic `jobrunner-alerts` with the SQS queue `alerts-inbox` subscribed (SNS envelopes,
/// not raw delivery, so message attributes can be read back). Returns (topic ARN, queue URL).
pub async fn alert_topic(account: &Account) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let topic_arn = account
        .sns()
        .create_topic()
        .name("jobrunner-alerts")
        .send()
        .await
        .expect("create topic")
        .topic_arn
        .expect("topic ARN");
    let sqs = account.sqs();
    let queue_url = sqs
        .create_queue()
        .queue_name("alerts-inbox")
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue URL");
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .expect("queue ARN");
    account
        .sns()
        .subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .attributes("RawMessageDelivery", "false")
        .send()
        .await
        .expect("subscribe");
    (topic_arn, queue_url)
}

/// The `[jobs.thumbnails]` job on bucket `uploads`, prefix `images/` (the launcher tests' job).
pub const THUMBNAILS: &str = r#"
[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
command = ["resize", "s3://{bucket}/{key}"]

[[triggers.s3]]
job = "thumbnails"
bucket = "uploads"
prefix = "images/"
"#;

/// A worker service's world: cluster `jobs`, task definition `order-worker`, service
/// `order-workers` at 0 tasks, queue `orders` and the state table `table`. Returns the queue URL.
pub async fn worker_environment(account: &Account, table: &str) -> String {
    let ecs = account.ecs();
    ecs.create_cluster()
        .cluster_name("jobs")
        .send()
        .await
        .expect("create cluster");
    ecs.register_task_definition()
        .family("order-worker")
        .network_mode(NetworkMode::Bridge)
        // moto needs container memory.
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("busybox")
                .memory(128)
                .build(),
        )
        .send()
        .await
        .expect("register task definition");
    create_worker_service(account, "order-workers").await;
    let queue_url = account
        .sqs()
        .create_queue()
        .queue_name("orders")
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue URL");
    create_state_table(account, table).await;
    queue_url
}

/// A service of task definition `order-worker` in cluster `jobs`, at 0 tasks.
pub async fn create_worker_service(account: &Account, name: &str) {
    account
        .ecs()
        .create_service()
        .cluster("jobs")
        .service_name(name)
        .task_definition("order-worker")
        .desired_count(0)
        .send()
        .await
        .expect("create service");
}
