//! [`SqliteScheduleStore`]: schedule rules in an SQLite database of their own
//! (`<data-dir>/schedules.db`).
//!
//! A separate file keeps the schedule runner's small, frequent `record_fire` writes off the
//! metadata database's writer lock, and lets the schedules be copied or reset on their own.
//! Durability is the metadata store's: WAL journal, `synchronous=FULL` (every commit is fsynced
//! before the call returns, because a recorded fire is what keeps it from running again after a
//! crash), one transaction per mutation. The table is `STRICT`; times are stored as RFC 3339
//! text with nine fractional digits and a `Z`, a fixed width that sorts in time order, which the
//! "`last_fire` only moves forward" rule relies on (`MAX` over text). The schema is versioned
//! with `PRAGMA user_version`, upgraded at [`SqliteScheduleStore::open`]; a database written by a
//! newer binary is refused.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use nimbus_core::schedule::{ScheduleRule, ScheduleStore};
use nimbus_core::StoreError;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::run_blocking;

/// The schema, one migration per version: applying `MIGRATIONS[i]` takes the database from
/// version `i` to `i + 1`. Append only; never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: the rules.
    "CREATE TABLE schedules (
         name                    TEXT    NOT NULL PRIMARY KEY,
         expression              TEXT    NOT NULL,
         timezone                TEXT,
         target                  TEXT    NOT NULL,
         role_arn                TEXT,
         input                   TEXT,
         enabled                 INTEGER NOT NULL CHECK (enabled IN (0, 1)),
         flexible_window_minutes INTEGER CHECK (flexible_window_minutes > 0),
         description             TEXT    NOT NULL,
         created_at              TEXT    NOT NULL,
         updated_at              TEXT    NOT NULL,
         last_fire               TEXT
     ) STRICT;",
];

/// The schema version this binary creates and understands.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const COLUMNS: &str = "name, expression, timezone, target, role_arn, input, enabled, \
                       flexible_window_minutes, description, created_at, updated_at, last_fire";

/// A stored value that does not read back as a rule (edited by hand, or corrupt).
#[derive(Debug, thiserror::Error)]
#[error("schedule {name}: column {column} holds {value:?}, which is not valid")]
struct CorruptRow {
    name: String,
    column: &'static str,
    value: String,
}

/// [`ScheduleStore`] backed by an SQLite database file.
///
/// Cloning is cheap and shares the connection; calls are serialised on it, each on tokio's
/// blocking pool.
#[derive(Debug, Clone)]
pub struct SqliteScheduleStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteScheduleStore {
    /// Open (creating if absent) the database at `path`, e.g. `<data-dir>/schedules.db`, and
    /// bring its schema up to date. Blocks on disk I/O: call it at start-up.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).map_err(StoreError::backend)?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(StoreError::backend)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(StoreError::backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "SQLite refused WAL journal mode for the schedules database");
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(StoreError::backend)?;
        crate::migrate::apply(&mut conn, MIGRATIONS, "schedules")?;
        tracing::debug!(path = %path.display(), version = SCHEMA_VERSION, "opened schedule store");
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with_conn<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        run_blocking(move || {
            // A panic mid-transaction rolls the transaction back as it unwinds, so a poisoned
            // connection is still consistent.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut conn)
        })
        .await
    }
}

/// Fixed-width RFC 3339 (`2026-01-01T03:00:00.000000000Z`): text order is time order.
fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn parse_time(name: &str, column: &'static str, text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            StoreError::backend(CorruptRow {
                name: name.to_owned(),
                column,
                value: text.to_owned(),
            })
        })
}

/// The raw columns of one row, in [`COLUMNS`] order.
struct RawRule {
    name: String,
    expression: String,
    timezone: Option<String>,
    target: String,
    role_arn: Option<String>,
    input: Option<String>,
    enabled: i64,
    flexible_window_minutes: Option<i64>,
    description: String,
    created_at: String,
    updated_at: String,
    last_fire: Option<String>,
}

impl RawRule {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            name: row.get(0)?,
            expression: row.get(1)?,
            timezone: row.get(2)?,
            target: row.get(3)?,
            role_arn: row.get(4)?,
            input: row.get(5)?,
            enabled: row.get(6)?,
            flexible_window_minutes: row.get(7)?,
            description: row.get(8)?,
            created_at: row.get(9)?,
            updated_at: row.get(10)?,
            last_fire: row.get(11)?,
        })
    }

    fn into_rule(self) -> Result<ScheduleRule, StoreError> {
        let name = self.name;
        let flexible_window_minutes = self
            .flexible_window_minutes
            .map(|m| {
                u32::try_from(m).map_err(|_| {
                    StoreError::backend(CorruptRow {
                        name: name.clone(),
                        column: "flexible_window_minutes",
                        value: m.to_string(),
                    })
                })
            })
            .transpose()?;
        Ok(ScheduleRule {
            created_at: parse_time(&name, "created_at", &self.created_at)?,
            updated_at: parse_time(&name, "updated_at", &self.updated_at)?,
            last_fire: self
                .last_fire
                .map(|t| parse_time(&name, "last_fire", &t))
                .transpose()?,
            expression: self.expression,
            timezone: self.timezone,
            target: self.target,
            role_arn: self.role_arn,
            input: self.input,
            enabled: self.enabled != 0,
            flexible_window_minutes,
            description: self.description,
            name,
        })
    }
}

