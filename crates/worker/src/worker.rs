//! The polling loop: receive, hand each message to the [`Handler`] with a heartbeat, settle
//! it (delete, retry later, or return), hold task protection while anything is in hand, and
//! shut down gracefully.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use crate::schedule::{
    ProtectionStep, extension, next_heartbeat, poll_wait, protection_renewal, protection_step,
    retry_visibility,
};
use crate::{Config, Error, Handler, Message, Outcome, Protection, Queue, Stop};

/// How long to wait before retrying task protection after the agent failed.
const PROTECTION_RETRY: Duration = Duration::from_secs(5);
/// Backoff after a failed receive: first and longest.
const RECEIVE_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// What happened to the messages of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Handled and deleted.
    pub done: u64,
    /// Failed and left to become visible again after the retry delay.
    pub failed: u64,
    /// Stopped at shutdown and returned to the queue at once.
    pub returned: u64,
    /// Why the loop ended.
    pub exit: Exit,
}

/// Why [`Worker::run`] returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Exit {
    /// A shutdown was requested and every message in hand is settled.
    #[default]
    Shutdown,
    /// The queue gave nothing for the idle-exit duration.
    Idle,
}

/// The polling loop over a queue, a handler and (optionally) task protection.
pub struct Worker<Q, H, P> {
    queue: Arc<Q>,
    handler: Arc<H>,
    protection: Option<P>,
    config: Config,
    metrics: Option<MetricLines>,
}

/// Where the worker writes one metric line (Embedded Metric Format) per settled message:
/// `messages_processed` or `messages_failed`, and `message_duration`, dimension `queue`.
#[derive(Clone)]
pub struct MetricLines {
    queue: String,
    out: Arc<std::sync::Mutex<Box<dyn std::io::Write + Send>>>,
}

impl MetricLines {
    /// Lines for the queue at `queue_url` (its name is the dimension), written to `out`.
    pub fn new(queue_url: &str, out: impl std::io::Write + Send + 'static) -> MetricLines {
        MetricLines {
            queue: jobrunner_core::metrics::worker::queue_name(queue_url).to_string(),
            out: Arc::new(std::sync::Mutex::new(Box::new(out))),
        }
    }

    fn message(&self, succeeded: bool, duration: Duration) {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let document = jobrunner_core::metrics::worker::message(
            &self.queue,
            succeeded,
            millis,
            chrono::Utc::now(),
        );
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        jobrunner_core::metrics::print_to(&[document], &mut *out);
    }
}

type Received = (Instant, Result<Vec<Message>, Error>);

impl<Q: Queue, H: Handler, P: Protection> Worker<Q, H, P> {
    /// A worker; `protection` is `None` outside ECS. Fails on an invalid `config`.
    pub fn new(
        queue: Q,
        handler: H,
        protection: Option<P>,
        config: Config,
    ) -> Result<Worker<Q, H, P>, Error> {
        config.validate()?;
        Ok(Worker {
            queue: Arc::new(queue),
            handler: Arc::new(handler),
            protection,
            config,
            metrics: None,
        })
    }

    /// Writes one metric line per settled message to `lines` (the binary: stdout).
    pub fn with_metrics(mut self, lines: MetricLines) -> Self {
        self.metrics = Some(lines);
        self
    }

    /// Runs until `shutdown` resolves (then drains within the grace) or the idle exit.
    /// Returns an error only for a permanent queue failure (e.g. the queue does not exist),
    /// after the messages in hand are settled.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<Summary, Error> {
        let cfg = &self.config;
        let (stop_switch, stop) = Stop::new();
        let mut protector = Protector::new(self.protection.as_ref(), cfg.protection_minutes);
        let mut in_hand: JoinSet<Outcome> = JoinSet::new();
        let mut receiving: Option<Pin<Box<dyn Future<Output = Received> + Send>>> = None;
        let mut summary = Summary::default();
        let mut draining = false;
        let mut grace_ends: Option<Instant> = None;
        let mut fatal: Option<Error> = None;
        // Since when the worker has had nothing in hand and received nothing (None: busy).
        let mut idle_since = Some(Instant::now());
        // Protection is kept from the first message until a receive comes back empty with
        // nothing in hand, so a steady stream does not flip it for every message.
        let mut busy = false;
        let mut receive_retry_at: Option<Instant> = None;
        let mut backoff = RECEIVE_BACKOFF.0;
        tokio::pin!(shutdown);

