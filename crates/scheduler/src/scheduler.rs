//! [`Scheduler`]: the synchronous invoke path.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use nimbus_core::invoke::{InvocationRequest, InvocationResult, InvocationType, Invoke};
use nimbus_core::sandbox::{
    Invocation, InvocationOutcome, InvocationReport, LogSink, Sandbox, SandboxError,
};
use nimbus_core::{AccountContext, BlobStore, Function, MetadataStore, Runtime, ServiceError};

use crate::admission::{Admission, Limit};
use crate::code_cache::CodeCache;
use crate::environment_spec::environment_spec;
use crate::pool::{Env, Pool, PoolKey};

/// How many bytes of log `X-Amz-Log-Result` carries.
const LOG_TAIL_BYTES: usize = 4 * 1024;

/// Where the scheduler keeps its files and whom resources belong to.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Directory for unpacked code packages.
    pub code_root: PathBuf,
    /// Region and account for ARNs.
    pub account: AccountContext,
    /// Concurrency and idle-environment limits.
    pub limits: Limits,
}

/// How far the scheduler scales and how long idle environments live.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The account's concurrency limit: invocations in flight across all functions.
    pub max_concurrency: u32,
    /// An environment idle this long is shut down (scale to zero).
    pub idle_timeout: Duration,
    /// An environment idle this long is frozen until its next invocation.
    pub freeze_after: Duration,
}

impl Default for Limits {
    /// Lambda's default account limit (1000), a 10-minute idle timeout and freezing after
    /// 100 ms: quick enough that an idle function costs no CPU, slow enough that a busy one
    /// is not frozen and thawed between back-to-back calls.
    fn default() -> Self {
        Self {
            max_concurrency: 1000,
            idle_timeout: Duration::from_secs(600),
            freeze_after: Duration::from_millis(100),
        }
    }
}

/// Runs invocations in pooled environments.
pub struct Scheduler {
    meta: Arc<dyn MetadataStore>,
    sandbox: Arc<dyn Sandbox>,
    logs: Arc<dyn LogSink>,
    code: CodeCache,
    pool: Pool,
    admission: Arc<Admission>,
    limits: Limits,
    account: AccountContext,
}

impl Scheduler {
    /// A scheduler over the given stores and sandbox.
    pub fn new(
        config: SchedulerConfig,
        meta: Arc<dyn MetadataStore>,
        blobs: Arc<dyn BlobStore>,
        sandbox: Arc<dyn Sandbox>,
        logs: Arc<dyn LogSink>,
    ) -> std::io::Result<Self> {
        Ok(Self {
            meta,
            sandbox,
            logs,
            code: CodeCache::open(&config.code_root, blobs)?,
            pool: Pool::default(),
            admission: Admission::new(config.limits.max_concurrency),
            limits: config.limits,
            account: config.account,
        })
    }

    /// Freeze environments idle past the grace period and shut down those idle past the
    /// timeout, until the scheduler is dropped. Run it as a task beside the server.
    pub async fn housekeeping(self: Arc<Self>) {
        let limits = self.limits;
        let tick = (limits.freeze_after.min(limits.idle_timeout) / 2)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        let weak: Weak<Self> = Arc::downgrade(&self);
        drop(self);
        loop {
            tokio::time::sleep(tick).await;
            let Some(scheduler) = weak.upgrade() else {
                return;
            };
            scheduler.tidy(Instant::now()).await;
        }
    }

    /// One round of housekeeping at `now`.
    async fn tidy(&self, now: Instant) {
        for env in self.pool.expired(now, self.limits.idle_timeout) {
            tracing::debug!(environment = env.id(), "reaping an idle environment");
            tokio::spawn(async move { env.shutdown().await });
        }
        for candidate in self.pool.freeze_candidates(now, self.limits.freeze_after) {
            let frozen = candidate.env.freeze().await;
            if let Some(stale) = self.pool.put_back_frozen(candidate, frozen) {
                tokio::spawn(async move { stale.shutdown().await });
            }
        }
    }

    /// Invocations in flight (of one function, or of all).
    pub fn running(&self, function: Option<&str>) -> u32 {
        self.admission.running(function)
    }

    /// Idle environments, and how many of them are frozen.
    pub fn idle_environments(&self) -> (usize, usize) {
        self.pool.idle_counts()
    }

    /// Stop every idle environment (at server shutdown).
    pub async fn shutdown(&self) {
        for env in self.pool.drain(None) {
            env.shutdown().await;
        }
    }

    async fn resolve(&self, request: &InvocationRequest) -> Result<Function, ServiceError> {
        let r = &request.function;
        let name = r.latest(&self.account)?;
        self.meta
            .get_function(name)
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "read function for invoke");
                ServiceError::Service("An internal error occurred.".to_owned())
            })?
            .ok_or_else(|| ServiceError::function_not_found(&r.arn(&self.account)))
    }

    async fn environment(&self, function: &Function, key: &PoolKey) -> Result<Env, ServiceError> {
        let name = function.name.as_str();
        let (warm, stale) = self.pool.take(key, &function.revision_id);
        for env in stale {
            tokio::spawn(async move { env.shutdown().await });
        }
        if let Some(env) = warm {
            if env.alive() {
                return Ok(env);
            }
            // Its runtime died while idle: replace it rather than fail the caller.
            tokio::spawn(async move { env.shutdown().await });
        }
        let code_dir = self.code.directory(&function.code.sha256_hex).await?;
        let spec = environment_spec(function, &key.version, &self.account, code_dir);
        self.sandbox
            .create(spec, Arc::clone(&self.logs))
            .await
            .map_err(|err| match err {
                SandboxError::RuntimeUnavailable(why) => ServiceError::InvalidRuntime(why),
                SandboxError::Setup(io) => {
                    tracing::error!(function = name, error = %io, "could not create an environment");
                    ServiceError::Service(
                        "The execution environment could not be created.".to_owned(),
                    )
                }
            })
    }
}

