//! The scheduler against a scripted sandbox and in-memory stores: pooling, reuse, replacement.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use nimbus_core::fake::{MemoryBlobStore, MemoryMetadataStore};
use nimbus_core::invoke::{InvocationRequest, InvocationType, Invoke};
use nimbus_core::queue::memory::MemoryEventQueue;
use nimbus_core::queue::{EventInvokeConfig, EventQueue, QueuedEvent};
use nimbus_core::sandbox::{
    Environment, EnvironmentSpec, Invocation, InvocationOutcome, InvocationReport, LogSink,
    Sandbox, SandboxError,
};
use nimbus_core::{AccountContext, BlobStore, FunctionName, FunctionRef, MetadataStore};
use nimbus_core::{ServiceError, ThrottleReason};
use nimbus_scheduler::{AsyncSettings, Limits, Scheduler, SchedulerConfig};

/// An environment that echoes the event; when the event says "crash", it dies, and when it
/// is `{"sleep": ms}` it holds the invocation that long.
struct EchoEnvironment {
    id: String,
    spec: EnvironmentSpec,
    shut_down: Arc<AtomicUsize>,
    gauge: Arc<Gauge>,
    frozen: AtomicBool,
}

/// Invocations in flight across all environments, and the most seen at once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
    freezes: AtomicUsize,
    thaws: AtomicUsize,
}

#[async_trait]
impl Environment for EchoEnvironment {
    fn id(&self) -> &str {
        &self.id
    }

    async fn invoke(&self, invocation: Invocation) -> InvocationReport {
        if self.frozen.swap(false, Ordering::SeqCst) {
            self.gauge.thaws.fetch_add(1, Ordering::SeqCst);
        }
        let running = self.gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.gauge.peak.fetch_max(running, Ordering::SeqCst);
        let event: serde_json::Value =
            serde_json::from_slice(&invocation.payload).unwrap_or_default();
        if let Some(ms) = event.get("sleep").and_then(serde_json::Value::as_u64) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        self.gauge.now.fetch_sub(1, Ordering::SeqCst);
        let crash = invocation.payload.as_ref() == b"\"crash\"";
        let outcome = if crash {
            InvocationOutcome::PlatformError {
                error_type: "Runtime.ExitError".into(),
                message: "Runtime exited with error: exit status 1".into(),
            }
        } else {
            let body = format!(
                "{{\"env\":\"{}\",\"event\":{},\"memory\":\"{}\"}}",
                self.id,
                String::from_utf8_lossy(&invocation.payload),
                self.spec.variables["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"],
            );
            InvocationOutcome::Response {
                body: Bytes::from(body),
                content_type: None,
            }
        };
        InvocationReport {
            outcome,
            duration: Duration::from_millis(1),
            init_duration: None,
            max_memory_used_mb: 1,
            log: format!("START RequestId: {}", invocation.request_id),
            reusable: !crash,
        }
    }

    async fn shutdown(&self) {
        self.shut_down.fetch_add(1, Ordering::SeqCst);
    }

    async fn freeze(&self) -> bool {
        self.gauge.freezes.fetch_add(1, Ordering::SeqCst);
        self.frozen.store(true, Ordering::SeqCst);
        true
    }
}

#[derive(Default)]
struct ScriptedSandbox {
    created: AtomicUsize,
    shut_down: Arc<AtomicUsize>,
    gauge: Arc<Gauge>,
    specs: Mutex<Vec<EnvironmentSpec>>,
}

#[async_trait]
impl Sandbox for ScriptedSandbox {
    async fn create(
        &self,
        spec: EnvironmentSpec,
        _logs: Arc<dyn LogSink>,
    ) -> Result<Arc<dyn Environment>, SandboxError> {
        let n = self.created.fetch_add(1, Ordering::SeqCst);
        self.specs.lock().expect("lock").push(spec.clone());
        Ok(Arc::new(EchoEnvironment {
            id: format!("env-{n}"),
            spec,
            shut_down: Arc::clone(&self.shut_down),
            gauge: Arc::clone(&self.gauge),
            frozen: AtomicBool::new(false),
        }))
    }
}

struct NoLogs;
impl LogSink for NoLogs {
    fn write(&self, _: &str, _: &str, _: SystemTime, _: &str) {}
}

