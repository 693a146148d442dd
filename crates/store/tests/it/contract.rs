//! The `MetadataStore` contract, as documented on the trait and shown by the in-memory fake.
//!
//! Each case takes `&dyn MetadataStore` and starts from an empty store; [`contract_suite!`]
//! runs every case against every backend, so a backend that passes behaves like the fake the
//! layers above are tested with.

use nimbus_core::fake::MemoryMetadataStore;
use nimbus_core::{Alias, Function, FunctionVersion, MetadataStore, StoreError};
use nimbus_store::SqliteMetadataStore;
use tempfile::TempDir;

use crate::{function, name, sha, tags};

/// An empty in-memory store.
fn memory() -> (Option<TempDir>, Box<dyn MetadataStore>) {
    (None, Box::new(MemoryMetadataStore::default()))
}

/// An empty SQLite store, with the fresh directory holding it.
fn sqlite() -> (Option<TempDir>, Box<dyn MetadataStore>) {
    let dir = tempfile::tempdir().expect("create temp dir");
    let store = SqliteMetadataStore::open(&dir.path().join("meta.db")).expect("open database");
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
            list_paginates_in_name_order,
            update_is_compare_and_swap,
            delete_cascades_tags,
            tags_set_and_remove,
            code_in_use_follows_functions,
            usage_counts_functions_and_code_bytes,
            publish_snapshots_latest_and_numbers_never_repeat,
            publish_checks_preconditions_atomically,
            list_versions_paginates_latest_first,
            aliases_create_update_list_delete,
            versions_in_use_by_aliases_cannot_be_deleted,
            delete_function_removes_versions_aliases_and_reservation,
            reserved_concurrency_put_get_total,
            published_code_stays_in_use_and_counts,
            function_urls_crud_and_cascade,
            routes_put_list_delete,
            layer_versions_publish_list_delete_and_keep_their_code,
        );)*
    };
}

all_cases!(memory, sqlite);

async fn create_get_and_duplicate(store: &dyn MetadataStore) {
    let f = function("alpha", &sha('a'), 100);
    store
        .create_function(&f, &tags(&[("team", "core")]))
        .await
        .expect("create");
    let got = store.get_function(&name("alpha")).await.expect("get");
    assert_eq!(
        got,
        Some(f.clone()),
        "a created function reads back unchanged"
    );
    assert_eq!(
        store.get_function(&name("missing")).await.expect("get"),
        None
    );

    let imposter = function("alpha", &sha('b'), 5);
    let err = store
        .create_function(&imposter, &tags(&[("team", "other")]))
        .await
        .expect_err("a taken name must be refused");
    assert!(matches!(err, StoreError::AlreadyExists), "got {err:?}");
    // The refused create changed nothing.
    let got = store.get_function(&name("alpha")).await.expect("get");
    assert_eq!(got, Some(f));
    let got_tags = store.get_tags(&name("alpha")).await.expect("tags");
    assert_eq!(got_tags, tags(&[("team", "core")]));
}

async fn list_paginates_in_name_order(store: &dyn MetadataStore) {
    // Created out of order, so the listing order must come from the names.
    for i in [3, 0, 6, 1, 5, 2, 4] {
        let f = function(&format!("fn-{i}"), &sha('a'), 10);
        store.create_function(&f, &tags(&[])).await.expect("create");
    }
    let names = |page: &nimbus_core::FunctionPage| -> Vec<String> {
        page.functions.iter().map(|f| f.name.to_string()).collect()
    };

    let first = store.list_functions(None, 3).await.expect("page 1");
    assert_eq!(names(&first), ["fn-0", "fn-1", "fn-2"]);
    assert!(first.more);
    let second = store
        .list_functions(Some(&name("fn-2")), 3)
        .await
        .expect("page 2");
    assert_eq!(names(&second), ["fn-3", "fn-4", "fn-5"]);
    assert!(second.more);
    let third = store
        .list_functions(Some(&name("fn-5")), 3)
        .await
        .expect("page 3");
    assert_eq!(names(&third), ["fn-6"]);
    assert!(!third.more, "nothing follows the last function");
    let past_end = store
        .list_functions(Some(&name("fn-6")), 3)
        .await
        .expect("past end");
    assert!(past_end.functions.is_empty() && !past_end.more);

    // A page that ends exactly on the last function has no more.
    let exact = store.list_functions(None, 7).await.expect("exact");
    assert_eq!(exact.functions.len(), 7);
    assert!(!exact.more);
    // `after` need not name an existing function.
    let between = store
        .list_functions(Some(&name("fn-3a")), 2)
        .await
        .expect("between");
    assert_eq!(names(&between), ["fn-4", "fn-5"]);
    assert!(between.more);
}

