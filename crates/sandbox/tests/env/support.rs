//! Helpers: a collecting log sink, specs and invocations, shell bootstraps, a raw HTTP client.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use nimbus_core::runtime::Runtime;
use nimbus_core::sandbox::{EnvironmentSpec, Invocation, LogSink};
use nimbus_sandbox::sys::Isolation;
use nimbus_sandbox::{LinuxSandbox, LinuxSandboxConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Collects every line written to it.
#[derive(Debug, Default)]
pub(crate) struct CollectingSink {
    lines: Mutex<Vec<(String, String, String)>>,
}

impl CollectingSink {
    /// The lines written so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        let lines = self.lines.lock().expect("sink lock");
        lines.iter().map(|(_, _, line)| line.clone()).collect()
    }

    /// The (group, stream) pairs seen.
    pub(crate) fn streams(&self) -> Vec<(String, String)> {
        let lines = self.lines.lock().expect("sink lock");
        let mut streams: Vec<_> = lines
            .iter()
            .map(|(g, s, _)| (g.clone(), s.clone()))
            .collect();
        streams.dedup();
        streams
    }
}

impl LogSink for CollectingSink {
    fn write(&self, group: &str, stream: &str, _timestamp: SystemTime, line: &str) {
        let mut lines = self.lines.lock().expect("sink lock");
        lines.push((group.to_owned(), stream.to_owned(), line.to_owned()));
    }
}

/// Whether namespaced environments work here (root, and `sys` found namespaces usable); says
/// so when they do not.
pub(crate) fn namespaces_available() -> bool {
    let available = nimbus_sandbox::sys::capabilities().namespaces;
    if !available {
        eprintln!("skipped: this host cannot create namespaced environments");
    }
    available
}

/// Turns scenarios `async fn name(isolation: Isolation)` into one test per isolation level:
/// `none::name` always, `namespaces::name` where the host supports namespaces. They run on a
/// two-worker runtime, like the server.
macro_rules! isolation_tests {
    ($($name:ident),* $(,)?) => {
        mod none {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(nimbus_sandbox::sys::Isolation::None).await;
                }
            )*
        }
        mod namespaces {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if crate::support::namespaces_available() {
                        super::$name(nimbus_sandbox::sys::Isolation::Namespaces).await;
                    }
                }
            )*
        }
    };
}
pub(crate) use isolation_tests;

/// The repository's `runtimes/` folder.
pub(crate) fn runtimes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runtimes")
}

/// A sandbox as the tests configure it.
pub(crate) fn sandbox(isolation: Isolation) -> LinuxSandbox {
    sandbox_with(isolation, |_| {})
}

/// A sandbox with an adjusted configuration.
pub(crate) fn sandbox_with(
    isolation: Isolation,
    adjust: impl FnOnce(&mut LinuxSandboxConfig),
) -> LinuxSandbox {
    let mut config = LinuxSandboxConfig::new(runtimes_dir());
    config.isolation = isolation;
    adjust(&mut config);
    LinuxSandbox::new(config)
}

