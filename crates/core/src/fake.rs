//! In-memory implementations of the store traits, for tests of the layers above the store.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use crate::alias::Alias;
use crate::error::StoreError;
use crate::function::{Function, FunctionVersion};
use crate::layer::LayerVersion;
use crate::names::FunctionName;
use crate::store::{AliasPage, BlobId, BlobStore, FunctionPage, MetadataStore, VersionPage};
use crate::url::{FunctionUrlConfig, FunctionUrlPage, HttpRoute, LATEST};

type Entry = (Function, BTreeMap<String, String>);

/// A function's published versions, aliases and reservation, beside its entry.
#[derive(Debug, Default)]
struct Versioning {
    /// The highest version number ever published (deleted ones included).
    last_version: u64,
    /// Published versions with the fingerprint of the `$LATEST` they were cut from.
    versions: BTreeMap<u64, (Function, String)>,
    aliases: BTreeMap<String, Alias>,
    reserved: Option<u32>,
}

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
        version: FunctionVersion::Latest,
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
    /// Locked after `functions` whenever both are held.
    versioning: Mutex<BTreeMap<FunctionName, Versioning>>,
    /// Function URL configs by function and qualifier; locked after `versioning`.
    urls: Mutex<BTreeMap<(FunctionName, String), FunctionUrlConfig>>,
    /// Gateway routes by route key.
    routes: Mutex<BTreeMap<String, HttpRoute>>,
    /// Layer versions by name and version, and the highest version each layer ever had.
    layers: Mutex<Layers>,
}

/// Layer versions by (name, version), and the highest version each name ever had.
#[derive(Debug, Default)]
struct Layers(BTreeMap<(String, u64), LayerVersion>, BTreeMap<String, u64>);

type Guard<'a, T> = std::sync::MutexGuard<'a, BTreeMap<FunctionName, T>>;

impl MemoryMetadataStore {
    fn lock(&self) -> Guard<'_, Entry> {
        self.functions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn versioning(&self) -> Guard<'_, Versioning> {
        self.versioning
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Both maps, locked in the one order that cannot deadlock.
    fn lock_all(&self) -> (Guard<'_, Entry>, Guard<'_, Versioning>) {
        let functions = self.lock();
        (functions, self.versioning())
    }
}

/// Every published version an alias routes to exists.
fn routes_exist(v: &Versioning, alias: &Alias) -> bool {
    alias
        .published_versions()
        .iter()
        .all(|n| v.versions.contains_key(n))
}

#[async_trait]
impl MetadataStore for MemoryMetadataStore {
    async fn create_function(
        &self,
        function: &Function,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let (mut map, mut versioning) = self.lock_all();
        if map.contains_key(&function.name) {
            return Err(StoreError::AlreadyExists);
        }
        map.insert(function.name.clone(), (function.clone(), tags.clone()));
        versioning.insert(function.name.clone(), Versioning::default());
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
        let (mut map, mut versioning) = self.lock_all();
        map.remove(name).ok_or(StoreError::NotFound)?;
        versioning.remove(name);
        lock(&self.urls).retain(|(function, _), _| function != name);
        Ok(())
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
        let (map, versioning) = self.lock_all();
        let uses = |f: &Function| {
            f.code.sha256_hex == sha256_hex
                || f.settings
                    .layers
                    .iter()
                    .any(|l| l.content.sha256_hex == sha256_hex)
        };
        let latest = map.values().any(|(f, _)| uses(f));
        let published = versioning
            .values()
            .flat_map(|v| v.versions.values())
            .any(|(f, _)| uses(f));
        let layer = lock(&self.layers)
            .0
            .values()
            .any(|l| l.content.sha256_hex == sha256_hex);
        Ok(latest || published || layer)
    }

    async fn usage(&self) -> Result<(u64, u64), StoreError> {
        let (map, versioning) = self.lock_all();
        let latest: u64 = map.values().map(|(f, _)| f.code.size).sum();
        let published: u64 = versioning
            .values()
            .flat_map(|v| v.versions.values())
            .map(|(f, _)| f.code.size)
            .sum();
        Ok((map.len() as u64, latest + published))
    }

    async fn get_function_version(
        &self,
        name: &FunctionName,
        version: u64,
    ) -> Result<Option<Function>, StoreError> {
        let versioning = self.versioning();
        Ok(versioning
            .get(name)
            .and_then(|v| v.versions.get(&version))
            .map(|(f, _)| f.clone()))
    }

    async fn get_alias(
        &self,
        name: &FunctionName,
        alias: &str,
    ) -> Result<Option<Alias>, StoreError> {
        let versioning = self.versioning();
        Ok(versioning
            .get(name)
            .and_then(|v| v.aliases.get(alias))
            .cloned())
    }

    async fn get_function_concurrency(
        &self,
        name: &FunctionName,
    ) -> Result<Option<u32>, StoreError> {
        let versioning = self.versioning();
        Ok(versioning.get(name).and_then(|v| v.reserved))
    }

