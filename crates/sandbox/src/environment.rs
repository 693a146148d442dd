//! One execution environment: its lifecycle (starting → ready → dead) and its invocations.
//!
//! [`LinuxEnvironment`] owns the runtime process (watched by [`process::ProcessWatch`]), the
//! environment's Runtime API and its log capture. The first invocation waits for Init (the
//! runtime's first `/next`, at most the init limit after spawn); every invocation races the
//! runtime's answer against its deadline and against the process's exit. A timeout, crash,
//! out-of-memory kill or failed Init leaves the environment dead (`reusable == false`).
//!
//! The deadline is `spec.timeout` from the moment the event is handed over (after Init, as on
//! Lambda), and `Lambda-Runtime-Deadline-Ms` says the same,
//! so time an invocation spent queued or waiting for Init never shortens its run.

pub(crate) mod process;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use nimbus_core::sandbox::{
    Environment, EnvironmentSpec, Invocation, InvocationOutcome, InvocationReport,
};
use nimbus_core::stream::ResponseSink;
use tokio::task::JoinHandle;

use self::process::{Exit, ProcessWatch};
use crate::logs::{self, LogCapture};
use crate::runtime_api::{InitOutcome, InvocationEvent, RuntimeApiHandle};

/// How long `shutdown` waits for the killed process to be reaped.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// How long `shutdown` waits for the last output to be read after the process ended.
const LOG_CLOSE_WAIT: Duration = Duration::from_millis(200);

/// Platform error types (the caller's `errorType`).
mod error_type {
    pub(super) const EXIT_ERROR: &str = "Runtime.ExitError";
    pub(super) const OUT_OF_MEMORY: &str = "Runtime.OutOfMemory";
    pub(super) const TIMED_OUT: &str = "Sandbox.Timedout";
}

/// What `LinuxSandbox` assembled for a new environment.
#[derive(Debug)]
pub(crate) struct EnvironmentParts {
    pub(crate) spec: EnvironmentSpec,
    pub(crate) api: RuntimeApiHandle,
    pub(crate) api_task: JoinHandle<()>,
    pub(crate) launch: Launch,
    pub(crate) logs: LogCapture,
    pub(crate) spawned_at: Instant,
    pub(crate) init_timeout: Duration,
}

/// Whether the runtime process could be started.
#[derive(Debug)]
pub(crate) enum Launch {
    /// It runs.
    Running(ProcessWatch),
    /// It could not start; every invocation fails with this error.
    Failed {
        /// e.g. `Runtime.InvalidEntrypoint`.
        error_type: &'static str,
        /// Message after `RequestId: <id> Error: `.
        detail: String,
    },
}

/// A runtime process tree with its own Runtime API; implements [`Environment`].
#[derive(Debug)]
pub struct LinuxEnvironment {
    spec: EnvironmentSpec,
    api: RuntimeApiHandle,
    api_task: JoinHandle<()>,
    launch: Launch,
    logs: LogCapture,
    spawned_at: Instant,
    init_timeout: Duration,
    stopped: AtomicBool,
    /// Frozen by [`Environment::freeze`] while idle; the next invocation thaws it.
    frozen: AtomicBool,
    /// Held for the whole of an invocation: an environment serves one at a time, and a second
    /// caller queues here rather than corrupting the first one's state.
    lifecycle: tokio::sync::Mutex<Lifecycle>,
}

#[derive(Debug)]
struct Lifecycle {
    phase: Phase,
    /// Last memory reading, for reports after the process is gone.
    peak_mb: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Starting,
    Ready,
    Dead,
}

/// Why an invocation cannot reach (or ended before) the runtime's answer.
enum Failure {
    Launch {
        error_type: &'static str,
        detail: String,
    },
    InitError {
        body: Bytes,
        error_type: String,
    },
    InitTimeout(Duration),
    Exit(Exit),
    Dead,
}

impl LinuxEnvironment {
    pub(crate) fn new(parts: EnvironmentParts) -> Self {
        Self {
            spec: parts.spec,
            api: parts.api,
            api_task: parts.api_task,
            launch: parts.launch,
            logs: parts.logs,
            spawned_at: parts.spawned_at,
            init_timeout: parts.init_timeout,
            stopped: AtomicBool::new(false),
            frozen: AtomicBool::new(false),
            lifecycle: tokio::sync::Mutex::new(Lifecycle {
                phase: Phase::Starting,
                peak_mb: 0,
            }),
        }
    }

