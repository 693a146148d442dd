//! Environments running curl-script bootstraps: invocation, reuse, logs, timeouts, crashes,
//! init failures, shutdown.

use std::sync::Arc;
use std::time::Duration;

use nimbus_core::sandbox::{Environment, InvocationOutcome, InvocationReport, Sandbox};
use nimbus_sandbox::sys::Isolation;

use crate::support::{
    self, code_dir, echo_bootstrap, invocation, isolation_tests, sh_bootstrap, sink, spec,
};

const TIMEOUT: Duration = Duration::from_secs(10);

async fn create(
    isolation: Isolation,
    script: &str,
    timeout: Duration,
) -> (Arc<dyn Environment>, tempfile::TempDir) {
    let dir = code_dir(script);
    let (_, logs) = sink();
    let env = support::sandbox(isolation)
        .create(spec(dir.path(), "provided.al2023", timeout), logs)
        .await
        .expect("create");
    (env, dir)
}

fn response(report: &InvocationReport) -> String {
    match &report.outcome {
        InvocationOutcome::Response { body, .. } => String::from_utf8_lossy(body).into_owned(),
        other => panic!("expected a response, got {other:?} (log: {})", report.log),
    }
}

fn platform_error(report: &InvocationReport) -> (String, String) {
    match &report.outcome {
        InvocationOutcome::PlatformError {
            error_type,
            message,
        } => (error_type.clone(), message.clone()),
        other => panic!(
            "expected a platform error, got {other:?} (log: {})",
            report.log
        ),
    }
}

async fn echoes_events_reuses_the_environment_and_attributes_output(isolation: Isolation) {
    let dir = code_dir(&echo_bootstrap());
    let (sink, logs) = sink();
    let spec = spec(dir.path(), "provided.al2023", TIMEOUT);
    let (group, stream) = (spec.log_group.clone(), spec.log_stream.clone());
    let env = support::sandbox(isolation)
        .create(spec, logs)
        .await
        .expect("create");
    for n in 1..=20 {
        let inv = invocation(&format!("{{\"n\":{n}}}"));
        let id = inv.request_id.clone();
        let report = env.invoke(inv).await;
        assert_eq!(response(&report), format!("{{\"n\":{n}}}"));
        assert!(report.reusable);
        assert_eq!(
            report.init_duration.is_some(),
            n == 1,
            "init duration on the first only"
        );
        let lines: Vec<&str> = report.log.lines().collect();
        assert_eq!(lines.len(), 4, "START, output, END, REPORT: {lines:?}");
        assert_eq!(lines[0], format!("START RequestId: {id} Version: $LATEST"));
        assert_eq!(
            lines[1],
            format!("invocation {n}"),
            "output attributed before END"
        );
        assert_eq!(lines[2], format!("END RequestId: {id}"));
        assert!(lines[3].starts_with(&format!("REPORT RequestId: {id}\tDuration: ")));
        assert!(lines[3].contains("\tMemory Size: 128 MB\tMax Memory Used: "));
        assert_eq!(
            lines[3].contains("\tInit Duration: "),
            n == 1,
            "{}",
            lines[3]
        );
        assert!(lines[3].ends_with(" ms\t") || lines[3].ends_with(" MB\t"));
        assert!(report.max_memory_used_mb > 0, "memory is measured");
    }
    assert_eq!(sink.streams(), vec![(group, stream)]);
    assert!(sink.lines().iter().any(|l| l == "invocation 20"));
    env.shutdown().await;
}

async fn only_the_function_environment_reaches_the_runtime(isolation: Isolation) {
    let script = sh_bootstrap("next\nrespond \"$(env | sort)\"\nsleep 60");
    let (env, dir) = create(isolation, &script, TIMEOUT).await;
    let report = env.invoke(invocation("{}")).await;
    let vars = response(&report);
    let names: Vec<&str> = vars.lines().filter_map(|l| l.split('=').next()).collect();
    assert!(vars.contains("AWS_LAMBDA_RUNTIME_API=127.0.0.1:"), "{vars}");
    assert!(vars.contains("AWS_LAMBDA_FUNCTION_NAME=test-fn"));
    assert!(vars.contains("PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin"));
    assert!(vars.contains("LANG=en_US.UTF-8"));
    assert!(vars.contains("TZ=:UTC"));
    if isolation == Isolation::None {
        let root = format!("LAMBDA_TASK_ROOT={}", dir.path().display());
        assert!(vars.contains(&root), "{vars}");
    }
    for leaked in ["HOME", "CARGO", "RUST_LOG", "NODE_EXTRA_CA_CERTS", "USER"] {
        assert!(
            !names.contains(&leaked),
            "{leaked} leaked from the host: {vars}"
        );
    }
    env.shutdown().await;
}

