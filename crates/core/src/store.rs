//! The seams behind which state lives: function metadata (functions, their published versions,
//! aliases and reserved concurrency) and content-addressed blobs.
//!
//! The embedded backends (SQLite, a blob directory) live in `nimbus-store`; a clustered backend
//! implements the same traits, so callers never change.

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::Bytes;

use crate::alias::Alias;
use crate::error::StoreError;
use crate::function::Function;
use crate::names::FunctionName;
use crate::url::{FunctionUrlConfig, FunctionUrlPage, HttpRoute};

/// One page of functions in name order.
#[derive(Debug, Clone, Default)]
pub struct FunctionPage {
    /// The functions on this page.
    pub functions: Vec<Function>,
    /// Whether more functions follow the last one on this page.
    pub more: bool,
}

/// One page of a function's versions: `$LATEST` first, then published versions by number.
#[derive(Debug, Clone, Default)]
pub struct VersionPage {
    /// The versions on this page.
    pub versions: Vec<Function>,
    /// Whether more versions follow the last one on this page.
    pub more: bool,
}

/// One page of a function's aliases in name order.
#[derive(Debug, Clone, Default)]
pub struct AliasPage {
    /// The aliases on this page.
    pub aliases: Vec<Alias>,
    /// Whether more aliases follow the last one on this page.
    pub more: bool,
}