    fn process(&self) -> Option<&ProcessWatch> {
        match &self.launch {
            Launch::Running(process) => Some(process),
            Launch::Failed { .. } => None,
        }
    }

    /// Wait for Init to end: the first `/next`, an init error, the process's exit, or the limit.
    async fn await_init(&self) -> Result<Instant, Failure> {
        let process = match &self.launch {
            Launch::Running(process) => process,
            Launch::Failed { error_type, detail } => {
                return Err(Failure::Launch {
                    error_type,
                    detail: detail.clone(),
                })
            }
        };
        let limit = tokio::time::Instant::from_std(self.spawned_at + self.init_timeout);
        tokio::select! {
            biased;
            init = self.api.init_done() => match init {
                InitOutcome::Ready { at } => Ok(at),
                InitOutcome::Failed { body, error_type } => {
                    Err(Failure::InitError { body, error_type })
                }
            },
            exit = process.wait() => Err(Failure::Exit(exit)),
            () = tokio::time::sleep_until(limit) => Err(Failure::InitTimeout(self.init_timeout)),
        }
    }

    /// Hand the invocation to the runtime and wait for its answer, its exit or the deadline.
    /// With a `sink`, a streamed response flows into it meanwhile and the answer comes when the
    /// stream has ended, so the deadline covers the whole stream.
    async fn run(
        &self,
        invocation: Invocation,
        sink: Option<ResponseSink>,
        process: &ProcessWatch,
        started: Instant,
    ) -> (InvocationOutcome, bool) {
        let timeout = self.spec.timeout;
        let event = InvocationEvent {
            request_id: invocation.request_id,
            payload: invocation.payload,
            deadline: SystemTime::now() + timeout,
            invoked_function_arn: invocation.invoked_function_arn,
            trace_id: invocation.trace_id,
            client_context: invocation.client_context,
            cognito_identity: None,
        };
        let answer = match sink {
            Some(sink) => self.api.dispatch_streaming(&event, sink),
            None => self.api.dispatch(&event),
        };
        let deadline = tokio::time::Instant::from_std(started + timeout);
        tokio::select! {
            biased;
            answer = answer => {
                self.logs.drain();
                match answer {
                    // A platform error here means the Runtime API refused what the runtime sent
                    // (oversized or malformed response). How a runtime copes with that varies
                    // (the Python client exits), so the environment is retired, not reused.
                    Ok(outcome) => {
                        let reusable = !matches!(outcome, InvocationOutcome::PlatformError { .. });
                        (outcome, reusable)
                    }
                    // Only a shutdown stops the API while an invocation waits.
                    Err(_) => (self.failure_outcome(Failure::Dead, &event.request_id), false),
                }
            }
            exit = process.wait() => {
                self.logs.drain();
                let outcome = self.failure_outcome(Failure::Exit(exit), &event.request_id);
                (outcome, false)
            }
            () = tokio::time::sleep_until(deadline) => {
                let elapsed = started.elapsed();
                process.kill();
                self.api.cancel();
                self.logs.drain();
                let message = logs::timed_out_message(elapsed);
                self.logs.platform(&logs::timeout_line(
                    SystemTime::now(),
                    &event.request_id,
                    &message,
                ));
                let outcome = InvocationOutcome::PlatformError {
                    error_type: error_type::TIMED_OUT.to_owned(),
                    message,
                };
                (outcome, false)
            }
        }
    }

    /// The outcome of a failed invocation; crash lines are written to the log as Lambda does.
    fn failure_outcome(&self, failure: Failure, request_id: &str) -> InvocationOutcome {
        match failure {
            Failure::Launch { error_type, detail } => InvocationOutcome::PlatformError {
                error_type: error_type.to_owned(),
                message: format!("RequestId: {request_id} Error: {detail}"),
            },
            Failure::InitError { body, error_type } => {
                InvocationOutcome::FunctionError { body, error_type }
            }
            Failure::InitTimeout(limit) => InvocationOutcome::PlatformError {
                error_type: error_type::TIMED_OUT.to_owned(),
                message: logs::timed_out_message(limit),
            },
            Failure::Exit(exit) => {
                let outcome = exit_outcome(exit, request_id);
                if let InvocationOutcome::PlatformError {
                    error_type,
                    message,
                } = &outcome
                {
                    self.logs.platform(message);
                    self.logs.platform(error_type);
                }
                outcome
            }
            Failure::Dead => match self.process().and_then(ProcessWatch::exited) {
                Some(exit) => exit_outcome(exit, request_id),
                None => InvocationOutcome::PlatformError {
                    error_type: error_type::EXIT_ERROR.to_owned(),
                    message: format!(
                        "RequestId: {request_id} Error: the execution environment was stopped"
                    ),
                },
            },
        }
    }

