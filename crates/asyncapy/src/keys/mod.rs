//! API keys: [`ApiKeyFactory`] issues, looks up, revokes and reissues keys kept
//! in a [`KeyStore`] ([`MemoryKeyStore`] by default).
//!
//! ```
//! use asyncapy::asyncaproto::Map;
//! use asyncapy::keys::{ApiKeyFactory, KeyError};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), KeyError> {
//! let factory = ApiKeyFactory::new(); // in memory, 32-character keys
//! let key = factory.issue(Map::from_iter([("user", "ada")])).await?;
//! assert_eq!(key.len(), 32);
//! assert_eq!(factory.get(&key).await?["user"], "ada");
//!
//! let new_key = factory.reissue(&key).await?; // same metadata, old key revoked
//! assert!(factory.contains(&new_key).await?);
//! assert!(matches!(factory.get(&key).await, Err(KeyError::NotFound)));
//!
//! factory.revoke(&new_key).await?;
//! assert!(!factory.contains(&new_key).await?);
//! # Ok(())
//! # }
//! ```
//!
//! # From Python's `APIKeyFactory`
//!
//! | Python (`asyncapy.util.APIKeyFactory`) | Rust |
//! |---|---|
//! | `APIKeyFactory(size=32)` | [`ApiKeyFactory::new`]`()` / [`ApiKeyFactory::with_size`] |
//! | a subclass with real storage | [`ApiKeyFactory::with_store`]`(store)`, `store` implementing [`KeyStore`] |
//! | `issue(metadata=None) -> key` | [`ApiKeyFactory::issue`]`(metadata)` (`()` for `None`) |
//! | `get(key)`, raising `KeyError` | [`ApiKeyFactory::get`], returning `Err(`[`KeyError::NotFound`]`)` |
//! | `revoke(key)`, raising `KeyError` | [`ApiKeyFactory::revoke`], `Err(KeyError::NotFound)` |
//! | `reissue(key) -> key`, raising `KeyError` | [`ApiKeyFactory::reissue`]; the old key is revoked too (the original kept it alive: a bug) |
//! | `update(key, metadata)`, raising `KeyError` | [`ApiKeyFactory::update`], `Err(KeyError::NotFound)` |
//! | `key in factory` | [`ApiKeyFactory::contains`] |
//! | `Filters.APIFactory(factory, field_name)` | [`ApiKey::new`](crate::filters::ApiKey::new)`(factory, field_name)` |
//!
//! Every operation is `async` because stores may do I/O; storage failures are a
//! [`KeyError::Store`] (a typed [`KeyStoreError`]), never a panic.
//!
//! # Keys
//!
//! A key is [`size`](ApiKeyFactory::with_size) (default 32) characters drawn
//! uniformly from the 62 ASCII letters and digits, from the operating system's
//! cryptographic generator (the original used Python's `random`, which is
//! predictable). A 32-character key carries about 190 bits of entropy.
//!
//! # Backends
//!
//! | store | feature | for | keys kept as |
//! |---|---|---|---|
//! | [`MemoryKeyStore`] | (default) | one process; lost at exit | the key, found by a secret-keyed digest |
//! | `SqliteKeyStore` | `sqlite` | one machine; persistent; shared by processes on it | SHA-256 digest |
//! | `RedisKeyStore` | `redis` | several servers sharing one key set | SHA-256 digest |
//!
//! Every store passes one conformance suite (`crates/asyncapy/tests/key_stores/`),
//! and the [`ApiKey`](crate::filters::ApiKey) filter works the same over each.
//! Persistent stores keep metadata as JSON text (binary values and map keys
//! starting with `$` are escaped so that every [`Value`] comes back unchanged).
//!
//! # Threat model
//!
//! Keys are bearer secrets: whoever holds one is served. What the stores defend
//! against, and how:
//!
//! * **Guessing.** Keys come from the operating system's CSPRNG; a default
//!   key carries about 190 bits, far beyond any online or offline search.
//! * **Timing.** A lookup must not tell an attacker how close a guess came to
//!   a live key. No store compares a guess with stored keys character by
//!   character: each looks up a digest of the guess (SHA-256 in the persistent
//!   stores; a 128-bit SipHash keyed with a per-store random secret in
//!   [`MemoryKeyStore`]). Where a store then compares secrets, it does so in
//!   constant time (`subtle`): the memory store the key it found with the
//!   guess, SQLite the digest it found with the guess's; Redis compares
//!   nothing (the digest is the name of the Redis key). The time a lookup
//!   takes depends only on the digest, which is unrelated to how many
//!   characters a guess shares with a live key, so timing cannot be used to
//!   grow a guess character by character.
//! * **A stolen database or Redis dump.** Persistent stores keep SHA-256
//!   digests, never keys, so a copy of the data holds no usable key. The
//!   digest is unsalted on purpose (lookups need it deterministic); that is
//!   safe because keys are random and long, not chosen by people: there is no
//!   dictionary to try. [`list`](ApiKeyFactory::list) shows digests only.
//! * **Logs and debug output.** Stores, factories and filters never print a
//!   key: `Debug` shows counts or sizes, and a failed check is logged without
//!   the key.
//!
//! Out of scope: anyone who can write to the store (they can add keys), and
//! keys read off the wire (use TLS); metadata is stored in clear.

