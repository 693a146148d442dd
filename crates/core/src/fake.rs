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

/// A valid `provided.al2023` function named `name` whose code is the blob `sha256_hex`, with
/// Lambda's defaults; tests change the fields they care about.
pub fn function(name: &str, sha256_hex: &str) -> Function {
    let name = FunctionName::new(name).expect("test function names are valid");
    let settings = crate::validate::SettingsInput {
        runtime: Some("provided.al2023".into()),
        handler: Some("bootstrap".into()),
        role: Some("arn:aws:iam::000000000000:role/r".into()),
        ..Default::default()
    }
    .for_create(&name)
    .expect("the test settings are valid");
    Function {
        name,
        settings,
        code: crate::function::CodeRef {
            sha256_hex: sha256_hex.to_owned(),
            size: 1,
            unzipped_size: 1,
        },
        state: crate::function::FunctionState::Active,
        revision_id: "r1".into(),
        last_modified: chrono::Utc::now(),
    }
}

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

/// [`crate::logs::LogStore`] in a vector.
#[derive(Debug, Default)]
pub struct MemoryLogStore {
    events: Mutex<Vec<crate::logs::LogEvent>>,
}

#[async_trait]
impl crate::logs::LogStore for MemoryLogStore {
    async fn append(&self, events: Vec<crate::logs::LogEvent>) -> Result<(), StoreError> {
        let mut all = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for mut event in events {
            event.id = all.len() as u64 + 1;
            all.push(event);
        }
        Ok(())
    }

    async fn query(
        &self,
        q: &crate::logs::LogQuery,
    ) -> Result<Vec<crate::logs::LogEvent>, StoreError> {
        let all = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(all
            .iter()
            .filter(|e| e.group == q.group)
            .filter(|e| q.streams.is_empty() || q.streams.contains(&e.stream))
            .filter(|e| q.start_ms.is_none_or(|t| e.timestamp_ms >= t))
            .filter(|e| q.end_ms.is_none_or(|t| e.timestamp_ms < t))
            .filter(|e| q.contains.as_deref().is_none_or(|c| e.message.contains(c)))
            .filter(|e| q.after_id.is_none_or(|id| e.id > id))
            .take(q.limit)
            .cloned()
            .collect())
    }

    async fn streams(&self, group: &str) -> Result<Vec<crate::logs::LogStreamInfo>, StoreError> {
        let all = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut streams: BTreeMap<String, crate::logs::LogStreamInfo> = BTreeMap::new();
        for e in all.iter().filter(|e| e.group == group) {
            let s = streams
                .entry(e.stream.clone())
                .or_insert_with(|| crate::logs::LogStreamInfo {
                    name: e.stream.clone(),
                    first_ms: e.timestamp_ms,
                    last_ms: e.timestamp_ms,
                    events: 0,
                });
            s.last_ms = s.last_ms.max(e.timestamp_ms);
            s.events += 1;
        }
        let mut out: Vec<_> = streams.into_values().collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.last_ms));
        Ok(out)
    }
}
