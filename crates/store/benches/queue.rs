//! Event queue benchmark: durable enqueue throughput and latency with group commit, beside a
//! baseline of one commit (one fsync) per event measured in the same run on the same disk.
//!
//! `cargo bench -p nimbus-store --bench queue` (add `-- --quick` for a short run). The
//! databases live under Cargo's target tmp dir, i.e. on the disk the build is on, not a tmpfs
//! where fsync would cost nothing. It reports:
//!
//! - baseline: 500 events of 1 KB enqueued one after another by one caller, so every event is
//!   a commit of its own with its fsync;
//! - group commit: 20,000 events of 1 KB enqueued by 64 concurrent tasks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use nimbus_core::queue::{EventQueue, QueuedEvent};
use nimbus_core::FunctionName;
use nimbus_store::SqliteEventQueue;
use tokio::sync::Barrier;

const PAYLOAD: usize = 1024;

fn event(id: String, function: &FunctionName, payload: &Bytes) -> QueuedEvent {
    let now = Utc::now();
    QueuedEvent {
        id,
        function: function.clone(),
        qualifier: None,
        payload: payload.clone(),
        enqueued_at: now,
        attempts: 0,
        not_before: now,
    }
}

struct Run {
    name: &'static str,
    callers: usize,
    events: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    commits: u64,
    synced: u64,
}

impl Run {
    fn print(&mut self) {
        self.latencies.sort_unstable();
        let pct = |p: f64| {
            let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
            self.latencies[i]
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{:<24} {:>7} {:>7} {:>10.0} {:>9.3} {:>9.3} {:>9.3} {:>8} {:>8} {:>8.1}",
            self.name,
            self.callers,
            self.events,
            self.events as f64 / self.elapsed.as_secs_f64(),
            ms(pct(0.50)),
            ms(pct(0.99)),
            ms(pct(1.0)),
            self.commits,
            self.synced,
            self.events as f64 / self.commits.max(1) as f64,
        );
    }
}

/// `events` enqueues spread over `callers` concurrent tasks, each timing its own calls.
async fn run(name: &'static str, queue: &SqliteEventQueue, callers: usize, events: usize) -> Run {
    let function = FunctionName::new("bench").expect("valid name");
    let payload = Bytes::from(vec![b'x'; PAYLOAD]);
    let before = queue.write_stats();
    let barrier = Arc::new(Barrier::new(callers + 1));
    let tasks: Vec<_> = (0..callers)
        .map(|task| {
            let (queue, function, payload) = (queue.clone(), function.clone(), payload.clone());
            let barrier = Arc::clone(&barrier);
            // Caller `task` does every `callers`-th event.
            let mine = (task..events).step_by(callers).count();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(mine);
                barrier.wait().await;
                for i in 0..mine {
                    let e = event(format!("{name}-{task}-{i}"), &function, &payload);
                    let start = Instant::now();
                    queue.enqueue(&e).await.expect("enqueue");
                    latencies.push(start.elapsed());
                }
                latencies
            })
        })
        .collect();
    barrier.wait().await;
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(events);
    for task in tasks {
        latencies.extend(task.await.expect("task"));
    }
    let elapsed = start.elapsed();
    let after = queue.write_stats();
    assert_eq!(latencies.len(), events);
    Run {
        name,
        callers,
        events,
        elapsed,
        latencies,
        commits: after.commits - before.commits,
        synced: after.synced_commits - before.synced_commits,
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (baseline_events, group_events) = if quick { (100, 4_000) } else { (500, 20_000) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    println!(
        "event queue: {PAYLOAD} B payloads, WAL + synchronous=FULL, in {} ({} CPUs)",
        dir.path().display(),
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    runtime.block_on(async {
        let baseline_db = SqliteEventQueue::open(&dir.path().join("baseline.db")).expect("open");
        let group_db = SqliteEventQueue::open(&dir.path().join("group.db")).expect("open");
        // Warm-up: create the WAL files and the statement caches.
        run("warm-up", &baseline_db, 1, 20).await;
        run("warm-up", &group_db, 8, 200).await;

        println!(
            "\n{:<24} {:>7} {:>7} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8}",
            "run",
            "callers",
            "events",
            "events/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "commits",
            "fsynced",
            "ev/commit"
        );
        run("baseline: fsync/event", &baseline_db, 1, baseline_events)
            .await
            .print();
        run("group commit", &group_db, 64, group_events)
            .await
            .print();
    });
}