mod digest;
mod memory;
#[cfg(any(feature = "sqlite", feature = "redis"))]
mod metadata;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use asyncaproto::Value;

pub use self::memory::MemoryKeyStore;
#[cfg(feature = "redis")]
pub use self::redis::{RedisKeyStore, RedisKeyStoreBuilder};
#[cfg(feature = "sqlite")]
pub use self::sqlite::SqliteKeyStore;

/// The default length of a key, in characters (the original's `size=32`).
pub const DEFAULT_KEY_SIZE: usize = 32;

/// The characters keys are made of: ASCII letters and digits.
pub const KEY_ALPHABET: &[u8; 62] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// How many fresh keys [`ApiKeyFactory::issue`] and [`ApiKeyFactory::reissue`]
/// try before giving up with [`KeyError::Exhausted`] (only a tiny key size or a
/// broken store ever gets there).
const ATTEMPTS: usize = 16;

/// The future a [`KeyStore`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, KeyStoreError>> + Send + 'a>>;

/// A storage backend's failure.
///
/// ```
/// use asyncapy::keys::KeyStoreError;
///
/// let e = KeyStoreError::backend(std::io::Error::other("connection refused"));
/// assert_eq!(e.to_string(), "key store failed: connection refused");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// The backend failed: unreachable, I/O error, database error.
    #[error("key store failed: {0}")]
    Backend(#[source] Box<dyn StdError + Send + Sync + 'static>),
    /// The backend holds data it cannot read back (e.g. metadata that does not decode).
    #[error("key store holds unreadable data: {0}")]
    Corrupt(String),
    /// The backend did not answer in time (e.g. Redis unreachable without a
    /// refusal): the operation may or may not have taken effect.
    #[error("key store did not answer within {0:?}")]
    Timeout(Duration),
    /// The metadata cannot be stored by this backend (e.g. a non-finite float
    /// in a store that keeps JSON).
    #[error("metadata cannot be stored: {0}")]
    Metadata(String),
    /// The store does not offer this operation (e.g. [`KeyStore::list`] on a
    /// store that does not implement it).
    #[error("this key store cannot {0}")]
    Unsupported(&'static str),
}

impl KeyStoreError {
    /// A [`KeyStoreError::Backend`] from any error.
    ///
    /// ```
    /// use asyncapy::keys::KeyStoreError;
    /// let e = KeyStoreError::backend("timed out");
    /// assert!(matches!(e, KeyStoreError::Backend(_)));
    /// ```
    pub fn backend(error: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> KeyStoreError {
        KeyStoreError::Backend(error.into())
    }
}

/// Why an [`ApiKeyFactory`] operation failed.
///
/// ```
/// use asyncapy::keys::{ApiKeyFactory, KeyError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let factory = ApiKeyFactory::new();
/// let err = factory.get("no such key").await.unwrap_err();
/// assert!(matches!(err, KeyError::NotFound));
/// assert_eq!(err.to_string(), "no such API key");
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is not live: never issued, or revoked (Python's `KeyError`).
    #[error("no such API key")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] KeyStoreError),
    /// The operating system's random generator failed.
    #[error("cannot generate a key: {0}")]
    Entropy(#[source] io::Error),
    /// Every fresh key tried was already taken (the key size is too small for
    /// the number of keys, or the store always answers "taken").
    #[error("no free key after {ATTEMPTS} attempts: the key size is too small")]
    Exhausted,
}

/// What [`KeyStore::rename`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rename {
    /// The metadata moved to the new key; the old key is gone.
    Renamed,
    /// The old key is not live; nothing changed.
    NotFound,
    /// The new key is already taken; nothing changed.
    Taken,
}

/// A live key as [`KeyStore::list`] shows it: its digest, never the key.
///
/// ```
/// use asyncapy::keys::{key_digest, ApiKeyFactory};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), asyncapy::keys::KeyError> {
/// let factory = ApiKeyFactory::new();
/// let key = factory.issue("ada").await?;
/// let listed = factory.list().await?;
/// assert_eq!(listed.len(), 1);
/// assert_eq!(listed[0].digest, key_digest(&key));
/// assert_eq!(listed[0].metadata, "ada");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ListedKey {
    /// The SHA-256 digest of the key, in lowercase hex (see [`key_digest`]).
    pub digest: String,
    /// The key's metadata.
    pub metadata: Value,
}

impl ListedKey {
    /// A listed key from its digest (lowercase hex SHA-256) and metadata.
    ///
    /// ```
    /// use asyncapy::keys::{key_digest, ListedKey};
    /// let listed = ListedKey::new(key_digest("k"), ());
    /// assert!(listed.metadata.is_null());
    /// ```
    pub fn new(digest: impl Into<String>, metadata: impl Into<Value>) -> ListedKey {
        ListedKey {
            digest: digest.into(),
            metadata: metadata.into(),
        }
    }
}

/// The SHA-256 digest of `key` in lowercase hex: what persistent stores keep
/// instead of the key, and what [`ApiKeyFactory::list`] shows.
///
/// ```
/// assert_eq!(
///     asyncapy::keys::key_digest("abc"),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
pub fn key_digest(key: &str) -> String {
    digest::to_hex(&digest::digest(key))
}

/// Where an [`ApiKeyFactory`] keeps its keys and their metadata.
///
/// Methods return boxed futures so that backends can do I/O (SQLite, Redis).
/// A store that can answer [`contains`](KeyStore::contains) without waiting
/// also implements [`contains_now`](KeyStore::contains_now), which spares the
/// [`ApiKey`](crate::filters::ApiKey) filter a future (and its allocation) on
/// every packet.
///
/// The factory generates keys and gives the operations their meaning; a store
/// only stores. Every method must be safe to call concurrently, and
/// [`insert`](KeyStore::insert) and [`rename`](KeyStore::rename) must be atomic.
///
/// A store that answers at once:
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
///
/// use asyncapy::asyncaproto::Value;
/// use asyncapy::keys::{ApiKeyFactory, KeyStore, Rename, StoreFuture};
///
/// #[derive(Default)]
/// struct Simple(Mutex<HashMap<String, Value>>);
///
/// impl Simple {
///     fn with<T: Send + 'static>(&self, f: impl FnOnce(&mut HashMap<String, Value>) -> T) -> StoreFuture<'_, T> {
///         let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
///         let out = f(&mut map);
///         Box::pin(std::future::ready(Ok(out)))
///     }
/// }
///
/// impl KeyStore for Simple {
///     fn insert<'a>(&'a self, key: &'a str, metadata: Value) -> StoreFuture<'a, bool> {
///         self.with(|m| {
///             if m.contains_key(key) { return false; }
///             m.insert(key.to_owned(), metadata);
///             true
///         })
///     }
///     fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Value>> {
///         self.with(|m| m.get(key).cloned())
///     }
///     fn contains<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
///         self.with(|m| m.contains_key(key))
///     }
///     fn update<'a>(&'a self, key: &'a str, metadata: Value) -> StoreFuture<'a, bool> {
///         self.with(|m| m.get_mut(key).map(|v| *v = metadata).is_some())
///     }
///     fn remove<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
///         self.with(|m| m.remove(key).is_some())
///     }
///     fn rename<'a>(&'a self, old: &'a str, new: &'a str) -> StoreFuture<'a, Rename> {
///         self.with(|m| {
///             if m.contains_key(new) { return Rename::Taken; }
///             match m.remove(old) {
///                 Some(v) => { m.insert(new.to_owned(), v); Rename::Renamed }
///                 None => Rename::NotFound,
///             }
///         })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), asyncapy::keys::KeyError> {
/// let factory = ApiKeyFactory::with_store(Simple::default());
/// let key = factory.issue("metadata").await?;
/// assert_eq!(factory.get(&key).await?, "metadata");
/// # Ok(())
/// # }
/// ```
pub trait KeyStore: Send + Sync + 'static {
    /// Stores `metadata` under `key` unless `key` is live: `Ok(true)` when
    /// stored, `Ok(false)` (and nothing changed) when the key was taken.
    fn insert<'a>(&'a self, key: &'a str, metadata: Value) -> StoreFuture<'a, bool>;

    /// The metadata of `key`, `None` when it is not live.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Value>>;

    /// Whether `key` is live.
    fn contains<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool>;

    /// Replaces the metadata of `key`: `Ok(false)` when it is not live.
    fn update<'a>(&'a self, key: &'a str, metadata: Value) -> StoreFuture<'a, bool>;

    /// Removes `key`: `Ok(false)` when it was not live.
    fn remove<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool>;

    /// Moves the metadata of `old` to `new` and removes `old`, atomically:
    /// never both live, never neither.
    fn rename<'a>(&'a self, old: &'a str, new: &'a str) -> StoreFuture<'a, Rename>;

    /// The store's name in the metrics (`asyncapy_key_store_errors_total{store}`):
    /// `memory`, `sqlite`, `redis` for the stores of this crate, `custom` by default.
    fn name(&self) -> &'static str {
        "custom"
    }

    /// Whether `key` is live, if the store can tell without waiting; `None`
    /// (the default) when it needs I/O, and [`contains`](KeyStore::contains)
    /// is used instead.
    ///
    /// ```
    /// use asyncapy::keys::{KeyStore, MemoryKeyStore};
    /// assert!(matches!(MemoryKeyStore::new().contains_now("k"), Some(Ok(false))));
    /// ```
    fn contains_now(&self, key: &str) -> Option<Result<bool, KeyStoreError>> {
        let _ = key;
        None
    }

    /// The metadata of `key` at once (`Some(Ok(None))` when it is not
    /// live), for stores that need no I/O to tell; `None` means "ask
    /// [`KeyStore::get`]". The default is `None`.
    ///
    /// ```
    /// use asyncapy::keys::{KeyStore, MemoryKeyStore};
    /// assert!(matches!(MemoryKeyStore::new().get_now("k"), Some(Ok(None))));
    /// ```
    fn get_now(&self, key: &str) -> Option<Result<Option<Value>, KeyStoreError>> {
        let _ = key;
        None
    }

    /// Every live key, by digest (never the key), with its metadata, sorted
    /// by digest. The default answers [`KeyStoreError::Unsupported`]; the
    /// stores of this crate all implement it.
    ///
    /// ```
    /// use asyncapy::keys::{KeyStore, MemoryKeyStore};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), asyncapy::keys::KeyStoreError> {
    /// assert!(MemoryKeyStore::new().list().await?.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    fn list(&self) -> StoreFuture<'_, Vec<ListedKey>> {
        Box::pin(std::future::ready(Err(KeyStoreError::Unsupported(
            "list its keys",
        ))))
    }
}