    async fn total_reserved_concurrency(&self) -> Result<u64, StoreError> {
        let versioning = self.versioning();
        Ok(versioning
            .values()
            .filter_map(|v| v.reserved)
            .map(u64::from)
            .sum())
    }

    async fn put_function_concurrency(
        &self,
        name: &FunctionName,
        reserved: Option<u32>,
    ) -> Result<(), StoreError> {
        let (map, mut versioning) = self.lock_all();
        if !map.contains_key(name) {
            return Err(StoreError::NotFound);
        }
        versioning.entry(name.clone()).or_default().reserved = reserved;
        Ok(())
    }

    async fn publish_version(
        &self,
        name: &FunctionName,
        expected_code_sha256_hex: Option<&str>,
        expected_revision: Option<&str>,
        description: &str,
    ) -> Result<Function, StoreError> {
        let (map, mut versioning) = self.lock_all();
        let (latest, _) = map.get(name).ok_or(StoreError::NotFound)?;
        if expected_revision.is_some_and(|r| r != latest.revision_id) {
            return Err(StoreError::RevisionMismatch);
        }
        if expected_code_sha256_hex.is_some_and(|c| c != latest.code.sha256_hex) {
            return Err(StoreError::CodeMismatch {
                current_sha256_hex: latest.code.sha256_hex.clone(),
            });
        }
        let v = versioning.entry(name.clone()).or_default();
        let source = latest.fingerprint();
        if let Some((newest, newest_source)) = v.versions.get(&v.last_version) {
            if *newest_source == source {
                return Ok(newest.clone());
            }
        }
        v.last_version += 1;
        let mut version = latest.clone();
        version.version = FunctionVersion::Published(v.last_version);
        version.revision_id = uuid::Uuid::new_v4().to_string();
        version.last_modified = chrono::Utc::now();
        if !description.is_empty() {
            description.clone_into(&mut version.settings.description);
        }
        v.versions.insert(v.last_version, (version.clone(), source));
        Ok(version)
    }

