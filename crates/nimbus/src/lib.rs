//! The `nimbus` binary's library half: [`server`] wires the platform's concrete parts together,
//! [`cli`] holds the client subcommands, which talk to a server only through its public API.

pub mod cli;
pub mod runtimes;
pub mod server;