/// Issues and manages API keys in a [`KeyStore`] (the original's
/// `asyncapy.util.APIKeyFactory`). See the [module docs](self) for the
/// mapping from Python.
///
/// Clones are cheap and share the store.
///
/// ```
/// use asyncapy::keys::{ApiKeyFactory, KeyError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), KeyError> {
/// let factory = ApiKeyFactory::new().with_size(40);
/// let key = factory.issue(()).await?; // no metadata: Python's `issue()`
/// assert_eq!(key.len(), 40);
/// assert!(factory.get(&key).await?.is_null());
/// # Ok(())
/// # }
/// ```
pub struct ApiKeyFactory<S: ?Sized = MemoryKeyStore> {
    store: Arc<S>,
    size: usize,
}

impl ApiKeyFactory<MemoryKeyStore> {
    /// A factory keeping its keys in memory, issuing 32-character keys
    /// (Python's `APIKeyFactory()`).
    ///
    /// ```
    /// let factory = asyncapy::keys::ApiKeyFactory::new();
    /// assert_eq!(factory.size(), 32);
    /// ```
    pub fn new() -> Self {
        ApiKeyFactory::with_store(MemoryKeyStore::new())
    }
}

impl Default for ApiKeyFactory<MemoryKeyStore> {
    fn default() -> Self {
        ApiKeyFactory::new()
    }
}

