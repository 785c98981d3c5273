//! The launcher binary prints its metric lines on stdout: one invocation through a fake Lambda
//! Runtime API on loopback (with an X-Ray trace header, as Lambda sends it), of an event whose
//! plan fails before any AWS call (ten copies of a 1000-character key exceed ECS's overrides
//! limit), so no AWS endpoint is needed. Among the runtime's own log lines, stdout holds one
//! EMF document: `launch_failures` of the job.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]
launch_type = "FARGATE"

[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
command = ["{key}", "{key}", "{key}", "{key}", "{key}", "{key}", "{key}", "{key}", "{key}", "{key}"]

[[triggers.s3]]
job = "thumbnails"
bucket = "uploads"
"#;

fn accept(listener: &TcpListener, child: &mut Child) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                return stream;
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                let _ = child.kill();
                panic!("the bootstrap never called the Runtime API: {e}");
            }
        }
    }
}

/// Reads one request: (method and path, body).
fn read_request(stream: &TcpStream) -> (String, String) {
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

#[test]
fn one_invocation_prints_its_emf_line_on_stdout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_launcher"))
        .env_clear()
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            listener.local_addr().unwrap().to_string(),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "launcher")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        // Nothing listens there: the invocation must make no AWS call.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("JOBRUNNER_CONFIG", CONFIG)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the launcher binary");

    // GET …/invocation/next: one S3 event.
    let mut stream = accept(&listener, &mut child);
    let (request, _) = read_request(&stream);
    assert_eq!(request, "GET /2018-06-01/runtime/invocation/next");
    let key = "k".repeat(1000);
    let event = serde_json::json!({"version": "0", "id": "1", "detail-type": "Object Created",
        "source": "aws.s3", "account": "123456789012", "time": "2026-11-22T05:00:00Z",
        "region": "us-east-1", "resources": [],
        "detail": {"bucket": {"name": "uploads"}, "object": {"key": key, "size": 3, "etag": "e",
            "sequencer": "0A3"}, "reason": "PutObject"}})
    .to_string();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 60_000;
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
         lambda-runtime-aws-request-id: req-1\r\nlambda-runtime-deadline-ms: {deadline}\r\n\
         lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:launcher\r\n\
         lambda-runtime-trace-id: Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{event}",
        event.len()
    );
    stream.write_all(response.as_bytes()).unwrap();
    drop(stream);

    // POST …/invocation/req-1/error: the plan failed (permanently).
    let stream = accept(&listener, &mut child);
    let (request, body) = read_request(&stream);
    let mut stream = stream;
    let _ = stream
        .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}");
    drop(stream);
    assert_eq!(
        request, "POST /2018-06-01/runtime/invocation/req-1/error",
        "{body}"
    );
    assert!(body.contains("jobrunner.Permanent"), "{body}");

    // The next GET comes after the lines were written: stop the process and read its stdout.
    let _ = accept(&listener, &mut child);
    let _ = child.kill();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let _ = child.wait();
    let documents: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|document| document.get("_aws").is_some())
        .collect();
    assert_eq!(documents.len(), 1, "{stdout}");
    let document = &documents[0];
    jobrunner_core::metrics::check(document).unwrap();
    assert_eq!(document["job"], "thumbnails");
    assert_eq!(document["launch_failures"], 1);
    assert!(!stdout.contains(&key), "no object key on stdout");
}
