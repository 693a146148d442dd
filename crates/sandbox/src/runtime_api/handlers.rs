//! The request handlers of the Runtime API and the state machine they drive (RIE's rules):
//! a post for an id other than the one in flight is a 400 `InvalidRequestID`; a second post
//! for an answered id is a 403 `InvalidStateTransition` (the first result wins); `/next` while
//! an invocation is unanswered delivers that invocation again.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use nimbus_core::sandbox::InvocationOutcome;
use nimbus_core::stream::ResponseSink;

use super::body::{self, BodyError, Collected};
use super::wire::{self, caller_error, error_type};
use super::{Delivery, InitState, Shared};

/// A response of this server.
pub(crate) type ApiResponse = Response<Full<Bytes>>;

/// Which result endpoint was posted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResultKind {
    /// `/invocation/{id}/response`.
    Response,
    /// `/invocation/{id}/error`.
    Error,
}

/// `GET /runtime/invocation/next`: the first call ends Init; every call long-polls until an
/// invocation is in flight and returns it.
pub(crate) async fn next(shared: &Shared) -> ApiResponse {
    let mut init_failed = false;
    shared.init.send_if_modified(|state| match state {
        InitState::Pending => {
            *state = InitState::Ready(std::time::Instant::now());
            true
        }
        InitState::Ready(_) => false,
        InitState::Failed { .. } => {
            init_failed = true;
            false
        }
    });
    if init_failed {
        return error(
            StatusCode::FORBIDDEN,
            error_type::INVALID_STATE_TRANSITION,
            "init failed: the runtime must exit",
        );
    }
    loop {
        // Register for the wake-up before looking, so a dispatch in between is not missed.
        let notified = shared.dispatched.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(delivery) = current_delivery(shared) {
            return deliver(&delivery);
        }
        notified.await;
    }
}

fn current_delivery(shared: &Shared) -> Option<Arc<Delivery>> {
    let state = shared.lock();
    state.current.as_ref().map(|c| Arc::clone(&c.delivery))
}

fn deliver(delivery: &Delivery) -> ApiResponse {
    let mut response = Response::new(Full::new(delivery.payload.clone()));
    *response.headers_mut() = delivery.headers.clone();
    response
}

/// `POST /runtime/invocation/{id}/response` and `/error`.
pub(crate) async fn post_result(
    shared: &Shared,
    request_id: &str,
    kind: ResultKind,
    headers: &HeaderMap,
    incoming: Incoming,
) -> ApiResponse {
    let claim = match Claim::take(shared, request_id) {
        Ok(claim) => claim,
        Err(refused) => return refused.response(),
    };
    let streaming = match (kind, headers.get(&wire::FUNCTION_RESPONSE_MODE)) {
        (ResultKind::Response, Some(mode)) => {
            if !mode
                .as_bytes()
                .eq_ignore_ascii_case(wire::RESPONSE_MODE_STREAMING.as_bytes())
            {
                claim.complete(InvocationOutcome::PlatformError {
                    error_type: caller_error::INVALID_RESPONSE_MODE_HEADER.to_owned(),
                    message: format!(
                        "Invalid response mode header value: {}",
                        String::from_utf8_lossy(mode.as_bytes())
                    ),
                });
                return error(
                    StatusCode::BAD_REQUEST,
                    error_type::INVALID_FUNCTION_RESPONSE_MODE,
                    "Invalid Lambda-Runtime-Function-Response-Mode header value",
                );
            }
            true
        }
        _ => false,
    };
    let limit = if streaming {
        wire::STREAMING_RESPONSE_LIMIT
    } else {
        wire::RESPONSE_LIMIT
    };
    if streaming {
        if let Some(sink) = claim.sink.clone() {
            return forward_stream(claim, sink, headers, incoming).await;
        }
    }
    let collected = match body::collect(incoming, limit).await {
        Ok(collected) => collected,
        Err(BodyError::TooLarge { size }) => {
            claim.complete(too_large_outcome(size, limit));
            return too_large(limit);
        }
        Err(BodyError::Truncated(_)) if streaming => {
            claim.complete(truncated_outcome());
            return truncated();
        }
        // A buffered post that broke off releases the claim: the runtime may post again.
        Err(BodyError::Truncated(_)) => return truncated(),
    };
    let outcome = match kind {
        ResultKind::Response => response_outcome(headers, collected),
        ResultKind::Error => {
            let (body, error_type) = function_error(headers, collected.data);
            InvocationOutcome::FunctionError { body, error_type }
        }
    };
    claim.complete(outcome);
    // Let the waiting invocation (now first in this worker's queue) answer its caller before
    // the runtime gets its 202: the caller is waiting on it, the runtime only wants its next event.
    tokio::task::yield_now().await;
    accepted()
}