async fn update_is_compare_and_swap(store: &dyn MetadataStore) {
    let original = function("beta", &sha('a'), 100);
    store
        .create_function(&original, &tags(&[]))
        .await
        .expect("create");

    let mut changed = function("beta", &sha('b'), 200);
    changed.settings.memory_mb = 1024;
    store
        .update_function(&changed, &original.revision_id)
        .await
        .expect("update with the current revision");
    let got = store.get_function(&name("beta")).await.expect("get");
    assert_eq!(got, Some(changed.clone()));

    // The original revision is stale now.
    let lost_update = function("beta", &sha('c'), 300);
    let err = store
        .update_function(&lost_update, &original.revision_id)
        .await
        .expect_err("a stale revision must be refused");
    assert!(matches!(err, StoreError::RevisionMismatch), "got {err:?}");
    let got = store.get_function(&name("beta")).await.expect("get");
    assert_eq!(got, Some(changed), "a refused update changes nothing");

    let ghost = function("ghost", &sha('a'), 1);
    let err = store
        .update_function(&ghost, &ghost.revision_id)
        .await
        .expect_err("updating a missing function must fail");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
    assert_eq!(store.get_function(&name("ghost")).await.expect("get"), None);
}

async fn delete_cascades_tags(store: &dyn MetadataStore) {
    let f = function("gamma", &sha('a'), 100);
    store
        .create_function(&f, &tags(&[("a", "1"), ("b", "2")]))
        .await
        .expect("create");
    store.delete_function(&name("gamma")).await.expect("delete");
    assert_eq!(store.get_function(&name("gamma")).await.expect("get"), None);
    let err = store
        .get_tags(&name("gamma"))
        .await
        .expect_err("a deleted function has no tags");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
    let err = store
        .delete_function(&name("gamma"))
        .await
        .expect_err("deleting twice must fail");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");

    // A new function under the old name must not inherit the old tags.
    store
        .create_function(&function("gamma", &sha('b'), 1), &tags(&[]))
        .await
        .expect("recreate");
    let got = store.get_tags(&name("gamma")).await.expect("tags");
    assert!(got.is_empty(), "old tags survived the delete: {got:?}");
}

async fn tags_set_and_remove(store: &dyn MetadataStore) {
    store
        .create_function(
            &function("delta", &sha('a'), 1),
            &tags(&[("keep", "k"), ("change", "old"), ("drop", "d")]),
        )
        .await
        .expect("create");
    store
        .update_tags(
            &name("delta"),
            &tags(&[("change", "new"), ("add", "a"), ("both", "b")]),
            &["drop".to_owned(), "both".to_owned(), "absent".to_owned()],
        )
        .await
        .expect("update tags");
    let got = store.get_tags(&name("delta")).await.expect("tags");
    // Removal wins over a set of the same key; removing an absent key is fine.
    assert_eq!(got, tags(&[("keep", "k"), ("change", "new"), ("add", "a")]));

    // Tags do not leak between functions.
    store
        .create_function(&function("epsilon", &sha('a'), 1), &tags(&[]))
        .await
        .expect("create");
    assert!(store
        .get_tags(&name("epsilon"))
        .await
        .expect("tags")
        .is_empty());

    let err = store
        .update_tags(&name("missing"), &tags(&[("a", "b")]), &[])
        .await
        .expect_err("tagging a missing function must fail");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
    let err = store
        .get_tags(&name("missing"))
        .await
        .expect_err("a missing function has no tags");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
}

async fn code_in_use_follows_functions(store: &dyn MetadataStore) {
    let (a, b, c) = (sha('a'), sha('b'), sha('c'));
    for (n, code) in [("one", &a), ("two", &a), ("three", &b)] {
        store
            .create_function(&function(n, code, 10), &tags(&[]))
            .await
            .expect("create");
    }
    assert!(store.code_in_use(&a).await.expect("a"));
    assert!(store.code_in_use(&b).await.expect("b"));
    assert!(!store.code_in_use(&c).await.expect("c"));

    store.delete_function(&name("one")).await.expect("delete");
    assert!(store.code_in_use(&a).await.expect("a"), "two still uses a");
    store.delete_function(&name("two")).await.expect("delete");
    assert!(!store.code_in_use(&a).await.expect("a"), "nothing uses a");

    // Updating a function's code moves its reference.
    let three = store
        .get_function(&name("three"))
        .await
        .expect("get")
        .expect("three exists");
    store
        .update_function(&function("three", &c, 10), &three.revision_id)
        .await
        .expect("update");
    assert!(!store.code_in_use(&b).await.expect("b"));
    assert!(store.code_in_use(&c).await.expect("c"));
}

