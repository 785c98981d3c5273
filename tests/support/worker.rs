//! Support for the queue worker's tests: a command line for the worker binary, credentials that put the binary's calls in a test's own moto account, and a fake ECS agent
//! that records task protection requests.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::{Account, REGION, endpoint};

/// Temporary credentials (AssumeRole into the account) that moto maps to `account`, so a
/// separate process's calls land in the test's own account without the header interceptor.
pub async fn credentials(account: &Account) -> [(String, String); 3] {
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&account.sdk)
            .interceptor(account.interceptor())
            .build(),
    );
    let creds = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{}:role/worker", account.id))
        .role_session_name("worker")
        .send()
        .await
        .expect("assume role")
        .credentials
        .expect("credentials");
    [
        ("AWS_ACCESS_KEY_ID".into(), creds.access_key_id),
        ("AWS_SECRET_ACCESS_KEY".into(), creds.secret_access_key),
        ("AWS_SESSION_TOKEN".into(), creds.session_token),
    ]
}

/// The worker `binary` against moto in `account`: a clean environment with PATH, the
/// endpoint, the region and the account's credentials; stderr (the JSON logs) in `log`.
pub async fn command(binary: &Path, account: &Account, log: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "info")
        .envs(credentials(account).await)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(std::fs::File::create(log).expect("log file"))
        .kill_on_drop(true);
    command
}

/// One request the fake agent received.
#[derive(Debug, Clone)]
pub struct AgentRequest {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub body: Value,
}

/// A fake ECS container agent: answers every request as the task protection endpoint does
/// and records it.
#[derive(Clone)]
pub struct FakeAgent {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<AgentRequest>>>,
}

impl FakeAgent {
    pub async fn start() -> FakeAgent {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let record = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let record = record.clone();
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut stream).await else {
                        return;
                    };
                    let enabled = request.body["ProtectionEnabled"].as_bool().unwrap_or(false);
                    record.lock().unwrap().push(request);
                    let body = serde_json::json!({"protection": {
                        "ExpirationDate": "2026-11-25T18:00:00Z",
                        "ProtectionEnabled": enabled,
                        "TaskArn": "arn:aws:ecs:us-east-1:123456789012:task/jobs/0123"
                    }})
                    .to_string();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        FakeAgent { addr, requests }
    }

    /// The value for `ECS_AGENT_URI`.
    pub fn uri(&self) -> String {
        format!("http://{}/api/task-0123", self.addr)
    }

    pub fn requests(&self) -> Vec<AgentRequest> {
        self.requests.lock().unwrap().clone()
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<AgentRequest> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let header_end = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..header_end]).to_string();
    let mut lines = head.lines();
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < header_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let body = serde_json::from_slice(&data[header_end..]).unwrap_or(Value::Null);
    Some(AgentRequest {
        at: Instant::now(),
        method,
        path,
        body,
    })
}
