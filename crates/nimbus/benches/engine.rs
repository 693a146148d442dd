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
//!   against spawning the same runtime process directly, each sample right after the cold
//!   start it is compared with, so that both see the host in the same state.
//!
//! `-- --warm-only` and `-- --cold-only` run one half (for profiling).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    bare_echo_server, build_bootstrap, create, micros, millis, percentile, zip_of, RawClient,
};

use nimbus::server::{serve, ServerConfig};
use nimbus_sandbox::sys::Isolation;
use tokio::net::TcpListener;

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

/// One run of `program` until it exits, timed.
fn spawn_direct(program: &str, args: &[&str]) -> Option<Duration> {
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    status.is_ok().then(|| started.elapsed())
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (mut warm_n, mut cold_n) = if quick { (2_000, 10) } else { (20_000, 40) };
    // `--warm-only` / `--cold-only` narrow the run, e.g. to profile one path.
    if std::env::args().any(|a| a == "--warm-only") {
        cold_n = 0;
        warm_n *= 5;
    }
    if std::env::args().any(|a| a == "--cold-only") {
        warm_n = 0;
    }
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
        let mut dry = Vec::with_capacity(warm_n);
        let dry_run = [("X-Amz-Invocation-Type", "DryRun")];
        // Interleaved, so that background noise lands on all sides alike.
        for _ in 0..warm_n {
            let t = Instant::now();
            bare.post("/echo", payload).await;
            base.push(t.elapsed());
            let t = Instant::now();
            api.post(path, payload).await;
            warm.push(t.elapsed());
            let t = Instant::now();
            api.request_with("POST", path, payload, &dry_run).await;
            dry.push(t.elapsed());
        }
        base.sort();
        warm.sort();
        dry.sort();

        // Cold starts vs spawning the runtime directly.
        let python_src = b"def handler(event, context):\n    return event\n";
        let node_src = b"exports.handler = async (event) => event;\n";
        create(&mut api, "cold-provided", "provided.al2023", "echo", &zip_of(&[("bootstrap", &bootstrap_bytes, 0o755)])).await;
        create(&mut api, "cold-python", "python3.12", "app.handler", &zip_of(&[("app.py", python_src, 0o644)])).await;
        create(&mut api, "cold-node", "nodejs20.x", "index.handler", &zip_of(&[("index.js", node_src, 0o644)])).await;
        let bootstrap_path = bootstrap.to_string_lossy().into_owned();
        // (row label, function, the same runtime spawned directly)
        let runtimes = [
            ("provided", "cold-provided", bootstrap_path.as_str(), &[][..]),
            ("python3.12", "cold-python", "/usr/bin/python3", &["-c", "pass"][..]),
            ("nodejs20.x", "cold-node", "/usr/bin/node", &["-e", "0"][..]),
        ];
        // (row label, cold start samples, direct spawn samples)
        let mut cold = Vec::new();
        for (label, name, program, args) in runtimes {
            let path = format!("/2015-03-31/functions/{name}/invocations");
            let mut samples = Vec::with_capacity(cold_n);
            let mut spawned = Vec::with_capacity(cold_n);
            for i in 0..cold_n {
                touch(&mut api, name, i).await;
                // A cold start on a settled server: the replaced environment's teardown and the
                // refill of prepared resources are done, as between the sparse cold starts of
                // real traffic (bursts are what the scaling bench's scale-up measures).
                tokio::time::sleep(Duration::from_millis(150)).await;
                let t = Instant::now();
                let (status, body) = api.post(&path, payload).await;
                samples.push(t.elapsed());
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                // The baseline right after, so that both see the same moment of the host.
                spawned.extend(spawn_direct(program, args));
            }
            samples.sort();
            spawned.sort();
            cold.push((label, samples, spawned));
        }

        println!();
        println!("nimbus engine benchmark ({isolation:?} isolation, {} warm samples, {cold_n} cold samples)", warm_n);
        println!();
        if warm_n > 0 {
            println!("| warm invoke, 17-byte echo          |     p50 |     p99 |");
            println!("|------------------------------------|---------|---------|");
            println!("| bare loopback HTTP round trip      | {:>5.0} µs | {:>5.0} µs |", micros(percentile(&base, 0.5)), micros(percentile(&base, 0.99)));
            println!("| nimbus Invoke, provided echo       | {:>5.0} µs | {:>5.0} µs |", micros(percentile(&warm, 0.5)), micros(percentile(&warm, 0.99)));
            println!("| nimbus Invoke, DryRun (API only)   | {:>5.0} µs | {:>5.0} µs |", micros(percentile(&dry, 0.5)), micros(percentile(&dry, 0.99)));
            println!("| ratio (nimbus / bare)              | {:>6.1}x | {:>6.1}x |",
                percentile(&warm, 0.5).as_secs_f64() / percentile(&base, 0.5).as_secs_f64(),
                percentile(&warm, 0.99).as_secs_f64() / percentile(&base, 0.99).as_secs_f64());
        }
        if cold_n > 0 {
            println!();
            println!("| cold start (p50)  | nimbus invoke on a new env | spawn runtime directly | difference |");
            println!("|-------------------|----------------------------|------------------------|------------|");
            for (label, c, d) in &cold {
                let (c50, d50) = (percentile(c, 0.5), percentile(d, 0.5));
                println!("| {label:<17} | {:>23.2} ms | {:>19.2} ms | {:>+7.2} ms |", millis(c50), millis(d50), millis(c50) - millis(d50));
            }
            println!();
            println!("(direct spawn: the bootstrap binary until exit, `python3 -c pass`, `node -e 0`)");
        }
    });
}
