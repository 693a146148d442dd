//! Response streaming, end to end: a Node function using `awslambda.streamifyResponse` writes a
//! chunk, waits, writes another; a `RESPONSE_STREAM` function URL (plain HTTP) and
//! `InvokeWithResponseStream` (the official SDK) must deliver the first chunk while the
//! function is still running.

use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    FunctionUrlAuthType, InvokeMode, InvokeWithResponseStreamResponseEvent, LogType, Runtime,
};
use base64::Engine as _;

use crate::gateway::http_for;
use crate::invoke::deploy;
use crate::support::{error_of, Harness};

/// How long the function waits between its two writes. The assertions only need the first
/// chunk to arrive well before the function ends, so they leave wide margins.
const PAUSE_MS: u64 = 800;

/// One streaming handler; the path (URL) or `mode` (direct invoke) picks what it writes.
const STREAMER: &str = r#"
const pause = (ms) => new Promise((r) => setTimeout(r, ms));
exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  const mode = event.rawPath || event.mode;
  let stream = responseStream;
  if (mode === '/http') {
    stream = awslambda.HttpResponseStream.from(responseStream, {
      statusCode: 201,
      headers: { 'content-type': 'text/plain', 'x-streamed': 'yes' },
      cookies: ['session=1'],
    });
  } else {
    stream.setContentType('text/plain');
  }
  stream.write('first;');
  await pause(PAUSE_MS);
  if (mode === '/fail') throw new Error('mid-stream boom');
  stream.write('second;');
  stream.end();
});
"#;

async fn deploy_streamer(h: &Harness, name: &str) {
    let source = STREAMER.replace("PAUSE_MS", &PAUSE_MS.to_string());
    deploy(
        h,
        name,
        Runtime::Nodejs20x,
        "index.handler",
        &[("index.js", source.as_bytes(), 0o644)],
    )
    .await;
}

/// A `RESPONSE_STREAM` URL for `name` (trailing slash removed).
async fn streaming_url(h: &Harness, name: &str) -> String {
    let out = h
        .client()
        .create_function_url_config()
        .function_name(name)
        .auth_type(FunctionUrlAuthType::None)
        .invoke_mode(InvokeMode::ResponseStream)
        .send()
        .await
        .expect("create URL");
    out.function_url().trim_end_matches('/').to_owned()
}

/// A GET whose body is read chunk by chunk: (status, headers, body, time from sending to the
/// first body bytes, time from the first bytes to the end).
async fn timed_get(
    http: &reqwest::Client,
    url: &str,
) -> (u16, reqwest::header::HeaderMap, String, Duration, Duration) {
    let sent = Instant::now();
    let mut response = http.get(url).send().await.expect("GET");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    let mut first_at = None;
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        first_at.get_or_insert_with(Instant::now);
        body.extend_from_slice(&chunk);
    }
    let first_at = first_at.unwrap_or_else(Instant::now);
    (
        status,
        headers,
        String::from_utf8_lossy(&body).into_owned(),
        first_at - sent,
        first_at.elapsed(),
    )
}

