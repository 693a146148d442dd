//! Integration tests: the real server on an ephemeral port with a temporary data directory,
//! driven by the official AWS SDK for Rust, plain HTTP and the `nimbus` CLI.

mod aliases;
mod asynchronous;
mod binary;
mod cli;
mod concurrency;
mod functions;
mod gateway;
mod invoke;
mod isolation;
mod layers;
mod logs;
mod malicious;
mod persistence;
mod routing;
mod scaling;
mod streaming;
mod support;
mod validation;
mod versions;
