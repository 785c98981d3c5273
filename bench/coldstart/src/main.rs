//! Cold start of Lambda bootstrap binaries, measured locally under a fake Lambda Runtime API.
//!
//! ```text
//! coldstart [--runs 30] [--warmup 2] [--endpoint http://127.0.0.1:PORT] [--call-latency MS]
//!           [--env KEY=VALUE ...] [--timeline] --function NAME BOOTSTRAP EVENT_FILE CONFIG_FILE|- [--function ...]
//! ```
//!
//! Each run starts the bootstrap with the environment Lambda gives a function
//! (`AWS_LAMBDA_FUNCTION_NAME`, `_VERSION`, `_MEMORY_SIZE`, `AWS_LAMBDA_RUNTIME_API`, region,
//! dummy credentials, `AWS_ENDPOINT_URL` when `--endpoint` is given, and `JOBRUNNER_CONFIG` set
//! to the config file's text) and a fresh fake Runtime API on a loopback port, then times:
//! - **init**: process start → its first `GET /2018-06-01/runtime/invocation/next`;
//! - **first response**: process start → the `POST …/invocation/{id}/response` (or `/error`)
//!   for the one event handed out;
//! - **calls**: with `--endpoint`, the function's AWS calls go through a forwarding proxy of the
//!   harness (the function's `AWS_ENDPOINT_URL` is the proxy), which times each call from its
//!   request's first byte to its response's last byte; calls is the time during the first
//!   invocation when at least one call was under way (overlapping calls count once), so
//!   first response − calls is the function's own time, init included. `--call-latency MS`
//!   holds each call's request that long before forwarding it: a model of an AWS endpoint's
//!   round trip, which moto on loopback answers in about a millisecond.
//!
//! `--timeline` also prints each measured run to stderr: init, every call's interval and the
//! response, in milliseconds from process start, to see where a function's own time falls
//! (before its first call, between calls, after the last).
//!
//! The JSON also splits the own time of functions that make calls: `before_calls_ms` (init → the
//! first call's request), `between_calls_ms` (from the first call's request to the last call's
//! response, the time when no call was under way: decoding answers, deciding, building the next
//! request) and `after_calls_ms` (the last response → the function's response).
//!
//! Functions take turns run by run (so a noisy neighbour hits them all alike); `--warmup` runs
//! of each are discarded first. Prints JSON: per function the median, p95, min and max of each
//! figure, in milliseconds, how many first invocations succeeded, and the first response body.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Function {
    name: String,
    bootstrap: PathBuf,
    event: String,
    config: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Next,
    Response,
    Error,
    InitError,
}

