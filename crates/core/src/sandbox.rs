//! The seam between the scheduler and execution environments.
//!
//! The scheduler decides *what* runs (an [`EnvironmentSpec`] per function version) and *when*
//! (one [`Invocation`] at a time per environment); a [`Sandbox`] decides *how*: processes,
//! namespaces, cgroups and the environment's private Runtime API. Logs flow back through the
//! [`LogSink`] the scheduler hands down; results come back as an [`InvocationReport`], and the
//! bytes of a streamed response through the [`ResponseSink`](crate::stream::ResponseSink) it
//! hands down with [`Environment::invoke_streaming`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;

use crate::runtime::Runtime;

/// Everything needed to start one execution environment of one function version.
#[derive(Debug, Clone)]
pub struct EnvironmentSpec {
    /// 32 lower-case hex characters; unique per environment, part of its log stream name.
    pub environment_id: String,
    /// Function name.
    pub function_name: String,
    /// `$LATEST` or a version number.
    pub function_version: String,
    /// Runtime; decides the entry point.
    pub runtime: Runtime,
    /// Handler string, passed as `_HANDLER`.
    pub handler: String,
    /// Memory limit in MB.
    pub memory_mb: u32,
    /// Size of the private `/tmp` in MB.
    pub ephemeral_storage_mb: u32,
    /// Function timeout; each invocation's deadline is derived from it.
    pub timeout: Duration,
    /// The unpacked code package on the host, read-only; appears at `/var/task`.
    pub code_dir: PathBuf,
    /// The function's layers merged into one host directory, read-only; appears at `/opt`.
    pub opt_dir: Option<PathBuf>,
    /// The environment variables of the function: the owner's and the standard Lambda ones,
    /// except `AWS_LAMBDA_RUNTIME_API`, which the sandbox sets to its own endpoint.
    pub variables: BTreeMap<String, String>,
    /// Log group, e.g. `/aws/lambda/NAME`.
    pub log_group: String,
    /// Log stream, `YYYY/MM/DD/[VERSION]<environment id>`.
    pub log_stream: String,
}

/// One event handed to an environment.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Invocation id (`Lambda-Runtime-Aws-Request-Id`).
    pub request_id: String,
    /// The event bytes.
    pub payload: Bytes,
    /// The ARN as invoked (`Lambda-Runtime-Invoked-Function-Arn`).
    pub invoked_function_arn: String,
    /// X-Ray header (`Lambda-Runtime-Trace-Id`).
    pub trace_id: String,
    /// Client context JSON (`Lambda-Runtime-Client-Context`), sync invokes only.
    pub client_context: Option<String>,
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvocationOutcome {
    /// The runtime posted a response.
    Response {
        /// Response body.
        body: Bytes,
        /// Content type the runtime sent, if any.
        content_type: Option<String>,
    },
    /// The runtime streamed its response to the caller's
    /// [`ResponseSink`](crate::stream::ResponseSink) as it wrote it, and finished it.
    Streamed,
    /// The function failed and the runtime reported it (`/error` or `/init/error`): the body
    /// goes to the caller unchanged.
    FunctionError {
        /// The error JSON as posted.
        body: Bytes,
        /// `Lambda-Runtime-Function-Error-Type`, or the body's `errorType`.
        error_type: String,
    },
    /// The platform ended the invocation: timeout, crash, out of memory, oversized response.
    PlatformError {
        /// e.g. `Sandbox.Timedout`, `Runtime.ExitError`, `Runtime.OutOfMemory`.
        error_type: String,
        /// Message in Lambda's wording, e.g. `Task timed out after 3.00 seconds`.
        message: String,
    },
}

/// What an environment reports about one invocation.
#[derive(Debug, Clone)]
pub struct InvocationReport {
    /// The result.
    pub outcome: InvocationOutcome,
    /// Time from handing over the event to the result.
    pub duration: Duration,
    /// Init phase duration, on the environment's first invocation only.
    pub init_duration: Option<Duration>,
    /// Peak memory of the environment, in MB ("Max Memory Used").
    pub max_memory_used_mb: u64,
    /// The invocation's log lines (START to REPORT), for `X-Amz-Log-Result`.
    pub log: String,
    /// Whether the environment can take another invocation; false after a crash, timeout or OOM.
    pub reusable: bool,
}

/// A failure to create an environment.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The runtime's interpreter or entry point is missing on this host.
    #[error("runtime unavailable: {0}")]
    RuntimeUnavailable(String),
    /// The host refused a resource (process, namespace, cgroup, socket).
    #[error("could not create the environment: {0}")]
    Setup(#[source] std::io::Error),
}

/// Receives the log lines of environments: function output and platform lines alike.
pub trait LogSink: Send + Sync + 'static {
    /// One line of `group`/`stream`, written at `timestamp`.
    fn write(&self, group: &str, stream: &str, timestamp: SystemTime, line: &str);
}

/// One running execution environment; it serves one invocation at a time.
#[async_trait]
pub trait Environment: Send + Sync {
    /// The environment's id (as in its [`EnvironmentSpec`]).
    fn id(&self) -> &str;
    /// Run one invocation. Init happens on the first call if it has not finished yet.
    async fn invoke(&self, invocation: Invocation) -> InvocationReport;
    /// Run one invocation whose caller takes a streamed response: if the runtime streams, its
    /// bytes go to `sink` as they arrive and the outcome is `Streamed` (or the error that cut
    /// the stream off); otherwise the result comes back whole, as from
    /// [`invoke`](Self::invoke). The report, as always, comes when the runtime has finished.
    async fn invoke_streaming(
        &self,
        invocation: Invocation,
        sink: crate::stream::ResponseSink,
    ) -> InvocationReport {
        let _ = sink;
        self.invoke(invocation).await
    }
    /// Stop the environment and release everything it holds.
    async fn shutdown(&self);
    /// Whether the environment can still take an invocation (its runtime has not exited while
    /// idle, e.g. after a failed response post).
    fn alive(&self) -> bool {
        true
    }
    /// Stop the idle environment's processes, so that it uses no CPU until its next
    /// invocation, which thaws it first. Returns whether it is frozen now (`false` where the
    /// host cannot freeze; the environment then simply stays idle).
    async fn freeze(&self) -> bool {
        false
    }
}

/// Creates execution environments.
#[async_trait]
pub trait Sandbox: Send + Sync + 'static {
    /// Whether this host can run `runtime` (its interpreter is installed); the reason if not.
    fn check_runtime(&self, runtime: &Runtime) -> Result<(), String> {
        let _ = runtime;
        Ok(())
    }

    /// Start an environment: its process begins Init at once, in the background.
    async fn create(
        &self,
        spec: EnvironmentSpec,
        logs: Arc<dyn LogSink>,
    ) -> Result<Arc<dyn Environment>, SandboxError>;
}
