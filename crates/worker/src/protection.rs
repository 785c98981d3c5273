//! ECS task scale-in protection: the [`Protection`] port and its adapter for the ECS agent's
//! endpoint (`PUT $ECS_AGENT_URI/task-protection/v1/state`).
//!
//! The agent is a plain-HTTP endpoint on the task's link-local network, so one HTTP/1.1
//! connection per call (hyper, already in the SDK's stack) is all it takes.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::Error;

/// Sets the task's scale-in protection.
pub trait Protection: Send + Sync + 'static {
    /// `Some(minutes)`: protect the task for that long; `None`: release the protection.
    fn set(
        &self,
        expires_in_minutes: Option<u32>,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// [`Protection`] through the ECS container agent.
#[derive(Debug, Clone)]
pub struct EcsAgent {
    host: String,
    port: u16,
    authority: String,
    path: String,
    timeout: Duration,
}

impl EcsAgent {
    /// The agent at `$ECS_AGENT_URI`, or `None` when the variable is not set (not on ECS).
    pub fn from_env() -> Result<Option<EcsAgent>, Error> {
        match std::env::var("ECS_AGENT_URI") {
            Ok(uri) if !uri.trim().is_empty() => EcsAgent::new(&uri).map(Some),
            _ => Ok(None),
        }
    }

    /// The agent at `agent_uri` (an `http://` URI, as ECS sets it).
    pub fn new(agent_uri: &str) -> Result<EcsAgent, Error> {
        let bad = |reason: &str| Error::InvalidArgument {
            name: "ECS_AGENT_URI",
            reason: format!("{reason}: {agent_uri:?}"),
        };
        let uri: hyper::Uri = agent_uri.parse().map_err(|_| bad("not a URI"))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("the ECS agent is reached over http://"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?.to_string();
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let path = format!(
            "{}/task-protection/v1/state",
            uri.path().trim_end_matches('/')
        );
        Ok(EcsAgent {
            host,
            port: uri.port_u16().unwrap_or(80),
            authority,
            path,
            timeout: Duration::from_secs(5),
        })
    }

    async fn put(&self, body: String) -> Result<(hyper::StatusCode, Bytes), Error> {
        let io = |e: &dyn std::fmt::Display| Error::Protection(format!("{}: {e}", self.path));
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| io(&e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| io(&e))?;
        let driver = tokio::spawn(connection);
        let request = Request::put(self.path.as_str())
            .header(HOST, self.authority.as_str())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| io(&e))?;
        let response = sender.send_request(request).await.map_err(|e| io(&e))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| io(&e))?
            .to_bytes();
        driver.abort();
        Ok((status, bytes))
    }
}

/// The request body for a protection change.
pub fn request_body(expires_in_minutes: Option<u32>) -> String {
    match expires_in_minutes {
        Some(minutes) => json!({"ProtectionEnabled": true, "ExpiresInMinutes": minutes}),
        None => json!({"ProtectionEnabled": false}),
    }
    .to_string()
}

/// Reads the agent's answer: a 2xx with `protection` is success; `failure` (which can come
/// with a 200) or `error` is not.
pub fn check_response(status: u16, body: &[u8]) -> Result<(), Error> {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let reason = ["failure", "error"].iter().find_map(|key| {
        value.get(key).map(|f| {
            let code = f
                .get("Code")
                .or_else(|| f.get("Reason"))
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let text = f
                .get("Message")
                .or_else(|| f.get("Detail"))
                .and_then(Value::as_str)
                .unwrap_or("");
            format!("{code} {text}").trim().to_string()
        })
    });
    match (status, reason) {
        (200..=299, None) => Ok(()),
        (_, Some(reason)) => Err(Error::Protection(format!("HTTP {status}: {reason}"))),
        (_, None) => Err(Error::Protection(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(body)
                .chars()
                .take(200)
                .collect::<String>()
        ))),
    }
}

impl Protection for EcsAgent {
    async fn set(&self, expires_in_minutes: Option<u32>) -> Result<(), Error> {
        let body = request_body(expires_in_minutes);
        let (status, bytes) = tokio::time::timeout(self.timeout, self.put(body))
            .await
            .map_err(|_| Error::Protection(format!("{}: no answer within 5s", self.path)))??;
        check_response(status.as_u16(), &bytes)
    }
}

/// [`Protection`] for tasks outside ECS: does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProtection;