async fn usage_counts_functions_and_code_bytes(store: &dyn MetadataStore) {
    assert_eq!(store.usage().await.expect("usage"), (0, 0));
    for (n, size) in [("u1", 100), ("u2", 250), ("u3", 4_000_000_000)] {
        store
            .create_function(&function(n, &sha('a'), size), &tags(&[]))
            .await
            .expect("create");
    }
    assert_eq!(store.usage().await.expect("usage"), (3, 4_000_000_350));

    let u2 = store
        .get_function(&name("u2"))
        .await
        .expect("get")
        .expect("u2 exists");
    store
        .update_function(&function("u2", &sha('b'), 50), &u2.revision_id)
        .await
        .expect("update");
    assert_eq!(store.usage().await.expect("usage"), (3, 4_000_000_150));

    store.delete_function(&name("u3")).await.expect("delete");
    assert_eq!(store.usage().await.expect("usage"), (2, 150));
}

/// Change `$LATEST`'s memory (and revision), as UpdateFunctionConfiguration would.
async fn set_memory(store: &dyn MetadataStore, n: &str, memory_mb: u32) -> Function {
    let current = store
        .get_function(&name(n))
        .await
        .expect("get")
        .expect("function exists");
    let mut next = current.clone();
    next.settings.memory_mb = memory_mb;
    next.revision_id = uuid::Uuid::new_v4().to_string();
    store
        .update_function(&next, &current.revision_id)
        .await
        .expect("update");
    next
}

fn alias(function: &str, alias_name: &str, version: &str, routing: &[(&str, f64)]) -> Alias {
    Alias {
        name: alias_name.to_owned(),
        function: name(function),
        function_version: version.to_owned(),
        description: format!("alias {alias_name}"),
        routing: routing.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        revision_id: uuid::Uuid::new_v4().to_string(),
    }
}

fn version_labels(page: &nimbus_core::VersionPage) -> Vec<String> {
    page.versions
        .iter()
        .map(|f| f.version.to_string())
        .collect()
}

async fn publish_snapshots_latest_and_numbers_never_repeat(store: &dyn MetadataStore) {
    let f = function("pub", &sha('a'), 10);
    store.create_function(&f, &tags(&[])).await.expect("create");

    let v1 = store
        .publish_version(&name("pub"), None, None, "")
        .await
        .expect("publish");
    assert_eq!(v1.version, FunctionVersion::Published(1));
    assert_eq!(v1.name, f.name);
    assert_eq!(
        v1.settings, f.settings,
        "a version copies $LATEST's settings"
    );
    assert_eq!(v1.code, f.code);
    assert_ne!(
        v1.revision_id, f.revision_id,
        "a version has its own revision"
    );

    // Nothing changed: the same version comes back, nothing new is written.
    let again = store
        .publish_version(&name("pub"), None, None, "ignored")
        .await
        .expect("publish unchanged");
    assert_eq!(again, v1);

    // $LATEST moves on; version 1 does not.
    set_memory(store, "pub", 512).await;
    let v2 = store
        .publish_version(&name("pub"), None, None, "second")
        .await
        .expect("publish");
    assert_eq!(v2.version, FunctionVersion::Published(2));
    assert_eq!(v2.settings.memory_mb, 512);
    assert_eq!(v2.settings.description, "second", "a description overrides");
    let latest = store
        .get_function(&name("pub"))
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(latest.version, FunctionVersion::Latest);
    assert_eq!(latest.settings.description, f.settings.description);
    assert_eq!(
        store
            .get_function_version(&name("pub"), 1)
            .await
            .expect("get"),
        Some(v1.clone())
    );
    assert_eq!(
        store
            .get_function_version(&name("pub"), 2)
            .await
            .expect("get"),
        Some(v2)
    );
    assert_eq!(
        store
            .get_function_version(&name("pub"), 3)
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store
            .get_function_version(&name("nope"), 1)
            .await
            .expect("get"),
        None
    );

    // Deleting the newest version frees nothing: the next is 3, even with $LATEST unchanged.
    store
        .delete_function_version(&name("pub"), 2)
        .await
        .expect("delete version 2");
    assert_eq!(
        store
            .get_function_version(&name("pub"), 2)
            .await
            .expect("get"),
        None
    );
    let v3 = store
        .publish_version(&name("pub"), None, None, "")
        .await
        .expect("publish");
    assert_eq!(v3.version, FunctionVersion::Published(3));
    assert_eq!(v3.settings.memory_mb, 512);
    let err = store
        .delete_function_version(&name("pub"), 2)
        .await
        .expect_err("already deleted");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
}

