//! `nimbus server`: opens the stores under the data directory, wires the API to them and serves
//! until SIGINT or SIGTERM, finishing the requests in flight.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use nimbus_api::{AllowAll, ApiState, CodeUrlSigner};
use nimbus_core::invoke::Invoke;
use nimbus_core::queue::EventQueue;
use nimbus_core::schedule::ScheduleStore;
use nimbus_core::{AccountContext, BlobStore, MetadataStore};
use nimbus_sandbox::sys::{CpuPolicy, Isolation};
use nimbus_sandbox::{LinuxSandbox, LinuxSandboxConfig};
use nimbus_scheduler::log_sink::StoreLogSink;
use nimbus_scheduler::{AsyncSettings, Limits, Scheduler, SchedulerConfig};
use nimbus_store::{
    FsBlobStore, SqliteEventQueue, SqliteLogStore, SqliteMetadataStore, SqliteScheduleStore,
};
use nimbus_triggers::{RunnerSettings, ScheduleRunner, SystemClock};
use tokio::net::TcpListener;

/// Blobs younger than this are never collected, so a package being uploaded right now (stored,
/// its function not yet committed) is safe from the collector.
const BLOB_GRACE: Duration = Duration::from_secs(3600);

/// Options of `nimbus server`; each also reads a `NIMBUS_*` environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Address of the Lambda API.
    #[arg(long, env = "NIMBUS_LISTEN", default_value = "127.0.0.1:9001")]
    pub listen: SocketAddr,
    /// Address of the HTTP gateway: function URLs (`http://<id>.lambda-url.<region>.localhost:<port>/`)
    /// and HTTP routes.
    #[arg(long, env = "NIMBUS_HTTP_LISTEN", default_value = "127.0.0.1:9002")]
    pub http_listen: SocketAddr,
    /// Directory holding all state: the metadata database and code packages.
    #[arg(long, env = "NIMBUS_DATA_DIR", default_value = "./.nimbus")]
    pub data_dir: PathBuf,
    /// Region reported in ARNs.
    #[arg(long, env = "NIMBUS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Twelve-digit account id reported in ARNs.
    #[arg(long, env = "NIMBUS_ACCOUNT_ID", default_value = "000000000000")]
    pub account_id: String,
    /// Log filter, e.g. `info` or `nimbus=debug,nimbus::access=warn`.
    #[arg(long, env = "NIMBUS_LOG", default_value = "info")]
    pub log: String,
    /// How environments are confined: `namespaces` (Linux namespaces, cgroup limits, a private
    /// Runtime API per environment) or `none` (plain processes, for hosts without namespaces).
    #[arg(
        long,
        env = "NIMBUS_ISOLATION",
        value_enum,
        default_value = "namespaces"
    )]
    pub isolation: IsolationArg,
    /// CPU sharing: `weight` (a share proportional to memory; idle CPU stays usable) or
    /// `quota` (a hard cap proportional to memory, as Lambda enforces).
    #[arg(long, env = "NIMBUS_CPU", value_enum, default_value = "weight")]
    pub cpu: CpuArg,
    /// Leave the host's cgroup options as they are. By default, on a cgroup v1 host, Nimbus
    /// sets the kernel's `favordynmods` option, which takes about 7 ms off every cold start.
    #[arg(long, env = "NIMBUS_KEEP_CGROUP_SETTINGS")]
    pub keep_cgroup_settings: bool,
    /// Interpreter serving a runtime, as NAME=PATH; NAME is a runtime (`python3.12`) or a family
    /// (`python`, `nodejs`). Defaults: /usr/bin/python3 and /usr/bin/node. Repeatable.
    #[arg(
        long = "interpreter",
        env = "NIMBUS_INTERPRETERS",
        value_delimiter = ',',
        value_name = "NAME=PATH"
    )]
    pub interpreters: Vec<String>,
    /// The account's concurrency limit: invocations in flight across all functions. Reserved
    /// concurrency is carved out of it; at least 100 always stay unreserved.
    #[arg(long, env = "NIMBUS_MAX_CONCURRENCY", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(100..))]
    pub max_concurrency: u32,
    /// How long an idle environment is kept warm before it is shut down, e.g. `10m`, `90s`.
    #[arg(long, env = "NIMBUS_IDLE_TIMEOUT", default_value = "10m", value_parser = parse_duration)]
    pub idle_timeout: Duration,
}

