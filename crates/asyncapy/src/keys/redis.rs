//! [`RedisKeyStore`]: keys in Redis, as SHA-256 digests, with JSON metadata,
//! shared by every server that points at the same Redis (feature `redis`).

use std::fmt;
use std::time::Duration;

use ::redis::{Cmd, FromRedisValue};
use asyncaproto::Value;

use super::digest::{digest, from_hex, to_hex};
use super::metadata::{from_json, to_json};
use super::{KeyStore, KeyStoreError, ListedKey, Rename, StoreFuture};
use crate::redis_conn::{QueryError, RedisConn};

/// Moves `KEYS[1]` to `KEYS[2]` unless `KEYS[2]` exists: 0 moved, 1 no
/// `KEYS[1]`, 2 `KEYS[2]` taken. A script runs atomically in Redis.
const RENAME_SCRIPT: &str = "
if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
local metadata = redis.call('GET', KEYS[1])
if not metadata then return 1 end
redis.call('SET', KEYS[2], metadata)
redis.call('DEL', KEYS[1])
return 0
";

/// How many keys one `SCAN` or `MGET` of [`KeyStore::list`] asks for.
const LIST_BATCH: usize = 500;

/// API keys in Redis, for several servers sharing one key set.
///
/// * **Layout.** A key is the Redis string `PREFIX` + the lowercase hex
///   SHA-256 digest of the key, holding its metadata as JSON text (see the
///   [module docs](super#backends)); the prefix defaults to
///   [`RedisKeyStore::DEFAULT_PREFIX`]. Redis holds no usable key. A lookup is a Redis hash
///   lookup of the digest: nothing secret is compared.
/// * **Atomic.** [`insert`](KeyStore::insert) is `SET NX`,
///   [`update`](KeyStore::update) `SET XX`, [`rename`](KeyStore::rename)
///   (reissue) one Lua script: atomic across every server.
/// * **Bounded.** Every operation is bounded by a [timeout](RedisKeyStoreBuilder::timeout)
///   (default 2 s): an unreachable or stuck Redis is a [`KeyStoreError`],
///   never a hang, and the [`ApiKey`](crate::filters::ApiKey) filter treats
///   it as "not authorised".
/// * **Reconnects.** One multiplexed connection (a redis-rs
///   `ConnectionManager`) shared by all tasks, re-established in the
///   background when it drops; an operation whose connection attempt was
///   refused tries once more on the new connection (it was never sent, so
///   that is safe), so the first operation after Redis comes back succeeds.
/// * **No cache.** A key revoked by any server is refused everywhere from the
///   next packet on.
///
/// ```no_run
/// use std::time::Duration;
/// use asyncapy::keys::{ApiKeyFactory, RedisKeyStore};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisKeyStore::builder("redis://127.0.0.1:6379/0")
///     .prefix("myapp:keys:")
///     .timeout(Duration::from_millis(500))
///     .connect()
///     .await?;
/// let factory = ApiKeyFactory::with_store(store);
/// let key = factory.issue("ada").await?; // every server on this Redis accepts it
/// # let _ = key;
/// # Ok(())
/// # }
/// ```
pub struct RedisKeyStore {
    /// The connection, and where it goes (host and port, never a password).
    conn: RedisConn,
    prefix: String,
    timeout: Duration,
}

/// Options of a [`RedisKeyStore`]: [`RedisKeyStore::builder`].
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> Result<(), asyncapy::keys::KeyStoreError> {
/// let store = asyncapy::keys::RedisKeyStore::builder("redis://127.0.0.1/2")
///     .prefix("staging:keys:")
///     .connect()
///     .await?;
/// assert_eq!(store.prefix(), "staging:keys:");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RedisKeyStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
}

