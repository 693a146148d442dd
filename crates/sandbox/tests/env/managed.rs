//! The Python and Node.js runtime interface clients of `runtimes/`, when this host has their
//! interpreters (otherwise each test says so and passes).

use std::time::Duration;

use nimbus_core::runtime::Runtime;
use nimbus_core::sandbox::{InvocationOutcome, Sandbox};
use nimbus_sandbox::sys::Isolation;

use crate::support::{self, invocation, isolation_tests, sink, spec};

/// A world-readable code directory holding `files`.
fn code_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = support::code_dir("");
    std::fs::remove_file(dir.path().join("bootstrap")).expect("remove bootstrap");
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).expect("write code");
    }
    dir
}

/// Whether `runtime` can run here; prints why not.
fn available(isolation: Isolation, runtime: &str) -> bool {
    let runtime = Runtime::parse(runtime).expect("runtime");
    match support::sandbox(isolation).check_runtime(&runtime) {
        Ok(()) => true,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            false
        }
    }
}

async fn echo(isolation: Isolation, runtime: &str, files: &[(&str, &str)], expect_line: &str) {
    if !available(isolation, runtime) {
        return;
    }
    let dir = code_dir(files);
    let (_, logs) = sink();
    let env = support::sandbox(isolation)
        .create(spec(dir.path(), runtime, Duration::from_secs(10)), logs)
        .await
        .expect("create");
    for n in 0..3 {
        let payload = format!("{{\"n\":{n}}}");
        let report = env.invoke(invocation(&payload)).await;
        let InvocationOutcome::Response { body, .. } = &report.outcome else {
            panic!("{runtime}: {:?}\n{}", report.outcome, report.log);
        };
        let value: serde_json::Value = serde_json::from_slice(body).expect("json");
        assert_eq!(value["echo"]["n"], n, "{runtime}: {value}");
        assert!(report.reusable);
        assert_eq!(report.init_duration.is_some(), n == 0);
        let lines: Vec<&str> = report.log.lines().collect();
        let end = lines
            .iter()
            .position(|l| l.starts_with("END "))
            .expect("END");
        let printed = lines.iter().position(|l| l.contains(expect_line));
        assert!(
            printed.is_some_and(|i| i < end),
            "{runtime}: handler output attributed before END:\n{}",
            report.log
        );
    }
    env.shutdown().await;
}

async fn python_functions_run_on_the_python_ric(isolation: Isolation) {
    let code = "def handler(event, context):\n    print('python saw', event['n'])\n    \
                return {'echo': event, 'id': context.aws_request_id}\n";
    echo(isolation, "python3.12", &[("index.py", code)], "python saw").await;
}

async fn node_functions_run_on_the_node_ric(isolation: Isolation) {
    let code = "export const handler = async (event) => {\n  console.log('node saw', event.n);\n  \
                return { echo: event };\n};\n";
    echo(isolation, "nodejs20.x", &[("index.mjs", code)], "node saw").await;
}

async fn a_python_import_error_fails_the_first_invocation(isolation: Isolation) {
    if !available(isolation, "python3.12") {
        return;
    }
    let dir = code_dir(&[("index.py", "import does_not_exist\n")]);
    let (_, logs) = sink();
    let env = support::sandbox(isolation)
        .create(
            spec(dir.path(), "python3.12", Duration::from_secs(10)),
            logs,
        )
        .await
        .expect("create");
    let report = env.invoke(invocation("{}")).await;
    let InvocationOutcome::FunctionError { body, error_type } = &report.outcome else {
        panic!(
            "expected a function error: {:?}\n{}",
            report.outcome, report.log
        );
    };
    assert_eq!(error_type, "Runtime.ImportModuleError");
    assert!(String::from_utf8_lossy(body).contains("Unable to import module"));
    assert!(!report.reusable);
}

isolation_tests!(
    python_functions_run_on_the_python_ric,
    node_functions_run_on_the_node_ric,
    a_python_import_error_fails_the_first_invocation,
);
