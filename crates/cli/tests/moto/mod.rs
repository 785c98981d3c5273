//! moto server for the `jobrunner run` tests: one server per test process, one AWS account per
//! test. The CLI runs as a child process with the default credential chain, so a test's account
//! is chosen the way moto maps credentials to accounts: each test creates an IAM user with an
//! access key in its own account (`x-moto-account-id` on those two setup calls) and hands that
//! key to the CLI. STS then answers GetCallerIdentity with that user's ARN.
//!
//! `MOTO_ENDPOINT` points the tests at a running server; otherwise the first test starts one
//! from the project's `.venv/` (`make venv`) that stops when the test process exits.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types;

pub const REGION: &str = "us-east-1";

static SERVER: OnceLock<String> = OnceLock::new();
static CHILD: Mutex<Option<Child>> = Mutex::new(None);
static NEXT_ACCOUNT: AtomicU64 = AtomicU64::new(0);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The moto endpoint, starting a server on first use.
pub fn endpoint() -> &'static str {
    SERVER.get_or_init(|| std::env::var("MOTO_ENDPOINT").unwrap_or_else(|_| start_server()))
}

fn start_server() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make venv` first",
        python.display()
    );
    let mut child = Command::new(python)
        .arg(repo_root().join("tests/support/moto_child.py"))
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("moto output");
    assert_eq!(line.trim(), "ready", "moto server did not start");
    *CHILD.lock().unwrap() = Some(child);
    format!("http://127.0.0.1:{port}")
}

/// A test's own account on the shared server, and the IAM user whose key the CLI uses.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub user_arn: String,
    access_key: String,
    secret_key: String,
}

impl Account {
    pub fn new() -> Account {
        let n = NEXT_ACCOUNT.fetch_add(1, Ordering::Relaxed);
        let id = format!(
            "{:012}",
            200_000_000_000 + u64::from(std::process::id()) * 1000 + n
        );
        let user = "operator";
        let created = iam_call(&id, &format!("Action=CreateUser&UserName={user}"));
        let user_arn = xml_field(&created, "Arn");
        let key = iam_call(&id, &format!("Action=CreateAccessKey&UserName={user}"));
        Account {
            id,
            user_arn,
            access_key: xml_field(&key, "AccessKeyId"),
            secret_key: xml_field(&key, "SecretAccessKey"),
        }
    }

    /// The SDK configuration of this account (for test setup and checks).
    pub fn sdk(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(endpoint())
            .credentials_provider(aws_sdk_ecs::config::SharedCredentialsProvider::new(
                aws_sdk_ecs::config::Credentials::new(
                    &self.access_key,
                    &self.secret_key,
                    None,
                    None,
                    "moto",
                ),
            ))
            .build()
    }

    /// Runs `jobrunner args…` as a user in this account would: credentials and region from the
    /// environment, `AWS_ENDPOINT_URL` at moto, no profile files.
    pub fn jobrunner(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run jobrunner")
    }

    /// The command [`Account::jobrunner`] runs, to change its environment first.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_jobrunner"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("AWS_ACCESS_KEY_ID", &self.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_key)
            .env("AWS_REGION", REGION)
            .env("AWS_CONFIG_FILE", "/nonexistent/jobrunner-test-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/jobrunner-test-credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true");
        command
    }
}

fn iam_call(account: &str, action: &str) -> String {
    let body = format!("{action}&Version=2010-05-08");
    let host = endpoint().trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).expect("connect to moto");
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0\r\n\
         x-moto-account-id: {account}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{action}: {response}");
    response
}

fn xml_field(response: &str, field: &str) -> String {
    let open = format!("<{field}>");
    let start = response
        .find(&open)
        .unwrap_or_else(|| panic!("no {field} in {response}"))
        + open.len();
    let end = start + response[start..].find('<').expect("closing tag");
    response[start..end].to_string()
}

/// The state table as the CDK creates it (as `tests/support`'s `create_state_table` does for the
/// functions' tests): partition key `pk`, and the `runs-by-day` index.
pub async fn create_state_table(sdk: &SdkConfig, name: &str) {
    let attribute = |name: &str| {
        types::AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(types::ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind| {
        types::KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(name)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute(jobrunner_core::ledger::keys::LIST_PK))
        .attribute_definitions(attribute(jobrunner_core::ledger::keys::LIST_SK))
        .key_schema(key("pk", types::KeyType::Hash))
        .global_secondary_indexes(
            types::GlobalSecondaryIndex::builder()
                .index_name(jobrunner_core::ledger::keys::LIST_INDEX)
                .key_schema(key(
                    jobrunner_core::ledger::keys::LIST_PK,
                    types::KeyType::Hash,
                ))
                .key_schema(key(
                    jobrunner_core::ledger::keys::LIST_SK,
                    types::KeyType::Range,
                ))
                .projection(
                    types::Projection::builder()
                        .projection_type(types::ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .billing_mode(types::BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create state table");
}