impl RedisKeyStoreBuilder {
    /// What every Redis key of the store starts with (default
    /// [`RedisKeyStore::DEFAULT_PREFIX`]). Stores with different prefixes on one Redis hold
    /// separate key sets.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long any operation may take, connecting included (default
    /// [`RedisKeyStore::DEFAULT_TIMEOUT`]), before it fails with [`KeyStoreError::Timeout`].
    ///
    /// # Panics
    ///
    /// When `timeout` is zero.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        assert!(
            !timeout.is_zero(),
            "a Redis key store needs a timeout above zero"
        );
        self.timeout = timeout;
        self
    }

    /// Connects, and checks that Redis answers (`PING`) within the timeout:
    /// a wrong URL or an unreachable Redis is an error here, at start-up.
    /// Must run inside a tokio runtime.
    pub async fn connect(self) -> Result<RedisKeyStore, KeyStoreError> {
        let store = self.connect_lazy()?;
        store.ping().await?;
        Ok(store)
    }

    /// The store, without connecting yet: the first operation connects.
    /// Fails only on a malformed URL. Must be called inside a tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use asyncapy::keys::RedisKeyStore;
    /// // Nothing listens there: creating the store still works, operations fail.
    /// let store = RedisKeyStore::builder("redis://127.0.0.1:1").connect_lazy().unwrap();
    /// assert!(store.ping().await.is_err());
    /// assert!(RedisKeyStore::builder("http://example").connect_lazy().is_err());
    /// # }
    /// ```
    pub fn connect_lazy(self) -> Result<RedisKeyStore, KeyStoreError> {
        let conn = RedisConn::open(&self.url, self.timeout).map_err(KeyStoreError::backend)?;
        Ok(RedisKeyStore {
            conn,
            prefix: self.prefix,
            timeout: self.timeout,
        })
    }
}

impl RedisKeyStore {
    /// What Redis keys start with unless [`RedisKeyStoreBuilder::prefix`] says otherwise.
    pub const DEFAULT_PREFIX: &'static str = "asyncapy:keys:";

    /// How long an operation may take unless [`RedisKeyStoreBuilder::timeout`]
    /// says otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

    /// Connects to the Redis at `url` (`redis://[:PASSWORD@]HOST[:PORT][/DB]`,
    /// or `rediss://`, `unix://`) with the default prefix and timeout. See
    /// [`RedisKeyStoreBuilder::connect`].
    ///
    /// ```no_run
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), asyncapy::keys::KeyStoreError> {
    /// let store = asyncapy::keys::RedisKeyStore::connect("redis://127.0.0.1:6379").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<RedisKeyStore, KeyStoreError> {
        RedisKeyStore::builder(url).connect().await
    }

    /// Options for a store on the Redis at `url`.
    ///
    /// ```
    /// let builder = asyncapy::keys::RedisKeyStore::builder("redis://127.0.0.1:6379/0");
    /// # let _ = builder;
    /// ```
    pub fn builder(url: impl Into<String>) -> RedisKeyStoreBuilder {
        RedisKeyStoreBuilder {
            url: url.into(),
            prefix: RedisKeyStore::DEFAULT_PREFIX.to_owned(),
            timeout: RedisKeyStore::DEFAULT_TIMEOUT,
        }
    }

    /// What the store's Redis keys start with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// How long an operation may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Checks that Redis answers, within the timeout.
    pub async fn ping(&self) -> Result<(), KeyStoreError> {
        let _: String = self.query(&::redis::cmd("PING")).await?;
        Ok(())
    }

    /// The Redis key of `key`.
    fn entry(&self, key: &str) -> String {
        let mut name = String::with_capacity(self.prefix.len() + 64);
        name.push_str(&self.prefix);
        name.push_str(&to_hex(&digest(key)));
        name
    }

    /// Sends `command`, within the timeout.
    async fn query<T: FromRedisValue>(&self, command: &Cmd) -> Result<T, KeyStoreError> {
        self.conn.query(command).await.map_err(|e| match e {
            QueryError::Timeout { timeout, .. } => KeyStoreError::Timeout(timeout),
            QueryError::Redis(message) => KeyStoreError::backend(message),
        })
    }
}

/// A future answering `result` at once.
fn ready<'a, T: Send + 'a>(result: Result<T, KeyStoreError>) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(result))
}

/// `text` with Redis glob characters escaped, for `SCAN MATCH`.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl RedisKeyStore {
    /// `SET` the key's metadata under `condition` (`NX`: only a new key, for
    /// insert; `XX`: only an existing one, for update); whether it was set.
    fn set<'a>(
        &'a self,
        key: &'a str,
        metadata: &Value,
        condition: &'static str,
    ) -> StoreFuture<'a, bool> {
        let text = match to_json(metadata) {
            Ok(text) => text,
            Err(e) => return ready(Err(e)),
        };
        Box::pin(async move {
            let command = ::redis::cmd("SET")
                .arg(self.entry(key))
                .arg(text)
                .arg(condition)
                .to_owned();
            let set: Option<String> = self.query(&command).await?;
            Ok(set.is_some())
        })
    }
}

