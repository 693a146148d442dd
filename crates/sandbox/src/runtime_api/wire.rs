//! Wire names of the Runtime API (2018-06-01), declared once: paths, headers, error types,
//! limits and the small bodies the server sends.

use bytes::Bytes;
use http::HeaderName;
use nimbus_core::invoke::SYNC_PAYLOAD_MAX;

/// Prefix of every Runtime API path this server answers.
pub(crate) const RUNTIME_PREFIX: &str = "/2018-06-01/runtime/";
/// `GET` — the long poll for the next event (after [`RUNTIME_PREFIX`]).
pub(crate) const PATH_NEXT: &str = "invocation/next";
/// `POST` — a fatal init error (after [`RUNTIME_PREFIX`]).
pub(crate) const PATH_INIT_ERROR: &str = "init/error";
/// Prefix of the per-invocation paths (after [`RUNTIME_PREFIX`]).
pub(crate) const PATH_INVOCATION: &str = "invocation/";
/// `POST invocation/{id}/response`.
pub(crate) const SUFFIX_RESPONSE: &str = "/response";
/// `POST invocation/{id}/error`.
pub(crate) const SUFFIX_ERROR: &str = "/error";

/// Invocation id, on `/next`.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("lambda-runtime-aws-request-id");
/// Deadline in Unix epoch milliseconds, on `/next`.
pub(crate) const DEADLINE_MS: HeaderName = HeaderName::from_static("lambda-runtime-deadline-ms");
/// The ARN as invoked, on `/next`.
pub(crate) const INVOKED_FUNCTION_ARN: HeaderName =
    HeaderName::from_static("lambda-runtime-invoked-function-arn");
/// X-Ray trace header, on `/next`.
pub(crate) const TRACE_ID: HeaderName = HeaderName::from_static("lambda-runtime-trace-id");
/// Client context JSON, on `/next`.
pub(crate) const CLIENT_CONTEXT: HeaderName =
    HeaderName::from_static("lambda-runtime-client-context");
/// Cognito identity JSON, on `/next`.
pub(crate) const COGNITO_IDENTITY: HeaderName =
    HeaderName::from_static("lambda-runtime-cognito-identity");
/// Error type sent by the runtime on `/error` and `/init/error`, or as a streaming trailer.
pub(crate) const FUNCTION_ERROR_TYPE: HeaderName =
    HeaderName::from_static("lambda-runtime-function-error-type");
/// Base64 of the error JSON, as a streaming trailer.
pub(crate) const FUNCTION_ERROR_BODY: HeaderName =
    HeaderName::from_static("lambda-runtime-function-error-body");
/// Response mode of a `/response` post; only [`RESPONSE_MODE_STREAMING`] is valid.
pub(crate) const FUNCTION_RESPONSE_MODE: HeaderName =
    HeaderName::from_static("lambda-runtime-function-response-mode");
/// The one valid value of [`FUNCTION_RESPONSE_MODE`].
pub(crate) const RESPONSE_MODE_STREAMING: &str = "streaming";

/// Content type of every JSON body this server sends, and the default for events.
pub(crate) const APPLICATION_JSON: &str = "application/json";

/// Largest buffered response or error body the runtime may post: 6 MiB plus the 100 bytes of
/// slack RIE allows, so the caller's error message names the same figure as Lambda's.
pub(crate) const RESPONSE_LIMIT: usize = SYNC_PAYLOAD_MAX + 100;
/// Largest streamed response: Lambda's 20 MiB soft limit. It also bounds what the platform
/// holds when a streamed response goes to a caller that takes it whole.
pub(crate) const STREAMING_RESPONSE_LIMIT: usize = 20 * 1024 * 1024;

/// Runtime-API error types (the `errorType` of error bodies sent to the runtime).
pub(crate) mod error_type {
    /// 403: the call does not fit the current state.
    pub(crate) const INVALID_STATE_TRANSITION: &str = "InvalidStateTransition";
    /// 400: unknown or stale invocation id.
    pub(crate) const INVALID_REQUEST_ID: &str = "InvalidRequestID";
    /// 413: body larger than the limit.
    pub(crate) const REQUEST_ENTITY_TOO_LARGE: &str = "RequestEntityTooLarge";
    /// 400: the body ended early.
    pub(crate) const TRUNCATED_HTTP_REQUEST: &str = "TruncatedHTTPRequest";
    /// 400: bad `Lambda-Runtime-Function-Response-Mode`.
    pub(crate) const INVALID_FUNCTION_RESPONSE_MODE: &str = "InvalidFunctionResponseMode";
}

/// Error types the *caller* sees for runtime-protocol failures.
pub(crate) mod caller_error {
    /// The response (or error) body exceeded the limit.
    pub(crate) const RESPONSE_SIZE_TOO_LARGE: &str = "Function.ResponseSizeTooLarge";
    /// The runtime sent an unknown response mode.
    pub(crate) const INVALID_RESPONSE_MODE_HEADER: &str = "Runtime.InvalidResponseModeHeader";
    /// A streamed response ended early.
    pub(crate) const TRUNCATED_RESPONSE: &str = "Runtime.TruncatedResponse";
    /// A posted error whose type is given neither by header nor by body.
    pub(crate) const FUNCTION_UNKNOWN: &str = "Function.Unknown";
}

/// The body of a 202 to `/response`.
pub(crate) const STATUS_OK_BODY: &[u8] = br#"{"status":"OK"}"#;

/// `{"errorMessage","errorType"}` as JSON.
pub(crate) fn error_body(error_type: &str, message: &str) -> Bytes {
    #[derive(serde::Serialize)]
    struct ErrorBody<'a> {
        #[serde(rename = "errorMessage")]
        error_message: &'a str,
        #[serde(rename = "errorType")]
        error_type: &'a str,
    }
    let body = ErrorBody {
        error_message: message,
        error_type,
    };
    // Serializing two strings cannot fail; fall back to an empty object all the same.
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .unwrap_or_else(|_| Bytes::from_static(b"{}"))
}

/// Lambda's message for a response over `limit` (RIE's wording).
pub(crate) fn response_too_large_message(size: u64, limit: usize) -> String {
    format!(
        "Response payload size ({size} bytes) exceeded maximum allowed payload size \
         ({limit} bytes)."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_escapes_and_orders_fields() {
        let body = error_body("InvalidRequestID", "bad \"id\"");
        assert_eq!(
            &body[..],
            br#"{"errorMessage":"bad \"id\"","errorType":"InvalidRequestID"}"#
        );
    }

    #[test]
    fn too_large_message_names_rie_limit() {
        assert_eq!(
            response_too_large_message(7_000_000, RESPONSE_LIMIT),
            "Response payload size (7000000 bytes) exceeded maximum allowed payload size \
             (6291556 bytes)."
        );
    }
}
