//! The seams behind which state lives: function metadata and content-addressed blobs.
//!
//! The embedded backends (SQLite, a blob directory) live in `nimbus-store`; a clustered backend
//! implements the same traits, so callers never change.

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::StoreError;
use crate::function::Function;
use crate::names::FunctionName;

/// One page of functions in name order.
#[derive(Debug, Clone, Default)]
pub struct FunctionPage {
    /// The functions on this page.
    pub functions: Vec<Function>,
    /// Whether more functions follow the last one on this page.
    pub more: bool,
}

/// Durable metadata: functions and their tags.
///
/// Every mutation is durable (committed and on disk) when the call returns.
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

    /// Delete a function and its tags; [`StoreError::NotFound`] if there was none.
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

    /// Whether any function's code is the blob with this hex SHA-256.
    async fn code_in_use(&self, sha256_hex: &str) -> Result<bool, StoreError>;

    /// Number of functions and the total size of their code packages in bytes.
    async fn usage(&self) -> Result<(u64, u64), StoreError>;
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