    async fn list_versions(
        &self,
        name: &FunctionName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<VersionPage, StoreError> {
        let (map, versioning) = self.lock_all();
        let (latest, _) = map.get(name).ok_or(StoreError::NotFound)?;
        let after = match after {
            None => None,
            // Nothing sorts after a marker this store never handed out.
            Some(a) => match FunctionVersion::parse(a) {
                Some(v) => Some(v),
                None => return Ok(VersionPage::default()),
            },
        };
        let mut all = std::iter::once(latest.clone())
            .chain(
                versioning
                    .get(name)
                    .into_iter()
                    .flat_map(|v| v.versions.values().map(|(f, _)| f.clone())),
            )
            .filter(|f| after.is_none_or(|a| f.version > a));
        let versions: Vec<Function> = all.by_ref().take(limit).collect();
        Ok(VersionPage {
            versions,
            more: all.next().is_some(),
        })
    }

    async fn delete_function_version(
        &self,
        name: &FunctionName,
        version: u64,
    ) -> Result<(), StoreError> {
        let (map, mut versioning) = self.lock_all();
        if !map.contains_key(name) {
            return Err(StoreError::NotFound);
        }
        let v = versioning.entry(name.clone()).or_default();
        if !v.versions.contains_key(&version) {
            return Err(StoreError::NotFound);
        }
        let users: Vec<String> = v
            .aliases
            .values()
            .filter(|a| a.references(version))
            .map(|a| a.name.clone())
            .collect();
        if !users.is_empty() {
            return Err(StoreError::InUse(users));
        }
        v.versions.remove(&version);
        Ok(())
    }

    async fn create_alias(&self, alias: &Alias) -> Result<(), StoreError> {
        let (map, mut versioning) = self.lock_all();
        if !map.contains_key(&alias.function) {
            return Err(StoreError::NotFound);
        }
        let v = versioning.entry(alias.function.clone()).or_default();
        if v.aliases.contains_key(&alias.name) {
            return Err(StoreError::AlreadyExists);
        }
        if !routes_exist(v, alias) {
            return Err(StoreError::NotFound);
        }
        v.aliases.insert(alias.name.clone(), alias.clone());
        Ok(())
    }

    async fn update_alias(
        &self,
        alias: &Alias,
        expected_revision: Option<&str>,
    ) -> Result<(), StoreError> {
        let (map, mut versioning) = self.lock_all();
        if !map.contains_key(&alias.function) {
            return Err(StoreError::NotFound);
        }
        let v = versioning.entry(alias.function.clone()).or_default();
        let stored = v.aliases.get(&alias.name).ok_or(StoreError::NotFound)?;
        if expected_revision.is_some_and(|r| r != stored.revision_id) {
            return Err(StoreError::RevisionMismatch);
        }
        if !routes_exist(v, alias) {
            return Err(StoreError::NotFound);
        }
        v.aliases.insert(alias.name.clone(), alias.clone());
        Ok(())
    }

    async fn delete_alias(&self, name: &FunctionName, alias: &str) -> Result<(), StoreError> {
        let (map, mut versioning) = self.lock_all();
        if !map.contains_key(name) {
            return Err(StoreError::NotFound);
        }
        versioning
            .get_mut(name)
            .and_then(|v| v.aliases.remove(alias))
            .ok_or(StoreError::NotFound)?;
        lock(&self.urls).remove(&(name.clone(), alias.to_owned()));
        Ok(())
    }

    async fn list_aliases(
        &self,
        name: &FunctionName,
        function_version: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<AliasPage, StoreError> {
        let (map, versioning) = self.lock_all();
        if !map.contains_key(name) {
            return Err(StoreError::NotFound);
        }
        let mut all = versioning
            .get(name)
            .into_iter()
            .flat_map(|v| v.aliases.values())
            .filter(|a| after.is_none_or(|after| a.name.as_str() > after))
            .filter(|a| function_version.is_none_or(|fv| a.function_version == fv))
            .cloned();
        let aliases: Vec<Alias> = all.by_ref().take(limit).collect();
        Ok(AliasPage {
            aliases,
            more: all.next().is_some(),
        })
    }

    async fn create_function_url(&self, url: &FunctionUrlConfig) -> Result<(), StoreError> {
        let (map, versioning) = self.lock_all();
        if !map.contains_key(&url.function) {
            return Err(StoreError::NotFound);
        }
        if url.qualifier != LATEST
            && !versioning
                .get(&url.function)
                .is_some_and(|v| v.aliases.contains_key(&url.qualifier))
        {
            return Err(StoreError::NotFound);
        }
        let mut urls = lock(&self.urls);
        let key = (url.function.clone(), url.qualifier.clone());
        if urls.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        urls.insert(key, url.clone());
        Ok(())
    }

    async fn get_function_url(
        &self,
        name: &FunctionName,
        qualifier: &str,
    ) -> Result<Option<FunctionUrlConfig>, StoreError> {
        Ok(lock(&self.urls)
            .get(&(name.clone(), qualifier.to_owned()))
            .cloned())
    }

    async fn get_function_url_by_id(
        &self,
        url_id: &str,
    ) -> Result<Option<FunctionUrlConfig>, StoreError> {
        Ok(lock(&self.urls)
            .values()
            .find(|u| u.url_id == url_id)
            .cloned())
    }

    async fn update_function_url(&self, url: &FunctionUrlConfig) -> Result<(), StoreError> {
        let mut urls = lock(&self.urls);
        let entry = urls
            .get_mut(&(url.function.clone(), url.qualifier.clone()))
            .ok_or(StoreError::NotFound)?;
        *entry = url.clone();
        Ok(())
    }

    async fn delete_function_url(
        &self,
        name: &FunctionName,
        qualifier: &str,
    ) -> Result<(), StoreError> {
        lock(&self.urls)
            .remove(&(name.clone(), qualifier.to_owned()))
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }

    async fn list_function_urls(
        &self,
        name: &FunctionName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<FunctionUrlPage, StoreError> {
        if !self.lock().contains_key(name) {
            return Err(StoreError::NotFound);
        }
        let urls = lock(&self.urls);
        let mut all = urls
            .iter()
            .filter(|((function, qualifier), _)| {
                function == name && after.is_none_or(|a| qualifier.as_str() > a)
            })
            .map(|(_, u)| u.clone());
        let page: Vec<FunctionUrlConfig> = all.by_ref().take(limit).collect();
        Ok(FunctionUrlPage {
            urls: page,
            more: all.next().is_some(),
        })
    }

    async fn put_route(&self, route: &HttpRoute) -> Result<(), StoreError> {
        lock(&self.routes).insert(route.route_key.clone(), route.clone());
        Ok(())
    }

    async fn list_routes(&self) -> Result<Vec<HttpRoute>, StoreError> {
        Ok(lock(&self.routes).values().cloned().collect())
    }

    async fn delete_route(&self, route_key: &str) -> Result<(), StoreError> {
        lock(&self.routes)
            .remove(route_key)
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }

    async fn publish_layer_version(
        &self,
        layer: &LayerVersion,
    ) -> Result<LayerVersion, StoreError> {
        let mut guard = lock(&self.layers);
        let Layers(versions, last) = &mut *guard;
        let next = last.get(&layer.name).copied().unwrap_or(0) + 1;
        last.insert(layer.name.clone(), next);
        let stored = LayerVersion {
            version: next,
            ..layer.clone()
        };
        versions.insert((layer.name.clone(), next), stored.clone());
        Ok(stored)
    }

    async fn get_layer_version(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<LayerVersion>, StoreError> {
        Ok(lock(&self.layers)
            .0
            .get(&(name.to_owned(), version))
            .cloned())
    }

    async fn list_layer_versions(
        &self,
        name: Option<&str>,
    ) -> Result<Vec<LayerVersion>, StoreError> {
        let mut all: Vec<LayerVersion> = lock(&self.layers)
            .0
            .values()
            .filter(|l| name.is_none_or(|n| l.name == n))
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name).then(b.version.cmp(&a.version)));
        Ok(all)
    }

    async fn delete_layer_version(&self, name: &str, version: u64) -> Result<(), StoreError> {
        lock(&self.layers)
            .0
            .remove(&(name.to_owned(), version))
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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
