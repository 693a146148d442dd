//! Scaling benchmark: warm throughput under concurrent clients, scale-up from zero, the memory
//! an idle environment costs, and durable async acceptance — each beside a baseline measured
//! in the same run with the same client.
//!
//! `cargo bench -p nimbus --bench scaling` (add `-- --quick` for a short run, `-- --only
//! sync,url,scale,async` for some sections, `-- --clients 8` for one concurrency). It starts a real
//! server in-process (namespaces isolation) and reports:
//!
//! - warm sync throughput (invokes/s, p99) of a provided echo function and a Python echo
//!   function with 1, 8 and 64 concurrent keep-alive clients, against a bare loopback HTTP
//!   echo server driven by the same clients;
//! - scale-up: 100 concurrent invokes of a function that holds each one 2 s, on no warm
//!   environment; the time until all 100 ran, less the 2 s, is the time to start 100;
//! - memory per idle environment beyond the runtime's own: the server's RSS growth and the
//!   proportional set size of each environment's init process, per environment;
//! - async: events accepted per second through the Invoke API (`Event`, each fsynced), and the
//!   time until all of them have run.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bare_echo_server, build_bootstrap, create, micros, percentile, zip_of, RawClient};
use nimbus::server::{serve, ServerConfig};
use nimbus_core::queue::EventQueue as _;
use tokio::net::TcpListener;

/// What one throughput cell measured.
struct Cell {
    /// Requests per second.
    rate: f64,
    p50: Duration,
    p99: Duration,
    /// Busy CPU time of the whole machine (client, server, runtimes, kernel) per request. On a
    /// shared host the rate moves with the neighbours; this moves only with the code.
    cpu_per_request: Duration,
    /// Share of the cell's wall time the hypervisor gave to other guests.
    steal: f64,
}

impl Cell {
    fn row(&self, label: &str, clients: usize, baseline: &Cell) -> String {
        format!(
            "| {label} | {clients} | {:.0} | {} | {} | {} | {:.2} |",
            self.rate,
            us(self.p50),
            us(self.p99),
            us(self.cpu_per_request),
            self.rate / baseline.rate
        )
    }
}

/// A duration as whole microseconds, for the tables.
fn us(d: Duration) -> String {
    format!("{:.0} µs", micros(d))
}

/// Machine-wide CPU counters from `/proc/stat`, in clock ticks: (busy, steal).
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    (at(0) + at(1) + at(2) + at(5) + at(6), at(7))
}

/// Drive `target` at `path` with `clients` keep-alive connections for `duration`.
async fn drive(target: SocketAddr, path: &'static str, clients: usize, duration: Duration) -> Cell {
    drive_as(target, None, path, clients, duration).await
}

/// [`drive`] with a Host header of `host`.
async fn drive_as(
    target: SocketAddr,
    host: Option<String>,
    path: &'static str,
    clients: usize,
    duration: Duration,
) -> Cell {
    let payload: &'static [u8] = br#"{"hello":"world"}"#;
    let stop = Arc::new(AtomicBool::new(false));
    let (busy_before, steal_before) = cpu_ticks();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let stop = Arc::clone(&stop);
            let host = host.clone().unwrap_or_else(|| target.to_string());
            tokio::spawn(async move {
                let mut client = RawClient::connect_as(target, &host).await;
                let mut samples = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let (status, body) = client.post(path, payload).await;
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                    samples.push(t.elapsed());
                }
                samples
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("client"));
    }
    let (busy_after, steal_after) = cpu_ticks();
    // `/proc/stat` counts in USER_HZ, which the kernel fixes at 100 for userspace.
    let ticks_per_second = 100.0;
    let busy = (busy_after - busy_before) as f64 / ticks_per_second;
    let steal = (steal_after - steal_before) as f64 / ticks_per_second;
    let cpus = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    all.sort();
    Cell {
        rate: all.len() as f64 / duration.as_secs_f64(),
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        cpu_per_request: Duration::from_secs_f64(busy / all.len().max(1) as f64),
        steal: steal / (duration.as_secs_f64() * cpus),
    }
}

