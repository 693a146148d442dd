//! The HTTP surfaces of Nimbus.
//!
//! [`router`] builds the Lambda REST API (management operations today; invoke, URLs and the
//! console as they arrive). Requests enter through one door ([`middleware`]): it gives each a
//! request id and hands it to the [`Authenticator`] before any handler runs. Wire shapes live in
//! [`model`], the mapping of errors to HTTP in [`error`], and one file per resource in `routes/`.
//! The api holds no state of its own: everything lives behind the store traits in [`ApiState`].

mod body;
mod code_url;
pub mod error;
mod eventstream;
pub mod gateway;
pub mod middleware;
pub mod model;
mod routes;
mod stream_body;

use std::sync::Arc;

use axum::Router;
use nimbus_core::invoke::Invoke;
use nimbus_core::logs::LogStore;
use nimbus_core::queue::EventQueue;
use nimbus_core::{AccountContext, BlobStore, MetadataStore};

pub use code_url::CodeUrlSigner;
pub use error::ApiError;
pub use middleware::{AllowAll, Authenticator};

/// What the handlers need: the stores and where this server lives.
#[derive(Clone)]
pub struct ApiState {
    /// Function metadata.
    pub meta: Arc<dyn MetadataStore>,
    /// Code packages.
    pub blobs: Arc<dyn BlobStore>,
    /// Region and account of every resource. (The state is cloned for every request; shared
    /// fields keep that clone free of allocations.)
    pub account: Arc<AccountContext>,
    /// Signs the short-lived download links in `GetFunction`'s `Code.Location`.
    pub code_urls: CodeUrlSigner,
    /// Decides whether a request may proceed (SigV4 arrives here later).
    pub auth: Arc<dyn Authenticator>,
    /// Runs invocations.
    pub invoker: Arc<dyn Invoke>,
    /// Function logs.
    pub logs: Arc<dyn LogStore>,
    /// The account's concurrency limit (GetAccountSettings' `ConcurrentExecutions`), out of
    /// which reserved concurrency is carved; Lambda's default is 1000.
    pub concurrency_limit: u32,
    /// The durable queue of async invocations and their settings (event invoke configs).
    pub events: Arc<dyn EventQueue>,
    /// Host and port function URLs are served at, e.g. `localhost:9002`: a URL is
    /// `http://<url-id>.lambda-url.<region>.<gateway_host>/`.
    pub gateway_host: Arc<str>,
    /// The gateway's route table, invalidated by the routes API after every change.
    pub routes: gateway::server::RouteCache,
}

pub use routes::schedules;

/// The full HTTP application: the Lambda API behind the request door, plus code downloads.
pub fn router(state: ApiState) -> Router {
    routes::router(state)
}
