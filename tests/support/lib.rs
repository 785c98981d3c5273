//! Test support: a moto server (the local AWS) per test process, and an isolated AWS
//! account per test so tests run in parallel against one server.
//!
//! `MOTO_ENDPOINT` points the tests at an already running server; otherwise the first test
//! starts one (from the project's `.venv/`) that stops when the test process exits.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

pub mod esm;
pub mod fault_proxy;
pub mod fixtures;
pub mod request_log;
pub mod scaler;
pub mod worker;

/// The region every test uses.
pub const REGION: &str = "us-east-1";

static SERVER: OnceLock<String> = OnceLock::new();
static CHILD: Mutex<Option<Child>> = Mutex::new(None);
static NEXT_ACCOUNT: AtomicU64 = AtomicU64::new(0);

/// The repository root (where `.venv/` lives).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
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
        "{} is missing: run `make venv` (or `make test`) first",
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

/// One test's own AWS account on the shared moto server.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub sdk: SdkConfig,
}

impl Account {
    /// A fresh account: nothing another test created is visible in it.
    pub fn new() -> Account {
        let n = NEXT_ACCOUNT.fetch_add(1, Ordering::Relaxed);
        let id = format!(
            "{:012}",
            100_000_000_000 + u64::from(std::process::id()) * 1000 + n
        );
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(endpoint())
            .credentials_provider(aws_sdk_ecs::config::SharedCredentialsProvider::new(
                aws_sdk_ecs::config::Credentials::new("testing", "testing", None, None, "moto"),
            ))
            .retry_config(jobrunner_aws::client::retry_config())
            .timeout_config(jobrunner_aws::client::timeout_config())
            .build();
        Account { id, sdk }
    }

    /// The header interceptor that puts this account's calls in its own moto account.
    pub fn interceptor(&self) -> AccountHeader {
        AccountHeader(self.id.clone())
    }

    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::from_conf(
            aws_sdk_ecs::config::Builder::from(&self.sdk)
                .interceptor(self.interceptor())
                .build(),
        )
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&self.sdk)
                .interceptor(self.interceptor())
                .build(),
        )
    }

    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(&self.sdk)
                .interceptor(self.interceptor())
                .build(),
        )
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&self.sdk)
                .interceptor(self.interceptor())
                .build(),
        )
    }
}

impl Default for Account {
    fn default() -> Self {
        Account::new()
    }
}

/// Adds `x-moto-account-id` to every request.
#[derive(Debug, Clone)]
pub struct AccountHeader(pub String);

impl Intercept for AccountHeader {
    fn name(&self) -> &'static str {
        "MotoAccountHeader"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context
            .request_mut()
            .headers_mut()
            .insert("x-moto-account-id", self.0.clone());
        Ok(())
    }
}
