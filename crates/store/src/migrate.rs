//! Schema versions, the same way for every database here: numbered, append-only migrations,
//! the applied count recorded in `PRAGMA user_version`, the missing ones applied in one
//! IMMEDIATE transaction (a crash mid-upgrade leaves the old version intact, and two processes
//! opening at once cannot both migrate). A database written by a newer binary is refused
//! rather than guessed at.

use nimbus_core::StoreError;
use rusqlite::{Connection, TransactionBehavior};

/// The database was written by a newer Nimbus whose schema this binary does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{database} database has schema version {found}, newer than the {known} this binary knows; \
     run a newer Nimbus or restore a backup"
)]
pub struct UnsupportedSchemaVersion {
    /// Which database (`metadata`, `events`, `schedules`, `logs`).
    pub database: &'static str,
    /// The version recorded in the database.
    pub found: i64,
    /// The newest version this binary can migrate to.
    pub known: i64,
}

/// Bring `conn`'s database up to `migrations.len()`: applying `migrations[i]` takes it from
/// version `i` to `i + 1`.
pub(crate) fn apply(
    conn: &mut Connection,
    migrations: &[&str],
    database: &'static str,
) -> Result<(), StoreError> {
    let known = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::backend)?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(StoreError::backend)?;
    let unsupported = || {
        StoreError::backend(UnsupportedSchemaVersion {
            database,
            found,
            known,
        })
    };
    // A negative version is no version Nimbus ever wrote; treat it like an unknown future one.
    let applied = usize::try_from(found).map_err(|_| unsupported())?;
    if found > known {
        return Err(unsupported());
    }
    for (index, sql) in migrations.iter().enumerate().skip(applied) {
        let version = index + 1;
        tx.execute_batch(sql).map_err(StoreError::backend)?;
        // user_version lives in the database header, so it commits or rolls back with the rest.
        tx.pragma_update(None, "user_version", version)
            .map_err(StoreError::backend)?;
        tracing::info!(database, version, "applied schema migration");
    }
    tx.commit().map_err(StoreError::backend)
}
