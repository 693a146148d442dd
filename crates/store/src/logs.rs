//! [`SqliteLogStore`]: function logs in their own SQLite database beside the metadata.
//!
//! Logs live in a separate file so that a chatty function never contends with metadata writes
//! for the one writer lock. The database runs in WAL mode with `synchronous=NORMAL`: a power loss
//! may drop the last moments of log lines, never corrupt the file; log lines are not
//! acknowledgements a caller relies on, so they are not worth an fsync each.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use nimbus_core::logs::{LogEvent, LogQuery, LogStore, LogStreamInfo};
use nimbus_core::StoreError;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::run_blocking;

/// Applied in order, as `crate::migrate` describes.
const MIGRATIONS: &[&str] = &[
    // 1: one row per line, carrying its group and stream names. Written as `IF NOT EXISTS`
    // because databases from before versioning already hold it at version 0.
    "CREATE TABLE IF NOT EXISTS log_events (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        log_group    TEXT    NOT NULL,
        log_stream   TEXT    NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        message      TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX IF NOT EXISTS log_events_group ON log_events (log_group, id);
    CREATE INDEX IF NOT EXISTS log_events_stream ON log_events (log_group, log_stream, id);",
    // 2: names stored once. Every invoke writes three lines or more, and the names repeated in
    // the row and two string indexes made each line cost ~3x what it does here. A stream's
    // figures are kept up to date on its row instead of being aggregated on every listing.
    "CREATE TABLE log_groups (
        id   INTEGER PRIMARY KEY,
        name TEXT    NOT NULL UNIQUE
    ) STRICT;
    CREATE TABLE log_streams (
        id            INTEGER PRIMARY KEY,
        group_id      INTEGER NOT NULL REFERENCES log_groups (id),
        name          TEXT    NOT NULL,
        first_ms      INTEGER NOT NULL,
        last_ms       INTEGER NOT NULL,
        events        INTEGER NOT NULL,
        last_event_id INTEGER NOT NULL,
        UNIQUE (group_id, name)
    ) STRICT;
    CREATE TABLE log_lines (
        id           INTEGER PRIMARY KEY,
        group_id     INTEGER NOT NULL,
        stream_id    INTEGER NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        message      TEXT    NOT NULL
    ) STRICT;
    INSERT INTO log_groups (name) SELECT DISTINCT log_group FROM log_events ORDER BY log_group;
    INSERT INTO log_streams (group_id, name, first_ms, last_ms, events, last_event_id)
        SELECT g.id, e.log_stream, MIN(e.timestamp_ms), MAX(e.timestamp_ms), COUNT(*), MAX(e.id)
        FROM log_events e JOIN log_groups g ON g.name = e.log_group
        GROUP BY g.id, e.log_stream ORDER BY MIN(e.id);
    INSERT INTO log_lines (id, group_id, stream_id, timestamp_ms, message)
        SELECT e.id, s.group_id, s.id, e.timestamp_ms, e.message
        FROM log_events e
        JOIN log_groups g ON g.name = e.log_group
        JOIN log_streams s ON s.group_id = g.id AND s.name = e.log_stream
        ORDER BY e.id;
    DROP TABLE log_events;
    CREATE INDEX log_lines_group ON log_lines (group_id, id);
    CREATE INDEX log_streams_recent ON log_streams (group_id, last_event_id);",
];

/// Streams [`StreamIds`] holds before it starts over: one per environment ever started.
const MAX_CACHED_STREAMS: usize = 100_000;

/// Name → id of the groups and streams already stored, so that appending a line costs no
/// lookup.
#[derive(Debug, Default)]
struct StreamIds {
    groups: HashMap<String, Group>,
    /// Streams held, over all groups.
    streams: usize,
}

#[derive(Debug)]
struct Group {
    id: i64,
    streams: HashMap<String, i64>,
}

impl StreamIds {
    /// (group id, stream id), if known.
    fn get(&self, group: &str, stream: &str) -> Option<(i64, i64)> {
        let g = self.groups.get(group)?;
        Some((g.id, *g.streams.get(stream)?))
    }

