//! What only a database on disk can show: durability across reopening, concurrent writers,
//! schema migrations and refusing what it cannot read.

use std::path::Path;

use nimbus_core::{MetadataStore, StoreError};
use nimbus_store::{SqliteMetadataStore, UnsupportedSchemaVersion};
use tempfile::TempDir;

use crate::{function, name, sha, tags};

fn db_in(dir: &TempDir) -> std::path::PathBuf {
    dir.path().join("meta.db")
}

/// A side connection, as an operator's `sqlite3` shell would open.
fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("open raw connection")
}

fn user_version(path: &Path) -> i64 {
    raw(path)
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("read user_version")
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original = function("durable", &sha('a'), 42);
    let updated = function("durable", &sha('b'), 43);
    {
        let store = SqliteMetadataStore::open(&db_in(&dir)).expect("open");
        store
            .create_function(&original, &tags(&[("env", "prod")]))
            .await
            .expect("create");
        store
            .update_function(&updated, &original.revision_id)
            .await
            .expect("update");
        store
            .update_tags(&name("durable"), &tags(&[("owner", "me")]), &[])
            .await
            .expect("tag");
        store
            .create_function(&function("doomed", &sha('c'), 1), &tags(&[]))
            .await
            .expect("create");
        store
            .delete_function(&name("doomed"))
            .await
            .expect("delete");
    } // Dropping the store closes the connection.

    let store = SqliteMetadataStore::open(&db_in(&dir)).expect("reopen");
    let got = store.get_function(&name("durable")).await.expect("get");
    assert_eq!(got, Some(updated));
    let got_tags = store.get_tags(&name("durable")).await.expect("tags");
    assert_eq!(got_tags, tags(&[("env", "prod"), ("owner", "me")]));
    assert_eq!(
        store.get_function(&name("doomed")).await.expect("get"),
        None
    );
    assert_eq!(store.usage().await.expect("usage"), (1, 43));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_all_succeed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteMetadataStore::open(&db_in(&dir)).expect("open");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let f = function(&format!("fn-{i:02}"), &sha('a'), 1);
                store
                    .create_function(&f, &tags(&[("index", &i.to_string())]))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task panicked").expect("create");
    }
    assert_eq!(store.usage().await.expect("usage"), (20, 20));
    let page = store.list_functions(None, 100).await.expect("list");
    let names: Vec<String> = page.functions.iter().map(|f| f.name.to_string()).collect();
    let expected: Vec<String> = (0..20).map(|i| format!("fn-{i:02}")).collect();
    assert_eq!(names, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creates_of_one_name_have_one_winner() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteMetadataStore::open(&db_in(&dir)).expect("open");
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create_function(&function("contended", &sha('a'), 1), &tags(&[]))
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.expect("task panicked") {
            Ok(()) => won += 1,
            Err(StoreError::AlreadyExists) => {}
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn migrations_are_idempotent_across_reopens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_in(&dir);
    {
        let store = SqliteMetadataStore::open(&path).expect("first open creates the schema");
        store
            .create_function(&function("kept", &sha('a'), 7), &tags(&[("k", "v")]))
            .await
            .expect("create");
    }
    assert_eq!(user_version(&path), SqliteMetadataStore::SCHEMA_VERSION);
    for _ in 0..3 {
        let store = SqliteMetadataStore::open(&path).expect("reopen must not re-run migrations");
        assert_eq!(store.usage().await.expect("usage"), (1, 7));
        assert_eq!(
            store.get_tags(&name("kept")).await.expect("tags"),
            tags(&[("k", "v")])
        );
    }
    assert_eq!(user_version(&path), SqliteMetadataStore::SCHEMA_VERSION);
}

#[test]
fn database_is_configured_for_durability() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_in(&dir);
    drop(SqliteMetadataStore::open(&path).expect("open"));
    // WAL mode is a property of the database file, visible to any later connection.
    let mode: String = raw(&path)
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
}

#[test]
fn a_database_from_a_newer_binary_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_in(&dir);
    drop(SqliteMetadataStore::open(&path).expect("open"));
    let future = SqliteMetadataStore::SCHEMA_VERSION + 1;
    raw(&path)
        .pragma_update(None, "user_version", future)
        .expect("set user_version");

    let err = SqliteMetadataStore::open(&path).expect_err("a future schema must be refused");
    let StoreError::Backend(source) = &err else {
        panic!("expected a backend error, got {err:?}");
    };
    let version = source
        .downcast_ref::<UnsupportedSchemaVersion>()
        .expect("the cause names the schema versions");
    assert_eq!(version.found, future);
    assert_eq!(version.known, SqliteMetadataStore::SCHEMA_VERSION);
    assert!(err.to_string().contains("newer"), "unclear message: {err}");
    // Refusing must not touch the database.
    assert_eq!(user_version(&path), future);
}

#[tokio::test]
async fn a_corrupt_record_is_a_backend_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_in(&dir);
    let store = SqliteMetadataStore::open(&path).expect("open");
    store
        .create_function(&function("mangled", &sha('a'), 1), &tags(&[]))
        .await
        .expect("create");
    raw(&path)
        .execute(
            "UPDATE functions SET body = '{not json' WHERE name = 'mangled'",
            [],
        )
        .expect("corrupt the row");
    // The store caches what it wrote, so damage done behind its back shows at the next open.
    drop(store);
    let store = SqliteMetadataStore::open(&path).expect("reopen");

    let err = store
        .get_function(&name("mangled"))
        .await
        .expect_err("a corrupt body must not read back");
    assert!(matches!(err, StoreError::Backend(_)), "got {err:?}");
    let err = store
        .list_functions(None, 10)
        .await
        .expect_err("a corrupt body must not list");
    assert!(matches!(err, StoreError::Backend(_)), "got {err:?}");
    // The columns beside the body still work, so the function can be found and removed.
    assert!(store.code_in_use(&sha('a')).await.expect("in use"));
    store
        .delete_function(&name("mangled"))
        .await
        .expect("delete");
}