#[async_trait]
impl Invoke for Scheduler {
    fn check_runtime(&self, runtime: &Runtime) -> Result<(), ServiceError> {
        self.sandbox
            .check_runtime(runtime)
            .map_err(ServiceError::InvalidParameterValue)
    }

    async fn retire(&self, function: &nimbus_core::FunctionName) {
        for env in self.pool.drain(Some(function.as_str())) {
            env.shutdown().await;
        }
    }

    async fn invoke(&self, request: InvocationRequest) -> Result<InvocationResult, ServiceError> {
        let function = self.resolve(&request).await?;
        match request.invocation_type {
            InvocationType::DryRun => {
                return Ok(InvocationResult {
                    payload: Bytes::new(),
                    function_error: None,
                    executed_version: "$LATEST".to_owned(),
                    log_result: None,
                    content_type: None,
                })
            }
            InvocationType::Event => {
                return Err(ServiceError::InvalidParameterValue(
                    "Asynchronous invocation (InvocationType Event) is not available yet; use RequestResponse."
                        .to_owned(),
                ))
            }
            InvocationType::RequestResponse => {}
        }
        let key = PoolKey {
            function: function.name.as_str().to_owned(),
            version: "$LATEST".to_owned(),
        };
        let _permit = self
            .admission
            .admit(&key.function, Limit::Unreserved { total_reserved: 0 })?;
        let env = self.environment(&function, &key).await?;
        let invoked_function_arn = request.function.arn(&self.account);
        let invocation = Invocation {
            request_id: request.request_id.clone(),
            payload: request.payload,
            invoked_function_arn,
            trace_id: trace_id(),
            client_context: request.client_context,
        };
        let report = env.invoke(invocation).await;
        if report.reusable {
            if let Some(outdated) = self.pool.put_back(&key, &function.revision_id, env) {
                tokio::spawn(async move { outdated.shutdown().await });
            }
        } else {
            tokio::spawn(async move { env.shutdown().await });
        }
        Ok(result_of(report, request.log_tail))
    }
}

/// The caller's view of an environment's report.
fn result_of(report: InvocationReport, log_tail: bool) -> InvocationResult {
    let log_result = log_tail.then(|| {
        let log = report.log.as_bytes();
        let mut start = log.len().saturating_sub(LOG_TAIL_BYTES);
        // Keep the tail valid UTF-8: never start inside a multi-byte character.
        while start < log.len() && (log[start] & 0b1100_0000) == 0b1000_0000 {
            start += 1;
        }
        base64::engine::general_purpose::STANDARD.encode(&log[start..])
    });
    let (payload, function_error, content_type) = match report.outcome {
        InvocationOutcome::Response { body, content_type } => (body, None, content_type),
        InvocationOutcome::FunctionError { body, .. } => (body, Some("Unhandled".to_owned()), None),
        InvocationOutcome::PlatformError {
            error_type,
            message,
        } => {
            let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
            (
                Bytes::from(body.to_string()),
                Some("Unhandled".to_owned()),
                None,
            )
        }
    };
    InvocationResult {
        payload,
        function_error,
        executed_version: "$LATEST".to_owned(),
        log_result,
        content_type,
    }
}

/// A new X-Ray trace header: `Root=1-<epoch hex>-<96-bit id>;Parent=<64-bit id>;Sampled=0`.
fn trace_id() -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{now:08x}-{};Parent={};Sampled=0",
        &id[..24],
        &id[16..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn report(outcome: InvocationOutcome, log: &str) -> InvocationReport {
        InvocationReport {
            outcome,
            duration: Duration::from_millis(5),
            init_duration: None,
            max_memory_used_mb: 10,
            log: log.to_owned(),
            reusable: true,
        }
    }

    #[test]
    fn platform_errors_become_lambda_error_bodies() {
        let r = result_of(
            report(
                InvocationOutcome::PlatformError {
                    error_type: "Sandbox.Timedout".into(),
                    message: "Task timed out after 1.00 seconds".into(),
                },
                "",
            ),
            false,
        );
        assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
        let body: serde_json::Value = serde_json::from_slice(&r.payload).expect("json");
        assert_eq!(body["errorType"], "Sandbox.Timedout");
        assert!(r.log_result.is_none());
    }

    #[test]
    fn log_tail_is_the_last_4_kb_on_a_character_boundary() {
        let log = format!("{}{}", "é".repeat(3000), "END");
        let r = result_of(
            report(
                InvocationOutcome::Response {
                    body: Bytes::from_static(b"1"),
                    content_type: None,
                },
                &log,
            ),
            true,
        );
        let tail = base64::engine::general_purpose::STANDARD
            .decode(r.log_result.expect("tail"))
            .expect("base64");
        assert!(tail.len() <= LOG_TAIL_BYTES);
        let text = String::from_utf8(tail).expect("valid UTF-8");
        assert!(text.ends_with("END"));
        assert!(r.function_error.is_none());
    }

    #[test]
    fn trace_ids_have_the_xray_shape() {
        let t = trace_id();
        assert!(t.starts_with("Root=1-") && t.contains(";Parent=") && t.ends_with(";Sampled=0"));
    }
}
