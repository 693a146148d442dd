//! InvokeWithResponseStream: `POST /2021-11-15/functions/{name}/response-streaming-invocations`.
//!
//! The response is an event stream (`eventstream`): `PayloadChunk` events as the function
//! writes, then `InvokeComplete`. A function that answers without streaming comes back as one
//! `PayloadChunk` holding its whole payload, as on Lambda. Function errors never change the
//! HTTP status: they surface in `InvokeComplete`. Errors before the invocation runs (unknown
//! function, throttling, bad parameters) are ordinary rest-json errors.

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use nimbus_core::invoke::{InvocationRequest, InvocationResult, InvocationType, SYNC_PAYLOAD_MAX};
use nimbus_core::stream::{InvocationResponse, StreamEnd, StreamError};
use nimbus_core::{FunctionRef, ServiceError};

use super::extract::{PathParam, QueryPairs};
use super::invoke::{
    client_context, empty_event, header as text_header, log_tail, EXECUTED_VERSION, INVOCATION_TYPE,
};
use crate::body::read_limited;
use crate::error::ApiError;
use crate::eventstream;
use crate::middleware::RequestId;
use crate::stream_body::{Encoder, StreamingBody};
use crate::ApiState;

/// `RequestResponse` or `DryRun`: a streamed invocation cannot be queued.
fn invocation_type(headers: &HeaderMap) -> Result<InvocationType, ApiError> {
    match text_header(headers, INVOCATION_TYPE)? {
        None | Some("RequestResponse") => Ok(InvocationType::RequestResponse),
        Some("DryRun") => Ok(InvocationType::DryRun),
        Some(other) => Err(ServiceError::constraint(
            other,
            "invocationType",
            "Member must satisfy enum value set: [RequestResponse, DryRun]",
        )
        .into()),
    }
}

pub(crate) async fn invoke_with_response_stream(
    State(api): State<ApiState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    PathParam(raw): PathParam,
    query: QueryPairs,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let function = FunctionRef::parse(&raw)?.with_qualifier_param(query.get("Qualifier"))?;
    let invocation_type = invocation_type(&headers)?;
    let log_tail = log_tail(&headers, invocation_type)?;
    let client_context = client_context(&headers)?;
    let mut payload =
        read_limited(&headers, body, SYNC_PAYLOAD_MAX, "InvokeWithResponseStream").await?;
    if payload.is_empty() {
        payload = empty_event();
    }
    let response = api
        .invoker
        .invoke_stream(InvocationRequest {
            function,
            payload,
            invocation_type,
            log_tail,
            client_context,
            request_id,
        })
        .await?;
    let (executed_version, body) = match response {
        InvocationResponse::Buffered(result) if invocation_type == InvocationType::DryRun => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            set_executed_version(response.headers_mut(), &result.executed_version);
            return Ok(response);
        }
        InvocationResponse::Buffered(result) => {
            let version = result.executed_version.clone();
            (version, Body::from(whole(result)))
        }
        InvocationResponse::Streamed(streamed) => (
            streamed.executed_version,
            Body::new(StreamingBody::new(None, streamed.body, EventStream)),
        ),
    };
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(eventstream::CONTENT_TYPE),
    );
    set_executed_version(h, &executed_version);
    Ok(response)
}

fn set_executed_version(headers: &mut HeaderMap, version: &str) {
    if let Ok(v) = HeaderValue::from_str(version) {
        headers.insert(EXECUTED_VERSION, v);
    }
}

/// The events of an answer that was not streamed: its payload as one chunk (unless it is the
/// function's error, which only `InvokeComplete` reports), then the end.
fn whole(result: InvocationResult) -> Bytes {
    let error = result
        .function_error
        .as_deref()
        .map(|kind| StreamError::from_error_body(&result.payload, kind));
    let complete = eventstream::invoke_complete(error.as_ref(), result.log_result.as_deref());
    if error.is_some() || result.payload.is_empty() {
        return complete;
    }
    let chunk = eventstream::payload_chunk(&result.payload);
    let mut all = BytesMut::with_capacity(chunk.len() + complete.len());
    all.extend_from_slice(&chunk);
    all.extend_from_slice(&complete);
    all.freeze()
}

/// Chunks become `PayloadChunk` events; the end becomes `InvokeComplete`.
struct EventStream;

impl Encoder for EventStream {
    fn data(&mut self, chunk: Bytes) -> Bytes {
        eventstream::payload_chunk(&chunk)
    }

    fn end(&mut self, end: StreamEnd) -> Option<Bytes> {
        Some(eventstream::invoke_complete(
            end.error.as_ref(),
            end.log_result.as_deref(),
        ))
    }
}
