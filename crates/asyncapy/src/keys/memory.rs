//! [`MemoryKeyStore`]: keys in a hash map, for one process (the original's
//! storage, and the default).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::future::ready;
use std::hash::BuildHasher;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use asyncaproto::Value;

use super::digest::same_secret;
use super::{key_digest, KeyStore, KeyStoreError, ListedKey, Rename, StoreFuture};

/// Keys and their metadata in memory: lost when the process ends.
///
/// Every operation answers at once, and [`KeyStore::contains_now`] answers
/// too, so the [`ApiKey`](crate::filters::ApiKey) filter checks a key with one
/// read lock and one hash lookup, without allocating.
///
/// Keys are found by a 128-bit digest keyed with a secret drawn at random for
/// each store (SipHash, as std's `RandomState`), then confirmed with a constant-time
/// comparison (`subtle`). How long a lookup takes depends on that digest, which says
/// nothing about how close a guess came to a live key (see the
/// [module docs](super#timing)).
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
    /// The secret of the digest: a random SipHash key.
    digest: RandomState,
    keys: RwLock<HashMap<Digest, Entry>>,
}

/// A key's digest under the store's secrets.
type Digest = u128;

struct Entry {
    key: Box<str>,
    metadata: Value,
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

    fn digest(&self, key: &str) -> Digest {
        // Two hashes of the key under one secret, told apart by a prefix.
        let high = self.digest.hash_one((0u8, key));
        let low = self.digest.hash_one((1u8, key));
        (Digest::from(high) << 64) | Digest::from(low)
    }

    /// The entry of `key` in `keys`, if live.
    fn find<'m>(&self, keys: &'m HashMap<Digest, Entry>, key: &str) -> Option<&'m Entry> {
        keys.get(&self.digest(key))
            .filter(|entry| same_key(&entry.key, key))
    }

    // A panic cannot happen while a guard is held (no user code runs under
    // the lock), and every write leaves the map whole anyway: a poisoned lock
    // is safe to keep using.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<Digest, Entry>> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<Digest, Entry>> {
        self.keys.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths
/// only (the length of keys is no secret: a factory's keys all have one size).
fn same_key(a: &str, b: &str) -> bool {
    same_secret(a.as_bytes(), b.as_bytes())
}

fn now<'a, T: Send + 'a>(value: T) -> StoreFuture<'a, T> {
    Box::pin(ready(Ok(value)))
}

impl KeyStore for MemoryKeyStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn insert<'a>(&'a self, key: &'a str, metadata: Value) -> StoreFuture<'a, bool> {
        let digest = self.digest(key);
        let mut keys = self.write();
        // A digest taken by another key (one chance in 2^128) counts as taken:
        // the factory then draws another key.
        let inserted = !keys.contains_key(&digest);
        if inserted {
            let key = key.into();
            keys.insert(digest, Entry { key, metadata });
        }
        now(inserted)
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Value>> {
        let keys = self.read();
        now(self.find(&keys, key).map(|entry| entry.metadata.clone()))
    }

    fn contains<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        let keys = self.read();
        now(self.find(&keys, key).is_some())
    }

    fn update<'a>(&'a self, key: &'a str, metadata: Value) -> StoreFuture<'a, bool> {
        let digest = self.digest(key);
        let mut keys = self.write();
        let updated = match keys.get_mut(&digest) {
            Some(entry) if same_key(&entry.key, key) => {
                entry.metadata = metadata;
                true
            }
            _ => false,
        };
        now(updated)
    }

    fn remove<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        let digest = self.digest(key);
        let mut keys = self.write();
        let live = keys
            .get(&digest)
            .is_some_and(|entry| same_key(&entry.key, key));
        if live {
            keys.remove(&digest);
        }
        now(live)
    }

    fn rename<'a>(&'a self, old: &'a str, new: &'a str) -> StoreFuture<'a, Rename> {
        let (old_digest, new_digest) = (self.digest(old), self.digest(new));
        let mut keys = self.write();
        let live = keys
            .get(&old_digest)
            .is_some_and(|entry| same_key(&entry.key, old));
        let outcome = if keys.contains_key(&new_digest) {
            Rename::Taken
        } else if !live {
            Rename::NotFound
        } else if let Some(entry) = keys.remove(&old_digest) {
            let key = new.into();
            keys.insert(new_digest, Entry { key, ..entry });
            Rename::Renamed
        } else {
            Rename::NotFound
        };
        now(outcome)
    }

    fn contains_now(&self, key: &str) -> Option<Result<bool, KeyStoreError>> {
        let keys = self.read();
        Some(Ok(self.find(&keys, key).is_some()))
    }

    fn get_now(&self, key: &str) -> Option<Result<Option<Value>, KeyStoreError>> {
        let keys = self.read();
        Some(Ok(self
            .find(&keys, key)
            .map(|entry| entry.metadata.clone())))
    }

    fn list(&self) -> StoreFuture<'_, Vec<ListedKey>> {
        let mut listed: Vec<ListedKey> = self
            .read()
            .values()
            .map(|entry| ListedKey::new(key_digest(&entry.key), entry.metadata.clone()))
            .collect();
        listed.sort_by(|a, b| a.digest.cmp(&b.digest));
        now(listed)
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
    fn same_key_is_plain_equality() {
        assert!(same_key("", ""));
        assert!(same_key("abc", "abc"));
        assert!(!same_key("abc", "abd"));
        assert!(!same_key("abc", "ab"));
        assert!(!same_key("abc", "Abc"));
    }

    #[tokio::test]
    async fn digests_are_per_store() {
        let (a, b) = (MemoryKeyStore::new(), MemoryKeyStore::new());
        assert_ne!(a.digest("key"), b.digest("key"));
        assert_eq!(a.digest("key"), a.digest("key"));
        assert_ne!(a.digest("key"), a.digest("kez"));
    }

    #[test]
    fn debug_shows_the_count_not_the_keys() {
        let store = MemoryKeyStore::new();
        drop(store.insert("secret", Value::Null));
        assert_eq!(format!("{store:?}"), "MemoryKeyStore { len: 1, .. }");
    }
}
