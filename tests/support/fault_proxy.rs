//! An ECS-faithful fault proxy: a smithy HTTP client that sits between an SDK client and moto
//! and adds what moto lacks, modelled on AWS's documented behaviour.
//!
//! - `clientToken` memory for RunTask: 24 hours per cluster (and account). The same token with
//!   the same parameters replays the original response (the original tasks); with different
//!   parameters it answers `ConflictException` whose `resourceIds` are the original task ARNs.
//!   moto itself ignores the token, so without this a retried RunTask starts a second task.
//! - Token-bucket throttling: RunTask calls (Fargate: 20 calls/s burst and sustained) and
//!   Fargate task launches (burst 100, 20 tasks/s sustained), answered like ECS with HTTP 400
//!   `{"__type":"ThrottlingException","message":"Rate exceeded"}`. Other operations can be given
//!   buckets too ([`Limits::api`]).
//! - Faults at seeded rates ([`Faults`]) or scripted ones ([`Injection`]): HTTP 500 and 503,
//!   dropped connections (a connector I/O error), slow responses (past the SDK's attempt
//!   timeout when the test sets that timeout below [`Faults::slow_delay`]), and RunTask capacity
//!   failures in a 200 response. 500, 503, drops and slow responses happen either before the
//!   request reaches ECS or after ECS has acted on it (the answer is lost), which is the case
//!   that needs idempotency.
//! - Counters ([`Stats`], [`FaultProxy::launches`]): calls per operation, throttled answers,
//!   faults by kind, replays, conflicts, tasks started per token and per object.
//! - A running-task gauge ([`FaultProxy::running`]): every task moto starts is logged with
//!   the time it started ([`FaultProxy::started_tasks`]) and counted as running until the test
//!   reports it stopped ([`FaultProxy::tasks_stopped`]); the gauge's maximum is sampled at
//!   every start and every stop.
//!
//! Fault decisions are a hash of (seed, RunTask client token or operation name, arrival number
//! of that token or operation), so a given event meets the same faults on every run whatever
//! the interleaving of concurrent callers; only throttling depends on timing.
//!
//! The proxy forwards with plain HTTP/1.1 over loopback (moto), one connection per request, on
//! tokio's blocking pool: once a request has "reached ECS" its processing completes even when
//! the SDK gives up on the attempt, as a real server's would.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::timeout::TimeoutConfig;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use serde_json::{Value, json};

use crate::Account;

/// How long ECS remembers a RunTask `clientToken`.
pub const CLIENT_TOKEN_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The reason Fargate gives in `failures[]` when it has no capacity.
pub const CAPACITY_REASON: &str = "Capacity is unavailable at this time. Please try again later or in a different availability zone";

static NEXT_PROXY: AtomicU64 = AtomicU64::new(0);

/// A token bucket's shape: `burst` tokens at most, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub burst: f64,
    pub per_second: f64,
}

/// What the proxy limits, and whether it remembers client tokens.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Call buckets per operation name (e.g. `RunTask`, `Publish`).
    pub api: Vec<(String, Rate)>,
    /// Fargate task launches (tasks, not calls), shared by every RunTask.
    pub fargate_launches: Option<Rate>,
    /// Whether RunTask's `clientToken` is honoured (ECS) or ignored (moto alone).
    pub remember_client_tokens: bool,
    pub client_token_ttl: Duration,
}

impl Limits {
    /// ECS with Fargate, per account and region, as documented in "AWS Fargate throttling
    /// quotas": RunTask 20 calls/s (burst and sustained), task launches burst 100, 20/s.
    pub fn ecs() -> Limits {
        Limits {
            api: vec![(
                "RunTask".into(),
                Rate {
                    burst: 20.0,
                    per_second: 20.0,
                },
            )],
            fargate_launches: Some(Rate {
                burst: 100.0,
                per_second: 20.0,
            }),
            remember_client_tokens: true,
            client_token_ttl: CLIENT_TOKEN_TTL,
        }
    }

    /// No throttling; client tokens still honoured.
    pub fn unthrottled() -> Limits {
        Limits {
            api: vec![],
            fargate_launches: None,
            ..Limits::ecs()
        }
    }

    /// Adds (or replaces) a call bucket for `operation`.
    pub fn with_api(mut self, operation: &str, rate: Rate) -> Limits {
        self.api.retain(|(op, _)| op != operation);
        self.api.push((operation.into(), rate));
        self
    }
}