    /// One invocation, its response streamed to `sink` when there is one.
    async fn invoke_with(
        &self,
        invocation: Invocation,
        sink: Option<ResponseSink>,
    ) -> InvocationReport {
        let mut life = self.lifecycle.lock().await;
        if self.frozen.swap(false, Ordering::AcqRel) {
            if let Some(process) = self.process() {
                process.thaw();
            }
        }
        let abandoned = AbandonGuard(Some(self));
        let request_id = invocation.request_id.clone();
        let mut init_duration = None;
        let mut init_failed = false;
        let failure = if self.stopped.load(Ordering::Acquire) {
            Some(Failure::Dead)
        } else {
            match life.phase {
                Phase::Starting => match self.await_init().await {
                    Ok(ready_at) => {
                        init_duration = Some(ready_at.saturating_duration_since(self.spawned_at));
                        life.phase = Phase::Ready;
                        None
                    }
                    Err(failure) => {
                        init_duration = Some(self.spawned_at.elapsed());
                        init_failed = true;
                        self.init_report(&failure);
                        Some(failure)
                    }
                },
                Phase::Ready => self
                    .process()
                    .and_then(ProcessWatch::exited)
                    .map(Failure::Exit),
                Phase::Dead => Some(Failure::Dead),
            }
        };
        let version = &self.spec.function_version;
        self.logs
            .begin(&logs::start_line(&request_id, version), init_failed);
        let started = Instant::now();
        let (outcome, reusable) = match (failure, self.process()) {
            (None, Some(process)) => self.run(invocation, sink, process, started).await,
            (Some(failure), _) => (self.failure_outcome(failure, &request_id), false),
            (None, None) => (self.failure_outcome(Failure::Dead, &request_id), false),
        };
        let duration = started.elapsed();
        // Read before a kill: killing reaps and tears down, after which only the final
        // figure (if any) remains.
        if let Some(mb) = self.process().and_then(ProcessWatch::peak_memory_mb) {
            life.peak_mb = mb;
        }
        if !reusable {
            life.phase = Phase::Dead;
            if let Some(process) = self.process() {
                process.kill();
            }
        }
        self.logs.platform(&logs::end_line(&request_id));
        self.logs.platform(&logs::report_line(
            &request_id,
            duration,
            self.spec.memory_mb,
            life.peak_mb,
            init_duration,
        ));
        abandoned.disarm();
        InvocationReport {
            outcome,
            duration,
            init_duration,
            max_memory_used_mb: life.peak_mb,
            log: self.logs.finish(),
            reusable,
        }
    }

    fn init_report(&self, failure: &Failure) {
        let (status, error_type) = match failure {
            Failure::InitTimeout(_) => ("timeout", None),
            Failure::InitError { error_type, .. } => ("error", Some(error_type.as_str())),
            Failure::Exit(exit) => ("error", Some(exit_error_type(exit))),
            Failure::Launch { error_type, .. } => ("error", Some(*error_type)),
            Failure::Dead => return,
        };
        let line = logs::init_report_line(self.spawned_at.elapsed(), status, error_type);
        self.logs.platform(&line);
    }
}

#[async_trait]
impl Environment for LinuxEnvironment {
    fn id(&self) -> &str {
        &self.spec.environment_id
    }

    fn alive(&self) -> bool {
        // A runtime can exit between invocations (e.g. after its response post was refused);
        // the scheduler then starts a new environment instead of failing the next caller.
        !self.stopped.load(std::sync::atomic::Ordering::Acquire)
            && self.process().is_some_and(|p| p.exited().is_none())
    }

    async fn freeze(&self) -> bool {
        // Only an idle, initialised environment: never one an invocation holds or one still
        // in Init (whose deadline would keep running while it cannot make progress).
        let Ok(life) = self.lifecycle.try_lock() else {
            return false;
        };
        if life.phase != Phase::Ready || self.stopped.load(Ordering::Acquire) {
            return false;
        }
        if self.frozen.load(Ordering::Acquire) {
            return true;
        }
        let Some(process) = self.process() else {
            return false;
        };
        let frozen = process.freeze().await;
        self.frozen.store(frozen, Ordering::Release);
        drop(life);
        frozen
    }

