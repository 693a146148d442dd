//! The warm pool with real environments: idle ones are frozen (their processes get no CPU) and
//! reaped after the idle timeout; invocations beyond the concurrency limit are throttled.

use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{LogType, Runtime};
use base64::Engine as _;

use crate::invoke::deploy;
use crate::support::{error_of, Harness};

/// A handler whose module starts a thread that counts ticks every 10 ms, all the time.
const TICKER: &[u8] = b"import threading, time

ticks = 0


def _count():
    global ticks
    while True:
        ticks += 1
        time.sleep(0.01)


threading.Thread(target=_count, daemon=True).start()


def handler(event, context):
    if event.get('sleep'):
        time.sleep(event['sleep'])
    return {'ticks': ticks}
";

async fn invoke_json(h: &Harness, name: &str, payload: &str) -> (serde_json::Value, String) {
    let out = h
        .client()
        .invoke()
        .function_name(name)
        .payload(Blob::new(payload.as_bytes().to_vec()))
        .log_type(LogType::Tail)
        .send()
        .await
        .expect("invoke");
    let log = base64::engine::general_purpose::STANDARD
        .decode(out.log_result().unwrap_or_default())
        .expect("log base64");
    let body = serde_json::from_slice(out.payload().map(Blob::as_ref).unwrap_or(b"null"))
        .expect("json payload");
    (body, String::from_utf8_lossy(&log).into_owned())
}

#[tokio::test]
async fn an_idle_environment_is_frozen_and_its_threads_get_no_cpu() {
    let h = Harness::start().await;
    deploy(
        &h,
        "ticker",
        Runtime::Python312,
        "app.handler",
        &[("app.py", TICKER, 0o644)],
    )
    .await;
    let (first, _) = invoke_json(&h, "ticker", "{}").await;
    // Idle for a second: unfrozen, the thread would tick ~100 times.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (second, log) = invoke_json(&h, "ticker", "{}").await;
    assert!(
        !log.contains("Init Duration"),
        "the same, warm environment: {log}"
    );
    let idle_ticks = second["ticks"].as_i64().unwrap_or(0) - first["ticks"].as_i64().unwrap_or(0);
    // Only the freeze grace period (100 ms) and scheduling slack may tick.
    assert!(
        (0..40).contains(&idle_ticks),
        "a frozen environment does not run: {idle_ticks} ticks while idle"
    );
    // While an invocation runs, the environment is thawed and its threads run again.
    let (third, _) = invoke_json(&h, "ticker", r#"{"sleep": 0.5}"#).await;
    let busy_ticks = third["ticks"].as_i64().unwrap_or(0) - second["ticks"].as_i64().unwrap_or(0);
    assert!(
        busy_ticks >= 20,
        "thawed for the invocation: {busy_ticks} ticks in 0.5 s"
    );
}

#[tokio::test]
async fn idle_environments_are_reaped_after_the_idle_timeout() {
    let h = Harness::start_configured(|config| {
        config.limits.idle_timeout = Duration::from_millis(300);
    })
    .await;
    deploy(
        &h,
        "ticker",
        Runtime::Python312,
        "app.handler",
        &[("app.py", TICKER, 0o644)],
    )
    .await;
    let (_, cold) = invoke_json(&h, "ticker", "{}").await;
    assert!(cold.contains("Init Duration"), "{cold}");
    let (_, warm) = invoke_json(&h, "ticker", "{}").await;
    assert!(!warm.contains("Init Duration"), "reused while warm: {warm}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, again) = invoke_json(&h, "ticker", "{}").await;
    assert!(
        again.contains("Init Duration"),
        "reaped after the idle timeout, so this is a cold start: {again}"
    );
}

#[tokio::test]
async fn invocations_over_the_account_limit_get_429_with_the_reason() {
    let h = Harness::start_configured(|config| {
        config.limits.max_concurrency = 2;
    })
    .await;
    deploy(
        &h,
        "slow",
        Runtime::Python312,
        "app.handler",
        &[("app.py", TICKER, 0o644)],
    )
    .await;
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let client = h.client();
            tokio::spawn(async move {
                client
                    .invoke()
                    .function_name("slow")
                    .payload(Blob::new(br#"{"sleep": 1}"#.to_vec()))
                    .send()
                    .await
            })
        })
        .collect();
    let (mut ok, mut throttled) = (0, 0);
    for call in calls {
        match call.await.expect("join") {
            Ok(_) => ok += 1,
            Err(err) => {
                assert_eq!(error_of(&err), ("TooManyRequestsException".to_owned(), 429));
                let service = err.into_service_error();
                let reason = match &service {
                    aws_sdk_lambda::operation::invoke::InvokeError::TooManyRequestsException(e) => {
                        e.reason().map(|r| r.as_str().to_owned())
                    }
                    other => panic!("unexpected error {other:?}"),
                };
                assert_eq!(reason.as_deref(), Some("ConcurrentInvocationLimitExceeded"));
                throttled += 1;
            }
        }
    }
    assert_eq!(ok, 2, "exactly the limit ran");
    assert_eq!(throttled, 4);
}
