//! The Runtime API (2018-06-01) of one environment.
//!
//! [`RuntimeApi::start`] serves the API on the environment's listener and returns a
//! [`RuntimeApiHandle`], through which the environment learns how Init ended
//! ([`RuntimeApiHandle::init_done`]) and hands over invocations
//! ([`RuntimeApiHandle::dispatch`]). The two sides meet in `Shared`: a short-lived
//! `std::sync::Mutex` (never held across `.await`) holds the invocation in flight, a
//! [`Notify`] wakes `/next` long polls, a `oneshot` carries the runtime's answer back, and a
//! `watch` publishes the Init state.
//!
//! The runtime is untrusted tenant code, so every input is bounded (header sizes, body sizes,
//! number of connections) and no input can panic or wedge the server; a connection that never
//! finishes its request only costs its own environment, and ends with it.

mod body;
mod handlers;
mod server;
mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use nimbus_core::sandbox::InvocationOutcome;
use nimbus_core::stream::ResponseSink;
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::JoinHandle;

/// Serves the Runtime API of one environment.
#[derive(Debug)]
pub struct RuntimeApi;

impl RuntimeApi {
    /// Serve the Runtime API on `listener` (non-blocking, as `sys::bind_runtime_api_listener`
    /// returns it) until [`RuntimeApiHandle::shutdown`] is called or the task is aborted.
    /// Must be called inside a tokio runtime.
    pub fn start(
        listener: std::net::TcpListener,
    ) -> std::io::Result<(RuntimeApiHandle, JoinHandle<()>)> {
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let (init_tx, _) = watch::channel(InitState::Pending);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            dispatched: Notify::new(),
            init: init_tx,
            shutdown: shutdown_tx,
        });
        let task = tokio::spawn(server::serve(listener, Arc::clone(&shared), shutdown_rx));
        Ok((RuntimeApiHandle { shared, local_addr }, task))
    }
}

/// One event as the runtime receives it from `/next`.
#[derive(Debug, Clone)]
pub struct InvocationEvent {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// The event bytes, passed through untouched.
    pub payload: Bytes,
    /// `Lambda-Runtime-Deadline-Ms`.
    pub deadline: SystemTime,
    /// `Lambda-Runtime-Invoked-Function-Arn`.
    pub invoked_function_arn: String,
    /// `Lambda-Runtime-Trace-Id`.
    pub trace_id: String,
    /// `Lambda-Runtime-Client-Context`.
    pub client_context: Option<String>,
    /// `Lambda-Runtime-Cognito-Identity`.
    pub cognito_identity: Option<String>,
}

/// How Init ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitOutcome {
    /// The runtime asked for its first event at `at`.
    Ready {
        /// When the first `/next` arrived.
        at: Instant,
    },
    /// The runtime posted `/init/error`.
    Failed {
        /// The error JSON as posted.
        body: Bytes,
        /// `Lambda-Runtime-Function-Error-Type`, or the body's `errorType`.
        error_type: String,
    },
}

/// The Runtime API stopped before the runtime answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the runtime api stopped before the runtime answered")]
pub struct RuntimeApiClosed;

/// The environment's side of a running Runtime API.
#[derive(Debug, Clone)]
pub struct RuntimeApiHandle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
}

impl RuntimeApiHandle {
    /// The address the API listens on (the value of `AWS_LAMBDA_RUNTIME_API`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Wait until the runtime has either asked for its first event or reported an init error.
    pub async fn init_done(&self) -> InitOutcome {
        let mut rx = self.shared.init.subscribe();
        let result = rx
            .wait_for(|state| !matches!(state, InitState::Pending))
            .await
            .map(|state| state.clone());
        match result {
            Ok(InitState::Ready(at)) => InitOutcome::Ready { at },
            Ok(InitState::Failed { body, error_type }) => InitOutcome::Failed { body, error_type },
            // The sender lives in `Shared`, which this handle keeps alive: unreachable.
            Ok(InitState::Pending) | Err(_) => std::future::pending().await,
        }
    }

    /// Hand `event` to the runtime: the current or next `/next` returns it. The returned future
    /// resolves with the runtime's answer. Replaces (and fails) any invocation still in flight.
    /// A streamed response is read whole (up to its limit) and answered as a `Response`.
    pub fn dispatch(&self, event: &InvocationEvent) -> Dispatched {
        self.dispatch_to(event, None)
    }

