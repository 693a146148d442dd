//! The `MetadataStore` contract, as documented on the trait and shown by the in-memory fake.
//!
//! Each case takes `&dyn MetadataStore` and starts from an empty store; [`contract_suite!`]
//! runs every case against every backend, so a backend that passes behaves like the fake the
//! layers above are tested with.

use nimbus_core::fake::MemoryMetadataStore;
use nimbus_core::{MetadataStore, StoreError};
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