#[tokio::test]
async fn streaming_function_url_sends_chunks_as_they_are_written() {
    let h = Harness::start().await;
    deploy_streamer(&h, "streamer").await;
    let url = streaming_url(&h, "streamer").await;
    let http = http_for(&h.server, &url);
    let pause = Duration::from_millis(PAUSE_MS);

    // Plain stream: 200, the runtime's content type, chunked; the first chunk long before the end.
    let (status, headers, body, _, rest) = timed_get(&http, &format!("{url}/plain")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/plain");
    assert_eq!(headers["transfer-encoding"], "chunked");
    assert_eq!(body, "first;second;");
    assert!(
        rest >= pause / 2,
        "the first chunk arrived only {rest:?} before the end"
    );

    // The HttpResponseStream prelude sets status, headers and cookies; the body streams too.
    let (status, headers, body, _, rest) = timed_get(&http, &format!("{url}/http")).await;
    assert_eq!(status, 201);
    assert_eq!(headers["x-streamed"], "yes");
    assert_eq!(headers["content-type"], "text/plain");
    assert_eq!(headers["set-cookie"], "session=1");
    assert_eq!(body, "first;second;");
    assert!(
        rest >= pause / 2,
        "the first chunk arrived only {rest:?} before the end"
    );

    // An error after the first chunk: the status is sent already, the body just ends.
    let (status, _, body, _, _) = timed_get(&http, &format!("{url}/fail")).await;
    assert_eq!(status, 200);
    assert_eq!(body, "first;");

    // The environment was given back after each stream: the next call reuses it.
    let (status, _, body, _, _) = timed_get(&http, &format!("{url}/plain")).await;
    assert_eq!((status, body.as_str()), (200, "first;second;"));
}

/// Collect the events of an `InvokeWithResponseStream` call: (payload chunks with the time
/// each arrived, the `InvokeComplete` event).
async fn stream_events(
    mut out: aws_sdk_lambda::operation::invoke_with_response_stream::InvokeWithResponseStreamOutput,
) -> (
    Vec<(String, Instant)>,
    aws_sdk_lambda::types::InvokeWithResponseStreamCompleteEvent,
) {
    let mut chunks = Vec::new();
    let mut complete = None;
    while let Some(event) = out.event_stream.recv().await.expect("event") {
        match event {
            InvokeWithResponseStreamResponseEvent::PayloadChunk(chunk) => {
                let bytes = chunk
                    .payload()
                    .map(|b| b.as_ref().to_vec())
                    .unwrap_or_default();
                chunks.push((String::from_utf8_lossy(&bytes).into_owned(), Instant::now()));
            }
            InvokeWithResponseStreamResponseEvent::InvokeComplete(done) => {
                assert!(complete.is_none(), "one InvokeComplete");
                complete = Some(done);
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    (chunks, complete.expect("InvokeComplete ends the stream"))
}

#[tokio::test]
async fn invoke_with_response_stream_through_the_sdk() {
    let h = Harness::start().await;
    deploy_streamer(&h, "streamer").await;
    let client = h.client();

    // A streaming function: PayloadChunk events as it writes, then InvokeComplete with the log.
    let out = client
        .invoke_with_response_stream()
        .function_name("streamer")
        .payload(Blob::new(br#"{"mode":"/plain"}"#.to_vec()))
        .log_type(LogType::Tail)
        .send()
        .await
        .expect("invoke with response stream");
    assert_eq!(out.status_code(), 200);
    assert_eq!(out.executed_version(), Some("$LATEST"));
    assert_eq!(
        out.response_stream_content_type(),
        Some("application/vnd.amazon.eventstream")
    );
    let (chunks, complete) = stream_events(out).await;
    let text: String = chunks.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(text, "first;second;");
    let first = chunks.first().map(|(_, at)| *at).expect("a chunk");
    let last = chunks.last().map(|(_, at)| *at).expect("a chunk");
    assert!(
        last - first >= Duration::from_millis(PAUSE_MS / 2),
        "chunks arrived {:?} apart",
        last - first
    );
    assert_eq!(complete.error_code(), None);
    let log = complete
        .log_result()
        .and_then(|l| base64::engine::general_purpose::STANDARD.decode(l).ok())
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .unwrap_or_default();
    assert!(log.contains("REPORT RequestId:"), "{log}");

    // An error after the first chunk: InvokeComplete carries it; HTTP status stays 200.
    let out = client
        .invoke_with_response_stream()
        .function_name("streamer")
        .payload(Blob::new(br#"{"mode":"/fail"}"#.to_vec()))
        .send()
        .await
        .expect("invoke failing stream");
    assert_eq!(out.status_code(), 200);
    let (chunks, complete) = stream_events(out).await;
    let text: String = chunks.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(text, "first;");
    assert_eq!(complete.error_code(), Some("Error"));
    assert_eq!(complete.error_details(), Some("mid-stream boom"));
    assert_eq!(complete.log_result(), None, "no log unless asked for");

    // The plain Invoke API still gets the whole streamed body.
    let out = client
        .invoke()
        .function_name("streamer")
        .payload(Blob::new(br#"{"mode":"/plain"}"#.to_vec()))
        .send()
        .await
        .expect("buffered invoke of a streaming function");
    assert_eq!(out.function_error(), None);
    assert_eq!(
        out.payload().map(|b| b.as_ref()),
        Some(&b"first;second;"[..])
    );
}

#[tokio::test]
async fn invoke_with_response_stream_of_buffered_and_unknown_functions() {
    let h = Harness::start().await;
    let client = h.client();
    deploy(
        &h,
        "echo",
        Runtime::Python312,
        "app.handler",
        &[(
            "app.py",
            b"def handler(event, context):\n    if event.get('fail'):\n        raise ValueError('bad input')\n    return {'echo': event}\n",
            0o644,
        )],
    )
    .await;

    // A function that does not stream: its whole payload as one PayloadChunk.
    let out = client
        .invoke_with_response_stream()
        .function_name("echo")
        .payload(Blob::new(br#"{"k":"v"}"#.to_vec()))
        .send()
        .await
        .expect("invoke buffered function");
    assert_eq!(out.executed_version(), Some("$LATEST"));
    let (chunks, complete) = stream_events(out).await;
    assert_eq!(chunks.len(), 1, "{chunks:?}");
    let payload: serde_json::Value = serde_json::from_str(&chunks[0].0).expect("json payload");
    assert_eq!(payload["echo"]["k"], "v");
    assert_eq!(complete.error_code(), None);

    // Its errors surface only in InvokeComplete.
    let out = client
        .invoke_with_response_stream()
        .function_name("echo")
        .payload(Blob::new(br#"{"fail":true}"#.to_vec()))
        .send()
        .await
        .expect("invoke failing buffered function");
    assert_eq!(out.status_code(), 200);
    let (chunks, complete) = stream_events(out).await;
    assert!(chunks.is_empty(), "{chunks:?}");
    assert_eq!(complete.error_code(), Some("ValueError"));
    assert_eq!(complete.error_details(), Some("bad input"));

    // A function that does not exist: a plain rest-json error before any stream.
    let err = client
        .invoke_with_response_stream()
        .function_name("missing")
        .send()
        .await
        .expect_err("unknown function");
    assert_eq!(
        error_of(&err),
        ("ResourceNotFoundException".to_owned(), 404)
    );
    // `Event` is not an invocation type of this operation.
    let raw = reqwest::Client::new()
        .post(
            h.server
                .url("/2021-11-15/functions/echo/response-streaming-invocations"),
        )
        .header("x-amz-invocation-type", "Event")
        .body("{}")
        .send()
        .await
        .expect("raw request");
    assert_eq!(raw.status(), 400);
}
