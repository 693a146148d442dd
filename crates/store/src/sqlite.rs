//! [`SqliteMetadataStore`]: function metadata in an embedded SQLite database.
//!
//! Durability comes from SQLite itself: the database runs in WAL mode with `synchronous=FULL`,
//! which fsyncs the log on every commit, and every mutation runs in its own transaction that is
//! committed before the call returns. A write the caller saw succeed therefore survives a crash
//! or power loss; one that did not return may or may not have happened, but never half-happened.
//!
//! Each function is stored whole as the JSON of [`Function`] in `functions.body`; the columns
//! beside it (`revision_id`, `code_sha256`, `code_size`) are copies that the store queries on,
//! so the schema does not have to follow every new setting. Tags live in `function_tags`, whose
//! foreign key removes them together with their function.
//!
//! The schema is versioned with `PRAGMA user_version` and upgraded at [`SqliteMetadataStore::open`]
//! by the numbered [`MIGRATIONS`]. A database written by a newer binary is refused rather than
//! guessed at.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use nimbus_core::{Function, FunctionName, FunctionPage, MetadataStore, StoreError};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::run_blocking;

/// The schema, one migration per version: applying `MIGRATIONS[i]` takes the database from
/// version `i` to `i + 1`. Append only; never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: functions and their tags.
    "CREATE TABLE functions (
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
     ) STRICT;",
];

/// How long a statement waits for a lock held by another connection (another process, or an
/// operator's `sqlite3` shell) before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The database was written by a newer Nimbus whose schema this binary does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "metadata database has schema version {found}, newer than the {known} this binary knows; \
     run a newer Nimbus or restore a backup"
)]
pub struct UnsupportedSchemaVersion {
    /// The version recorded in the database.
    pub found: i64,
    /// The newest version this binary can migrate to.
    pub known: i64,
}

/// [`MetadataStore`] backed by an SQLite database file.
///
/// Cloning is cheap and shares the connection. Calls are serialised on that one connection,
/// each on tokio's blocking pool.
#[derive(Debug, Clone)]
pub struct SqliteMetadataStore {
    conn: Arc<Mutex<Connection>>,
    /// Functions by name, as last read or written. Every invoke reads its function, so this
    /// keeps SQLite and JSON decoding off the hot path. It stays coherent because this store is
    /// the database's only writer (the server locks its data directory) and the cache changes
    /// only while the connection lock is held, in the same order as the database.
    cache: Arc<Mutex<HashMap<String, Function>>>,
}

impl SqliteMetadataStore {
    /// The schema version this binary creates and understands.
    pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

    /// Open (creating if absent) the database at `path` and bring its schema up to date.
    ///
    /// Blocks on disk I/O; call it at start-up or from a blocking task. Fails with
    /// [`StoreError::Backend`] wrapping [`UnsupportedSchemaVersion`] if the database is newer
    /// than this binary.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).map_err(StoreError::backend)?;
        configure(&conn)?;
        migrate(&mut conn)?;
        tracing::debug!(path = %path.display(), version = Self::SCHEMA_VERSION, "opened metadata store");
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            cache: Arc::default(),
        })
    }

    /// Run `work` with the connection on the blocking pool.
    async fn with_conn<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        run_blocking(move || {
            // A panic while the lock was held cannot leave a half-applied write behind: the open
            // transaction rolls back when its guard is dropped during unwinding. So a poisoned
            // connection is still consistent and safe to keep using.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut conn)
        })
        .await
    }
}

/// Per-connection settings; these must be set outside any transaction.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(StoreError::backend)?;
    // WAL lets readers proceed during a write and makes commits a single sequential append.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(StoreError::backend)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "SQLite refused WAL journal mode");
    }
    // FULL fsyncs the WAL at every commit: an acknowledged write survives power loss. (NORMAL,
    // the usual WAL pairing, may lose the last commits.)
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(StoreError::backend)?;
    // Off by default in SQLite; the tag cascade depends on it.
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(StoreError::backend)?;
    Ok(())
}

/// Apply the migrations the database lacks, all in one transaction: a crash mid-upgrade leaves
/// the old version intact, and two processes opening at once cannot both migrate.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let known = SqliteMetadataStore::SCHEMA_VERSION;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::backend)?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(StoreError::backend)?;
    // A negative version is no version Nimbus ever wrote; treat it like an unknown future one.
    let Ok(applied) = usize::try_from(found) else {
        return Err(StoreError::backend(UnsupportedSchemaVersion {
            found,
            known,
        }));
    };
    if found > known {
        return Err(StoreError::backend(UnsupportedSchemaVersion {
            found,
            known,
        }));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let version = index + 1;
        tx.execute_batch(sql).map_err(StoreError::backend)?;
        // user_version lives in the database header, so it commits or rolls back with the rest.
        tx.pragma_update(None, "user_version", version)
            .map_err(StoreError::backend)?;
        tracing::info!(version, "applied metadata schema migration");
    }
    tx.commit().map_err(StoreError::backend)
}

