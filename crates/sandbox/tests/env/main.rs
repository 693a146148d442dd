//! Integration tests of `nimbus-sandbox`: the Runtime API over HTTP, and real runtimes (curl
//! scripts, the official Rust client, the Python and Node.js clients of `runtimes/`) in real
//! environments.
//!
//! Environment scenarios run twice: `…::none::…` with `Isolation::None`, and
//! `…::namespaces::…` with `Isolation::Namespaces` where the host supports it (as root);
//! elsewhere the namespaced variant prints why it skipped.

mod support;

mod lifecycle;
mod managed;
mod official_client;
mod runtime_api;