struct Setup {
    scheduler: Arc<Scheduler>,
    sandbox: Arc<ScriptedSandbox>,
    meta: Arc<MemoryMetadataStore>,
    _dir: tempfile::TempDir,
}

fn zip() -> Vec<u8> {
    use std::io::Write as _;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file(
        "bootstrap",
        zip::write::SimpleFileOptions::default().unix_permissions(0o755),
    )
    .expect("entry");
    w.write_all(b"#!/bin/sh\n").expect("write");
    w.finish().expect("finish").into_inner()
}

async fn setup() -> Setup {
    setup_with(Limits::default()).await
}

async fn setup_with(limits: Limits) -> Setup {
    setup_full(limits, None).await
}

async fn setup_full(
    limits: Limits,
    queue: Option<(Arc<MemoryEventQueue>, AsyncSettings)>,
) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = Arc::new(MemoryMetadataStore::default());
    let blobs = Arc::new(MemoryBlobStore::default());
    let sandbox = Arc::new(ScriptedSandbox::default());
    let id = blobs.put(Bytes::from(zip())).await.expect("put");
    let function = nimbus_core::fake::function("echo", id.as_hex());
    meta.create_function(&function, &Default::default())
        .await
        .expect("create");
    let scheduler = Scheduler::new(
        SchedulerConfig {
            code_root: dir.path().join("code"),
            account: AccountContext::default(),
            limits,
        },
        meta.clone(),
        blobs,
        sandbox.clone(),
        Arc::new(NoLogs),
    )
    .expect("scheduler");
    let scheduler = match queue {
        Some((queue, settings)) => scheduler.with_event_queue(queue, settings),
        None => scheduler,
    };
    let scheduler = Arc::new(scheduler);
    Setup {
        scheduler,
        sandbox,
        meta,
        _dir: dir,
    }
}

fn request(name: &str, payload: &str) -> InvocationRequest {
    InvocationRequest {
        function: FunctionRef::parse(name).expect("ref"),
        payload: Bytes::from(payload.to_owned()),
        invocation_type: InvocationType::RequestResponse,
        log_tail: true,
        client_context: None,
        request_id: uuid::Uuid::new_v4().to_string(),
    }
}