/// Seeded random faults. Rates are probabilities per call of an operation in `operations`
/// (all operations when empty); they are tried in the order of the fields.
#[derive(Debug, Clone)]
pub struct Faults {
    pub seed: u64,
    /// HTTP 500 (ECS `ServerException`, SNS/SQS `InternalError`/`InternalFailure`).
    pub server_error: f64,
    /// HTTP 503 `ServiceUnavailable`.
    pub unavailable: f64,
    /// The connection drops: the SDK sees an I/O error.
    pub dropped: f64,
    /// The response comes `slow_delay` late.
    pub slow: f64,
    /// RunTask only: 200 with `tasks: []` and a Fargate capacity failure.
    pub capacity: f64,
    pub slow_delay: Duration,
    pub operations: Vec<String>,
    /// Only this phase (`None`: before or after, half and half).
    pub phase: Option<Phase>,
}

impl Faults {
    /// No random faults.
    pub fn none() -> Faults {
        Faults {
            seed: 0,
            server_error: 0.0,
            unavailable: 0.0,
            dropped: 0.0,
            slow: 0.0,
            capacity: 0.0,
            slow_delay: Duration::from_secs(2),
            operations: vec![],
            phase: None,
        }
    }

    /// The same `rate` for each kind of fault on `operations`.
    pub fn each(seed: u64, rate: f64, operations: &[&str]) -> Faults {
        Faults {
            seed,
            server_error: rate,
            unavailable: rate,
            dropped: rate,
            slow: rate,
            capacity: rate,
            operations: operations.iter().map(|s| s.to_string()).collect(),
            ..Faults::none()
        }
    }

    fn applies_to(&self, operation: &str) -> bool {
        self.operations.is_empty() || self.operations.iter().any(|op| op == operation)
    }
}

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    ServerError,
    Unavailable,
    Dropped,
    Slow,
    NoCapacity,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::ServerError => "http_500",
            Fault::Unavailable => "http_503",
            Fault::Dropped => "dropped",
            Fault::Slow => "slow",
            Fault::NoCapacity => "capacity",
        }
    }
}

/// When a fault strikes: before the request reaches the service, or after the service has
/// acted on it (its answer is lost or late).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Before,
    After,
}

/// A scripted fault: the next `times` calls of `operation` whose body contains
/// `body_contains` (when set) meet `fault` in `phase`. Checked before the random faults.
#[derive(Debug, Clone)]
pub struct Injection {
    pub operation: String,
    pub body_contains: Option<String>,
    pub fault: Fault,
    pub phase: Phase,
    pub times: u32,
}

impl Injection {
    pub fn new(operation: &str, fault: Fault, phase: Phase, times: u32) -> Injection {
        Injection {
            operation: operation.into(),
            body_contains: None,
            fault,
            phase,
            times,
        }
    }

    pub fn matching(mut self, text: &str) -> Injection {
        self.body_contains = Some(text.into());
        self
    }
}

/// What the proxy saw and did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Calls that reached the proxy, per operation (retries included).
    pub calls: BTreeMap<String, u64>,
    /// `ThrottlingException` answers (call buckets and the launch bucket).
    pub throttled: u64,
    /// Of which because of the Fargate launch bucket.
    pub throttled_launches: u64,
    /// Faults injected, by [`Fault::name`].
    pub faults: BTreeMap<String, u64>,
    /// RunTask answered from client-token memory.
    pub replays: u64,
    /// RunTask answered `ConflictException`.
    pub conflicts: u64,
    /// Tasks moto started.
    pub tasks_started: u64,
    /// Time spent waiting for moto, milliseconds, all calls together.
    pub forward_ms: u64,
    /// Calls moto carried out (answered 2xx), per operation, whether or not the answer then
    /// reached the caller: e.g. SNS messages really published.
    pub executed: BTreeMap<String, u64>,
}

impl Stats {
    pub fn calls_of(&self, operation: &str) -> u64 {
        self.calls.get(operation).copied().unwrap_or(0)
    }

    pub fn executed_of(&self, operation: &str) -> u64 {
        self.executed.get(operation).copied().unwrap_or(0)
    }

    pub fn runtask_calls(&self) -> u64 {
        self.calls_of("RunTask")
    }

    pub fn faults_injected(&self) -> u64 {
        self.faults.values().sum()
    }

