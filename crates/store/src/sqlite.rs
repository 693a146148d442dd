//! [`SqliteMetadataStore`]: function metadata in an embedded SQLite database.
//!
//! Durability comes from SQLite itself: the database runs in WAL mode with `synchronous=FULL`,
//! which fsyncs the log on every commit, and every mutation runs in its own transaction that is
//! committed before the call returns. A write the caller saw succeed therefore survives a crash
//! or power loss; one that did not return may or may not have happened, but never half-happened.
//!
//! Each function is stored whole as the JSON of [`Function`] in `functions.body`; the columns
//! beside it (`revision_id`, `code_sha256`, `code_size`) are copies that the store queries on,
//! so the schema does not have to follow every new setting. Published versions are rows of
//! `function_versions` (the same JSON, plus the fingerprint of the `$LATEST` they were cut from)
//! and aliases rows of `function_aliases`; `functions.last_version` counts the versions ever
//! published, so a number is never given out twice, and `functions.reserved_concurrency` holds
//! the function's reservation. Tags, versions and aliases hang off their function by foreign
//! keys that remove them with it.
//!
//! The schema is versioned with `PRAGMA user_version` and upgraded at [`SqliteMetadataStore::open`]
//! by the numbered [`MIGRATIONS`]. A database written by a newer binary is refused rather than
//! guessed at.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use nimbus_core::layer::LayerVersion;
use nimbus_core::url::{FunctionUrlConfig, FunctionUrlPage, HttpRoute};
use nimbus_core::{
    Alias, AliasPage, Function, FunctionName, FunctionPage, FunctionVersion, MetadataStore,
    StoreError, VersionPage,
};
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
    // 2: published versions, aliases and reserved concurrency.
    "ALTER TABLE functions
         ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0 CHECK (last_version >= 0);
     ALTER TABLE functions
         ADD COLUMN reserved_concurrency INTEGER CHECK (reserved_concurrency >= 0);
     CREATE TABLE function_versions (
         function_name TEXT    NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
         version       INTEGER NOT NULL CHECK (version > 0),
         code_sha256   TEXT    NOT NULL,
         code_size     INTEGER NOT NULL CHECK (code_size >= 0),
         source        TEXT    NOT NULL,
         body          TEXT    NOT NULL,
         created_at    TEXT    NOT NULL,
         PRIMARY KEY (function_name, version)
     ) STRICT;
     CREATE INDEX function_versions_code_sha256 ON function_versions (code_sha256);
     CREATE TABLE function_aliases (
         function_name    TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
         name             TEXT NOT NULL,
         function_version TEXT NOT NULL,
         revision_id      TEXT NOT NULL,
         body             TEXT NOT NULL,
         updated_at       TEXT NOT NULL,
         PRIMARY KEY (function_name, name)
     ) STRICT;",
    // 3: function URL configs and the gateway's HTTP routes.
    "CREATE TABLE function_urls (
         function_name TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
         qualifier     TEXT NOT NULL,
         url_id        TEXT NOT NULL UNIQUE,
         body          TEXT NOT NULL,
         updated_at    TEXT NOT NULL,
         PRIMARY KEY (function_name, qualifier)
     ) STRICT;
     CREATE TABLE http_routes (
         route_key  TEXT NOT NULL PRIMARY KEY,
         target     TEXT NOT NULL,
         body       TEXT NOT NULL,
         updated_at TEXT NOT NULL
     ) STRICT;",
    // 4: layer versions, and the highest version number each layer ever had.
    "CREATE TABLE layer_versions (
         name        TEXT    NOT NULL,
         version     INTEGER NOT NULL CHECK (version > 0),
         code_sha256 TEXT    NOT NULL,
         body        TEXT    NOT NULL,
         PRIMARY KEY (name, version)
     ) STRICT;
     CREATE INDEX layer_versions_code_sha256 ON layer_versions (code_sha256);
     CREATE TABLE layer_counters (
         name         TEXT    NOT NULL PRIMARY KEY,
         last_version INTEGER NOT NULL CHECK (last_version > 0)
     ) STRICT;",
];

