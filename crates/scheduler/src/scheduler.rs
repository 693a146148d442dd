//! [`Scheduler`]: the synchronous invoke path.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use nimbus_core::invoke::{InvocationRequest, InvocationResult, InvocationType, Invoke};
use nimbus_core::queue::{EventQueue, OutboxMessage, QueuedEvent};
use nimbus_core::sandbox::{
    Invocation, InvocationOutcome, InvocationReport, LogSink, Sandbox, SandboxError,
};
use nimbus_core::stream::{self, InvocationResponse, StreamEnd, StreamError};
use nimbus_core::{
    AccountContext, Alias, BlobStore, Function, FunctionRef, FunctionVersion, MetadataStore,
    Qualifier, Runtime, ServiceError,
};

use crate::admission::{Admission, Limit, Permit};
use crate::code_cache::CodeCache;
use crate::dispatch::{self, AsyncPath, AsyncSettings, InFlight, Policy, Settle};
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
    /// Shared with streaming invocations, which give their environment back from their own task.
    pool: Arc<Pool>,
    admission: Arc<Admission>,
    limits: Limits,
    account: AccountContext,
    /// The durable queue of async invocations, when the scheduler has one.
    async_path: Option<AsyncPath>,
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
            pool: Arc::default(),
            admission: Admission::new(config.limits.max_concurrency),
            limits: config.limits,
            account: config.account,
            async_path: None,
        })
    }

    /// Accept `Event` invocations into `queue` and run them with [`dispatch`](Self::dispatch).
    pub fn with_event_queue(mut self, queue: Arc<dyn EventQueue>, settings: AsyncSettings) -> Self {
        self.async_path = Some(AsyncPath::new(queue, settings));
        self
    }

    /// Run queued async events, until the task running this is aborted (at server shutdown).
    /// It first takes back the leases a previous (crashed) process held.
    pub async fn dispatch(self: Arc<Self>) {
        let Some(path) = self.async_path.as_ref() else {
            return;
        };
        match path.queue.recover(&path.owner).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "resuming async events of a previous run"),
            Err(error) => tracing::error!(%error, "could not recover queued async events"),
        }
        loop {
            let in_flight = path.in_flight.load(std::sync::atomic::Ordering::Acquire);
            path.pace.adjust(in_flight);
            let room = path.pace.window().saturating_sub(in_flight);
            // Registered before looking, so a wake-up between the lease and the wait is kept.
            let woken = path.wake.notified();
            let leased = if room == 0 {
                Vec::new()
            } else {
                match path
                    .queue
                    .lease(&path.owner, chrono::Utc::now(), room)
                    .await
                {
                    Ok(events) => events,
                    Err(error) => {
                        tracing::error!(%error, "could not lease async events");
                        Vec::new()
                    }
                }
            };
            if leased.is_empty() {
                let _ = tokio::time::timeout(path.settings.poll, woken).await;
                continue;
            }
            for event in leased {
                path.in_flight
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                let scheduler = Arc::clone(&self);
                tokio::spawn(async move { scheduler.run_event(event).await });
            }
        }
    }

    /// Run one queued event and settle it.
    async fn run_event(&self, event: QueuedEvent) {
        let Some(path) = self.async_path.as_ref() else {
            return;
        };
        let _in_flight = InFlight(path);
        let config = path
            .queue
            .get_invoke_config(&event.function, event.qualifier.as_deref())
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "reading the async settings failed; using the defaults");
                None
            });
        // Resolved before the age check: an expired event still goes to its version's
        // dead-letter queue.
        let resolved = match dispatch::request_of(&event) {
            Ok(request) => self.resolve(&request).await.map(|r| (request, r)),
            Err(error) => Err(error),
        };
        let dead_letter = resolved
            .as_ref()
            .ok()
            .and_then(|(_, r)| r.function.settings.dead_letter_target.clone());
        let policy = Policy::from_config(config, dead_letter);
        let now = chrono::Utc::now();
        let outcome = if dispatch::expired(&event, &policy, now) {
            None
        } else {
            Some(match resolved {
                Ok((request, resolved)) => {
                    let patience = path.settings.throttle_patience;
                    self.run(resolved, request, patience).await
                }
                Err(error) => Err(error),
            })
        };
        let now = chrono::Utc::now();
        let settle = dispatch::settle(&event, &policy, &path.settings, outcome.as_ref(), now);
        let result = match settle {
            Settle::Retry { attempts, at } => path.queue.reschedule(&event.id, attempts, at).await,
            Settle::DeadLetter(target) => {
                let message =
                    dispatch::dead_letter_message(&event, &target, &policy, outcome.as_ref(), now);
                match path.queue.hold(&message).await {
                    Ok(()) => path.queue.complete(&event.id).await,
                    // Not lost: the event stays leased and runs again after a restart.
                    Err(error) => Err(error),
                }
            }
            Settle::Done(destination) => {
                if let Some((arn, condition)) = destination {
                    let count = event.attempts + u32::from(outcome.is_some());
                    let record = dispatch::invocation_record(
                        &event,
                        &self.account,
                        condition,
                        outcome.as_ref(),
                        count,
                        now,
                    );
                    self.deliver(&arn, record, &event.id).await;
                }
                path.queue.complete(&event.id).await
            }
        };
        if let Err(error) = result {
            tracing::error!(%error, request_id = %event.id, "could not settle an async event");
        }
    }

    /// Queue an invocation record for a destination function, or hold it for a destination
    /// queue or topic.
    async fn deliver(&self, arn: &str, record: Bytes, source_id: &str) {
        let Some(path) = self.async_path.as_ref() else {
            return;
        };
        if nimbus_core::arn::is_queue_or_topic(arn) {
            let message = OutboxMessage {
                id: uuid::Uuid::new_v4().to_string(),
                target_arn: arn.to_owned(),
                body: record,
                attributes: Default::default(),
                sent_at: chrono::Utc::now(),
            };
            if let Err(error) = path.queue.hold(&message).await {
                tracing::error!(%error, destination = arn, request_id = source_id, "could not hold the record for its destination");
            }
            return;
        }
        let Some((function, qualifier)) = dispatch::destination_function(arn) else {
            tracing::warn!(
                destination = arn,
                request_id = source_id,
                "destination is not a function; record dropped"
            );
            return;
        };
        let request = InvocationRequest {
            function: FunctionRef::from_name(function.clone()),
            payload: record,
            invocation_type: InvocationType::Event,
            log_tail: false,
            client_context: None,
            request_id: uuid::Uuid::new_v4().to_string(),
        };
        if let Err(error) = path.accept(&function, qualifier, &request).await {
            tracing::error!(%error, destination = arn, request_id = source_id, "could not deliver to the destination");
        }
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

    /// The function version an invocation runs: `$LATEST`, a published version, or the
    /// version an alias routes this invocation to (weighted, when it splits traffic).
    async fn resolve(&self, request: &InvocationRequest) -> Result<Resolved, ServiceError> {
        let r = &request.function;
        let not_found = || ServiceError::function_not_found(&r.arn(&self.account));
        if !r.belongs_to(&self.account) {
            return Err(not_found());
        }
        let version = match &r.qualifier {
            None | Some(Qualifier::Latest) => FunctionVersion::Latest,
            Some(Qualifier::Version(n)) => FunctionVersion::Published(*n),
            Some(Qualifier::Alias(alias)) => {
                let alias = self
                    .meta
                    .get_alias(&r.name, alias)
                    .await
                    .map_err(internal)?
                    .ok_or_else(not_found)?;
                route_alias(&alias, random_unit())?
            }
        };
        let function = match version {
            FunctionVersion::Latest => self.meta.get_function(&r.name).await,
            FunctionVersion::Published(n) => self.meta.get_function_version(&r.name, n).await,
        }
        .map_err(internal)?
        .ok_or_else(not_found)?;
        let reserved = self
            .meta
            .get_function_concurrency(&r.name)
            .await
            .map_err(internal)?;
        let limit = match reserved {
            Some(n) => Limit::Reserved(n),
            None => Limit::Unreserved {
                total_reserved: self
                    .meta
                    .total_reserved_concurrency()
                    .await
                    .map_err(internal)?,
            },
        };
        Ok(Resolved {
            function,
            version: version.to_string(),
            limit,
        })
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
        let opt_dir = self
            .code
            .layers_directory(&function.settings.layers)
            .await?;
        let spec = environment_spec(function, &key.version, &self.account, code_dir, opt_dir);
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
        let resolved = self.resolve(&request).await?;
        match request.invocation_type {
            InvocationType::DryRun => {
                return Ok(InvocationResult {
                    payload: Bytes::new(),
                    function_error: None,
                    executed_version: resolved.version,
                    log_result: None,
                    content_type: None,
                })
            }
            InvocationType::Event => {
                let Some(path) = self.async_path.as_ref() else {
                    return Err(ServiceError::InvalidParameterValue(
                        "Asynchronous invocation is not enabled on this server.".to_owned(),
                    ));
                };
                let qualifier = request.function.qualifier.as_ref().map(|q| q.to_string());
                path.accept(&resolved.function.name, qualifier, &request)
                    .await?;
                return Ok(InvocationResult {
                    payload: Bytes::new(),
                    function_error: None,
                    executed_version: resolved.version,
                    log_result: None,
                    content_type: None,
                });
            }
            InvocationType::RequestResponse => {}
        }
        self.run(resolved, request, Duration::ZERO).await
    }

    async fn invoke_stream(
        &self,
        request: InvocationRequest,
    ) -> Result<InvocationResponse, ServiceError> {
        if request.invocation_type != InvocationType::RequestResponse {
            return self.invoke(request).await.map(InvocationResponse::Buffered);
        }
        let resolved = self.resolve(&request).await?;
        self.run_streaming(resolved, request).await
    }
}