    pub fn faults_of(&self, fault: Fault) -> u64 {
        self.faults.get(fault.name()).copied().unwrap_or(0)
    }
}

/// The tasks started for one client token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Launch {
    /// How many times RunTask with this token reached moto and started tasks.
    pub launches: u32,
    pub task_arns: Vec<String>,
    /// `bucket/key` (S3) or `schedule@time` from the container environment.
    pub object: Option<String>,
}

/// The proxy: clone it freely (all clones share state); give it to SDK clients with
/// [`FaultProxy::ecs`] & co, or as any config's `http_client`.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    clients: AtomicU64,
    started: Instant,
    /// Added to the clock (milliseconds): lets a test jump past the client-token memory.
    skew_ms: AtomicU64,
    limits: Limits,
    faults: Mutex<Faults>,
    injections: Mutex<Vec<Injection>>,
    state: Mutex<State>,
    tokens: Mutex<HashMap<TokenKey, Arc<Mutex<Option<TokenRecord>>>>>,
}

#[derive(Debug, Default)]
struct State {
    buckets: HashMap<String, Bucket>,
    launch_bucket: Option<Bucket>,
    arrivals: HashMap<String, u64>,
    stats: Stats,
    launches: BTreeMap<String, Launch>,
    first_launch: Option<Instant>,
    last_launch: Option<Instant>,
    /// Every task moto started, in order, with when.
    task_log: Vec<(Instant, String)>,
    gauge: Gauge,
}

/// Tasks started through the proxy and not yet reported stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauge {
    /// Running now.
    pub running: u64,
    /// The most ever running at once, sampled after every start and every stop.
    pub max_running: u64,
    /// Reported stopped so far.
    pub stopped: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    account: String,
    cluster: String,
    token: String,
}

#[derive(Debug)]
struct TokenRecord {
    at: Duration,
    params: Value,
    reply: Reply,
    task_arns: Vec<String>,
}

#[derive(Debug, Clone)]
struct Bucket {
    rate: Rate,
    tokens: f64,
    last: Duration,
}

impl Bucket {
    fn new(rate: Rate, now: Duration) -> Bucket {
        Bucket {
            rate,
            tokens: rate.burst,
            last: now,
        }
    }

    fn take(&mut self, n: f64, now: Duration) -> bool {
        let elapsed = now.saturating_sub(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_second).min(self.rate.burst);
        self.last = now;
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    fn give_back(&mut self, n: f64) {
        self.tokens = (self.tokens + n).min(self.rate.burst);
    }
}

/// A request, owned, with what the proxy needs to know about it.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    operation: String,
    /// The JSON protocols' content type (`None`: the query protocol, XML errors).
    json_content_type: Option<String>,
    /// The `x-amz-target` prefix (e.g. `AmazonEC2ContainerServiceV20141113`).
    service: String,
    account: String,
}