        loop {
            if in_hand.is_empty() && (draining || fatal.is_some()) {
                busy = false;
            }
            protector.update(busy || !in_hand.is_empty()).await;

            if in_hand.is_empty() && receiving.is_none() {
                if draining {
                    summary.exit = Exit::Shutdown;
                    tracing::info!(?summary, "shutdown complete");
                    return Ok(summary);
                }
                if let Some(e) = fatal.take() {
                    return Err(e);
                }
            }

            // Start a receive when there is room.
            if receiving.is_none()
                && !draining
                && fatal.is_none()
                && in_hand.len() < cfg.concurrency
                && receive_retry_at.is_none_or(|t| Instant::now() >= t)
            {
                receive_retry_at = None;
                let idle = if in_hand.is_empty() { idle_since } else { None };
                match poll_wait(Instant::now(), idle, cfg.idle_exit, cfg.wait_time) {
                    None => {
                        summary.exit = Exit::Idle;
                        tracing::info!(?summary, "idle: the queue gave nothing, exiting");
                        protector.update(false).await;
                        return Ok(summary);
                    }
                    Some(wait) => {
                        let max = (cfg.concurrency - in_hand.len()).min(10) as u32;
                        let queue = self.queue.clone();
                        let visibility = cfg.visibility_timeout;
                        receiving = Some(Box::pin(async move {
                            let started = Instant::now();
                            (started, queue.receive(max, wait, visibility).await)
                        }));
                    }
                }
            }

            let wake_protection = protector.wake_at();
            tokio::select! {
                _ = &mut shutdown, if !draining => {
                    draining = true;
                    // Stop receiving; a message SQS was handing over this instant becomes
                    // visible again after the visibility timeout.
                    receiving = None;
                    grace_ends = Some(Instant::now() + cfg.grace);
                    tracing::info!(in_hand = in_hand.len(), grace_s = cfg.grace.as_secs_f64(), "shutdown requested: no more receives, waiting for what runs");
                }
                _ = sleep_until(grace_ends.unwrap_or_else(Instant::now)), if grace_ends.is_some() => {
                    grace_ends = None;
                    if !in_hand.is_empty() {
                        tracing::warn!(in_hand = in_hand.len(), "grace over: stopping what still runs");
                    }
                    let _ = stop_switch.send(true);
                }
                Some(joined) = in_hand.join_next(), if !in_hand.is_empty() => {
                    match joined {
                        Ok(Outcome::Done) => summary.done += 1,
                        Ok(Outcome::Failed(_)) => summary.failed += 1,
                        Ok(Outcome::Interrupted) => summary.returned += 1,
                        Err(e) => tracing::error!(error = %e, "message task ended abnormally"),
                    }
                    if in_hand.is_empty() {
                        idle_since = Some(Instant::now());
                    }
                }
                (started, result) = async { receiving.as_mut().expect("guarded by is_some").await }, if receiving.is_some() => {
                    receiving = None;
                    match result {
                        Ok(messages) if messages.is_empty() => {
                            backoff = RECEIVE_BACKOFF.0;
                            if in_hand.is_empty() {
                                busy = false;
                            }
                        }
                        Ok(messages) => {
                            backoff = RECEIVE_BACKOFF.0;
                            busy = true;
                            idle_since = None;
                            // Protection before the work starts.
                            protector.update(true).await;
                            for message in messages {
                                in_hand.spawn(process(
                                    self.queue.clone(),
                                    self.handler.clone(),
                                    message,
                                    started,
                                    self.config.clone(),
                                    stop.clone(),
                                    self.metrics.clone(),
                                ));
                            }
                        }
                        Err(e) if e.is_permanent() => {
                            tracing::error!(error = %e, "cannot receive; settling what is in hand, then exiting");
                            fatal = Some(e);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, backoff_s = backoff.as_secs_f64(), "receive failed; retrying");
                            receive_retry_at = Some(Instant::now() + backoff);
                            backoff = (backoff * 2).min(RECEIVE_BACKOFF.1);
                        }
                    }
                }
                _ = sleep_until(receive_retry_at.unwrap_or_else(Instant::now)), if receive_retry_at.is_some() && receiving.is_none() => {}
                // A renewal or a retry is due: the top of the loop does it.
                _ = sleep_until(wake_protection.unwrap_or_else(Instant::now)), if wake_protection.is_some() => {}
            }
        }
    }
}

