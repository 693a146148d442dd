//! Code packages unpacked once per digest into a read-only tree that every environment of that
//! code shares (`<root>/<sha256>`), and a function's layers merged once per ordered list of
//! digests into the tree its environments see at `/opt` (`<root>/layers-<sha256 of the list>`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use nimbus_core::layer::LayerRef;
use nimbus_core::package;
use nimbus_core::{BlobId, BlobStore, ServiceError};

/// Unpacks packages on first use and remembers where.
pub struct CodeCache {
    root: PathBuf,
    blobs: Arc<dyn BlobStore>,
    /// One lock per digest, so two cold starts of the same code unpack it once.
    unpacking: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl CodeCache {
    /// A cache under `root` (created if missing); leftovers of interrupted unpacks are removed.
    pub fn open(root: &Path, blobs: Arc<dyn BlobStore>) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        for entry in std::fs::read_dir(root)?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = make_writable_and_remove(&entry.path());
            }
        }
        Ok(Self {
            root: root.to_owned(),
            blobs,
            unpacking: Mutex::new(HashMap::new()),
        })
    }

    /// The directory holding the unpacked package with this digest.
    pub async fn directory(&self, sha256_hex: &str) -> Result<PathBuf, ServiceError> {
        let id = BlobId::from_hex(sha256_hex)
            .ok_or_else(|| internal(format!("invalid code digest {sha256_hex:?}")))?;
        let dir = self.root.join(id.as_hex());
        if dir.is_dir() {
            return Ok(dir);
        }
        let lock = {
            let mut map = self
                .unpacking
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Arc::clone(map.entry(id.as_hex().to_owned()).or_default())
        };
        let _guard = lock.lock().await;
        if dir.is_dir() {
            return Ok(dir);
        }
        let zip = self
            .blobs
            .get(&id)
            .await
            .map_err(|e| internal(format!("read code package {sha256_hex}: {e}")))?
            .ok_or_else(|| internal(format!("code package {sha256_hex} is missing")))?;
        let staging = self
            .root
            .join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        let target = dir.clone();
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            std::fs::create_dir(&staging).map_err(|e| e.to_string())?;
            let unpacked = package::unpack(&zip, &staging).map_err(|e| e.to_string());
            // Environments see the tree read-only through their mounts; the rename makes it
            // appear whole or not at all.
            let result = unpacked
                .and_then(|_| std::fs::rename(&staging, &target).map_err(|e| e.to_string()));
            if result.is_err() {
                let _ = make_writable_and_remove(&staging);
            }
            result
        })
        .await
        .map_err(|e| internal(format!("unpack task failed: {e}")))?
        .map_err(|e| internal(format!("unpack code package {sha256_hex}: {e}")))?;
        Ok(dir)
    }
}

impl CodeCache {
    /// The directory to show at `/opt` for these layers (in order, later ones win): none
    /// without layers, the layer's own tree for one, a merged tree for several.
    pub async fn layers_directory(
        &self,
        layers: &[LayerRef],
    ) -> Result<Option<PathBuf>, ServiceError> {
        match layers {
            [] => Ok(None),
            [one] => self.directory(&one.content.sha256_hex).await.map(Some),
            several => {
                let digests: Vec<&str> = several
                    .iter()
                    .map(|l| l.content.sha256_hex.as_str())
                    .collect();
                let key = format!(
                    "layers-{}",
                    BlobId::of(digests.join(",").as_bytes()).as_hex()
                );
                let dir = self.root.join(&key);
                if dir.is_dir() {
                    return Ok(Some(dir));
                }
                let mut sources = Vec::with_capacity(several.len());
                for digest in &digests {
                    sources.push(self.directory(digest).await?);
                }
                let lock = {
                    let mut map = self
                        .unpacking
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    Arc::clone(map.entry(key.clone()).or_default())
                };
                let _guard = lock.lock().await;
                if dir.is_dir() {
                    return Ok(Some(dir));
                }
                let staging = self
                    .root
                    .join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
                let target = dir.clone();
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    std::fs::create_dir(&staging)?;
                    let merged = sources
                        .iter()
                        .try_for_each(|source| overlay(source, &staging))
                        .and_then(|()| std::fs::rename(&staging, &target));
                    if merged.is_err() {
                        let _ = make_writable_and_remove(&staging);
                    }
                    merged
                })
                .await
                .map_err(|e| internal(format!("merge task failed: {e}")))?
                .map_err(|e| internal(format!("merge layers into {key}: {e}")))?;
                Ok(Some(dir))
            }
        }
    }
}

/// Copy the tree `source` over `dest`: directories merge, anything else replaces what `dest`
/// has at that path. Symlinks are copied as links, never followed, so a link from an earlier
/// layer cannot redirect a later layer's files out of the tree.
fn overlay(source: &Path, dest: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(source)? {
        let entry = entry?;
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let kind = entry.file_type()?;
        let existing = std::fs::symlink_metadata(&to).ok();
        if kind.is_dir() {
            match existing {
                Some(meta) if meta.is_dir() => {}
                Some(_) => {
                    std::fs::remove_file(&to)?;
                    std::fs::create_dir(&to)?;
                }
                None => std::fs::create_dir(&to)?,
            }
            overlay(&from, &to)?;
            continue;
        }
        match existing {
            Some(meta) if meta.is_dir() => std::fs::remove_dir_all(&to)?,
            Some(_) => std::fs::remove_file(&to)?,
            None => {}
        }
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else {
            std::fs::copy(&from, &to)?;
        }
    }
    Ok(())
}

fn make_writable_and_remove(path: &Path) -> std::io::Result<()> {
    std::fs::remove_dir_all(path)
}

fn internal(message: String) -> ServiceError {
    tracing::error!(%message, "code cache failure");
    ServiceError::Service("The function's code could not be prepared.".to_owned())
}