/// An HTTP answer, owned.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl FaultProxy {
    pub fn new(limits: Limits, faults: Faults) -> FaultProxy {
        let now = Duration::ZERO;
        let state = State {
            buckets: limits
                .api
                .iter()
                .map(|(op, rate)| (op.clone(), Bucket::new(*rate, now)))
                .collect(),
            launch_bucket: limits.fargate_launches.map(|rate| Bucket::new(rate, now)),
            ..State::default()
        };
        FaultProxy {
            inner: Arc::new(Inner {
                id: NEXT_PROXY.fetch_add(1, Ordering::Relaxed),
                clients: AtomicU64::new(0),
                started: Instant::now(),
                skew_ms: AtomicU64::new(0),
                limits,
                faults: Mutex::new(faults),
                injections: Mutex::new(vec![]),
                state: Mutex::new(state),
                tokens: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// ECS limits, no faults.
    pub fn ecs_faithful() -> FaultProxy {
        FaultProxy::new(Limits::ecs(), Faults::none())
    }

    /// Replaces the random faults (e.g. `Faults::none()` to let the system recover).
    pub fn set_faults(&self, faults: Faults) {
        *self.inner.faults.lock().unwrap() = faults;
    }

    /// Adds a scripted fault.
    pub fn inject(&self, injection: Injection) {
        self.inner.injections.lock().unwrap().push(injection);
    }

    /// Moves the proxy's clock forward (client-token memory expires; buckets refill).
    pub fn advance(&self, by: Duration) {
        self.inner
            .skew_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn stats(&self) -> Stats {
        self.inner.state.lock().unwrap().stats.clone()
    }

    /// Tasks started per client token (only tokens that started at least one task).
    pub fn launches(&self) -> BTreeMap<String, Launch> {
        self.inner.state.lock().unwrap().launches.clone()
    }

    /// When the first and the last task started (wall clock), if any did.
    pub fn launch_window(&self) -> Option<(Instant, Instant)> {
        let state = self.inner.state.lock().unwrap();
        state.first_launch.zip(state.last_launch)
    }

    /// The tasks moto started, in order, from the `from`-th on, with the time each started.
    pub fn started_tasks(&self, from: usize) -> Vec<(Instant, String)> {
        let state = self.inner.state.lock().unwrap();
        state.task_log.get(from..).unwrap_or_default().to_vec()
    }

    /// Reports `n` tasks started through the proxy as stopped (the test stopped them); returns
    /// the gauge after the stop.
    pub fn tasks_stopped(&self, n: u64) -> Gauge {
        let mut state = self.inner.state.lock().unwrap();
        let gauge = &mut state.gauge;
        gauge.running = gauge.running.saturating_sub(n);
        gauge.stopped += n;
        gauge.max_running = gauge.max_running.max(gauge.running);
        *gauge
    }

    /// Tasks running now (started through the proxy, not reported stopped) and the maximum.
    pub fn running(&self) -> Gauge {
        self.inner.state.lock().unwrap().gauge
    }

    /// Tasks started per object (`bucket/key` or `schedule@time`), all tokens together.
    pub fn tasks_per_object(&self) -> BTreeMap<String, u32> {
        let mut per_object = BTreeMap::new();
        for launch in self.inner.state.lock().unwrap().launches.values() {
            let object = launch.object.clone().unwrap_or_default();
            *per_object.entry(object).or_insert(0) += launch.task_arns.len() as u32;
        }
        per_object
    }

    /// An SDK timeout config with `attempt` per attempt (the SDK abandons a slow response
    /// after it) and jobrunner's connect and operation timeouts.
    pub fn timeouts(attempt: Duration) -> TimeoutConfig {
        let product = jobrunner_aws::client::timeout_config();
        TimeoutConfig::builder()
            .connect_timeout(product.connect_timeout().unwrap_or(Duration::from_secs(3)))
            .operation_attempt_timeout(attempt)
            .operation_timeout(
                product
                    .operation_timeout()
                    .unwrap_or(Duration::from_secs(25)),
            )
            .build()
    }

    /// A retry partition of its own: the SDK's retry quota (a token bucket in a process-wide
    /// static, per partition) is then this client's alone, as in one Lambda environment.
    fn retry_partition(&self) -> aws_sdk_ecs::config::retry::RetryPartition {
        let n = self.inner.clients.fetch_add(1, Ordering::Relaxed);
        aws_sdk_ecs::config::retry::RetryPartition::new(format!(
            "fault-proxy-{}-{n}",
            self.inner.id
        ))
    }

    /// An ECS client of `account` through this proxy, with jobrunner's retry config.
    pub fn ecs(&self, account: &Account, attempt_timeout: Duration) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::from_conf(
            aws_sdk_ecs::config::Builder::from(&account.sdk)
                .interceptor(account.interceptor())
                .http_client(self.clone())
                .timeout_config(Self::timeouts(attempt_timeout))
                .retry_partition(self.retry_partition())
                .build(),
        )
    }

    /// An SQS client of `account` through this proxy.
    pub fn sqs(&self, account: &Account, attempt_timeout: Duration) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&account.sdk)
                .interceptor(account.interceptor())
                .http_client(self.clone())
                .timeout_config(Self::timeouts(attempt_timeout))
                .retry_partition(self.retry_partition())
                .build(),
        )
    }

    /// An SNS client of `account` through this proxy.
    pub fn sns(&self, account: &Account, attempt_timeout: Duration) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(&account.sdk)
                .interceptor(account.interceptor())
                .http_client(self.clone())
                .timeout_config(Self::timeouts(attempt_timeout))
                .retry_partition(self.retry_partition())
                .build(),
        )
    }
}

impl HttpClient for FaultProxy {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for FaultProxy {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move { inner.handle(request).await })
    }
}

impl Inner {
    fn now(&self) -> Duration {
        self.started.elapsed() + Duration::from_millis(self.skew_ms.load(Ordering::Relaxed))
    }

