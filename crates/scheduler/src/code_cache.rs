//! Code packages unpacked once per digest into a read-only tree that every environment of that
//! code shares (`<root>/<sha256>`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

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

fn make_writable_and_remove(path: &Path) -> std::io::Result<()> {
    std::fs::remove_dir_all(path)
}

fn internal(message: String) -> ServiceError {
    tracing::error!(%message, "code cache failure");
    ServiceError::Service("The function's code could not be prepared.".to_owned())
}
