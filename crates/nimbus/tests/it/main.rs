//! Integration tests: the real server on an ephemeral port with a temporary data directory,
//! driven by the official AWS SDK for Rust, plain HTTP and the `nimbus` CLI.

mod binary;
mod cli;
mod functions;
mod invoke;
mod isolation;
mod logs;
mod malicious;
mod persistence;
mod scaling;
mod support;
mod validation;
