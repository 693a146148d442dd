//! Escape attempts: a function must not see another function's code or events, the platform's
//! data directory, host processes or the Nimbus API, and must stay within its memory.

use aws_sdk_lambda::types::Runtime;

use crate::invoke::{deploy, deploy_with, invoke};
use crate::support::Harness;

const PROBE: &[u8] = b"import os, socket, json

def can_read(path):
    try:
        os.listdir(path) if os.path.isdir(path) else open(path, 'rb').read(1)
        return True
    except OSError:
        return False

def can_connect(port):
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.connect(('127.0.0.1', port))
        return True
    except OSError:
        return False
    finally:
        s.close()

def handler(event, context):
    own = os.environ['AWS_LAMBDA_RUNTIME_API']
    return {
        'uid': os.getuid(),
        'own_task': sorted(os.listdir('/var/task')),
        'task_writable': os.access('/var/task', os.W_OK),
        'data_dir': can_read(event['data_dir']),
        'other_code': can_read(event['other_code']),
        'host_root_home': can_read('/root'),
        'pids': sorted(int(p) for p in os.listdir('/proc') if p.isdigit()),
        'nimbus_api': can_connect(event['api_port']),
        'runtime_api': own,
        'tmp_writable': os.access('/tmp', os.W_OK),
    }
";

#[tokio::test]
async fn functions_cannot_see_each_other_or_the_platform() {
    let h = Harness::start().await;
    deploy(
        &h,
        "probe",
        Runtime::Python312,
        "app.handler",
        &[("app.py", PROBE, 0o644)],
    )
    .await;
    deploy(
        &h,
        "victim",
        Runtime::Python312,
        "secret.handler",
        &[(
            "secret.py",
            b"TOKEN = 'hunter2'\ndef handler(e, c):\n    return TOKEN\n",
            0o644,
        )],
    )
    .await;
    let (token, error, _) = invoke(&h, "victim", "{}").await;
    assert_eq!((token.as_str(), error), (Some("hunter2"), None));

    let data_dir = h.server.data_dir.to_string_lossy().into_owned();
    let code_root = h.server.data_dir.join("code");
    let victim_code = std::fs::read_dir(&code_root)
        .expect("code cache")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("secret.py").exists())
        .expect("the victim's unpacked code");
    let port = h
        .server
        .endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .expect("port");
    let event = serde_json::json!({
        "data_dir": data_dir,
        "other_code": victim_code.join("secret.py"),
        "api_port": port,
    });
    let (seen, error, _) = invoke(&h, "probe", &event.to_string()).await;
    assert_eq!(error, None, "{seen}");
    assert_ne!(seen["uid"], 0, "functions do not run as root");
    assert_eq!(
        seen["own_task"],
        serde_json::json!(["app.py"]),
        "only its own code"
    );
    assert_eq!(seen["task_writable"], false, "/var/task is read-only");
    assert_eq!(seen["tmp_writable"], true);
    assert_eq!(seen["data_dir"], false, "the data directory is invisible");
    assert_eq!(
        seen["other_code"], false,
        "another function's code is invisible"
    );
    assert_eq!(seen["host_root_home"], false);
    assert_eq!(
        seen["nimbus_api"], false,
        "the platform API is out of reach"
    );
    assert_eq!(
        seen["runtime_api"], "127.0.0.1:9001",
        "each environment has its own"
    );
    let pids = seen["pids"].as_array().map_or(0, Vec::len);
    assert!(pids <= 4, "host processes are invisible: {seen}");
}

#[tokio::test]
async fn running_out_of_memory_is_reported_and_recovered() {
    let h = Harness::start().await;
    deploy_with(
        &h,
        "hog",
        Runtime::Python312,
        "app.handler",
        &[(
            "app.py",
            b"def handler(event, context):\n    if event.get('hog'):\n        blocks = [bytearray(1024 * 1024) for _ in range(400)]\n        return len(blocks)\n    return 'ok'\n",
            0o644,
        )],
        |b| b.memory_size(128),
    )
    .await;
    let (body, error, log) = invoke(&h, "hog", r#"{"hog": true}"#).await;
    assert_eq!(error.as_deref(), Some("Unhandled"));
    assert_eq!(body["errorType"], "Runtime.OutOfMemory", "{body}");
    assert!(
        log.contains("Max Memory Used: 12"),
        "peak near the limit: {log}"
    );
    let (body, error, _) = invoke(&h, "hog", "{}").await;
    assert_eq!(
        (body.as_str(), error),
        (Some("ok"), None),
        "a fresh environment serves the next call"
    );
}
