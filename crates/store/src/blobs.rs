//! [`FsBlobStore`]: immutable, content-addressed blobs in a directory tree.
//!
//! Layout under the root directory:
//!
//! ```text
//! <root>/sha256/<first two hex digits>/<64 hex digits>   one file per blob, mode 0444
//! <root>/tmp/<uuid>.partial                              uploads in progress
//! ```
//!
//! A blob's name is the SHA-256 of its bytes, so writing the same bytes twice is a no-op and a
//! blob never changes once it exists. The two-digit shard keeps directories small enough for
//! every file system to list quickly.
//!
//! Writes are atomic and durable: the bytes go to a temporary file that is fsynced and then
//! renamed into place, and the destination directory is fsynced so the new name itself survives
//! power loss. A crash at any point leaves either the whole blob or nothing at its name; the
//! temporary files it may strand are removed by [`FsBlobStore::open`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use nimbus_core::{BlobId, BlobStore, StoreError};

use crate::run_blocking;

/// Directory holding the blobs, named after the hash that addresses them.
const BLOBS_DIR: &str = "sha256";
/// Directory holding uploads in progress; on the same file system as the blobs so that the
/// final rename is atomic.
const TMP_DIR: &str = "tmp";

/// An I/O failure with the operation and path it concerned, for a useful log line.
#[derive(Debug, thiserror::Error)]
#[error("blob store: {op} {}: {err}", path.display())]
struct IoError {
    op: &'static str,
    path: PathBuf,
    err: io::Error,
}

/// Wrap an [`io::Error`] from `op` on `path` as a [`StoreError::Backend`].
fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_owned();
    move |err| StoreError::backend(IoError { op, path, err })
}

/// [`BlobStore`] in a local directory.
///
/// Cloning is cheap and shares the root path.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: Arc<PathBuf>,
}

impl FsBlobStore {
    /// Open (creating if absent) the blob store rooted at `root`, removing uploads a crash left
    /// unfinished.
    ///
    /// Blocks on disk I/O; call it at start-up or from a blocking task.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let blobs = root.join(BLOBS_DIR);
        let tmp = root.join(TMP_DIR);
        fs::create_dir_all(&blobs).map_err(io_err("create", &blobs))?;
        fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
        // Nothing in tmp/ is referenced by anything: a blob only becomes visible when renamed
        // out of it. Whatever is left there is an upload that never completed.
        let mut removed = 0usize;
        for entry in fs::read_dir(&tmp).map_err(io_err("list", &tmp))? {
            let path = entry.map_err(io_err("list", &tmp))?.path();
            let result = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            result.map_err(io_err("remove", &path))?;
            removed += 1;
        }
        if removed > 0 {
            tracing::info!(removed, dir = %tmp.display(), "removed unfinished blob uploads");
        }
        Ok(Self {
            root: Arc::new(root.to_owned()),
        })
    }

    /// The file a blob lives in.
    fn blob_path(root: &Path, id: &BlobId) -> PathBuf {
        let hex = id.as_hex();
        root.join(BLOBS_DIR).join(&hex[..2]).join(hex)
    }
}

/// Write `bytes` as the blob `id` unless it exists already.
fn put_blocking(root: &Path, id: &BlobId, bytes: &[u8]) -> Result<(), StoreError> {
    let dest = FsBlobStore::blob_path(root, id);
    // Content addressing: an existing file with this name already holds exactly these bytes,
    // and since it only ever appears through an atomic rename it is complete.
    if dest.try_exists().map_err(io_err("check", &dest))? {
        // Refresh its age: garbage collection spares young blobs, and this one is about to be
        // referenced by a new function even if nothing referred to it a moment ago.
        fs::File::open(&dest)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()))
            .map_err(io_err("touch", &dest))?;
        return Ok(());
    }
    let shard = dest
        .parent()
        .expect("a blob path always has its shard directory as parent")
        .to_owned();
    if !shard.try_exists().map_err(io_err("check", &shard))? {
        fs::create_dir_all(&shard).map_err(io_err("create", &shard))?;
        // The new shard's own directory entry must be durable too, or the blob inside it could
        // vanish with it after a power loss.
        sync_dir(&root.join(BLOBS_DIR))?;
    }

    let tmp = root
        .join(TMP_DIR)
        .join(format!("{}.partial", uuid::Uuid::new_v4()));
    if let Err(err) = write_tmp(&tmp, bytes) {
        // Best effort: open() sweeps tmp/ anyway, but a failing disk should not fill up with
        // partial uploads until the next restart.
        let _ = fs::remove_file(&tmp);
        return Err(err);
    }
    // rename(2) replaces the name atomically: readers see no file or the whole blob. A racing
    // put of the same bytes renames identical contents over it, which is harmless.
    if let Err(err) = fs::rename(&tmp, &dest) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("rename into place", &dest)(err));
    }
    // The rename lives in the directory, not in the file: without syncing the directory a
    // power loss could forget the new name even though the put returned. (Not syncing tmp/ is
    // fine: a resurrected temporary name is swept on the next open.)
    sync_dir(&shard)
}