async fn publish_checks_preconditions_atomically(store: &dyn MetadataStore) {
    let f = function("pre", &sha('a'), 10);
    store.create_function(&f, &tags(&[])).await.expect("create");

    let err = store
        .publish_version(&name("pre"), None, Some("stale"), "")
        .await
        .expect_err("stale revision");
    assert!(matches!(err, StoreError::RevisionMismatch), "got {err:?}");
    let err = store
        .publish_version(&name("pre"), Some(&sha('b')), None, "")
        .await
        .expect_err("other code");
    match err {
        StoreError::CodeMismatch { current_sha256_hex } => assert_eq!(current_sha256_hex, sha('a')),
        other => panic!("got {other:?}"),
    }
    // Both wrong: the revision is checked first.
    let err = store
        .publish_version(&name("pre"), Some(&sha('b')), Some("stale"), "")
        .await
        .expect_err("both wrong");
    assert!(matches!(err, StoreError::RevisionMismatch), "got {err:?}");
    let err = store
        .publish_version(&name("ghost"), None, None, "")
        .await
        .expect_err("no function");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
    let page = store
        .list_versions(&name("pre"), None, 10)
        .await
        .expect("list");
    assert_eq!(
        version_labels(&page),
        ["$LATEST"],
        "refusals publish nothing"
    );

    let v1 = store
        .publish_version(&name("pre"), Some(&sha('a')), Some(&f.revision_id), "")
        .await
        .expect("matching preconditions");
    assert_eq!(v1.version, FunctionVersion::Published(1));
}

async fn list_versions_paginates_latest_first(store: &dyn MetadataStore) {
    store
        .create_function(&function("many", &sha('a'), 10), &tags(&[]))
        .await
        .expect("create");
    for memory in [200, 300, 400, 500] {
        set_memory(store, "many", memory).await;
        store
            .publish_version(&name("many"), None, None, "")
            .await
            .expect("publish");
    }
    let first = store
        .list_versions(&name("many"), None, 2)
        .await
        .expect("page 1");
    assert_eq!(version_labels(&first), ["$LATEST", "1"]);
    assert!(first.more);
    let second = store
        .list_versions(&name("many"), Some("1"), 2)
        .await
        .expect("page 2");
    assert_eq!(version_labels(&second), ["2", "3"]);
    assert!(second.more);
    let third = store
        .list_versions(&name("many"), Some("3"), 2)
        .await
        .expect("page 3");
    assert_eq!(version_labels(&third), ["4"]);
    assert!(!third.more);
    let all = store
        .list_versions(&name("many"), Some("$LATEST"), 10)
        .await
        .expect("after latest");
    assert_eq!(version_labels(&all), ["1", "2", "3", "4"]);
    assert!(!all.more);
    let exact = store
        .list_versions(&name("many"), None, 5)
        .await
        .expect("exact");
    assert_eq!(exact.versions.len(), 5);
    assert!(!exact.more);
    assert_eq!(exact.versions[2].settings.memory_mb, 300);
    let junk = store
        .list_versions(&name("many"), Some("junk"), 5)
        .await
        .expect("unknown marker");
    assert!(junk.versions.is_empty() && !junk.more);
    let err = store
        .list_versions(&name("ghost"), None, 5)
        .await
        .expect_err("no function");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
}

