//! The file-system blob store: content addressing, atomic and immutable files, crash leftovers.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use nimbus_core::{BlobId, BlobStore};
use nimbus_store::FsBlobStore;
use sha2::{Digest, Sha256};

fn open(root: &Path) -> FsBlobStore {
    FsBlobStore::open(root).expect("open blob store")
}

fn blob_file(root: &Path, id: &BlobId) -> PathBuf {
    let hex = id.as_hex();
    root.join("sha256").join(&hex[..2]).join(hex)
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .collect()
}

#[tokio::test]
async fn put_then_get_round_trips_under_the_sha256() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    let bytes = Bytes::from_static(b"PK\x03\x04 pretend this is a zip");

    let id = store.put(bytes.clone()).await.expect("put");
    let expected: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(id.as_hex(), expected, "a blob is addressed by its SHA-256");
    assert_eq!(store.get(&id).await.expect("get"), Some(bytes.clone()));
    assert_eq!(
        fs::read(blob_file(dir.path(), &id)).expect("blob file"),
        bytes,
        "stored at sha256/<2 hex>/<64 hex>"
    );
    assert!(
        entries(&dir.path().join("tmp")).is_empty(),
        "no temporary file is left after a put"
    );

    let empty = store.put(Bytes::new()).await.expect("put empty");
    assert_eq!(
        empty.as_hex(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(store.get(&empty).await.expect("get"), Some(Bytes::new()));
}

#[tokio::test]
async fn get_and_delete_of_missing_blobs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    let absent = BlobId::of(b"never stored");
    assert_eq!(store.get(&absent).await.expect("get"), None);
    store
        .delete(&absent)
        .await
        .expect("deleting nothing is fine");

    let id = store
        .put(Bytes::from_static(b"short-lived"))
        .await
        .expect("put");
    store.delete(&id).await.expect("delete");
    assert_eq!(store.get(&id).await.expect("get"), None);
    store.delete(&id).await.expect("deleting twice is fine");
    assert!(store.list().await.expect("list").is_empty());
}

#[cfg(unix)]
#[tokio::test]
async fn putting_existing_bytes_does_not_rewrite_the_blob() {
    use std::os::unix::fs::MetadataExt;

    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    let bytes = Bytes::from_static(b"same bytes");
    let first = store.put(bytes.clone()).await.expect("first put");
    let inode = fs::metadata(blob_file(dir.path(), &first))
        .expect("stat")
        .ino();

    let second = store.put(bytes).await.expect("second put");
    assert_eq!(first, second);
    let after = fs::metadata(blob_file(dir.path(), &second))
        .expect("stat")
        .ino();
    assert_eq!(inode, after, "the existing file was replaced");
    assert_eq!(store.list().await.expect("list").len(), 1);
}

#[cfg(unix)]
#[tokio::test]
async fn blobs_are_read_only() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    let id = store
        .put(Bytes::from_static(b"immutable"))
        .await
        .expect("put");
    let mode = fs::metadata(blob_file(dir.path(), &id))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o444);
}

#[test]
fn open_removes_unfinished_uploads() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(open(dir.path()));
    let tmp = dir.path().join("tmp");
    // What a crash mid-upload leaves: a partial file, possibly already read-only.
    fs::write(tmp.join("0b6c1a4e.partial"), b"half a zi").expect("write leftover");
    let read_only = tmp.join("read-only.partial");
    fs::write(&read_only, b"whole but never renamed").expect("write leftover");
    let mut perms = fs::metadata(&read_only).expect("stat").permissions();
    perms.set_readonly(true);
    fs::set_permissions(&read_only, perms).expect("chmod");

    drop(open(dir.path()));
    assert!(entries(&tmp).is_empty(), "leftovers: {:?}", entries(&tmp));
}

#[tokio::test]
async fn list_reports_blobs_and_ignores_everything_else() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    let a = store.put(Bytes::from_static(b"a")).await.expect("put");
    let b = store.put(Bytes::from_static(b"b")).await.expect("put");

    let blobs = dir.path().join("sha256");
    let a_hex = a.as_hex();
    // Junk an operator or a crash might leave next to real blobs.
    fs::write(blobs.join("README"), b"not a shard").expect("write");
    fs::create_dir_all(blobs.join("zz")).expect("mkdir");
    fs::write(blobs.join("zz").join("f".repeat(64)), b"bad shard").expect("write");
    let a_shard = blobs.join(&a_hex[..2]);
    fs::write(a_shard.join("notes.txt"), b"not a hash").expect("write");
    fs::write(a_shard.join(a_hex.to_uppercase()), b"upper-case").expect("write");
    fs::write(a_shard.join(format!("{a_hex}.partial")), b"suffix").expect("write");
    fs::create_dir_all(a_shard.join("0".repeat(64))).expect("a directory, not a file");
    let misfiled = if &a_hex[..2] == "00" { "01" } else { "00" };
    fs::create_dir_all(blobs.join(misfiled)).expect("mkdir");
    fs::write(blobs.join(misfiled).join(a_hex), b"wrong shard").expect("write");

    let listed = store.list().await.expect("list");
    let mut ids: Vec<BlobId> = listed.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(ids, expected);
    for (id, age) in &listed {
        assert!(
            *age < 60,
            "{} was just written, yet is {age}s old",
            id.as_hex()
        );
    }
}

#[tokio::test]
async fn blobs_survive_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = Bytes::from(vec![7u8; 1 << 20]);
    let id = {
        let store = open(dir.path());
        store.put(bytes.clone()).await.expect("put")
    };
    let store = open(dir.path());
    assert_eq!(store.get(&id).await.expect("get"), Some(bytes));
    let listed = store.list().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, id);
}