#[async_trait]
impl ScheduleStore for SqliteScheduleStore {
    async fn create(&self, rule: &ScheduleRule) -> Result<(), StoreError> {
        let rule = rule.clone();
        self.with_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(StoreError::backend)?;
            let inserted = tx
                .execute(
                    &format!(
                        "INSERT INTO schedules ({COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                         ON CONFLICT (name) DO NOTHING"
                    ),
                    params![
                        rule.name,
                        rule.expression,
                        rule.timezone,
                        rule.target,
                        rule.role_arn,
                        rule.input,
                        rule.enabled,
                        rule.flexible_window_minutes,
                        rule.description,
                        time_text(rule.created_at),
                        time_text(rule.updated_at),
                        rule.last_fire.map(time_text),
                    ],
                )
                .map_err(StoreError::backend)?;
            if inserted == 0 {
                return Err(StoreError::AlreadyExists);
            }
            tx.commit().map_err(StoreError::backend)
        })
        .await
    }

    async fn get(&self, name: &str) -> Result<Option<ScheduleRule>, StoreError> {
        let name = name.to_owned();
        self.with_conn(move |conn| {
            let raw = conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM schedules WHERE name = ?1"))
                .and_then(|mut stmt| stmt.query_row(params![name], RawRule::read).optional())
                .map_err(StoreError::backend)?;
            raw.map(RawRule::into_rule).transpose()
        })
        .await
    }

    async fn list(&self) -> Result<Vec<ScheduleRule>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM schedules ORDER BY name"))
                .map_err(StoreError::backend)?;
            let raws = stmt
                .query_map([], RawRule::read)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(StoreError::backend)?;
            raws.into_iter().map(RawRule::into_rule).collect()
        })
        .await
    }

    async fn update(&self, rule: &ScheduleRule) -> Result<(), StoreError> {
        let rule = rule.clone();
        self.with_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(StoreError::backend)?;
            // `last_fire` moves forward only: the later of the stored and the given value.
            let changed = tx
                .execute(
                    "UPDATE schedules SET
                         expression = ?2, timezone = ?3, target = ?4, role_arn = ?5, input = ?6,
                         enabled = ?7, flexible_window_minutes = ?8, description = ?9,
                         created_at = ?10, updated_at = ?11,
                         last_fire = CASE
                             WHEN ?12 IS NULL THEN last_fire
                             WHEN last_fire IS NULL OR last_fire < ?12 THEN ?12
                             ELSE last_fire
                         END
                     WHERE name = ?1",
                    params![
                        rule.name,
                        rule.expression,
                        rule.timezone,
                        rule.target,
                        rule.role_arn,
                        rule.input,
                        rule.enabled,
                        rule.flexible_window_minutes,
                        rule.description,
                        time_text(rule.created_at),
                        time_text(rule.updated_at),
                        rule.last_fire.map(time_text),
                    ],
                )
                .map_err(StoreError::backend)?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().map_err(StoreError::backend)
        })
        .await
    }

    async fn delete(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.with_conn(move |conn| {
            let removed = conn
                .execute("DELETE FROM schedules WHERE name = ?1", params![name])
                .map_err(StoreError::backend)?;
            if removed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn record_fire(&self, name: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.with_conn(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE schedules
                     SET last_fire = CASE
                         WHEN last_fire IS NULL OR last_fire < ?2 THEN ?2 ELSE last_fire END
                     WHERE name = ?1",
                    params![name, time_text(at)],
                )
                .map_err(StoreError::backend)?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test instant is RFC 3339")
            .with_timezone(&Utc)
    }

    #[test]
    fn time_text_is_fixed_width_and_sorts_in_time_order() {
        let times = [
            t("1999-12-31T23:59:59.999999999Z"),
            t("2026-01-01T00:00:00Z"),
            t("2026-01-01T00:00:00.5Z"),
            t("2026-01-01T00:00:01Z"),
            t("2199-12-31T23:59:00Z"),
        ];
        let texts: Vec<String> = times.iter().copied().map(time_text).collect();
        assert!(texts.iter().all(|s| s.len() == texts[0].len()), "{texts:?}");
        assert!(texts.windows(2).all(|w| w[0] < w[1]), "{texts:?}");
        assert_eq!(texts[1], "2026-01-01T00:00:00.000000000Z");
        for (time, text) in times.iter().zip(&texts) {
            assert_eq!(parse_time("r", "c", text).expect("parse"), *time);
        }
    }

    #[test]
    fn open_sets_wal_full_sync_strict_and_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("schedules.db");
        let store = SqliteScheduleStore::open(&path).expect("open");
        let conn = store.conn.lock().expect("lock");
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("journal_mode");
        assert_eq!(mode.to_ascii_lowercase(), "wal");
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .expect("synchronous");
        assert_eq!(sync, 2, "synchronous=FULL");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("user_version");
        assert_eq!(version, SCHEMA_VERSION);
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'schedules'",
                [],
                |r| r.get(0),
            )
            .expect("schema");
        assert!(sql.trim_end().ends_with("STRICT"), "{sql}");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("schedules.db");
        drop(SqliteScheduleStore::open(&path).expect("create"));
        {
            let conn = Connection::open(&path).expect("raw open");
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .expect("bump version");
        }
        let err = SqliteScheduleStore::open(&path).expect_err("newer schema must be refused");
        assert!(
            err.to_string()
                .contains("schema version 2, newer than the 1 this binary knows"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn corrupt_rows_are_reported_not_guessed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteScheduleStore::open(&dir.path().join("s.db")).expect("open");
        store
            .create(&ScheduleRule::new(
                "r",
                "rate(1 hour)",
                "f",
                t("2026-01-01T00:00:00Z"),
            ))
            .await
            .expect("create");
        store
            .conn
            .lock()
            .expect("lock")
            .execute("UPDATE schedules SET created_at = 'yesterday'", [])
            .expect("corrupt");
        let err = store.get("r").await.expect_err("corrupt row");
        assert!(format!("{err:?}").contains("created_at"), "{err:?}");
    }
}