impl Scheduler {
    /// Admit, take or start an environment, run, and return the environment to the pool.
    /// `patience`: how long to wait for a concurrency slot before the throttle error (zero for
    /// synchronous callers, who get 429 at once as on Lambda).
    async fn run(
        &self,
        resolved: Resolved,
        request: InvocationRequest,
        patience: Duration,
    ) -> Result<InvocationResult, ServiceError> {
        let lease = self.lease(resolved, patience).await?;
        let log_tail = request.log_tail;
        let invocation = self.invocation(request);
        let report = lease.env.invoke(invocation).await;
        let version = lease.release(&self.pool, report.reusable);
        Ok(result_of(report, log_tail, version))
    }

    /// Admission and an environment for one invocation of `resolved`.
    async fn lease(&self, resolved: Resolved, patience: Duration) -> Result<Lease, ServiceError> {
        let Resolved {
            function,
            version,
            limit,
        } = resolved;
        let key = PoolKey {
            function: function.name.as_str().to_owned(),
            version,
        };
        let permit = if patience.is_zero() {
            self.admission.admit(&key.function, limit)?
        } else {
            self.admission
                .admit_waiting(&key.function, limit, patience)
                .await?
        };
        let env = self.environment(&function, &key).await?;
        Ok(Lease {
            _permit: permit,
            env,
            key,
            revision: function.revision_id,
        })
    }

