//! [`SqliteLogStore`]: function logs in their own SQLite database beside the metadata.
//!
//! Logs live in a separate file so that a chatty function never contends with metadata writes
//! for the one writer lock. The database runs in WAL mode with `synchronous=NORMAL`: a power loss
//! may drop the last moments of log lines, never corrupt the file; log lines are not
//! acknowledgements a caller relies on, so they are not worth an fsync each.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use nimbus_core::logs::{LogEvent, LogQuery, LogStore, LogStreamInfo};
use nimbus_core::StoreError;
use rusqlite::{params, Connection};

use crate::run_blocking;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS log_events (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        log_group    TEXT    NOT NULL,
        log_stream   TEXT    NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        message      TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX IF NOT EXISTS log_events_group ON log_events (log_group, id);
    CREATE INDEX IF NOT EXISTS log_events_stream ON log_events (log_group, log_stream, id);";

/// [`LogStore`] backed by an SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteLogStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteLogStore {
    /// Open (creating if absent) the log database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(StoreError::backend)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(StoreError::backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(StoreError::backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(StoreError::backend)?;
        conn.execute_batch(SCHEMA).map_err(StoreError::backend)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with_conn<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        run_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut conn).map_err(StoreError::backend)
        })
        .await
    }
}

#[async_trait]
impl LogStore for SqliteLogStore {
    async fn append(&self, events: Vec<LogEvent>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        self.with_conn(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO log_events (log_group, log_stream, timestamp_ms, message)
                     VALUES (?1, ?2, ?3, ?4)",
                )?;
                for e in &events {
                    insert.execute(params![e.group, e.stream, e.timestamp_ms, e.message])?;
                }
            }
            tx.commit()
        })
        .await
    }

    async fn query(&self, q: &LogQuery) -> Result<Vec<LogEvent>, StoreError> {
        let q = q.clone();
        self.with_conn(move |conn| {
            // The stream filter is applied here rather than in SQL: a query names few streams,
            // and a fixed statement stays cacheable.
            let mut stmt = conn.prepare_cached(
                "SELECT id, log_stream, timestamp_ms, message FROM log_events
                 WHERE log_group = ?1 AND id > ?2 AND timestamp_ms >= ?3 AND timestamp_ms < ?4
                   AND (?5 IS NULL OR instr(message, ?5) > 0)
                 ORDER BY id LIMIT ?6",
            )?;
            let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
            let after = i64::try_from(q.after_id.unwrap_or(0)).unwrap_or(i64::MAX);
            let rows = stmt.query_map(
                params![
                    q.group,
                    after,
                    q.start_ms.unwrap_or(i64::MIN),
                    q.end_ms.unwrap_or(i64::MAX),
                    q.contains,
                    if q.streams.is_empty() {
                        limit
                    } else {
                        i64::MAX
                    },
                ],
                |row| {
                    Ok(LogEvent {
                        id: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
                        group: q.group.clone(),
                        stream: row.get(1)?,
                        timestamp_ms: row.get(2)?,
                        message: row.get(3)?,
                    })
                },
            )?;
            let mut out = Vec::new();
            for row in rows {
                let event = row?;
                if q.streams.is_empty() || q.streams.contains(&event.stream) {
                    out.push(event);
                    if out.len() >= q.limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn streams(&self, group: &str) -> Result<Vec<LogStreamInfo>, StoreError> {
        let group = group.to_owned();
        self.with_conn(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT log_stream, MIN(timestamp_ms), MAX(timestamp_ms), COUNT(*)
                 FROM log_events WHERE log_group = ?1
                 GROUP BY log_stream ORDER BY MAX(id) DESC",
            )?;
            let rows = stmt.query_map(params![group], |row| {
                Ok(LogStreamInfo {
                    name: row.get(0)?,
                    first_ms: row.get(1)?,
                    last_ms: row.get(2)?,
                    events: u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
                })
            })?;
            rows.collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(stream: &str, ts: i64, message: &str) -> LogEvent {
        LogEvent {
            id: 0,
            group: "/aws/lambda/f".into(),
            stream: stream.into(),
            timestamp_ms: ts,
            message: message.into(),
        }
    }

    #[tokio::test]
    async fn append_query_follow_and_streams() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteLogStore::open(&dir.path().join("logs.db")).expect("open");
        store
            .append(vec![
                event("a", 1, "START one"),
                event("b", 2, "hello"),
                event("a", 3, "END one"),
            ])
            .await
            .expect("append");
        let all = store
            .query(&LogQuery {
                group: "/aws/lambda/f".into(),
                limit: 10,
                ..LogQuery::default()
            })
            .await
            .expect("query");
        assert_eq!(
            all.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
            ["START one", "hello", "END one"]
        );
        let only_a = store
            .query(&LogQuery {
                group: "/aws/lambda/f".into(),
                streams: vec!["a".into()],
                limit: 10,
                ..LogQuery::default()
            })
            .await
            .expect("query");
        assert_eq!(only_a.len(), 2);
        let after = store
            .query(&LogQuery {
                group: "/aws/lambda/f".into(),
                after_id: Some(all[0].id),
                contains: Some("END".into()),
                limit: 10,
                ..LogQuery::default()
            })
            .await
            .expect("query");
        assert_eq!(after.len(), 1);
        let streams = store.streams("/aws/lambda/f").await.expect("streams");
        assert_eq!(streams[0].name, "a", "most recently written first");
        assert_eq!(streams[0].events, 2);
        drop(store);
        let reopened = SqliteLogStore::open(&dir.path().join("logs.db")).expect("reopen");
        assert_eq!(
            reopened
                .streams("/aws/lambda/f")
                .await
                .expect("streams")
                .len(),
            2
        );
    }
}