impl<S: KeyStore> ApiKeyFactory<S> {
    /// A factory over `store`, issuing 32-character keys.
    ///
    /// ```
    /// use asyncapy::keys::{ApiKeyFactory, MemoryKeyStore};
    /// let factory = ApiKeyFactory::with_store(MemoryKeyStore::new());
    /// assert_eq!(factory.size(), 32);
    /// ```
    pub fn with_store(store: S) -> Self {
        ApiKeyFactory::from_arc(Arc::new(store))
    }
}

impl<S: KeyStore + ?Sized> ApiKeyFactory<S> {
    /// A factory over a shared store, which may be a trait object.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use asyncapy::keys::{ApiKeyFactory, KeyStore, MemoryKeyStore};
    ///
    /// let store: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::new());
    /// let factory: ApiKeyFactory<dyn KeyStore> = ApiKeyFactory::from_arc(store);
    /// # let _ = factory;
    /// ```
    pub fn from_arc(store: Arc<S>) -> Self {
        ApiKeyFactory {
            store,
            size: DEFAULT_KEY_SIZE,
        }
    }

    /// Issues keys of `size` characters from now on (the original's `size`).
    ///
    /// # Panics
    ///
    /// When `size` is 0: an empty key is no key.
    ///
    /// ```
    /// let factory = asyncapy::keys::ApiKeyFactory::new().with_size(64);
    /// assert_eq!(factory.size(), 64);
    /// ```
    pub fn with_size(mut self, size: usize) -> Self {
        assert!(size > 0, "an API key must have at least one character");
        self.size = size;
        self
    }

