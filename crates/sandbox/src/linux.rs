//! [`LinuxSandbox`]: creates [`LinuxEnvironment`]s — binds the environment's Runtime API,
//! starts its log capture, builds the runtime's command line and environment variables, and
//! spawns it through [`sys`](crate::sys).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nimbus_core::runtime::{Runtime, RuntimeFamily};
use nimbus_core::sandbox::{Environment, EnvironmentSpec, LogSink, Sandbox, SandboxError};
use tokio::task::JoinHandle;

use crate::environment::process::ProcessWatch;
use crate::environment::{EnvironmentParts, Launch, LinuxEnvironment};
use crate::logs::LogCapture;
use crate::runtime_api::{RuntimeApi, RuntimeApiHandle};
use crate::sys::{self, CpuPolicy, Isolation, SpawnSpec};

/// Where the code package appears inside an environment.
const TASK_ROOT: &str = "/var/task";
/// Where the runtimes directory appears inside an environment.
const RUNTIME_ROOT: &str = "/var/runtime";
/// The custom-runtime entry point, inside the environment.
const BOOTSTRAP: &str = "/var/task/bootstrap";
/// A custom runtime's entry point when the code has none: from a layer.
const OPT_BOOTSTRAP: &str = "/opt/bootstrap";
/// The Python runtime interface client, relative to the runtimes directory.
const PYTHON_RIC: &str = "python/bootstrap.py";
/// The Node.js runtime interface client, relative to the runtimes directory.
const NODE_RIC: &str = "node/bootstrap.cjs";

/// Environment variables the sandbox sets.
mod var {
    pub(super) const RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";
    pub(super) const TASK_ROOT: &str = "LAMBDA_TASK_ROOT";
    pub(super) const RUNTIME_DIR: &str = "LAMBDA_RUNTIME_DIR";
    /// Our Node client's: the fd of its ready-made Runtime API connection.
    pub(super) const RUNTIME_API_FD: &str = "NIMBUS_RUNTIME_API_FD";
    /// Defaults applied only when the scheduler did not set them.
    pub(super) const DEFAULTS: &[(&str, &str)] = &[
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
        ("LANG", "en_US.UTF-8"),
        ("TZ", ":UTC"),
    ];
}

/// Default interpreter of the Python runtimes.
pub const DEFAULT_PYTHON: &str = "/usr/bin/python3";
/// Default interpreter of the Node.js runtimes.
pub const DEFAULT_NODE: &str = "/usr/bin/node";
/// Spawn attempts when the runtime executable is busy (ETXTBSY), and the pause between them
/// (multiplied by the attempt number).
const SPAWN_ATTEMPTS: u32 = 4;
const SPAWN_RETRY_PAUSE: Duration = Duration::from_millis(5);

/// Lambda's Init limit for on-demand environments.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How [`LinuxSandbox`] starts environments.
#[derive(Debug, Clone)]
pub struct LinuxSandboxConfig {
    /// How strongly environments are confined.
    pub isolation: Isolation,
    /// How CPU is shared between environments.
    pub cpu: CpuPolicy,
    /// Host path of the repository's `runtimes/` folder (shown at `/var/runtime`).
    pub runtimes_dir: PathBuf,
    /// Interpreter per runtime, by runtime name (`python3.12`) or family (`python`, `nodejs`);
    /// unlisted runtimes use [`DEFAULT_PYTHON`] / [`DEFAULT_NODE`]. Absolute host paths.
    pub interpreters: BTreeMap<String, PathBuf>,
    /// How long Init may take, counted from spawn ([`DEFAULT_INIT_TIMEOUT`]).
    pub init_timeout: Duration,
}

impl LinuxSandboxConfig {
    /// Defaults: no isolation, CPU weights, default interpreters, a 10 s Init limit.
    pub fn new(runtimes_dir: impl Into<PathBuf>) -> Self {
        Self {
            isolation: Isolation::None,
            cpu: CpuPolicy::Weight,
            runtimes_dir: runtimes_dir.into(),
            interpreters: BTreeMap::new(),
            init_timeout: DEFAULT_INIT_TIMEOUT,
        }
    }
}

/// Creates execution environments as Linux processes; implements [`Sandbox`].
#[derive(Debug, Clone)]
pub struct LinuxSandbox {
    config: Arc<LinuxSandboxConfig>,
}

/// What to execute for one environment.
#[derive(Debug, PartialEq, Eq)]
enum Entrypoint {
    Run {
        program: PathBuf,
        args: Vec<String>,
    },
    /// A custom runtime without a usable `bootstrap` (`Runtime.InvalidEntrypoint`).
    Invalid(String),
}

