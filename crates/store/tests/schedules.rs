//! The `ScheduleStore` contract, run against the in-memory reference fake and against SQLite,
//! so both provably behave the same; then what only a database on disk can show (reopening).
//!
//! Each case takes `&dyn ScheduleStore` and starts from an empty store; [`contract_suite!`] runs
//! every case against every backend, as `tests/it/contract.rs` does for the metadata store.

use chrono::{DateTime, TimeDelta, Utc};
use nimbus_core::schedule::store::MemoryScheduleStore;
use nimbus_core::schedule::{ScheduleRule, ScheduleStore};
use nimbus_core::StoreError;
use nimbus_store::SqliteScheduleStore;
use tempfile::TempDir;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test instant is RFC 3339")
        .with_timezone(&Utc)
}

/// A rule with every optional field set, so a round trip has something to lose. The creation
/// time has nanoseconds, as `Utc::now()` does.
fn rule(name: &str) -> ScheduleRule {
    let created = t("2026-01-01T00:00:00.123456789Z");
    let mut r = ScheduleRule::new(
        name,
        "cron(0 8 ? * MON-FRI *)",
        "arn:aws:lambda:us-east-1:000000000000:function:f:live",
        created,
    );
    r.timezone = Some("Europe/Berlin".to_owned());
    r.role_arn = Some("arn:aws:iam::000000000000:role/scheduler".to_owned());
    r.input = Some(r#"{"greeting":"hello","n":[1,2]}"#.to_owned());
    r.flexible_window_minutes = Some(15);
    r.description = format!("rule {name} – with non-ASCII");
    r.updated_at = created + TimeDelta::seconds(5);
    r
}

fn memory() -> (Option<TempDir>, Box<dyn ScheduleStore>) {
    (None, Box::new(MemoryScheduleStore::default()))
}

fn sqlite() -> (Option<TempDir>, Box<dyn ScheduleStore>) {
    let dir = tempfile::tempdir().expect("create temp dir");
    let store = SqliteScheduleStore::open(&dir.path().join("schedules.db")).expect("open");
    (Some(dir), Box::new(store))
}

/// One test per (backend, case) pair, named `<backend>::<case>`.
macro_rules! contract_suite {
    ($backend:ident: $($case:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $case() {
                    // Bound first, so dropped last: the store closes before its directory goes.
                    let (_dir, store) = super::$backend();
                    super::$case(store.as_ref()).await;
                }
            )*
        }
    };
}

macro_rules! all_cases {
    ($($backend:ident),*) => {
        $(contract_suite!($backend:
            create_get_and_duplicate,
            minimal_rule_round_trips,
            list_is_in_name_order,
            update_replaces_settings_but_never_rewinds_last_fire,
            update_and_delete_of_missing_rules_are_not_found,
            record_fire_moves_forward_only,
        );)*
    };
}

all_cases!(memory, sqlite);

async fn create_get_and_duplicate(store: &dyn ScheduleStore) {
    let r = rule("alpha");
    store.create(&r).await.expect("create");
    assert_eq!(store.get("alpha").await.expect("get"), Some(r.clone()));
    assert_eq!(store.get("missing").await.expect("get"), None);

    let mut imposter = rule("alpha");
    imposter.expression = "rate(1 minute)".to_owned();
    let err = store
        .create(&imposter)
        .await
        .expect_err("a taken name must be refused");
    assert!(matches!(err, StoreError::AlreadyExists), "got {err:?}");
    assert_eq!(
        store.get("alpha").await.expect("get"),
        Some(r),
        "the refused create changed nothing"
    );
}

async fn minimal_rule_round_trips(store: &dyn ScheduleStore) {
    let mut r = ScheduleRule::new("bare", "rate(5 minutes)", "f", t("2026-01-01T00:00:00Z"));
    r.enabled = false;
    store.create(&r).await.expect("create");
    assert_eq!(store.get("bare").await.expect("get"), Some(r));
}

async fn list_is_in_name_order(store: &dyn ScheduleStore) {
    assert!(store.list().await.expect("list").is_empty());
    for name in ["b", "a.2", "A", "a-1", "a_3", "a"] {
        store.create(&rule(name)).await.expect("create");
    }
    let names: Vec<String> = store
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.name)
        .collect();
    // Byte order: '-' < '.' < digits < upper case < '_' < lower case.
    assert_eq!(names, ["A", "a", "a-1", "a.2", "a_3", "b"]);
    assert_eq!(store.list().await.expect("list")[0], rule("A"));
}