    async fn handle(self: Arc<Self>, request: HttpRequest) -> Result<HttpResponse, ConnectorError> {
        let call = Call::from_request(&request)?;
        let fault = self.decide(&call);
        let slow_delay = self.faults.lock().unwrap().slow_delay;
        let count = |kind: Fault| {
            *self
                .state
                .lock()
                .unwrap()
                .stats
                .faults
                .entry(kind.name().into())
                .or_default() += 1
        };

        // A connection that drops on the way never reaches the throttle; every other fault
        // strikes an admitted request (a throttled one is answered by the throttle).
        if let Some((Fault::Dropped, Phase::Before)) = fault {
            count(Fault::Dropped);
            return Err(dropped());
        }
        if !self.admit(&call.operation) {
            return Ok(throttling(&call).into_response());
        }
        if let Some((kind, _)) = fault {
            count(kind);
        }
        if let Some((Fault::Slow, Phase::Before)) = fault {
            tokio::time::sleep(slow_delay).await;
        }
        match fault {
            Some((kind @ (Fault::ServerError | Fault::Unavailable), Phase::Before)) => {
                return Ok(server_fault(&call, kind).into_response());
            }
            Some((Fault::NoCapacity, _)) => return Ok(capacity_failure(&call).into_response()),
            _ => {}
        }

        // From here the request has reached the service: finish it even if the caller leaves.
        let server = self.clone();
        let reply =
            tokio::task::spawn_blocking(move || server.serve(&call).map(|reply| (reply, call)))
                .await
                .map_err(|e| ConnectorError::other(Box::new(e), None))??;
        let (reply, call) = reply;

        match fault {
            Some((kind @ (Fault::ServerError | Fault::Unavailable), Phase::After)) => {
                Ok(server_fault(&call, kind).into_response())
            }
            Some((Fault::Dropped, Phase::After)) => Err(dropped()),
            Some((Fault::Slow, Phase::After)) => {
                tokio::time::sleep(slow_delay).await;
                Ok(reply.into_response())
            }
            _ => Ok(reply.into_response()),
        }
    }

    /// The fault this call meets, if any: a scripted one first, else a seeded random one.
    fn decide(&self, call: &Call) -> Option<(Fault, Phase)> {
        let (key, arrival) = {
            let key = if call.operation == "RunTask" {
                format!("RunTask:{}", run_task_token(&call.body))
            } else {
                call.operation.clone()
            };
            let mut state = self.state.lock().unwrap();
            *state.stats.calls.entry(call.operation.clone()).or_default() += 1;
            let arrival = state.arrivals.entry(key.clone()).or_default();
            *arrival += 1;
            (key, *arrival)
        };

        {
            let mut injections = self.injections.lock().unwrap();
            let body = String::from_utf8_lossy(&call.body);
            if let Some(i) = injections.iter_mut().position(|i| {
                i.times > 0
                    && i.operation == call.operation
                    && i.body_contains.as_deref().is_none_or(|t| body.contains(t))
            }) {
                let injection = &mut injections[i];
                injection.times -= 1;
                let decision = (injection.fault, injection.phase);
                if injection.times == 0 {
                    injections.remove(i);
                }
                if decision.0 != Fault::NoCapacity || call.operation == "RunTask" {
                    return Some(decision);
                }
            }
        }

        let faults = self.faults.lock().unwrap().clone();
        if !faults.applies_to(&call.operation) {
            return None;
        }
        let draw = unit(faults.seed, &key, arrival, 1);
        let phase = faults
            .phase
            .unwrap_or(if unit(faults.seed, &key, arrival, 2) < 0.5 {
                Phase::Before
            } else {
                Phase::After
            });
        let capacity = if call.operation == "RunTask" {
            faults.capacity
        } else {
            0.0
        };
        let mut threshold = 0.0;
        for (rate, fault) in [
            (faults.server_error, Fault::ServerError),
            (faults.unavailable, Fault::Unavailable),
            (faults.dropped, Fault::Dropped),
            (faults.slow, Fault::Slow),
            (capacity, Fault::NoCapacity),
        ] {
            threshold += rate;
            if draw < threshold {
                return Some((fault, phase));
            }
        }
        None
    }

    /// Takes a token from the operation's call bucket, if it has one.
    fn admit(&self, operation: &str) -> bool {
        let now = self.now();
        let mut state = self.state.lock().unwrap();
        let admitted = state
            .buckets
            .get_mut(operation)
            .is_none_or(|bucket| bucket.take(1.0, now));
        if !admitted {
            state.stats.throttled += 1;
        }
        admitted
    }