    /// What the environment is handed for `request`.
    fn invocation(&self, request: InvocationRequest) -> Invocation {
        Invocation {
            invoked_function_arn: request.function.arn(&self.account),
            request_id: request.request_id,
            payload: request.payload,
            trace_id: trace_id(),
            client_context: request.client_context,
        }
    }

    /// The streaming path: the invocation runs in its own task, so the caller gets the stream
    /// as soon as the runtime starts it while the task waits for the end, reports it, and only
    /// then gives the environment back (a caller that goes away does not cut the run short).
    async fn run_streaming(
        &self,
        resolved: Resolved,
        request: InvocationRequest,
    ) -> Result<InvocationResponse, ServiceError> {
        let lease = self.lease(resolved, Duration::ZERO).await?;
        let version = lease.key.version.clone();
        let log_tail = request.log_tail;
        let invocation = self.invocation(request);
        let (sink, receiver) = stream::response_channel();
        let pool = Arc::clone(&self.pool);
        tokio::spawn(async move {
            let report = lease.env.invoke_streaming(invocation, sink.clone()).await;
            let error = stream_error(&report.outcome);
            let version = lease.release(&pool, report.reusable);
            let result = result_of(report, log_tail, version);
            if sink.started() {
                let log_result = result.log_result;
                sink.end(StreamEnd { error, log_result }).await;
            } else {
                sink.whole(result).await;
            }
        });
        receiver.begin(version).await.ok_or_else(|| {
            ServiceError::Service("The invocation ended without a result.".to_owned())
        })
    }
}

