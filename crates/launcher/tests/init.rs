//! The launcher binary's init, against a fake Lambda Runtime API on loopback: a bad config is
//! reported to `/runtime/init/error` with the validation message; a good one reaches
//! `/runtime/invocation/next`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The first request the bootstrap sends: (method and path, body).
fn first_request(listener: &TcpListener, child: &mut Child) -> (String, String) {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                let _ = child.kill();
                panic!("the bootstrap never called the Runtime API: {e}");
            }
        }
    };
    read_request(stream)
}

fn read_request(stream: TcpStream) -> (String, String) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim().is_empty() {
            break;
        }
        if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let mut stream = stream;
    let _ = stream
        .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}");
    let mut parts = request_line.split_whitespace();
    (
        format!(
            "{} {}",
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("")
        ),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn spawn(listener: &TcpListener, config: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_launcher"))
        .env_clear()
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            listener.local_addr().unwrap().to_string(),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "launcher")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_REGION", "us-east-1")
        .env("JOBRUNNER_CONFIG", config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the launcher binary")
}

#[test]
fn invalid_config_is_reported_as_the_init_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut child = spawn(
        &listener,
        "[jobs.x]\ntask_definition = \"x\"\ncontainer = \"c\"\ncpu = 256",
    );
    let (request, body) = first_request(&listener, &mut child);
    assert_eq!(request, "POST /2018-06-01/runtime/init/error");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["errorType"], "jobrunner.InvalidConfig");
    let message = body["errorMessage"].as_str().unwrap();
    assert!(message.starts_with("invalid config: jobs.x"), "{message}");
    let status = child.wait().unwrap();
    assert!(!status.success(), "the process exits after reporting");
}

#[test]
fn valid_config_reaches_the_invocation_loop() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut child = spawn(
        &listener,
        "[jobs.x]\ntask_definition = \"x\"\ncontainer = \"c\"\ncluster = \"c\"\nlaunch_type = \"EC2\"",
    );
    let (request, _) = first_request(&listener, &mut child);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(request, "GET /2018-06-01/runtime/invocation/next");
}
