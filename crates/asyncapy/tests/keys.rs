//! API keys: the shared key store conformance suite (`key_stores/`) on the
//! memory store, and the factory's error paths.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod key_stores;

use std::sync::Arc;

use asyncapy::asyncaproto::Value;
use asyncapy::keys::{
    ApiKeyFactory, KeyError, KeyStore, KeyStoreError, MemoryKeyStore, Rename, StoreFuture,
};
use key_stores::conformance::conformance;

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
    // `list` has a default: a typed "cannot", not a panic.
    assert!(matches!(
        factory.list().await,
        Err(KeyError::Store(KeyStoreError::Unsupported(_)))
    ));
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
    let timeout = KeyStoreError::Timeout(std::time::Duration::from_millis(500));
    assert_eq!(timeout.to_string(), "key store did not answer within 500ms");
    assert_eq!(
        KeyStoreError::Unsupported("list its keys").to_string(),
        "this key store cannot list its keys"
    );
}