struct Measurement {
    init_ms: f64,
    first_response_ms: Option<f64>,
    calls_ms: Option<f64>,
    /// Each call's request-first-byte and response-last-byte, in ms from process start.
    calls: Vec<(f64, f64)>,
    ok: bool,
    body: String,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("coldstart: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (mut runs, mut warmup, mut endpoint) = (30usize, 2usize, None::<String>);
    let mut latency = Duration::ZERO;
    let mut extra_env: Vec<(String, String)> = Vec::new();
    let mut timeline = false;
    let mut functions = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--runs" => runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--warmup" => warmup = value()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--endpoint" => endpoint = Some(value()?),
            "--timeline" => timeline = true,
            "--call-latency" => {
                let ms = value()?
                    .parse()
                    .map_err(|e| format!("--call-latency: {e}"))?;
                latency = Duration::from_millis(ms);
            }
            "--env" => {
                let pair = value()?;
                let (key, val) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("--env {pair}: use KEY=VALUE"))?;
                extra_env.push((key.to_string(), val.to_string()));
            }
            "--function" => {
                let name = value()?;
                let bootstrap = PathBuf::from(value()?);
                let event_path = value()?;
                let config_path = value()?;
                let event = std::fs::read_to_string(&event_path)
                    .map_err(|e| format!("{event_path}: {e}"))?;
                let config = match config_path.as_str() {
                    "-" => None,
                    path => {
                        Some(std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?)
                    }
                };
                if !bootstrap.is_file() {
                    return Err(format!("{}: no such bootstrap binary", bootstrap.display()));
                }
                functions.push(Function {
                    name,
                    bootstrap,
                    event,
                    config,
                });
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if functions.is_empty() {
        return Err("give at least one --function NAME BOOTSTRAP EVENT CONFIG|-".into());
    }
    let mut results: Vec<Vec<Measurement>> = functions.iter().map(|_| Vec::new()).collect();
    for round in 0..warmup + runs {
        for (i, function) in functions.iter().enumerate() {
            let m = measure(function, endpoint.as_deref(), latency, &extra_env)
                .map_err(|e| format!("{} (run {round}): {e}", function.name))?;
            if round >= warmup {
                if timeline {
                    eprintln!("{}", m.timeline(&function.name));
                }
                results[i].push(m);
            }
        }
    }
    let mut out = String::from("{\n");
    out.push_str(&format!(
        "  \"runs\": {runs},\n  \"warmup\": {warmup},\n  \"functions\": [\n"
    ));
    for (i, (function, ms)) in functions.iter().zip(&results).enumerate() {
        let init: Vec<f64> = ms.iter().map(|m| m.init_ms).collect();
        let first: Vec<f64> = ms.iter().filter_map(|m| m.first_response_ms).collect();
        let calls: Vec<f64> = ms.iter().filter_map(|m| m.calls_ms).collect();
        let own: Vec<f64> = ms
            .iter()
            .filter_map(|m| Some(m.first_response_ms? - m.calls_ms?))
            .collect();
        let splits: Vec<[f64; 3]> = ms.iter().filter_map(Measurement::own_split).collect();
        let split = |i: usize| stats(&splits.iter().map(|s| s[i]).collect::<Vec<_>>());
        let ok = ms.iter().filter(|m| m.ok).count();
        let body = ms.first().map(|m| m.body.clone()).unwrap_or_default();
        out.push_str(&format!(
            "    {{\"name\": {}, \"bootstrap\": {}, \"init_ms\": {}, \"first_response_ms\": {}, \"calls_ms\": {}, \"first_response_less_calls_ms\": {}, \"before_calls_ms\": {}, \"between_calls_ms\": {}, \"after_calls_ms\": {}, \"ok\": {ok}, \"first_body\": {}}}{}\n",
            quote(&function.name),
            quote(&function.bootstrap.display().to_string()),
            stats(&init),
            stats(&first),
            stats(&calls),
            stats(&own),
            split(0),
            split(1),
            split(2),
            quote(&body.chars().take(300).collect::<String>()),
            if i + 1 < functions.len() { "," } else { "" }
        ));
    }
    out.push_str("  ]\n}\n");
    print!("{out}");
    Ok(())
}

/// One cold start of `function`.
fn measure(
    function: &Function,
    endpoint: Option<&str>,
    latency: Duration,
    extra_env: &[(String, String)],
) -> Result<Measurement, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel::<(Call, Instant, String)>();
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicBool::new(false));
    let server = {
        let (stop, served, event, name) = (
            stop.clone(),
            served.clone(),
            function.event.clone(),
            function.name.clone(),
        );
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (tx, served, event, name) =
                    (tx.clone(), served.clone(), event.clone(), name.clone());
                thread::spawn(move || serve(stream, &tx, &served, &event, &name));
            }
        })
    };

    let mut command = Command::new(&function.bootstrap);
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &function.name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let proxy = endpoint
        .map(|endpoint| CallsProxy::start(endpoint, latency))
        .transpose()?;
    if let Some(proxy) = &proxy {
        command.env("AWS_ENDPOINT_URL", format!("http://{}", proxy.address));
    }
    if let Some(config) = &function.config {
        command.env("JOBRUNNER_CONFIG", config);
    }
    command.envs(extra_env.iter().map(|(k, v)| (k, v)));
    let start = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", function.bootstrap.display()))?;

    let deadline = start + Duration::from_secs(30);
    let mut init = None;
    let mut outcome = None;
    while outcome.is_none() {
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok((Call::Next, at, _)) => {
                init.get_or_insert(at);
            }
            Ok((Call::InitError, at, body)) => outcome = Some((Call::InitError, at, body)),
            Ok((call, at, body)) => outcome = Some((call, at, body)),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    stop.store(true, Ordering::SeqCst);
    let _ = TcpStream::connect(address);
    let _ = server.join();
    let intervals = proxy.map(CallsProxy::finish);

    let Some((call, at, body)) = outcome else {
        return Err(format!(
            "no response within 30 s (init {})",
            if init.is_some() { "done" } else { "not done" }
        ));
    };
    if call == Call::InitError {
        return Err(format!("init failed: {body}"));
    }
    let ms = |t: Instant| (t - start).as_secs_f64() * 1000.0;
    let init = init.ok_or("responded before asking for an event")?;
    let mut calls: Vec<(f64, f64)> = intervals
        .iter()
        .flatten()
        .map(|&(from, to)| (ms(from), ms(to)))
        .collect();
    calls.sort_by(|a, b| a.0.total_cmp(&b.0));
    let calls_ms = intervals.map(|_| busy(&calls, ms(init), ms(at)));
    Ok(Measurement {
        init_ms: ms(init),
        first_response_ms: Some(ms(at)),
        calls_ms,
        calls,
        ok: call == Call::Response,
        body,
    })
}

