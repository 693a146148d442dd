//! Execution environments: one sandboxed runtime process tree per environment, with its own
//! private Runtime API endpoint.
//!
//! - [`sys`] holds all Linux-specific and `unsafe` code: namespaces, mounts, cgroups, the
//!   spawner thread.
//! - [`runtime_api`] serves the Runtime API (2018-06-01) of one environment.
//! - `environment` drives one environment's lifecycle (init → ready → dead) and implements
//!   [`nimbus_core::sandbox::Environment`] as [`LinuxEnvironment`]; `logs` captures its
//!   output; [`LinuxSandbox`] creates them.
//!
//! ```no_run
//! # async fn example(spec: nimbus_core::sandbox::EnvironmentSpec,
//! #                  sink: std::sync::Arc<dyn nimbus_core::sandbox::LogSink>) {
//! use nimbus_core::sandbox::Sandbox;
//! use nimbus_sandbox::{LinuxSandbox, LinuxSandboxConfig};
//!
//! let sandbox = LinuxSandbox::new(LinuxSandboxConfig::new("/opt/nimbus/runtimes"));
//! let environment = sandbox.create(spec, sink).await.expect("environment");
//! # }
//! ```

mod environment;
mod linux;
mod logs;
pub mod runtime_api;
pub mod sys;

pub use environment::LinuxEnvironment;
pub use linux::{
    LinuxSandbox, LinuxSandboxConfig, DEFAULT_INIT_TIMEOUT, DEFAULT_NODE, DEFAULT_PYTHON,
};
