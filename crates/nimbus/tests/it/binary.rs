//! The `nimbus server` binary as users run it: configured by `NIMBUS_*` variables, stopped by
//! signals, and killed mid-upload without losing or half-writing anything.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{create_python, error_of};

/// A `nimbus server` process and the address it announced.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) endpoint: String,
}

impl ServerProcess {
    pub(crate) fn spawn(data_dir: &Path, extra_env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_nimbus"));
        command
            .arg("server")
            .env("NIMBUS_LISTEN", "127.0.0.1:0")
            // Tests run side by side: the gateway takes an ephemeral port too.
            .env("NIMBUS_HTTP_LISTEN", "127.0.0.1:0")
            .env("NIMBUS_DATA_DIR", data_dir)
            .env("NIMBUS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn nimbus server");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let address = regex::Regex::new(r"address=(\S+)").expect("regex");
            let mut sent = false;
            // Keep draining after the announcement so the server never blocks on a full pipe;
            // before it, pass every line on so a failed start can be reported.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent {
                    match address.captures(&line) {
                        Some(m) => {
                            let _ = tx.send(Ok(m[1].to_owned()));
                            sent = true;
                        }
                        None => {
                            let _ = tx.send(Err(line));
                        }
                    }
                }
            }
        });
        let mut said = Vec::new();
        let address = loop {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(Ok(address)) => break address,
                Ok(Err(line)) => said.push(line),
                Err(e) => panic!("server did not announce its address ({e}); it said: {said:#?}"),
            }
        };
        Self {
            child,
            endpoint: format!("http://{address}"),
        }
    }

    pub(crate) fn client(&self) -> aws_sdk_lambda::Client {
        crate::support::sdk_client(&self.endpoint, "eu-west-1")
    }

    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    pub(crate) fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "server did not exit in {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn configured_by_environment_and_stopped_by_sigterm() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("state");
    let mut server = ServerProcess::spawn(
        &data,
        &[
            ("NIMBUS_REGION", "eu-west-1"),
            ("NIMBUS_ACCOUNT_ID", "123456789012"),
        ],
    );
    let created = create_python(&server.client(), "env-configured").await;
    assert_eq!(
        created.function_arn(),
        Some("arn:aws:lambda:eu-west-1:123456789012:function:env-configured")
    );
    assert!(data.join("nimbus.db").exists());
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");

    let mut server = ServerProcess::spawn(&data, &[("NIMBUS_ACCOUNT_ID", "123456789012")]);
    server.signal("INT");
    assert!(
        server.wait_exit(Duration::from_secs(10)).success(),
        "graceful exit on SIGINT"
    );
}

#[tokio::test]
async fn a_crash_mid_upload_leaves_no_trace() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("state");
    let mut server = ServerProcess::spawn(&data, &[]);
    create_python(&server.client(), "survivor").await;

    // Half of a 30 MB CreateFunction request, then the server dies.
    let address = server.endpoint.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&address).expect("connect");
    let total = 30 * 1024 * 1024;
    write!(
        stream,
        "POST /2015-03-31/functions HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {total}\r\n\r\n"
    )
    .expect("headers");
    let prefix = br#"{"FunctionName":"ghost","Runtime":"python3.12","Handler":"app.handler","Role":"arn:aws:iam::000000000000:role/r","Code":{"ZipFile":""#;
    stream.write_all(prefix).expect("prefix");
    stream
        .write_all(&vec![b'A'; total / 2])
        .expect("half the body");
    stream.flush().expect("flush");
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10));
    drop(stream);

    let server = ServerProcess::spawn(&data, &[]);
    let client = server.client();
    let listed = client.list_functions().send().await.expect("list");
    let names: Vec<_> = listed
        .functions()
        .iter()
        .filter_map(|f| f.function_name())
        .collect();
    assert_eq!(names, ["survivor"]);
    let err = client
        .get_function()
        .function_name("ghost")
        .send()
        .await
        .expect_err("no ghost");
    assert_eq!(error_of(&err).0, "ResourceNotFoundException");
    let leftovers: Vec<_> = std::fs::read_dir(data.join("blobs").join("tmp"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "temporary files survived: {leftovers:?}"
    );
}