async fn a_timeout_kills_the_environment_and_says_so(isolation: Isolation) {
    let script = sh_bootstrap("next\necho \"working on $ID\"\nsleep 60");
    let (env, _dir) = create(isolation, &script, Duration::from_secs(1)).await;
    let inv = invocation("{}");
    let id = inv.request_id.clone();
    let report = env.invoke(inv).await;
    let (error_type, message) = platform_error(&report);
    assert_eq!(error_type, "Sandbox.Timedout");
    assert!(message.starts_with("Task timed out after 1.0"), "{message}");
    assert!(message.ends_with(" seconds"));
    assert!(!report.reusable);
    assert!(report.duration >= Duration::from_secs(1));
    let line = report
        .log
        .lines()
        .find(|l| l.contains("Task timed out after"))
        .expect("timeout line");
    // `2026-01-01T00:00:00.000Z <id> Task timed out after 1.00 seconds`
    let (timestamp, rest) = line.split_once(' ').expect("timestamp");
    assert_eq!(timestamp.len(), 24, "{timestamp}");
    assert!(timestamp.ends_with('Z'));
    assert_eq!(rest, format!("{id} {message}"));
    assert!(report.log.contains(&format!("working on {id}")));
    // The dead environment refuses further work.
    let again = env.invoke(invocation("{}")).await;
    assert!(!again.reusable);
    assert!(matches!(
        again.outcome,
        InvocationOutcome::PlatformError { .. }
    ));
}

async fn a_crash_during_an_invocation_is_an_exit_error(isolation: Isolation) {
    let script = sh_bootstrap("next\necho dying\nexit 3");
    let (env, _dir) = create(isolation, &script, TIMEOUT).await;
    let inv = invocation("{}");
    let id = inv.request_id.clone();
    let report = env.invoke(inv).await;
    let (error_type, message) = platform_error(&report);
    assert_eq!(error_type, "Runtime.ExitError");
    let expected = format!("RequestId: {id} Error: Runtime exited with error: exit status 3");
    assert_eq!(message, expected);
    assert!(!report.reusable);
    let lines: Vec<&str> = report.log.lines().collect();
    assert_eq!(
        lines[1..4],
        ["dying", expected.as_str(), "Runtime.ExitError"]
    );
}

async fn a_runtime_killed_by_a_signal_names_it(isolation: Isolation) {
    let script = sh_bootstrap("next\nkill -SEGV $$\nsleep 60");
    let (env, _dir) = create(isolation, &script, TIMEOUT).await;
    let (_, message) = platform_error(&env.invoke(invocation("{}")).await);
    assert!(
        message.ends_with("Runtime exited with error: signal: segmentation fault"),
        "{message}"
    );
}

async fn an_init_error_is_the_first_invocations_result(isolation: Isolation) {
    let script = sh_bootstrap(
        r#"echo "importing handler"
curl -sS -o /dev/null -X POST "$API/init/error" \
  -H 'Lambda-Runtime-Function-Error-Type: Runtime.ImportModuleError' \
  --data-binary '{"errorMessage":"Unable to import module","errorType":"Runtime.ImportModuleError"}'
exit 1"#,
    );
    let (env, _dir) = create(isolation, &script, TIMEOUT).await;
    let report = env.invoke(invocation("{}")).await;
    assert_eq!(
        report.outcome,
        InvocationOutcome::FunctionError {
            body: bytes::Bytes::from_static(
                br#"{"errorMessage":"Unable to import module","errorType":"Runtime.ImportModuleError"}"#
            ),
            error_type: "Runtime.ImportModuleError".to_owned(),
        }
    );
    assert!(!report.reusable);
    assert!(report.init_duration.is_some());
    assert!(
        report.log.contains("importing handler"),
        "init output is kept: {}",
        report.log
    );
}

