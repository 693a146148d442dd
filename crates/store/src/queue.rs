//! [`SqliteEventQueue`]: the durable queue of asynchronous invocations and the functions'
//! async settings, in an SQLite database of their own (`<data-dir>/events.db`).
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous=FULL`: a commit returns only once the WAL is
//! fsynced. [`enqueue`](EventQueue::enqueue) answers only after the transaction holding its
//! event has committed, so an accepted (202) event survives a `SIGKILL` of the process and a
//! power loss. A call that failed, or whose caller went away, may or may not have taken effect,
//! but never half: every operation's statements commit or roll back together.
//!
//! # Group commit
//!
//! One fsync per event caps a disk at a few thousand events a second, so writes are grouped.
//! Every mutation (enqueue, lease, complete, reschedule, recover, the config writes, forget)
//! is a job sent over a channel to one writer thread that owns the write connection. The
//! writer blocks for the first job, then takes every job already waiting (up to
//! [`MAX_BATCH_JOBS`] jobs or [`MAX_BATCH_BYTES`] of payload), applies them in arrival order
//! inside one `BEGIN IMMEDIATE` transaction, commits once (one fsync) and only then answers
//! every caller of the batch. While a batch is being fsynced the next one gathers in the
//! channel, so the batch size follows the load by itself: one caller gets one commit per call
//! with no added delay, 64 callers share a commit. Reads ([`len`](EventQueue::len) and the
//! config reads) use a second connection on tokio's blocking pool and see every write that
//! has been answered.
//!
//! A job that is refused ([`StoreError::AlreadyExists`], [`StoreError::NotFound`]) writes
//! nothing before it is refused, so the rest of its batch commits normally. Any other failure
//! while applying a job (I/O, disk full) rolls back the whole batch and fails all its callers;
//! nothing of it was answered as done. A payload too large for SQLite is refused before it
//! reaches the writer, so one oversized event cannot fail a batch of others.
//!
//! # What is fsynced when
//!
//! - enqueue, complete, reschedule, recover, config writes, forget: durable on return (the
//!   batch containing them commits with `synchronous=FULL`).
//! - lease: a batch made only of leases commits with `synchronous=NORMAL`, i.e. without an
//!   fsync of its own. A lease only means something while its owner runs, and the restarted
//!   server's [`recover`](EventQueue::recover) gives back every lease of an earlier process
//!   anyway; a lease lost to a power cut only means its event runs again (at-least-once). The
//!   WAL is appended in order, so the next fsynced commit (or checkpoint) makes the earlier
//!   unsynced lease frames durable too; they can never be lost while a later commit survives.
//!   A batch mixing leases with other writes is fsynced like any other.
//! - complete and reschedule are fully durable, not merely ordered: after they return, a power
//!   loss cannot bring the event (or its old attempt count) back, so a completed event never
//!   runs again. Group commit makes that cheap: a dispatcher settles many events at once and
//!   they share a commit with each other and with incoming events.
//!
//! # Schema
//!
//! `events` holds the small, changing part of an event (ids, times, attempts, lease owner);
//! its payload is a BLOB in `event_payloads`, keyed by the same sequence number, so leasing or
//! rescheduling a 1 MiB event rewrites a few dozen bytes rather than its payload. The sequence
//! number (the rowid) is the insertion order that breaks ties between events due at the same
//! instant; the partial index `events_due` on `(not_before, seq)` covers only unleased events,
//! so a lease reads exactly the rows it hands out. Times are INTEGER nanoseconds since the
//! epoch (exact, sortable; 1677–2262). Invoke configs are keyed by function and qualifier,
//! with `''` for the unqualified settings, which keeps the key NULL-free and lists them first.
//! Tables are `STRICT`; the schema is versioned with `PRAGMA user_version`, upgraded at
//! [`SqliteEventQueue::open`]; a database written by a newer binary is refused.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use nimbus_core::queue::{
    EventInvokeConfig, EventQueue, OutboxMessage, QueuedEvent, OUTBOX_RETENTION,
};
use nimbus_core::{FunctionName, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use crate::run_blocking;

/// The schema, one migration per version: applying `MIGRATIONS[i]` takes the database from
/// version `i` to `i + 1`. Append only; never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: events, their payloads, and invoke configs.
    "CREATE TABLE events (
         seq         INTEGER PRIMARY KEY,
         id          TEXT    NOT NULL UNIQUE,
         function    TEXT    NOT NULL,
         qualifier   TEXT,
         enqueued_at INTEGER NOT NULL,
         attempts    INTEGER NOT NULL CHECK (attempts >= 0),
         not_before  INTEGER NOT NULL,
         lease_owner TEXT
     ) STRICT;
     CREATE INDEX events_due ON events (not_before, seq) WHERE lease_owner IS NULL;
     CREATE INDEX events_leased ON events (lease_owner) WHERE lease_owner IS NOT NULL;
     CREATE INDEX events_function ON events (function);
     CREATE TABLE event_payloads (
         seq  INTEGER PRIMARY KEY,
         body BLOB    NOT NULL
     ) STRICT;
     CREATE TABLE invoke_configs (
         function                  TEXT    NOT NULL,
         qualifier                 TEXT    NOT NULL,
         maximum_retry_attempts    INTEGER CHECK (maximum_retry_attempts >= 0),
         maximum_event_age_seconds INTEGER CHECK (maximum_event_age_seconds >= 0),
         on_success                TEXT,
         on_failure                TEXT,
         last_modified             INTEGER NOT NULL,
         PRIMARY KEY (function, qualifier)
     ) STRICT, WITHOUT ROWID;",
    // 2: messages held for queue and topic targets (dead letters, destination records).
    "CREATE TABLE outbox (
         seq        INTEGER PRIMARY KEY,
         id         TEXT    NOT NULL UNIQUE,
         target_arn TEXT    NOT NULL,
         body       BLOB    NOT NULL,
         attributes TEXT    NOT NULL,
         sent_at    INTEGER NOT NULL
     ) STRICT;
     CREATE INDEX outbox_target ON outbox (target_arn, seq);
     CREATE INDEX outbox_sent ON outbox (sent_at);",
];

/// The schema version this binary creates and understands.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a statement waits for a lock held by another connection (an operator's `sqlite3`
/// shell) before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Most jobs applied in one transaction: bounds the latency a batch adds to its first caller.
const MAX_BATCH_JOBS: usize = 4096;

/// Most payload bytes gathered into one transaction (a batch stops growing once past it).
const MAX_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// Largest payload accepted: far above the API's limits (1 MiB for async invocation), well
/// below SQLite's maximum BLOB length, so a payload never fails inside a batch.
const MAX_PAYLOAD_BYTES: usize = 256 * 1024 * 1024;

/// The WAL is truncated back to this size after a checkpoint, so a burst of large payloads
/// does not leave a large file behind.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// A write that could not be made: the batch it was in failed, or the writer is gone.
#[derive(Debug, thiserror::Error)]
#[error("event queue write failed: {0}")]
struct WriteFailed(String);

/// A time outside what the queue can store.
#[derive(Debug, thiserror::Error)]
#[error("time {0} is outside the range the event queue stores (years 1677 to 2262)")]
struct TimeOutOfRange(DateTime<Utc>);

/// A stored value that does not read back (edited by hand, or corrupt).
#[derive(Debug, thiserror::Error)]
#[error("event queue column {column} holds {value}, which is not valid")]
struct CorruptValue {
    column: &'static str,
    value: String,
}

/// A payload larger than [`MAX_PAYLOAD_BYTES`].
#[derive(Debug, thiserror::Error)]
#[error("event payload of {0} bytes is larger than the event queue accepts")]
struct PayloadTooLarge(usize);

/// Counters of the writer, for metrics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Jobs handed to the writer so far (counted once they are in its channel).
    pub submitted: u64,
    /// Jobs the writer has finished (answered), whatever their outcome.
    pub finished: u64,
    /// Transactions committed.
    pub commits: u64,
    /// Commits made with an fsync (`synchronous=FULL`); the rest held only leases.
    pub synced_commits: u64,
}

#[derive(Debug, Default)]
struct Counters {
    submitted: AtomicU64,
    finished: AtomicU64,
    commits: AtomicU64,
    synced_commits: AtomicU64,
}

/// [`EventQueue`] backed by an SQLite database file, with group commit.
///
/// Cloning is cheap and shares the writer thread and the read connection. The writer stops
/// when the last clone is dropped (the drop waits for its current batch).
#[derive(Debug, Clone)]
pub struct SqliteEventQueue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    reader: Arc<Mutex<Connection>>,
    counters: Arc<Counters>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer's loop once it has answered what it holds.
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!("the event queue writer thread panicked");
            }
        }
    }
}

/// A mutation for the writer.
#[derive(Debug)]
enum Op {
    Enqueue(QueuedEvent),
    Lease {
        owner: String,
        now: i64,
        limit: i64,
    },
    Complete(String),
    Reschedule {
        id: String,
        attempts: u32,
        not_before: i64,
    },
    Recover(String),
    PutConfig(EventInvokeConfig),
    DeleteConfig {
        function: String,
        qualifier: String,
    },
    Forget(String),
    Hold {
        message: OutboxMessage,
        /// Messages sent before this (nanoseconds) are past retention.
        expired_before: i64,
    },
}

impl Op {
    /// Whether the commit holding this must be fsynced before its caller is answered.
    fn needs_sync(&self) -> bool {
        !matches!(self, Self::Lease { .. })
    }

    /// Payload bytes, for the batch size cap.
    fn bytes(&self) -> usize {
        match self {
            Self::Enqueue(event) => event.payload.len(),
            Self::Hold { message, .. } => message.body.len(),
            _ => 0,
        }
    }
}

/// What a job answers.
#[derive(Debug)]
enum Reply {
    Done,
    Leased(Vec<QueuedEvent>),
    Count(u64),
}

#[derive(Debug)]
struct Job {
    op: Op,
    reply: oneshot::Sender<Result<Reply, StoreError>>,
}

/// How applying one job went wrong.
enum Failure {
    /// The job is refused; it wrote nothing, and the rest of the batch goes on.
    Refused(StoreError),
    /// The transaction cannot be trusted any more: the whole batch rolls back.
    Fatal(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(err: rusqlite::Error) -> Self {
        Self::Fatal(StoreError::backend(err))
    }
}

impl SqliteEventQueue {
    /// Open (creating if absent) the database at `path`, e.g. `<data-dir>/events.db`, bring
    /// its schema up to date and start the writer thread. Blocks on disk I/O: call it at
    /// start-up or from a blocking task.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut writer = Connection::open(path).map_err(StoreError::backend)?;
        configure(&writer)?;
        crate::migrate::apply(&mut writer, MIGRATIONS, "events")?;
        // The reader is opened after the writer made the file a WAL database.
        let reader = Connection::open(path).map_err(StoreError::backend)?;
        reader
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(StoreError::backend)?;
        reader
            .pragma_update(None, "query_only", true)
            .map_err(StoreError::backend)?;
        let counters = Arc::new(Counters::default());
        let (jobs, queue) = mpsc::channel();
        let thread_counters = Arc::clone(&counters);
        let handle = std::thread::Builder::new()
            .name("nimbus-event-queue".to_owned())
            .spawn(move || Writer::new(writer, thread_counters).run(&queue))
            .map_err(StoreError::backend)?;
        tracing::debug!(path = %path.display(), version = SCHEMA_VERSION, "opened event queue");
        Ok(Self {
            inner: Arc::new(Inner {
                jobs: Some(jobs),
                writer: Some(handle),
                reader: Arc::new(Mutex::new(reader)),
                counters,
            }),
        })
    }

    /// The writer's counters so far.
    pub fn write_stats(&self) -> WriteStats {
        let c = &self.inner.counters;
        WriteStats {
            submitted: c.submitted.load(Ordering::Relaxed),
            finished: c.finished.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            synced_commits: c.synced_commits.load(Ordering::Relaxed),
        }
    }

    /// Hand `op` to the writer and wait for the commit that holds it.
    async fn write(&self, op: Op) -> Result<Reply, StoreError> {
        let (reply, answer) = oneshot::channel();
        let jobs = self
            .inner
            .jobs
            .as_ref()
            .ok_or_else(|| StoreError::backend(WriteFailed("the writer is stopped".into())))?;
        jobs.send(Job { op, reply })
            .map_err(|_| StoreError::backend(WriteFailed("the writer is stopped".into())))?;
        self.inner
            .counters
            .submitted
            .fetch_add(1, Ordering::Relaxed);
        answer.await.map_err(|_| {
            StoreError::backend(WriteFailed(
                "the writer stopped before answering".to_owned(),
            ))
        })?
    }

    /// Run `work` with the read connection on the blocking pool.
    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let reader = Arc::clone(&self.inner.reader);
        run_blocking(move || {
            let conn = reader.lock().unwrap_or_else(PoisonError::into_inner);
            work(&conn)
        })
        .await
    }
}

/// Per-connection settings of the writer; these must be set outside any transaction.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(StoreError::backend)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(StoreError::backend)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "SQLite refused WAL journal mode for the events database");
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(StoreError::backend)?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
        .map_err(StoreError::backend)?;
    Ok(())
}

/// The writer thread: owns the write connection and commits batches of jobs.
struct Writer {
    conn: Connection,
    counters: Arc<Counters>,
    /// Whether the connection is at `synchronous=FULL` (else NORMAL).
    synced: bool,
}

impl Writer {
    fn new(conn: Connection, counters: Arc<Counters>) -> Self {
        Self {
            conn,
            counters,
            synced: true,
        }
    }

    fn run(mut self, queue: &mpsc::Receiver<Job>) {
        // `recv` fails once every sender is gone: the queue was dropped.
        while let Ok(first) = queue.recv() {
            let mut bytes = first.op.bytes();
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH_JOBS && bytes < MAX_BATCH_BYTES {
                match queue.try_recv() {
                    Ok(job) => {
                        bytes += job.op.bytes();
                        batch.push(job);
                    }
                    Err(_) => break,
                }
            }
            let jobs = batch.len() as u64;
            // A panic drops the batch's reply senders, so its callers get an error, and the
            // open transaction rolls back as it unwinds; the writer goes on with the next.
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.commit(batch)));
            if outcome.is_err() {
                tracing::error!("the event queue writer panicked; its batch failed");
                self.counters.finished.fetch_add(jobs, Ordering::Relaxed);
            }
        }
        tracing::debug!("event queue writer stopped");
    }

    /// Apply `batch` in one transaction, commit, then answer every job.
    fn commit(&mut self, batch: Vec<Job>) {
        let sync = batch.iter().any(|job| job.op.needs_sync());
        let outcome = self.apply(&batch, sync);
        // Counted before the answers, so a caller that got one sees its job counted.
        self.counters
            .finished
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        match outcome {
            Ok(results) => {
                for (job, result) in batch.into_iter().zip(results) {
                    // A caller that went away no longer wants its answer.
                    let _ = job.reply.send(result);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, jobs = batch.len(), "an event queue batch failed");
                let message = err.to_string();
                for job in batch {
                    let _ = job
                        .reply
                        .send(Err(StoreError::backend(WriteFailed(message.clone()))));
                }
            }
        }
    }

    /// The per-job results of a committed batch, or why the batch as a whole failed.
    fn apply(
        &mut self,
        batch: &[Job],
        sync: bool,
    ) -> Result<Vec<Result<Reply, StoreError>>, StoreError> {
        if sync != self.synced {
            let level = if sync { "FULL" } else { "NORMAL" };
            self.conn
                .pragma_update(None, "synchronous", level)
                .map_err(StoreError::backend)?;
            self.synced = sync;
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::backend)?;
        let mut results = Vec::with_capacity(batch.len());
        for job in batch {
            match apply(&tx, &job.op) {
                Ok(reply) => results.push(Ok(reply)),
                Err(Failure::Refused(err)) => results.push(Err(err)),
                // Dropping `tx` rolls back everything the batch did.
                Err(Failure::Fatal(err)) => return Err(err),
            }
        }
        tx.commit().map_err(StoreError::backend)?;
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        if sync {
            self.counters.synced_commits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(results)
    }
}

/// Apply one job inside the batch's transaction. A refusal must come before the job writes
/// anything (or from a statement SQLite rolled back by itself), so the batch can go on.
fn apply(tx: &Transaction<'_>, op: &Op) -> Result<Reply, Failure> {
    match op {
        Op::Enqueue(event) => {
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO events
                         (id, function, qualifier, enqueued_at, attempts, not_before)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    event.id,
                    event.function.as_str(),
                    event.qualifier,
                    nanos(event.enqueued_at).map_err(Failure::Refused)?,
                    event.attempts,
                    nanos(event.not_before).map_err(Failure::Refused)?,
                ]);
            match inserted {
                // A failed statement is rolled back by itself; the transaction stays.
                Err(err) if is_unique_violation(&err) => {
                    return Err(Failure::Refused(StoreError::AlreadyExists))
                }
                other => other?,
            };
            let seq = tx.last_insert_rowid();
            // REPLACE: a payload row left without its event (by a hand edit) is stale, not a
            // reason to fail the batch.
            tx.prepare_cached("INSERT OR REPLACE INTO event_payloads (seq, body) VALUES (?1, ?2)")?
                .execute(params![seq, event.payload.as_ref()])?;
            Ok(Reply::Done)
        }
        Op::Lease { owner, now, limit } => {
            let due = {
                let mut select = tx.prepare_cached(
                    "SELECT e.seq, e.id, e.function, e.qualifier, e.enqueued_at, e.attempts,
                            e.not_before, p.body
                     FROM events AS e JOIN event_payloads AS p ON p.seq = e.seq
                     WHERE e.lease_owner IS NULL AND e.not_before <= ?1
                     ORDER BY e.not_before, e.seq
                     LIMIT ?2",
                )?;
                let rows = select.query_map(params![now, limit], |row| {
                    Ok((row.get::<_, i64>(0)?, decode_event(row)))
                })?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            let mut update =
                tx.prepare_cached("UPDATE events SET lease_owner = ?1 WHERE seq = ?2")?;
            let mut leased = Vec::with_capacity(due.len());
            for (seq, event) in due {
                update.execute(params![owner, seq])?;
                leased.push(event.map_err(Failure::Fatal)?);
            }
            Ok(Reply::Leased(leased))
        }
        Op::Complete(id) => {
            let seq: Option<i64> = tx
                .prepare_cached("DELETE FROM events WHERE id = ?1 RETURNING seq")?
                .query_row(params![id], |row| row.get(0))
                .optional()?;
            let seq = seq.ok_or(Failure::Refused(StoreError::NotFound))?;
            tx.prepare_cached("DELETE FROM event_payloads WHERE seq = ?1")?
                .execute(params![seq])?;
            Ok(Reply::Done)
        }
        Op::Reschedule {
            id,
            attempts,
            not_before,
        } => {
            let changed = tx
                .prepare_cached(
                    "UPDATE events SET attempts = ?2, not_before = ?3, lease_owner = NULL
                     WHERE id = ?1",
                )?
                .execute(params![id, attempts, not_before])?;
            if changed == 0 {
                return Err(Failure::Refused(StoreError::NotFound));
            }
            Ok(Reply::Done)
        }
        Op::Recover(owner) => {
            let released = tx
                .prepare_cached(
                    "UPDATE events SET lease_owner = NULL
                     WHERE lease_owner IS NOT NULL AND lease_owner <> ?1",
                )?
                .execute(params![owner])?;
            Ok(Reply::Count(released as u64))
        }
        Op::PutConfig(config) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO invoke_configs
                     (function, qualifier, maximum_retry_attempts, maximum_event_age_seconds,
                      on_success, on_failure, last_modified)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                config.function.as_str(),
                config.qualifier.as_deref().unwrap_or_default(),
                config.maximum_retry_attempts,
                config.maximum_event_age_seconds,
                config.on_success,
                config.on_failure,
                nanos(config.last_modified).map_err(Failure::Refused)?,
            ])?;
            Ok(Reply::Done)
        }
        Op::DeleteConfig {
            function,
            qualifier,
        } => {
            let deleted = tx
                .prepare_cached(
                    "DELETE FROM invoke_configs WHERE function = ?1 AND qualifier = ?2",
                )?
                .execute(params![function, qualifier])?;
            if deleted == 0 {
                return Err(Failure::Refused(StoreError::NotFound));
            }
            Ok(Reply::Done)
        }
        Op::Forget(function) => {
            tx.prepare_cached(
                "DELETE FROM event_payloads
                 WHERE seq IN (SELECT seq FROM events WHERE function = ?1)",
            )?
            .execute(params![function])?;
            tx.prepare_cached("DELETE FROM events WHERE function = ?1")?
                .execute(params![function])?;
            tx.prepare_cached("DELETE FROM invoke_configs WHERE function = ?1")?
                .execute(params![function])?;
            Ok(Reply::Done)
        }
        Op::Hold {
            message,
            expired_before,
        } => {
            tx.prepare_cached("DELETE FROM outbox WHERE sent_at < ?1")?
                .execute(params![expired_before])?;
            let attributes = serde_json::to_string(&message.attributes)
                .map_err(|e| Failure::Refused(StoreError::backend(e)))?;
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO outbox (id, target_arn, body, attributes, sent_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    message.id,
                    message.target_arn,
                    message.body.as_ref(),
                    attributes,
                    nanos(message.sent_at).map_err(Failure::Refused)?,
                ]);
            match inserted {
                Err(err) if is_unique_violation(&err) => {
                    Err(Failure::Refused(StoreError::AlreadyExists))
                }
                other => other.map(|_| Reply::Done).map_err(Failure::from),
            }
        }
    }
}

/// A held message, from `id, target_arn, body, attributes, sent_at`.
fn decode_held(row: &Row<'_>) -> Result<OutboxMessage, StoreError> {
    let body: Vec<u8> = row.get(2).map_err(StoreError::backend)?;
    let attributes: String = row.get(3).map_err(StoreError::backend)?;
    Ok(OutboxMessage {
        id: row.get(0).map_err(StoreError::backend)?,
        target_arn: row.get(1).map_err(StoreError::backend)?,
        body: Bytes::from(body),
        attributes: serde_json::from_str(&attributes).map_err(|_| {
            StoreError::backend(CorruptValue {
                column: "attributes",
                value: attributes.clone(),
            })
        })?,
        sent_at: time(row.get(4).map_err(StoreError::backend)?),
    })
}

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

/// A time as stored: nanoseconds since the epoch.
fn nanos(t: DateTime<Utc>) -> Result<i64, StoreError> {
    t.timestamp_nanos_opt()
        .ok_or_else(|| StoreError::backend(TimeOutOfRange(t)))
}

/// A stored time.
fn time(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

/// The columns of a leased event, in the order the lease query selects them (after `seq`).
fn decode_event(row: &Row<'_>) -> Result<QueuedEvent, StoreError> {
    let function: String = row.get(2).map_err(StoreError::backend)?;
    let attempts: i64 = row.get(5).map_err(StoreError::backend)?;
    let body: Vec<u8> = row.get(7).map_err(StoreError::backend)?;
    Ok(QueuedEvent {
        id: row.get(1).map_err(StoreError::backend)?,
        function: function_name(function)?,
        qualifier: row.get(3).map_err(StoreError::backend)?,
        payload: Bytes::from(body),
        enqueued_at: time(row.get(4).map_err(StoreError::backend)?),
        attempts: u32::try_from(attempts).map_err(|_| {
            StoreError::backend(CorruptValue {
                column: "attempts",
                value: attempts.to_string(),
            })
        })?,
        not_before: time(row.get(6).map_err(StoreError::backend)?),
    })
}

fn function_name(name: String) -> Result<FunctionName, StoreError> {
    FunctionName::new(&name).map_err(|_| {
        StoreError::backend(CorruptValue {
            column: "function",
            value: name,
        })
    })
}

fn optional_u32(
    row: &Row<'_>,
    index: usize,
    column: &'static str,
) -> Result<Option<u32>, StoreError> {
    let value: Option<i64> = row.get(index).map_err(StoreError::backend)?;
    value
        .map(|v| {
            u32::try_from(v).map_err(|_| {
                StoreError::backend(CorruptValue {
                    column,
                    value: v.to_string(),
                })
            })
        })
        .transpose()
}

const CONFIG_COLUMNS: &str = "function, qualifier, maximum_retry_attempts, \
                              maximum_event_age_seconds, on_success, on_failure, last_modified";

fn decode_config(row: &Row<'_>) -> Result<EventInvokeConfig, StoreError> {
    let function: String = row.get(0).map_err(StoreError::backend)?;
    let qualifier: String = row.get(1).map_err(StoreError::backend)?;
    Ok(EventInvokeConfig {
        function: function_name(function)?,
        qualifier: (!qualifier.is_empty()).then_some(qualifier),
        maximum_retry_attempts: optional_u32(row, 2, "maximum_retry_attempts")?,
        maximum_event_age_seconds: optional_u32(row, 3, "maximum_event_age_seconds")?,
        on_success: row.get(4).map_err(StoreError::backend)?,
        on_failure: row.get(5).map_err(StoreError::backend)?,
        last_modified: time(row.get(6).map_err(StoreError::backend)?),
    })
}

fn unexpected(reply: Reply) -> StoreError {
    StoreError::backend(WriteFailed(format!("unexpected writer reply {reply:?}")))
}

#[async_trait]
impl EventQueue for SqliteEventQueue {
    async fn enqueue(&self, event: &QueuedEvent) -> Result<(), StoreError> {
        if event.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(StoreError::backend(PayloadTooLarge(event.payload.len())));
        }
        // Checked here too, so the common mistake fails before it joins a batch.
        nanos(event.enqueued_at)?;
        nanos(event.not_before)?;
        match self.write(Op::Enqueue(event.clone())).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn lease(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<QueuedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Beyond the stored range every (stored) event is due, or none is.
        let now = now.timestamp_nanos_opt().unwrap_or(if now.timestamp() > 0 {
            i64::MAX
        } else {
            i64::MIN
        });
        let op = Op::Lease {
            owner: owner.to_owned(),
            now,
            limit: i64::try_from(limit).unwrap_or(i64::MAX),
        };
        match self.write(op).await? {
            Reply::Leased(events) => Ok(events),
            other => Err(unexpected(other)),
        }
    }

    async fn complete(&self, id: &str) -> Result<(), StoreError> {
        match self.write(Op::Complete(id.to_owned())).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn reschedule(
        &self,
        id: &str,
        attempts: u32,
        not_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let op = Op::Reschedule {
            id: id.to_owned(),
            attempts,
            not_before: nanos(not_before)?,
        };
        match self.write(op).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn recover(&self, current_owner: &str) -> Result<u64, StoreError> {
        match self.write(Op::Recover(current_owner.to_owned())).await? {
            Reply::Count(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    async fn len(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let n: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM events")
                .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
                .map_err(StoreError::backend)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn get_invoke_config(
        &self,
        function: &FunctionName,
        qualifier: Option<&str>,
    ) -> Result<Option<EventInvokeConfig>, StoreError> {
        let function = function.as_str().to_owned();
        let qualifier = qualifier.unwrap_or_default().to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {CONFIG_COLUMNS} FROM invoke_configs
                     WHERE function = ?1 AND qualifier = ?2"
                ))
                .map_err(StoreError::backend)?;
            let mut rows = stmt
                .query(params![function, qualifier])
                .map_err(StoreError::backend)?;
            match rows.next().map_err(StoreError::backend)? {
                Some(row) => decode_config(row).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn put_invoke_config(&self, config: &EventInvokeConfig) -> Result<(), StoreError> {
        nanos(config.last_modified)?;
        match self.write(Op::PutConfig(config.clone())).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn delete_invoke_config(
        &self,
        function: &FunctionName,
        qualifier: Option<&str>,
    ) -> Result<(), StoreError> {
        let op = Op::DeleteConfig {
            function: function.as_str().to_owned(),
            qualifier: qualifier.unwrap_or_default().to_owned(),
        };
        match self.write(op).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn list_invoke_configs(
        &self,
        function: &FunctionName,
    ) -> Result<Vec<EventInvokeConfig>, StoreError> {
        let function = function.as_str().to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {CONFIG_COLUMNS} FROM invoke_configs
                     WHERE function = ?1 ORDER BY qualifier"
                ))
                .map_err(StoreError::backend)?;
            let mut rows = stmt.query(params![function]).map_err(StoreError::backend)?;
            let mut configs = Vec::new();
            while let Some(row) = rows.next().map_err(StoreError::backend)? {
                configs.push(decode_config(row)?);
            }
            Ok(configs)
        })
        .await
    }

    async fn forget_function(&self, function: &FunctionName) -> Result<(), StoreError> {
        match self.write(Op::Forget(function.as_str().to_owned())).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn hold(&self, message: &OutboxMessage) -> Result<(), StoreError> {
        if message.body.len() > MAX_PAYLOAD_BYTES {
            return Err(StoreError::backend(PayloadTooLarge(message.body.len())));
        }
        let retention =
            chrono::Duration::from_std(OUTBOX_RETENTION).unwrap_or(chrono::Duration::MAX);
        let op = Op::Hold {
            message: message.clone(),
            expired_before: nanos(message.sent_at)?
                .saturating_sub(retention.num_nanoseconds().unwrap_or(i64::MAX)),
        };
        match self.write(op).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn held(
        &self,
        target_arn: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let target = target_arn.map(str::to_owned);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, target_arn, body, attributes, sent_at FROM outbox
                     WHERE ?1 IS NULL OR target_arn = ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(StoreError::backend)?;
            let mut rows = stmt
                .query(params![target, limit])
                .map_err(StoreError::backend)?;
            let mut held = Vec::new();
            while let Some(row) = rows.next().map_err(StoreError::backend)? {
                held.push(decode_held(row)?);
            }
            Ok(held)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_to_the_nanosecond() {
        let t = DateTime::parse_from_rfc3339("2026-03-01T12:34:56.123456789Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(time(nanos(t).expect("in range")), t);
        let far = DateTime::parse_from_rfc3339("3000-01-01T00:00:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert!(nanos(far).is_err(), "beyond 2262 is refused, not wrapped");
    }

    #[test]
    fn the_lease_query_reads_the_due_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = Connection::open(dir.path().join("events.db")).expect("open");
        crate::migrate::apply(&mut conn, MIGRATIONS, "events").expect("migrate");
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN
                 SELECT e.seq, p.body
                 FROM events AS e JOIN event_payloads AS p ON p.seq = e.seq
                 WHERE e.lease_owner IS NULL AND e.not_before <= 5
                 ORDER BY e.not_before, e.seq LIMIT 10",
            )
            .expect("prepare")
            .query_map([], |row| row.get::<_, String>(3))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let plan = plan.join("\n");
        assert!(plan.contains("events_due"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "no sort needed: {plan}");
    }
}
