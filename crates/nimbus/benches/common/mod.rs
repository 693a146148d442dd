//! What the benchmarks share: one raw HTTP client (so the client's own cost cancels out of
//! every comparison), the bare loopback baseline server, the echo bootstrap, percentiles.

#![allow(dead_code)] // each benchmark uses its own subset

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A keep-alive HTTP/1.1 client with as little overhead as possible, used for every
/// measurement so that the client's own cost cancels out of the comparison.
pub(crate) struct RawClient {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    host: String,
}

impl RawClient {
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        Self::connect_as(addr, &addr.to_string()).await
    }

    /// Connect to `addr`, sending `host` as the Host header (virtual-host routing).
    pub(crate) async fn connect_as(addr: SocketAddr, host: &str) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (r, w) = stream.into_split();
        Self {
            reader: BufReader::new(r),
            writer: w,
            host: host.to_owned(),
        }
    }

    pub(crate) async fn post(&mut self, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        self.request("POST", path, body).await
    }

    pub(crate) async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        self.request_with(method, path, body, &[]).await
    }

    pub(crate) async fn request_with(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> (u16, Vec<u8>) {
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{extra}Content-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        // One write, as clients do for small requests: a second segment would cost the server
        // a second wake-up and skew every comparison.
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.writer.write_all(&request).await.expect("write");
        let mut line = String::new();
        self.reader.read_line(&mut line).await.expect("status");
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).await.expect("header");
            let t = line.trim_end();
            if t.is_empty() {
                break;
            }
            if let Some((k, v)) = t.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).await.expect("body");
        (status, body)
    }
}

/// A bare loopback echo server: the floor any HTTP round trip on this machine pays.
pub(crate) async fn bare_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route(
        "/echo",
        axum::routing::post(|body: axum::body::Bytes| async move { body }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub(crate) fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(crate) fn build_bootstrap() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "nimbus",
            "--example",
            "echo_bootstrap",
        ])
        .status()
        .expect("run cargo");
    assert!(status.success(), "build echo_bootstrap");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("release/examples/echo_bootstrap")
}

pub(crate) fn zip_of(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data, mode) in files {
        w.start_file(
            *name,
            zip::write::SimpleFileOptions::default().unix_permissions(*mode),
        )
        .expect("entry");
        w.write_all(data).expect("write");
    }
    w.finish().expect("zip").into_inner()
}

pub(crate) async fn create(
    client: &mut RawClient,
    name: &str,
    runtime: &str,
    handler: &str,
    zip: &[u8],
) {
    use base64::Engine as _;
    let body = serde_json::json!({
        "FunctionName": name, "Runtime": runtime, "Handler": handler,
        "Role": "arn:aws:iam::000000000000:role/bench", "Timeout": 30, "MemorySize": 1769,
        "Code": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(zip)},
    });
    let (status, out) = client
        .post("/2015-03-31/functions", body.to_string().as_bytes())
        .await;
    assert_eq!(
        status,
        201,
        "create {name}: {}",
        String::from_utf8_lossy(&out)
    );
}