async fn aliases_create_update_list_delete(store: &dyn MetadataStore) {
    store
        .create_function(&function("al", &sha('a'), 10), &tags(&[]))
        .await
        .expect("create");
    store
        .publish_version(&name("al"), None, None, "")
        .await
        .expect("v1");
    set_memory(store, "al", 256).await;
    store
        .publish_version(&name("al"), None, None, "")
        .await
        .expect("v2");

    let live = alias("al", "live", "1", &[("2", 0.25)]);
    store.create_alias(&live).await.expect("create alias");
    assert_eq!(
        store.get_alias(&name("al"), "live").await.expect("get"),
        Some(live.clone())
    );
    assert_eq!(
        store.get_alias(&name("al"), "nope").await.expect("get"),
        None
    );
    assert_eq!(
        store.get_alias(&name("ghost"), "live").await.expect("get"),
        None
    );

    let err = store
        .create_alias(&alias("al", "live", "2", &[]))
        .await
        .expect_err("taken");
    assert!(matches!(err, StoreError::AlreadyExists), "got {err:?}");
    for dangling in [
        alias("al", "x", "9", &[]),
        alias("al", "x", "1", &[("9", 0.5)]),
        alias("ghost", "x", "$LATEST", &[]),
    ] {
        let err = store
            .create_alias(&dangling)
            .await
            .expect_err("missing version or function");
        assert!(matches!(err, StoreError::NotFound), "got {err:?}");
    }
    store
        .create_alias(&alias("al", "edge", "$LATEST", &[]))
        .await
        .expect("alias of $LATEST");
    store
        .create_alias(&alias("al", "beta", "2", &[]))
        .await
        .expect("alias of 2");

    // Compare-and-swap on the alias revision.
    let mut moved = live.clone();
    moved.function_version = "2".into();
    moved.routing.clear();
    moved.revision_id = "rev-2".into();
    let err = store
        .update_alias(&moved, Some("stale"))
        .await
        .expect_err("stale revision");
    assert!(matches!(err, StoreError::RevisionMismatch), "got {err:?}");
    assert_eq!(
        store.get_alias(&name("al"), "live").await.expect("get"),
        Some(live.clone()),
        "a refused update changes nothing"
    );
    store
        .update_alias(&moved, Some(&live.revision_id))
        .await
        .expect("update");
    assert_eq!(
        store.get_alias(&name("al"), "live").await.expect("get"),
        Some(moved.clone())
    );
    let mut to_nowhere = moved.clone();
    to_nowhere.function_version = "7".into();
    let err = store
        .update_alias(&to_nowhere, None)
        .await
        .expect_err("missing version");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
    let err = store
        .update_alias(&alias("al", "ghost", "1", &[]), None)
        .await
        .expect_err("missing alias");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");

    let names = |page: &nimbus_core::AliasPage| -> Vec<String> {
        page.aliases.iter().map(|a| a.name.clone()).collect()
    };
    let all = store
        .list_aliases(&name("al"), None, None, 10)
        .await
        .expect("list");
    assert_eq!(names(&all), ["beta", "edge", "live"]);
    assert!(!all.more);
    let first = store
        .list_aliases(&name("al"), None, None, 2)
        .await
        .expect("page 1");
    assert_eq!(names(&first), ["beta", "edge"]);
    assert!(first.more);
    let rest = store
        .list_aliases(&name("al"), None, Some("edge"), 2)
        .await
        .expect("page 2");
    assert_eq!(names(&rest), ["live"]);
    assert!(!rest.more);
    let of_two = store
        .list_aliases(&name("al"), Some("2"), None, 10)
        .await
        .expect("filtered");
    assert_eq!(names(&of_two), ["beta", "live"]);
    let of_latest = store
        .list_aliases(&name("al"), Some("$LATEST"), None, 10)
        .await
        .expect("filtered");
    assert_eq!(names(&of_latest), ["edge"]);
    let err = store
        .list_aliases(&name("ghost"), None, None, 10)
        .await
        .expect_err("no function");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");

    store
        .delete_alias(&name("al"), "edge")
        .await
        .expect("delete alias");
    assert_eq!(
        store.get_alias(&name("al"), "edge").await.expect("get"),
        None
    );
    let err = store
        .delete_alias(&name("al"), "edge")
        .await
        .expect_err("deleted twice");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
    let err = store
        .delete_alias(&name("ghost"), "edge")
        .await
        .expect_err("no function");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
}

async fn versions_in_use_by_aliases_cannot_be_deleted(store: &dyn MetadataStore) {
    store
        .create_function(&function("used", &sha('a'), 10), &tags(&[]))
        .await
        .expect("create");
    for memory in [200, 300, 400] {
        set_memory(store, "used", memory).await;
        store
            .publish_version(&name("used"), None, None, "")
            .await
            .expect("publish");
    }
    store
        .create_alias(&alias("used", "prod", "1", &[]))
        .await
        .expect("prod");
    store
        .create_alias(&alias("used", "canary", "3", &[("1", 0.1)]))
        .await
        .expect("canary");
    let err = store
        .delete_function_version(&name("used"), 1)
        .await
        .expect_err("referenced twice");
    match err {
        StoreError::InUse(names) => assert_eq!(names, ["canary", "prod"]),
        other => panic!("got {other:?}"),
    }
    let err = store
        .delete_function_version(&name("used"), 3)
        .await
        .expect_err("referenced");
    assert!(
        matches!(err, StoreError::InUse(ref n) if n == &["canary"]),
        "got {err:?}"
    );
    assert!(store
        .get_function_version(&name("used"), 1)
        .await
        .expect("get")
        .is_some());
    store
        .delete_function_version(&name("used"), 2)
        .await
        .expect("unreferenced version");
    store
        .delete_alias(&name("used"), "canary")
        .await
        .expect("delete canary");
    store
        .delete_function_version(&name("used"), 3)
        .await
        .expect("no longer referenced");
    let err = store
        .delete_function_version(&name("ghost"), 1)
        .await
        .expect_err("no function");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
}

