//! [`MemoryKeyStore`]: keys in a hash map, for one process (the original's
//! storage, and the default).

use std::collections::HashMap;
use std::fmt;
use std::future::ready;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use asyncaproto::Value;

use super::{KeyStore, KeyStoreError, Rename, StoreFuture};

/// Keys and their metadata in memory: lost when the process ends.
///
/// Every operation answers at once, and [`KeyStore::contains_now`] answers
/// too, so the [`ApiKey`](crate::filters::ApiKey) filter checks a key with one
/// read lock and one hash lookup, without allocating. Keys are found through a
/// hash map keyed with per-process random secrets (see the
/// [module docs](super#timing) on timing).
///
/// ```
/// use asyncapy::keys::{ApiKeyFactory, MemoryKeyStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), asyncapy::keys::KeyError> {
/// let factory = ApiKeyFactory::with_store(MemoryKeyStore::new());
/// factory.issue(()).await?;
/// assert_eq!(factory.store().len(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Default)]
pub struct MemoryKeyStore {
    keys: RwLock<HashMap<String, Value>>,
}

impl MemoryKeyStore {
    /// An empty store.
    ///
    /// ```
    /// assert!(asyncapy::keys::MemoryKeyStore::new().is_empty());
    /// ```
    pub fn new() -> MemoryKeyStore {
        MemoryKeyStore::default()
    }

    /// How many keys are live.
    ///
    /// ```
    /// assert_eq!(asyncapy::keys::MemoryKeyStore::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no key is live.
    ///
    /// ```
    /// assert!(asyncapy::keys::MemoryKeyStore::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    // A panic cannot happen while a guard is held (no user code runs under
    // the lock), and every write leaves the map whole anyway: a poisoned lock
    // is safe to keep using.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Value>> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Value>> {
        self.keys.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn now<'a, T: Send + 'a>(value: T) -> StoreFuture<'a, T> {
    Box::pin(ready(Ok(value)))
}

impl KeyStore for MemoryKeyStore {
    fn insert<'a>(&'a self, key: &'a str, metadata: Value) -> StoreFuture<'a, bool> {
        let mut keys = self.write();
        let inserted = !keys.contains_key(key);
        if inserted {
            keys.insert(key.to_owned(), metadata);
        }
        now(inserted)
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Value>> {
        now(self.read().get(key).cloned())
    }

    fn contains<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        now(self.read().contains_key(key))
    }

    fn update<'a>(&'a self, key: &'a str, metadata: Value) -> StoreFuture<'a, bool> {
        let updated = match self.write().get_mut(key) {
            Some(slot) => {
                *slot = metadata;
                true
            }
            None => false,
        };
        now(updated)
    }

    fn remove<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        now(self.write().remove(key).is_some())
    }

    fn rename<'a>(&'a self, old: &'a str, new: &'a str) -> StoreFuture<'a, Rename> {
        let mut keys = self.write();
        let outcome = if keys.contains_key(new) {
            Rename::Taken
        } else if let Some(metadata) = keys.remove(old) {
            keys.insert(new.to_owned(), metadata);
            Rename::Renamed
        } else {
            Rename::NotFound
        };
        now(outcome)
    }

    fn contains_now(&self, key: &str) -> Option<Result<bool, KeyStoreError>> {
        Some(Ok(self.read().contains_key(key)))
    }
}

impl fmt::Debug for MemoryKeyStore {
    /// The number of keys only: keys are secrets and never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryKeyStore")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rename_onto_a_live_key_changes_nothing() {
        let store = MemoryKeyStore::new();
        assert!(store.insert("a", Value::from(1)).await.unwrap());
        assert!(store.insert("b", Value::from(2)).await.unwrap());
        assert_eq!(store.rename("a", "b").await.unwrap(), Rename::Taken);
        assert_eq!(store.get("a").await.unwrap(), Some(Value::from(1)));
        assert_eq!(store.get("b").await.unwrap(), Some(Value::from(2)));
        assert_eq!(store.rename("zz", "c").await.unwrap(), Rename::NotFound);
        assert_eq!(store.rename("a", "c").await.unwrap(), Rename::Renamed);
        assert_eq!(store.get("c").await.unwrap(), Some(Value::from(1)));
        assert!(!store.contains("a").await.unwrap());
    }

    #[tokio::test]
    async fn insert_never_overwrites() {
        let store = MemoryKeyStore::new();
        assert!(store.insert("k", Value::from("first")).await.unwrap());
        assert!(!store.insert("k", Value::from("second")).await.unwrap());
        assert_eq!(store.get("k").await.unwrap(), Some(Value::from("first")));
    }

    #[test]
    fn debug_shows_the_count_not_the_keys() {
        let store = MemoryKeyStore::new();
        drop(store.insert("secret", Value::Null));
        assert_eq!(format!("{store:?}"), "MemoryKeyStore { len: 1, .. }");
    }
}
