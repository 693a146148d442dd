//! The door every AWS-compatible request passes: a request id on the request and on the
//! response (`x-amzn-RequestId`), authentication before any handler runs, one access log line.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use nimbus_core::ServiceError;

use crate::error::ApiError;

/// The id of one API request, available to handlers as a request extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Decides whether a request may reach its handler. It receives the whole request, body included,
/// because SigV4 signs a hash of the body; it hands the request back (possibly re-assembled).
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// Let the request through, or refuse it with the error the caller should see.
    async fn authenticate(&self, request: Request) -> Result<Request, ServiceError>;
}

/// Lets every request through: the single-user default until credentials exist.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

#[async_trait]
impl Authenticator for AllowAll {
    async fn authenticate(&self, request: Request) -> Result<Request, ServiceError> {
        Ok(request)
    }
}

/// The middleware function; see the module docs.
pub async fn aws_request(
    State(auth): State<Arc<dyn Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    let mut response = match auth.authenticate(request).await {
        Ok(request) => next.run(request).await,
        Err(err) => ApiError(err).into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-RequestId", value);
    }
    let status = response.status().as_u16();
    let error_type = response
        .headers()
        .get("x-amzn-ErrorType")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Successful requests are logged at debug: at tens of thousands of invokes a second, a
    // line each would cost more than the invoke itself. Refusals and failures stay visible.
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if status < 400 {
        tracing::debug!(target: "nimbus::access", request_id, %method, path, status, elapsed_ms, "request");
    } else {
        tracing::info!(target: "nimbus::access", request_id, %method, path, status, error_type, elapsed_ms, "request");
    }
    response
}