async fn exiting_during_init_is_an_exit_error(isolation: Isolation) {
    for (code, reason) in [
        (2, "Runtime exited with error: exit status 2"),
        (0, "Runtime exited without providing a reason"),
    ] {
        let (env, _dir) = create(isolation, &format!("#!/bin/sh\nexit {code}\n"), TIMEOUT).await;
        let inv = invocation("{}");
        let id = inv.request_id.clone();
        let report = env.invoke(inv).await;
        let (error_type, message) = platform_error(&report);
        assert_eq!(error_type, "Runtime.ExitError");
        assert_eq!(message, format!("RequestId: {id} Error: {reason}"));
        assert!(!report.reusable);
    }
}

async fn a_slow_init_times_out(isolation: Isolation) {
    let dir = code_dir("#!/bin/sh\nsleep 60\n");
    let (_, logs) = sink();
    let sandbox = support::sandbox_with(isolation, |c| c.init_timeout = Duration::from_millis(300));
    let env = sandbox
        .create(spec(dir.path(), "provided", TIMEOUT), logs)
        .await
        .expect("create");
    let report = env.invoke(invocation("{}")).await;
    let (error_type, _) = platform_error(&report);
    assert_eq!(error_type, "Sandbox.Timedout");
    assert!(!report.reusable);
    env.shutdown().await;
}

async fn a_missing_or_unexecutable_bootstrap_is_an_invalid_entrypoint(isolation: Isolation) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, logs) = sink();
    let env = support::sandbox(isolation)
        .create(spec(dir.path(), "provided.al2", TIMEOUT), logs.clone())
        .await
        .expect("create");
    let report = env.invoke(invocation("{}")).await;
    let (error_type, message) = platform_error(&report);
    assert_eq!(error_type, "Runtime.InvalidEntrypoint");
    assert!(
        message.contains("Couldn't find valid bootstrap(s)"),
        "{message}"
    );
    assert!(!report.reusable);

    std::fs::write(dir.path().join("bootstrap"), "#!/bin/sh\n").expect("write");
    let env = support::sandbox(isolation)
        .create(spec(dir.path(), "provided.al2", TIMEOUT), logs.clone())
        .await
        .expect("create");
    let (error_type, message) = platform_error(&env.invoke(invocation("{}")).await);
    assert_eq!(error_type, "Runtime.InvalidEntrypoint");
    assert!(message.ends_with("permission denied"), "{message}");

    // Executable, but its interpreter line names nothing: execve itself fails.
    let dir = code_dir("#!/nonexistent/interpreter\n");
    let env = support::sandbox(isolation)
        .create(spec(dir.path(), "provided.al2", TIMEOUT), logs)
        .await
        .expect("create");
    let (error_type, message) = platform_error(&env.invoke(invocation("{}")).await);
    assert_eq!(error_type, "Runtime.InvalidEntrypoint");
    assert!(
        message.ends_with("fork/exec /var/task/bootstrap: no such file or directory"),
        "{message}"
    );
}