/// One admitted invocation's environment, from admission until it is given back.
struct Lease {
    /// Counts against the concurrency limits until dropped.
    _permit: Permit,
    env: Env,
    key: PoolKey,
    /// The function revision the environment runs.
    revision: String,
}

impl Lease {
    /// Give the environment back to `pool` (or stop it, when it cannot be reused) and end the
    /// admission; returns the version that ran.
    fn release(self, pool: &Pool, reusable: bool) -> String {
        let Lease {
            _permit,
            env,
            key,
            revision,
        } = self;
        if reusable {
            if let Some(outdated) = pool.put_back(&key, &revision, env) {
                tokio::spawn(async move { outdated.shutdown().await });
            }
        } else {
            tokio::spawn(async move { env.shutdown().await });
        }
        key.version
    }
}

/// What an invocation resolved to.
struct Resolved {
    /// The function's settings and code at that version.
    function: Function,
    /// `$LATEST` or the version number: what `X-Amz-Executed-Version` reports.
    version: String,
    /// The concurrency limit its invocations count against.
    limit: Limit,
}

/// Store failures on the invoke path are internal: log the cause, tell the caller little.
fn internal(err: nimbus_core::StoreError) -> ServiceError {
    tracing::error!(error = %err, "store read on the invoke path failed");
    ServiceError::Service("An internal error occurred.".to_owned())
}

/// The version an alias sends one invocation to, given a uniform draw `draw` in [0, 1): the
/// additional version with its weight's probability, else the primary one.
fn route_alias(alias: &Alias, draw: f64) -> Result<FunctionVersion, ServiceError> {
    let mut threshold = 0.0;
    for (version, weight) in &alias.routing {
        threshold += weight;
        if draw < threshold {
            return nimbus_core::alias::validate_version(version, "AdditionalVersionWeights");
        }
    }
    nimbus_core::alias::validate_version(&alias.function_version, "FunctionVersion")
}

/// A uniform draw in [0, 1) from the system's randomness.
fn random_unit() -> f64 {
    // 53 random bits: exactly representable, evenly spaced.
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

/// The caller's view of an environment's report.
fn result_of(
    report: InvocationReport,
    log_tail: bool,
    executed_version: String,
) -> InvocationResult {
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
        // The body went to the caller as it was written.
        InvocationOutcome::Streamed => (Bytes::new(), None, None),
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
        executed_version,
        log_result,
        content_type,
    }
}

/// The error that ended a stream, if it did not end well.
fn stream_error(outcome: &InvocationOutcome) -> Option<StreamError> {
    match outcome {
        InvocationOutcome::Response { .. } | InvocationOutcome::Streamed => None,
        InvocationOutcome::FunctionError { body, error_type } => Some(StreamError {
            error_type: error_type.clone(),
            message: StreamError::from_error_body(body, error_type).message,
        }),
        InvocationOutcome::PlatformError {
            error_type,
            message,
        } => Some(StreamError {
            error_type: error_type.clone(),
            message: message.clone(),
        }),
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
            "$LATEST".to_owned(),
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
            "$LATEST".to_owned(),
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
    fn aliases_route_by_weight() {
        let alias = Alias {
            name: "live".into(),
            function: nimbus_core::FunctionName::new("f").expect("name"),
            function_version: "1".into(),
            description: String::new(),
            routing: [("2".to_owned(), 0.25)].into_iter().collect(),
            revision_id: "r".into(),
        };
        assert_eq!(route_alias(&alias, 0.0), Ok(FunctionVersion::Published(2)));
        assert_eq!(
            route_alias(&alias, 0.249),
            Ok(FunctionVersion::Published(2))
        );
        assert_eq!(route_alias(&alias, 0.25), Ok(FunctionVersion::Published(1)));
        assert_eq!(
            route_alias(&alias, 0.999),
            Ok(FunctionVersion::Published(1))
        );
        let draws: Vec<f64> = (0..1000).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        let low = draws.iter().filter(|d| **d < 0.5).count();
        assert!(
            (350..650).contains(&low),
            "uniform draws: {low} of 1000 below 0.5"
        );
    }

    #[test]
    fn trace_ids_have_the_xray_shape() {
        let t = trace_id();
        assert!(t.starts_with("Root=1-") && t.contains(";Parent=") && t.ends_with(";Sampled=0"));
    }
}