/// Durable metadata: functions, their tags, published versions, aliases and reserved
/// concurrency.
///
/// Every mutation is durable (committed and on disk) when the call returns. A function record
/// ([`get_function`](Self::get_function)) is its `$LATEST`; published versions are immutable
/// snapshots of it, numbered per function from 1 and never renumbered or reused.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// Store a new function with its initial tags; [`StoreError::AlreadyExists`] if the name is taken.
    async fn create_function(
        &self,
        function: &Function,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), StoreError>;

    /// The function with this name, if any.
    async fn get_function(&self, name: &FunctionName) -> Result<Option<Function>, StoreError>;

    /// Up to `limit` functions whose names sort after `after`, in name order.
    async fn list_functions(
        &self,
        after: Option<&FunctionName>,
        limit: usize,
    ) -> Result<FunctionPage, StoreError>;

    /// Replace a function, provided its stored revision is still `expected_revision`;
    /// [`StoreError::RevisionMismatch`] if it changed, [`StoreError::NotFound`] if it is gone.
    async fn update_function(
        &self,
        function: &Function,
        expected_revision: &str,
    ) -> Result<(), StoreError>;

    /// Delete a function with its tags, published versions, aliases and reserved concurrency;
    /// [`StoreError::NotFound`] if there was none. A function created later under the same name
    /// starts again at version 1.
    async fn delete_function(&self, name: &FunctionName) -> Result<(), StoreError>;

    /// The function's tags; [`StoreError::NotFound`] if the function does not exist.
    async fn get_tags(&self, name: &FunctionName) -> Result<BTreeMap<String, String>, StoreError>;

    /// Add or overwrite tags and remove the keys in `remove`, atomically.
    async fn update_tags(
        &self,
        name: &FunctionName,
        set: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), StoreError>;

    /// Whether any function's `$LATEST` or published version uses the blob with this hex
    /// SHA-256, as its code or as a layer, or a layer version holds it.
    async fn code_in_use(&self, sha256_hex: &str) -> Result<bool, StoreError>;

    /// Number of functions, and the total size in bytes of the code packages of their
    /// `$LATEST` and published versions (each version counts, as in Lambda's `TotalCodeSize`).
    async fn usage(&self) -> Result<(u64, u64), StoreError>;

    /// Published version `version` of the function, if both exist.
    async fn get_function_version(
        &self,
        name: &FunctionName,
        version: u64,
    ) -> Result<Option<Function>, StoreError>;

    /// The function's alias named `alias`, if both exist.
    async fn get_alias(
        &self,
        name: &FunctionName,
        alias: &str,
    ) -> Result<Option<Alias>, StoreError>;

    /// The function's reserved concurrency; `None` if it has none (or does not exist).
    async fn get_function_concurrency(
        &self,
        name: &FunctionName,
    ) -> Result<Option<u32>, StoreError>;

    /// The sum of every function's reserved concurrency.
    async fn total_reserved_concurrency(&self) -> Result<u64, StoreError>;

    /// Set (`Some`) or remove (`None`) the function's reserved concurrency;
    /// [`StoreError::NotFound`] if the function does not exist. Whether the account can afford
    /// the reservation is the caller's rule.
    async fn put_function_concurrency(
        &self,
        name: &FunctionName,
        reserved: Option<u32>,
    ) -> Result<(), StoreError>;

    /// Publish `$LATEST` as a new version, atomically with its preconditions, and return the
    /// version.
    ///
    /// - [`StoreError::NotFound`]: no such function.
    /// - [`StoreError::RevisionMismatch`]: `expected_revision` is given and `$LATEST`'s
    ///   revision is another (checked first).
    /// - [`StoreError::CodeMismatch`]: `expected_code_sha256_hex` is given and `$LATEST`'s code
    ///   is another.
    ///
    /// If `$LATEST`'s code and settings are unchanged since the newest version was published
    /// (and that version still exists), that version is returned and nothing is written.
    /// Otherwise the new version takes the next number, one above any ever published for this
    /// function, even deleted ones. A non-empty `description` replaces `$LATEST`'s in the
    /// version; an empty one keeps it.
    async fn publish_version(
        &self,
        name: &FunctionName,
        expected_code_sha256_hex: Option<&str>,
        expected_revision: Option<&str>,
        description: &str,
    ) -> Result<Function, StoreError>;

    /// Up to `limit` versions of the function after `after` (`$LATEST` or a version number as
    /// returned earlier; `None` starts with `$LATEST`), `$LATEST` first and then published
    /// versions in ascending order; [`StoreError::NotFound`] if the function does not exist.
    async fn list_versions(
        &self,
        name: &FunctionName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<VersionPage, StoreError>;

    /// Delete published version `version`. [`StoreError::NotFound`] if the function or the
    /// version does not exist; [`StoreError::InUse`] with the alias names if aliases route to it.
    async fn delete_function_version(
        &self,
        name: &FunctionName,
        version: u64,
    ) -> Result<(), StoreError>;

    /// Store a new alias of `alias.function`. [`StoreError::AlreadyExists`] if the name is taken;
    /// [`StoreError::NotFound`] if the function or a published version the alias routes to does
    /// not exist.
    async fn create_alias(&self, alias: &Alias) -> Result<(), StoreError>;

    /// Replace an alias, provided its stored revision is still `expected_revision` (when given).
    /// [`StoreError::NotFound`] if the alias, its function or a published version it routes to
    /// does not exist; [`StoreError::RevisionMismatch`] if the revision changed.
    async fn update_alias(
        &self,
        alias: &Alias,
        expected_revision: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Delete an alias; [`StoreError::NotFound`] if the function or the alias does not exist.
    async fn delete_alias(&self, name: &FunctionName, alias: &str) -> Result<(), StoreError>;

    /// Up to `limit` aliases of the function whose names sort after `after`, in name order,
    /// only those pointing at `function_version` when it is given; [`StoreError::NotFound`] if
    /// the function does not exist.
    async fn list_aliases(
        &self,
        name: &FunctionName,
        function_version: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<AliasPage, StoreError>;

    /// Store a new function URL config. [`StoreError::NotFound`] if the function does not
    /// exist; [`StoreError::AlreadyExists`] if it has one for this qualifier already.
    async fn create_function_url(&self, url: &FunctionUrlConfig) -> Result<(), StoreError>;

    /// The function's URL config for `qualifier` (`$LATEST` or an alias), if any.
    async fn get_function_url(
        &self,
        name: &FunctionName,
        qualifier: &str,
    ) -> Result<Option<FunctionUrlConfig>, StoreError>;

    /// The URL config with this URL id, if any (what the gateway looks up per request).
    async fn get_function_url_by_id(
        &self,
        url_id: &str,
    ) -> Result<Option<FunctionUrlConfig>, StoreError>;

    /// Replace the URL config of `url.function` and `url.qualifier`; [`StoreError::NotFound`]
    /// if there is none.
    async fn update_function_url(&self, url: &FunctionUrlConfig) -> Result<(), StoreError>;

    /// Delete the function's URL config for `qualifier`; [`StoreError::NotFound`] if none.
    /// Deleting a function (or the alias a URL is for) deletes its URL configs too.
    async fn delete_function_url(
        &self,
        name: &FunctionName,
        qualifier: &str,
    ) -> Result<(), StoreError>;

    /// Up to `limit` URL configs of the function whose qualifiers sort after `after`, in
    /// qualifier order; [`StoreError::NotFound`] if the function does not exist.
    async fn list_function_urls(
        &self,
        name: &FunctionName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<FunctionUrlPage, StoreError>;

    /// Add or replace the gateway route with `route.route_key`.
    async fn put_route(&self, route: &HttpRoute) -> Result<(), StoreError>;

    /// Every gateway route, in route-key order.
    async fn list_routes(&self) -> Result<Vec<HttpRoute>, StoreError>;

    /// Delete the gateway route with this key; [`StoreError::NotFound`] if there is none.
    async fn delete_route(&self, route_key: &str) -> Result<(), StoreError>;

    /// Store a new version of `layer.name`: its number (returned in the stored value) is one
    /// more than the highest that layer ever had, deleted ones included.
    async fn publish_layer_version(
        &self,
        layer: &crate::layer::LayerVersion,
    ) -> Result<crate::layer::LayerVersion, StoreError>;

    /// One version of a layer.
    async fn get_layer_version(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<crate::layer::LayerVersion>, StoreError>;

    /// The versions of one layer (or of every layer), by name, newest version first.
    async fn list_layer_versions(
        &self,
        name: Option<&str>,
    ) -> Result<Vec<crate::layer::LayerVersion>, StoreError>;

    /// Delete a layer version; [`StoreError::NotFound`] if there is none.
    async fn delete_layer_version(&self, name: &str, version: u64) -> Result<(), StoreError>;
}

/// The address of a blob: lower-case hex SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(String);

impl BlobId {
    /// Wrap a hex digest; `None` unless it is 64 lower-case hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| Self(hex.to_owned()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(bytes);
        Self(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The hex digest.
    pub fn as_hex(&self) -> &str {
        &self.0
    }
}

/// Content-addressed, immutable byte blobs (code packages, later layers).
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Store `bytes` durably and atomically; a blob is either wholly present or absent.
    async fn put(&self, bytes: Bytes) -> Result<BlobId, StoreError>;

    /// The blob's bytes, if present.
    async fn get(&self, id: &BlobId) -> Result<Option<Bytes>, StoreError>;

    /// Remove a blob; absent blobs are not an error.
    async fn delete(&self, id: &BlobId) -> Result<(), StoreError>;

    /// Every stored blob with its age in seconds (for garbage collection).
    async fn list(&self) -> Result<Vec<(BlobId, u64)>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_ids_are_lowercase_sha256_hex() {
        let id = BlobId::of(b"");
        assert_eq!(
            id.as_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(BlobId::from_hex(id.as_hex()), Some(id));
        assert_eq!(BlobId::from_hex("../../etc/passwd"), None);
        assert_eq!(BlobId::from_hex(&"A".repeat(64)), None);
    }
}
