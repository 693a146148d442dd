//! The `nimbus` CLI against a real server: deploy a folder, update it, list, get, delete.

use std::process::Command;

use crate::support::Harness;

/// Run the CLI against `endpoint`; returns (success, stdout, stderr).
pub(crate) fn nimbus(endpoint: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_nimbus"))
        .args(args)
        .env("NIMBUS_ENDPOINT", endpoint)
        .env_remove("NIMBUS_OUTPUT")
        .output()
        .expect("run nimbus");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub(crate) fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test]
async fn deploy_list_get_delete() {
    let h = Harness::start().await;
    let endpoint = h.server.endpoint.clone();
    let app = h.root.path().join("app");
    std::fs::create_dir_all(app.join("lib")).expect("mkdir");
    std::fs::write(app.join("app.py"), "def handler(e, c):\n    return 1\n").expect("write");
    std::fs::write(app.join("lib/util.py"), "X = 1\n").expect("write");
    let app = app.to_str().expect("utf-8 path").to_owned();

    let deploy = {
        let (endpoint, app) = (endpoint.clone(), app.clone());
        move |extra: &'static [&'static str]| {
            let (endpoint, app) = (endpoint.clone(), app.clone());
            async move {
                tokio::task::spawn_blocking(move || {
                    let mut args = vec![
                        "deploy",
                        app.as_str(),
                        "--name",
                        "cli-fn",
                        "--output",
                        "json",
                    ];
                    args.extend_from_slice(extra);
                    nimbus(&endpoint, &args)
                })
                .await
                .expect("join")
            }
        }
    };

    let (ok, out, err) = deploy(&[
        "--runtime",
        "python3.12",
        "--handler",
        "app.handler",
        "--memory",
        "256",
        "--env",
        "STAGE=dev",
    ])
    .await;
    assert!(ok, "first deploy creates: {err}");
    let created = json(&out);
    assert_eq!(created["FunctionName"], "cli-fn");
    assert_eq!(created["MemorySize"], 256);
    assert_eq!(created["Environment"]["Variables"]["STAGE"], "dev");

    // The same folder again: same package, same digest; a new setting is applied.
    let (ok, out, err) = deploy(&["--timeout", "20"]).await;
    assert!(ok, "second deploy updates: {err}");
    let updated = json(&out);
    assert_eq!(
        updated["CodeSha256"], created["CodeSha256"],
        "zipping is reproducible"
    );
    assert_eq!(updated["Timeout"], 20);
    assert_eq!(updated["MemorySize"], 256);

    let via_sdk = h
        .client()
        .get_function_configuration()
        .function_name("cli-fn")
        .send()
        .await
        .expect("the SDK sees what the CLI deployed");
    assert_eq!(via_sdk.timeout(), Some(20));

    let e = endpoint.clone();
    let (ok, out, _) =
        tokio::task::spawn_blocking(move || nimbus(&e, &["functions", "list", "--output", "json"]))
            .await
            .expect("join");
    assert!(ok);
    assert_eq!(json(&out)["Functions"][0]["FunctionName"], "cli-fn");

    let e = endpoint.clone();
    let (ok, out, _) = tokio::task::spawn_blocking(move || nimbus(&e, &["functions", "list"]))
        .await
        .expect("join");
    assert!(ok);
    let header = out.lines().next().unwrap_or_default();
    assert!(
        header.contains("NAME") && header.contains("RUNTIME"),
        "{out}"
    );
    assert!(
        out.contains("cli-fn") && out.contains("python3.12"),
        "{out}"
    );
    assert!(
        !out.contains('\u{1b}'),
        "no colours when stdout is not a terminal"
    );

    let e = endpoint.clone();
    let (ok, out, _) =
        tokio::task::spawn_blocking(move || nimbus(&e, &["functions", "get", "cli-fn"]))
            .await
            .expect("join");
    assert!(ok);
    assert!(out.contains("app.handler"), "{out}");

    let e = endpoint.clone();
    let (ok, _, _) =
        tokio::task::spawn_blocking(move || nimbus(&e, &["functions", "delete", "cli-fn"]))
            .await
            .expect("join");
    assert!(ok);
    let e = endpoint.clone();
    let (ok, _, err) =
        tokio::task::spawn_blocking(move || nimbus(&e, &["functions", "get", "cli-fn"]))
            .await
            .expect("join");
    assert!(!ok);
    assert!(err.contains("ResourceNotFoundException"), "{err}");
}

#[tokio::test]
async fn deploy_reports_server_validation_errors() {
    let h = Harness::start().await;
    let dir = h.root.path().join("code");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("app.py"), "x = 1\n").expect("write");
    let endpoint = h.server.endpoint.clone();
    let dir = dir.to_str().expect("utf-8").to_owned();
    let (ok, _, err) = tokio::task::spawn_blocking(move || {
        nimbus(
            &endpoint,
            &[
                "deploy",
                &dir,
                "--name",
                "v",
                "--runtime",
                "python3.12",
                "--handler",
                "app.handler",
                "--memory",
                "64",
            ],
        )
    })
    .await
    .expect("join");
    assert!(!ok);
    assert!(err.contains("ValidationException"), "{err}");
}

#[test]
fn a_missing_server_is_reported_plainly() {
    let (ok, _, err) = nimbus("http://127.0.0.1:9", &["functions", "list"]);
    assert!(!ok);
    assert!(err.contains("nimbus server"), "{err}");
}

#[tokio::test]
async fn invoke_and_logs() {
    let h = Harness::start().await;
    let app = h.root.path().join("hello");
    std::fs::create_dir_all(&app).expect("mkdir");
    std::fs::write(
        app.join("app.py"),
        "def handler(event, context):\n    print('greeting', event['name'])\n    return {'hello': event['name']}\n",
    )
    .expect("write");
    let endpoint = h.server.endpoint.clone();
    let app = app.to_str().expect("utf-8").to_owned();
    let run = move |args: Vec<String>| {
        let endpoint = endpoint.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            nimbus(&endpoint, &args)
        })
    };
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let (ok, _, err) = run(args(&[
        "deploy",
        &app,
        "--name",
        "hello",
        "--runtime",
        "python3.12",
        "--handler",
        "app.handler",
    ]))
    .await
    .expect("join");
    assert!(ok, "{err}");
    let (ok, out, err) = run(args(&[
        "invoke",
        "hello",
        "--payload",
        r#"{"name":"nimbus"}"#,
        "--log",
    ]))
    .await
    .expect("join");
    assert!(ok, "{err}");
    assert_eq!(json(&out)["hello"], "nimbus");
    assert!(
        err.contains("START RequestId:") && err.contains("greeting nimbus"),
        "{err}"
    );

    // Log lines reach the store asynchronously (the group exists from its first line on, as on
    // CloudWatch); give the writer a moment.
    let mut logs = String::new();
    for _ in 0..50 {
        let (ok, out, err) = run(args(&["logs", "hello"])).await.expect("join");
        assert!(ok || err.contains("log group does not exist"), "{err}");
        logs = out;
        if logs.contains("REPORT RequestId:") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for expected in [
        "START RequestId:",
        "greeting nimbus",
        "END RequestId:",
        "REPORT RequestId:",
        "Max Memory Used:",
    ] {
        assert!(logs.contains(expected), "{expected} missing from:\n{logs}");
    }

    let (ok, _, err) = run(args(&["invoke", "hello", "--payload", "not json"]))
        .await
        .expect("join");
    assert!(!ok);
    assert!(err.contains("JSON"), "{err}");
}
