//! Domain types and seams of Nimbus.
//!
//! Everything here is free of I/O — except [`package::unpack`], the one audited routine that
//! extracts untrusted archives, kept beside the checks it relies on. The rest: functions, their
//! settings and versions ([`Function`], [`FunctionSettings`], [`FunctionVersion`]), aliases
//! ([`Alias`]), names and ARNs ([`FunctionName`], [`FunctionRef`], [`AccountContext`]),
//! quotas ([`limits`]), the validation rules Lambda applies to them ([`validate`]), code-package
//! inspection ([`package`]), errors named after AWS's error types ([`ServiceError`]), the
//! traits behind which storage lives ([`MetadataStore`], [`BlobStore`]) and the channel that
//! carries streamed responses ([`stream`]).
//!
//! With the `test-util` feature, [`fake`] provides in-memory implementations of the store traits.

pub mod alias;
pub mod arn;
pub mod error;
#[cfg(feature = "test-util")]
pub mod fake;
pub mod function;
pub mod invoke;
pub mod layer;
pub mod limits;
pub mod logs;
pub mod names;
pub mod package;
pub mod queue;
pub mod runtime;
pub mod sandbox;
pub mod schedule;
pub mod store;
pub mod stream;
pub mod time;
pub mod url;
pub mod validate;

pub use alias::Alias;
pub use arn::AccountContext;
pub use error::{ServiceError, StoreError, ThrottleReason};
pub use function::{
    Architecture, CodeRef, Function, FunctionSettings, FunctionState, FunctionVersion,
    LoggingConfig, TracingMode,
};
pub use names::{FunctionName, FunctionRef, Qualifier};
pub use runtime::Runtime;
pub use store::{AliasPage, BlobId, BlobStore, FunctionPage, MetadataStore, VersionPage};
