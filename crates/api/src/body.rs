//! Reading request bodies: size limits before parsing, and JSON errors in Lambda's terms.

use axum::body::Body;
use axum::http::HeaderMap;
use nimbus_core::ServiceError;
use serde::de::DeserializeOwned;

/// Read at most `limit` bytes of `body`; larger bodies are `RequestEntityTooLargeException`
/// naming the operation, as Lambda words it.
pub(crate) async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    operation: &str,
) -> Result<bytes::Bytes, ServiceError> {
    let too_large = || {
        ServiceError::RequestTooLarge(format!(
            "Request must be smaller than {limit} bytes for the {operation} operation"
        ))
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        // The only error `to_bytes` reports besides the limit is a broken connection.
        if std::error::Error::source(&err)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
        {
            too_large()
        } else {
            ServiceError::InvalidRequestContent(format!("could not read request body: {err}"))
        }
    })
}

/// Read and parse a JSON body of at most `limit` bytes.
pub(crate) async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    operation: &str,
) -> Result<T, ServiceError> {
    let bytes = read_limited(headers, body, limit, operation).await?;
    parse_json(&bytes)
}

/// Parse a JSON body; any syntax or type error is `InvalidRequestContentException`.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ServiceError> {
    serde_json::from_slice(bytes).map_err(|err| {
        ServiceError::InvalidRequestContent(format!(
            "Could not parse request body into json: Could not parse payload into json: {err}"
        ))
    })
}