    fn insert(&mut self, group: &str, stream: &str, (group_id, stream_id): (i64, i64)) {
        if self.streams >= MAX_CACHED_STREAMS {
            self.groups.clear();
            self.streams = 0;
        }
        self.groups
            .entry(group.to_owned())
            .or_insert_with(|| Group {
                id: group_id,
                streams: HashMap::new(),
            })
            .streams
            .insert(stream.to_owned(), stream_id);
        self.streams += 1;
    }

    fn forget(&mut self, group: &str, stream: &str) {
        if let Some(g) = self.groups.get_mut(group) {
            if g.streams.remove(stream).is_some() {
                self.streams -= 1;
            }
        }
    }
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    ids: StreamIds,
}

/// A stream's figures gathered over one batch, written to its row once.
struct StreamBatch {
    first_ms: i64,
    last_ms: i64,
    events: i64,
    last_event_id: i64,
}

impl StreamBatch {
    fn new(timestamp_ms: i64, id: i64) -> StreamBatch {
        StreamBatch {
            first_ms: timestamp_ms,
            last_ms: timestamp_ms,
            events: 1,
            last_event_id: id,
        }
    }

    fn add(&mut self, timestamp_ms: i64, id: i64) {
        self.first_ms = self.first_ms.min(timestamp_ms);
        self.last_ms = self.last_ms.max(timestamp_ms);
        self.events += 1;
        self.last_event_id = id;
    }
}

/// [`LogStore`] backed by an SQLite database file.
///
/// Line ids are SQLite rowids without `AUTOINCREMENT` (which costs a fifth more per line): lines
/// are only ever added, so the newest id is never deleted and ids never repeat, which `--follow`
/// relies on.
#[derive(Debug, Clone)]
pub struct SqliteLogStore {
    inner: Arc<Mutex<Inner>>,
}

impl SqliteLogStore {
    /// Open (creating if absent) the log database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).map_err(StoreError::backend)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(StoreError::backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(StoreError::backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(StoreError::backend)?;
        crate::migrate::apply(&mut conn, MIGRATIONS, "logs")?;
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                conn,
                ids: StreamIds::default(),
            })),
        })
    }

    async fn with_inner<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Inner) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        run_blocking(move || {
            let mut inner = inner.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut inner).map_err(StoreError::backend)
        })
        .await
    }
}

impl Inner {
    /// Store `events` in one transaction.
    fn append(&mut self, events: &[LogEvent]) -> Result<(), rusqlite::Error> {
        let mut created = Vec::new();
        let written = self.write(events, &mut created);
        if written.is_err() {
            // The rows behind these ids were rolled back; they must not be handed out again.
            for (group, stream) in &created {
                self.ids.forget(group, stream);
            }
        }
        written
    }

    /// [`Inner::append`]'s transaction; the groups and streams it creates (and caches) are
    /// pushed onto `created`.
    fn write<'e>(
        &mut self,
        events: &'e [LogEvent],
        created: &mut Vec<(&'e str, &'e str)>,
    ) -> Result<(), rusqlite::Error> {
        let mut batches: HashMap<i64, StreamBatch> = HashMap::new();
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO log_lines (group_id, stream_id, timestamp_ms, message)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for e in events {
                let (group_id, stream_id) = match self.ids.get(&e.group, &e.stream) {
                    Some(ids) => ids,
                    None => {
                        let ids = stream_ids(&tx, &e.group, &e.stream)?;
                        self.ids.insert(&e.group, &e.stream, ids);
                        created.push((&e.group, &e.stream));
                        ids
                    }
                };
                insert.execute(params![group_id, stream_id, e.timestamp_ms, e.message])?;
                let id = tx.last_insert_rowid();
                batches
                    .entry(stream_id)
                    .and_modify(|b| b.add(e.timestamp_ms, id))
                    .or_insert_with(|| StreamBatch::new(e.timestamp_ms, id));
            }
            let mut update = tx.prepare_cached(
                "UPDATE log_streams SET
                     first_ms = CASE WHEN events = 0 THEN ?2 ELSE MIN(first_ms, ?2) END,
                     last_ms = CASE WHEN events = 0 THEN ?3 ELSE MAX(last_ms, ?3) END,
                     events = events + ?4,
                     last_event_id = ?5
                 WHERE id = ?1",
            )?;
            for (stream_id, b) in &batches {
                update.execute(params![
                    stream_id,
                    b.first_ms,
                    b.last_ms,
                    b.events,
                    b.last_event_id
                ])?;
            }
        }
        tx.commit()
    }
}