async fn function_errors_pass_through_and_keep_the_environment(isolation: Isolation) {
    let script = sh_bootstrap(
        r#"while true; do
  next
  fail '{"errorMessage":"bad input","errorType":"ValueError","stackTrace":[]}'
done"#,
    );
    let (env, _dir) = create(isolation, &script, TIMEOUT).await;
    for _ in 0..2 {
        let report = env.invoke(invocation("{}")).await;
        let InvocationOutcome::FunctionError { body, error_type } = &report.outcome else {
            panic!("expected a function error: {:?}", report.outcome);
        };
        assert_eq!(error_type, "ValueError");
        assert!(body.starts_with(br#"{"errorMessage":"bad input""#));
        assert!(report.reusable);
    }
    env.shutdown().await;
}

async fn an_oversized_response_is_refused(isolation: Isolation) {
    let script = sh_bootstrap(
        r#"while true; do
  next
  head -c 7000000 /dev/zero | tr '\0' a |
    curl -sS -o /dev/null -X POST "$API/invocation/$ID/response" --data-binary @-
done"#,
    );
    let (env, _dir) = create(isolation, &script, TIMEOUT).await;
    let report = env.invoke(invocation("{}")).await;
    let (error_type, message) = platform_error(&report);
    assert_eq!(error_type, "Function.ResponseSizeTooLarge");
    assert!(
        message.starts_with("Response payload size (7000000 bytes) exceeded"),
        "{message}"
    );
    assert!(
        !report.reusable,
        "a runtime whose response was refused is retired: clients differ in how they cope"
    );
    env.shutdown().await;
}

async fn shutdown_kills_the_runtime(isolation: Isolation) {
    let script = sh_bootstrap("while true; do next; respond \"$$\"; done");
    let (env, _dir) = create(isolation, &script, TIMEOUT).await;
    let pid = response(&env.invoke(invocation("{}")).await);
    // Inside a pid namespace `$$` is not the host's pid; check the host view without one.
    let host_view = isolation == Isolation::None;
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    assert!(!host_view || proc_dir.exists());
    env.shutdown().await;
    assert!(
        !host_view || !proc_dir.exists(),
        "runtime {pid} still running"
    );
    let after = env.invoke(invocation("{}")).await;
    assert!(!after.reusable);
}

async fn a_runtime_flooding_its_output_cannot_hold_up_the_platform(isolation: Isolation) {
    // A background child writes without pause; the runtime itself still answers.
    let script = sh_bootstrap("yes flood &\nwhile true; do next; respond \"$EVENT\"; done");
    let (env, _dir) = create(isolation, &script, TIMEOUT).await;
    for _ in 0..3 {
        let report = tokio::time::timeout(Duration::from_secs(10), env.invoke(invocation("{}")))
            .await
            .expect("the invocation ends despite the flood");
        assert_eq!(response(&report), "{}");
        assert!(report.log.len() <= 128 * 1024, "the kept log is bounded");
    }
    tokio::time::timeout(Duration::from_secs(10), env.shutdown())
        .await
        .expect("shutdown ends despite the flood");
}

async fn an_abandoned_invocation_stops_the_environment(isolation: Isolation) {
    let script = sh_bootstrap("while true; do next; sleep 5; respond \"$EVENT\"; done");
    let (env, _dir) = create(isolation, &script, TIMEOUT).await;
    let cut_short = tokio::time::timeout(Duration::from_millis(300), env.invoke(invocation("{}")));
    assert!(cut_short.await.is_err(), "the invocation was still running");
    let next = env.invoke(invocation("{}")).await;
    assert!(!next.reusable);
    assert!(matches!(
        next.outcome,
        InvocationOutcome::PlatformError { .. }
    ));
}

async fn twenty_environments_run_side_by_side(isolation: Isolation) {
    let mut handles = Vec::new();
    for i in 0..20 {
        handles.push(tokio::spawn(async move {
            let (env, _dir) = create(isolation, &echo_bootstrap(), TIMEOUT).await;
            for j in 0..3 {
                let payload = format!("{{\"env\":{i},\"n\":{j}}}");
                let report = env.invoke(invocation(&payload)).await;
                assert_eq!(response(&report), payload);
            }
            env.shutdown().await;
        }));
    }
    for handle in handles {
        handle.await.expect("environment task");
    }
}

isolation_tests!(
    echoes_events_reuses_the_environment_and_attributes_output,
    only_the_function_environment_reaches_the_runtime,
    a_timeout_kills_the_environment_and_says_so,
    a_crash_during_an_invocation_is_an_exit_error,
    a_runtime_killed_by_a_signal_names_it,
    an_init_error_is_the_first_invocations_result,
    exiting_during_init_is_an_exit_error,
    a_slow_init_times_out,
    a_missing_or_unexecutable_bootstrap_is_an_invalid_entrypoint,
    function_errors_pass_through_and_keep_the_environment,
    an_oversized_response_is_refused,
    shutdown_kills_the_runtime,
    a_runtime_flooding_its_output_cannot_hold_up_the_platform,
    an_abandoned_invocation_stops_the_environment,
    twenty_environments_run_side_by_side,
);