/// A streamed `/response` whose caller takes the stream: the content type and every chunk go
/// to `sink` as they arrive; the answer, once the body has ended, is `Streamed`, or the error
/// its trailers carry, or the limit or truncation that cut it off.
async fn forward_stream(
    claim: Claim<'_>,
    sink: ResponseSink,
    headers: &HeaderMap,
    incoming: Incoming,
) -> ApiResponse {
    let limit = wire::STREAMING_RESPONSE_LIMIT;
    sink.start(content_type(headers)).await;
    let (outcome, response) = match body::forward(incoming, limit, &sink).await {
        Ok(trailers) => {
            let outcome = match trailers.as_ref().and_then(trailer_error) {
                Some((body, error_type)) => InvocationOutcome::FunctionError { body, error_type },
                None => InvocationOutcome::Streamed,
            };
            (outcome, accepted())
        }
        Err(BodyError::TooLarge { size }) => (too_large_outcome(size, limit), too_large(limit)),
        Err(BodyError::Truncated(_)) => (truncated_outcome(), truncated()),
    };
    claim.complete(outcome);
    response
}

fn too_large_outcome(size: u64, limit: usize) -> InvocationOutcome {
    InvocationOutcome::PlatformError {
        error_type: caller_error::RESPONSE_SIZE_TOO_LARGE.to_owned(),
        message: wire::response_too_large_message(size, limit),
    }
}

fn truncated_outcome() -> InvocationOutcome {
    InvocationOutcome::PlatformError {
        error_type: caller_error::TRUNCATED_RESPONSE.to_owned(),
        message: "The runtime's streamed response ended before it was complete".to_owned(),
    }
}

fn too_large(limit: usize) -> ApiResponse {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        error_type::REQUEST_ENTITY_TOO_LARGE,
        &format!("Payload size exceeds the limit of {limit} bytes"),
    )
}

/// `POST /runtime/init/error`: accepted once, and only while Init runs.
pub(crate) async fn init_error(
    shared: &Shared,
    headers: &HeaderMap,
    incoming: Incoming,
) -> ApiResponse {
    if !matches!(*shared.init.borrow(), InitState::Pending) {
        return invalid_state("init has already finished");
    }
    let data = match body::collect(incoming, wire::RESPONSE_LIMIT).await {
        Ok(collected) => collected.data,
        Err(BodyError::TooLarge { .. }) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                error_type::REQUEST_ENTITY_TOO_LARGE,
                "Payload size exceeds the limit",
            )
        }
        Err(BodyError::Truncated(_)) => return truncated(),
    };
    let (body, error_type) = function_error(headers, data);
    let recorded = shared.init.send_if_modified(|state| {
        if matches!(state, InitState::Pending) {
            *state = InitState::Failed { body, error_type };
            true
        } else {
            false
        }
    });
    if recorded {
        accepted()
    } else {
        invalid_state("init has already finished")
    }
}

/// The right to answer the invocation in flight, held while its body is read. Dropping it
/// unused (the body broke off, or the connection went away) lets the runtime post again.
struct Claim<'a> {
    shared: &'a Shared,
    request_id: &'a str,
    /// Where a streamed response goes, if the caller takes one.
    sink: Option<ResponseSink>,
    done: bool,
}

impl<'a> Claim<'a> {
    fn take(shared: &'a Shared, request_id: &'a str) -> Result<Self, ClaimError> {
        let mut state = shared.lock();
        if let Some(current) = state.current.as_mut() {
            if current.request_id == request_id {
                if current.claimed {
                    return Err(ClaimError::BeingPosted);
                }
                current.claimed = true;
                return Ok(Self {
                    shared,
                    request_id,
                    sink: current.sink.clone(),
                    done: false,
                });
            }
        }
        if state.last_answered.as_deref() == Some(request_id) {
            Err(ClaimError::AlreadyAnswered)
        } else {
            Err(ClaimError::UnknownId)
        }
    }

    /// Record `outcome` as the invocation's result and hand it to the waiting environment.
    fn complete(mut self, outcome: InvocationOutcome) {
        self.done = true;
        let sender = {
            let mut state = self.shared.lock();
            match state.current.take() {
                Some(mut current) if current.request_id == self.request_id => {
                    state.last_answered = Some(current.request_id);
                    current.result.take()
                }
                // Cancelled (timed out) or replaced while the body was read.
                other => {
                    state.current = other;
                    None
                }
            }
        };
        if let Some(sender) = sender {
            // The environment may have stopped waiting (shutdown); nothing to do then.
            let _ = sender.send(outcome);
        }
    }
}

/// Why a result post cannot answer the invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClaimError {
    /// Not the invocation in flight (unknown or stale): 400.
    UnknownId,
    /// Already answered: 403, the first result wins.
    AlreadyAnswered,
    /// Another post for it is being read right now: 403.
    BeingPosted,
}

