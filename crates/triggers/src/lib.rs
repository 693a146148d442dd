//! Event sources: what turns outside events into invocations (the `triggers` row of
//! `architecture.md`).
//!
//! Today there is one source, durable schedules: [`ScheduleRunner`] reads the rules of a
//! [`ScheduleStore`](nimbus_core::schedule::ScheduleStore) and fires each due one as an
//! asynchronous invocation through [`Invoke`](nimbus_core::invoke::Invoke). Time comes from a
//! [`Clock`] — the wall clock in the server, a [`ManualClock`] in tests — so schedule behaviour
//! is tested without sleeping.
//!
//! Like every library crate, this one depends on `nimbus-core` only; the binary hands it the
//! concrete store and invoker.

pub mod clock;
pub mod schedules;

pub use clock::{Clock, ManualClock, SystemClock};
pub use schedules::{
    fire_id, fire_request, latest_fire_in, NextFire, RunnerSettings, RunnerStatus, ScheduleRunner,
};