async fn delete_function_removes_versions_aliases_and_reservation(store: &dyn MetadataStore) {
    store
        .create_function(&function("gone", &sha('a'), 10), &tags(&[]))
        .await
        .expect("create");
    store
        .publish_version(&name("gone"), None, None, "")
        .await
        .expect("v1");
    set_memory(store, "gone", 256).await;
    store
        .publish_version(&name("gone"), None, None, "")
        .await
        .expect("v2");
    store
        .create_alias(&alias("gone", "live", "1", &[]))
        .await
        .expect("alias");
    store
        .put_function_concurrency(&name("gone"), Some(5))
        .await
        .expect("reserve");
    // Read everything once, so a cache would hold it.
    assert!(store
        .get_function_version(&name("gone"), 2)
        .await
        .expect("get")
        .is_some());
    assert!(store
        .get_alias(&name("gone"), "live")
        .await
        .expect("get")
        .is_some());
    assert_eq!(
        store
            .get_function_concurrency(&name("gone"))
            .await
            .expect("get"),
        Some(5)
    );
    assert_eq!(store.total_reserved_concurrency().await.expect("total"), 5);

    store.delete_function(&name("gone")).await.expect("delete");
    assert_eq!(
        store
            .get_function_version(&name("gone"), 1)
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store.get_alias(&name("gone"), "live").await.expect("get"),
        None
    );
    assert_eq!(
        store
            .get_function_concurrency(&name("gone"))
            .await
            .expect("get"),
        None
    );
    assert_eq!(store.total_reserved_concurrency().await.expect("total"), 0);
    assert!(!store.code_in_use(&sha('a')).await.expect("in use"));

    // A new function of the same name starts from scratch.
    store
        .create_function(&function("gone", &sha('b'), 10), &tags(&[]))
        .await
        .expect("recreate");
    let v = store
        .publish_version(&name("gone"), None, None, "")
        .await
        .expect("publish");
    assert_eq!(v.version, FunctionVersion::Published(1));
    assert_eq!(v.code.sha256_hex, sha('b'));
    assert_eq!(
        store.get_alias(&name("gone"), "live").await.expect("get"),
        None
    );
    assert_eq!(
        store
            .get_function_concurrency(&name("gone"))
            .await
            .expect("get"),
        None
    );
    let page = store
        .list_aliases(&name("gone"), None, None, 10)
        .await
        .expect("list");
    assert!(page.aliases.is_empty());
}

async fn reserved_concurrency_put_get_total(store: &dyn MetadataStore) {
    for n in ["c1", "c2", "c3"] {
        store
            .create_function(&function(n, &sha('a'), 1), &tags(&[]))
            .await
            .expect("create");
    }
    assert_eq!(
        store
            .get_function_concurrency(&name("c1"))
            .await
            .expect("get"),
        None
    );
    assert_eq!(store.total_reserved_concurrency().await.expect("total"), 0);
    store
        .put_function_concurrency(&name("c1"), Some(10))
        .await
        .expect("put");
    store
        .put_function_concurrency(&name("c2"), Some(0))
        .await
        .expect("put zero");
    assert_eq!(
        store
            .get_function_concurrency(&name("c1"))
            .await
            .expect("get"),
        Some(10)
    );
    assert_eq!(
        store
            .get_function_concurrency(&name("c2"))
            .await
            .expect("get"),
        Some(0),
        "zero is a reservation (the function is disabled), not the absence of one"
    );
    assert_eq!(
        store
            .get_function_concurrency(&name("c3"))
            .await
            .expect("get"),
        None
    );
    assert_eq!(store.total_reserved_concurrency().await.expect("total"), 10);
    store
        .put_function_concurrency(&name("c1"), Some(25))
        .await
        .expect("replace");
    store
        .put_function_concurrency(&name("c3"), Some(u32::MAX))
        .await
        .expect("large");
    assert_eq!(
        store.total_reserved_concurrency().await.expect("total"),
        25 + u64::from(u32::MAX)
    );
    store
        .put_function_concurrency(&name("c3"), None)
        .await
        .expect("delete");
    assert_eq!(
        store
            .get_function_concurrency(&name("c3"))
            .await
            .expect("get"),
        None
    );
    assert_eq!(store.total_reserved_concurrency().await.expect("total"), 25);
    // Updating $LATEST leaves the reservation alone.
    set_memory(store, "c1", 1024).await;
    assert_eq!(
        store
            .get_function_concurrency(&name("c1"))
            .await
            .expect("get"),
        Some(25)
    );
    let err = store
        .put_function_concurrency(&name("ghost"), Some(1))
        .await
        .expect_err("no function");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
    assert_eq!(
        store
            .get_function_concurrency(&name("ghost"))
            .await
            .expect("get"),
        None
    );
}