/// The ids of `group` and of its `stream`, creating either row if absent.
fn stream_ids(tx: &Transaction<'_>, group: &str, stream: &str) -> rusqlite::Result<(i64, i64)> {
    let group_id = match tx
        .prepare_cached("SELECT id FROM log_groups WHERE name = ?1")?
        .query_row([group], |row| row.get(0))
        .optional()?
    {
        Some(id) => id,
        None => {
            tx.prepare_cached("INSERT INTO log_groups (name) VALUES (?1)")?
                .execute([group])?;
            tx.last_insert_rowid()
        }
    };
    let stream_id = match tx
        .prepare_cached("SELECT id FROM log_streams WHERE group_id = ?1 AND name = ?2")?
        .query_row(params![group_id, stream], |row| row.get(0))
        .optional()?
    {
        Some(id) => id,
        None => {
            tx.prepare_cached(
                "INSERT INTO log_streams (group_id, name, first_ms, last_ms, events, last_event_id)
                 VALUES (?1, ?2, 0, 0, 0, 0)",
            )?
            .execute(params![group_id, stream])?;
            tx.last_insert_rowid()
        }
    };
    Ok((group_id, stream_id))
}

#[async_trait]
impl LogStore for SqliteLogStore {
    async fn append(&self, events: Vec<LogEvent>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        self.with_inner(move |inner| inner.append(&events)).await
    }

