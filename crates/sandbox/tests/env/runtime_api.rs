//! The Runtime API's endpoints and state machine, driven over raw HTTP.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use nimbus_core::sandbox::InvocationOutcome;
use nimbus_core::stream::{response_channel, BodyPart, InvocationResponse};
use nimbus_sandbox::runtime_api::{InitOutcome, InvocationEvent, RuntimeApi, RuntimeApiHandle};
use tokio::io::AsyncWriteExt as _;

use crate::support::{raw, read_response, request, RawResponse};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const INIT_ERROR: &str = "/2018-06-01/runtime/init/error";

fn start() -> (RuntimeApiHandle, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (handle, _task) = RuntimeApi::start(listener).expect("start");
    let addr = handle.local_addr();
    (handle, addr)
}

fn event(id: &str, payload: &'static str) -> InvocationEvent {
    InvocationEvent {
        request_id: id.to_owned(),
        payload: Bytes::from_static(payload.as_bytes()),
        deadline: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        invoked_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".to_owned(),
        trace_id: String::new(),
        client_context: Some(r#"{"custom":{"k":"v"}}"#.to_owned()),
        cognito_identity: None,
    }
}

fn response_path(id: &str) -> String {
    format!("/2018-06-01/runtime/invocation/{id}/response")
}

fn error_path(id: &str) -> String {
    format!("/2018-06-01/runtime/invocation/{id}/error")
}

async fn next(addr: SocketAddr) -> RawResponse {
    request(addr, "GET", NEXT, &[], b"").await
}

#[tokio::test]
async fn next_delivers_the_event_bytes_and_non_empty_headers() {
    let (api, addr) = start();
    let poll = tokio::spawn(next(addr));
    let init = tokio::time::timeout(Duration::from_secs(5), api.init_done()).await;
    assert!(matches!(init, Ok(InitOutcome::Ready { .. })), "{init:?}");
    let answer = api.dispatch(&event("id-1", "{\"a\": 1}"));
    let got = poll.await.expect("poll");
    assert_eq!(got.status, 200);
    assert_eq!(got.body, b"{\"a\": 1}");
    assert_eq!(got.header("lambda-runtime-aws-request-id"), Some("id-1"));
    assert_eq!(
        got.header("lambda-runtime-deadline-ms"),
        Some("1700000000123")
    );
    assert_eq!(
        got.header("lambda-runtime-invoked-function-arn"),
        Some("arn:aws:lambda:us-east-1:123456789012:function:f")
    );
    assert_eq!(
        got.header("lambda-runtime-client-context"),
        Some(r#"{"custom":{"k":"v"}}"#)
    );
    assert_eq!(
        got.header("lambda-runtime-trace-id"),
        None,
        "empty headers are omitted"
    );
    assert_eq!(got.header("lambda-runtime-cognito-identity"), None);
    assert_eq!(got.header("content-type"), Some("application/json"));

    let posted = request(
        addr,
        "POST",
        &response_path("id-1"),
        &[("Content-Type", "text/plain")],
        b"done",
    )
    .await;
    assert_eq!(
        (posted.status, posted.body.as_slice()),
        (202, &br#"{"status":"OK"}"#[..])
    );
    assert_eq!(
        answer.await,
        Ok(InvocationOutcome::Response {
            body: Bytes::from_static(b"done"),
            content_type: Some("text/plain".to_owned()),
        })
    );
}

#[tokio::test]
async fn stale_ids_get_400_and_double_posts_403_with_the_first_result_kept() {
    let (api, addr) = start();
    let answer = api.dispatch(&event("id-1", "{}"));
    assert_eq!(next(addr).await.status, 200);
    let stale = request(addr, "POST", &response_path("other"), &[], b"x").await;
    assert_eq!(
        (stale.status, stale.error_type()),
        (400, "InvalidRequestID".to_owned())
    );
    assert_eq!(
        request(addr, "POST", &response_path("id-1"), &[], b"first")
            .await
            .status,
        202
    );
    for path in [response_path("id-1"), error_path("id-1")] {
        let again = request(addr, "POST", &path, &[], b"second").await;
        assert_eq!(
            (again.status, again.error_type()),
            (403, "InvalidStateTransition".to_owned())
        );
    }
    let Ok(InvocationOutcome::Response { body, .. }) = answer.await else {
        panic!("expected the first response");
    };
    assert_eq!(body, Bytes::from_static(b"first"));
    // The next invocation makes the old id stale.
    let _next_answer = api.dispatch(&event("id-2", "{}"));
    let stale = request(addr, "POST", &response_path("id-1"), &[], b"late").await;
    assert_eq!(stale.status, 400);
}

#[tokio::test]
async fn next_while_unanswered_redelivers_the_event() {
    let (api, addr) = start();
    let _answer = api.dispatch(&event("id-1", "{\"n\":1}"));
    let first = next(addr).await;
    let second = next(addr).await;
    assert_eq!(first.header("lambda-runtime-aws-request-id"), Some("id-1"));
    assert_eq!(second.header("lambda-runtime-aws-request-id"), Some("id-1"));
    assert_eq!(second.body, b"{\"n\":1}");
}

#[tokio::test]
async fn next_after_the_response_waits_for_the_next_event() {
    let (api, addr) = start();
    let answer = api.dispatch(&event("id-1", "{}"));
    next(addr).await;
    request(addr, "POST", &response_path("id-1"), &[], b"ok").await;
    answer.await.expect("answered");
    let poll = tokio::spawn(next(addr));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !poll.is_finished(),
        "/next must block until an event is dispatched"
    );
    let _answer = api.dispatch(&event("id-2", "{}"));
    let got = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("woken");
    assert_eq!(
        got.expect("poll").header("lambda-runtime-aws-request-id"),
        Some("id-2")
    );
}

#[tokio::test]
async fn init_error_is_reported_once_and_refused_after_init() {
    let (api, addr) = start();
    let body = br#"{"errorMessage":"boom","errorType":"Runtime.ImportModuleError"}"#;
    let posted = request(
        addr,
        "POST",
        INIT_ERROR,
        &[(
            "Lambda-Runtime-Function-Error-Type",
            "Runtime.ImportModuleError",
        )],
        body,
    )
    .await;
    assert_eq!(posted.status, 202);
    assert_eq!(
        api.init_done().await,
        InitOutcome::Failed {
            body: Bytes::from_static(body),
            error_type: "Runtime.ImportModuleError".to_owned(),
        }
    );
    assert_eq!(
        request(addr, "POST", INIT_ERROR, &[], b"{}").await.status,
        403
    );
    assert_eq!(
        next(addr).await.status,
        403,
        "a failed init cannot ask for events"
    );

    let (api, addr) = start();
    let _answer = api.dispatch(&event("id-1", "{}"));
    next(addr).await;
    let late = request(addr, "POST", INIT_ERROR, &[], b"{}").await;
    assert_eq!(
        (late.status, late.error_type()),
        (403, "InvalidStateTransition".to_owned())
    );
}

#[tokio::test]
async fn error_posts_pass_the_body_through() {
    let (api, addr) = start();
    let answer = api.dispatch(&event("id-1", "{}"));
    next(addr).await;
    let body = br#"{"errorType":"ValueError","errorMessage":"bad","stackTrace":[]}"#;
    assert_eq!(
        request(addr, "POST", &error_path("id-1"), &[], body)
            .await
            .status,
        202
    );
    assert_eq!(
        answer.await,
        Ok(InvocationOutcome::FunctionError {
            body: Bytes::from_static(body),
            error_type: "ValueError".to_owned(),
        })
    );
}

#[tokio::test]
async fn oversized_responses_get_413_and_the_caller_a_size_error() {
    let (api, addr) = start();
    let answer = api.dispatch(&event("id-1", "{}"));
    next(addr).await;
    // Only the head is sent: the announced length alone is refused.
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 7000000\r\n\r\n",
        response_path("id-1")
    );
    let refused = raw(addr, head.as_bytes(), b"").await;
    assert_eq!(
        (refused.status, refused.error_type()),
        (413, "RequestEntityTooLarge".to_owned())
    );
    assert_eq!(
        answer.await,
        Ok(InvocationOutcome::PlatformError {
            error_type: "Function.ResponseSizeTooLarge".to_owned(),
            message: "Response payload size (7000000 bytes) exceeded maximum allowed payload \
                      size (6291556 bytes)."
                .to_owned(),
        })
    );
}

#[tokio::test]
async fn chunked_bodies_over_the_limit_are_cut_off() {
    let (api, addr) = start();
    let answer = api.dispatch(&event("id-1", "{}"));
    next(addr).await;
    let chunk = vec![b'a'; 1024 * 1024];
    let mut body = Vec::new();
    for _ in 0..7 {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(&chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        response_path("id-1")
    );
    // The server may answer before the whole body is written; write it from a task.
    let refused = raw(addr, head.as_bytes(), &body).await;
    assert_eq!(refused.status, 413);
    let Ok(InvocationOutcome::PlatformError { error_type, .. }) = answer.await else {
        panic!("expected a platform error");
    };
    assert_eq!(error_type, "Function.ResponseSizeTooLarge");
}

#[tokio::test]
async fn an_unknown_response_mode_is_refused() {
    let (api, addr) = start();
    let answer = api.dispatch(&event("id-1", "{}"));
    next(addr).await;
    let refused = request(
        addr,
        "POST",
        &response_path("id-1"),
        &[("Lambda-Runtime-Function-Response-Mode", "buffered-ish")],
        b"x",
    )
    .await;
    assert_eq!(
        (refused.status, refused.error_type()),
        (400, "InvalidFunctionResponseMode".to_owned())
    );
    let Ok(InvocationOutcome::PlatformError { error_type, .. }) = answer.await else {
        panic!("expected a platform error");
    };
    assert_eq!(error_type, "Runtime.InvalidResponseModeHeader");
}

fn chunked_stream(chunks: &[&[u8]], trailers: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for chunk in chunks {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n");
    body.extend_from_slice(trailers.as_bytes());
    body.extend_from_slice(b"\r\n");
    body
}

fn streaming_head(id: &str) -> String {
    format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
         Lambda-Runtime-Function-Response-Mode: streaming\r\n\
         Content-Type: application/vnd.awslambda.http-integration-response\r\n\
         Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n",
        response_path(id)
    )
}

#[tokio::test]
async fn streamed_responses_are_collected_and_error_trailers_honoured() {
    let (api, addr) = start();
    let answer = api.dispatch(&event("id-1", "{}"));
    next(addr).await;
    let body = chunked_stream(
        &[b"{\"statusCode\":200}", &[0u8; 8], b"hello ", b"world"],
        "",
    );
    assert_eq!(
        raw(addr, streaming_head("id-1").as_bytes(), &body)
            .await
            .status,
        202
    );
    let mut expected = b"{\"statusCode\":200}".to_vec();
    expected.extend_from_slice(&[0u8; 8]);
    expected.extend_from_slice(b"hello world");
    assert_eq!(
        answer.await,
        Ok(InvocationOutcome::Response {
            body: Bytes::from(expected),
            content_type: Some("application/vnd.awslambda.http-integration-response".to_owned()),
        })
    );

    let answer = api.dispatch(&event("id-2", "{}"));
    next(addr).await;
    // base64 of {"errorMessage":"mid-stream","errorType":"Error"}
    let trailers = "Lambda-Runtime-Function-Error-Type: Error\r\n\
                    Lambda-Runtime-Function-Error-Body: \
                    eyJlcnJvck1lc3NhZ2UiOiJtaWQtc3RyZWFtIiwiZXJyb3JUeXBlIjoiRXJyb3IifQ==\r\n";
    let body = chunked_stream(&[b"partial"], trailers);
    assert_eq!(
        raw(addr, streaming_head("id-2").as_bytes(), &body)
            .await
            .status,
        202
    );
    assert_eq!(
        answer.await,
        Ok(InvocationOutcome::FunctionError {
            body: Bytes::from_static(br#"{"errorMessage":"mid-stream","errorType":"Error"}"#),
            error_type: "Error".to_owned(),
        })
    );
}

/// With a sink, each chunk reaches the caller while the runtime is still writing the body;
/// the answer comes once the body (and its trailers) ended.
#[tokio::test]
async fn streamed_responses_reach_the_sink_while_they_are_written() {
    let (api, addr) = start();
    let (sink, receiver) = response_channel();
    let answer = api.dispatch_streaming(&event("id-1", "{}"), sink.clone());
    next(addr).await;
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let mut first = streaming_head("id-1").into_bytes();
    first.extend_from_slice(b"5\r\nhello\r\n");
    write.write_all(&first).await.expect("write head");
    let begun = tokio::time::timeout(Duration::from_secs(5), receiver.begin("$LATEST".into()))
        .await
        .expect("the stream starts before the body ends");
    let Some(InvocationResponse::Streamed(mut streamed)) = begun else {
        panic!("expected a stream");
    };
    assert_eq!(
        streamed.content_type.as_deref(),
        Some("application/vnd.awslambda.http-integration-response")
    );
    let part = tokio::time::timeout(Duration::from_secs(5), streamed.body.next()).await;
    assert_eq!(
        part,
        Ok(Some(BodyPart::Data(Bytes::from_static(b"hello")))),
        "the first chunk arrives while the body is still open"
    );
    assert!(sink.started());
    // base64 of {"errorMessage":"later","errorType":"Error"}
    let rest = b"6\r\n world\r\n0\r\nLambda-Runtime-Function-Error-Type: Error\r\n\
                 Lambda-Runtime-Function-Error-Body: \
                 eyJlcnJvck1lc3NhZ2UiOiJsYXRlciIsImVycm9yVHlwZSI6IkVycm9yIn0=\r\n\r\n";
    write.write_all(rest).await.expect("write rest");
    assert_eq!(
        streamed.body.next().await,
        Some(BodyPart::Data(Bytes::from_static(b" world")))
    );
    assert_eq!(read_response(&mut read).await.status, 202);
    assert_eq!(
        answer.await,
        Ok(InvocationOutcome::FunctionError {
            body: Bytes::from_static(br#"{"errorMessage":"later","errorType":"Error"}"#),
            error_type: "Error".to_owned(),
        })
    );

    // A stream that ends well is answered `Streamed`; one whose caller went away is still
    // read to its end.
    let (sink, receiver) = response_channel();
    drop(receiver);
    let answer = api.dispatch_streaming(&event("id-2", "{}"), sink);
    next(addr).await;
    let body = chunked_stream(&[b"gone ", b"caller"], "");
    assert_eq!(
        raw(addr, streaming_head("id-2").as_bytes(), &body)
            .await
            .status,
        202
    );
    assert_eq!(answer.await, Ok(InvocationOutcome::Streamed));
}

#[tokio::test]
async fn other_apis_and_methods_are_not_served() {
    let (_api, addr) = start();
    let register = request(addr, "POST", "/2020-01-01/extension/register", &[], b"{}").await;
    assert_eq!(register.status, 404);
    let telemetry = request(addr, "PUT", "/2022-07-01/telemetry", &[], b"{}").await;
    assert_eq!(telemetry.status, 404);
    assert_eq!(request(addr, "POST", NEXT, &[], b"").await.status, 405);
    assert_eq!(
        request(addr, "GET", &response_path("x"), &[], b"")
            .await
            .status,
        405
    );
    let unknown = request(
        addr,
        "POST",
        "/2018-06-01/runtime/invocation/x/other",
        &[],
        b"",
    )
    .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn oversized_headers_are_refused_and_the_server_keeps_serving() {
    let (api, addr) = start();
    let huge = "x".repeat(100 * 1024);
    let head = format!("GET {NEXT} HTTP/1.1\r\nHost: x\r\nX-Huge: {huge}\r\n\r\n");
    let refused = raw(addr, head.as_bytes(), b"").await;
    assert_eq!(refused.status, 431);
    let _answer = api.dispatch(&event("id-1", "{}"));
    assert_eq!(next(addr).await.status, 200);
}

#[tokio::test]
async fn a_cancelled_invocation_makes_its_id_stale() {
    let (api, addr) = start();
    let answer = api.dispatch(&event("id-1", "{}"));
    next(addr).await;
    api.cancel();
    assert_eq!(
        request(addr, "POST", &response_path("id-1"), &[], b"x")
            .await
            .status,
        400
    );
    drop(answer);
    // Deadlines are passed through as epoch milliseconds.
    let now = SystemTime::now();
    let mut e = event("id-2", "{}");
    e.deadline = now;
    let _answer = api.dispatch(&e);
    let got = next(addr).await;
    let ms: u128 = got
        .header("lambda-runtime-deadline-ms")
        .expect("deadline")
        .parse()
        .expect("ms");
    assert_eq!(
        ms,
        now.duration_since(UNIX_EPOCH).expect("epoch").as_millis()
    );
}
