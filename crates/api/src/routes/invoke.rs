//! Invoke: `POST /2015-03-31/functions/{name}/invocations`.

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use nimbus_core::invoke::{InvocationRequest, InvocationType, ASYNC_PAYLOAD_MAX, SYNC_PAYLOAD_MAX};
use nimbus_core::{FunctionRef, ServiceError};

use super::extract::{PathParam, QueryPairs};
use crate::body::read_limited;
use crate::error::ApiError;
use crate::middleware::RequestId;
use crate::ApiState;

pub(super) const INVOCATION_TYPE: &str = "x-amz-invocation-type";
const LOG_TYPE: &str = "x-amz-log-type";
const CLIENT_CONTEXT: &str = "x-amz-client-context";
const FUNCTION_ERROR: &str = "x-amz-function-error";
const LOG_RESULT: &str = "x-amz-log-result";
pub(super) const EXECUTED_VERSION: &str = "x-amz-executed-version";
/// Largest `X-Amz-Client-Context`, base64 characters.
const CLIENT_CONTEXT_MAX: usize = 3_583;

pub(super) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str().map_err(|_| {
                ApiError(ServiceError::InvalidRequestContent(format!(
                    "Header {name} is not valid text."
                )))
            })
        })
        .transpose()
}

fn invocation_type(headers: &HeaderMap) -> Result<InvocationType, ApiError> {
    match header(headers, INVOCATION_TYPE)? {
        None | Some("RequestResponse") => Ok(InvocationType::RequestResponse),
        Some("Event") => Ok(InvocationType::Event),
        Some("DryRun") => Ok(InvocationType::DryRun),
        Some(other) => Err(ServiceError::constraint(
            other,
            "invocationType",
            "Member must satisfy enum value set: [Event, RequestResponse, DryRun]",
        )
        .into()),
    }
}

pub(super) fn client_context(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(encoded) = header(headers, CLIENT_CONTEXT)? else {
        return Ok(None);
    };
    if encoded.len() > CLIENT_CONTEXT_MAX {
        return Err(ServiceError::InvalidParameterValue(format!(
            "Client context must be at most {CLIENT_CONTEXT_MAX} bytes when base64-encoded."
        ))
        .into());
    }
    let invalid = || {
        ApiError(ServiceError::InvalidRequestContent(
            "Client context must be a valid Base64-encoded JSON object.".to_owned(),
        ))
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    serde_json::from_str::<serde_json::Value>(&text).map_err(|_| invalid())?;
    Ok(Some(text))
}

/// `X-Amz-Log-Type`: whether the caller wants the log tail (sync invocations only).
pub(super) fn log_tail(
    headers: &HeaderMap,
    invocation_type: InvocationType,
) -> Result<bool, ApiError> {
    match header(headers, LOG_TYPE)? {
        None | Some("None") => Ok(false),
        Some("Tail") => Ok(invocation_type == InvocationType::RequestResponse),
        Some(other) => Err(ServiceError::constraint(
            other,
            "logType",
            "Member must satisfy enum value set: [None, Tail]",
        )
        .into()),
    }
}

/// The event of an invoke without a payload: `{}`, as Lambda delivers; runtimes parse the
/// event as JSON and would fail on an empty body.
pub(super) fn empty_event() -> bytes::Bytes {
    bytes::Bytes::from_static(b"{}")
}

pub(crate) async fn invoke(
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
    let mut payload = read_limited(&headers, body, SYNC_PAYLOAD_MAX, "InvokeFunction").await?;
    if invocation_type == InvocationType::Event && payload.len() > ASYNC_PAYLOAD_MAX {
        return Err(ServiceError::RequestTooLarge(format!(
            "{} byte payload is too large for the Event invocation type (limit {ASYNC_PAYLOAD_MAX} bytes)",
            payload.len()
        ))
        .into());
    }
    if payload.is_empty() {
        payload = empty_event();
    }
    let result = api
        .invoker
        .invoke(InvocationRequest {
            function,
            payload,
            invocation_type,
            log_tail,
            client_context,
            request_id,
        })
        .await?;
    let status = match invocation_type {
        InvocationType::RequestResponse => StatusCode::OK,
        InvocationType::Event => StatusCode::ACCEPTED,
        InvocationType::DryRun => StatusCode::NO_CONTENT,
    };
    let mut response = (status, result.payload).into_response();
    let h = response.headers_mut();
    let content_type = result.content_type.as_deref().unwrap_or("application/json");
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&result.executed_version) {
        h.insert(EXECUTED_VERSION, v);
    }
    if let Some(Ok(v)) = result.function_error.as_deref().map(HeaderValue::from_str) {
        h.insert(FUNCTION_ERROR, v);
    }
    if let Some(Ok(v)) = result.log_result.as_deref().map(HeaderValue::from_str) {
        h.insert(LOG_RESULT, v);
    }
    Ok(response)
}