    /// The length of the keys this factory issues.
    ///
    /// ```
    /// assert_eq!(asyncapy::keys::ApiKeyFactory::new().size(), 32);
    /// ```
    pub fn size(&self) -> usize {
        self.size
    }

    /// The store.
    ///
    /// ```
    /// use asyncapy::keys::ApiKeyFactory;
    /// let factory = ApiKeyFactory::new();
    /// assert!(factory.store().is_empty());
    /// ```
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The shared store.
    pub(crate) fn store_arc(&self) -> &Arc<S> {
        &self.store
    }

    /// Issues a new key carrying `metadata` (a [`Map`](asyncaproto::Map), any
    /// [`Value`], or `()` for none) and returns it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), asyncapy::keys::KeyError> {
    /// use asyncapy::asyncaproto::Map;
    /// let factory = asyncapy::keys::ApiKeyFactory::new();
    /// let key = factory.issue(Map::from_iter([("plan", "free")])).await?;
    /// assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn issue(&self, metadata: impl Into<Value>) -> Result<String, KeyError> {
        let metadata = metadata.into();
        for _ in 0..ATTEMPTS {
            let key = generate_key(self.size)?;
            if self.store.insert(&key, metadata.clone()).await? {
                return Ok(key);
            }
        }
        Err(KeyError::Exhausted)
    }

    /// The metadata of `key`; [`KeyError::NotFound`] when it is not live.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), asyncapy::keys::KeyError> {
    /// let factory = asyncapy::keys::ApiKeyFactory::new();
    /// let key = factory.issue(7).await?;
    /// assert_eq!(factory.get(&key).await?, 7);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get(&self, key: &str) -> Result<Value, KeyError> {
        self.store.get(key).await?.ok_or(KeyError::NotFound)
    }

    /// Revokes `key`; [`KeyError::NotFound`] when it is not live.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), asyncapy::keys::KeyError> {
    /// use asyncapy::keys::KeyError;
    /// let factory = asyncapy::keys::ApiKeyFactory::new();
    /// let key = factory.issue(()).await?;
    /// factory.revoke(&key).await?;
    /// assert!(matches!(factory.revoke(&key).await, Err(KeyError::NotFound)));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn revoke(&self, key: &str) -> Result<(), KeyError> {
        if self.store.remove(key).await? {
            Ok(())
        } else {
            Err(KeyError::NotFound)
        }
    }

    /// Replaces `key` with a new key carrying the same metadata, and returns
    /// the new key. The old key is revoked in the same step (the original left
    /// it live). [`KeyError::NotFound`] when `key` is not live.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), asyncapy::keys::KeyError> {
    /// let factory = asyncapy::keys::ApiKeyFactory::new();
    /// let old = factory.issue("meta").await?;
    /// let new = factory.reissue(&old).await?;
    /// assert_ne!(old, new);
    /// assert_eq!(factory.get(&new).await?, "meta");
    /// assert!(!factory.contains(&old).await?);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn reissue(&self, key: &str) -> Result<String, KeyError> {
        for _ in 0..ATTEMPTS {
            let new = generate_key(self.size)?;
            match self.store.rename(key, &new).await? {
                Rename::Renamed => return Ok(new),
                Rename::NotFound => return Err(KeyError::NotFound),
                Rename::Taken => {}
            }
        }
        Err(KeyError::Exhausted)
    }

    /// Replaces the metadata of `key`; [`KeyError::NotFound`] when it is not live.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), asyncapy::keys::KeyError> {
    /// use asyncapy::asyncaproto::Map;
    /// let factory = asyncapy::keys::ApiKeyFactory::new();
    /// let key = factory.issue(Map::from_iter([("plan", "free")])).await?;
    /// factory.update(&key, Map::from_iter([("plan", "pro")])).await?;
    /// assert_eq!(factory.get(&key).await?["plan"], "pro");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn update(&self, key: &str, metadata: impl Into<Value>) -> Result<(), KeyError> {
        if self.store.update(key, metadata.into()).await? {
            Ok(())
        } else {
            Err(KeyError::NotFound)
        }
    }

    /// Whether `key` is live (Python's `key in factory`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), asyncapy::keys::KeyError> {
    /// let factory = asyncapy::keys::ApiKeyFactory::new();
    /// let key = factory.issue(()).await?;
    /// assert!(factory.contains(&key).await?);
    /// assert!(!factory.contains("guess").await?);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn contains(&self, key: &str) -> Result<bool, KeyStoreError> {
        match self.store.contains_now(key) {
            Some(answer) => answer,
            None => self.store.contains(key).await,
        }
    }

    /// Every live key, by digest (never the key), with its metadata, sorted
    /// by digest (see [`KeyStore::list`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), asyncapy::keys::KeyError> {
    /// let factory = asyncapy::keys::ApiKeyFactory::new();
    /// factory.issue(1).await?;
    /// factory.issue(2).await?;
    /// assert_eq!(factory.list().await?.len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn list(&self) -> Result<Vec<ListedKey>, KeyError> {
        Ok(self.store.list().await?)
    }

    /// Whether `key` is live, if the store can tell without waiting (see
    /// [`KeyStore::contains_now`]).
    ///
    /// ```
    /// let factory = asyncapy::keys::ApiKeyFactory::new();
    /// assert!(matches!(factory.contains_now("guess"), Some(Ok(false))));
    /// ```
    pub fn contains_now(&self, key: &str) -> Option<Result<bool, KeyStoreError>> {
        self.store.contains_now(key)
    }
}