/// How long a statement waits for a lock held by another connection (another process, or an
/// operator's `sqlite3` shell) before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// [`MetadataStore`] backed by an SQLite database file.
///
/// Cloning is cheap and shares the connection. Calls are serialised on that one connection,
/// each on tokio's blocking pool.
#[derive(Debug, Clone)]
pub struct SqliteMetadataStore {
    conn: Arc<Mutex<Connection>>,
    /// What every invoke reads, as last read or written: functions, published versions,
    /// aliases and reservations. It keeps SQLite and JSON decoding off the hot path. It stays
    /// coherent because this store is the database's only writer (the server locks its data
    /// directory) and the cache changes only while the connection lock is held, in the same
    /// order as the database.
    cache: Arc<Mutex<Cache>>,
}

/// The read cache of [`SqliteMetadataStore`].
#[derive(Debug, Default)]
struct Cache {
    /// `$LATEST` by function name.
    latest: HashMap<String, Function>,
    /// Published versions by function name and number.
    versions: HashMap<(String, u64), Function>,
    /// Aliases by function name and alias name.
    aliases: HashMap<(String, String), Alias>,
    /// Reserved concurrency by function name, `None` cached too: most functions have none and
    /// every invoke asks.
    reserved: HashMap<String, Option<u32>>,
    /// The sum of all reservations, when known.
    total_reserved: Option<u64>,
    /// Function URL configs by URL id (only those read or written; misses go to the database).
    urls: HashMap<String, FunctionUrlConfig>,
}