#[tokio::test]
async fn versions_aliases_and_reservations_survive_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original = function("durable", &sha('a'), 42);
    let (v1, live) = {
        let store = SqliteMetadataStore::open(&db_in(&dir)).expect("open");
        store
            .create_function(&original, &tags(&[]))
            .await
            .expect("create");
        let v1 = store
            .publish_version(&name("durable"), None, None, "first")
            .await
            .expect("publish");
        store
            .update_function(&function("durable", &sha('b'), 43), &original.revision_id)
            .await
            .expect("update");
        let v2 = store
            .publish_version(&name("durable"), None, None, "")
            .await
            .expect("publish");
        store
            .delete_function_version(&name("durable"), 2)
            .await
            .expect("delete v2");
        assert_eq!(v2.version, nimbus_core::FunctionVersion::Published(2));
        let live = nimbus_core::Alias {
            name: "live".into(),
            function: name("durable"),
            function_version: "1".into(),
            description: "the live one".into(),
            routing: Default::default(),
            revision_id: "a1".into(),
        };
        store.create_alias(&live).await.expect("alias");
        store
            .put_function_concurrency(&name("durable"), Some(7))
            .await
            .expect("reserve");
        (v1, live)
    };

    let store = SqliteMetadataStore::open(&db_in(&dir)).expect("reopen");
    assert_eq!(
        store
            .get_function_version(&name("durable"), 1)
            .await
            .expect("get"),
        Some(v1)
    );
    assert_eq!(
        store
            .get_alias(&name("durable"), "live")
            .await
            .expect("get"),
        Some(live)
    );
    assert_eq!(
        store
            .get_function_concurrency(&name("durable"))
            .await
            .expect("get"),
        Some(7)
    );
    assert_eq!(store.total_reserved_concurrency().await.expect("total"), 7);
    // The counter survived too: version 2 was deleted, the next one is 3.
    let v3 = store
        .publish_version(&name("durable"), None, None, "")
        .await
        .expect("publish");
    assert_eq!(v3.version, nimbus_core::FunctionVersion::Published(3));
    assert_eq!(store.usage().await.expect("usage"), (1, 42 + 43 + 43));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_publishes_of_unchanged_code_make_one_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteMetadataStore::open(&db_in(&dir)).expect("open");
    store
        .create_function(&function("race", &sha('a'), 1), &tags(&[]))
        .await
        .expect("create");
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .publish_version(&name("race"), None, None, "")
                    .await
                    .map(|f| f.version)
            })
        })
        .collect();
    for task in tasks {
        let version = task.await.expect("task panicked").expect("publish");
        assert_eq!(version, nimbus_core::FunctionVersion::Published(1));
    }
    let page = store
        .list_versions(&name("race"), None, 10)
        .await
        .expect("list");
    assert_eq!(page.versions.len(), 2, "$LATEST and version 1");
}

/// The schema of version 1, as shipped: databases written before versions existed look like
/// this, with function bodies that carry no `version` member.
const SCHEMA_V1: &str = "CREATE TABLE functions (
         name        TEXT    NOT NULL PRIMARY KEY,
         revision_id TEXT    NOT NULL,
         code_sha256 TEXT    NOT NULL,
         code_size   INTEGER NOT NULL CHECK (code_size >= 0),
         body        TEXT    NOT NULL,
         created_at  TEXT    NOT NULL,
         updated_at  TEXT    NOT NULL
     ) STRICT;
     CREATE INDEX functions_code_sha256 ON functions (code_sha256);
     CREATE TABLE function_tags (
         function_name TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
         key           TEXT NOT NULL,
         value         TEXT NOT NULL,
         PRIMARY KEY (function_name, key)
     ) STRICT;
     PRAGMA user_version = 1;";

#[tokio::test]
async fn a_database_from_before_versions_is_migrated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_in(&dir);
    let old = function("legacy", &sha('a'), 9);
    {
        let conn = raw(&path);
        conn.execute_batch(SCHEMA_V1).expect("create v1 schema");
        let mut body = serde_json::to_value(&old).expect("encode");
        body.as_object_mut().expect("object").remove("version");
        conn.execute(
            "INSERT INTO functions VALUES ('legacy', ?1, ?2, 9, ?3, 'then', 'then')",
            rusqlite::params![old.revision_id, sha('a'), body.to_string()],
        )
        .expect("insert a v1 row");
        conn.execute(
            "INSERT INTO function_tags VALUES ('legacy', 'team', 'core')",
            [],
        )
        .expect("insert a tag");
    }
    assert_eq!(user_version(&path), 1);

    let store = SqliteMetadataStore::open(&path).expect("open migrates");
    assert_eq!(user_version(&path), SqliteMetadataStore::SCHEMA_VERSION);
    let got = store
        .get_function(&name("legacy"))
        .await
        .expect("get")
        .expect("the old function is still there");
    assert_eq!(got, old, "an old body reads back as $LATEST");
    assert_eq!(
        store.get_tags(&name("legacy")).await.expect("tags"),
        tags(&[("team", "core")])
    );
    assert_eq!(
        store
            .get_function_concurrency(&name("legacy"))
            .await
            .expect("get"),
        None
    );
    let v1 = store
        .publish_version(&name("legacy"), None, None, "")
        .await
        .expect("publish");
    assert_eq!(v1.version, nimbus_core::FunctionVersion::Published(1));
    store
        .delete_function(&name("legacy"))
        .await
        .expect("delete");
}