impl<S: ?Sized> Clone for ApiKeyFactory<S> {
    fn clone(&self) -> Self {
        ApiKeyFactory {
            store: Arc::clone(&self.store),
            size: self.size,
        }
    }
}

impl<S: ?Sized> fmt::Debug for ApiKeyFactory<S> {
    /// The key size only: keys are secrets and never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyFactory")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// A new random key of `size` letters and digits from the operating system's
/// cryptographic generator, each character uniform over [`KEY_ALPHABET`]
/// (random bytes of 248 or more are drawn again, so no character is favoured).
///
/// ```
/// let key = asyncapy::keys::generate_key(32)?;
/// assert_eq!(key.len(), 32);
/// assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
/// # Ok::<(), asyncapy::keys::KeyError>(())
/// ```
pub fn generate_key(size: usize) -> Result<String, KeyError> {
    // The largest multiple of 62 that fits a byte: bytes below it map evenly.
    const LIMIT: u8 = 62 * 4;
    let mut key = String::with_capacity(size);
    let mut random = [0u8; 64];
    while key.len() < size {
        getrandom::fill(&mut random).map_err(|e| KeyError::Entropy(io::Error::other(e)))?;
        for &byte in random.iter().filter(|&&b| b < LIMIT) {
            if key.len() == size {
                break;
            }
            key.push(char::from(KEY_ALPHABET[usize::from(byte % 62)]));
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn keys_have_the_size_and_alphabet() {
        for size in [1, 2, 31, 32, 33, 64, 65, 200] {
            let key = generate_key(size).unwrap();
            assert_eq!(key.len(), size);
            assert!(key.bytes().all(|b| KEY_ALPHABET.contains(&b)), "{key}");
        }
        assert_eq!(generate_key(0).unwrap(), "");
    }

    #[test]
    fn keys_are_unique() {
        let keys: HashSet<String> = (0..10_000).map(|_| generate_key(32).unwrap()).collect();
        assert_eq!(keys.len(), 10_000);
    }

    #[test]
    fn every_character_turns_up_roughly_evenly() {
        // 62 * 1000 characters: each is expected 1000 times; a biased mapping
        // (plain byte % 62) would give the first 8 characters ~1.25x as many.
        let text = generate_key(62_000).unwrap();
        let mut counts = [0usize; 256];
        for b in text.bytes() {
            counts[usize::from(b)] += 1;
        }
        for &c in KEY_ALPHABET {
            let n = counts[usize::from(c)];
            assert!(
                (800..1200).contains(&n),
                "{} appeared {n} times",
                char::from(c)
            );
        }
    }

    #[test]
    fn the_alphabet_is_letters_and_digits_once_each() {
        let set: HashSet<u8> = KEY_ALPHABET.iter().copied().collect();
        assert_eq!(set.len(), 62);
        assert!(KEY_ALPHABET.iter().all(u8::is_ascii_alphanumeric));
    }

    #[tokio::test]
    async fn reissue_revokes_the_old_key_and_keeps_the_metadata() {
        let factory = ApiKeyFactory::new();
        let old = factory.issue(Value::from("m")).await.unwrap();
        let new = factory.reissue(&old).await.unwrap();
        assert_ne!(old, new);
        assert!(!factory.contains(&old).await.unwrap());
        assert!(matches!(factory.get(&old).await, Err(KeyError::NotFound)));
        assert_eq!(factory.get(&new).await.unwrap(), "m");
        assert!(matches!(
            factory.reissue(&old).await,
            Err(KeyError::NotFound)
        ));
        assert_eq!(factory.store().len(), 1);
    }

    #[tokio::test]
    async fn a_one_character_factory_runs_out_of_keys() {
        let factory = ApiKeyFactory::new().with_size(1);
        let mut issued = HashSet::new();
        let mut exhausted = false;
        for _ in 0..1000 {
            match factory.issue(()).await {
                Ok(key) => assert!(issued.insert(key)),
                Err(KeyError::Exhausted) => {
                    exhausted = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(exhausted);
        assert!(issued.len() <= 62);
    }

    #[test]
    #[should_panic(expected = "at least one character")]
    fn size_zero_is_refused() {
        let _ = ApiKeyFactory::new().with_size(0);
    }

    #[test]
    fn debug_never_prints_keys() {
        let factory = ApiKeyFactory::new();
        assert_eq!(format!("{factory:?}"), "ApiKeyFactory { size: 32, .. }");
    }
}