    async fn query(&self, q: &LogQuery) -> Result<Vec<LogEvent>, StoreError> {
        let q = q.clone();
        self.with_inner(move |inner| {
            // The stream filter is applied here rather than in SQL: a query names few streams,
            // and a fixed statement stays cacheable.
            let mut stmt = inner.conn.prepare_cached(
                "SELECT l.id, s.name, l.timestamp_ms, l.message
                 FROM log_lines l JOIN log_streams s ON s.id = l.stream_id
                 WHERE l.group_id = (SELECT id FROM log_groups WHERE name = ?1)
                   AND l.id > ?2 AND l.timestamp_ms >= ?3 AND l.timestamp_ms < ?4
                   AND (?5 IS NULL OR instr(l.message, ?5) > 0)
                 ORDER BY l.id LIMIT ?6",
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
        self.with_inner(move |inner| {
            let mut stmt = inner.conn.prepare_cached(
                "SELECT s.name, s.first_ms, s.last_ms, s.events
                 FROM log_streams s JOIN log_groups g ON g.id = s.group_id
                 WHERE g.name = ?1 AND s.events > 0
                 ORDER BY s.last_event_id DESC",
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

    /// Up to 10 lines of `group`, oldest first.
    async fn lines_of(store: &SqliteLogStore, group: &str) -> Vec<LogEvent> {
        store
            .query(&LogQuery {
                group: group.into(),
                limit: 10,
                ..LogQuery::default()
            })
            .await
            .expect("query")
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
        let all = lines_of(&store, "/aws/lambda/f").await;
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

    #[tokio::test]
    async fn stream_figures_add_up_across_batches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteLogStore::open(&dir.path().join("logs.db")).expect("open");
        store
            .append(vec![event("a", 50, "one"), event("b", 10, "two")])
            .await
            .expect("append");
        store
            .append(vec![event("a", 40, "three"), event("a", 70, "four")])
            .await
            .expect("append");
        let streams = store.streams("/aws/lambda/f").await.expect("streams");
        let a = &streams[0];
        assert_eq!(
            (a.name.as_str(), a.first_ms, a.last_ms, a.events),
            ("a", 40, 70, 3)
        );
        let b = &streams[1];
        assert_eq!(
            (b.name.as_str(), b.first_ms, b.last_ms, b.events),
            ("b", 10, 10, 1)
        );
        assert!(store
            .streams("/aws/lambda/other")
            .await
            .expect("streams")
            .is_empty());
        // A group that shares a stream name keeps its own lines.
        let mut other = event("a", 1, "elsewhere");
        other.group = "/aws/lambda/g".into();
        store.append(vec![other]).await.expect("append");
        let f = lines_of(&store, "/aws/lambda/f").await;
        assert_eq!(f.len(), 4);
        assert!(f.windows(2).all(|w| w[0].id < w[1].id));
    }

    /// A failed append leaves no id behind for a stream it created and rolled back.
    #[tokio::test]
    async fn a_failed_append_forgets_the_streams_it_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("logs.db");
        let store = SqliteLogStore::open(&path).expect("open");
        store
            .append(vec![event("a", 1, "one")])
            .await
            .expect("append");
        let other = Connection::open(&path).expect("open");
        let table: String = other
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'log_lines'",
                [],
                |row| row.get(0),
            )
            .expect("schema");
        other.execute_batch("DROP TABLE log_lines").expect("drop");
        // Stream "b" is created, then its line cannot be written: all of it rolls back.
        assert!(store.append(vec![event("b", 2, "two")]).await.is_err());
        other.execute_batch(&table).expect("restore");
        store
            .append(vec![event("b", 3, "three")])
            .await
            .expect("append");
        let streams = store.streams("/aws/lambda/f").await.expect("streams");
        let b = streams
            .iter()
            .find(|s| s.name == "b")
            .expect("stream b is listed");
        assert_eq!((b.first_ms, b.last_ms, b.events), (3, 3, 1));
        let lines = lines_of(&store, "/aws/lambda/f").await;
        assert_eq!(lines.last().map(|l| l.stream.as_str()), Some("b"));
    }

    /// A log database written before schema versions (one row per line with both names) is
    /// carried over with its ids, so a follower's position stays valid.
    #[tokio::test]
    async fn migrates_the_unversioned_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("logs.db");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(MIGRATIONS[0]).expect("old schema");
            for (group, stream, ts, message) in [
                ("/aws/lambda/f", "s1", 5, "START"),
                ("/aws/lambda/g", "s9", 6, "other"),
                ("/aws/lambda/f", "s2", 7, "hello"),
                ("/aws/lambda/f", "s1", 8, "END"),
            ] {
                conn.execute(
                    "INSERT INTO log_events (log_group, log_stream, timestamp_ms, message)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![group, stream, ts, message],
                )
                .expect("insert");
            }
            conn.execute("DELETE FROM log_events WHERE message = 'other'", [])
                .expect("gap in ids");
        }
        let store = SqliteLogStore::open(&path).expect("migrate");
        let all = lines_of(&store, "/aws/lambda/f").await;
        let seen: Vec<_> = all
            .iter()
            .map(|e| (e.id, e.stream.as_str(), e.timestamp_ms, e.message.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (1, "s1", 5, "START"),
                (3, "s2", 7, "hello"),
                (4, "s1", 8, "END")
            ]
        );
        let streams = store.streams("/aws/lambda/f").await.expect("streams");
        assert_eq!(streams[0].name, "s1", "most recently written first");
        assert_eq!(
            (streams[0].first_ms, streams[0].last_ms, streams[0].events),
            (5, 8, 2)
        );
        store
            .append(vec![event("s2", 9, "after")])
            .await
            .expect("append");
        let newer = store
            .query(&LogQuery {
                group: "/aws/lambda/f".into(),
                after_id: Some(4),
                limit: 10,
                ..LogQuery::default()
            })
            .await
            .expect("query");
        assert_eq!(newer.len(), 1);
        assert_eq!(newer[0].message, "after");
        assert_eq!(newer[0].stream, "s2");
    }
}
