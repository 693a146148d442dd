//! The embedded storage backends of Nimbus.
//!
//! A single-node Nimbus keeps its state on local disk:
//!
//! - [`SqliteMetadataStore`] implements [`MetadataStore`](nimbus_core::MetadataStore): functions,
//!   their tags, published versions, aliases and reserved concurrency in an SQLite database (WAL
//!   journal, `synchronous=FULL`), so every acknowledged write survives a crash or power loss.
//! - [`SqliteLogStore`] implements [`LogStore`](nimbus_core::logs::LogStore): function logs in
//!   a database of their own, so log volume never contends with metadata writes.
//! - [`SqliteEventQueue`] implements [`EventQueue`](nimbus_core::queue::EventQueue): the
//!   durable queue of asynchronous invocations and their invoke configs, in a database of its
//!   own; concurrent enqueues share one fsync (group commit) through a writer thread.
//! - [`FsBlobStore`] implements [`BlobStore`](nimbus_core::BlobStore): immutable,
//!   content-addressed code packages in a directory tree, written atomically.
//!
//! Both do blocking I/O, which they move off the async executor with
//! [`tokio::task::spawn_blocking`]; their constructors block too and belong in start-up code.
//! A clustered deployment swaps them for other implementations of the same traits.

mod blobs;
mod logs;
mod migrate;
mod queue;
mod schedules;
mod sqlite;

pub use blobs::FsBlobStore;
pub use logs::SqliteLogStore;
pub use migrate::UnsupportedSchemaVersion;
pub use queue::{SqliteEventQueue, WriteStats};
pub use schedules::SqliteScheduleStore;
pub use sqlite::SqliteMetadataStore;

use nimbus_core::StoreError;

/// Run blocking work on tokio's blocking pool and wait for it.
///
/// A panic in `work` surfaces as [`StoreError::Backend`] rather than tearing down the caller.
async fn run_blocking<T, F>(work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(StoreError::backend)?
}