impl Protection for NoProtection {
    async fn set(&self, _expires_in_minutes: Option<u32>) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_state_path_from_the_agent_uri() {
        let a = EcsAgent::new("http://169.254.170.2/api/d0d4c5c5a1a84b0b").unwrap();
        assert_eq!(a.host, "169.254.170.2");
        assert_eq!(a.port, 80);
        assert_eq!(a.path, "/api/d0d4c5c5a1a84b0b/task-protection/v1/state");
        let a = EcsAgent::new("http://127.0.0.1:5123/api/x/").unwrap();
        assert_eq!(
            (a.port, a.path.as_str()),
            (5123, "/api/x/task-protection/v1/state")
        );
        assert_eq!(a.authority, "127.0.0.1:5123");
    }

    #[test]
    fn rejects_an_unusable_agent_uri() {
        assert_eq!(
            EcsAgent::new("https://agent/api").unwrap_err().to_string(),
            "ECS_AGENT_URI: the ECS agent is reached over http://: \"https://agent/api\""
        );
        assert!(EcsAgent::new("not a uri").is_err());
    }

    #[test]
    fn request_bodies() {
        let on: Value = serde_json::from_str(&request_body(Some(15))).unwrap();
        assert_eq!(
            on,
            json!({"ProtectionEnabled": true, "ExpiresInMinutes": 15})
        );
        let off: Value = serde_json::from_str(&request_body(None)).unwrap();
        assert_eq!(off, json!({"ProtectionEnabled": false}));
    }

    #[test]
    fn reads_the_agent_answers() {
        check_response(
            200,
            br#"{"protection":{"ProtectionEnabled":true,"ExpirationDate":"2026-11-25T16:00:00Z","TaskArn":"arn"}}"#,
        )
        .unwrap();
        let failure = check_response(
            200,
            br#"{"failure":{"Arn":"arn","Reason":"TASK_NOT_VALID","Detail":"gone"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            failure.to_string(),
            "task protection: HTTP 200: TASK_NOT_VALID gone"
        );
        let error = check_response(
            400,
            br#"{"error":{"Code":"InvalidParameterException","Message":"bad"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "task protection: HTTP 400: InvalidParameterException bad"
        );
        assert!(check_response(503, b"busy").is_err());
    }

    /// A one-shot agent: answers the next request with `status` and `body`, and hands back
    /// the request it read.
    async fn agent_answering(
        status: u16,
        body: &'static str,
    ) -> (EcsAgent, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let agent = EcsAgent::new(&format!(
            "http://{}/api/t-1",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        let served = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            // Headers, then the (small) JSON body that ends with `}`.
            while !request.ends_with(b"}") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "connection closed early");
                request.extend_from_slice(&buf[..n]);
            }
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8(request).unwrap()
        });
        (agent, served)
    }

    #[tokio::test]
    async fn puts_the_protection_state_to_the_agent() {
        let (agent, served) =
            agent_answering(200, r#"{"protection":{"ProtectionEnabled":true}}"#).await;
        agent.set(Some(15)).await.unwrap();
        let request = served.await.unwrap();
        assert!(
            request.starts_with("PUT /api/t-1/task-protection/v1/state HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains("content-type: application/json")
        );
        // The body as JSON (key order carries no meaning; serde_json may keep insertion order).
        let body = &request[request.find('{').unwrap()..];
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(body).unwrap(),
            serde_json::json!({"ProtectionEnabled": true, "ExpiresInMinutes": 15})
        );
    }

    #[tokio::test]
    async fn a_refusal_from_the_agent_is_an_error() {
        let (agent, served) = agent_answering(
            200,
            r#"{"failure":{"Arn":"a","Reason":"TASK_NOT_VALID","Detail":"stopping"}}"#,
        )
        .await;
        let e = agent.set(None).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "task protection: HTTP 200: TASK_NOT_VALID stopping"
        );
        let request = served.await.unwrap();
        let body = &request[request.find('{').unwrap()..];
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(body).unwrap(),
            serde_json::json!({"ProtectionEnabled": false})
        );
    }

    #[tokio::test]
    async fn an_absent_agent_is_an_error_not_a_hang() {
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let agent = EcsAgent::new(&format!("http://127.0.0.1:{port}/api/t-1")).unwrap();
        let e = agent.set(Some(1)).await.unwrap_err();
        assert!(
            e.to_string()
                .starts_with("task protection: /api/t-1/task-protection/v1/state:"),
            "{e}"
        );
    }
}