/// `90s`, `10m`, `1h`, `250ms` or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 10m or 1h"))?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(number)),
        "" | "s" => number,
        "m" => number.saturating_mul(60),
        "h" => number.saturating_mul(3600),
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use ms, s, m or h)"
            ))
        }
    };
    Ok(Duration::from_secs(seconds))
}

/// `--isolation` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IsolationArg {
    /// Linux namespaces and cgroups.
    Namespaces,
    /// Plain processes.
    None,
}

/// `--cpu` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CpuArg {
    /// Proportional weight.
    Weight,
    /// Proportional hard quota.
    Quota,
}

/// Validated server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// State directory.
    pub data_dir: PathBuf,
    /// Region and account of every resource.
    pub account: AccountContext,
    /// How environments are confined.
    pub isolation: Isolation,
    /// How CPU is shared.
    pub cpu: CpuPolicy,
    /// Interpreter per runtime name or family.
    pub interpreters: std::collections::BTreeMap<String, PathBuf>,
    /// Where environments keep their private files (`/tmp`, the generated `/etc`); set once per
    /// process. `None` leaves the sandbox's default under the system temp directory.
    pub sandbox_state_dir: Option<PathBuf>,
    /// Let the sandbox set the host's `favordynmods` cgroup option (applies with
    /// `sandbox_state_dir`).
    pub favor_cgroup_changes: bool,
    /// Concurrency and idle-environment limits.
    pub limits: Limits,
    /// Retry timing and parallelism of async invocation.
    pub async_settings: AsyncSettings,
    /// Where the HTTP gateway (function URLs, routes) listens; port 0 picks a free port.
    pub http_listen: SocketAddr,
    /// A listener already bound for the gateway (tests bind an ephemeral port first); when set,
    /// it is used instead of binding `http_listen`.
    pub http_listener: Option<Arc<std::net::TcpListener>>,
}

impl ServerConfig {
    /// Check the settings that flags and variables can get wrong.
    pub fn new(data_dir: PathBuf, region: &str, account_id: &str) -> anyhow::Result<Self> {
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            bail!("account id must be twelve digits, got {account_id:?}");
        }
        let region_ok = !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            bail!("region must look like us-east-1, got {region:?}");
        }
        Ok(Self {
            data_dir,
            account: AccountContext {
                region: region.to_owned(),
                account_id: account_id.to_owned(),
            },
            isolation: Isolation::Namespaces,
            cpu: CpuPolicy::Weight,
            interpreters: Default::default(),
            sandbox_state_dir: None,
            favor_cgroup_changes: true,
            limits: Limits::default(),
            async_settings: AsyncSettings::default(),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_listener: None,
        })
    }

    /// Apply `--interpreter NAME=PATH` flags.
    pub fn with_interpreters(mut self, flags: &[String]) -> anyhow::Result<Self> {
        for flag in flags {
            let Some((name, path)) = flag.split_once('=') else {
                bail!("--interpreter {flag:?}: expected NAME=PATH, e.g. python3.12=/usr/bin/python3.12");
            };
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                bail!("--interpreter {flag:?}: the path must be absolute");
            }
            self.interpreters.insert(name.to_owned(), path);
        }
        Ok(self)
    }
}

