//! The one place where errors become HTTP responses, in Lambda's rest-json error format:
//! status code, `x-amzn-ErrorType` header and a `{"Type", "message"|"Message"}` body.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use nimbus_core::{ServiceError, StoreError};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub ServiceError);

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        Self(err)
    }
}

impl From<StoreError> for ApiError {
    /// Store failures the handler did not expect are internal: log the cause, tell the client
    /// only that the service failed.
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "store operation failed");
        Self(ServiceError::Service(
            "An internal error occurred; the request was not completed.".to_owned(),
        ))
    }
}

/// HTTP status for each error type (`lambda-compat.md` §4.3).
fn status(err: &ServiceError) -> StatusCode {
    StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The member name of the message follows the API model, which is not consistent: some shapes
/// spell it `Message`, most `message`. SDKs generated from the model read only their spelling.
fn message_key(err: &ServiceError) -> &'static str {
    match err {
        ServiceError::ResourceNotFound(_)
        | ServiceError::Service(_)
        | ServiceError::InvalidRuntime(_) => "Message",
        _ => "message",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = self.0;
        let kind = if matches!(err, ServiceError::Service(_)) {
            "Service"
        } else {
            "User"
        };
        let mut body = serde_json::Map::new();
        body.insert("Type".into(), kind.into());
        body.insert(message_key(&err).into(), err.message().into());
        if let ServiceError::TooManyRequests { reason, .. } = &err {
            body.insert("Reason".into(), reason.as_str().into());
        }
        let mut response = (
            status(&err),
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            serde_json::Value::Object(body).to_string(),
        )
            .into_response();
        response.headers_mut().insert(
            "x-amzn-ErrorType",
            HeaderValue::from_static(err.error_type()),
        );
        response
    }
}