impl Measurement {
    /// The own time of the first invocation around its calls: init → first request, the idle
    /// time from the first request to the last response, the last response → the function's
    /// response. None for a run without calls.
    fn own_split(&self) -> Option<[f64; 3]> {
        let response = self.first_response_ms?;
        let within: Vec<(f64, f64)> = self
            .calls
            .iter()
            .copied()
            .filter(|&(from, to)| from < response && to > self.init_ms)
            .collect();
        let first = within
            .iter()
            .map(|c| c.0)
            .reduce(f64::min)?
            .max(self.init_ms);
        let last = within.iter().map(|c| c.1).reduce(f64::max)?.min(response);
        let idle = last - first - busy(&self.calls, first, last);
        Some([first - self.init_ms, idle, response - last])
    }

    /// One line: `NAME init 3.10 calls 4.20-9.80 11.05-16.40 response 17.02`.
    fn timeline(&self, name: &str) -> String {
        let calls: Vec<String> = self
            .calls
            .iter()
            .map(|(from, to)| format!("{from:.2}-{to:.2}"))
            .collect();
        let response = self
            .first_response_ms
            .map_or_else(|| "none".to_string(), |ms| format!("{ms:.2}"));
        format!(
            "{name} init {:.2} calls {} response {response}",
            self.init_ms,
            calls.join(" ")
        )
    }
}

/// A forwarding proxy in front of the AWS endpoint that records when each call was under way.
struct CallsProxy {
    address: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: thread::JoinHandle<Vec<thread::JoinHandle<()>>>,
    intervals: Arc<Mutex<Vec<(Instant, Instant)>>>,
}

/// One proxied connection: the call under way (its request's first byte) and the last response
/// byte seen since.
#[derive(Default)]
struct ConnectionState {
    open: Option<Instant>,
    last_response: Option<Instant>,
}

impl ConnectionState {
    /// A request byte at `t`: after a response, the previous call is over and a new one starts.
    /// True when this byte starts a call.
    fn request(&mut self, t: Instant, intervals: &Mutex<Vec<(Instant, Instant)>>) -> bool {
        match (self.open, self.last_response) {
            (Some(start), Some(end)) => {
                lock(intervals).push((start, end));
                (self.open, self.last_response) = (Some(t), None);
                true
            }
            (None, _) => {
                self.open = Some(t);
                true
            }
            (Some(_), None) => false,
        }
    }