    /// What the service does with an admitted request (blocking: runs on tokio's blocking pool).
    fn serve(&self, call: &Call) -> Result<Reply, ConnectorError> {
        if call.operation == "RunTask" {
            self.run_task(call)
        } else {
            self.forward(call)
        }
    }

    fn forward(&self, call: &Call) -> Result<Reply, ConnectorError> {
        let clock = Instant::now();
        let reply = forward(call);
        let mut state = self.state.lock().unwrap();
        state.stats.forward_ms += clock.elapsed().as_millis() as u64;
        if reply.as_ref().is_ok_and(|r| (200..300).contains(&r.status)) {
            *state
                .stats
                .executed
                .entry(call.operation.clone())
                .or_default() += 1;
        }
        reply
    }

    fn run_task(&self, call: &Call) -> Result<Reply, ConnectorError> {
        let body: Value = serde_json::from_slice(&call.body).unwrap_or(Value::Null);
        let token = run_task_token(&call.body);
        let count = body
            .get("count")
            .and_then(Value::as_u64)
            .unwrap_or(1)
            .max(1);
        // The parameters compared on reuse: all but the token, the cluster by name (ECS
        // resolves a name and an ARN to the same cluster).
        let cluster = cluster_name(&body);
        let mut params = body.clone();
        if let Some(object) = params.as_object_mut() {
            object.remove("clientToken");
            object.insert("cluster".into(), Value::String(cluster.clone()));
        }
        let key = TokenKey {
            account: call.account.clone(),
            cluster,
            token: token.clone(),
        };
        let entry = if self.limits.remember_client_tokens && !token.is_empty() {
            Some(self.tokens.lock().unwrap().entry(key).or_default().clone())
        } else {
            None
        };
        // One request per token at a time, as ECS serializes them.
        let mut guard = entry.as_ref().map(|e| e.lock().unwrap());
        if let Some(record) = guard.as_deref_mut() {
            let now = self.now();
            if let Some(original) = record
                .as_ref()
                .filter(|r| now.saturating_sub(r.at) < self.limits.client_token_ttl)
            {
                let mut state = self.state.lock().unwrap();
                if original.params == params {
                    state.stats.replays += 1;
                    return Ok(original.reply.clone());
                }
                state.stats.conflicts += 1;
                return Ok(conflict(call, &original.task_arns));
            }
        }

        let now = self.now();
        {
            let mut state = self.state.lock().unwrap();
            let admitted = state
                .launch_bucket
                .as_mut()
                .is_none_or(|b| b.take(count as f64, now));
            if !admitted {
                state.stats.throttled += 1;
                state.stats.throttled_launches += 1;
                return Ok(throttling(call));
            }
        }

        let reply = self.forward(call);
        let task_arns: Vec<String> = reply
            .as_ref()
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .and_then(|v| v.get("tasks").and_then(Value::as_array).cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.get("taskArn").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let mut state = self.state.lock().unwrap();
        if task_arns.is_empty() {
            if let Some(bucket) = state.launch_bucket.as_mut() {
                bucket.give_back(count as f64);
            }
            return reply;
        }
        state.stats.tasks_started += task_arns.len() as u64;
        let at = Instant::now();
        state.first_launch.get_or_insert(at);
        state.last_launch = Some(at);
        state
            .task_log
            .extend(task_arns.iter().map(|arn| (at, arn.clone())));
        let gauge = &mut state.gauge;
        gauge.running += task_arns.len() as u64;
        gauge.max_running = gauge.max_running.max(gauge.running);
        let launch = state.launches.entry(token).or_default();
        launch.launches += 1;
        launch.task_arns.extend(task_arns.iter().cloned());
        launch.object = object_of(&body);
        drop(state);
        if let (Some(record), Ok(reply)) = (guard.as_deref_mut(), reply.as_ref()) {
            *record = Some(TokenRecord {
                at: now,
                params,
                reply: reply.clone(),
                task_arns,
            });
        }
        reply
    }
}

impl Call {
    fn from_request(request: &HttpRequest) -> Result<Call, ConnectorError> {
        let body = request
            .body()
            .bytes()
            .ok_or_else(|| {
                ConnectorError::other(
                    "the fault proxy needs in-memory request bodies".into(),
                    None,
                )
            })?
            .to_vec();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let (service, operation, json_content_type) = match header("x-amz-target") {
            Some(target) => {
                let (service, operation) = target.rsplit_once('.').unwrap_or(("", target.as_str()));
                let content_type =
                    header("content-type").unwrap_or_else(|| "application/x-amz-json-1.1".into());
                (
                    service.to_string(),
                    operation.to_string(),
                    Some(content_type),
                )
            }
            None => {
                let text = String::from_utf8_lossy(&body);
                let action = text
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("Action="))
                    .unwrap_or("Unknown")
                    .to_string();
                (String::new(), action, None)
            }
        };
        Ok(Call {
            method: request.method().to_string(),
            uri: request.uri().to_string(),
            account: header("x-moto-account-id").unwrap_or_default(),
            headers,
            body,
            operation,
            json_content_type,
            service,
        })
    }
}