impl Cache {
    /// Forget everything about a function.
    fn forget(&mut self, name: &str) {
        self.latest.remove(name);
        self.versions.retain(|(function, _), _| function != name);
        self.aliases.retain(|(function, _), _| function != name);
        self.reserved.remove(name);
        self.total_reserved = None;
        self.urls.retain(|_, url| url.function.as_str() != name);
    }
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
        crate::migrate::apply(&mut conn, MIGRATIONS, "metadata")?;
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
            let mut cache = lock(&cache);
            let name = function.name.as_str().to_owned();
            cache.forget(&name);
            cache.reserved.insert(name.clone(), None);
            cache.latest.insert(name, function);
            Ok(())
        })
        .await
    }

    async fn get_function(&self, name: &FunctionName) -> Result<Option<Function>, StoreError> {
        if let Some(hit) = lock(&self.cache).latest.get(name.as_str()) {
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
                lock(&cache).latest.insert(name, f.clone());
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
            lock(&cache)
                .latest
                .insert(function.name.as_str().to_owned(), function);
            Ok(())
        })
        .await
    }

    async fn delete_function(&self, name: &FunctionName) -> Result<(), StoreError> {
        let name = name.as_str().to_owned();
        let cache = Arc::clone(&self.cache);
        self.with_conn(move |conn| {
            let tx = write_tx(conn)?;
            // Tags, versions and aliases go with the row through `ON DELETE CASCADE`.
            let deleted = tx
                .execute("DELETE FROM functions WHERE name = ?1", [&name])
                .map_err(StoreError::backend)?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().map_err(StoreError::backend)?;
            lock(&cache).forget(&name);
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
            // A function's layers live in its JSON body; a digest is 64 hex digits, so finding
            // it there means a layer reference (at worst a blob is kept a while longer).
            conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM functions WHERE code_sha256 = ?1)
                     OR EXISTS (SELECT 1 FROM function_versions WHERE code_sha256 = ?1)
                     OR EXISTS (SELECT 1 FROM layer_versions WHERE code_sha256 = ?1)
                     OR EXISTS (SELECT 1 FROM functions WHERE instr(body, ?1) > 0)
                     OR EXISTS (SELECT 1 FROM function_versions WHERE instr(body, ?1) > 0)",
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
                    "SELECT (SELECT COUNT(*) FROM functions),
                            (SELECT COALESCE(SUM(code_size), 0) FROM functions)
                          + (SELECT COALESCE(SUM(code_size), 0) FROM function_versions)",
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

    async fn get_function_version(
        &self,
        name: &FunctionName,
        version: u64,
    ) -> Result<Option<Function>, StoreError> {
        let key = (name.as_str().to_owned(), version);
        if let Some(hit) = lock(&self.cache).versions.get(&key) {
            return Ok(Some(hit.clone()));
        }
        let number = version_column(version)?;
        let cache = Arc::clone(&self.cache);
        self.with_conn(move |conn| {
            let body: Option<String> = conn
                .query_row(
                    "SELECT body FROM function_versions WHERE function_name = ?1 AND version = ?2",
                    params![key.0, number],
                    |row| row.get(0),
                )
                .optional()
                .map_err(StoreError::backend)?;
            let function = body.as_deref().map(decode).transpose()?;
            if let Some(f) = &function {
                lock(&cache).versions.insert(key, f.clone());
            }
            Ok(function)
        })
        .await
    }

    async fn get_alias(
        &self,
        name: &FunctionName,
        alias: &str,
    ) -> Result<Option<Alias>, StoreError> {
        let key = (name.as_str().to_owned(), alias.to_owned());
        if let Some(hit) = lock(&self.cache).aliases.get(&key) {
            return Ok(Some(hit.clone()));
        }
        let cache = Arc::clone(&self.cache);
        self.with_conn(move |conn| {
            let body: Option<String> = conn
                .query_row(
                    "SELECT body FROM function_aliases WHERE function_name = ?1 AND name = ?2",
                    params![key.0, key.1],
                    |row| row.get(0),
                )
                .optional()
                .map_err(StoreError::backend)?;
            let alias = body.as_deref().map(decode_alias).transpose()?;
            if let Some(a) = &alias {
                lock(&cache).aliases.insert(key, a.clone());
            }
            Ok(alias)
        })
        .await
    }

    async fn get_function_concurrency(
        &self,
        name: &FunctionName,
    ) -> Result<Option<u32>, StoreError> {
        if let Some(hit) = lock(&self.cache).reserved.get(name.as_str()) {
            return Ok(*hit);
        }
        let name = name.as_str().to_owned();
        let cache = Arc::clone(&self.cache);
        self.with_conn(move |conn| {
            let row: Option<Option<i64>> = conn
                .query_row(
                    "SELECT reserved_concurrency FROM functions WHERE name = ?1",
                    [&name],
                    |row| row.get(0),
                )
                .optional()
                .map_err(StoreError::backend)?;
            let Some(reserved) = row else {
                // No such function: nothing to remember.
                return Ok(None);
            };
            let reserved = reserved
                .map(|r| u32::try_from(r).map_err(StoreError::backend))
                .transpose()?;
            lock(&cache).reserved.insert(name, reserved);
            Ok(reserved)
        })
        .await
    }

    async fn total_reserved_concurrency(&self) -> Result<u64, StoreError> {
        if let Some(total) = lock(&self.cache).total_reserved {
            return Ok(total);
        }
        let cache = Arc::clone(&self.cache);
        self.with_conn(move |conn| {
            let total: i64 = conn
                .query_row(
                    "SELECT COALESCE(SUM(reserved_concurrency), 0) FROM functions",
                    [],
                    |row| row.get(0),
                )
                .map_err(StoreError::backend)?;
            let total = u64::try_from(total).map_err(StoreError::backend)?;
            lock(&cache).total_reserved = Some(total);
            Ok(total)
        })
        .await
    }

    async fn put_function_concurrency(
        &self,
        name: &FunctionName,
        reserved: Option<u32>,
    ) -> Result<(), StoreError> {
        let name = name.as_str().to_owned();
        let cache = Arc::clone(&self.cache);
        self.with_conn(move |conn| {
            let tx = write_tx(conn)?;
            let updated = tx
                .execute(
                    "UPDATE functions SET reserved_concurrency = ?2 WHERE name = ?1",
                    params![name, reserved],
                )
                .map_err(StoreError::backend)?;
            if updated == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().map_err(StoreError::backend)?;
            let mut cache = lock(&cache);
            cache.reserved.insert(name, reserved);
            cache.total_reserved = None;
            Ok(())
        })
        .await
    }

    async fn publish_version(
        &self,
        name: &FunctionName,
        expected_code_sha256_hex: Option<&str>,
        expected_revision: Option<&str>,
        description: &str,
    ) -> Result<Function, StoreError> {
        let name = name.as_str().to_owned();
        let expected_code = expected_code_sha256_hex.map(str::to_owned);
        let expected_revision = expected_revision.map(str::to_owned);
        let description = description.to_owned();
        let cache = Arc::clone(&self.cache);
        self.with_conn(move |conn| {
            // The write lock from the start: the preconditions, the unchanged check and the new
            // number are all decided on the state the insert commits against.
            let tx = write_tx(conn)?;
            let row: Option<(String, i64)> = tx
                .query_row(
                    "SELECT body, last_version FROM functions WHERE name = ?1",
                    [&name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(StoreError::backend)?;
            let (body, last_version) = row.ok_or(StoreError::NotFound)?;
            let latest = decode(&body)?;
            if expected_revision
                .as_deref()
                .is_some_and(|r| r != latest.revision_id)
            {
                return Err(StoreError::RevisionMismatch);
            }
            if expected_code
                .as_deref()
                .is_some_and(|c| c != latest.code.sha256_hex)
            {
                return Err(StoreError::CodeMismatch {
                    current_sha256_hex: latest.code.sha256_hex,
                });
            }
            let source = latest.fingerprint();
            let newest: Option<(String, String)> = tx
                .query_row(
                    "SELECT body, source FROM function_versions
                     WHERE function_name = ?1 AND version = ?2",
                    params![name, last_version],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(StoreError::backend)?;
            if let Some((body, newest_source)) = newest {
                if newest_source == source {
                    return decode(&body);
                }
            }
            let number = last_version
                .checked_add(1)
                .ok_or_else(|| StoreError::backend(VersionOverflow))?;
            let mut version = latest;
            version.version =
                FunctionVersion::Published(u64::try_from(number).map_err(StoreError::backend)?);
            version.revision_id = uuid::Uuid::new_v4().to_string();
            version.last_modified = chrono::Utc::now();
            if !description.is_empty() {
                version.settings.description = description;
            }
            let row = Row::encode(&version)?;
            tx.execute(
                "INSERT INTO function_versions
                     (function_name, version, code_sha256, code_size, source, body, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    row.name,
                    number,
                    row.code_sha256,
                    row.code_size,
                    source,
                    row.body,
                    now()
                ],
            )
            .map_err(StoreError::backend)?;
            tx.execute(
                "UPDATE functions SET last_version = ?2 WHERE name = ?1",
                params![name, number],
            )
            .map_err(StoreError::backend)?;
            tx.commit().map_err(StoreError::backend)?;
            let key = (name, version.version.number().unwrap_or_default());
            lock(&cache).versions.insert(key, version.clone());
            Ok(version)
        })
        .await
    }

    async fn list_versions(
        &self,
        name: &FunctionName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<VersionPage, StoreError> {
        let name = name.as_str().to_owned();
        let after = match after {
            None => None,
            Some(a) => match FunctionVersion::parse(a) {
                Some(v) => Some(v),
                // Nothing sorts after a marker this store never handed out.
                None => return Ok(VersionPage::default()),
            },
        };
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(StoreError::backend)?;
            let latest: Option<String> = tx
                .query_row("SELECT body FROM functions WHERE name = ?1", [&name], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(StoreError::backend)?;
            let latest = latest.ok_or(StoreError::NotFound)?;
            let mut versions = Vec::new();
            if after.is_none() {
                versions.push(decode(&latest)?);
            }
            let above = match after.and_then(FunctionVersion::number) {
                Some(n) => version_column(n)?,
                None => 0,
            };
            {
                let mut stmt = tx
                    .prepare(
                        "SELECT body FROM function_versions
                         WHERE function_name = ?1 AND version > ?2
                         ORDER BY version LIMIT ?3",
                    )
                    .map_err(StoreError::backend)?;
                let bodies = stmt
                    .query_map(params![name, above, fetch], |r| r.get::<_, String>(0))
                    .map_err(StoreError::backend)?;
                for body in bodies {
                    if versions.len() > limit {
                        break;
                    }
                    versions.push(decode(&body.map_err(StoreError::backend)?)?);
                }
            }
            tx.commit().map_err(StoreError::backend)?;
            let more = versions.len() > limit;
            versions.truncate(limit);
            Ok(VersionPage { versions, more })
        })
        .await
    }

    async fn delete_function_version(
        &self,
        name: &FunctionName,
        version: u64,
    ) -> Result<(), StoreError> {
        let name = name.as_str().to_owned();
        let number = version_column(version)?;
        let cache = Arc::clone(&self.cache);
        self.with_conn(move |conn| {
            let tx = write_tx(conn)?;
            if !exists(&tx, &name)? || !version_exists(&tx, &name, number)? {
                return Err(StoreError::NotFound);
            }
            let users: Vec<String> = aliases_of(&tx, &name)?
                .into_iter()
                .filter(|a| a.references(version))
                .map(|a| a.name)
                .collect();
            if !users.is_empty() {
                return Err(StoreError::InUse(users));
            }
            tx.execute(
                "DELETE FROM function_versions WHERE function_name = ?1 AND version = ?2",
                params![name, number],
            )
            .map_err(StoreError::backend)?;
            tx.commit().map_err(StoreError::backend)?;
            lock(&cache).versions.remove(&(name, version));
            Ok(())
        })
        .await
    }

    async fn create_alias(&self, alias: &Alias) -> Result<(), StoreError> {
        let alias = alias.clone();
        let body = serde_json::to_string(&alias).map_err(StoreError::backend)?;
        let cache = Arc::clone(&self.cache);
        self.with_conn(move |conn| {
            let tx = write_tx(conn)?;
            let function = alias.function.as_str();
            if !exists(&tx, function)? {
                return Err(StoreError::NotFound);
            }
            let taken: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM function_aliases
                                    WHERE function_name = ?1 AND name = ?2)",
                    params![function, alias.name],
                    |r| r.get(0),
                )
                .map_err(StoreError::backend)?;
            if taken {
                return Err(StoreError::AlreadyExists);
            }
            if !routes_exist(&tx, &alias)? {
                return Err(StoreError::NotFound);
            }
            tx.execute(
                "INSERT INTO function_aliases
                     (function_name, name, function_version, revision_id, body, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    function,
                    alias.name,
                    alias.function_version,
                    alias.revision_id,
                    body,
                    now()
                ],
            )
            .map_err(StoreError::backend)?;
            tx.commit().map_err(StoreError::backend)?;
            let key = (function.to_owned(), alias.name.clone());
            lock(&cache).aliases.insert(key, alias);
            Ok(())
        })
        .await
    }

    async fn update_alias(
        &self,
        alias: &Alias,
        expected_revision: Option<&str>,
    ) -> Result<(), StoreError> {
        let alias = alias.clone();
        let expected = expected_revision.map(str::to_owned);
        let body = serde_json::to_string(&alias).map_err(StoreError::backend)?;
        let cache = Arc::clone(&self.cache);
        self.with_conn(move |conn| {
            let tx = write_tx(conn)?;
            let function = alias.function.as_str();
            let stored: Option<String> = tx
                .query_row(
                    "SELECT revision_id FROM function_aliases
                     WHERE function_name = ?1 AND name = ?2",
                    params![function, alias.name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(StoreError::backend)?;
            match stored {
                None => return Err(StoreError::NotFound),
                Some(stored) if expected.as_deref().is_some_and(|e| e != stored) => {
                    return Err(StoreError::RevisionMismatch)
                }
                Some(_) => {}
            }
            if !routes_exist(&tx, &alias)? {
                return Err(StoreError::NotFound);
            }
            tx.execute(
                "UPDATE function_aliases
                 SET function_version = ?3, revision_id = ?4, body = ?5, updated_at = ?6
                 WHERE function_name = ?1 AND name = ?2",
                params![
                    function,
                    alias.name,
                    alias.function_version,
                    alias.revision_id,
                    body,
                    now()
                ],
            )
            .map_err(StoreError::backend)?;
            tx.commit().map_err(StoreError::backend)?;
            let key = (function.to_owned(), alias.name.clone());
            lock(&cache).aliases.insert(key, alias);
            Ok(())
        })
        .await
    }

    async fn delete_alias(&self, name: &FunctionName, alias: &str) -> Result<(), StoreError> {
        let key = (name.as_str().to_owned(), alias.to_owned());
        let cache = Arc::clone(&self.cache);
        self.with_conn(move |conn| {
            let tx = write_tx(conn)?;
            let deleted = tx
                .execute(
                    "DELETE FROM function_aliases WHERE function_name = ?1 AND name = ?2",
                    params![key.0, key.1],
                )
                .map_err(StoreError::backend)?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            // The alias's function URL goes with it.
            tx.execute(
                "DELETE FROM function_urls WHERE function_name = ?1 AND qualifier = ?2",
                params![key.0, key.1],
            )
            .map_err(StoreError::backend)?;
            tx.commit().map_err(StoreError::backend)?;
            let mut cache = lock(&cache);
            cache
                .urls
                .retain(|_, u| !(u.function.as_str() == key.0 && u.qualifier == key.1));
            cache.aliases.remove(&key);
            Ok(())
        })
        .await
    }

    async fn list_aliases(
        &self,
        name: &FunctionName,
        function_version: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<AliasPage, StoreError> {
        let name = name.as_str().to_owned();
        let function_version = function_version.map(str::to_owned);
        let after = after.map(str::to_owned);
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(StoreError::backend)?;
            if !exists(&tx, &name)? {
                return Err(StoreError::NotFound);
            }
            let mut aliases = Vec::new();
            {
                let mut stmt = tx
                    .prepare(
                        "SELECT body FROM function_aliases
                         WHERE function_name = ?1
                           AND (?2 IS NULL OR name > ?2)
                           AND (?3 IS NULL OR function_version = ?3)
                         ORDER BY name LIMIT ?4",
                    )
                    .map_err(StoreError::backend)?;
                let bodies = stmt
                    .query_map(params![name, after, function_version, fetch], |r| {
                        r.get::<_, String>(0)
                    })
                    .map_err(StoreError::backend)?;
                for body in bodies {
                    aliases.push(decode_alias(&body.map_err(StoreError::backend)?)?);
                }
            }
            tx.commit().map_err(StoreError::backend)?;
            let more = aliases.len() > limit;
            aliases.truncate(limit);
            Ok(AliasPage { aliases, more })
        })
        .await
    }

    async fn create_function_url(&self, url: &FunctionUrlConfig) -> Result<(), StoreError> {
        let url = url.clone();
        let body = serde_json::to_string(&url).map_err(StoreError::backend)?;
        let cache = Arc::clone(&self.cache);
        self.with_conn(move |conn| {
            let tx = write_tx(conn)?;
            let function = url.function.as_str();
            if !exists(&tx, function)? {
                return Err(StoreError::NotFound);
            }
            if let Some(alias) = url.alias() {
                let found: bool = tx
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM function_aliases
                                        WHERE function_name = ?1 AND name = ?2)",
                        params![function, alias],
                        |r| r.get(0),
                    )
                    .map_err(StoreError::backend)?;
                if !found {
                    return Err(StoreError::NotFound);
                }
            }
            let inserted = tx.execute(
                "INSERT INTO function_urls (function_name, qualifier, url_id, body, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![function, url.qualifier, url.url_id, body, now()],
            );
            match inserted {
                Ok(_) => {}
                Err(err) if is_constraint_violation(&err) => return Err(StoreError::AlreadyExists),
                Err(err) => return Err(StoreError::backend(err)),
            }
            tx.commit().map_err(StoreError::backend)?;
            lock(&cache).urls.insert(url.url_id.clone(), url);
            Ok(())
        })
        .await
    }

    async fn get_function_url(
        &self,
        name: &FunctionName,
        qualifier: &str,
    ) -> Result<Option<FunctionUrlConfig>, StoreError> {
        let key = (name.as_str().to_owned(), qualifier.to_owned());
        self.with_conn(move |conn| {
            let body: Option<String> = conn
                .query_row(
                    "SELECT body FROM function_urls WHERE function_name = ?1 AND qualifier = ?2",
                    params![key.0, key.1],
                    |r| r.get(0),
                )
                .optional()
                .map_err(StoreError::backend)?;
            body.map(|b| decode_url(&b)).transpose()
        })
        .await
    }

    async fn get_function_url_by_id(
        &self,
        url_id: &str,
    ) -> Result<Option<FunctionUrlConfig>, StoreError> {
        if let Some(url) = lock(&self.cache).urls.get(url_id) {
            return Ok(Some(url.clone()));
        }
        let url_id = url_id.to_owned();
        let cache = Arc::clone(&self.cache);
        self.with_conn(move |conn| {
            let body: Option<String> = conn
                .query_row(
                    "SELECT body FROM function_urls WHERE url_id = ?1",
                    [&url_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(StoreError::backend)?;
            let url = body.map(|b| decode_url(&b)).transpose()?;
            if let Some(url) = &url {
                lock(&cache).urls.insert(url_id, url.clone());
            }
            Ok(url)
        })
        .await
    }

    async fn update_function_url(&self, url: &FunctionUrlConfig) -> Result<(), StoreError> {
        let url = url.clone();
        let body = serde_json::to_string(&url).map_err(StoreError::backend)?;
        let cache = Arc::clone(&self.cache);
        self.with_conn(move |conn| {
            let tx = write_tx(conn)?;
            let updated = tx
                .execute(
                    "UPDATE function_urls SET body = ?3, url_id = ?4, updated_at = ?5
                     WHERE function_name = ?1 AND qualifier = ?2",
                    params![
                        url.function.as_str(),
                        url.qualifier,
                        body,
                        url.url_id,
                        now()
                    ],
                )
                .map_err(StoreError::backend)?;
            if updated == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().map_err(StoreError::backend)?;
            lock(&cache).urls.insert(url.url_id.clone(), url);
            Ok(())
        })
        .await
    }

    async fn delete_function_url(
        &self,
        name: &FunctionName,
        qualifier: &str,
    ) -> Result<(), StoreError> {
        let key = (name.as_str().to_owned(), qualifier.to_owned());
        let cache = Arc::clone(&self.cache);
        self.with_conn(move |conn| {
            let tx = write_tx(conn)?;
            let deleted = tx
                .execute(
                    "DELETE FROM function_urls WHERE function_name = ?1 AND qualifier = ?2",
                    params![key.0, key.1],
                )
                .map_err(StoreError::backend)?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().map_err(StoreError::backend)?;
            lock(&cache)
                .urls
                .retain(|_, u| !(u.function.as_str() == key.0 && u.qualifier == key.1));
            Ok(())
        })
        .await
    }

    async fn list_function_urls(
        &self,
        name: &FunctionName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<FunctionUrlPage, StoreError> {
        let name = name.as_str().to_owned();
        let after = after.map(str::to_owned);
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(StoreError::backend)?;
            if !exists(&tx, &name)? {
                return Err(StoreError::NotFound);
            }
            let mut urls = Vec::new();
            {
                let mut stmt = tx
                    .prepare(
                        "SELECT body FROM function_urls
                         WHERE function_name = ?1 AND (?2 IS NULL OR qualifier > ?2)
                         ORDER BY qualifier LIMIT ?3",
                    )
                    .map_err(StoreError::backend)?;
                let bodies = stmt
                    .query_map(params![name, after, fetch], |r| r.get::<_, String>(0))
                    .map_err(StoreError::backend)?;
                for body in bodies {
                    urls.push(decode_url(&body.map_err(StoreError::backend)?)?);
                }
            }
            tx.commit().map_err(StoreError::backend)?;
            let more = urls.len() > limit;
            urls.truncate(limit);
            Ok(FunctionUrlPage { urls, more })
        })
        .await
    }

    async fn put_route(&self, route: &HttpRoute) -> Result<(), StoreError> {
        let route = route.clone();
        let body = serde_json::to_string(&route).map_err(StoreError::backend)?;
        self.with_conn(move |conn| {
            let tx = write_tx(conn)?;
            tx.execute(
                "INSERT INTO http_routes (route_key, target, body, updated_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (route_key) DO UPDATE
                 SET target = excluded.target, body = excluded.body,
                     updated_at = excluded.updated_at",
                params![route.route_key, route.target, body, now()],
            )
            .map_err(StoreError::backend)?;
            tx.commit().map_err(StoreError::backend)
        })
        .await
    }

    async fn list_routes(&self) -> Result<Vec<HttpRoute>, StoreError> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare("SELECT body FROM http_routes ORDER BY route_key")
                .map_err(StoreError::backend)?;
            let bodies = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(StoreError::backend)?;
            let mut out = Vec::new();
            for body in bodies {
                let body = body.map_err(StoreError::backend)?;
                out.push(serde_json::from_str(&body).map_err(StoreError::backend)?);
            }
            Ok(out)
        })
        .await
    }

    async fn publish_layer_version(
        &self,
        layer: &LayerVersion,
    ) -> Result<LayerVersion, StoreError> {
        let layer = layer.clone();
        self.with_conn(move |conn| {
            let tx = write_tx(conn)?;
            let version: i64 = tx
                .query_row(
                    "INSERT INTO layer_counters (name, last_version) VALUES (?1, 1)
                     ON CONFLICT (name) DO UPDATE SET last_version = last_version + 1
                     RETURNING last_version",
                    [&layer.name],
                    |row| row.get(0),
                )
                .map_err(StoreError::backend)?;
            let stored = LayerVersion {
                version: u64::try_from(version).map_err(StoreError::backend)?,
                ..layer
            };
            let body = serde_json::to_string(&stored).map_err(StoreError::backend)?;
            tx.execute(
                "INSERT INTO layer_versions (name, version, code_sha256, body)
                 VALUES (?1, ?2, ?3, ?4)",
                params![stored.name, version, stored.content.sha256_hex, body],
            )
            .map_err(StoreError::backend)?;
            tx.commit().map_err(StoreError::backend)?;
            Ok(stored)
        })
        .await
    }

    async fn get_layer_version(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<LayerVersion>, StoreError> {
        let name = name.to_owned();
        let Ok(version) = i64::try_from(version) else {
            return Ok(None);
        };
        self.with_conn(move |conn| {
            let body: Option<String> = conn
                .query_row(
                    "SELECT body FROM layer_versions WHERE name = ?1 AND version = ?2",
                    params![name, version],
                    |row| row.get(0),
                )
                .optional()
                .map_err(StoreError::backend)?;
            body.map(|b| serde_json::from_str(&b).map_err(StoreError::backend))
                .transpose()
        })
        .await
    }

    async fn list_layer_versions(
        &self,
        name: Option<&str>,
    ) -> Result<Vec<LayerVersion>, StoreError> {
        let name = name.map(str::to_owned);
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT body FROM layer_versions WHERE ?1 IS NULL OR name = ?1
                     ORDER BY name, version DESC",
                )
                .map_err(StoreError::backend)?;
            let bodies = stmt
                .query_map([&name], |r| r.get::<_, String>(0))
                .map_err(StoreError::backend)?;
            let mut out = Vec::new();
            for body in bodies {
                let body = body.map_err(StoreError::backend)?;
                out.push(serde_json::from_str(&body).map_err(StoreError::backend)?);
            }
            Ok(out)
        })
        .await
    }

    async fn delete_layer_version(&self, name: &str, version: u64) -> Result<(), StoreError> {
        let name = name.to_owned();
        let version = i64::try_from(version).map_err(|_| StoreError::NotFound)?;
        self.with_conn(move |conn| {
            let tx = write_tx(conn)?;
            let deleted = tx
                .execute(
                    "DELETE FROM layer_versions WHERE name = ?1 AND version = ?2",
                    params![name, version],
                )
                .map_err(StoreError::backend)?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().map_err(StoreError::backend)
        })
        .await
    }

    async fn delete_route(&self, route_key: &str) -> Result<(), StoreError> {
        let route_key = route_key.to_owned();
        self.with_conn(move |conn| {
            let tx = write_tx(conn)?;
            let deleted = tx
                .execute("DELETE FROM http_routes WHERE route_key = ?1", [&route_key])
                .map_err(StoreError::backend)?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().map_err(StoreError::backend)
        })
        .await
    }
}