async fn published_code_stays_in_use_and_counts(store: &dyn MetadataStore) {
    let (a, b) = (sha('a'), sha('b'));
    let f = function("keep", &a, 100);
    store.create_function(&f, &tags(&[])).await.expect("create");
    store
        .publish_version(&name("keep"), None, None, "")
        .await
        .expect("v1");
    assert_eq!(store.usage().await.expect("usage"), (1, 200));
    // $LATEST moves to other code; version 1 still needs the old blob.
    store
        .update_function(&function("keep", &b, 30), &f.revision_id)
        .await
        .expect("update code");
    assert!(store.code_in_use(&a).await.expect("a"), "version 1 uses a");
    assert!(store.code_in_use(&b).await.expect("b"));
    assert_eq!(store.usage().await.expect("usage"), (1, 130));
    store
        .delete_function_version(&name("keep"), 1)
        .await
        .expect("delete version");
    assert!(!store.code_in_use(&a).await.expect("a"), "nothing uses a");
    assert_eq!(store.usage().await.expect("usage"), (1, 30));
}

fn url_config(function: &str, qualifier: &str) -> nimbus_core::url::FunctionUrlConfig {
    nimbus_core::url::FunctionUrlConfig {
        url_id: nimbus_core::url::FunctionUrlConfig::new_url_id(),
        function: name(function),
        qualifier: qualifier.to_owned(),
        auth_type: "NONE".to_owned(),
        cors: None,
        invoke_mode: nimbus_core::url::InvokeMode::Buffered,
        created: chrono::Utc::now(),
        last_modified: chrono::Utc::now(),
    }
}

async fn function_urls_crud_and_cascade(store: &dyn MetadataStore) {
    let missing = store
        .create_function_url(&url_config("fn", "$LATEST"))
        .await
        .expect_err("no function");
    assert!(matches!(missing, StoreError::NotFound), "got {missing:?}");
    store
        .create_function(&function("fn", &sha('a'), 1), &tags(&[]))
        .await
        .expect("create");
    let latest = url_config("fn", "$LATEST");
    store
        .create_function_url(&latest)
        .await
        .expect("create url");
    let again = store
        .create_function_url(&url_config("fn", "$LATEST"))
        .await
        .expect_err("one URL per qualifier");
    assert!(matches!(again, StoreError::AlreadyExists), "got {again:?}");
    let no_alias = store
        .create_function_url(&url_config("fn", "live"))
        .await
        .expect_err("alias does not exist");
    assert!(matches!(no_alias, StoreError::NotFound), "got {no_alias:?}");
    store
        .create_alias(&alias("fn", "live", "$LATEST", &[]))
        .await
        .expect("alias");
    let live = url_config("fn", "live");
    store.create_function_url(&live).await.expect("alias url");

    assert_eq!(
        store
            .get_function_url(&name("fn"), "$LATEST")
            .await
            .expect("get"),
        Some(latest.clone())
    );
    assert_eq!(
        store
            .get_function_url_by_id(&live.url_id)
            .await
            .expect("by id"),
        Some(live.clone())
    );
    assert_eq!(
        store.get_function_url_by_id("nope").await.expect("by id"),
        None
    );

    let mut changed = latest.clone();
    changed.invoke_mode = nimbus_core::url::InvokeMode::ResponseStream;
    store.update_function_url(&changed).await.expect("update");
    assert_eq!(
        store
            .get_function_url_by_id(&latest.url_id)
            .await
            .expect("by id"),
        Some(changed.clone())
    );

    let page = store
        .list_function_urls(&name("fn"), None, 1)
        .await
        .expect("list");
    assert_eq!(page.urls, vec![changed.clone()]);
    assert!(page.more);
    let page = store
        .list_function_urls(&name("fn"), Some("$LATEST"), 10)
        .await
        .expect("list");
    assert_eq!(page.urls, vec![live.clone()]);
    assert!(!page.more);

    // Deleting the alias deletes its URL.
    store
        .delete_alias(&name("fn"), "live")
        .await
        .expect("delete alias");
    assert_eq!(
        store
            .get_function_url_by_id(&live.url_id)
            .await
            .expect("by id"),
        None
    );

    store
        .delete_function_url(&name("fn"), "$LATEST")
        .await
        .expect("delete");
    let gone = store
        .delete_function_url(&name("fn"), "$LATEST")
        .await
        .expect_err("gone");
    assert!(matches!(gone, StoreError::NotFound), "got {gone:?}");

    // Deleting the function deletes its URLs.
    let fresh = url_config("fn", "$LATEST");
    store.create_function_url(&fresh).await.expect("create url");
    store.delete_function(&name("fn")).await.expect("delete fn");
    assert_eq!(
        store
            .get_function_url_by_id(&fresh.url_id)
            .await
            .expect("by id"),
        None
    );
    store
        .create_function(&function("fn", &sha('a'), 1), &tags(&[]))
        .await
        .expect("recreate");
    assert_eq!(
        store
            .get_function_url(&name("fn"), "$LATEST")
            .await
            .expect("get"),
        None
    );
}

