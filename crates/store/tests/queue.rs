//! The `EventQueue` contract, run against the in-memory reference fake and against SQLite, so
//! both provably behave the same; then what only the database on disk can show: group commit,
//! schema versions, and acknowledged events surviving a `SIGKILL`.
//!
//! Each contract case takes `&dyn EventQueue` and starts from an empty queue (the restart case
//! takes the whole [`Fixture`], to reopen it); [`contract_suite!`] runs every case against every
//! backend. No test asserts a timing: throughput is measured by `benches/queue.rs`.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use nimbus_core::queue::memory::MemoryEventQueue;
use nimbus_core::queue::{
    EventInvokeConfig, EventQueue, MessageAttribute, OutboxMessage, QueuedEvent, OUTBOX_RETENTION,
};
use nimbus_core::{FunctionName, StoreError};
use nimbus_store::SqliteEventQueue;
use tempfile::TempDir;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test instant is RFC 3339")
        .with_timezone(&Utc)
}

/// The instant the cases call "now"; it has nanoseconds, as `Utc::now()` does.
fn now() -> DateTime<Utc> {
    t("2026-05-01T12:00:00.123456789Z")
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn name(name: &str) -> FunctionName {
    FunctionName::new(name).expect("test function names are valid")
}

/// An event of `function` due at `not_before`, with a payload that names it.
fn event(id: &str, function: &str, not_before: DateTime<Utc>) -> QueuedEvent {
    QueuedEvent {
        id: id.to_owned(),
        function: name(function),
        qualifier: None,
        payload: Bytes::from(format!(r#"{{"event":"{id}"}}"#)),
        enqueued_at: now() - secs(30),
        attempts: 0,
        not_before,
    }
}

fn ids(events: &[QueuedEvent]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

fn config(function: &str, qualifier: Option<&str>) -> EventInvokeConfig {
    EventInvokeConfig {
        function: name(function),
        qualifier: qualifier.map(str::to_owned),
        maximum_retry_attempts: Some(1),
        maximum_event_age_seconds: Some(3_600),
        on_success: Some(format!(
            "arn:aws:lambda:us-east-1:000000000000:function:{function}-ok"
        )),
        on_failure: None,
        last_modified: now(),
    }
}

/// A backend under test. A restart drops the queue and opens its storage again, as a new
/// process would after a crash; the fake's storage is the value itself, so it stays.
struct Fixture {
    // Declared first, so dropped first: the queue closes before its directory goes.
    queue: Option<Box<dyn EventQueue>>,
    dir: Option<TempDir>,
}

impl Fixture {
    fn memory() -> Self {
        Self {
            queue: Some(Box::new(MemoryEventQueue::default())),
            dir: None,
        }
    }

    fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("create temp dir");
        let queue = SqliteEventQueue::open(&db_in(dir.path())).expect("open");
        Self {
            queue: Some(Box::new(queue)),
            dir: Some(dir),
        }
    }

    fn queue(&self) -> &dyn EventQueue {
        self.queue.as_deref().expect("queue is open")
    }

    fn restart(&mut self) {
        if let Some(dir) = &self.dir {
            drop(self.queue.take());
            let queue = SqliteEventQueue::open(&db_in(dir.path())).expect("reopen");
            self.queue = Some(Box::new(queue));
        }
    }
}

fn db_in(dir: &Path) -> PathBuf {
    dir.join("events.db")
}

/// One test per (backend, case) pair, named `<backend>::<case>`.
macro_rules! contract_suite {
    ($backend:ident: [$($case:ident),* $(,)?], restart: [$($restart:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $case() {
                    let fixture = super::Fixture::$backend();
                    super::$case(fixture.queue()).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $restart() {
                    let mut fixture = super::Fixture::$backend();
                    super::$restart(&mut fixture).await;
                }
            )*
        }
    };
}

macro_rules! all_cases {
    ($($backend:ident),*) => {
        $(contract_suite!($backend: [
            enqueue_len_and_duplicate_ids,
            events_round_trip_with_large_payloads,
            lease_is_fifo_by_not_before_then_insertion,
            lease_respects_limit_and_due_time,
            leases_are_exclusive_between_owners,
            concurrent_leases_never_hand_out_an_event_twice,
            reschedule_clears_the_lease_and_delays,
            complete_removes_and_unknown_ids_are_not_found,
            recover_releases_other_owners_only,
            invoke_configs_crud_and_list_order,
            forget_function_removes_configs_and_events,
            held_messages_are_listed_by_target_in_order,
        ], restart: [
            every_unfinished_event_is_leasable_after_a_restart,
            held_messages_survive_a_restart,
        ]);)*
    };
}

all_cases!(memory, sqlite);

async fn enqueue_len_and_duplicate_ids(queue: &dyn EventQueue) {
    assert!(queue.is_empty().await.expect("is_empty"));
    queue
        .enqueue(&event("a", "f", now()))
        .await
        .expect("enqueue");
    queue
        .enqueue(&event("b", "f", now()))
        .await
        .expect("enqueue");
    assert_eq!(queue.len().await.expect("len"), 2);
    assert!(!queue.is_empty().await.expect("is_empty"));
    let mut again = event("a", "g", now() + secs(5));
    again.payload = Bytes::from_static(b"other");
    assert!(
        matches!(queue.enqueue(&again).await, Err(StoreError::AlreadyExists)),
        "an id is unique, whatever else differs"
    );
    assert_eq!(queue.len().await.expect("len"), 2);
    let leased = queue.lease("o", now(), 10).await.expect("lease");
    assert_eq!(leased, [event("a", "f", now()), event("b", "f", now())]);
    // A leased or completed id is still not reusable while stored.
    assert!(matches!(
        queue.enqueue(&event("a", "f", now())).await,
        Err(StoreError::AlreadyExists)
    ));
}

async fn events_round_trip_with_large_payloads(queue: &dyn EventQueue) {
    // 1 MiB (the async limit) of every byte value, NULs included.
    let payload: Vec<u8> = (0..1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    let big = QueuedEvent {
        id: "big".to_owned(),
        function: name("f"),
        qualifier: Some("live".to_owned()),
        payload: Bytes::from(payload),
        enqueued_at: t("2026-05-01T11:59:59.000000001Z"),
        attempts: 2,
        not_before: now() - TimeDelta::nanoseconds(1),
    };
    let empty = QueuedEvent {
        id: "empty".to_owned(),
        payload: Bytes::new(),
        qualifier: Some("7".to_owned()),
        ..event("empty", "g", now())
    };
    queue.enqueue(&big).await.expect("enqueue 1 MiB");
    queue.enqueue(&empty).await.expect("enqueue empty");
    let leased = queue.lease("o", now(), 10).await.expect("lease");
    assert_eq!(leased.len(), 2);
    assert!(leased[0] == big, "the 1 MiB event reads back unchanged");
    assert_eq!(leased[1], empty);
}

async fn lease_is_fifo_by_not_before_then_insertion(queue: &dyn EventQueue) {
    // Enqueued out of due order; c1..c3 are due at the same instant.
    for e in [
        event("late", "f", now() - secs(1)),
        event("c1", "f", now() - secs(5)),
        event("early", "g", now() - secs(60)),
        event("c2", "g", now() - secs(5)),
        event("c3", "f", now() - secs(5)),
    ] {
        queue.enqueue(&e).await.expect("enqueue");
    }
    let first = queue.lease("o", now(), 3).await.expect("lease");
    assert_eq!(ids(&first), ["early", "c1", "c2"]);
    let rest = queue.lease("o", now(), 3).await.expect("lease");
    assert_eq!(ids(&rest), ["c3", "late"]);
    // A rescheduled event keeps its place among equals: ties go by insertion, not by update.
    queue
        .reschedule("c2", 0, now() + secs(10))
        .await
        .expect("reschedule");
    queue
        .reschedule("early", 0, now() + secs(10))
        .await
        .expect("reschedule");
    let later = queue.lease("o", now() + secs(10), 10).await.expect("lease");
    assert_eq!(ids(&later), ["early", "c2"]);
}

async fn lease_respects_limit_and_due_time(queue: &dyn EventQueue) {
    queue
        .enqueue(&event("due", "f", now()))
        .await
        .expect("enqueue");
    queue
        .enqueue(&event("soon", "f", now() + TimeDelta::nanoseconds(1)))
        .await
        .expect("enqueue");
    assert!(queue.lease("o", now(), 0).await.expect("lease").is_empty());
    assert_eq!(
        ids(&queue.lease("o", now(), 10).await.expect("lease")),
        ["due"],
        "due means not_before <= now, to the nanosecond"
    );
    assert!(queue.lease("o", now(), 10).await.expect("lease").is_empty());
    let at = now() + TimeDelta::nanoseconds(1);
    assert_eq!(
        ids(&queue.lease("o", at, 10).await.expect("lease")),
        ["soon"]
    );
    assert_eq!(
        queue.len().await.expect("len"),
        2,
        "leased events are stored"
    );
}

async fn leases_are_exclusive_between_owners(queue: &dyn EventQueue) {
    for i in 0..5 {
        queue
            .enqueue(&event(&format!("e{i}"), "f", now()))
            .await
            .expect("enqueue");
    }
    let a = queue.lease("A", now(), 2).await.expect("lease");
    let b = queue.lease("B", now(), 10).await.expect("lease");
    assert_eq!(ids(&a), ["e0", "e1"]);
    assert_eq!(ids(&b), ["e2", "e3", "e4"]);
    assert!(queue.lease("A", now(), 10).await.expect("lease").is_empty());
    assert!(
        queue.lease("B", now(), 10).await.expect("lease").is_empty(),
        "an owner is not handed its own leased events again either"
    );
}

async fn concurrent_leases_never_hand_out_an_event_twice(queue: &dyn EventQueue) {
    const EVENTS: usize = 300;
    const OWNERS: usize = 8;
    for i in 0..EVENTS {
        queue
            .enqueue(&event(&format!("e{i:03}"), "f", now()))
            .await
            .expect("enqueue");
    }
    // Each owner leases small batches on its own thread until nothing is left.
    let handed: Vec<Vec<String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..OWNERS)
            .map(|owner| {
                scope.spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    runtime.block_on(async {
                        let mut mine = Vec::new();
                        loop {
                            let got = queue
                                .lease(&format!("owner-{owner}"), now(), 7)
                                .await
                                .expect("lease");
                            if got.is_empty() {
                                return mine;
                            }
                            mine.extend(got.into_iter().map(|e| e.id));
                        }
                    })
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    let mut seen = HashSet::new();
    for id in handed.iter().flatten() {
        assert!(seen.insert(id.clone()), "{id} was handed out twice");
    }
    assert_eq!(seen.len(), EVENTS, "every event was handed out");
}

async fn reschedule_clears_the_lease_and_delays(queue: &dyn EventQueue) {
    queue
        .enqueue(&event("e", "f", now()))
        .await
        .expect("enqueue");
    let leased = queue.lease("A", now(), 1).await.expect("lease");
    assert_eq!(ids(&leased), ["e"]);
    let retry_at = now() + secs(60);
    queue
        .reschedule("e", 1, retry_at)
        .await
        .expect("reschedule");
    assert!(
        queue
            .lease("B", retry_at - TimeDelta::nanoseconds(1), 1)
            .await
            .expect("lease")
            .is_empty(),
        "not due before its new time"
    );
    let again = queue.lease("B", retry_at, 1).await.expect("lease");
    let expected = QueuedEvent {
        attempts: 1,
        not_before: retry_at,
        ..event("e", "f", now())
    };
    assert_eq!(
        again,
        [expected],
        "another owner gets it, with its new attempt count"
    );
    // Rescheduling does not need the lease to be held, and also puts an event back early.
    queue.reschedule("e", 2, now()).await.expect("reschedule");
    assert_eq!(
        queue.lease("C", now(), 1).await.expect("lease")[0].attempts,
        2
    );
    assert!(matches!(
        queue.reschedule("missing", 1, now()).await,
        Err(StoreError::NotFound)
    ));
}

async fn complete_removes_and_unknown_ids_are_not_found(queue: &dyn EventQueue) {
    queue
        .enqueue(&event("a", "f", now()))
        .await
        .expect("enqueue");
    queue
        .enqueue(&event("b", "f", now()))
        .await
        .expect("enqueue");
    let leased = queue.lease("A", now(), 1).await.expect("lease");
    queue.complete(&leased[0].id).await.expect("complete");
    assert_eq!(queue.len().await.expect("len"), 1);
    // An unleased event can be completed too (e.g. one found expired).
    queue.complete("b").await.expect("complete");
    assert!(queue.is_empty().await.expect("is_empty"));
    assert!(matches!(
        queue.complete("a").await,
        Err(StoreError::NotFound)
    ));
    assert!(queue
        .lease("A", now() + secs(3_600), 10)
        .await
        .expect("lease")
        .is_empty());
    // The id is free again once the event is gone.
    queue
        .enqueue(&event("a", "f", now()))
        .await
        .expect("enqueue again");
}

async fn recover_releases_other_owners_only(queue: &dyn EventQueue) {
    for i in 0..6 {
        queue
            .enqueue(&event(&format!("e{i}"), "f", now()))
            .await
            .expect("enqueue");
    }
    let old = queue.lease("old", now(), 3).await.expect("lease");
    let other = queue.lease("other", now(), 1).await.expect("lease");
    let mine = queue.lease("me", now(), 1).await.expect("lease");
    assert_eq!(
        (old.len(), other.len(), mine.len()),
        (3, 1, 1),
        "one left unleased"
    );
    assert_eq!(queue.recover("me").await.expect("recover"), 4);
    assert_eq!(
        queue.recover("me").await.expect("recover"),
        0,
        "nothing left to release"
    );
    let back = queue.lease("me", now(), 10).await.expect("lease");
    assert_eq!(
        ids(&back),
        ["e0", "e1", "e2", "e3", "e5"],
        "released events are due again, in their order; my own lease stays"
    );
}

async fn every_unfinished_event_is_leasable_after_a_restart(fixture: &mut Fixture) {
    let queue = fixture.queue();
    for i in 0..10 {
        queue
            .enqueue(&event(&format!("e{i}"), "f", now() + secs(i)))
            .await
            .expect("enqueue");
    }
    queue
        .put_invoke_config(&config("f", Some("live")))
        .await
        .expect("put");
    let leased = queue
        .lease("dead", now() + secs(5), 4)
        .await
        .expect("lease");
    assert_eq!(ids(&leased), ["e0", "e1", "e2", "e3"]);
    queue.complete("e0").await.expect("complete");
    queue
        .reschedule("e1", 1, now() + secs(100))
        .await
        .expect("reschedule");
    // e2 and e3 are leased by a process that now dies without settling them.
    fixture.restart();
    let queue = fixture.queue();
    assert_eq!(queue.len().await.expect("len"), 9);
    assert_eq!(
        queue.recover("alive").await.expect("recover"),
        2,
        "the dead owner's two unsettled leases"
    );
    let all = queue
        .lease("alive", now() + secs(1_000), 100)
        .await
        .expect("lease");
    assert_eq!(
        ids(&all),
        ["e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9", "e1"]
    );
    assert_eq!(all[8].attempts, 1, "the reschedule survived");
    assert_eq!(
        queue
            .get_invoke_config(&name("f"), Some("live"))
            .await
            .expect("get"),
        Some(config("f", Some("live")))
    );
}

async fn invoke_configs_crud_and_list_order(queue: &dyn EventQueue) {
    let f = name("f");
    assert_eq!(queue.get_invoke_config(&f, None).await.expect("get"), None);
    assert!(queue
        .list_invoke_configs(&f)
        .await
        .expect("list")
        .is_empty());
    for qualifier in [Some("live"), Some("1"), None, Some("$LATEST"), Some("10")] {
        queue
            .put_invoke_config(&config("f", qualifier))
            .await
            .expect("put");
    }
    queue
        .put_invoke_config(&config("g", None))
        .await
        .expect("put");
    let listed = queue.list_invoke_configs(&f).await.expect("list");
    let order: Vec<Option<&str>> = listed.iter().map(|c| c.qualifier.as_deref()).collect();
    assert_eq!(
        order,
        [None, Some("$LATEST"), Some("1"), Some("10"), Some("live")],
        "unqualified first, then qualifiers as strings"
    );
    assert_eq!(
        queue.get_invoke_config(&f, None).await.expect("get"),
        Some(config("f", None))
    );
    assert_eq!(
        queue.get_invoke_config(&f, Some("2")).await.expect("get"),
        None,
        "qualifiers are not interchangeable"
    );

    // Put replaces the whole record.
    let replaced = EventInvokeConfig {
        maximum_retry_attempts: None,
        maximum_event_age_seconds: Some(60),
        on_success: None,
        on_failure: Some("arn:aws:lambda:us-east-1:000000000000:function:dlq".to_owned()),
        last_modified: now() + TimeDelta::nanoseconds(7),
        ..config("f", Some("live"))
    };
    queue.put_invoke_config(&replaced).await.expect("replace");
    assert_eq!(
        queue
            .get_invoke_config(&f, Some("live"))
            .await
            .expect("get"),
        Some(replaced)
    );
    assert_eq!(queue.list_invoke_configs(&f).await.expect("list").len(), 5);

    // An empty qualifier is the unqualified settings.
    let mut empty = config("f", Some(""));
    empty.maximum_retry_attempts = Some(0);
    queue.put_invoke_config(&empty).await.expect("put");
    let unqualified = queue
        .get_invoke_config(&f, None)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(unqualified.qualifier, None);
    assert_eq!(unqualified.maximum_retry_attempts, Some(0));

    queue.delete_invoke_config(&f, None).await.expect("delete");
    assert_eq!(queue.get_invoke_config(&f, None).await.expect("get"), None);
    assert!(matches!(
        queue.delete_invoke_config(&f, None).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        queue.delete_invoke_config(&f, Some("missing")).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(queue.list_invoke_configs(&f).await.expect("list").len(), 4);
    assert_eq!(
        queue
            .list_invoke_configs(&name("g"))
            .await
            .expect("list")
            .len(),
        1,
        "other functions are untouched"
    );
}

async fn forget_function_removes_configs_and_events(queue: &dyn EventQueue) {
    for (id, function) in [("f1", "f"), ("g1", "g"), ("f2", "f"), ("f3", "f")] {
        queue
            .enqueue(&event(id, function, now()))
            .await
            .expect("enqueue");
    }
    queue
        .put_invoke_config(&config("f", None))
        .await
        .expect("put");
    queue
        .put_invoke_config(&config("f", Some("live")))
        .await
        .expect("put");
    queue
        .put_invoke_config(&config("g", None))
        .await
        .expect("put");
    let leased = queue.lease("A", now(), 1).await.expect("lease");
    assert_eq!(ids(&leased), ["f1"]);

    queue.forget_function(&name("f")).await.expect("forget");
    assert_eq!(
        queue.len().await.expect("len"),
        1,
        "leased and unleased events of f are gone"
    );
    assert!(queue
        .list_invoke_configs(&name("f"))
        .await
        .expect("list")
        .is_empty());
    assert_eq!(
        queue
            .list_invoke_configs(&name("g"))
            .await
            .expect("list")
            .len(),
        1
    );
    assert_eq!(
        ids(&queue.lease("A", now(), 10).await.expect("lease")),
        ["g1"]
    );
    assert!(
        matches!(queue.complete("f1").await, Err(StoreError::NotFound)),
        "settling an event of a forgotten function finds nothing"
    );
    queue
        .forget_function(&name("nobody"))
        .await
        .expect("forgetting an unknown function is fine");
    // A function of the same name created later starts clean, and its events queue anew.
    queue
        .enqueue(&event("f1", "f", now()))
        .await
        .expect("enqueue");
}

// ---------------------------------------------------------------------------------------------
// SQLite only.

/// A side connection, as an operator's `sqlite3` shell would open.
fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("open raw connection")
}

/// Wait until `n` jobs sit in the writer's channel (or were taken by it).
async fn until_submitted(queue: &SqliteEventQueue, n: u64) {
    while queue.write_stats().submitted < n {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn waiting_writes_share_one_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let queue = SqliteEventQueue::open(&db_in(dir.path())).expect("open");
    // Hold the write lock, as a long commit would: every enqueue piles up behind it.
    let side = raw(&db_in(dir.path()));
    side.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let before = queue.write_stats();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let queue = queue.clone();
            tokio::spawn(async move { queue.enqueue(&event(&format!("e{i}"), "f", now())).await })
        })
        .collect();
    until_submitted(&queue, before.submitted + 50).await;
    side.execute_batch("COMMIT").expect("unlock");
    for task in tasks {
        task.await.expect("task").expect("enqueue");
    }
    let after = queue.write_stats();
    assert_eq!(queue.len().await.expect("len"), 50);
    // The writer may have taken a first batch before the rest arrived; the rest is one batch.
    let commits = after.commits - before.commits;
    assert!(
        (1..=2).contains(&commits),
        "50 waiting enqueues took {commits} commits"
    );
    assert_eq!(after.finished - before.finished, 50);
}

#[tokio::test]
async fn a_refused_job_does_not_fail_its_batch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let queue = SqliteEventQueue::open(&db_in(dir.path())).expect("open");
    queue
        .enqueue(&event("taken", "f", now()))
        .await
        .expect("enqueue");
    let side = raw(&db_in(dir.path()));
    side.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let before = queue.write_stats();
    // Jobs reach the writer's channel one at a time, in this order. The writer is stuck on the
    // lock with a first batch until all are in, then takes the rest as a second batch: at most
    // one cut, so the refused jobs share a batch with a good one whatever the cut.
    let mut sent = 0;
    let mut submit = |id: &'static str, complete: bool| {
        let queue = queue.clone();
        sent += 1;
        let target = before.submitted + sent;
        let task = tokio::spawn(async move {
            if complete {
                queue.complete(id).await
            } else {
                queue.enqueue(&event(id, "f", now())).await
            }
        });
        (task, target)
    };
    let mut tasks = Vec::new();
    for (id, complete) in [
        ("a", false),
        ("taken", false),
        ("missing", true),
        ("b", false),
    ] {
        let (task, target) = submit(id, complete);
        until_submitted(&queue, target).await;
        tasks.push(task);
    }
    side.execute_batch("COMMIT").expect("unlock");
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    assert!(results[0].is_ok(), "a is stored: {:?}", results[0]);
    assert!(matches!(results[1], Err(StoreError::AlreadyExists)));
    assert!(matches!(results[2], Err(StoreError::NotFound)));
    assert!(results[3].is_ok(), "b is stored: {:?}", results[3]);
    assert_eq!(queue.len().await.expect("len"), 3);
    let commits = queue.write_stats().commits - before.commits;
    assert!((1..=2).contains(&commits), "{commits} commits");
}

#[tokio::test]
async fn lease_only_commits_skip_the_fsync() {
    let dir = tempfile::tempdir().expect("temp dir");
    let queue = SqliteEventQueue::open(&db_in(dir.path())).expect("open");
    let start = queue.write_stats();
    queue
        .enqueue(&event("e", "f", now()))
        .await
        .expect("enqueue");
    queue.lease("A", now(), 1).await.expect("lease");
    queue.complete("e").await.expect("complete");
    let end = queue.write_stats();
    assert_eq!(end.commits - start.commits, 3);
    assert_eq!(
        end.synced_commits - start.synced_commits,
        2,
        "enqueue and complete are fsynced, the lease is not"
    );
}

#[tokio::test]
async fn times_outside_the_stored_range_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let queue = SqliteEventQueue::open(&db_in(dir.path())).expect("open");
    let far = t("3000-01-01T00:00:00Z");
    assert!(matches!(
        queue.enqueue(&event("far", "f", far)).await,
        Err(StoreError::Backend(_))
    ));
    queue
        .enqueue(&event("e", "f", now()))
        .await
        .expect("enqueue");
    assert!(matches!(
        queue.reschedule("e", 1, far).await,
        Err(StoreError::Backend(_))
    ));
    // A `now` beyond the range makes everything due rather than failing.
    assert_eq!(ids(&queue.lease("A", far, 10).await.expect("lease")), ["e"]);
}

fn held(id: &str, target: &str, sent_at: DateTime<Utc>) -> OutboxMessage {
    OutboxMessage {
        id: id.to_owned(),
        target_arn: target.to_owned(),
        body: Bytes::from(format!("{{\"event\":\"{id}\"}}")),
        attributes: [
            ("RequestID".to_owned(), MessageAttribute::string(id)),
            ("ErrorCode".to_owned(), MessageAttribute::number(200)),
        ]
        .into_iter()
        .collect(),
        sent_at,
    }
}

const DLQ: &str = "arn:aws:sqs:us-east-1:000000000000:dlq";
const TOPIC: &str = "arn:aws:sns:us-east-1:000000000000:failures";

/// Ids of the messages held for `target`, in order.
async fn held_ids(queue: &dyn EventQueue, target: &str) -> Vec<String> {
    let held = queue.held(Some(target), 10).await.expect("held");
    held.into_iter().map(|m| m.id).collect()
}

async fn held_messages_are_listed_by_target_in_order(queue: &dyn EventQueue) {
    let at = now();
    for (id, target) in [("m1", DLQ), ("m2", TOPIC), ("m3", DLQ)] {
        queue.hold(&held(id, target, at)).await.expect("hold");
    }
    let err = queue.hold(&held("m1", DLQ, at)).await.expect_err("same id");
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");
    let all = queue.held(None, 10).await.expect("held");
    assert_eq!(
        all,
        vec![
            held("m1", DLQ, at),
            held("m2", TOPIC, at),
            held("m3", DLQ, at)
        ]
    );
    assert_eq!(held_ids(queue, DLQ).await, ["m1", "m3"]);
    assert_eq!(queue.held(Some(TOPIC), 10).await.expect("held").len(), 1);
    assert_eq!(queue.held(None, 2).await.expect("held").len(), 2);
    assert!(queue
        .held(Some("arn:aws:sqs:us-east-1:000000000000:other"), 10)
        .await
        .expect("held")
        .is_empty());
    // Held messages are not events.
    assert!(queue.is_empty().await.expect("is_empty"));
}

async fn held_messages_survive_a_restart(fixture: &mut Fixture) {
    let old = now() - TimeDelta::from_std(OUTBOX_RETENTION).expect("retention") - secs(60);
    fixture
        .queue()
        .hold(&held("old", DLQ, old))
        .await
        .expect("hold");
    fixture
        .queue()
        .hold(&held("kept", DLQ, now()))
        .await
        .expect("hold");
    fixture.restart();
    let ids = held_ids(fixture.queue(), DLQ).await;
    // The durable queue drops what is past retention when it takes a new message.
    assert!(ids.ends_with(&["kept".to_owned()]), "{ids:?}");
    assert_eq!(
        fixture
            .queue()
            .held(Some(DLQ), 10)
            .await
            .expect("held")
            .iter()
            .find(|m| m.id == "kept")
            .expect("kept")
            .attributes["ErrorCode"],
        MessageAttribute::number(200)
    );
}

#[test]
fn schema_is_versioned_and_newer_databases_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_in(dir.path());
    drop(SqliteEventQueue::open(&path).expect("create"));
    let side = raw(&path);
    let version: i64 = side
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("user_version");
    assert_eq!(version, 2);
    let mode: String = side
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
    drop(SqliteEventQueue::open(&path).expect("reopening the same version"));
    side.pragma_update(None, "user_version", 99)
        .expect("set user_version");
    let err = SqliteEventQueue::open(&path).expect_err("a newer schema is refused");
    assert!(err.to_string().contains("newer"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Crash durability: a child process enqueues and prints what was acknowledged; it is SIGKILLed
// mid-stream and every printed id must be in the database.

/// Set (to the database path) in the child process of [`acknowledged_events_survive_sigkill`].
const CHILD_ENV: &str = "NIMBUS_QUEUE_CRASH_CHILD";

/// The payload of a crash-test event, derived from its id so the parent can check it.
fn crash_payload(id: &str) -> Bytes {
    Bytes::from(id.repeat(1024 / id.len() + 1))
}

/// The child half of [`acknowledged_events_survive_sigkill`]: does nothing unless run as that
/// test's child. Enqueues from 16 tasks and prints `ACK <id>` after each acknowledgement,
/// until killed (or, as a safeguard against an orphan, after a minute).
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let queue = SqliteEventQueue::open(Path::new(&path)).expect("open");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let tasks: Vec<_> = (0..16)
            .map(|task| {
                let queue = queue.clone();
                tokio::spawn(async move {
                    for i in 0.. {
                        if std::time::Instant::now() > deadline {
                            return;
                        }
                        let id = format!("t{task:02}-{i:07}");
                        let e = QueuedEvent {
                            payload: crash_payload(&id),
                            ..event(&id, "f", now())
                        };
                        queue.enqueue(&e).await.expect("enqueue");
                        // Written straight to fd 1 (not through the test harness's capture)
                        // and flushed: once a line is out, the parent may count on it.
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ACK {id}").expect("write");
                        out.flush().expect("flush");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
    });
}

/// Kills the child if the test fails before it does, so no process outlives the test.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn acknowledged_events_survive_sigkill() {
    const KILL_AFTER: usize = 3_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_in(dir.path());
    let exe = std::env::current_exe().expect("test binary");
    let child = Command::new(exe)
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("child stdout");

    let acked = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout);
        let mut acked = Vec::new();
        let mut killed = false;
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).expect("read child stdout") == 0 {
                break;
            }
            // A line cut short by the kill was not fully printed: it is no acknowledgement.
            if let Some(id) = line.strip_suffix('\n').and_then(|l| l.strip_prefix("ACK ")) {
                acked.push(id.to_owned());
            }
            if !killed && acked.len() >= KILL_AFTER {
                // SIGKILL, mid-stream: the child has writes in flight. Lines it printed
                // before dying are still in the pipe and read on.
                child.0.kill().expect("kill child");
                killed = true;
            }
        }
        let status = child.0.wait().expect("wait child");
        assert!(
            killed,
            "the child stopped by itself ({status}) before the kill"
        );
        acked
    })
    .await
    .expect("reader");
    assert!(acked.len() >= KILL_AFTER);

    // The database is intact, and every acknowledged event is in it, payload and all.
    let side = raw(&path);
    let check: String = side
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    drop(side);
    let queue = SqliteEventQueue::open(&path).expect("reopen");
    assert_eq!(queue.recover("parent").await.expect("recover"), 0);
    let stored = queue
        .lease("parent", now(), usize::MAX)
        .await
        .expect("lease all");
    let stored_ids: HashSet<&str> = stored.iter().map(|e| e.id.as_str()).collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|id| !stored_ids.contains(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged events were lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    for e in &stored {
        assert_eq!(e.payload, crash_payload(&e.id), "payload of {}", e.id);
    }
    assert!(
        stored.len() >= acked.len(),
        "{} stored, {} acknowledged",
        stored.len(),
        acked.len()
    );
}