fn decode_url(body: &str) -> Result<FunctionUrlConfig, StoreError> {
    serde_json::from_str(body).map_err(StoreError::backend)
}

/// A PRIMARY KEY or UNIQUE constraint refused the row.
fn is_constraint_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

/// More versions than SQLite's integers hold: not reachable by publishing, only by a damaged
/// `last_version`.
#[derive(Debug, thiserror::Error)]
#[error("version counter overflow")]
struct VersionOverflow;

/// A version number as the INTEGER column holds it.
fn version_column(version: u64) -> Result<i64, StoreError> {
    i64::try_from(version).map_err(StoreError::backend)
}

fn decode_alias(body: &str) -> Result<Alias, StoreError> {
    serde_json::from_str(body).map_err(StoreError::backend)
}

/// Whether published version `version` of the function exists, inside an open transaction.
fn version_exists(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    version: i64,
) -> Result<bool, StoreError> {
    tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM function_versions WHERE function_name = ?1 AND version = ?2)",
        params![name, version],
        |row| row.get(0),
    )
    .map_err(StoreError::backend)
}

/// Every published version an alias routes to exists, inside an open transaction.
fn routes_exist(tx: &rusqlite::Transaction<'_>, alias: &Alias) -> Result<bool, StoreError> {
    for version in alias.published_versions() {
        if !version_exists(tx, alias.function.as_str(), version_column(version)?)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// All aliases of a function in name order, inside an open transaction.
fn aliases_of(tx: &rusqlite::Transaction<'_>, name: &str) -> Result<Vec<Alias>, StoreError> {
    let mut stmt = tx
        .prepare("SELECT body FROM function_aliases WHERE function_name = ?1 ORDER BY name")
        .map_err(StoreError::backend)?;
    let bodies = stmt
        .query_map([name], |r| r.get::<_, String>(0))
        .map_err(StoreError::backend)?;
    let mut out = Vec::new();
    for body in bodies {
        out.push(decode_alias(&body.map_err(StoreError::backend)?)?);
    }
    Ok(out)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
