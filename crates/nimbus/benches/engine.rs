//! Engine benchmark: warm invoke latency and cold starts, each beside a baseline measured in
//! the same run on the same machine with the same client.
//!
//! `cargo bench -p nimbus --bench engine` (add `-- --quick` for a short run). It builds the
//! `echo_bootstrap` example (a custom runtime that echoes), starts a real server in-process on
//! an ephemeral port with a temporary data directory, and reports:
//!
//! - warm invoke p50/p99 of the provided echo function through the Invoke API, against a bare
//!   loopback HTTP echo round trip;
//! - cold start (invoke to response on a new environment) for provided, python and node,
//!   against spawning the same runtime process directly.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nimbus::server::{serve, ServerConfig};
use nimbus_sandbox::sys::Isolation;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A keep-alive HTTP/1.1 client with as little overhead as possible, used for every
/// measurement so that the client's own cost cancels out of the comparison.
struct RawClient {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    host: String,
}

impl RawClient {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (r, w) = stream.into_split();
        Self {
            reader: BufReader::new(r),
            writer: w,
            host: addr.to_string(),
        }
    }

    async fn post(&mut self, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        self.request("POST", path, body).await
    }

    async fn request(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        self.writer.write_all(head.as_bytes()).await.expect("write");
        self.writer.write_all(body).await.expect("write");
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
async fn bare_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route(
        "/echo",
        axum::routing::post(|body: axum::body::Bytes| async move { body }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn build_bootstrap() -> PathBuf {
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

fn zip_of(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
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

async fn create(client: &mut RawClient, name: &str, runtime: &str, handler: &str, zip: &[u8]) {
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

/// Change the function so its next invoke needs a new environment.
async fn touch(client: &mut RawClient, name: &str, i: usize) {
    let body = serde_json::json!({"Environment": {"Variables": {"ROUND": i.to_string()}}});
    let path = format!("/2015-03-31/functions/{name}/configuration");
    let (status, out) = client
        .request("PUT", &path, body.to_string().as_bytes())
        .await;
    assert_eq!(
        status,
        200,
        "update {name}: {}",
        String::from_utf8_lossy(&out)
    );
}

fn spawn_direct(program: &str, args: &[&str], rounds: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let status = Command::new(program)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if status.is_ok() {
            samples.push(started.elapsed());
        }
    }
    samples.sort();
    samples
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (warm_n, cold_n) = if quick { (2_000, 10) } else { (20_000, 40) };
    let bootstrap = build_bootstrap();
    let bootstrap_bytes = std::fs::read(&bootstrap).expect("read bootstrap");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config =
            ServerConfig::new(dir.path().join("data"), "us-east-1", "000000000000").expect("config");
        let isolation = if std::env::var("NIMBUS_BENCH_ISOLATION").as_deref() == Ok("none") {
            Isolation::None
        } else {
            Isolation::Namespaces
        };
        config.isolation = isolation;
        tokio::spawn(serve(listener, config, std::future::pending()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut api = RawClient::connect(addr).await;

        // Warm invoke vs bare loopback round trip.
        let payload = br#"{"hello":"world"}"#;
        let echo = bare_echo_server().await;
        let mut bare = RawClient::connect(echo).await;
        create(&mut api, "echo", "provided.al2023", "echo", &zip_of(&[("bootstrap", &bootstrap_bytes, 0o755)])).await;
        let path = "/2015-03-31/functions/echo/invocations";
        for _ in 0..500 {
            bare.post("/echo", payload).await;
            let (status, body) = api.post(path, payload).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        }
        let (mut base, mut warm) = (Vec::with_capacity(warm_n), Vec::with_capacity(warm_n));
        // Interleaved, so that background noise lands on both sides alike.
        for _ in 0..warm_n {
            let t = Instant::now();
            bare.post("/echo", payload).await;
            base.push(t.elapsed());
            let t = Instant::now();
            api.post(path, payload).await;
            warm.push(t.elapsed());
        }
        base.sort();
        warm.sort();

        // Cold starts vs spawning the runtime directly.
        let python_src = b"def handler(event, context):\n    return event\n";
        let node_src = b"exports.handler = async (event) => event;\n";
        create(&mut api, "cold-provided", "provided.al2023", "echo", &zip_of(&[("bootstrap", &bootstrap_bytes, 0o755)])).await;
        create(&mut api, "cold-python", "python3.12", "app.handler", &zip_of(&[("app.py", python_src, 0o644)])).await;
        create(&mut api, "cold-node", "nodejs20.x", "index.handler", &zip_of(&[("index.js", node_src, 0o644)])).await;
        let mut cold = Vec::new();
        for name in ["cold-provided", "cold-python", "cold-node"] {
            let path = format!("/2015-03-31/functions/{name}/invocations");
            let mut samples = Vec::with_capacity(cold_n);
            for i in 0..cold_n {
                touch(&mut api, name, i).await;
                let t = Instant::now();
                let (status, body) = api.post(&path, payload).await;
                samples.push(t.elapsed());
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            }
            samples.sort();
            cold.push(samples);
        }
        let bootstrap_path = bootstrap.to_string_lossy().into_owned();
        let direct = [
            spawn_direct(&bootstrap_path, &[], cold_n),
            spawn_direct("/usr/bin/python3", &["-c", "pass"], cold_n),
            spawn_direct("/usr/bin/node", &["-e", "0"], cold_n),
        ];

        println!();
        println!("nimbus engine benchmark ({isolation:?} isolation, {} warm samples, {cold_n} cold samples)", warm_n);
        println!();
        println!("| warm invoke, 17-byte echo          |     p50 |     p99 |");
        println!("|------------------------------------|---------|---------|");
        println!("| bare loopback HTTP round trip      | {:>5.0} µs | {:>5.0} µs |", micros(percentile(&base, 0.5)), micros(percentile(&base, 0.99)));
        println!("| nimbus Invoke, provided echo       | {:>5.0} µs | {:>5.0} µs |", micros(percentile(&warm, 0.5)), micros(percentile(&warm, 0.99)));
        println!("| ratio (nimbus / bare)              | {:>6.1}x | {:>6.1}x |",
            percentile(&warm, 0.5).as_secs_f64() / percentile(&base, 0.5).as_secs_f64(),
            percentile(&warm, 0.99).as_secs_f64() / percentile(&base, 0.99).as_secs_f64());
        println!();
        println!("| cold start (p50)  | nimbus invoke on a new env | spawn runtime directly | difference |");
        println!("|-------------------|----------------------------|------------------------|------------|");
        for (label, (c, d)) in ["provided", "python3.12", "nodejs20.x"].iter().zip(cold.iter().zip(direct.iter())) {
            let (c50, d50) = (percentile(c, 0.5), percentile(d, 0.5));
            println!("| {label:<17} | {:>23.2} ms | {:>19.2} ms | {:>+7.2} ms |", millis(c50), millis(d50), millis(c50) - millis(d50));
        }
        println!();
        println!("(direct spawn: the bootstrap binary until exit, `python3 -c pass`, `node -e 0`)");
    });
}