async fn update_replaces_settings_but_never_rewinds_last_fire(store: &dyn ScheduleStore) {
    store.create(&rule("r")).await.expect("create");
    store
        .record_fire("r", t("2026-02-01T07:00:00Z"))
        .await
        .expect("record");

    // An update read before that fire (last_fire None) must not erase it.
    let mut stale = rule("r");
    stale.expression = "rate(1 hour)".to_owned();
    stale.timezone = None;
    stale.input = None;
    stale.role_arn = None;
    stale.flexible_window_minutes = None;
    stale.enabled = false;
    stale.description = String::new();
    stale.updated_at = t("2026-02-02T00:00:00Z");
    store.update(&stale).await.expect("update");
    let got = store.get("r").await.expect("get").expect("still there");
    assert_eq!(
        got,
        ScheduleRule {
            last_fire: Some(t("2026-02-01T07:00:00Z")),
            ..stale.clone()
        }
    );

    // An earlier last_fire is ignored, a later one taken.
    let mut earlier = stale.clone();
    earlier.last_fire = Some(t("2026-01-15T00:00:00Z"));
    store.update(&earlier).await.expect("update");
    assert_eq!(
        store.get("r").await.expect("get").expect("r").last_fire,
        Some(t("2026-02-01T07:00:00Z"))
    );
    let mut later = stale;
    later.last_fire = Some(t("2026-03-01T00:00:00.000000001Z"));
    store.update(&later).await.expect("update");
    assert_eq!(store.get("r").await.expect("get"), Some(later));
}

async fn update_and_delete_of_missing_rules_are_not_found(store: &dyn ScheduleStore) {
    let err = store.update(&rule("ghost")).await.expect_err("update");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
    let err = store.delete("ghost").await.expect_err("delete");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
    let err = store
        .record_fire("ghost", t("2026-01-01T00:00:00Z"))
        .await
        .expect_err("record_fire");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");

    store.create(&rule("r")).await.expect("create");
    store.delete("r").await.expect("delete");
    assert_eq!(store.get("r").await.expect("get"), None);
    let err = store.delete("r").await.expect_err("second delete");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
    // The name is free again.
    store.create(&rule("r")).await.expect("create again");
}

async fn record_fire_moves_forward_only(store: &dyn ScheduleStore) {
    store.create(&rule("r")).await.expect("create");
    assert_eq!(last_fire(store, "r").await, None);
    store
        .record_fire("r", t("2026-01-02T07:00:00Z"))
        .await
        .expect("record");
    assert_eq!(last_fire(store, "r").await, Some(t("2026-01-02T07:00:00Z")));
    store
        .record_fire("r", t("2026-01-01T07:00:00Z"))
        .await
        .expect("record an older fire");
    assert_eq!(last_fire(store, "r").await, Some(t("2026-01-02T07:00:00Z")));
    // Sub-second differences count.
    store
        .record_fire("r", t("2026-01-02T07:00:00.5Z"))
        .await
        .expect("record");
    assert_eq!(
        last_fire(store, "r").await,
        Some(t("2026-01-02T07:00:00.5Z"))
    );
    // Nothing else changed.
    assert_eq!(
        store.get("r").await.expect("get"),
        Some(ScheduleRule {
            last_fire: Some(t("2026-01-02T07:00:00.5Z")),
            ..rule("r")
        })
    );
}

async fn last_fire(store: &dyn ScheduleStore, name: &str) -> Option<DateTime<Utc>> {
    store
        .get(name)
        .await
        .expect("get")
        .expect("rule exists")
        .last_fire
}

// ---------------------------------------------------------------------------------------------
// SQLite only

#[tokio::test]
async fn rules_and_fires_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("schedules.db");
    let store = SqliteScheduleStore::open(&path).expect("open");
    store.create(&rule("kept")).await.expect("create");
    store.create(&rule("gone")).await.expect("create");
    store
        .record_fire("kept", t("2026-01-05T07:00:00Z"))
        .await
        .expect("record");
    store.delete("gone").await.expect("delete");
    drop(store);

    let reopened = SqliteScheduleStore::open(&path).expect("reopen");
    assert_eq!(
        reopened.list().await.expect("list"),
        [ScheduleRule {
            last_fire: Some(t("2026-01-05T07:00:00Z")),
            ..rule("kept")
        }]
    );
}

#[tokio::test]
async fn concurrent_writers_through_clones_all_land() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteScheduleStore::open(&dir.path().join("schedules.db")).expect("open");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("r{i:02}");
            store.create(&rule(&name)).await.expect("create");
            for minute in 0..5 {
                store
                    .record_fire(
                        &name,
                        t("2026-01-01T00:00:00Z") + TimeDelta::minutes(minute),
                    )
                    .await
                    .expect("record");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let rules = store.list().await.expect("list");
    assert_eq!(rules.len(), 16);
    assert!(rules
        .iter()
        .all(|r| r.last_fire == Some(t("2026-01-01T00:04:00Z"))));
}