/// Start a write transaction. IMMEDIATE takes the write lock up front, so a concurrent writer
/// makes us wait (up to the busy timeout) instead of failing when a read turns into a write.
fn write_tx(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::backend)
}

/// A function ready to be written: its JSON body and the columns derived from it.
struct Row {
    name: String,
    revision_id: String,
    code_sha256: String,
    code_size: i64,
    body: String,
}

impl Row {
    fn encode(function: &Function) -> Result<Self, StoreError> {
        Ok(Self {
            name: function.name.as_str().to_owned(),
            revision_id: function.revision_id.clone(),
            code_sha256: function.code.sha256_hex.clone(),
            code_size: i64::try_from(function.code.size).map_err(StoreError::backend)?,
            body: serde_json::to_string(function).map_err(StoreError::backend)?,
        })
    }
}

/// Parse a stored body. Corruption is a backend error, never a panic.
fn decode(body: &str) -> Result<Function, StoreError> {
    serde_json::from_str(body).map_err(StoreError::backend)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

/// Whether the function exists, inside an open transaction.
fn exists(tx: &rusqlite::Transaction<'_>, name: &str) -> Result<bool, StoreError> {
    tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM functions WHERE name = ?1)",
        [name],
        |row| row.get(0),
    )
    .map_err(StoreError::backend)
}

fn is_primary_key_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