fn env_of(result: &nimbus_core::invoke::InvocationResult) -> String {
    let v: serde_json::Value = serde_json::from_slice(&result.payload).expect("json");
    v["env"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn warm_environments_are_reused_and_crashed_ones_replaced() {
    let s = setup().await;
    let first = s
        .scheduler
        .invoke(request("echo", "1"))
        .await
        .expect("invoke");
    let second = s
        .scheduler
        .invoke(request("echo", "2"))
        .await
        .expect("invoke");
    assert_eq!(
        env_of(&first),
        env_of(&second),
        "the warm environment is reused"
    );
    assert!(first.log_result.is_some());

    let crashed = s
        .scheduler
        .invoke(request("echo", "\"crash\""))
        .await
        .expect("invoke");
    assert_eq!(crashed.function_error.as_deref(), Some("Unhandled"));
    let after = s
        .scheduler
        .invoke(request("echo", "3"))
        .await
        .expect("invoke");
    assert_ne!(
        env_of(&after),
        env_of(&first),
        "a crashed environment is not reused"
    );
    assert_eq!(s.sandbox.created.load(Ordering::SeqCst), 2);

    // The code was unpacked for the environment and the spec carries Lambda's variables.
    let spec = s.sandbox.specs.lock().expect("lock")[0].clone();
    assert!(spec.code_dir.join("bootstrap").is_file());
    assert_eq!(spec.variables["AWS_LAMBDA_FUNCTION_NAME"], "echo");
    assert_eq!(spec.variables["_HANDLER"], "bootstrap");
    assert!(spec.log_stream.contains("[$LATEST]"));
}

#[tokio::test]
async fn concurrent_invokes_get_separate_environments() {
    let s = Arc::new(setup().await);
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let s = Arc::clone(&s);
            tokio::spawn(async move { s.scheduler.invoke(request("echo", &i.to_string())).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("join").expect("invoke");
    }
    let created = s.sandbox.created.load(Ordering::SeqCst);
    assert!((1..=5).contains(&created));
}

#[tokio::test]
async fn an_update_retires_old_environments() {
    let s = setup().await;
    let before = s
        .scheduler
        .invoke(request("echo", "1"))
        .await
        .expect("invoke");
    let name = FunctionName::new("echo").expect("name");
    let mut f = s
        .meta
        .get_function(&name)
        .await
        .expect("get")
        .expect("exists");
    f.settings.memory_mb = 512;
    f.revision_id = "r2".into();
    s.meta.update_function(&f, "r1").await.expect("update");
    let after = s
        .scheduler
        .invoke(request("echo", "1"))
        .await
        .expect("invoke");
    assert_ne!(env_of(&before), env_of(&after));
    let v: serde_json::Value = serde_json::from_slice(&after.payload).expect("json");
    assert_eq!(
        v["memory"], "512",
        "the new environment has the new settings"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        s.sandbox.shut_down.load(Ordering::SeqCst),
        1,
        "the old one was shut down"
    );
}

#[tokio::test]
async fn unknown_functions_and_async_invokes_are_refused() {
    let s = setup().await;
    let err = s
        .scheduler
        .invoke(request("nope", "1"))
        .await
        .expect_err("unknown");
    assert_eq!(err.error_type(), "ResourceNotFoundException");
    let err = s
        .scheduler
        .invoke(request("echo:7", "1"))
        .await
        .expect_err("no versions yet");
    assert_eq!(err.error_type(), "ResourceNotFoundException");
    let mut event = request("echo", "1");
    event.invocation_type = InvocationType::Event;
    let err = s.scheduler.invoke(event).await.expect_err("async later");
    assert_eq!(err.error_type(), "InvalidParameterValueException");
    let mut dry = request("echo", "1");
    dry.invocation_type = InvocationType::DryRun;
    s.scheduler.invoke(dry).await.expect("dry run");
    assert_eq!(s.sandbox.created.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn retiring_a_function_stops_its_idle_environments() {
    let s = setup().await;
    s.scheduler
        .invoke(request("echo", "1"))
        .await
        .expect("invoke");
    assert_eq!(s.sandbox.shut_down.load(Ordering::SeqCst), 0);
    s.scheduler
        .retire(&FunctionName::new("echo").expect("name"))
        .await;
    assert_eq!(s.sandbox.shut_down.load(Ordering::SeqCst), 1);
    s.scheduler
        .invoke(request("echo", "2"))
        .await
        .expect("invoke");
    assert_eq!(
        s.sandbox.created.load(Ordering::SeqCst),
        2,
        "a new environment after retiring"
    );
}

#[tokio::test]
async fn the_account_limit_is_never_exceeded_and_the_excess_is_throttled() {
    let s = setup_with(Limits {
        max_concurrency: 5,
        ..Limits::default()
    })
    .await;
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let scheduler = Arc::clone(&s.scheduler);
            tokio::spawn(async move { scheduler.invoke(request("echo", r#"{"sleep":30}"#)).await })
        })
        .collect();
    let (mut ok, mut throttled) = (0, 0);
    for t in tasks {
        match t.await.expect("join") {
            Ok(_) => ok += 1,
            Err(ServiceError::TooManyRequests { reason, message }) => {
                assert_eq!(reason, ThrottleReason::ConcurrentInvocationLimitExceeded);
                assert_eq!(message, "Rate Exceeded.");
                throttled += 1;
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(ok + throttled, 40);
    assert!(ok >= 5, "at least the limit's worth ran: {ok}");
    assert!(
        throttled > 0,
        "40 at once against a limit of 5 throttles some"
    );
    assert!(s.sandbox.gauge.peak.load(Ordering::SeqCst) <= 5);
    assert!(s.sandbox.created.load(Ordering::SeqCst) <= 5);
    assert_eq!(s.scheduler.running(None), 0, "every slot was given back");
    // Once they finished, the limit admits again.
    s.scheduler
        .invoke(request("echo", "1"))
        .await
        .expect("admitted again");
}

#[tokio::test]
async fn idle_environments_are_frozen_and_thawed_on_reuse() {
    let s = setup_with(Limits {
        freeze_after: Duration::from_millis(20),
        ..Limits::default()
    })
    .await;
    let housekeeping = tokio::spawn(Arc::clone(&s.scheduler).housekeeping());
    let first = s
        .scheduler
        .invoke(request("echo", "1"))
        .await
        .expect("invoke");
    let mut frozen = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if s.scheduler.idle_environments() == (1, 1) {
            frozen = true;
            break;
        }
    }
    assert!(frozen, "the idle environment was frozen");
    assert_eq!(
        s.sandbox.gauge.freezes.load(Ordering::SeqCst),
        1,
        "frozen once, not every tick"
    );
    let second = s
        .scheduler
        .invoke(request("echo", "2"))
        .await
        .expect("invoke");
    assert_eq!(
        env_of(&first),
        env_of(&second),
        "the frozen environment is reused"
    );
    assert_eq!(s.sandbox.gauge.thaws.load(Ordering::SeqCst), 1);
    housekeeping.abort();
}

#[tokio::test]
async fn idle_environments_are_reaped_after_the_idle_timeout() {
    let s = setup_with(Limits {
        idle_timeout: Duration::from_millis(50),
        ..Limits::default()
    })
    .await;
    let housekeeping = tokio::spawn(Arc::clone(&s.scheduler).housekeeping());
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let scheduler = Arc::clone(&s.scheduler);
            tokio::spawn(async move { scheduler.invoke(request("echo", r#"{"sleep":20}"#)).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("join").expect("invoke");
    }
    let created = s.sandbox.created.load(Ordering::SeqCst);
    assert_eq!(created, 3);
    let mut reaped = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if s.sandbox.shut_down.load(Ordering::SeqCst) == created {
            reaped = true;
            break;
        }
    }
    assert!(
        reaped,
        "every idle environment was shut down: scale to zero"
    );
    assert_eq!(s.scheduler.idle_environments(), (0, 0));
    // The next invoke simply starts a new one.
    s.scheduler
        .invoke(request("echo", "1"))
        .await
        .expect("cold again");
    assert_eq!(s.sandbox.created.load(Ordering::SeqCst), created + 1);
    housekeeping.abort();
}

fn fast_async() -> AsyncSettings {
    AsyncSettings {
        retry_delays: [Duration::from_millis(20), Duration::from_millis(20)],
        throttle_backoff: (Duration::from_millis(20), Duration::from_millis(100)),
        poll: Duration::from_millis(10),
        max_in_flight: 8,
        min_in_flight: 8,
        throttle_patience: Duration::from_millis(50),
    }
}

fn async_request(name: &str, payload: &str) -> InvocationRequest {
    InvocationRequest {
        invocation_type: InvocationType::Event,
        log_tail: false,
        ..request(name, payload)
    }
}

/// Wait until `check` holds, polling.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn async_events_are_queued_then_run_and_removed() {
    let queue = Arc::new(MemoryEventQueue::default());
    let s = setup_full(Limits::default(), Some((Arc::clone(&queue), fast_async()))).await;
    let accepted = s
        .scheduler
        .invoke(async_request("echo", "1"))
        .await
        .expect("accepted");
    assert!(accepted.payload.is_empty());
    assert_eq!(queue.len().await.expect("len"), 1, "queued before it runs");
    let dispatcher = tokio::spawn(Arc::clone(&s.scheduler).dispatch());
    let gauge = Arc::clone(&s.sandbox.gauge);
    eventually("the event to run", || {
        gauge.peak.load(Ordering::SeqCst) == 1
    })
    .await;
    for _ in 0..100 {
        if queue.is_empty().await.expect("len") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        queue.is_empty().await.expect("len"),
        "completed events leave the queue"
    );
    // Unknown functions are refused at once, not queued.
    assert!(matches!(
        s.scheduler.invoke(async_request("nope", "1")).await,
        Err(ServiceError::ResourceNotFound(_))
    ));
    dispatcher.abort();
}

#[tokio::test]
async fn failing_events_are_retried_then_recorded_at_the_on_failure_destination() {
    let queue = Arc::new(MemoryEventQueue::default());
    let s = setup_full(Limits::default(), Some((Arc::clone(&queue), fast_async()))).await;
    let echo = FunctionName::new("echo").expect("name");
    // The destination is another function; its environments are scripted too.
    let mut dlq = nimbus_core::fake::function(
        "dlq",
        &s.meta
            .get_function(&echo)
            .await
            .expect("get")
            .expect("echo")
            .code
            .sha256_hex,
    );
    dlq.settings.handler = "dlq".into();
    s.meta
        .create_function(&dlq, &Default::default())
        .await
        .expect("create dlq");
    queue
        .put_invoke_config(&EventInvokeConfig {
            function: echo.clone(),
            qualifier: None,
            maximum_retry_attempts: Some(1),
            maximum_event_age_seconds: None,
            on_success: None,
            on_failure: Some("arn:aws:lambda:us-east-1:000000000000:function:dlq".into()),
            last_modified: chrono::Utc::now(),
        })
        .await
        .expect("config");
    let dispatcher = tokio::spawn(Arc::clone(&s.scheduler).dispatch());
    s.scheduler
        .invoke(async_request("echo", r#""crash""#))
        .await
        .expect("accepted");
    // Two attempts at echo (the first plus one retry), then one run of dlq with the record.
    let specs = || s.sandbox.specs.lock().expect("lock").clone();
    eventually("the record to reach the destination", || {
        specs()
            .iter()
            .any(|spec| spec.variables["AWS_LAMBDA_FUNCTION_NAME"] == "dlq")
    })
    .await;
    let echo_envs = specs()
        .iter()
        .filter(|spec| spec.variables["AWS_LAMBDA_FUNCTION_NAME"] == "echo")
        .count();
    assert_eq!(
        echo_envs, 2,
        "each crash needs a new environment: two attempts in all"
    );
    drained(&queue).await;
    dispatcher.abort();
}

/// Wait until the queue holds nothing.
async fn drained(queue: &MemoryEventQueue) {
    for _ in 0..300 {
        if queue.is_empty().await.expect("len") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the queue did not drain");
}

#[tokio::test]
async fn events_older_than_their_maximum_age_go_to_on_failure_unrun() {
    let queue = Arc::new(MemoryEventQueue::default());
    let s = setup_full(Limits::default(), Some((Arc::clone(&queue), fast_async()))).await;
    let echo = FunctionName::new("echo").expect("name");
    queue
        .put_invoke_config(&EventInvokeConfig {
            function: echo.clone(),
            qualifier: None,
            maximum_retry_attempts: None,
            maximum_event_age_seconds: Some(60),
            on_success: None,
            on_failure: Some("arn:aws:lambda:us-east-1:000000000000:function:gone".into()),
            last_modified: chrono::Utc::now(),
        })
        .await
        .expect("config");
    let old = chrono::Utc::now() - chrono::Duration::seconds(120);
    queue
        .enqueue(&QueuedEvent {
            id: "old-event".into(),
            function: echo,
            qualifier: None,
            payload: Bytes::from_static(b"{}"),
            enqueued_at: old,
            attempts: 0,
            not_before: old,
        })
        .await
        .expect("enqueue");
    let dispatcher = tokio::spawn(Arc::clone(&s.scheduler).dispatch());
    // The expired event is dropped and its record queued for `gone` (which does not exist,
    // so that record is dropped in turn): nothing ever runs.
    drained(&queue).await;
    assert_eq!(
        s.sandbox.created.load(Ordering::SeqCst),
        0,
        "an expired event never runs"
    );
    dispatcher.abort();
}

#[tokio::test]
async fn throttled_async_events_wait_for_room_instead_of_failing() {
    let queue = Arc::new(MemoryEventQueue::default());
    let s = setup_full(
        Limits {
            max_concurrency: 2,
            ..Limits::default()
        },
        Some((Arc::clone(&queue), fast_async())),
    )
    .await;
    for _ in 0..10 {
        s.scheduler
            .invoke(async_request("echo", r#"{"sleep":20}"#))
            .await
            .expect("accepted");
    }
    let dispatcher = tokio::spawn(Arc::clone(&s.scheduler).dispatch());
    drained(&queue).await;
    assert!(
        s.sandbox.gauge.peak.load(Ordering::SeqCst) <= 2,
        "never above the limit"
    );
    assert_eq!(s.scheduler.running(None), 0);
    dispatcher.abort();
}
