//! A server per test, and the clients and packages tests use against it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_lambda::primitives::Blob;
use nimbus::server::{serve, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server over a data directory the test owns.
pub(crate) struct TestServer {
    pub(crate) endpoint: String,
    /// The HTTP gateway (function URLs and routes), `http://127.0.0.1:<port>`.
    pub(crate) gateway: String,
    pub(crate) gateway_port: u16,
    pub(crate) data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    /// Start a server over `data_dir`, listening on an ephemeral port: bind first, hand over the
    /// bound listener, so there is no window in which another process could take the port.
    pub(crate) async fn start_in(data_dir: &Path) -> Self {
        Self::start_configured(data_dir, |_| {}).await
    }

    /// [`start_in`](Self::start_in) with settings changed by `tweak`.
    pub(crate) async fn start_configured(
        data_dir: &Path,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        let gateway = std::net::TcpListener::bind("127.0.0.1:0").expect("bind gateway");
        let gateway_port = gateway.local_addr().expect("gateway address").port();
        let mut config =
            ServerConfig::new(data_dir.to_owned(), "us-east-1", "000000000000").expect("config");
        config.http_listener = Some(std::sync::Arc::new(gateway));
        tweak(&mut config);
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(serve(listener, config, async {
            let _ = stopped.await;
        }));
        let server = Self {
            endpoint: format!("http://{address}"),
            gateway: format!("http://127.0.0.1:{gateway_port}"),
            gateway_port,
            data_dir: data_dir.to_owned(),
            stop: Some(stop),
            handle,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let http = reqwest::Client::new();
        let url = format!("{}/2016-08-19/account-settings/", self.endpoint);
        for _ in 0..200 {
            if http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("server at {} did not become ready", self.endpoint);
    }

    /// Stop gracefully and wait until the server has released the data directory.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.handle)
            .await
            .expect("server task")
            .expect("server exits cleanly");
    }

    /// An SDK client pointed at this server, with retries off so errors surface at once.
    pub(crate) fn client(&self) -> aws_sdk_lambda::Client {
        sdk_client(&self.endpoint, "us-east-1")
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The official SDK's client for `endpoint` in `region`, signing with test credentials, with
/// retries off so errors surface at once.
pub(crate) fn sdk_client(endpoint: &str, region: &str) -> aws_sdk_lambda::Client {
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(
            "AKIDNIMBUSTEST",
            "secret",
            None,
            None,
            "test",
        ))
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_lambda::Client::from_conf(config)
}

/// A temporary directory with a server over `<dir>/data`.
pub(crate) struct Harness {
    pub(crate) root: tempfile::TempDir,
    pub(crate) server: TestServer,
}

impl Harness {
    pub(crate) async fn start() -> Self {
        Self::start_configured(|_| {}).await
    }

    /// A harness whose server settings are changed by `tweak`.
    pub(crate) async fn start_configured(tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let server = TestServer::start_configured(&root.path().join("data"), tweak).await;
        Self { root, server }
    }

    pub(crate) fn client(&self) -> aws_sdk_lambda::Client {
        self.server.client()
    }
}

/// A zip of `(path, contents, unix mode)` entries.
pub(crate) fn zip_of(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, contents, mode) in entries {
        let options = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
        writer.start_file(*name, options).expect("start entry");
        writer.write_all(contents).expect("write entry");
    }
    writer.finish().expect("finish zip").into_inner()
}

/// A small valid Python package.
pub(crate) fn python_zip() -> Vec<u8> {
    zip_of(&[(
        "app.py",
        b"def handler(event, context):\n    return event\n",
        0o644,
    )])
}

/// Create a Python function with defaults and return its configuration.
pub(crate) async fn create_python(
    client: &aws_sdk_lambda::Client,
    name: &str,
) -> aws_sdk_lambda::operation::create_function::CreateFunctionOutput {
    client
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .handler("app.handler")
        .role(ROLE)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(Blob::new(python_zip()))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e:?}"))
}

pub(crate) const ROLE: &str = "arn:aws:iam::000000000000:role/lambda-role";

/// Base64 SHA-256, as CodeSha256 reports it.
pub(crate) fn code_sha256(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

/// The error code and HTTP status of a failed SDK call.
pub(crate) fn error_of<E>(err: &aws_sdk_lambda::error::SdkError<E>) -> (String, u16)
where
    E: aws_sdk_lambda::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_lambda::error::ProvideErrorMetadata as _;
    let status = err.raw_response().map_or(0, |r| r.status().as_u16());
    (err.code().unwrap_or("<no code>").to_owned(), status)
}

/// Every file below `dir`, relative to it.
pub(crate) fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(dir).unwrap_or(&path).to_owned());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The error message of a failed SDK call.
pub(crate) fn message_of<E>(err: &aws_sdk_lambda::error::SdkError<E>) -> String
where
    E: aws_sdk_lambda::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_lambda::error::ProvideErrorMetadata as _;
    err.message().unwrap_or("<no message>").to_owned()
}