    async fn invoke(&self, invocation: Invocation) -> InvocationReport {
        self.invoke_with(invocation, None).await
    }

    async fn invoke_streaming(
        &self,
        invocation: Invocation,
        sink: ResponseSink,
    ) -> InvocationReport {
        self.invoke_with(invocation, Some(sink)).await
    }

    async fn shutdown(&self) {
        self.stopped.store(true, Ordering::Release);
        self.api.shutdown();
        self.api_task.abort();
        if let Some(process) = self.process() {
            process.kill();
            if tokio::time::timeout(SHUTDOWN_WAIT, process.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    environment = %self.spec.environment_id,
                    "environment process did not end after kill"
                );
            }
        }
        self.logs.close(LOG_CLOSE_WAIT).await;
    }
}

/// Kills the environment if an invocation's future is dropped before it finished: the runtime
/// would otherwise go on with an event nobody waits for and confuse the next invocation.
struct AbandonGuard<'a>(Option<&'a LinuxEnvironment>);

impl AbandonGuard<'_> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for AbandonGuard<'_> {
    fn drop(&mut self) {
        if let Some(env) = self.0.take() {
            tracing::warn!(
                environment = %env.spec.environment_id,
                "invocation abandoned by its caller; stopping the environment"
            );
            env.stopped.store(true, Ordering::Release);
            env.api.cancel();
            if let Some(process) = env.process() {
                process.kill();
            }
        }
    }
}

impl Drop for LinuxEnvironment {
    fn drop(&mut self) {
        // Dropped without `shutdown`: stop serving and kill; the watcher task still reaps.
        self.api.shutdown();
        self.api_task.abort();
        if let Some(process) = self.process() {
            process.kill();
        }
    }
}

fn exit_error_type(exit: &Exit) -> &'static str {
    if exit.oom_killed {
        error_type::OUT_OF_MEMORY
    } else {
        error_type::EXIT_ERROR
    }
}

/// `Runtime.ExitError` (or `Runtime.OutOfMemory`) in Lambda's wording.
fn exit_outcome(exit: Exit, request_id: &str) -> InvocationOutcome {
    let message = match exit.status.and_then(exit_reason) {
        Some(reason) => {
            format!("RequestId: {request_id} Error: Runtime exited with error: {reason}")
        }
        None => format!("RequestId: {request_id} Error: Runtime exited without providing a reason"),
    };
    InvocationOutcome::PlatformError {
        error_type: exit_error_type(&exit).to_owned(),
        message,
    }
}

/// `exit status N` or `signal: <name>` as Go (and so Lambda) prints them; `None` for a clean
/// exit, which gives no reason.
fn exit_reason(status: std::process::ExitStatus) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return (code != 0).then(|| format!("exit status {code}"));
    }
    let signal = status.signal()?;
    let name = match signal {
        1 => "hangup",
        2 => "interrupt",
        3 => "quit",
        4 => "illegal instruction",
        5 => "trace/breakpoint trap",
        6 => "aborted",
        7 => "bus error",
        8 => "floating point exception",
        9 => "killed",
        11 => "segmentation fault",
        13 => "broken pipe",
        15 => "terminated",
        other => return Some(format!("signal: signal {other}")),
    };
    Some(format!("signal: {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    fn exit(raw: i32, oom_killed: bool) -> Exit {
        Exit {
            status: Some(ExitStatus::from_raw(raw)),
            oom_killed,
        }
    }

    #[test]
    fn exit_messages_follow_lambda() {
        let platform = |error_type: &str, message: &str| InvocationOutcome::PlatformError {
            error_type: error_type.to_owned(),
            message: message.to_owned(),
        };
        assert_eq!(
            exit_outcome(exit(1 << 8, false), "r"),
            platform(
                "Runtime.ExitError",
                "RequestId: r Error: Runtime exited with error: exit status 1"
            )
        );
        assert_eq!(
            exit_outcome(exit(0, false), "r"),
            platform(
                "Runtime.ExitError",
                "RequestId: r Error: Runtime exited without providing a reason"
            )
        );
        assert_eq!(
            exit_outcome(exit(9, true), "r"),
            platform(
                "Runtime.OutOfMemory",
                "RequestId: r Error: Runtime exited with error: signal: killed"
            )
        );
        assert_eq!(
            exit_reason(ExitStatus::from_raw(11)).as_deref(),
            Some("signal: segmentation fault")
        );
    }
}
