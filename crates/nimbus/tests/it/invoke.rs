//! Invoking real functions in real runtimes through the SDK: Python, Node (CommonJS and ESM),
//! a curl shell-script bootstrap and a function built on the official `lambda_runtime` crate.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, InvocationType, LogType, Runtime};
use base64::Engine as _;

use crate::support::{error_of, zip_of, Harness, ROLE};

/// Create a function from `files` and wait for nothing: functions are Active at once.
pub(crate) async fn deploy(
    h: &Harness,
    name: &str,
    runtime: Runtime,
    handler: &str,
    files: &[(&str, &[u8], u32)],
) {
    deploy_with(h, name, runtime, handler, files, |b| b).await;
}

pub(crate) async fn deploy_with(
    h: &Harness,
    name: &str,
    runtime: Runtime,
    handler: &str,
    files: &[(&str, &[u8], u32)],
    tweak: impl FnOnce(
        aws_sdk_lambda::operation::create_function::builders::CreateFunctionFluentBuilder,
    ) -> aws_sdk_lambda::operation::create_function::builders::CreateFunctionFluentBuilder,
) {
    let builder = h
        .client()
        .create_function()
        .function_name(name)
        .runtime(runtime)
        .handler(handler)
        .role(ROLE)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(zip_of(files)))
                .build(),
        );
    tweak(builder)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e:?}"));
}

/// Invoke and return (payload, function error, decoded log tail).
pub(crate) async fn invoke(
    h: &Harness,
    name: &str,
    payload: &str,
) -> (serde_json::Value, Option<String>, String) {
    let out = h
        .client()
        .invoke()
        .function_name(name)
        .payload(Blob::new(payload.as_bytes().to_vec()))
        .log_type(LogType::Tail)
        .send()
        .await
        .unwrap_or_else(|e| panic!("invoke {name}: {e:?}"));
    let body = out
        .payload()
        .map(|b| b.as_ref().to_vec())
        .unwrap_or_default();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
    let log = out
        .log_result()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    assert_eq!(out.executed_version(), Some("$LATEST"));
    (json, out.function_error().map(str::to_owned), log)
}

const PY_HELLO: &[u8] = b"import os\ncount = 0\ndef handler(event, context):\n    global count\n    count += 1\n    print('hello from python', context.aws_request_id)\n    return {\n        'event': event,\n        'count': count,\n        'request_id': context.aws_request_id,\n        'function_name': context.function_name,\n        'memory': context.memory_limit_in_mb,\n        'remaining': context.get_remaining_time_in_millis(),\n        'arn': context.invoked_function_arn,\n        'greeting': os.environ.get('GREETING'),\n        'region': os.environ.get('AWS_REGION'),\n        'task_root': os.environ.get('LAMBDA_TASK_ROOT'),\n    }\n";