impl LinuxSandbox {
    /// A sandbox with `config`.
    pub fn new(config: LinuxSandboxConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LinuxSandboxConfig {
        &self.config
    }

    /// Whether this host can run `runtime`: its interpreter is an executable file and its
    /// runtime interface client exists. The error says what is missing.
    pub fn check_runtime(&self, runtime: &Runtime) -> Result<(), String> {
        let ric = match runtime.family() {
            RuntimeFamily::Provided => return Ok(()),
            RuntimeFamily::Python => PYTHON_RIC,
            RuntimeFamily::Node => NODE_RIC,
        };
        let interpreter = self.interpreter(runtime);
        if !is_executable(&interpreter) {
            return Err(format!(
                "interpreter of {runtime} not found or not executable: {}",
                interpreter.display()
            ));
        }
        let ric = self.config.runtimes_dir.join(ric);
        if !ric.is_file() {
            return Err(format!(
                "runtime interface client of {runtime} not found: {}",
                ric.display()
            ));
        }
        Ok(())
    }

    fn interpreter(&self, runtime: &Runtime) -> PathBuf {
        let (family, default) = match runtime.family() {
            RuntimeFamily::Python => ("python", DEFAULT_PYTHON),
            RuntimeFamily::Node => ("nodejs", DEFAULT_NODE),
            RuntimeFamily::Provided => ("provided", BOOTSTRAP),
        };
        let interpreters = &self.config.interpreters;
        interpreters
            .get(runtime.as_str())
            .or_else(|| interpreters.get(family))
            .cloned()
            .unwrap_or_else(|| PathBuf::from(default))
    }

    /// Where the runtimes directory and the code are, as the process sees them.
    fn roots(&self, spec: &EnvironmentSpec) -> (PathBuf, PathBuf) {
        match self.config.isolation {
            Isolation::None => (self.config.runtimes_dir.clone(), spec.code_dir.clone()),
            Isolation::Namespaces => (PathBuf::from(RUNTIME_ROOT), PathBuf::from(TASK_ROOT)),
        }
    }

    fn entrypoint(&self, spec: &EnvironmentSpec) -> Entrypoint {
        let (runtime_root, _) = self.roots(spec);
        let ric = |path: &str| runtime_root.join(path).to_string_lossy().into_owned();
        match spec.runtime.family() {
            RuntimeFamily::Provided => {
                // Lambda looks in the code first, then in the layers (a runtime shipped as a
                // layer); the first file found is the one run.
                let in_layers = spec.opt_dir.as_ref().map(|opt| {
                    let program = match self.config.isolation {
                        Isolation::None => opt.join("bootstrap"),
                        Isolation::Namespaces => PathBuf::from(OPT_BOOTSTRAP),
                    };
                    (opt.join("bootstrap"), program)
                });
                let candidates =
                    std::iter::once((spec.code_dir.join("bootstrap"), PathBuf::from(BOOTSTRAP)))
                        .chain(in_layers);
                for (on_host, program) in candidates {
                    match std::fs::metadata(&on_host) {
                        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => {
                            return Entrypoint::Run {
                                program,
                                args: Vec::new(),
                            }
                        }
                        Ok(meta) if meta.is_file() => {
                            return Entrypoint::Invalid(format!(
                                "fork/exec {}: permission denied",
                                program.display()
                            ))
                        }
                        _ => {}
                    }
                }
                Entrypoint::Invalid(format!(
                    "Couldn't find valid bootstrap(s): [{BOOTSTRAP} {OPT_BOOTSTRAP}]"
                ))
            }
            RuntimeFamily::Python => Entrypoint::Run {
                program: self.interpreter(&spec.runtime),
                args: vec![ric(PYTHON_RIC)],
            },
            RuntimeFamily::Node => Entrypoint::Run {
                program: self.interpreter(&spec.runtime),
                // Lambda's own split of the memory setting M (runtimes/README.md): semi space
                // M/20, old space M·9/10; without it Node sizes its heap from host RAM.
                args: vec![
                    format!("--max-semi-space-size={}", (spec.memory_mb / 20).max(1)),
                    format!(
                        "--max-old-space-size={}",
                        u64::from(spec.memory_mb) * 9 / 10
                    ),
                    ric(NODE_RIC),
                ],
            },
        }
    }

    /// Exactly the function's variables, the Runtime API address, the task and runtime roots
    /// as the process sees them, and defaults for what the scheduler left unset. Nothing comes
    /// from the host's environment.
    fn variables(&self, spec: &EnvironmentSpec, runtime_api: &str) -> Vec<(String, String)> {
        let (runtime_root, task_root) = self.roots(spec);
        let mut vars = spec.variables.clone();
        vars.insert(var::RUNTIME_API.to_owned(), runtime_api.to_owned());
        let task_root = task_root.to_string_lossy().into_owned();
        let runtime_root = runtime_root.to_string_lossy().into_owned();
        match self.config.isolation {
            // The standard paths do not exist on the host: point at the real ones.
            Isolation::None => {
                vars.insert(var::TASK_ROOT.to_owned(), task_root);
                vars.insert(var::RUNTIME_DIR.to_owned(), runtime_root);
                if let Some(opt) = &spec.opt_dir {
                    relocate_opt(&mut vars, opt);
                }
            }
            Isolation::Namespaces => {
                vars.entry(var::TASK_ROOT.to_owned()).or_insert(task_root);
                vars.entry(var::RUNTIME_DIR.to_owned())
                    .or_insert(runtime_root);
            }
        }
        for (name, value) in var::DEFAULTS {
            vars.entry((*name).to_owned())
                .or_insert_with(|| (*value).to_owned());
        }
        vars.into_iter().collect()
    }
}

/// Without a mount namespace the layers cannot appear at `/opt`: point the search-path entries
/// under `/opt` (`/opt/bin` in `PATH`, `/opt/lib` in `LD_LIBRARY_PATH`, …) at the merged
/// directory on the host instead.
fn relocate_opt(vars: &mut BTreeMap<String, String>, opt: &Path) {
    for name in ["PATH", "LD_LIBRARY_PATH", "NODE_PATH", "PYTHONPATH"] {
        let Some(value) = vars.get_mut(name) else {
            continue;
        };
        *value = value
            .split(':')
            .map(|entry| match Path::new(entry).strip_prefix("/opt") {
                Ok(rest) => opt.join(rest).to_string_lossy().into_owned(),
                Err(_) => entry.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(":");
    }
}

/// What one launch attempt produced.
struct Started {
    api: RuntimeApiHandle,
    api_task: JoinHandle<()>,
    launch: Launch,
    logs: LogCapture,
    spawned_at: Instant,
}

/// A launch attempt that failed.
enum StartError {
    /// `execve` met ETXTBSY: the program is still open for writing somewhere, typically a
    /// descriptor that a concurrently spawning child inherited while the code was being
    /// written. It clears within milliseconds, so the attempt is worth repeating.
    Busy,
    /// Anything else.
    Failed(SandboxError),
}

impl LinuxSandbox {
    /// Bind the Runtime API, start the log capture and spawn the runtime.
    fn start(
        &self,
        spec: &EnvironmentSpec,
        logs: Arc<dyn LogSink>,
        retry_busy: bool,
    ) -> Result<Started, StartError> {
        let setup = |error| StartError::Failed(SandboxError::Setup(error));
        let (listener, netns) =
            sys::bind_runtime_api_listener(self.config.isolation).map_err(setup)?;
        let (api, api_task) = RuntimeApi::start(listener).map_err(setup)?;
        // Aborts the API task if anything below fails.
        let api_task = AbortOnDrop(Some(api_task));
        let (capture, output) =
            LogCapture::start(logs, spec.log_group.clone(), spec.log_stream.clone())
                .map_err(setup)?;
        let spawned_at = Instant::now();
        let launch = match self.entrypoint(spec) {
            Entrypoint::Invalid(detail) => Launch::Failed {
                error_type: INVALID_ENTRYPOINT,
                detail,
            },
            Entrypoint::Run { program, args } => {
                let runtime_api = api.local_addr().to_string();
                let mut env = self.variables(spec, &runtime_api);
                // Our Node client takes its Runtime API connection ready-made: it then needs no
                // node:net before its first /next (~12 ms of each cold start). The variable is
                // the client's, and it removes it before user code runs.
                let runtime_api_connection = match (spec.runtime.family(), api.local_addr()) {
                    (RuntimeFamily::Node, std::net::SocketAddr::V4(addr)) => {
                        env.push((
                            var::RUNTIME_API_FD.to_owned(),
                            sys::RUNTIME_API_FD.to_string(),
                        ));
                        Some(addr)
                    }
                    _ => None,
                };
                let spawn = SpawnSpec {
                    env,
                    runtime_api_connection,
                    program: program.clone(),
                    args,
                    code_dir: spec.code_dir.clone(),
                    // Custom runtimes do not need it; do not fail their spawn over a missing one.
                    runtime_dir: Some(self.config.runtimes_dir.clone()).filter(|dir| dir.is_dir()),
                    opt_dir: spec.opt_dir.clone(),
                    tmp_mb: spec.ephemeral_storage_mb,
                    memory_mb: spec.memory_mb,
                    cpu: self.config.cpu,
                    stdout: output.stdout,
                    stderr: output.stderr,
                    netns,
                };
                match sys::spawn(spawn, self.config.isolation) {
                    Ok(process) => Launch::Running(ProcessWatch::start(process)),
                    Err(error)
                        if retry_busy && error.kind() == std::io::ErrorKind::ExecutableFileBusy =>
                    {
                        return Err(StartError::Busy)
                    }
                    Err(error) => match exec_failure(&error, &program) {
                        // A bootstrap that cannot be executed (bad `#!` line, wrong format).
                        Some(detail) if spec.runtime.family() == RuntimeFamily::Provided => {
                            Launch::Failed {
                                error_type: INVALID_ENTRYPOINT,
                                detail,
                            }
                        }
                        _ => return Err(setup(error)),
                    },
                }
            }
        };
        Ok(Started {
            api,
            api_task: api_task.disarm(),
            launch,
            logs: capture,
            spawned_at,
        })
    }
}

#[async_trait]
impl Sandbox for LinuxSandbox {
    fn check_runtime(&self, runtime: &Runtime) -> Result<(), String> {
        LinuxSandbox::check_runtime(self, runtime)
    }

    async fn create(
        &self,
        spec: EnvironmentSpec,
        logs: Arc<dyn LogSink>,
    ) -> Result<Arc<dyn Environment>, SandboxError> {
        self.check_runtime(&spec.runtime)
            .map_err(SandboxError::RuntimeUnavailable)?;
        let mut attempt = 1;
        let started = loop {
            let retry_busy = attempt < SPAWN_ATTEMPTS;
            // Creating the namespaces and spawning blocks for milliseconds: keep it off the
            // async workers so other requests (and other cold starts) are not held up.
            let (sandbox, job_spec, job_logs) = (self.clone(), spec.clone(), Arc::clone(&logs));
            let outcome =
                tokio::task::spawn_blocking(move || sandbox.start(&job_spec, job_logs, retry_busy))
                    .await
                    .map_err(|join| SandboxError::Setup(std::io::Error::other(join)))?;
            match outcome {
                Ok(started) => break started,
                Err(StartError::Failed(error)) => return Err(error),
                Err(StartError::Busy) => {
                    tracing::debug!(attempt, "runtime executable busy; retrying the spawn");
                    tokio::time::sleep(SPAWN_RETRY_PAUSE * attempt).await;
                    attempt += 1;
                }
            }
        };
        tracing::debug!(environment = %spec.environment_id, "environment created");
        Ok(Arc::new(LinuxEnvironment::new(EnvironmentParts {
            spec,
            api: started.api,
            api_task: started.api_task,
            launch: started.launch,
            logs: started.logs,
            spawned_at: started.spawned_at,
            init_timeout: self.config.init_timeout,
        })))
    }
}

/// Aborts a task when dropped, unless disarmed.
struct AbortOnDrop(Option<JoinHandle<()>>);

impl AbortOnDrop {
    fn disarm(mut self) -> JoinHandle<()> {
        self.0.take().expect("disarmed once")
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// `Runtime.InvalidEntrypoint`.
const INVALID_ENTRYPOINT: &str = "Runtime.InvalidEntrypoint";

/// The Go-style message (as Lambda prints it) when `error` is `sys::spawn` reporting that the
/// final `execve` failed, which sys labels `execve <program>: <reason>`.
fn exec_failure(error: &std::io::Error, program: &Path) -> Option<String> {
    let text = error.to_string();
    let rest = text.strip_prefix("execve ")?;
    let reason = match error.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => rest
            .split_once(": ")
            .map_or(rest, |(_, reason)| reason)
            .to_lowercase(),
    };
    Some(format!("fork/exec {}: {reason}", program.display()))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(runtime: &str, code_dir: &Path) -> EnvironmentSpec {
        let mut variables = BTreeMap::new();
        variables.insert("AWS_LAMBDA_FUNCTION_NAME".to_owned(), "f".to_owned());
        variables.insert("PATH".to_owned(), "/custom/bin".to_owned());
        EnvironmentSpec {
            environment_id: "0123456789abcdef0123456789abcdef".to_owned(),
            function_name: "f".to_owned(),
            function_version: "$LATEST".to_owned(),
            runtime: Runtime::parse(runtime).expect("runtime"),
            handler: "index.handler".to_owned(),
            memory_mb: 1000,
            ephemeral_storage_mb: 512,
            timeout: Duration::from_secs(3),
            code_dir: code_dir.to_owned(),
            opt_dir: None,
            variables,
            log_group: "/aws/lambda/f".to_owned(),
            log_stream: "s".to_owned(),
        }
    }

    fn sandbox(isolation: Isolation) -> LinuxSandbox {
        let mut config = LinuxSandboxConfig::new("/srv/runtimes");
        config.isolation = isolation;
        config
            .interpreters
            .insert("nodejs".to_owned(), PathBuf::from("/opt/node/bin/node"));
        LinuxSandbox::new(config)
    }

    #[test]
    fn variables_are_the_functions_plus_the_sandboxs_own() {
        let code = Path::new("/srv/code/abc");
        let vars: BTreeMap<_, _> = sandbox(Isolation::None)
            .variables(&spec("python3.12", code), "127.0.0.1:4000")
            .into_iter()
            .collect();
        let expected: BTreeMap<String, String> = [
            ("AWS_LAMBDA_FUNCTION_NAME", "f"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:4000"),
            ("LAMBDA_TASK_ROOT", "/srv/code/abc"),
            ("LAMBDA_RUNTIME_DIR", "/srv/runtimes"),
            ("PATH", "/custom/bin"),
            ("LANG", "en_US.UTF-8"),
            ("TZ", ":UTC"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(vars, expected);

        let vars: BTreeMap<_, _> = sandbox(Isolation::Namespaces)
            .variables(&spec("python3.12", code), "127.0.0.1:9001")
            .into_iter()
            .collect();
        assert_eq!(vars["LAMBDA_TASK_ROOT"], "/var/task");
        assert_eq!(vars["LAMBDA_RUNTIME_DIR"], "/var/runtime");
    }

    #[test]
    fn without_namespaces_layer_paths_point_at_the_merged_directory() {
        let mut vars: BTreeMap<String, String> = [
            ("PATH", "/usr/bin:/opt/bin"),
            ("LD_LIBRARY_PATH", "/var/task/lib:/opt/lib"),
            ("NODE_PATH", "/opt/nodejs/node_modules:/var/runtime"),
            ("OTHER", "/opt/keep"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        relocate_opt(&mut vars, Path::new("/data/layers/ab"));
        assert_eq!(vars["PATH"], "/usr/bin:/data/layers/ab/bin");
        assert_eq!(vars["LD_LIBRARY_PATH"], "/var/task/lib:/data/layers/ab/lib");
        assert_eq!(
            vars["NODE_PATH"],
            "/data/layers/ab/nodejs/node_modules:/var/runtime"
        );
        assert_eq!(vars["OTHER"], "/opt/keep");
    }

    #[test]
    fn entrypoints_follow_the_runtime_family() {
        let code = Path::new("/srv/code/abc");
        assert_eq!(
            sandbox(Isolation::Namespaces).entrypoint(&spec("nodejs20.x", code)),
            Entrypoint::Run {
                program: PathBuf::from("/opt/node/bin/node"),
                args: vec![
                    "--max-semi-space-size=50".to_owned(),
                    "--max-old-space-size=900".to_owned(),
                    "/var/runtime/node/bootstrap.cjs".to_owned(),
                ],
            }
        );
        assert_eq!(
            sandbox(Isolation::None).entrypoint(&spec("python3.9", code)),
            Entrypoint::Run {
                program: PathBuf::from(DEFAULT_PYTHON),
                args: vec!["/srv/runtimes/python/bootstrap.py".to_owned()],
            }
        );
        let missing = sandbox(Isolation::None).entrypoint(&spec("provided.al2023", code));
        assert!(matches!(missing, Entrypoint::Invalid(m) if m.contains("Couldn't find")));
    }

    #[test]
    fn missing_interpreters_make_a_runtime_unavailable() {
        let node = Runtime::parse("nodejs22.x").expect("runtime");
        let reason = sandbox(Isolation::None)
            .check_runtime(&node)
            .expect_err("no such interpreter");
        assert!(reason.contains("/opt/node/bin/node"), "{reason}");
        let provided = Runtime::parse("provided.al2").expect("runtime");
        assert_eq!(sandbox(Isolation::None).check_runtime(&provided), Ok(()));
    }

    #[test]
    fn exec_failures_read_like_lambdas() {
        let program = Path::new(BOOTSTRAP);
        let error = std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "execve /var/task/bootstrap: No such file or directory (os error 2)",
        );
        assert_eq!(
            exec_failure(&error, program).as_deref(),
            Some("fork/exec /var/task/bootstrap: no such file or directory")
        );
        let setup = std::io::Error::new(std::io::ErrorKind::NotFound, "bind /var/runtime: x");
        assert_eq!(exec_failure(&setup, program), None);
    }
}
