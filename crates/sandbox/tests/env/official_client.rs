//! A function built on the official Rust runtime client (`examples/echo_runtime.rs`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nimbus_core::sandbox::{InvocationOutcome, Sandbox};
use nimbus_sandbox::sys::Isolation;

use crate::support::{self, invocation, isolation_tests, sink, spec};

/// The example binary: built next to this test binary by `cargo test` and `cargo nextest`
/// (both build examples); otherwise built here, asking cargo where it put it.
fn echo_runtime() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        // target/<profile>/deps/<test> → target/<profile>/examples/echo_runtime
        if let Some(profile_dir) = exe.parent().and_then(Path::parent) {
            let candidate = profile_dir.join("examples").join("echo_runtime");
            if candidate.is_file() {
                return candidate;
            }
        }
        let output = Command::new(env!("CARGO"))
            .args(["build", "-p", "nimbus-sandbox", "--example", "echo_runtime"])
            .arg("--message-format=json")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run cargo build");
        assert!(output.status.success(), "building echo_runtime failed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|msg| msg["target"]["name"] == "echo_runtime")
            .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported the echo_runtime executable")
    })
}

/// A code directory whose `bootstrap` is the example binary, hard-linked rather than copied:
/// a copy's write descriptor, inherited by a child that another test is spawning at that
/// moment, would make executing it fail with ETXTBSY until that child execs.
fn code_dir() -> tempfile::TempDir {
    let binary = echo_runtime();
    let dir = binary
        .parent()
        .and_then(|examples| tempfile::tempdir_in(examples).ok())
        .expect("temp dir beside the binary");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::hard_link(binary, dir.path().join("bootstrap")).expect("link bootstrap");
    dir
}

async fn the_official_rust_client_runs_unchanged(isolation: Isolation) {
    let dir = code_dir();
    let (_, logs) = sink();
    let env = support::sandbox(isolation)
        .create(
            spec(dir.path(), "provided.al2023", Duration::from_secs(10)),
            logs,
        )
        .await
        .expect("create");

    let inv = invocation(r#"{"hello":"world"}"#);
    let id = inv.request_id.clone();
    let report = env.invoke(inv).await;
    let InvocationOutcome::Response { body, .. } = &report.outcome else {
        panic!(
            "expected a response: {:?} (log: {})",
            report.outcome, report.log
        );
    };
    assert_eq!(&body[..], br#"{"hello":"world"}"#);
    assert!(
        report.log.contains(&format!("handling {id}")),
        "{}",
        report.log
    );
    assert!(report.init_duration.is_some());

    let report = env.invoke(invocation(r#"{"fail":"please"}"#)).await;
    let InvocationOutcome::FunctionError { body, .. } = &report.outcome else {
        panic!("expected a function error: {:?}", report.outcome);
    };
    let error: serde_json::Value = serde_json::from_slice(body).expect("error json");
    assert!(error["errorMessage"]
        .as_str()
        .unwrap_or_default()
        .contains("asked to fail"));
    assert!(report.reusable, "a function error keeps the environment");

    // Warm invocations through the whole environment (reported, not asserted: debug builds
    // and shared CI machines make absolute numbers meaningless here). For a measurement:
    // `NIMBUS_WARM_SAMPLES=3000 cargo test --release -p nimbus-sandbox --test env official
    // -- --nocapture`.
    let count: usize = std::env::var("NIMBUS_WARM_SAMPLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let mut samples = Vec::new();
    for _ in 0..count {
        let started = Instant::now();
        let report = env.invoke(invocation("{}")).await;
        samples.push(started.elapsed());
        assert!(matches!(report.outcome, InvocationOutcome::Response { .. }));
    }
    samples.sort();
    eprintln!(
        "warm invoke via lambda_runtime: p50 {:?}, p99 {:?}",
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100]
    );
    env.shutdown().await;
}

isolation_tests!(the_official_rust_client_runs_unchanged);
