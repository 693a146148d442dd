//! The scheduler: implements [`Invoke`](nimbus_core::invoke::Invoke) on top of the stores and a
//! [`Sandbox`](nimbus_core::sandbox::Sandbox).
//!
//! For each invocation it resolves the function, makes sure its code is unpacked
//! ([`code_cache`]), takes a warm environment of that function revision or starts one
//! ([`pool`]), hands the event over and turns the environment's report into the caller's result.
//! Environment logs go to the log store through [`log_sink`].

mod admission;
pub mod code_cache;
mod dispatch;
mod environment_spec;
pub mod log_sink;
mod pace;
mod pool;
mod scheduler;

pub use dispatch::AsyncSettings;
pub use scheduler::{Limits, Scheduler, SchedulerConfig};