/// Write and fsync the temporary file, read-only before it gets its final name.
fn write_tmp(tmp: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(io_err("create", tmp))?;
    file.write_all(bytes).map_err(io_err("write", tmp))?;
    // Blobs are immutable; a read-only mode guards against accidental edits by tools or people.
    // Set on the open handle so the file never appears under its final name writable.
    read_only(&file)
        .and_then(|perms| file.set_permissions(perms))
        .map_err(io_err("set permissions of", tmp))?;
    // Data and metadata on disk before the rename publishes the name; otherwise a crash could
    // leave a complete-looking name with missing contents.
    file.sync_all().map_err(io_err("sync", tmp))
}

/// Read-only permissions for `file`: `0444` on Unix, the read-only attribute elsewhere.
#[cfg(unix)]
fn read_only(_file: &File) -> io::Result<fs::Permissions> {
    use std::os::unix::fs::PermissionsExt;
    Ok(fs::Permissions::from_mode(0o444))
}

/// Read-only permissions for `file`: `0444` on Unix, the read-only attribute elsewhere.
#[cfg(not(unix))]
fn read_only(file: &File) -> io::Result<fs::Permissions> {
    let mut perms = file.metadata()?.permissions();
    perms.set_readonly(true);
    Ok(perms)
}

/// fsync a directory, making the names created in it durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", dir))
}

/// Other platforms cannot open directories for syncing; their file systems order renames.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// Every blob under `root` with its age in seconds, skipping anything that is not a blob.
fn list_blocking(root: &Path) -> Result<Vec<(BlobId, u64)>, StoreError> {
    let blobs = root.join(BLOBS_DIR);
    let now = SystemTime::now();
    let mut found = Vec::new();
    for shard in fs::read_dir(&blobs).map_err(io_err("list", &blobs))? {
        let shard = shard.map_err(io_err("list", &blobs))?;
        let shard_name = shard.file_name();
        let Some(prefix) = shard_name.to_str().filter(|p| is_shard_name(p)) else {
            continue;
        };
        let shard_path = shard.path();
        if !shard_path.is_dir() {
            continue;
        }
        for entry in fs::read_dir(&shard_path).map_err(io_err("list", &shard_path))? {
            let entry = entry.map_err(io_err("list", &shard_path))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(BlobId::from_hex) else {
                continue;
            };
            // A blob filed under the wrong shard is unreachable by get/delete; leave it alone.
            if !id.as_hex().starts_with(prefix) {
                continue;
            }
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                // Deleted between listing and stat: it is no longer stored.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("stat", &entry.path())(e)),
            };
            if !meta.is_file() {
                continue;
            }
            let modified = meta.modified().map_err(io_err("stat", &entry.path()))?;
            // A clock set back makes mtimes lie in the future; call those blobs brand new
            // rather than failing, so garbage collection errs on the side of keeping them.
            let age = now.duration_since(modified).unwrap_or_default().as_secs();
            found.push((id, age));
        }
    }
    found.sort();
    Ok(found)
}

fn is_shard_name(name: &str) -> bool {
    name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, bytes: Bytes) -> Result<BlobId, StoreError> {
        let root = Arc::clone(&self.root);
        run_blocking(move || {
            // Hashing a package of tens of megabytes is CPU work; keep it off the executor too.
            let id = BlobId::of(&bytes);
            put_blocking(&root, &id, &bytes)?;
            Ok(id)
        })
        .await
    }

    async fn get(&self, id: &BlobId) -> Result<Option<Bytes>, StoreError> {
        let path = Self::blob_path(&self.root, id);
        run_blocking(move || match fs::read(&path) {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        })
        .await
    }

    async fn delete(&self, id: &BlobId) -> Result<(), StoreError> {
        let path = Self::blob_path(&self.root, id);
        // No directory sync: if a power loss resurrects the name, the blob is merely garbage
        // that the next collection removes again.
        run_blocking(move || match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &path)(e)),
        })
        .await
    }

    async fn list(&self) -> Result<Vec<(BlobId, u64)>, StoreError> {
        let root = Arc::clone(&self.root);
        run_blocking(move || list_blocking(&root)).await
    }
}
