//! API keys: one conformance test that every [`KeyStore`] backend must pass
//! (run here against the memory store; later backends call `conformance` too),
//! and the factory's error paths.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

use std::collections::HashSet;
use std::sync::Arc;

use asyncapy::asyncaproto::{Map, Value};
use asyncapy::keys::{
    generate_key, ApiKeyFactory, KeyError, KeyStore, KeyStoreError, MemoryKeyStore, Rename,
    StoreFuture, DEFAULT_KEY_SIZE,
};

/// Metadata of every shape a backend must give back unchanged.
fn metadata_samples() -> Vec<Value> {
    let mut nested = Map::new();
    nested.insert("user", "ada");
    nested.insert("quota", 1000);
    nested.insert("ratio", 0.25);
    nested.insert("admin", false);
    nested.insert("tags", vec!["a", "b"]);
    nested.insert("none", Value::Null);
    nested.insert("unicode", "héllo ✓ 🦀");
    nested.insert("big", u64::MAX);
    nested.insert("negative", i64::MIN);
    nested.insert("bytes", Value::bin(vec![0u8, 255, 1]));
    nested.insert("inner", Map::from_iter([("deep", vec![1, 2, 3])]));
    vec![
        Value::Null,
        Value::from(Map::new()),
        Value::from(nested),
        Value::from("a string"),
        Value::from(42),
        Value::from(vec![Value::from(1), Value::from("x")]),
    ]
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, KeyError>, what: &str) {
    match result {
        Err(KeyError::NotFound) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

/// The behaviour every key store must have, through the store's own methods
/// and through an [`ApiKeyFactory`] over it. `store` must start empty.
async fn conformance<S: KeyStore + ?Sized>(store: Arc<S>) {
    store_level(&*store).await;
    factory_level(ApiKeyFactory::from_arc(Arc::clone(&store))).await;
    concurrency(ApiKeyFactory::from_arc(store)).await;
}

/// The trait's contract, method by method.
async fn store_level<S: KeyStore + ?Sized>(store: &S) {
    let (a, b, c) = (
        generate_key(32).unwrap(),
        generate_key(32).unwrap(),
        generate_key(32).unwrap(),
    );
    let contains_now_agrees = |key: &str, expected: bool| {
        if let Some(answer) = store.contains_now(key) {
            assert_eq!(answer.unwrap(), expected, "contains_now({key})");
        }
    };

    // Absent keys.
    assert_eq!(store.get(&a).await.unwrap(), None);
    assert!(!store.contains(&a).await.unwrap());
    contains_now_agrees(&a, false);
    assert!(!store.update(&a, Value::from(1)).await.unwrap());
    assert!(!store.remove(&a).await.unwrap());
    assert_eq!(store.rename(&a, &b).await.unwrap(), Rename::NotFound);
    assert!(
        !store.contains(&b).await.unwrap(),
        "a failed rename creates nothing"
    );

    // insert: never overwrites.
    assert!(store.insert(&a, Value::from("first")).await.unwrap());
    assert!(!store.insert(&a, Value::from("second")).await.unwrap());
    assert_eq!(store.get(&a).await.unwrap(), Some(Value::from("first")));
    assert!(store.contains(&a).await.unwrap());
    contains_now_agrees(&a, true);

    // Keys are exact: no prefix, case or whitespace slack.
    for near in [
        a[..31].to_owned(),
        format!("{a}x"),
        a.to_lowercase(),
        format!(" {a}"),
    ] {
        if near != a {
            assert!(
                !store.contains(&near).await.unwrap(),
                "{near:?} is not {a:?}"
            );
            assert_eq!(store.get(&near).await.unwrap(), None);
        }
    }
    assert!(!store.contains("").await.unwrap());

    // update replaces the metadata.
    assert!(store.update(&a, Value::from("updated")).await.unwrap());
    assert_eq!(store.get(&a).await.unwrap(), Some(Value::from("updated")));

    // rename: moves, refuses a taken target, leaves both untouched then.
    assert!(store.insert(&b, Value::from("b")).await.unwrap());
    assert_eq!(store.rename(&a, &b).await.unwrap(), Rename::Taken);
    assert_eq!(store.get(&a).await.unwrap(), Some(Value::from("updated")));
    assert_eq!(store.get(&b).await.unwrap(), Some(Value::from("b")));
    assert_eq!(store.rename(&a, &c).await.unwrap(), Rename::Renamed);
    assert_eq!(store.get(&a).await.unwrap(), None);
    assert!(!store.contains(&a).await.unwrap());
    contains_now_agrees(&a, false);
    assert_eq!(store.get(&c).await.unwrap(), Some(Value::from("updated")));

    // remove.
    assert!(store.remove(&b).await.unwrap());
    assert!(!store.remove(&b).await.unwrap());
    assert!(store.remove(&c).await.unwrap());
    assert!(!store.contains(&c).await.unwrap());

    // A removed key can be inserted again (a store never remembers it as taken).
    assert!(store.insert(&b, Value::Null).await.unwrap());
    assert_eq!(store.get(&b).await.unwrap(), Some(Value::Null));
    assert!(store.remove(&b).await.unwrap());

    // Metadata comes back as it went in.
    for (i, metadata) in metadata_samples().into_iter().enumerate() {
        let key = format!("sample-{i}-{}", generate_key(8).unwrap());
        assert!(store.insert(&key, metadata.clone()).await.unwrap());
        assert_eq!(store.get(&key).await.unwrap(), Some(metadata), "sample {i}");
        assert!(store.remove(&key).await.unwrap());
    }
}

/// The factory's operations, as Python's APIKeyFactory documents them.
async fn factory_level<S: KeyStore + ?Sized>(factory: ApiKeyFactory<S>) {
    assert_eq!(factory.size(), DEFAULT_KEY_SIZE);

    // issue / get / contains.
    let meta = Value::from(Map::from_iter([("user", "ada")]));
    let key = factory.issue(meta.clone()).await.unwrap();
    assert_eq!(key.len(), 32);
    assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(factory.get(&key).await.unwrap(), meta);
    assert!(factory.contains(&key).await.unwrap());
    let bare = factory.issue(()).await.unwrap();
    assert!(
        factory.get(&bare).await.unwrap().is_null(),
        "issue() carries None"
    );
    assert_ne!(key, bare);

    // update.
    let meta2 = Value::from(Map::from_iter([("user", "ada"), ("plan", "pro")]));
    factory.update(&key, meta2.clone()).await.unwrap();
    assert_eq!(factory.get(&key).await.unwrap(), meta2);

    // reissue: new key, same metadata, old key revoked.
    let new = factory.reissue(&key).await.unwrap();
    assert_ne!(new, key);
    assert_eq!(new.len(), 32);
    assert_eq!(factory.get(&new).await.unwrap(), meta2);
    assert!(!factory.contains(&key).await.unwrap());
    assert_not_found(factory.get(&key).await, "get of a reissued key");

    // revoke.
    factory.revoke(&new).await.unwrap();
    assert!(!factory.contains(&new).await.unwrap());

    // Every operation on a key that is not live is NotFound (Python's KeyError).
    for dead in [key.as_str(), new.as_str(), "never-issued", ""] {
        assert_not_found(factory.get(dead).await, "get");
        assert_not_found(factory.revoke(dead).await, "revoke");
        assert_not_found(factory.reissue(dead).await, "reissue");
        assert_not_found(factory.update(dead, Value::Null).await, "update");
        assert!(!factory.contains(dead).await.unwrap());
    }

    // Other keys are untouched by all of that.
    assert!(factory.get(&bare).await.unwrap().is_null());
    factory.revoke(&bare).await.unwrap();

    // Other key sizes.
    let long = factory.clone().with_size(64);
    let key = long.issue(()).await.unwrap();
    assert_eq!(key.len(), 64);
    let again = long.reissue(&key).await.unwrap();
    assert_eq!(again.len(), 64);
    long.revoke(&again).await.unwrap();
}

/// Concurrent use: issued keys are unique, and a key reissued from several
/// tasks at once is reissued exactly once.
async fn concurrency<S: KeyStore + ?Sized>(factory: ApiKeyFactory<S>) {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let factory = factory.clone();
        tasks.push(tokio::spawn(async move {
            let mut keys = Vec::new();
            for i in 0..50 {
                keys.push(factory.issue(i).await.unwrap());
            }
            keys
        }));
    }
    let mut all = HashSet::new();
    for task in tasks {
        for key in task.await.unwrap() {
            assert!(factory.contains(&key).await.unwrap());
            assert!(all.insert(key), "a key was issued twice");
        }
    }
    assert_eq!(all.len(), 400);

    let contested = factory.issue("contested").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (factory, key) = (factory.clone(), contested.clone());
        tasks.push(tokio::spawn(async move { factory.reissue(&key).await }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(new) => winners.push(new),
            Err(KeyError::NotFound) => {}
            Err(e) => panic!("reissue failed: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one reissue wins");
    assert_eq!(factory.get(&winners[0]).await.unwrap(), "contested");
    assert!(!factory.contains(&contested).await.unwrap());

    for key in all.iter().chain(&winners) {
        factory.revoke(key).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() {
    let store = Arc::new(MemoryKeyStore::new());
    conformance(Arc::clone(&store)).await;
    assert!(
        store.is_empty(),
        "the conformance test cleans up after itself"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms_as_a_trait_object() {
    let store: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::new());
    conformance(store).await;
}

/// A store whose every operation fails.
struct BrokenStore;

fn broken<'a, T: Send + 'a>() -> StoreFuture<'a, T> {
    Box::pin(async { Err(KeyStoreError::backend("disk on fire")) })
}

impl KeyStore for BrokenStore {
    fn insert<'a>(&'a self, _: &'a str, _: Value) -> StoreFuture<'a, bool> {
        broken()
    }
    fn get<'a>(&'a self, _: &'a str) -> StoreFuture<'a, Option<Value>> {
        broken()
    }
    fn contains<'a>(&'a self, _: &'a str) -> StoreFuture<'a, bool> {
        broken()
    }
    fn update<'a>(&'a self, _: &'a str, _: Value) -> StoreFuture<'a, bool> {
        broken()
    }
    fn remove<'a>(&'a self, _: &'a str) -> StoreFuture<'a, bool> {
        broken()
    }
    fn rename<'a>(&'a self, _: &'a str, _: &'a str) -> StoreFuture<'a, Rename> {
        broken()
    }
}

fn assert_store_error<T: std::fmt::Debug>(result: Result<T, KeyError>) {
    match result {
        Err(e @ KeyError::Store(KeyStoreError::Backend(_))) => {
            assert_eq!(e.to_string(), "key store failed: disk on fire");
            assert!(std::error::Error::source(&e).is_some());
        }
        other => panic!("expected a store error, got {other:?}"),
    }
}

#[tokio::test]
async fn store_failures_are_typed_errors_of_every_operation() {
    let factory = ApiKeyFactory::with_store(BrokenStore);
    assert_store_error(factory.issue(()).await);
    assert_store_error(factory.get("k").await);
    assert_store_error(factory.revoke("k").await);
    assert_store_error(factory.reissue("k").await);
    assert_store_error(factory.update("k", Value::Null).await);
    assert!(matches!(
        factory.contains("k").await,
        Err(KeyStoreError::Backend(_))
    ));
    assert!(
        factory.contains_now("k").is_none(),
        "the default fast path is None"
    );
}

/// A store where every key is already taken.
struct FullStore;

impl KeyStore for FullStore {
    fn insert<'a>(&'a self, _: &'a str, _: Value) -> StoreFuture<'a, bool> {
        Box::pin(async { Ok(false) })
    }
    fn get<'a>(&'a self, _: &'a str) -> StoreFuture<'a, Option<Value>> {
        Box::pin(async { Ok(Some(Value::Null)) })
    }
    fn contains<'a>(&'a self, _: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async { Ok(true) })
    }
    fn update<'a>(&'a self, _: &'a str, _: Value) -> StoreFuture<'a, bool> {
        Box::pin(async { Ok(true) })
    }
    fn remove<'a>(&'a self, _: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async { Ok(true) })
    }
    fn rename<'a>(&'a self, _: &'a str, _: &'a str) -> StoreFuture<'a, Rename> {
        Box::pin(async { Ok(Rename::Taken) })
    }
}

#[tokio::test]
async fn a_store_with_no_free_key_is_exhausted_not_an_endless_loop() {
    let factory = ApiKeyFactory::with_store(FullStore);
    assert!(matches!(factory.issue(()).await, Err(KeyError::Exhausted)));
    assert!(matches!(
        factory.reissue("k").await,
        Err(KeyError::Exhausted)
    ));
    assert_eq!(
        KeyError::Exhausted.to_string(),
        "no free key after 16 attempts: the key size is too small"
    );
}

#[tokio::test]
async fn error_messages() {
    assert_eq!(KeyError::NotFound.to_string(), "no such API key");
    let corrupt = KeyError::from(KeyStoreError::Corrupt("row 7".into()));
    assert_eq!(
        corrupt.to_string(),
        "key store holds unreadable data: row 7"
    );
}