impl KeyStore for RedisKeyStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn insert<'a>(&'a self, key: &'a str, metadata: Value) -> StoreFuture<'a, bool> {
        self.set(key, &metadata, "NX")
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Value>> {
        Box::pin(async move {
            let text: Option<String> = self.query(::redis::cmd("GET").arg(self.entry(key))).await?;
            text.map(|text| from_json(&text)).transpose()
        })
    }

    fn contains<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let count: u64 = self
                .query(::redis::cmd("EXISTS").arg(self.entry(key)))
                .await?;
            Ok(count == 1)
        })
    }

    fn update<'a>(&'a self, key: &'a str, metadata: Value) -> StoreFuture<'a, bool> {
        self.set(key, &metadata, "XX")
    }

    fn remove<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let removed: u64 = self.query(::redis::cmd("DEL").arg(self.entry(key))).await?;
            Ok(removed == 1)
        })
    }

    fn rename<'a>(&'a self, old: &'a str, new: &'a str) -> StoreFuture<'a, Rename> {
        Box::pin(async move {
            let command = ::redis::cmd("EVAL")
                .arg(RENAME_SCRIPT)
                .arg(2)
                .arg(self.entry(old))
                .arg(self.entry(new))
                .to_owned();
            match self.query::<i64>(&command).await? {
                0 => Ok(Rename::Renamed),
                1 => Ok(Rename::NotFound),
                2 => Ok(Rename::Taken),
                other => Err(KeyStoreError::Corrupt(format!(
                    "the rename script answered {other}"
                ))),
            }
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<ListedKey>> {
        Box::pin(async move {
            let pattern = format!("{}*", glob_escape(&self.prefix));
            let mut names = Vec::new();
            let mut cursor = 0u64;
            loop {
                let command = ::redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(LIST_BATCH)
                    .to_owned();
                let (next, batch): (u64, Vec<String>) = self.query(&command).await?;
                names.extend(batch.into_iter().filter(|name| {
                    name.strip_prefix(&self.prefix)
                        .is_some_and(|hex| hex.len() == 64 && from_hex(hex).is_some())
                }));
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            // SCAN may return a name twice.
            names.sort_unstable();
            names.dedup();
            let mut listed = Vec::with_capacity(names.len());
            for chunk in names.chunks(LIST_BATCH) {
                let texts: Vec<Option<String>> =
                    self.query(::redis::cmd("MGET").arg(chunk)).await?;
                for (name, text) in chunk.iter().zip(texts) {
                    // A key revoked since the scan is simply not listed.
                    if let Some(text) = text {
                        let digest = name[self.prefix.len()..].to_ascii_lowercase();
                        listed.push(ListedKey::new(digest, from_json(&text)?));
                    }
                }
            }
            Ok(listed)
        })
    }
}

impl fmt::Debug for RedisKeyStore {
    /// Where it connects, its prefix and timeout: never a key or a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisKeyStore")
            .field("address", &self.conn.address())
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("a:b:"), "a:b:");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[tokio::test]
    async fn entries_are_prefix_and_hex_digest() {
        let store = RedisKeyStore::builder("redis://127.0.0.1:1")
            .prefix("p:")
            .connect_lazy()
            .unwrap();
        assert_eq!(
            store.entry("abc"),
            "p:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let debug = format!("{store:?}");
        assert!(
            debug.contains("127.0.0.1:1") && debug.contains("p:"),
            "{debug}"
        );
    }

    #[tokio::test]
    async fn passwords_stay_out_of_debug_output() {
        let store = RedisKeyStore::builder("redis://:hunter2@127.0.0.1:1/0")
            .connect_lazy()
            .unwrap();
        assert!(!format!("{store:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn nothing_listening_is_a_prompt_error() {
        let store = RedisKeyStore::builder("redis://127.0.0.1:1")
            .timeout(Duration::from_secs(5))
            .connect_lazy()
            .unwrap();
        let started = std::time::Instant::now();
        let err = store.contains("k").await.unwrap_err();
        assert!(matches!(err, KeyStoreError::Backend(_)), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        let err = RedisKeyStore::builder("redis://127.0.0.1:1")
            .connect()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    }
}