impl ClaimError {
    fn response(self) -> ApiResponse {
        match self {
            Self::UnknownId => error(
                StatusCode::BAD_REQUEST,
                error_type::INVALID_REQUEST_ID,
                "Invalid request ID",
            ),
            Self::AlreadyAnswered => {
                invalid_state("a result for this invocation was already accepted")
            }
            Self::BeingPosted => invalid_state("a result for this invocation is being posted"),
        }
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.shared.lock();
        if let Some(current) = state.current.as_mut() {
            if current.request_id == self.request_id {
                current.claimed = false;
            }
        }
    }
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn response_outcome(headers: &HeaderMap, collected: Collected) -> InvocationOutcome {
    match collected.trailers.as_ref().and_then(trailer_error) {
        Some((body, error_type)) => InvocationOutcome::FunctionError { body, error_type },
        None => InvocationOutcome::Response {
            body: collected.data,
            content_type: content_type(headers),
        },
    }
}

/// A stream that failed midway: its trailers carry the error type and the error's body,
/// base64-encoded.
fn trailer_error(trailers: &HeaderMap) -> Option<(Bytes, String)> {
    let error_type = header_text(trailers, &wire::FUNCTION_ERROR_TYPE)?;
    let body = trailers
        .get(&wire::FUNCTION_ERROR_BODY)
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes())
                .ok()
        })
        .filter(|b| !b.is_empty())
        .map(Bytes::from)
        .unwrap_or_else(|| wire::error_body(&error_type, ""));
    Some((body, error_type))
}

/// The body and error type of a posted error: the header names the type, else the body's
/// `errorType`; an empty body is replaced by one built from the type.
fn function_error(headers: &HeaderMap, data: Bytes) -> (Bytes, String) {
    #[derive(serde::Deserialize)]
    struct ErrorTypeOnly {
        #[serde(rename = "errorType")]
        error_type: Option<String>,
    }
    let error_type = header_text(headers, &wire::FUNCTION_ERROR_TYPE)
        .or_else(|| {
            serde_json::from_slice::<ErrorTypeOnly>(&data)
                .ok()
                .and_then(|e| e.error_type)
                .filter(|t| !t.is_empty())
        })
        .unwrap_or_else(|| caller_error::FUNCTION_UNKNOWN.to_owned());
    let body = if data.is_empty() {
        wire::error_body(&error_type, "")
    } else {
        data
    };
    (body, error_type)
}

fn header_text(headers: &HeaderMap, name: &http::HeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn accepted() -> ApiResponse {
    json(
        StatusCode::ACCEPTED,
        Bytes::from_static(wire::STATUS_OK_BODY),
    )
}

fn truncated() -> ApiResponse {
    error(
        StatusCode::BAD_REQUEST,
        error_type::TRUNCATED_HTTP_REQUEST,
        "The request body ended before it was complete",
    )
}

fn invalid_state(message: &str) -> ApiResponse {
    error(
        StatusCode::FORBIDDEN,
        error_type::INVALID_STATE_TRANSITION,
        message,
    )
}

/// A status with a Runtime-API error body.
pub(crate) fn error(status: StatusCode, error_type: &str, message: &str) -> ApiResponse {
    json(status, wire::error_body(error_type, message))
}

/// A bodyless status (unknown paths, wrong methods).
pub(crate) fn status_only(status: StatusCode) -> ApiResponse {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

fn json(status: StatusCode, body: Bytes) -> ApiResponse {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(wire::APPLICATION_JSON),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posted_error_type_prefers_header_then_body() {
        let mut headers = HeaderMap::new();
        let body = Bytes::from_static(br#"{"errorType":"ValueError","errorMessage":"x"}"#);
        let (b, t) = function_error(&headers, body.clone());
        assert_eq!((b, t.as_str()), (body.clone(), "ValueError"));
        headers.insert(
            wire::FUNCTION_ERROR_TYPE,
            HeaderValue::from_static("unhandled"),
        );
        assert_eq!(function_error(&headers, body).1, "unhandled");
        let (b, t) = function_error(&HeaderMap::new(), Bytes::new());
        assert_eq!(t, "Function.Unknown");
        assert_eq!(
            &b[..],
            br#"{"errorMessage":"","errorType":"Function.Unknown"}"#
        );
    }

    #[test]
    fn streaming_error_trailers_become_a_function_error() {
        let mut trailers = HeaderMap::new();
        trailers.insert(
            wire::FUNCTION_ERROR_TYPE,
            HeaderValue::from_static("Runtime.StreamError"),
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(br#"{"errorType":"E"}"#);
        trailers.insert(
            wire::FUNCTION_ERROR_BODY,
            HeaderValue::from_str(&encoded).expect("base64 is a valid header"),
        );
        let collected = Collected {
            data: Bytes::from_static(b"partial"),
            trailers: Some(trailers),
        };
        assert_eq!(
            response_outcome(&HeaderMap::new(), collected),
            InvocationOutcome::FunctionError {
                body: Bytes::from_static(br#"{"errorType":"E"}"#),
                error_type: "Runtime.StreamError".to_owned(),
            }
        );
    }
}