/// A code directory holding `bootstrap` (mode 0755) with `script` as its content.
pub(crate) fn code_dir(script: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bootstrap");
    std::fs::write(&path, script).expect("write bootstrap");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // With namespaces the runtime runs unprivileged: the tree must be world-readable.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// Shell functions for curl-based bootstraps: `next` sets `$EVENT` and `$ID`; `respond BODY`
/// and `fail BODY` post the result.
pub(crate) const SH_PRELUDE: &str = r#"#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
next() {
  RESP=$(curl -sS -i "$API/invocation/next" | tr -d '\r') || exit 70
  ID=$(printf '%s\n' "$RESP" | grep -i '^lambda-runtime-aws-request-id:' | cut -d' ' -f2)
  [ -n "$ID" ] || exit 70
  EVENT=$(printf '%s\n' "$RESP" | sed '1,/^$/d')
}
respond() { curl -sS -o /dev/null -X POST "$API/invocation/$ID/response" --data-binary "$1"; }
fail() { curl -sS -o /dev/null -X POST "$API/invocation/$ID/error" --data-binary "$1"; }
"#;

/// A curl bootstrap: the prelude, then `body`.
pub(crate) fn sh_bootstrap(body: &str) -> String {
    format!("{SH_PRELUDE}{body}\n")
}

/// A bootstrap that echoes every event and prints `invocation N` before answering.
pub(crate) fn echo_bootstrap() -> String {
    sh_bootstrap(
        r#"n=0
while true; do
  next
  n=$((n+1))
  echo "invocation $n"
  respond "$EVENT"
done"#,
    )
}

/// A spec for `code_dir` with the variables the official clients require.
pub(crate) fn spec(code_dir: &Path, runtime: &str, timeout: Duration) -> EnvironmentSpec {
    let environment_id = uuid::Uuid::new_v4().simple().to_string();
    let mut variables = BTreeMap::new();
    for (name, value) in [
        ("AWS_LAMBDA_FUNCTION_NAME", "test-fn"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_REGION", "us-east-1"),
        ("_HANDLER", "index.handler"),
    ] {
        variables.insert(name.to_owned(), value.to_owned());
    }
    EnvironmentSpec {
        log_stream: format!("2026/01/01/[$LATEST]{environment_id}"),
        environment_id,
        function_name: "test-fn".to_owned(),
        function_version: "$LATEST".to_owned(),
        runtime: Runtime::parse(runtime).expect("runtime"),
        handler: "index.handler".to_owned(),
        memory_mb: 128,
        ephemeral_storage_mb: 512,
        timeout,
        code_dir: code_dir.to_owned(),
        opt_dir: None,
        variables,
        log_group: "/aws/lambda/test-fn".to_owned(),
    }
}

/// An invocation of `payload` with a fresh request id.
pub(crate) fn invocation(payload: &str) -> Invocation {
    Invocation {
        request_id: uuid::Uuid::new_v4().to_string(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        invoked_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:test-fn".to_owned(),
        trace_id: "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
            .to_owned(),
        client_context: None,
    }
}

/// A logging sink shared with the sandbox.
pub(crate) fn sink() -> (Arc<CollectingSink>, Arc<dyn LogSink>) {
    let sink = Arc::new(CollectingSink::default());
    let dyn_sink: Arc<dyn LogSink> = sink.clone();
    (sink, dyn_sink)
}

/// A parsed HTTP response.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    /// A header's value (names compared case-insensitively).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body's `errorType`.
    pub(crate) fn error_type(&self) -> String {
        let value: serde_json::Value = serde_json::from_slice(&self.body).expect("json body");
        value["errorType"].as_str().unwrap_or_default().to_owned()
    }
}

/// Send one request (`Content-Length` framing unless `headers` say otherwise) on a new
/// connection and read the response.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    raw(addr, head.as_bytes(), body).await
}

/// Write `head` and `body` verbatim on a new connection and read one response. The body is
/// written concurrently, as a server may answer (and close) before reading all of it.
pub(crate) async fn raw(addr: SocketAddr, head: &[u8], body: &[u8]) -> RawResponse {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let mut bytes = head.to_vec();
    bytes.extend_from_slice(body);
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&bytes).await;
        // Keep the write half (and so the connection) open until the response is read.
        std::future::pending::<()>().await;
        drop(write);
    });
    let response = read_response(&mut read).await;
    writer.abort();
    response
}

/// Read one response (`Content-Length` framing) from `stream`.
pub(crate) async fn read_response(stream: &mut (impl AsyncReadExt + Unpin)) -> RawResponse {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .expect("status")
        .parse()
        .expect("code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = buf[head_end + 4..].to_vec();
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse::<usize>().expect("length"))
        .unwrap_or(0);
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let n = stream.read(&mut chunk).await.expect("read body");
        assert!(n > 0, "connection closed in the body");
        body.extend_from_slice(&chunk[..n]);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}