/// Run `nimbus server` with its parsed flags.
pub async fn run_from_args(args: ServerArgs) -> anyhow::Result<()> {
    init_tracing(&args.log)?;
    let mut config = ServerConfig::new(args.data_dir, &args.region, &args.account_id)?
        .with_interpreters(&args.interpreters)?;
    config.isolation = match args.isolation {
        IsolationArg::Namespaces => Isolation::Namespaces,
        IsolationArg::None => Isolation::None,
    };
    config.cpu = match args.cpu {
        CpuArg::Weight => CpuPolicy::Weight,
        CpuArg::Quota => CpuPolicy::Quota,
    };
    config.sandbox_state_dir = Some(config.data_dir.join("sandbox"));
    config.favor_cgroup_changes = !args.keep_cgroup_settings;
    config.limits.max_concurrency = args.max_concurrency;
    config.limits.idle_timeout = args.idle_timeout;
    config.http_listen = args.http_listen;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    let shutdown = shutdown_signal()?;
    serve(listener, config, shutdown).await
}

fn init_tracing(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("parse log filter {filter:?}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init()
        .map_err(|err| anyhow::anyhow!("install the log subscriber: {err}"))
}

/// Serve the platform on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let gateway_listener = bind_gateway(&config).await?;
    let gateway_address = gateway_listener
        .local_addr()
        .context("read the gateway's listening address")?;
    let mut platform = Platform::open(&config).await?;
    platform.state.gateway_host = format!("localhost:{}", gateway_address.port()).into();
    let address = listener
        .local_addr()
        .context("read the listening address")?;
    tracing::info!(%address, data_dir = %config.data_dir.display(), "nimbus is serving the Lambda API");
    tracing::info!(address = %gateway_address, "nimbus is serving function URLs and HTTP routes");
    // One shutdown signal, seen by both listeners.
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = shutdown_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let gateway =
        nimbus_api::gateway::server::gateway_router(nimbus_api::gateway::server::GatewayState {
            meta: Arc::clone(&platform.state.meta),
            invoker: Arc::clone(&platform.state.invoker),
            account: config.account.clone(),
            routes: platform.state.routes.clone(),
        });
    let gateway_shutdown = stopped(shutdown_rx.clone());
    let gateway_task = tokio::spawn(async move {
        axum::serve(
            gateway_listener,
            gateway.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(gateway_shutdown)
        .await
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let collector = tokio::spawn(collect_blobs_periodically(
        platform.state.meta.clone(),
        platform.state.blobs.clone(),
        stop_rx,
    ));
    let housekeeping = tokio::spawn(Arc::clone(&platform.scheduler).housekeeping());
    let dispatcher = tokio::spawn(Arc::clone(&platform.scheduler).dispatch());
    let runner_task = tokio::spawn({
        let runner = Arc::clone(&platform.runner);
        async move { runner.run().await }
    });
    let schedules_api = nimbus_api::schedules::SchedulesApi::new(
        Arc::clone(&platform.schedules),
        config.account.clone(),
        {
            let runner = Arc::clone(&platform.runner);
            move || runner.reload()
        },
    );
    // The EventBridge Scheduler API shares the door (request ids, auth) of the Lambda API.
    let app = nimbus_api::router(platform.state.clone()).merge(
        nimbus_api::schedules::router(schedules_api).layer(axum::middleware::from_fn_with_state(
            platform.state.auth.clone(),
            nimbus_api::middleware::aws_request,
        )),
    );
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(stopped(shutdown_rx))
        .await
        .context("serve HTTP");
    let gateway_result = match gateway_task.await {
        Ok(result) => result.context("serve the HTTP gateway"),
        Err(err) => Err(anyhow::anyhow!("the HTTP gateway task failed: {err}")),
    };
    let result = result.and(gateway_result);
    let _ = stop_tx.send(true);
    let _ = collector.await;
    platform.runner.stop();
    let _ = runner_task.await;
    housekeeping.abort();
    dispatcher.abort();
    let Platform {
        state,
        scheduler,
        schedules,
        runner,
        log_writer,
        _lock,
    } = platform;
    scheduler.shutdown().await;
    // Dropping the last handles on the log sink lets its writer drain the queue and finish
    // (the schedule runner holds the scheduler too); the bound keeps a leaked handle from
    // holding up the exit.
    drop((runner, schedules));
    drop(scheduler);
    drop(state);
    let _ = tokio::time::timeout(Duration::from_secs(5), log_writer).await;
    tracing::info!("nimbus stopped");
    result
}

/// The gateway's listener: the one handed over in the config, or `http_listen` bound now.
async fn bind_gateway(config: &ServerConfig) -> anyhow::Result<TcpListener> {
    if let Some(listener) = &config.http_listener {
        let listener = listener
            .try_clone()
            .context("take over the gateway listener")?;
        listener
            .set_nonblocking(true)
            .context("make the gateway listener non-blocking")?;
        return TcpListener::from_std(listener).context("register the gateway listener");
    }
    TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("listen on {} (--http-listen)", config.http_listen))
}

/// The opened stores and engine, and the lock that keeps a second server off the same data
/// directory.
struct Platform {
    state: ApiState,
    scheduler: Arc<Scheduler>,
    schedules: Arc<dyn ScheduleStore>,
    runner: Arc<ScheduleRunner>,
    log_writer: tokio::task::JoinHandle<()>,
    _lock: std::fs::File,
}

impl Platform {
    async fn open(config: &ServerConfig) -> anyhow::Result<Self> {
        let dir = &config.data_dir;
        create_private_dir(dir)
            .with_context(|| format!("create data directory {}", dir.display()))?;
        let lock = lock_data_dir(dir)?;
        let meta = SqliteMetadataStore::open(&dir.join("nimbus.db"))
            .with_context(|| format!("open metadata database in {}", dir.display()))?;
        let blobs: Arc<dyn BlobStore> = Arc::new(
            FsBlobStore::open(&dir.join("blobs"))
                .with_context(|| format!("open blob directory in {}", dir.display()))?,
        );
        let meta: Arc<dyn MetadataStore> = Arc::new(meta);
        let logs = Arc::new(
            SqliteLogStore::open(&dir.join("logs.db"))
                .with_context(|| format!("open log database in {}", dir.display()))?,
        );
        let events: Arc<dyn EventQueue> = Arc::new(
            SqliteEventQueue::open(&dir.join("events.db"))
                .with_context(|| format!("open the async event queue in {}", dir.display()))?,
        );
        if let Some(state_dir) = &config.sandbox_state_dir {
            let sandbox = nimbus_sandbox::sys::SandboxConfig {
                state_dir: state_dir.clone(),
                favor_cgroup_changes: config.favor_cgroup_changes,
                ..Default::default()
            };
            nimbus_sandbox::sys::configure(sandbox).context("configure the sandbox")?;
        }
        if config.isolation == Isolation::Namespaces {
            tracing::info!(protections = %nimbus_sandbox::sys::capabilities(), "environment isolation");
        }
        let runtimes_dir = dir.join("runtimes");
        let python = config
            .interpreters
            .get("python")
            .cloned()
            .unwrap_or_else(|| PathBuf::from(nimbus_sandbox::DEFAULT_PYTHON));
        crate::runtimes::install(&runtimes_dir, Some(&python))
            .context("install the runtime clients")?;
        let mut sandbox_config = LinuxSandboxConfig::new(runtimes_dir);
        sandbox_config.isolation = config.isolation;
        sandbox_config.cpu = config.cpu;
        sandbox_config.interpreters = config.interpreters.clone();
        let sandbox = Arc::new(LinuxSandbox::new(sandbox_config));
        let (sink, log_writer) = StoreLogSink::start(logs.clone());
        let scheduler = Arc::new(
            Scheduler::new(
                SchedulerConfig {
                    code_root: dir.join("code"),
                    account: config.account.clone(),
                    limits: config.limits,
                },
                Arc::clone(&meta),
                Arc::clone(&blobs),
                sandbox,
                sink,
            )
            .context("open the code cache")?
            .with_event_queue(Arc::clone(&events), config.async_settings),
        );
        let schedules: Arc<dyn ScheduleStore> = Arc::new(
            SqliteScheduleStore::open(&dir.join("schedules.db"))
                .with_context(|| format!("open the schedules database in {}", dir.display()))?,
        );
        let runner = Arc::new(ScheduleRunner::new(
            Arc::clone(&schedules),
            scheduler.clone() as Arc<dyn Invoke>,
            Arc::new(SystemClock),
            config.account.clone(),
            RunnerSettings::default(),
        ));
        Ok(Self {
            schedules,
            runner,
            state: ApiState {
                meta,
                blobs,
                account: Arc::new(config.account.clone()),
                code_urls: CodeUrlSigner::random(),
                auth: Arc::new(AllowAll),
                invoker: scheduler.clone(),
                logs,
                concurrency_limit: config.limits.max_concurrency,
                events,
                gateway_host: format!("localhost:{}", config.http_listen.port()).into(),
                routes: nimbus_api::gateway::server::RouteCache::default(),
            },
            scheduler,
            log_writer,
            _lock: lock,
        })
    }
}

/// The data directory holds every tenant's code: only the server's user may enter it.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// How long start-up waits for the data directory's lock.
const LOCK_PATIENCE: Duration = Duration::from_secs(5);

fn lock_data_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    // Right after a crash the lock can still be held for a moment: the dead server's children
    // share its open file until they exec or die. A restart waits that out.
    let deadline = std::time::Instant::now() + LOCK_PATIENCE;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "another nimbus server is using {}; stop it or choose another --data-dir",
                dir.display()
            ),
            Err(std::fs::TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("lock {}", path.display()))
            }
        }
    }
}