/// Task protection's state: when the protection granted last lapses, and when to retry after
/// the agent failed.
struct Protector<'a, P> {
    agent: Option<&'a P>,
    minutes: u32,
    expiry: Duration,
    held_until: Option<Instant>,
    retry_at: Option<Instant>,
}

impl<'a, P: Protection> Protector<'a, P> {
    fn new(agent: Option<&'a P>, minutes: u32) -> Protector<'a, P> {
        Protector {
            agent,
            minutes,
            expiry: Duration::from_secs(u64::from(minutes) * 60),
            held_until: None,
            retry_at: None,
        }
    }

    /// Enables, renews or releases protection as `wanted` and the clock say.
    async fn update(&mut self, wanted: bool) {
        let Some(agent) = self.agent else { return };
        let now = Instant::now();
        let step = protection_step(wanted, self.held_until, now, self.expiry);
        if step == ProtectionStep::Keep {
            self.retry_at = None;
            return;
        }
        if self.retry_at.is_some_and(|t| now < t) {
            return;
        }
        let minutes = (step == ProtectionStep::Enable).then_some(self.minutes);
        match agent.set(minutes).await {
            Ok(()) => {
                match (step, self.held_until) {
                    (ProtectionStep::Enable, None) => {
                        tracing::info!(minutes = self.minutes, "task protection enabled")
                    }
                    (ProtectionStep::Enable, Some(_)) => {
                        tracing::debug!(minutes = self.minutes, "task protection renewed")
                    }
                    _ => tracing::info!("task protection released"),
                }
                self.held_until = minutes.map(|_| now + self.expiry);
                self.retry_at = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "task protection change failed; retrying in 5s");
                self.retry_at = Some(Instant::now() + PROTECTION_RETRY);
            }
        }
    }

    /// When [`Protector::update`] has something to do next without a change of `wanted`.
    fn wake_at(&self) -> Option<Instant> {
        self.retry_at
            .or(self.held_until.map(|t| protection_renewal(t, self.expiry)))
    }
}