impl Reply {
    fn into_response(self) -> HttpResponse {
        let status = StatusCode::try_from(self.status)
            .unwrap_or_else(|_| StatusCode::try_from(500).expect("valid status"));
        let mut response = HttpResponse::new(status, SdkBody::from(self.body));
        for (name, value) in self.headers {
            if !["connection", "transfer-encoding", "keep-alive"]
                .contains(&name.to_ascii_lowercase().as_str())
            {
                response.headers_mut().append(name, value);
            }
        }
        response
    }
}

fn run_task_token(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("clientToken")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// `jobs` for `jobs` or `arn:aws:ecs:…:cluster/jobs`; ECS's default cluster when absent.
fn cluster_name(body: &Value) -> String {
    let cluster = body
        .get("cluster")
        .and_then(Value::as_str)
        .unwrap_or("default");
    cluster
        .rsplit_once("cluster/")
        .map_or(cluster, |(_, name)| name)
        .to_string()
}

/// `bucket/key` or `schedule@time` from the first container override's environment.
fn object_of(body: &Value) -> Option<String> {
    let env: HashMap<&str, &str> = body
        .pointer("/overrides/containerOverrides")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|c| {
            c.get("environment")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(|kv| Some((kv.get("name")?.as_str()?, kv.get("value")?.as_str()?)))
        .collect();
    match (
        env.get("JOB_BUCKET"),
        env.get("JOB_KEY"),
        env.get("JOB_SCHEDULE"),
        env.get("JOB_SCHEDULED_TIME"),
    ) {
        (Some(bucket), Some(key), _, _) => Some(format!("{bucket}/{key}")),
        (_, _, Some(schedule), Some(time)) => Some(format!("{schedule}@{time}")),
        _ => None,
    }
}

/// A uniform draw in [0, 1) from (seed, key, arrival, salt): FNV-1a, then SplitMix64.
fn unit(seed: u64, key: &str, arrival: u64, salt: u64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed
        .to_le_bytes()
        .iter()
        .chain(key.as_bytes())
        .chain(&arrival.to_le_bytes())
        .chain(&salt.to_le_bytes())
    {
        h ^= u64::from(*byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn dropped() -> ConnectorError {
    ConnectorError::io("connection reset by peer (injected by the fault proxy)".into())
}

fn request_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("fault-proxy-{:016x}", N.fetch_add(1, Ordering::Relaxed))
}

/// An error in the call's protocol: awsJson (`__type`) or awsQuery (XML `ErrorResponse`).
fn error_reply(call: &Call, status: u16, code: &str, message: &str, extra: Value) -> Reply {
    let id = request_id();
    match &call.json_content_type {
        Some(content_type) => {
            let mut body = json!({"__type": code, "message": message});
            if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
                body.extend(extra.clone());
            }
            let mut headers = vec![
                ("content-type".into(), content_type.clone()),
                ("x-amzn-requestid".into(), id),
            ];
            if call.service == "AmazonSQS" {
                // SQS's JSON protocol also names the error the query way.
                headers.push((
                    "x-amzn-query-error".into(),
                    format!(
                        "{code};{}",
                        if status >= 500 { "Receiver" } else { "Sender" }
                    ),
                ));
            }
            Reply {
                status,
                headers,
                body: body.to_string().into_bytes(),
            }
        }
        None => {
            let kind = if status >= 500 { "Receiver" } else { "Sender" };
            let body = format!(
                "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{id}</RequestId></ErrorResponse>"
            );
            Reply {
                status,
                headers: vec![
                    ("content-type".into(), "text/xml".into()),
                    ("x-amzn-requestid".into(), id),
                ],
                body: body.into_bytes(),
            }
        }
    }
}

fn throttling(call: &Call) -> Reply {
    let code = if call.json_content_type.is_some() {
        "ThrottlingException"
    } else {
        "Throttling"
    };
    error_reply(call, 400, code, "Rate exceeded", Value::Null)
}

fn server_fault(call: &Call, fault: Fault) -> Reply {
    match fault {
        Fault::Unavailable => error_reply(
            call,
            503,
            "ServiceUnavailable",
            "Service unavailable (injected)",
            Value::Null,
        ),
        _ => {
            let code = match (call.service.as_str(), call.json_content_type.is_some()) {
                ("AmazonEC2ContainerServiceV20141113", _) => "ServerException",
                (_, true) => "InternalFailure",
                (_, false) => "InternalError",
            };
            error_reply(
                call,
                500,
                code,
                "Internal server error (injected)",
                Value::Null,
            )
        }
    }
}

fn conflict(call: &Call, task_arns: &[String]) -> Reply {
    error_reply(
        call,
        400,
        "ConflictException",
        "The specified client token has already been used in a different request with different parameters.",
        json!({"resourceIds": task_arns}),
    )
}

fn capacity_failure(call: &Call) -> Reply {
    let body = json!({"tasks": [], "failures": [{"reason": CAPACITY_REASON}]});
    Reply {
        status: 200,
        headers: vec![
            (
                "content-type".into(),
                call.json_content_type
                    .clone()
                    .unwrap_or_else(|| "application/x-amz-json-1.1".into()),
            ),
            ("x-amzn-requestid".into(), request_id()),
        ],
        body: body.to_string().into_bytes(),
    }
}

/// Sends the call to where it was going (moto, plain HTTP on loopback) and reads the answer.
fn forward(call: &Call) -> Result<Reply, ConnectorError> {
    let rest = call.uri.strip_prefix("http://").ok_or_else(|| {
        ConnectorError::other(
            format!(
                "the fault proxy only forwards http:// URIs, not {}",
                call.uri
            )
            .into(),
            None,
        )
    })?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let io = |e: std::io::Error| ConnectorError::io(Box::new(e));
    let mut stream = TcpStream::connect(host).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n",
        call.method,
        call.body.len()
    );
    for (name, value) in &call.headers {
        if !["host", "content-length", "connection", "transfer-encoding"]
            .contains(&name.to_ascii_lowercase().as_str())
        {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(&call.body);
    stream.write_all(&request).map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    parse_response(&raw).ok_or_else(|| {
        ConnectorError::io(format!("malformed HTTP response ({} bytes)", raw.len()).into())
    })
}

fn parse_response(raw: &[u8]) -> Option<Reply> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let rest = &raw[end + 4..];
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        rest.get(..length)?.to_vec()
    } else {
        rest.to_vec()
    };
    Some(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_deterministic_and_roughly_uniform() {
        assert_eq!(unit(7, "RunTask:abc", 1, 1), unit(7, "RunTask:abc", 1, 1));
        assert_ne!(unit(7, "RunTask:abc", 1, 1), unit(8, "RunTask:abc", 1, 1));
        let n = 10_000;
        let below: usize = (0..n).filter(|i| unit(1, "k", *i, 1) < 0.1).count();
        assert!((800..1200).contains(&below), "{below}");
    }

    #[test]
    fn bucket_refills_up_to_its_burst() {
        let mut bucket = Bucket::new(
            Rate {
                burst: 20.0,
                per_second: 20.0,
            },
            Duration::ZERO,
        );
        assert!((0..20).all(|_| bucket.take(1.0, Duration::ZERO)));
        assert!(!bucket.take(1.0, Duration::ZERO));
        assert!(bucket.take(1.0, Duration::from_millis(50)));
        assert!(!bucket.take(1.0, Duration::from_millis(50)));
        assert!((0..20).all(|_| bucket.take(1.0, Duration::from_secs(10))));
        assert!(!bucket.take(1.0, Duration::from_secs(10)));
    }

    #[test]
    fn parses_chunked_and_sized_responses() {
        let sized = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!((sized.status, sized.body.as_slice()), (200, &b"{}"[..]));
        let chunked = parse_response(b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(
            (chunked.status, chunked.body.as_slice()),
            (400, &b"abcde"[..])
        );
    }
}