#[tokio::test]
async fn python_hello_context_env_and_warm_reuse() {
    let h = Harness::start().await;
    deploy_with(
        &h,
        "py",
        Runtime::Python312,
        "app.handler",
        &[("app.py", PY_HELLO, 0o644)],
        |b| {
            b.timeout(10)
                .environment(Environment::builder().variables("GREETING", "hi").build())
        },
    )
    .await;
    let (first, error, log) = invoke(&h, "py", r#"{"n":1}"#).await;
    assert_eq!(error, None, "{first}");
    assert_eq!(first["event"]["n"], 1);
    assert_eq!(first["function_name"], "py");
    assert_eq!(first["greeting"], "hi");
    assert_eq!(first["region"], "us-east-1");
    assert_eq!(
        first["arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:py"
    );
    let remaining = first["remaining"].as_i64().expect("remaining");
    assert!(remaining > 0 && remaining <= 10_000, "{remaining}");
    let request_id = first["request_id"].as_str().expect("request id");
    assert!(
        log.contains(&format!("START RequestId: {request_id} Version: $LATEST")),
        "{log}"
    );
    assert!(log.contains("hello from python"), "{log}");
    assert!(
        log.contains(&format!("END RequestId: {request_id}")),
        "{log}"
    );
    assert!(
        log.contains("Init Duration"),
        "a cold start reports Init Duration: {log}"
    );

    let (second, _, log) = invoke(&h, "py", r#"{"n":2}"#).await;
    assert_eq!(
        second["count"], 2,
        "module state survives in a warm environment"
    );
    assert!(
        !log.contains("Init Duration"),
        "a warm start has no Init Duration: {log}"
    );
    assert_ne!(second["request_id"], first["request_id"]);
}

#[tokio::test]
async fn node_commonjs_and_esm_handlers() {
    let h = Harness::start().await;
    deploy(
        &h,
        "cjs",
        Runtime::Nodejs20x,
        "index.handler",
        &[(
            "index.js",
            b"const net = process.moduleLoadList.includes('NativeModule net');\nexports.handler = async (event, context) => ({ cjs: true, event, id: context.awsRequestId, left: context.getRemainingTimeInMillis(), net, fdVar: process.env.NIMBUS_RUNTIME_API_FD ?? null });\n",
            0o644,
        )],
    )
    .await;
    deploy(
        &h,
        "esm",
        Runtime::Nodejs20x,
        "lib/app.handler",
        &[(
            "lib/app.mjs",
            b"const start = await Promise.resolve(42);\nexport const handler = async (event) => ({ esm: true, start, event });\n",
            0o644,
        )],
    )
    .await;
    let (cjs, error, _) = invoke(&h, "cjs", r#"{"x":1}"#).await;
    assert_eq!(error, None, "{cjs}");
    assert_eq!(cjs["cjs"], true);
    assert_eq!(cjs["event"]["x"], 1);
    assert!(cjs["left"].as_i64().is_some_and(|l| l > 0));
    // The client got its Runtime API connection ready-made (no node:net at init), and the
    // variable that said so is gone before user code runs.
    assert_eq!(cjs["net"], false, "{cjs}");
    assert_eq!(cjs["fdVar"], serde_json::Value::Null);
    let (warm, error, _) = invoke(&h, "cjs", r#"{"x":2}"#).await;
    assert_eq!(error, None, "{warm}");
    assert_eq!(warm["event"]["x"], 2);
    let (esm, error, _) = invoke(&h, "esm", r#""hi""#).await;
    assert_eq!(error, None, "{esm}");
    assert_eq!(esm["esm"], true);
    assert_eq!(esm["start"], 42);
    assert_eq!(esm["event"], "hi");
}

const CURL_BOOTSTRAP: &[u8] = b"#!/bin/sh\nset -eu\nAPI=\"http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation\"\nwhile true; do\n  HEADERS=$(mktemp)\n  EVENT=$(curl -sS -D \"$HEADERS\" \"$API/next\")\n  ID=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' \"$HEADERS\" | tr -d '\\r' | cut -d' ' -f2)\n  echo \"handling $ID\"\n  curl -sS -X POST \"$API/$ID/response\" -d \"{\\\"echo\\\":$EVENT,\\\"handler\\\":\\\"$_HANDLER\\\"}\" >/dev/null\n  rm -f \"$HEADERS\"\ndone\n";

#[tokio::test]
async fn curl_shell_script_bootstrap() {
    let h = Harness::start().await;
    deploy(
        &h,
        "sh",
        Runtime::Providedal2023,
        "my.handler",
        &[("bootstrap", CURL_BOOTSTRAP, 0o755)],
    )
    .await;
    let (out, error, log) = invoke(&h, "sh", r#"{"k":"v"}"#).await;
    assert_eq!(error, None, "{out} {log}");
    assert_eq!(out["echo"]["k"], "v");
    assert_eq!(out["handler"], "my.handler");
    assert!(log.contains("handling "), "{log}");
}

#[tokio::test]
async fn function_errors_come_back_as_lambda_does_it() {
    let h = Harness::start().await;
    deploy(
        &h,
        "boom",
        Runtime::Python312,
        "app.handler",
        &[(
            "app.py",
            b"def handler(event, context):\n    raise ValueError('bad input')\n",
            0o644,
        )],
    )
    .await;
    let (body, error, _) = invoke(&h, "boom", "{}").await;
    assert_eq!(error.as_deref(), Some("Unhandled"));
    assert_eq!(body["errorType"], "ValueError");
    assert_eq!(body["errorMessage"], "bad input");
    assert!(body["stackTrace"].is_array());

    deploy(
        &h,
        "noimport",
        Runtime::Python312,
        "missing.handler",
        &[("app.py", b"x = 1\n", 0o644)],
    )
    .await;
    let (body, error, _) = invoke(&h, "noimport", "{}").await;
    assert_eq!(error.as_deref(), Some("Unhandled"));
    assert_eq!(body["errorType"], "Runtime.ImportModuleError", "{body}");

    deploy(
        &h,
        "node-boom",
        Runtime::Nodejs20x,
        "index.handler",
        &[(
            "index.js",
            b"exports.handler = async () => { throw new TypeError('nope'); };\n",
            0o644,
        )],
    )
    .await;
    let (body, error, _) = invoke(&h, "node-boom", "{}").await;
    assert_eq!(error.as_deref(), Some("Unhandled"));
    assert_eq!(body["errorType"], "TypeError");
    assert_eq!(body["errorMessage"], "nope");
    assert!(body["trace"].is_array(), "Node reports `trace`: {body}");
}

#[tokio::test]
async fn timeouts_and_crashes_replace_the_environment() {
    let h = Harness::start().await;
    deploy_with(
        &h,
        "slow",
        Runtime::Python312,
        "app.handler",
        &[(
            "app.py",
            b"import time, os, uuid\nENVIRONMENT = str(uuid.uuid4())\ndef handler(event, context):\n    if event.get('crash'):\n        os._exit(3)\n    if event.get('sleep'):\n        time.sleep(event['sleep'])\n    return ENVIRONMENT\n",
            0o644,
        )],
        |b| b.timeout(1),
    )
    .await;
    // Each environment draws its own token at Init: equal tokens mean the same environment.
    let (first, error, _) = invoke(&h, "slow", "{}").await;
    assert_eq!(error, None);
    let (warm, _, _) = invoke(&h, "slow", "{}").await;
    assert_eq!(warm, first, "a healthy environment is reused");
    let (body, error, log) = invoke(&h, "slow", r#"{"sleep": 5}"#).await;
    assert_eq!(error.as_deref(), Some("Unhandled"));
    let message = body["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("Task timed out after 1.0"), "{body}");
    assert!(log.contains("Task timed out after"), "{log}");
    let (after_timeout, error, _) = invoke(&h, "slow", "{}").await;
    assert_eq!(error, None);
    assert_ne!(after_timeout, first, "a timed-out environment is replaced");

    let (body, error, _) = invoke(&h, "slow", r#"{"crash": true}"#).await;
    assert_eq!(error.as_deref(), Some("Unhandled"));
    assert_eq!(body["errorType"], "Runtime.ExitError", "{body}");
    let (after_crash, error, _) = invoke(&h, "slow", "{}").await;
    assert_eq!(error, None, "recovered after the crash");
    assert_ne!(
        after_crash, after_timeout,
        "a crashed environment is replaced"
    );
}

#[tokio::test]
async fn twenty_concurrent_invokes_succeed_with_distinct_request_ids() {
    let h = Harness::start().await;
    deploy(
        &h,
        "par",
        Runtime::Python312,
        "app.handler",
        &[(
            "app.py",
            b"import time\ndef handler(event, context):\n    time.sleep(0.05)\n    return context.aws_request_id\n",
            0o644,
        )],
    )
    .await;
    let h = std::sync::Arc::new(h);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let h = std::sync::Arc::clone(&h);
            tokio::spawn(async move { invoke(&h, "par", "{}").await })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (id, error, _) = t.await.expect("join");
        assert_eq!(error, None, "{id}");
        ids.insert(id.as_str().expect("id").to_owned());
    }
    assert_eq!(ids.len(), 20);
}

#[tokio::test]
async fn payload_limits_and_invocation_types() {
    let h = Harness::start().await;
    deploy(
        &h,
        "big",
        Runtime::Python312,
        "app.handler",
        &[(
            "app.py",
            b"def handler(event, context):\n    return 'x' * event['n']\n",
            0o644,
        )],
    )
    .await;
    // A request over 6 MB is refused before it reaches the function.
    let huge = format!("{{\"n\":1,\"pad\":\"{}\"}}", "y".repeat(6 * 1024 * 1024));
    let err = h
        .client()
        .invoke()
        .function_name("big")
        .payload(Blob::new(huge.into_bytes()))
        .send()
        .await
        .expect_err("too large");
    assert_eq!(
        error_of(&err),
        ("RequestEntityTooLargeException".into(), 413)
    );
    // A response over 6 MB is a function error.
    let (body, error, _) = invoke(&h, "big", r#"{"n": 7000000}"#).await;
    assert_eq!(error.as_deref(), Some("Unhandled"));
    assert_eq!(body["errorType"], "Function.ResponseSizeTooLarge", "{body}");
    // Just under the limit passes.
    let (body, error, _) = invoke(&h, "big", r#"{"n": 6000000}"#).await;
    assert_eq!(
        error,
        None,
        "{}",
        body.to_string().chars().take(300).collect::<String>()
    );
    assert_eq!(body.as_str().map(str::len), Some(6_000_000));

    let dry = h
        .client()
        .invoke()
        .function_name("big")
        .invocation_type(InvocationType::DryRun)
        .send()
        .await
        .expect("dry run");
    assert_eq!(dry.status_code(), 204);
    let err = h
        .client()
        .invoke()
        .function_name("nope")
        .send()
        .await
        .expect_err("unknown");
    assert_eq!(error_of(&err), ("ResourceNotFoundException".into(), 404));
}

#[tokio::test]
async fn client_context_reaches_the_handler() {
    let h = Harness::start().await;
    deploy(
        &h,
        "ctx",
        Runtime::Nodejs20x,
        "index.handler",
        &[(
            "index.js",
            b"exports.handler = async (event, context) => ({ custom: context.clientContext && context.clientContext.custom });\n",
            0o644,
        )],
    )
    .await;
    let context = base64::engine::general_purpose::STANDARD
        .encode(r#"{"custom":{"tenant":"blue"},"client":{},"env":{}}"#);
    let out = h
        .client()
        .invoke()
        .function_name("ctx")
        .client_context(context)
        .send()
        .await
        .expect("invoke");
    let body: serde_json::Value =
        serde_json::from_slice(out.payload().map(|b| b.as_ref()).unwrap_or_default())
            .expect("json");
    assert_eq!(body["custom"]["tenant"], "blue", "{body}");
}

/// A function built on AWS's own Rust runtime client (`lambda_runtime`), deployed as a
/// `provided.al2023` bootstrap and invoked through the SDK.
#[tokio::test]
async fn official_rust_runtime_client() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "nimbus-sandbox",
            "--example",
            "echo_runtime",
        ])
        .status()
        .expect("run cargo");
    assert!(status.success(), "build the lambda_runtime example");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let binary = std::fs::read(target.join("debug/examples/echo_runtime")).expect("binary");
    let h = Harness::start().await;
    deploy(
        &h,
        "rusty",
        Runtime::Providedal2023,
        "bootstrap",
        &[("bootstrap", &binary, 0o755)],
    )
    .await;
    let (out, error, log) = invoke(&h, "rusty", r#"{"hello":"rust"}"#).await;
    assert_eq!(error, None, "{out} {log}");
    assert!(out.to_string().contains("rust"), "{out}");
}

#[tokio::test]
async fn a_runtime_without_its_interpreter_is_refused_at_create() {
    let root = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let config =
        nimbus::server::ServerConfig::new(root.path().join("data"), "us-east-1", "000000000000")
            .expect("config")
            .with_interpreters(&["python3.13=/nonexistent/python3.13".to_owned()])
            .expect("interpreters");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(nimbus::server::serve(listener, config, async {
        let _ = stopped.await;
    }));
    let client = crate::support::sdk_client(&endpoint, "us-east-1");
    let mut err = None;
    for _ in 0..100 {
        match client
            .create_function()
            .function_name("py313")
            .runtime(Runtime::Python313)
            .handler("app.handler")
            .role(ROLE)
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(zip_of(&[("app.py", b"", 0o644)])))
                    .build(),
            )
            .send()
            .await
        {
            Err(e) if e.raw_response().is_none() => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => {
                err = other.err();
                break;
            }
        }
    }
    let err = err.expect("refused");
    let (code, status) = error_of(&err);
    assert_eq!(
        (code.as_str(), status),
        ("InvalidParameterValueException", 400)
    );
    let message = aws_sdk_lambda::error::ProvideErrorMetadata::message(&err)
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("/nonexistent/python3.13"), "{message}");
    let _ = stop.send(());
    server.await.expect("join").expect("server");
}

#[tokio::test]
async fn init_errors_have_lambda_error_types() {
    let h = Harness::start().await;
    // (function, runtime, handler, file, source, expected errorType)
    type Case = (
        &'static str,
        Runtime,
        &'static str,
        &'static str,
        &'static [u8],
        &'static str,
    );
    let cases: [Case; 5] = [
        (
            "py-syntax",
            Runtime::Python312,
            "app.handler",
            "app.py",
            b"def handler(:\n",
            "Runtime.UserCodeSyntaxError",
        ),
        (
            "py-missing-fn",
            Runtime::Python312,
            "app.nothere",
            "app.py",
            b"x = 1\n",
            "Runtime.HandlerNotFound",
        ),
        (
            "node-missing",
            Runtime::Nodejs20x,
            "gone.handler",
            "index.js",
            b"",
            "Runtime.ImportModuleError",
        ),
        (
            "node-syntax",
            Runtime::Nodejs20x,
            "index.handler",
            "index.js",
            b"exports.handler = (;\n",
            "Runtime.UserCodeSyntaxError",
        ),
        (
            "node-not-fn",
            Runtime::Nodejs20x,
            "index.handler",
            "index.js",
            b"exports.handler = 42;\n",
            "Runtime.HandlerNotFound",
        ),
    ];
    for (name, runtime, handler, file, source, expected) in cases {
        deploy(&h, name, runtime, handler, &[(file, source, 0o644)]).await;
        let (body, error, _) = invoke(&h, name, "{}").await;
        assert_eq!(error.as_deref(), Some("Unhandled"), "{name}");
        assert_eq!(body["errorType"], expected, "{name}: {body}");
    }
    // A provided function without an executable bootstrap.
    deploy(
        &h,
        "no-bootstrap",
        Runtime::Providedal2023,
        "x",
        &[("readme.txt", b"hi", 0o644)],
    )
    .await;
    let (body, error, _) = invoke(&h, "no-bootstrap", "{}").await;
    assert_eq!(error.as_deref(), Some("Unhandled"));
    assert_eq!(body["errorType"], "Runtime.InvalidEntrypoint", "{body}");
}
