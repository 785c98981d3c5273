//! The HTTPS client's trust store against a local TLS server whose certificate a CA of the
//! test's own signed: the compiled-in AWS roots refuse it; the system store trusts it once the
//! CA is in `SSL_CERT_FILE` (checked in a child process, since the system store is read once
//! per process and only before the first connection).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::error::SdkError;
use jobrunner_aws::tls::{self, TrustRoots};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A CA of the test's own and a `localhost` certificate it signed, PEM.
struct TestPki {
    ca: String,
    cert: String,
    key: String,
}

fn test_pki() -> TestPki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "jobrunner test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .expect("server params")
        .signed_by(&key, &issuer)
        .expect("server certificate");
    TestPki {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// What the server saw of one connection: the request line after a handshake, or the
/// handshake's error.
type Seen = Result<String, String>;

/// Serves TLS on a loopback port: each connection's handshake, then one HTTP request answered
/// with `200 {}` (an empty ListQueues result). Returns the port and what each connection saw.
async fn serve(pki: &TestPki) -> (u16, mpsc::UnboundedReceiver<Seen>) {
    let certs = CertificateDer::pem_slice_iter(pki.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("server certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(pki.key.as_bytes()).expect("server key PEM");
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let mut tls = match acceptor.accept(tcp).await {
                    Ok(tls) => tls,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let _ = tx.send(Ok(text.lines().next().unwrap_or_default().to_string()));
                let body = "{}";
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
                     content-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, rx)
}

/// An SQS client on `https://localhost:{port}` with jobrunner's HTTPS client and `roots`, one
/// attempt per call.
fn sqs(port: u16, roots: TrustRoots) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(format!("https://localhost:{port}"))
        .http_client(tls::http_client(roots).expect("HTTPS client"))
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn the_aws_roots_refuse_a_server_signed_by_another_ca() {
    let pki = test_pki();
    let (port, mut seen) = serve(&pki).await;
    let err = sqs(port, TrustRoots::Aws)
        .list_queues()
        .send()
        .await
        .expect_err("a certificate from the test's CA must not be trusted");
    assert!(
        matches!(err, SdkError::DispatchFailure(_)),
        "a connection failure, not a response: {err:?}"
    );
    let text = chain(&err);
    assert!(
        text.contains("UnknownIssuer") || text.contains("unknown issuer"),
        "refused for its issuer: {text}"
    );
    let server = seen.recv().await.expect("the server saw the connection");
    assert!(server.is_err(), "the handshake must fail: {server:?}");
}

#[test]
fn the_system_store_trusts_the_ca_in_ssl_cert_file() {
    let pki = test_pki();
    let dir = tempfile::tempdir().expect("temporary directory");
    for (name, pem) in [
        ("ca.pem", &pki.ca),
        ("cert.pem", &pki.cert),
        ("key.pem", &pki.key),
    ] {
        std::fs::write(dir.path().join(name), pem).expect("write PEM");
    }
    let exe = std::env::current_exe().expect("this test binary");
    let output = Command::new(exe)
        .args([
            "--exact",
            "system_store_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("JOBRUNNER_TEST_PKI", dir.path())
        .env("SSL_CERT_FILE", dir.path().join("ca.pem"))
        .env_remove("SSL_CERT_DIR")
        .env(tls::ROOTS_ENV, "system")
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("system store: request POST / HTTP/1.1"),
        "child did not reach the server:\n{stdout}"
    );
}

/// Run by `the_system_store_trusts_the_ca_in_ssl_cert_file` with the test's CA as the
/// system store; does nothing on its own.
#[tokio::test]
#[ignore = "a child process of the_system_store_trusts_the_ca_in_ssl_cert_file"]
async fn system_store_child() {
    let Some(dir) = std::env::var_os("JOBRUNNER_TEST_PKI") else {
        return;
    };
    let read = |name: &str| std::fs::read_to_string(Path::new(&dir).join(name)).expect(name);
    let pki = TestPki {
        ca: read("ca.pem"),
        cert: read("cert.pem"),
        key: read("key.pem"),
    };
    let roots = TrustRoots::from_env().expect("JOBRUNNER_TLS_ROOTS=system");
    assert_eq!(roots, TrustRoots::System);
    let (port, mut seen) = serve(&pki).await;
    let result = sqs(port, roots).list_queues().send().await;
    let server = seen.recv().await.expect("the server saw the connection");
    let request = server.expect("the handshake succeeds");
    println!("system store: request {request}");
    result.map_err(|e| chain(&e)).expect("the call succeeds");
}