#[async_trait]
impl MetadataStore for SqliteMetadataStore {
    async fn create_function(
        &self,
        function: &Function,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let row = Row::encode(function)?;
        let tags = tags.clone();
        let (cache, function) = (Arc::clone(&self.cache), function.clone());
        self.with_conn(move |conn| {
            let tx = write_tx(conn)?;
            let at = now();
            let inserted = tx.execute(
                "INSERT INTO functions
                     (name, revision_id, code_sha256, code_size, body, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![
                    row.name,
                    row.revision_id,
                    row.code_sha256,
                    row.code_size,
                    row.body,
                    at
                ],
            );
            match inserted {
                Err(e) if is_primary_key_violation(&e) => return Err(StoreError::AlreadyExists),
                other => other.map_err(StoreError::backend)?,
            };
            {
                let mut insert = tx
                    .prepare(
                        "INSERT INTO function_tags (function_name, key, value) VALUES (?1, ?2, ?3)",
                    )
                    .map_err(StoreError::backend)?;
                for (key, value) in &tags {
                    insert
                        .execute(params![row.name, key, value])
                        .map_err(StoreError::backend)?;
                }
            }
            tx.commit().map_err(StoreError::backend)?;
            lock(&cache).insert(function.name.as_str().to_owned(), function);
            Ok(())
        })
        .await
    }

    async fn get_function(&self, name: &FunctionName) -> Result<Option<Function>, StoreError> {
        if let Some(hit) = lock(&self.cache).get(name.as_str()) {
            return Ok(Some(hit.clone()));
        }
        let name = name.as_str().to_owned();
        let cache = Arc::clone(&self.cache);
        self.with_conn(move |conn| {
            let body: Option<String> = conn
                .query_row(
                    "SELECT body FROM functions WHERE name = ?1",
                    [&name],
                    |row| row.get(0),
                )
                .optional()
                .map_err(StoreError::backend)?;
            let function = body.as_deref().map(decode).transpose()?;
            if let Some(f) = &function {
                lock(&cache).insert(name, f.clone());
            }
            Ok(function)
        })
        .await
    }

    async fn list_functions(
        &self,
        after: Option<&FunctionName>,
        limit: usize,
    ) -> Result<FunctionPage, StoreError> {
        let after = after.map(|a| a.as_str().to_owned());
        // One row beyond the page tells whether more follow, without a second COUNT query.
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT body FROM functions
                     WHERE ?1 IS NULL OR name > ?1
                     ORDER BY name LIMIT ?2",
                )
                .map_err(StoreError::backend)?;
            let bodies = stmt
                .query_map(params![after, fetch], |row| row.get::<_, String>(0))
                .map_err(StoreError::backend)?;
            let mut functions = Vec::new();
            let mut more = false;
            for body in bodies {
                let body = body.map_err(StoreError::backend)?;
                if functions.len() == limit {
                    more = true;
                    break;
                }
                functions.push(decode(&body)?);
            }
            Ok(FunctionPage { functions, more })
        })
        .await
    }

    async fn update_function(
        &self,
        function: &Function,
        expected_revision: &str,
    ) -> Result<(), StoreError> {
        let row = Row::encode(function)?;
        let expected = expected_revision.to_owned();
        let (cache, function) = (Arc::clone(&self.cache), function.clone());
        self.with_conn(move |conn| {
            let tx = write_tx(conn)?;
            // Read and write under the same write lock: nothing can slip in between the check
            // and the update, which is what makes this a compare-and-swap.
            let stored: Option<String> = tx
                .query_row(
                    "SELECT revision_id FROM functions WHERE name = ?1",
                    [&row.name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(StoreError::backend)?;
            match stored {
                None => return Err(StoreError::NotFound),
                Some(stored) if stored != expected => return Err(StoreError::RevisionMismatch),
                Some(_) => {}
            }
            tx.execute(
                "UPDATE functions
                 SET revision_id = ?2, code_sha256 = ?3, code_size = ?4, body = ?5, updated_at = ?6
                 WHERE name = ?1",
                params![
                    row.name,
                    row.revision_id,
                    row.code_sha256,
                    row.code_size,
                    row.body,
                    now()
                ],
            )
            .map_err(StoreError::backend)?;
            tx.commit().map_err(StoreError::backend)?;
            lock(&cache).insert(function.name.as_str().to_owned(), function);
            Ok(())
        })
        .await
    }

    async fn delete_function(&self, name: &FunctionName) -> Result<(), StoreError> {
        let name = name.as_str().to_owned();
        let cache = Arc::clone(&self.cache);
        self.with_conn(move |conn| {
            let tx = write_tx(conn)?;
            // Tags go with the row through `ON DELETE CASCADE`.
            let deleted = tx
                .execute("DELETE FROM functions WHERE name = ?1", [&name])
                .map_err(StoreError::backend)?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().map_err(StoreError::backend)?;
            lock(&cache).remove(&name);
            Ok(())
        })
        .await
    }

    async fn get_tags(&self, name: &FunctionName) -> Result<BTreeMap<String, String>, StoreError> {
        let name = name.as_str().to_owned();
        self.with_conn(move |conn| {
            // A read transaction, so the existence check and the tags are one snapshot.
            let tx = conn.transaction().map_err(StoreError::backend)?;
            if !exists(&tx, &name)? {
                return Err(StoreError::NotFound);
            }
            let tags = {
                let mut stmt = tx
                    .prepare("SELECT key, value FROM function_tags WHERE function_name = ?1")
                    .map_err(StoreError::backend)?;
                let rows = stmt
                    .query_map([&name], |row| Ok((row.get(0)?, row.get(1)?)))
                    .map_err(StoreError::backend)?;
                rows.collect::<Result<BTreeMap<String, String>, _>>()
                    .map_err(StoreError::backend)?
            };
            tx.commit().map_err(StoreError::backend)?;
            Ok(tags)
        })
        .await
    }

    async fn update_tags(
        &self,
        name: &FunctionName,
        set: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), StoreError> {
        let name = name.as_str().to_owned();
        let set = set.clone();
        let remove = remove.to_vec();
        self.with_conn(move |conn| {
            let tx = write_tx(conn)?;
            if !exists(&tx, &name)? {
                return Err(StoreError::NotFound);
            }
            {
                // Set first, then remove: a key in both ends up removed, as in the reference fake.
                let mut upsert = tx
                    .prepare(
                        "INSERT INTO function_tags (function_name, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (function_name, key) DO UPDATE SET value = excluded.value",
                    )
                    .map_err(StoreError::backend)?;
                for (key, value) in &set {
                    upsert
                        .execute(params![name, key, value])
                        .map_err(StoreError::backend)?;
                }
                let mut delete = tx
                    .prepare("DELETE FROM function_tags WHERE function_name = ?1 AND key = ?2")
                    .map_err(StoreError::backend)?;
                for key in &remove {
                    delete
                        .execute(params![name, key])
                        .map_err(StoreError::backend)?;
                }
            }
            tx.commit().map_err(StoreError::backend)
        })
        .await
    }

    async fn code_in_use(&self, sha256_hex: &str) -> Result<bool, StoreError> {
        let sha = sha256_hex.to_owned();
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM functions WHERE code_sha256 = ?1)",
                [&sha],
                |row| row.get(0),
            )
            .map_err(StoreError::backend)
        })
        .await
    }

    async fn usage(&self) -> Result<(u64, u64), StoreError> {
        self.with_conn(|conn| {
            let (count, total): (i64, i64) = conn
                .query_row(
                    "SELECT COUNT(*), COALESCE(SUM(code_size), 0) FROM functions",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .map_err(StoreError::backend)?;
            // Both are non-negative by the schema's CHECK; convert without trusting that.
            Ok((
                u64::try_from(count).map_err(StoreError::backend)?,
                u64::try_from(total).map_err(StoreError::backend)?,
            ))
        })
        .await
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
