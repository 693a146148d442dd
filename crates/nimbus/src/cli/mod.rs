//! Client subcommands. Each is a thin client of the public Lambda API, never of server internals.

pub mod client;
pub mod deploy;
pub mod functions;
pub mod invoke;
pub mod logs;
pub mod output;
