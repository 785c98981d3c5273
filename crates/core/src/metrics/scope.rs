//! An invocation's metric scope: where decisions deep in the launcher and the tracker (a slot
//! taken, a run finished, RunTask answered) hand their EMF documents, and what they may read
//! about the invocation for observability only (a clock for latencies, the X-Ray trace).
//!
//! The function's binary opens the scope around the handler with [`collect`] and prints the
//! documents afterwards; `jobrunner plan` and the tests that do not open one lose nothing but
//! the documents ([`emit`] outside a scope is a no-op), so the decisions and the calls stay
//! exactly the same with or without metrics. The scope follows the handler's future (it is set
//! while that future is polled, whatever thread polls it), never a spawned task.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::trace::TraceParent;

/// What the binary tells the scope about the invocation.
#[derive(Clone)]
pub struct Scope {
    /// The clock latencies are read from (the system clock in Lambda; fixed in tests).
    pub clock: fn() -> DateTime<Utc>,
    /// The invocation's trace context (Lambda's X-Ray trace header, converted), if any.
    pub trace: Option<TraceParent>,
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope").field("trace", &self.trace).finish()
    }
}

impl Scope {
    /// The system clock and `trace`.
    pub fn system(trace: Option<TraceParent>) -> Scope {
        Scope {
            clock: Utc::now,
            trace,
        }
    }
}

#[derive(Debug)]
struct State {
    scope: Scope,
    documents: Vec<Value>,
    /// When the last RunTask answered (read by the launch's metric document).
    answered: Option<DateTime<Utc>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Mutex<State>>>> = const { RefCell::new(None) };
}

/// Runs `future` inside `scope`; returns its output and the documents emitted meanwhile.
pub fn collect<F: Future>(scope: Scope, future: F) -> Collect<F> {
    Collect {
        inner: Box::pin(future),
        state: Arc::new(Mutex::new(State {
            scope,
            documents: vec![],
            answered: None,
        })),
    }
}

/// The future [`collect`] returns.
pub struct Collect<F> {
    inner: Pin<Box<F>>,
    state: Arc<Mutex<State>>,
}

/// Puts the previous scope back when a poll ends (also when it panics).
struct Restore(Option<Arc<Mutex<State>>>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

impl<F: Future> Future for Collect<F> {
    type Output = (F::Output, Vec<Value>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let previous = CURRENT.with(|c| c.borrow_mut().replace(this.state.clone()));
        let _restore = Restore(previous);
        match this.inner.as_mut().poll(cx) {
            Poll::Ready(output) => {
                let documents = std::mem::take(&mut lock(&this.state).documents);
                Poll::Ready((output, documents))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn with_current<T>(f: impl FnOnce(&mut State) -> T) -> Option<T> {
    let state = CURRENT.with(|c| c.borrow().clone())?;
    let mut state = lock(&state);
    Some(f(&mut state))
}

/// Hands a document to the current scope (none open: dropped).
pub fn emit(document: Value) {
    with_current(|state| state.documents.push(document));
}

/// Hands several documents to the current scope.
pub fn emit_all(documents: impl IntoIterator<Item = Value>) {
    with_current(|state| state.documents.extend(documents));
}

/// The scope's clock (none open: `None`, and no latency is measured).
pub fn now() -> Option<DateTime<Utc>> {
    with_current(|state| (state.scope.clock)())
}

/// Notes that RunTask answered now (by the scope's clock).
pub fn mark_answered() {
    with_current(|state| state.answered = Some((state.scope.clock)()));
}

/// When RunTask last answered, once.
pub fn take_answered() -> Option<DateTime<Utc>> {
    with_current(|state| state.answered.take()).flatten()
}

/// The invocation's trace context, when the scope has one.
pub fn trace() -> Option<TraceParent> {
    with_current(|state| state.scope.trace.clone()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed() -> DateTime<Utc> {
        "2026-11-25T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn documents_emitted_inside_the_scope_are_collected_and_nothing_leaks_outside() {
        emit(serde_json::json!({"before": 1}));
        assert_eq!(now(), None);
        let scope = Scope {
            clock: fixed,
            trace: None,
        };
        let (answer, documents) = pollster::block_on(collect(scope, async {
            emit(serde_json::json!({"a": 1}));
            // A nested scope keeps its own documents.
            let (_, inner) = collect(Scope::system(None), async {
                emit(serde_json::json!({"inner": 1}))
            })
            .await;
            assert_eq!(inner, vec![serde_json::json!({"inner": 1})]);
            emit_all([serde_json::json!({"b": 2})]);
            now()
        }));
        assert_eq!(answer, Some(fixed()));
        assert_eq!(
            documents,
            vec![serde_json::json!({"a": 1}), serde_json::json!({"b": 2})]
        );
        assert_eq!(now(), None);
        assert_eq!(trace(), None);
    }

    #[test]
    fn the_trace_is_visible_inside_only() {
        let parent = TraceParent::from_xray(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .unwrap();
        let (seen, _) = pollster::block_on(collect(Scope::system(Some(parent.clone())), async {
            trace()
        }));
        assert_eq!(seen, Some(parent));
        assert_eq!(trace(), None);
    }
}