/// Resident set size of this process, in KiB.
fn own_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// PSS in KiB of each direct child of this process (the environments' init processes).
fn children_pss_kib() -> Vec<u64> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // ppid is the 2nd field after the parenthesised command.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if ppid != Some(me.as_str()) {
            continue;
        }
        let rollup = std::fs::read_to_string(path.join("smaps_rollup")).unwrap_or_default();
        if let Some(pss) = rollup
            .lines()
            .find_map(|l| l.strip_prefix("Pss:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
        {
            out.push(pss);
        }
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // The comma-separated values after `flag`, if it was given.
    let list = |flag: &str| -> Option<Vec<String>> {
        let at = args.iter().position(|a| a == flag)?;
        Some(args.get(at + 1)?.split(',').map(str::to_owned).collect())
    };
    // `--only sync,url,scale,async` runs a subset of the sections.
    let only = list("--only");
    let wants = move |section: &str| only.as_ref().is_none_or(|o| o.iter().any(|s| s == section));
    // `--clients 8` runs the sync section at that one concurrency (for profiling).
    let client_counts: Vec<usize> = list("--clients")
        .map(|counts| counts.iter().filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 8, 64]);
    let duration = if quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(6)
    };
    let bootstrap = std::fs::read(build_bootstrap()).expect("read bootstrap");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let data_dir = dir.path().join("data");
        let mut config =
            ServerConfig::new(data_dir.clone(), "us-east-1", "000000000000").expect("config");
        config.limits.max_concurrency = 1000;
        let gateway = std::net::TcpListener::bind("127.0.0.1:0").expect("bind gateway");
        let gateway_addr = gateway.local_addr().expect("gateway addr");
        config.http_listener = Some(Arc::new(gateway));
        tokio::spawn(serve(listener, config, std::future::pending()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut api = RawClient::connect(addr).await;
        let echo_zip = zip_of(&[("bootstrap", &bootstrap, 0o755)]);
        let python_zip = zip_of(&[(
            "app.py",
            b"def handler(event, context):\n    return event\n",
            0o644,
        )]);
        create(&mut api, "echo", "provided.al2023", "echo", &echo_zip).await;
        create(&mut api, "pyecho", "python3.12", "app.handler", &python_zip).await;
        create(&mut api, "hold", "provided.al2023", "echo", &echo_zip).await;
        create(&mut api, "sink", "provided.al2023", "echo", &echo_zip).await;
        let bare = bare_echo_server().await;

        println!();
        println!(
            "nimbus scaling benchmark ({} s per throughput cell)",
            duration.as_secs()
        );
        println!();
        println!(
            "| warm sync, 17-byte echo | clients | invokes/s | p50 | p99 | CPU per invoke | vs bare (throughput) |"
        );
        println!("|---|---|---|---|---|---|---|");
        // The largest share of CPU time the hypervisor gave away during any cell.
        let mut steal: f64 = 0.0;
        for clients in client_counts.into_iter().filter(|_| wants("sync")) {
            // Warm every environment the clients will need before measuring.
            drive(
                addr,
                "/2015-03-31/functions/echo/invocations",
                clients,
                Duration::from_millis(500),
            )
            .await;
            drive(
                addr,
                "/2015-03-31/functions/pyecho/invocations",
                clients,
                Duration::from_millis(800),
            )
            .await;
            let bare_cell = drive(bare, "/echo", clients, duration).await;
            let provided = drive(
                addr,
                "/2015-03-31/functions/echo/invocations",
                clients,
                duration,
            )
            .await;
            let python = drive(
                addr,
                "/2015-03-31/functions/pyecho/invocations",
                clients,
                duration,
            )
            .await;
            println!("{}", bare_cell.row("bare loopback echo", clients, &bare_cell));
            println!("{}", provided.row("provided echo", clients, &bare_cell));
            println!("{}", python.row("python echo", clients, &bare_cell));
            steal = steal.max(bare_cell.steal).max(provided.steal).max(python.steal);
        }

        if wants("url") {
            // A function URL against the bare server, 8 clients.
            let (status, body) = api
                .request_with(
                    "POST",
                    "/2021-10-31/functions/echo/url",
                    br#"{"AuthType":"NONE"}"#,
                    &[("Content-Type", "application/json")],
                )
                .await;
            assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
            let url: serde_json::Value = serde_json::from_slice(&body).expect("url config");
            let host = url["FunctionUrl"]
                .as_str()
                .and_then(|u| u.strip_prefix("http://"))
                .and_then(|u| u.split(['/', ':']).next())
                .expect("url host")
                .to_owned();
            drive_as(
                gateway_addr,
                Some(host.clone()),
                "/echo",
                8,
                Duration::from_millis(500),
            )
            .await;
            let bare_cell = drive(bare, "/echo", 8, duration).await;
            let url = drive_as(gateway_addr, Some(host), "/echo", 8, duration).await;
            println!();
            println!("| HTTP, 8 clients | requests/s | p50 | p99 | CPU per request | p99 vs bare |");
            println!("|---|---|---|---|---|---|");
            for (label, cell) in [
                ("bare axum echo", &bare_cell),
                ("function URL → provided echo", &url),
            ] {
                println!(
                    "| {label} | {:.0} | {} | {} | {} | {:.2} |",
                    cell.rate,
                    us(cell.p50),
                    us(cell.p99),
                    us(cell.cpu_per_request),
                    cell.p99.as_secs_f64() / bare_cell.p99.as_secs_f64()
                );
            }
            steal = steal.max(bare_cell.steal).max(url.steal);
        }
        if steal > 0.02 {
            println!();
            println!(
                "(the hypervisor took up to {:.0}% of this machine's CPU time during a cell; rates \
                 are lower by about as much, CPU per request is not)",
                steal * 100.0
            );
        }

        if wants("scale") {
            // From zero, as the figure says: the echo functions' environments from the sections
            // above are retired first (deleting a function drains them), so that neither their
            // teardown nor their memory lands in the scale-up or idle-cost figures.
            for name in ["echo", "pyecho"] {
                let path = format!("/2015-03-31/functions/{name}");
                let (status, body) = api.request("DELETE", &path, b"").await;
                assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            // Scale-up from zero: 100 invokes at once, each held 2 s, on a function never invoked.
            let rss_before = own_rss_kib();
            let started = Instant::now();
            let calls: Vec<_> = (0..100)
                .map(|_| {
                    tokio::spawn(async move {
                        let mut client = RawClient::connect(addr).await;
                        let (status, body) = client
                            .post(
                                "/2015-03-31/functions/hold/invocations",
                                br#"{"sleep_ms":2000}"#,
                            )
                            .await;
                        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                    })
                })
                .collect();
            for call in calls {
                call.await.expect("call");
            }
            let scale_up = started.elapsed().saturating_sub(Duration::from_secs(2));
            tokio::time::sleep(Duration::from_millis(300)).await;
            let rss_after = own_rss_kib();
            let inits = children_pss_kib();
            let init_pss: u64 = inits.iter().sum();
            let envs = inits.len().max(1) as f64;
            println!();
            println!("| scale-up and idle cost | value |");
            println!("|---|---|");
            println!(
                "| 0 → 100 concurrent environments (all 100 running) | {:.0} ms |",
                scale_up.as_secs_f64() * 1e3
            );
            println!("| idle environments alive after it | {} |", inits.len());
            println!(
                "| server RSS growth per environment | {:.0} KiB |",
                rss_after.saturating_sub(rss_before) as f64 / 100.0
            );
            println!(
                "| init process PSS per environment | {:.0} KiB |",
                init_pss as f64 / envs
            );
        }

        if wants("async") {
            // Durable async acceptance through the API, then the time until all ran.
            let events = if quick { 5_000 } else { 20_000 };
            let per_client = events / 64;
            let started = Instant::now();
            let senders: Vec<_> = (0..64)
                .map(|_| {
                    tokio::spawn(async move {
                        let mut client = RawClient::connect(addr).await;
                        for _ in 0..per_client {
                            let head = "/2015-03-31/functions/sink/invocations";
                            let (status, body) = client
                                .request_with(
                                    "POST",
                                    head,
                                    b"{}",
                                    &[("X-Amz-Invocation-Type", "Event")],
                                )
                                .await;
                            assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
                        }
                    })
                })
                .collect();
            for sender in senders {
                sender.await.expect("sender");
            }
            let accepted_in = started.elapsed();
            let queue =
                nimbus_store::SqliteEventQueue::open(&data_dir.join("events.db")).expect("queue");
            while queue.len().await.expect("len") > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let drained_in = started.elapsed();
            let total = per_client * 64;
            println!();
            println!("| async (Event), 64 clients | value |");
            println!("|---|---|");
            println!("| events accepted (each durable before 202) | {total} |");
            println!(
                "| accepted per second | {:.0} |",
                total as f64 / accepted_in.as_secs_f64()
            );
            println!("| until all had run | {:.2} s |", drained_in.as_secs_f64());
        }
    });
}
