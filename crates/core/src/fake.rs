//! In-memory implementations of the store traits, for tests of the layers above the store.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::StoreError;
use crate::function::Function;
use crate::names::FunctionName;
use crate::store::{BlobId, BlobStore, FunctionPage, MetadataStore};

type Entry = (Function, BTreeMap<String, String>);

/// [`MetadataStore`] in a map.
#[derive(Debug, Default)]
pub struct MemoryMetadataStore {
    functions: Mutex<BTreeMap<FunctionName, Entry>>,
}

impl MemoryMetadataStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<FunctionName, Entry>> {
        self.functions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl MetadataStore for MemoryMetadataStore {
    async fn create_function(
        &self,
        function: &Function,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let mut map = self.lock();
        if map.contains_key(&function.name) {
            return Err(StoreError::AlreadyExists);
        }
        map.insert(function.name.clone(), (function.clone(), tags.clone()));
        Ok(())
    }

    async fn get_function(&self, name: &FunctionName) -> Result<Option<Function>, StoreError> {
        Ok(self.lock().get(name).map(|(f, _)| f.clone()))
    }

    async fn list_functions(
        &self,
        after: Option<&FunctionName>,
        limit: usize,
    ) -> Result<FunctionPage, StoreError> {
        let map = self.lock();
        let mut rest = map
            .iter()
            .filter(|(name, _)| after.is_none_or(|a| *name > a))
            .map(|(_, (f, _))| f.clone());
        let functions: Vec<Function> = rest.by_ref().take(limit).collect();
        Ok(FunctionPage {
            functions,
            more: rest.next().is_some(),
        })
    }

    async fn update_function(
        &self,
        function: &Function,
        expected_revision: &str,
    ) -> Result<(), StoreError> {
        let mut map = self.lock();
        let entry = map.get_mut(&function.name).ok_or(StoreError::NotFound)?;
        if entry.0.revision_id != expected_revision {
            return Err(StoreError::RevisionMismatch);
        }
        entry.0 = function.clone();
        Ok(())
    }

    async fn delete_function(&self, name: &FunctionName) -> Result<(), StoreError> {
        self.lock()
            .remove(name)
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }

    async fn get_tags(&self, name: &FunctionName) -> Result<BTreeMap<String, String>, StoreError> {
        self.lock()
            .get(name)
            .map(|(_, t)| t.clone())
            .ok_or(StoreError::NotFound)
    }

    async fn update_tags(
        &self,
        name: &FunctionName,
        set: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), StoreError> {
        let mut map = self.lock();
        let (_, tags) = map.get_mut(name).ok_or(StoreError::NotFound)?;
        tags.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        for key in remove {
            tags.remove(key);
        }
        Ok(())
    }

    async fn code_in_use(&self, sha256_hex: &str) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .values()
            .any(|(f, _)| f.code.sha256_hex == sha256_hex))
    }

    async fn usage(&self) -> Result<(u64, u64), StoreError> {
        let map = self.lock();
        Ok((
            map.len() as u64,
            map.values().map(|(f, _)| f.code.size).sum(),
        ))
    }
}

/// [`BlobStore`] in a map.
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    blobs: Mutex<BTreeMap<BlobId, Bytes>>,
}

impl MemoryBlobStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<BlobId, Bytes>> {
        self.blobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, bytes: Bytes) -> Result<BlobId, StoreError> {
        let id = BlobId::of(&bytes);
        self.lock().insert(id.clone(), bytes);
        Ok(id)
    }

    async fn get(&self, id: &BlobId) -> Result<Option<Bytes>, StoreError> {
        Ok(self.lock().get(id).cloned())
    }

    async fn delete(&self, id: &BlobId) -> Result<(), StoreError> {
        self.lock().remove(id);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<(BlobId, u64)>, StoreError> {
        Ok(self.lock().keys().map(|id| (id.clone(), 0)).collect())
    }
}
