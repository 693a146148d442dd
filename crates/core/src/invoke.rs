//! Invocations: what a caller asks for, what comes back, and the seam ([`Invoke`]) between the
//! surfaces that receive invocations and the scheduler that runs them.

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::ServiceError;
use crate::names::FunctionRef;
use crate::stream::InvocationResponse;

/// Largest synchronous request and response payload, in bytes.
pub const SYNC_PAYLOAD_MAX: usize = 6 * 1024 * 1024;

/// Largest asynchronous (`Event`) payload, in bytes (1 MB since late 2025).
pub const ASYNC_PAYLOAD_MAX: usize = 1024 * 1024;

/// How the caller wants the function run (`X-Amz-Invocation-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationType {
    /// Wait for the result.
    RequestResponse,
    /// Queue it and return at once.
    Event,
    /// Check the request and permissions only.
    DryRun,
}

/// One request to run a function.
#[derive(Debug, Clone)]
pub struct InvocationRequest {
    /// The function (and qualifier) as the caller named it.
    pub function: FunctionRef,
    /// The event, as raw bytes.
    pub payload: Bytes,
    /// Sync, async or dry run.
    pub invocation_type: InvocationType,
    /// Whether the caller wants the last 4 KB of the log (`X-Amz-Log-Type: Tail`).
    pub log_tail: bool,
    /// Client context JSON, already base64-decoded.
    pub client_context: Option<String>,
    /// The request id; it is also the invocation id the runtime sees.
    pub request_id: String,
}

/// What a synchronous invocation returned.
#[derive(Debug, Clone)]
pub struct InvocationResult {
    /// The response body (or the function's error JSON).
    pub payload: Bytes,
    /// `Unhandled` when the function failed.
    pub function_error: Option<String>,
    /// The version that ran, e.g. `$LATEST`.
    pub executed_version: String,
    /// Base64 of the last 4 KB of the invocation's log, when asked for.
    pub log_result: Option<String>,
    /// Content type the runtime gave its response, if any.
    pub content_type: Option<String>,
}

/// Runs invocations: implemented by the scheduler, used by the API and triggers.
#[async_trait]
pub trait Invoke: Send + Sync + 'static {
    /// Refuse a runtime this platform cannot run, so a function using it is never created.
    fn check_runtime(&self, runtime: &crate::runtime::Runtime) -> Result<(), ServiceError> {
        let _ = runtime;
        Ok(())
    }

    /// A function was updated or deleted: its idle environments run outdated code or settings
    /// and are stopped now rather than when next looked at.
    async fn retire(&self, function: &crate::names::FunctionName) {
        let _ = function;
    }

    /// Run one invocation to completion (sync) or accept it (async/dry run).
    async fn invoke(&self, request: InvocationRequest) -> Result<InvocationResult, ServiceError>;

    /// Run one synchronous invocation whose response may be streamed: it returns as soon as the
    /// runtime starts a streamed response, whose bytes then arrive while the function writes
    /// them, or with the whole result when the runtime answered without streaming. Without an
    /// override every result is whole.
    async fn invoke_stream(
        &self,
        request: InvocationRequest,
    ) -> Result<InvocationResponse, ServiceError> {
        self.invoke(request).await.map(InvocationResponse::Buffered)
    }
}