    /// [`dispatch`](Self::dispatch) for a caller that takes a streamed response: its bytes go
    /// to `sink` as the runtime posts them, and the answer, once the stream has ended, is
    /// `Streamed` or the error that cut it off. Buffered answers come back as from `dispatch`.
    pub fn dispatch_streaming(&self, event: &InvocationEvent, sink: ResponseSink) -> Dispatched {
        self.dispatch_to(event, Some(sink))
    }

    fn dispatch_to(&self, event: &InvocationEvent, sink: Option<ResponseSink>) -> Dispatched {
        let delivery = Arc::new(Delivery::new(event));
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.shared.lock();
            // From now on the previous id is stale (400), no longer "already answered" (403).
            state.last_answered = None;
            state.current = Some(InFlight {
                request_id: event.request_id.clone(),
                delivery,
                result: Some(tx),
                claimed: false,
                sink,
            });
        }
        self.shared.dispatched.notify_waiters();
        Dispatched(rx)
    }

    /// Forget the invocation in flight (after a timeout): later posts for it get 400.
    pub fn cancel(&self) {
        let mut state = self.shared.lock();
        state.current = None;
    }

    /// Stop serving: the accept loop ends and every open connection is dropped.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }
}

/// The runtime's answer to one dispatched invocation.
#[derive(Debug)]
pub struct Dispatched(oneshot::Receiver<InvocationOutcome>);

impl Future for Dispatched {
    type Output = Result<InvocationOutcome, RuntimeApiClosed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.map_err(|_| RuntimeApiClosed))
    }
}

/// State shared by the handle and the request handlers.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Woken (all waiters) when an invocation is dispatched.
    dispatched: Notify,
    init: watch::Sender<InitState>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding the lock; recover the data if one ever did.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Debug, Clone)]
enum InitState {
    Pending,
    Ready(Instant),
    Failed { body: Bytes, error_type: String },
}

#[derive(Debug, Default)]
struct State {
    /// The invocation the runtime owes an answer for.
    current: Option<InFlight>,
    /// The last invocation answered: a second post for it is a 403, not a 400.
    last_answered: Option<String>,
}

#[derive(Debug)]
struct InFlight {
    request_id: String,
    delivery: Arc<Delivery>,
    result: Option<oneshot::Sender<InvocationOutcome>>,
    /// A `/response` or `/error` body is being read for it.
    claimed: bool,
    /// Where a streamed response goes as it arrives; `None`: read it whole.
    sink: Option<ResponseSink>,
}

/// The `/next` response of one invocation, built once and shared by (re-)deliveries.
#[derive(Debug)]
pub(crate) struct Delivery {
    headers: HeaderMap,
    payload: Bytes,
}

impl Delivery {
    fn new(event: &InvocationEvent) -> Self {
        let mut headers = HeaderMap::with_capacity(8);
        let deadline_ms = event
            .deadline
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        insert(&mut headers, wire::REQUEST_ID, &event.request_id);
        insert(&mut headers, wire::DEADLINE_MS, &deadline_ms.to_string());
        insert(
            &mut headers,
            wire::INVOKED_FUNCTION_ARN,
            &event.invoked_function_arn,
        );
        insert(&mut headers, wire::TRACE_ID, &event.trace_id);
        if let Some(context) = &event.client_context {
            insert(&mut headers, wire::CLIENT_CONTEXT, context);
        }
        if let Some(identity) = &event.cognito_identity {
            insert(&mut headers, wire::COGNITO_IDENTITY, identity);
        }
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(wire::APPLICATION_JSON),
        );
        Self {
            headers,
            payload: event.payload.clone(),
        }
    }
}

/// Insert a header only when its value is non-empty (as RIE does). Control characters, which
/// a header cannot carry, become spaces: in the JSON headers they can only be whitespace.
fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if value.is_empty() {
        return;
    }
    let value = HeaderValue::from_str(value).unwrap_or_else(|_| {
        let cleaned: Vec<u8> = value
            .bytes()
            .map(|b| {
                if (b < 0x20 && b != b'\t') || b == 0x7f {
                    b' '
                } else {
                    b
                }
            })
            .collect();
        HeaderValue::from_bytes(&cleaned).unwrap_or_else(|_| HeaderValue::from_static(""))
    });
    headers.insert(name, value);
}