/// Delete code packages no function refers to any more (replaced or deleted code, uploads
/// interrupted by a crash), once at start and then hourly.
async fn collect_blobs_periodically(
    meta: Arc<dyn MetadataStore>,
    blobs: Arc<dyn BlobStore>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match collect_blobs(meta.as_ref(), blobs.as_ref(), BLOB_GRACE).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed unused code packages"),
            Err(err) => tracing::warn!(error = %err, "could not collect unused code packages"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One collection pass; returns how many blobs were removed.
pub async fn collect_blobs(
    meta: &dyn MetadataStore,
    blobs: &dyn BlobStore,
    grace: Duration,
) -> Result<usize, nimbus_core::StoreError> {
    let mut removed = 0;
    for (id, age_secs) in blobs.list().await? {
        if age_secs < grace.as_secs() || meta.code_in_use(id.as_hex()).await? {
            continue;
        }
        blobs.delete(&id).await?;
        removed += 1;
    }
    Ok(removed)
}

/// Register for SIGINT and SIGTERM now, before the server announces itself, so a signal sent
/// right after the announcement stops it gracefully instead of killing it.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received, shutting down"),
            _ = terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_core::fake::{MemoryBlobStore, MemoryMetadataStore};

    #[tokio::test]
    async fn collection_removes_only_unreferenced_blobs_past_the_grace_period() {
        let meta = MemoryMetadataStore::default();
        let blobs = MemoryBlobStore::default();
        let used = blobs.put(b"used".to_vec().into()).await.expect("put");
        let orphan = blobs.put(b"orphan".to_vec().into()).await.expect("put");
        meta.create_function(
            &nimbus_core::fake::function("f", used.as_hex()),
            &Default::default(),
        )
        .await
        .expect("create");

        // Young blobs are spared, referenced or not (an upload may be committing right now).
        let removed = collect_blobs(&meta, &blobs, Duration::from_secs(60))
            .await
            .expect("collect");
        assert_eq!(removed, 0);

        let removed = collect_blobs(&meta, &blobs, Duration::ZERO)
            .await
            .expect("collect");
        assert_eq!(removed, 1);
        assert!(blobs.get(&used).await.expect("get").is_some());
        assert!(blobs.get(&orphan).await.expect("get").is_none());
    }
}