    fn close(&mut self, intervals: &Mutex<Vec<(Instant, Instant)>>) {
        if let (Some(start), Some(end)) = (self.open.take(), self.last_response.take()) {
            lock(intervals).push((start, end));
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CallsProxy {
    /// Listens on a loopback port and forwards each connection to `endpoint` (`http://host:port`),
    /// each call's request `latency` late.
    fn start(endpoint: &str, latency: Duration) -> Result<Self, String> {
        let upstream = endpoint
            .strip_prefix("http://")
            .ok_or_else(|| format!("--endpoint {endpoint}: only http:// endpoints"))?
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let intervals = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (stop, intervals) = (stop.clone(), intervals.clone());
            thread::spawn(move || {
                let mut connections = Vec::new();
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let (Ok(client), Ok(server)) = (client, TcpStream::connect(&upstream)) else {
                        continue;
                    };
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    let state = Arc::new(Mutex::new(ConnectionState::default()));
                    let (Ok(client_read), Ok(server_read)) =
                        (client.try_clone(), server.try_clone())
                    else {
                        continue;
                    };
                    let requests = {
                        let (state, intervals) = (state.clone(), intervals.clone());
                        let (mut from, mut to) = (client_read, server);
                        thread::spawn(move || {
                            copy(&mut from, &mut to, |t| {
                                let starts = lock(&state).request(t, &intervals);
                                if starts && !latency.is_zero() {
                                    thread::sleep(latency);
                                }
                            });
                            let _ = to.shutdown(std::net::Shutdown::Both);
                            lock(&state).close(&intervals);
                        })
                    };
                    let responses = {
                        let (mut from, mut to) = (server_read, client);
                        thread::spawn(move || {
                            copy(&mut from, &mut to, |t| lock(&state).last_response = Some(t));
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        })
                    };
                    connections.extend([requests, responses]);
                }
                connections
            })
        };
        Ok(Self {
            address,
            stop,
            acceptor,
            intervals,
        })
    }

    /// Stops accepting, waits for the connections to close (the process is gone) and returns
    /// the calls' intervals.
    fn finish(self) -> Vec<(Instant, Instant)> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address);
        for connection in self.acceptor.join().unwrap_or_default() {
            let _ = connection.join();
        }
        std::mem::take(&mut *lock(&self.intervals))
    }
}

/// Copies until EOF, calling `seen` with the time of each chunk read.
fn copy(from: &mut TcpStream, to: &mut TcpStream, mut seen: impl FnMut(Instant)) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                seen(Instant::now());
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// How long (ms) within `from..to` at least one interval was under way.
fn busy(intervals: &[(f64, f64)], from: f64, to: f64) -> f64 {
    let mut clipped: Vec<(f64, f64)> = intervals
        .iter()
        .map(|&(a, b)| (a.max(from), b.min(to)))
        .filter(|(a, b)| a < b)
        .collect();
    clipped.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut total = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for (a, b) in clipped {
        current = match current {
            Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some((a, b)) = current {
        total += b - a;
    }
    total
}

/// Serves one connection of the Runtime API client (HTTP/1.1, keep-alive).
fn serve(
    stream: TcpStream,
    tx: &mpsc::Sender<(Call, Instant, String)>,
    served: &AtomicBool,
    event: &str,
    name: &str,
) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let Some((method, path, body)) = read_request(&mut reader) else {
            return;
        };
        let now = Instant::now();
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let _ = tx.send((Call::Next, now, String::new()));
            if served.swap(true, Ordering::SeqCst) {
                // One event per cold start: hold this request until the process is stopped.
                let _ = reader.read(&mut [0u8; 1]);
                return;
            }
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis()
                + 60_000;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                 lambda-runtime-aws-request-id: 8476a536-e9f4-11e8-9739-2dfe598c3fcd\r\n\
                 lambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:{name}\r\n\
                 lambda-runtime-trace-id: Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=0\r\n\
                 content-length: {}\r\n\r\n{event}",
                event.len()
            );
            if writer.write_all(response.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        let call = if method == "POST" && path.ends_with("/response") {
            Some(Call::Response)
        } else if method == "POST" && path.ends_with("/init/error") {
            Some(Call::InitError)
        } else if method == "POST" && path.ends_with("/error") {
            Some(Call::Error)
        } else {
            None
        };
        let status = match call {
            Some(call) => {
                let _ = tx.send((call, now, body));
                "202 Accepted"
            }
            None => "404 Not Found",
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: 16\r\n\r\n{{\"status\":\"OK\"}}"
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// Reads one request: method, path and body (content-length or chunked).
fn read_request(reader: &mut impl BufRead) -> Option<(String, String, String)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        } else if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    }
    Some((method, path, String::from_utf8_lossy(&body).into_owned()))
}

fn stats(values: &[f64]) -> String {
    if values.is_empty() {
        return "null".into();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        sorted[((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
    };
    let median = if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
    };
    format!(
        "{{\"median\": {:.2}, \"p95\": {:.2}, \"min\": {:.2}, \"max\": {:.2}, \"n\": {}}}",
        median,
        rank(95.0),
        sorted[0],
        sorted[sorted.len() - 1],
        sorted.len()
    )
}

fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