/// One message from receipt to settlement: the handler runs in its own task while the
/// message's visibility is extended; then the message is deleted, delayed or returned.
async fn process<Q: Queue, H: Handler>(
    queue: Arc<Q>,
    handler: Arc<H>,
    message: Message,
    received: Instant,
    cfg: Config,
    stop: Stop,
    metrics: Option<MetricLines>,
) -> Outcome {
    let id = message.id.clone();
    let receipt = message.receipt_handle.clone();
    let started = Instant::now();
    tracing::info!(message_id = %id, receive_count = message.receive_count, "handling message");
    let mut visible_at = received + cfg.visibility_timeout;
    let mut heartbeat = true;
    let mut task = tokio::spawn({
        let stop = stop.clone();
        async move { handler.handle(message, stop).await }
    });
    let mut stop_watch = stop;
    let mut abandon_at: Option<Instant> = None;
    let outcome = loop {
        let beat_at = next_heartbeat(Instant::now(), visible_at);
        tokio::select! {
            joined = &mut task => break match joined {
                Ok(outcome) => outcome,
                Err(e) => Outcome::Failed(format!("handler panicked or was cancelled: {e}")),
            },
            _ = sleep_until(beat_at), if heartbeat => {
                let now = Instant::now();
                match extension(now, received, visible_at, cfg.visibility_timeout) {
                    Some(timeout) => match queue.set_visibility(&receipt, timeout).await {
                        Ok(()) => visible_at = now + timeout,
                        Err(e) => tracing::warn!(message_id = %id, error = %e, "heartbeat failed; retrying before the message becomes visible"),
                    },
                    None => {
                        tracing::warn!(message_id = %id, "still running 12 h after receipt: SQS allows no longer visibility; the message will be delivered again");
                        heartbeat = false;
                    }
                }
            }
            _ = stop_watch.requested(), if abandon_at.is_none() => {
                abandon_at = Some(Instant::now() + cfg.stop_timeout);
            }
            _ = sleep_until(abandon_at.unwrap_or_else(Instant::now)), if abandon_at.is_some() => {
                tracing::error!(message_id = %id, "handler did not stop in time; abandoning it");
                task.abort();
                break Outcome::Interrupted;
            }
        }
    };
    let took = started.elapsed();
    let took_ms = took.as_millis() as u64;
    if let Some(metrics) = &metrics {
        metrics.message(matches!(outcome, Outcome::Done), took);
    }
    let settled = match &outcome {
        Outcome::Done => queue.delete(&receipt).await,
        Outcome::Failed(reason) => {
            let delay = retry_visibility(Instant::now(), received, cfg.retry_delay);
            tracing::warn!(message_id = %id, reason = %reason, retry_in_s = delay.as_secs(), took_ms, "message failed");
            queue.set_visibility(&receipt, delay).await
        }
        Outcome::Interrupted => queue.set_visibility(&receipt, Duration::ZERO).await,
    };
    match (&outcome, settled) {
        (Outcome::Done, Ok(())) => tracing::info!(message_id = %id, took_ms, "message done"),
        (Outcome::Interrupted, Ok(())) => {
            tracing::warn!(message_id = %id, took_ms, "message returned to the queue")
        }
        (_, Ok(())) => {}
        (_, Err(e)) => {
            tracing::error!(message_id = %id, error = %e, "could not settle the message; it becomes visible again after its visibility timeout")
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::NoProtection;

    /// What the fakes saw, with the (paused, virtual) time since the test began.
    #[derive(Debug, Clone, PartialEq)]
    enum Event {
        Receive,
        Delete(String),
        Visibility(String, u64),
        Protect(Option<u32>),
        Start(String),
        End(String),
    }

    #[derive(Clone)]
    struct Log(Arc<Mutex<Vec<(Duration, Event)>>>, Instant);

    impl Log {
        fn new() -> Log {
            Log(Arc::default(), Instant::now())
        }
        fn push(&self, event: Event) {
            self.0.lock().unwrap().push((self.1.elapsed(), event));
        }
        fn events(&self) -> Vec<(Duration, Event)> {
            self.0.lock().unwrap().clone()
        }
        fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
            self.events().iter().filter(|(_, e)| f(e)).count()
        }
    }

    struct FakeQueue {
        pending: Mutex<VecDeque<Message>>,
        log: Log,
        fail_receives: Mutex<Vec<Error>>,
    }

    impl FakeQueue {
        fn with(log: &Log, ids: &[&str]) -> FakeQueue {
            FakeQueue {
                pending: Mutex::new(
                    ids.iter()
                        .map(|id| Message {
                            id: id.to_string(),
                            receipt_handle: format!("r-{id}"),
                            body: format!("body of {id}"),
                            receive_count: 1,
                            ..Message::default()
                        })
                        .collect(),
                ),
                log: log.clone(),
                fail_receives: Mutex::new(Vec::new()),
            }
        }
    }

    impl Queue for FakeQueue {
        async fn receive(
            &self,
            max: u32,
            wait: Duration,
            _v: Duration,
        ) -> Result<Vec<Message>, Error> {
            self.log.push(Event::Receive);
            if let Some(e) = self.fail_receives.lock().unwrap().pop() {
                return Err(e);
            }
            let batch: Vec<Message> = {
                let mut pending = self.pending.lock().unwrap();
                let n = pending.len().min(max as usize);
                pending.drain(..n).collect()
            };
            if batch.is_empty() {
                tokio::time::sleep(wait).await;
            }
            Ok(batch)
        }
        async fn delete(&self, receipt: &str) -> Result<(), Error> {
            self.log.push(Event::Delete(receipt.into()));
            Ok(())
        }
        async fn set_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), Error> {
            self.log
                .push(Event::Visibility(receipt.into(), timeout.as_secs()));
            Ok(())
        }
    }

    /// Sleeps for `work`, or stops when asked (unless `stubborn`); fails when the body says so.
    struct Sleeper {
        work: Duration,
        stubborn: bool,
        log: Log,
    }

    impl Handler for Sleeper {
        async fn handle(&self, message: Message, mut stop: Stop) -> Outcome {
            self.log.push(Event::Start(message.id.clone()));
            let outcome = tokio::select! {
                _ = tokio::time::sleep(self.work) => {
                    if message.id.starts_with("fail") { Outcome::Failed("asked to".into()) } else { Outcome::Done }
                }
                _ = stop.requested(), if !self.stubborn => Outcome::Interrupted,
            };
            self.log.push(Event::End(message.id.clone()));
            outcome
        }
    }

    struct FakeAgent {
        log: Log,
        fail: bool,
    }

    impl Protection for FakeAgent {
        async fn set(&self, minutes: Option<u32>) -> Result<(), Error> {
            self.log.push(Event::Protect(minutes));
            if self.fail {
                Err(Error::Protection("HTTP 503".into()))
            } else {
                Ok(())
            }
        }
    }

    fn config() -> Config {
        Config {
            idle_exit: Some(Duration::from_secs(5)),
            ..Config::new("https://q")
        }
    }

    fn sleeper(log: &Log, secs: u64) -> Sleeper {
        Sleeper {
            work: Duration::from_secs(secs),
            stubborn: false,
            log: log.clone(),
        }
    }

    async fn run_until_idle<H: Handler>(queue: FakeQueue, handler: H, config: Config) -> Summary {
        Worker::new(queue, handler, None::<NoProtection>, config)
            .unwrap()
            .run(std::future::pending())
            .await
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_keeps_a_job_three_times_the_visibility_timeout_invisible() {
        let log = Log::new();
        let config = Config {
            visibility_timeout: Duration::from_secs(2),
            ..config()
        };
        let summary = run_until_idle(FakeQueue::with(&log, &["a"]), sleeper(&log, 6), config).await;
        assert_eq!(summary.done, 1);
        assert_eq!(summary.exit, Exit::Idle);
        // Every extension lands before the current window ends, and the message is deleted
        // before its last window ends.
        let mut visible_at = Duration::from_secs(2);
        let mut beats = 0;
        for (t, event) in log.events() {
            match event {
                Event::Visibility(_, secs) => {
                    assert!(
                        t < visible_at,
                        "extension at {t:?} after the window ended at {visible_at:?}"
                    );
                    assert_eq!(secs, 2);
                    visible_at = t + Duration::from_secs(secs);
                    beats += 1;
                }
                Event::Delete(_) => assert!(t < visible_at),
                _ => {}
            }
        }
        assert!((4..=8).contains(&beats), "{beats} heartbeats");
        assert_eq!(log.count(|e| matches!(e, Event::Start(_))), 1);
    }

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_settled_message_writes_one_metric_line() {
        let log = Log::new();
        let lines = Lines::default();
        let url = "https://sqs.us-east-1.amazonaws.com/123456789012/orders";
        let summary = Worker::new(
            FakeQueue::with(&log, &["ok", "fail-1"]),
            sleeper(&log, 2),
            None::<NoProtection>,
            config(),
        )
        .unwrap()
        .with_metrics(MetricLines::new(url, lines.clone()))
        .run(std::future::pending())
        .await
        .unwrap();
        assert_eq!((summary.done, summary.failed), (1, 1));
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let documents: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(documents.len(), 2, "{text}");
        for document in &documents {
            jobrunner_core::metrics::check(document).unwrap();
            assert_eq!(document["queue"], "orders", "the queue's name, not its URL");
            let took = document["message_duration"].as_u64().unwrap();
            assert!((2000..2100).contains(&took), "{took} ms");
        }
        let count = |metric: &str| documents.iter().filter(|d| d[metric] == 1).count();
        assert_eq!(
            (count("messages_processed"), count("messages_failed")),
            (1, 1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn success_deletes_and_failure_delays() {
        let log = Log::new();
        let summary = run_until_idle(
            FakeQueue::with(&log, &["ok", "fail-1"]),
            sleeper(&log, 1),
            config(),
        )
        .await;
        assert_eq!((summary.done, summary.failed, summary.returned), (1, 1, 0));
        let events: Vec<Event> = log.events().into_iter().map(|(_, e)| e).collect();
        assert!(events.contains(&Event::Delete("r-ok".into())));
        assert!(events.contains(&Event::Visibility("r-fail-1".into(), 10)));
        assert!(!events.contains(&Event::Delete("r-fail-1".into())));
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_in_hand_than_the_concurrency() {
        let log = Log::new();
        let ids: Vec<String> = (0..7).map(|i| format!("m{i}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let config = Config {
            concurrency: 3,
            ..config()
        };
        let summary = run_until_idle(FakeQueue::with(&log, &ids), sleeper(&log, 3), config).await;
        assert_eq!(summary.done, 7);
        let mut running = 0;
        let mut most = 0;
        for (_, e) in log.events() {
            match e {
                Event::Start(_) => running += 1,
                Event::End(_) => running -= 1,
                _ => {}
            }
            most = most.max(running);
        }
        assert_eq!(most, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_exit_without_messages() {
        let log = Log::new();
        let started = Instant::now();
        let summary = run_until_idle(FakeQueue::with(&log, &[]), sleeper(&log, 1), config()).await;
        assert_eq!(
            summary,
            Summary {
                exit: Exit::Idle,
                ..Summary::default()
            }
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(5) && took < Duration::from_secs(7),
            "{took:?}"
        );
    }

    async fn shutdown_at<H: Handler>(
        queue: FakeQueue,
        handler: H,
        config: Config,
        at: u64,
    ) -> (Summary, Duration) {
        let started = Instant::now();
        let summary = Worker::new(queue, handler, None::<NoProtection>, config)
            .unwrap()
            .run(tokio::time::sleep(Duration::from_secs(at)))
            .await
            .unwrap();
        (summary, started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_lets_running_work_finish_within_the_grace() {
        let log = Log::new();
        let config = Config {
            idle_exit: None,
            concurrency: 2,
            ..config()
        };
        let (summary, took) = shutdown_at(
            FakeQueue::with(&log, &["a", "b", "c"]),
            sleeper(&log, 5),
            config,
            1,
        )
        .await;
        // Two were in hand at the signal and finish; the third is never received.
        assert_eq!(
            (summary.done, summary.returned, summary.exit),
            (2, 0, Exit::Shutdown)
        );
        assert!(
            took >= Duration::from_secs(5) && took < Duration::from_secs(6),
            "{took:?}"
        );
        assert_eq!(log.count(|e| matches!(e, Event::Start(_))), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_grace_work_is_stopped_and_returned_at_once() {
        let log = Log::new();
        let config = Config {
            idle_exit: None,
            grace: Duration::from_secs(10),
            ..config()
        };
        let (summary, took) =
            shutdown_at(FakeQueue::with(&log, &["a"]), sleeper(&log, 500), config, 1).await;
        assert_eq!((summary.done, summary.returned), (0, 1));
        assert!(
            took >= Duration::from_secs(11) && took < Duration::from_secs(12),
            "{took:?}"
        );
        let events: Vec<Event> = log.events().into_iter().map(|(_, e)| e).collect();
        assert_eq!(events.last(), Some(&Event::Visibility("r-a".into(), 0)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_handler_that_ignores_stop_is_abandoned() {
        let log = Log::new();
        let config = Config {
            idle_exit: None,
            grace: Duration::from_secs(10),
            ..config()
        };
        let handler = Sleeper {
            stubborn: true,
            ..sleeper(&log, 500)
        };
        let (summary, took) = shutdown_at(FakeQueue::with(&log, &["a"]), handler, config, 1).await;
        assert_eq!(summary.returned, 1);
        // Grace, then the stop timeout (15 s).
        assert!(
            took >= Duration::from_secs(26) && took < Duration::from_secs(27),
            "{took:?}"
        );
        assert!(
            log.events()
                .iter()
                .any(|(_, e)| *e == Event::Visibility("r-a".into(), 0))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn protection_is_held_while_in_hand_renewed_and_released() {
        let log = Log::new();
        let config = Config {
            protection_minutes: 1,
            ..config()
        };
        let agent = FakeAgent {
            log: log.clone(),
            fail: false,
        };
        let summary = Worker::new(
            FakeQueue::with(&log, &["a", "b"]),
            sleeper(&log, 100),
            Some(agent),
            config,
        )
        .unwrap()
        .run(std::future::pending())
        .await
        .unwrap();
        assert_eq!(summary.done, 2);
        let events = log.events();
        let first_protect = events
            .iter()
            .position(|(_, e)| *e == Event::Protect(Some(1)))
            .unwrap();
        let first_start = events
            .iter()
            .position(|(_, e)| matches!(e, Event::Start(_)))
            .unwrap();
        assert!(
            first_protect < first_start,
            "protection after the work started: {events:?}"
        );
        // 200 s of work with 60 s protection: renewed at least every 30 s.
        let enables: Vec<Duration> = events
            .iter()
            .filter(|(_, e)| *e == Event::Protect(Some(1)))
            .map(|(t, _)| *t)
            .collect();
        for pair in enables.windows(2) {
            assert!(pair[1] - pair[0] <= Duration::from_secs(31), "{enables:?}");
        }
        assert!(enables.len() >= 6, "{enables:?}");
        let last_end = events
            .iter()
            .rposition(|(_, e)| matches!(e, Event::End(_)))
            .unwrap();
        assert_eq!(events.last().unwrap().1, Event::Protect(None));
        assert!(enables.last().unwrap() <= &events[last_end].0);
        assert_eq!(log.count(|e| *e == Event::Protect(None)), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_agent_does_not_stop_the_work() {
        let log = Log::new();
        let agent = FakeAgent {
            log: log.clone(),
            fail: true,
        };
        let summary = Worker::new(
            FakeQueue::with(&log, &["a"]),
            sleeper(&log, 12),
            Some(agent),
            config(),
        )
        .unwrap()
        .run(std::future::pending())
        .await
        .unwrap();
        assert_eq!(summary.done, 1);
        // Retried every 5 s, not in a tight loop.
        let tries = log.count(|e| matches!(e, Event::Protect(_)));
        assert!((2..=6).contains(&tries), "{tries} protection calls");
    }

    #[tokio::test(start_paused = true)]
    async fn transient_receive_errors_back_off_and_permanent_ones_end_the_run() {
        let log = Log::new();
        let queue = FakeQueue::with(&log, &["a"]);
        queue.fail_receives.lock().unwrap().push(Error::Sqs {
            operation: "ReceiveMessage",
            message: "503".into(),
            permanent: false,
        });
        let summary = run_until_idle(queue, sleeper(&log, 1), config()).await;
        assert_eq!(summary.done, 1);

        let queue = FakeQueue::with(&log, &[]);
        queue.fail_receives.lock().unwrap().push(Error::Sqs {
            operation: "ReceiveMessage",
            message: "AWS.SimpleQueueService.NonExistentQueue: no such queue".into(),
            permanent: true,
        });
        let e = Worker::new(queue, sleeper(&log, 1), None::<NoProtection>, config())
            .unwrap()
            .run(std::future::pending())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("NonExistentQueue"), "{e}");
    }
}