async fn routes_put_list_delete(store: &dyn MetadataStore) {
    use nimbus_core::url::HttpRoute;
    let route = |key: &str, target: &str| HttpRoute {
        route_key: key.to_owned(),
        target: target.to_owned(),
        updated: chrono::Utc::now(),
    };
    assert!(store.list_routes().await.expect("list").is_empty());
    store.put_route(&route("GET /b", "f1")).await.expect("put");
    store
        .put_route(&route("$default", "f2"))
        .await
        .expect("put");
    store
        .put_route(&route("GET /b", "f3"))
        .await
        .expect("replace");
    let listed: Vec<(String, String)> = store
        .list_routes()
        .await
        .expect("list")
        .into_iter()
        .map(|r| (r.route_key, r.target))
        .collect();
    assert_eq!(
        listed,
        [
            ("$default".to_owned(), "f2".to_owned()),
            ("GET /b".to_owned(), "f3".to_owned())
        ]
    );
    store.delete_route("GET /b").await.expect("delete");
    let err = store.delete_route("GET /b").await.expect_err("gone");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
    assert_eq!(store.list_routes().await.expect("list").len(), 1);
}

fn layer(name: &str, sha256_hex: &str) -> nimbus_core::layer::LayerVersion {
    nimbus_core::layer::LayerVersion {
        name: name.to_owned(),
        version: 0,
        description: format!("{name} layer"),
        license_info: Some("MIT".to_owned()),
        compatible_runtimes: vec!["python3.12".to_owned()],
        compatible_architectures: vec![],
        created: chrono::Utc::now(),
        content: nimbus_core::CodeRef {
            sha256_hex: sha256_hex.to_owned(),
            size: 10,
            unzipped_size: 20,
        },
    }
}

async fn layer_versions_publish_list_delete_and_keep_their_code(store: &dyn MetadataStore) {
    let (a, b, c) = (sha('a'), sha('b'), sha('c'));
    let first = store
        .publish_layer_version(&layer("deps", &a))
        .await
        .expect("publish");
    assert_eq!(first.version, 1);
    assert_eq!(first.description, "deps layer");
    let second = store
        .publish_layer_version(&layer("deps", &b))
        .await
        .expect("publish");
    assert_eq!(second.version, 2);
    assert_eq!(
        store
            .publish_layer_version(&layer("tools", &a))
            .await
            .expect("publish")
            .version,
        1
    );

    let got = store.get_layer_version("deps", 1).await.expect("get");
    assert_eq!(got.as_ref(), Some(&first));
    assert_eq!(store.get_layer_version("deps", 9).await.expect("get"), None);
    assert_eq!(store.get_layer_version("nope", 1).await.expect("get"), None);
    let listed: Vec<(String, u64)> = store
        .list_layer_versions(None)
        .await
        .expect("list")
        .into_iter()
        .map(|l| (l.name, l.version))
        .collect();
    assert_eq!(
        listed,
        [
            ("deps".to_owned(), 2),
            ("deps".to_owned(), 1),
            ("tools".to_owned(), 1)
        ]
    );
    assert_eq!(
        store
            .list_layer_versions(Some("tools"))
            .await
            .expect("list")
            .len(),
        1
    );

    // The layer's archive is in use while a version or a function holds it.
    assert!(store.code_in_use(&b).await.expect("b"));
    store.delete_layer_version("deps", 2).await.expect("delete");
    assert!(matches!(
        store.delete_layer_version("deps", 2).await,
        Err(StoreError::NotFound)
    ));
    assert!(!store.code_in_use(&b).await.expect("b"));
    let mut user = function("user", &c, 10);
    user.settings.layers = vec![nimbus_core::layer::LayerRef {
        arn: "arn:aws:lambda:us-east-1:000000000000:layer:deps:2".to_owned(),
        content: second.content.clone(),
    }];
    store
        .create_function(&user, &tags(&[]))
        .await
        .expect("create");
    assert!(
        store.code_in_use(&b).await.expect("b"),
        "a function still uses the deleted version"
    );
    let stored = store
        .get_function(&name("user"))
        .await
        .expect("get")
        .expect("user");
    assert_eq!(stored.settings.layers, user.settings.layers);

    // Numbers are never reused after a delete.
    assert_eq!(
        store
            .publish_layer_version(&layer("deps", &c))
            .await
            .expect("publish")
            .version,
        3
    );
}
