//! [`SqliteKeyStore`]: keys in an SQLite file, as SHA-256 digests, with JSON
//! metadata (feature `sqlite`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use asyncaproto::Value;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::digest::{digest, same_secret, to_hex, KeyDigest};
use super::metadata::{from_json, to_json};
use super::{KeyStore, KeyStoreError, ListedKey, Rename, StoreFuture};

/// The table's layout version, in SQLite's `user_version`.
const SCHEMA_VERSION: i64 = 1;

/// How long a statement waits for another connection's write lock (another
/// process writing the same file, such as `asyncapy keys`) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS asyncapy_api_keys (
        digest   BLOB PRIMARY KEY NOT NULL CHECK (length(digest) = 32),
        metadata TEXT NOT NULL
    ) WITHOUT ROWID;
";

/// API keys in an SQLite file: persistent, shared by every process that opens
/// the file (a server and `asyncapy keys`, say), safe under concurrent use.
///
/// * **Digests, never keys.** A key is stored as its SHA-256 digest (a
///   32-byte blob, the primary key), and found by looking that digest up, then
///   confirmed with a constant-time comparison. The file holds no usable key.
/// * **Metadata as JSON text**, readable with any SQLite tool (see the
///   [module docs](super#backends) for the two escapes that keep binary
///   values intact).
/// * **No cache.** Every check reads the file, so a key revoked by another
///   process (`asyncapy keys revoke`) is refused from the next packet on.
/// * **Concurrency.** One connection, behind a mutex, used from tokio's
///   blocking pool (`spawn_blocking`), so the async runtime never waits on
///   the disk. The file is in WAL mode (readers do not block the writer, nor
///   the writer the readers) with a busy timeout of 5 s for writers of other
///   processes. [`rename`](KeyStore::rename) (reissue) is one `IMMEDIATE`
///   transaction; every other write is a single statement.
/// * **Durability.** `synchronous = FULL`: a revocation that returned is on
///   disk, even across a power cut.
///
/// Operations must run inside a tokio runtime (they use `spawn_blocking`);
/// opening does not need one.
///
/// ```
/// use asyncapy::keys::{ApiKeyFactory, SqliteKeyStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("keys.db");
///
/// let factory = ApiKeyFactory::with_store(SqliteKeyStore::open(&path)?);
/// let key = factory.issue("ada").await?;
/// drop(factory);
///
/// // Reopened (a restart): the key is still live.
/// let factory = ApiKeyFactory::with_store(SqliteKeyStore::open(&path)?);
/// assert_eq!(factory.get(&key).await?, "ada");
/// # Ok(())
/// # }
/// ```
pub struct SqliteKeyStore {
    connection: Arc<Mutex<Connection>>,
    /// The file, `None` in memory.
    path: Option<PathBuf>,
}

impl SqliteKeyStore {
    /// Opens the key store in the SQLite file at `path`, creating the file
    /// and its table if needed. Fails (never panics) when the file cannot be
    /// opened or created, is not an SQLite database, or was written by a
    /// newer version of this crate.
    ///
    /// ```
    /// use asyncapy::keys::SqliteKeyStore;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = SqliteKeyStore::open(dir.path().join("keys.db")).unwrap();
    /// assert_eq!(store.path(), Some(dir.path().join("keys.db").as_path()));
    ///
    /// assert!(SqliteKeyStore::open(dir.path().join("no/such/dir/keys.db")).is_err());
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteKeyStore, KeyStoreError> {
        let path = path.as_ref();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let connection = Connection::open_with_flags(path, flags)
            .map_err(|e| KeyStoreError::backend(format!("cannot open {}: {e}", path.display())))?;
        SqliteKeyStore::setup(connection, Some(path.to_owned()))
    }

    /// A store in memory, gone when dropped (for tests and examples; a
    /// [`MemoryKeyStore`](super::MemoryKeyStore) is faster for real use).
    ///
    /// ```
    /// use asyncapy::keys::{ApiKeyFactory, SqliteKeyStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let factory = ApiKeyFactory::with_store(SqliteKeyStore::open_in_memory()?);
    /// let key = factory.issue(()).await?;
    /// assert!(factory.contains(&key).await?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn open_in_memory() -> Result<SqliteKeyStore, KeyStoreError> {
        let connection = Connection::open_in_memory().map_err(KeyStoreError::backend)?;
        SqliteKeyStore::setup(connection, None)
    }

    /// The file, `None` for a store in memory.
    ///
    /// ```
    /// let store = asyncapy::keys::SqliteKeyStore::open_in_memory().unwrap();
    /// assert_eq!(store.path(), None);
    /// ```
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn setup(
        connection: Connection,
        path: Option<PathBuf>,
    ) -> Result<SqliteKeyStore, KeyStoreError> {
        let failed = |e: rusqlite::Error| {
            let place = path.as_deref().map_or_else(
                || "an in-memory database".to_owned(),
                |p| p.display().to_string(),
            );
            KeyStoreError::backend(format!("cannot use {place} as a key store: {e}"))
        };
        connection.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
        // WAL is refused for in-memory databases (they answer "memory"):
        // nothing to check, the mode only matters for files.
        let _mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(failed)?;
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(failed)?;
        let version: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(failed)?;
        if version > SCHEMA_VERSION {
            return Err(KeyStoreError::Corrupt(format!(
                "key table version {version}, newer than this program's {SCHEMA_VERSION}"
            )));
        }
        connection.execute_batch(SCHEMA).map_err(failed)?;
        if version < SCHEMA_VERSION {
            connection
                .pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(failed)?;
        }
        Ok(SqliteKeyStore {
            connection: Arc::new(Mutex::new(connection)),
            path,
        })
    }

    /// Runs `work` on the connection in tokio's blocking pool.
    fn run<'a, T, F>(&'a self, work: F) -> StoreFuture<'a, T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, KeyStoreError> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                // Every write is one statement or one transaction, which
                // rusqlite rolls back if a panic unwinds through it: a
                // poisoned lock guards a consistent connection.
                let mut connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
                work(&mut connection)
            })
            .await
            .map_err(KeyStoreError::backend)?
        })
    }
}

fn db(e: rusqlite::Error) -> KeyStoreError {
    KeyStoreError::backend(e)
}

/// The metadata of the row of `digest`, if any, confirmed in constant time.
fn lookup(connection: &Connection, digest: &KeyDigest) -> Result<Option<String>, KeyStoreError> {
    let row: Option<(Vec<u8>, String)> = connection
        .prepare_cached("SELECT digest, metadata FROM asyncapy_api_keys WHERE digest = ?1")
        .map_err(db)?
        .query_row(params![&digest[..]], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
        .map_err(db)?;
    Ok(row
        .filter(|(stored, _)| same_secret(stored, digest))
        .map(|(_, metadata)| metadata))
}

impl KeyStore for SqliteKeyStore {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn insert<'a>(&'a self, key: &'a str, metadata: Value) -> StoreFuture<'a, bool> {
        let digest = digest(key);
        let text = match to_json(&metadata) {
            Ok(text) => text,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        self.run(move |connection| {
            let inserted = connection
                .prepare_cached(
                    "INSERT INTO asyncapy_api_keys (digest, metadata) VALUES (?1, ?2)
                     ON CONFLICT (digest) DO NOTHING",
                )
                .map_err(db)?
                .execute(params![&digest[..], text])
                .map_err(db)?;
            Ok(inserted == 1)
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Value>> {
        let digest = digest(key);
        self.run(move |connection| {
            lookup(connection, &digest)?
                .map(|text| from_json(&text))
                .transpose()
        })
    }

    fn contains<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        let digest = digest(key);
        self.run(move |connection| {
            let stored: Option<Vec<u8>> = connection
                .prepare_cached("SELECT digest FROM asyncapy_api_keys WHERE digest = ?1")
                .map_err(db)?
                .query_row(params![&digest[..]], |row| row.get(0))
                .optional()
                .map_err(db)?;
            Ok(stored.is_some_and(|stored| same_secret(&stored, &digest)))
        })
    }

    fn update<'a>(&'a self, key: &'a str, metadata: Value) -> StoreFuture<'a, bool> {
        let digest = digest(key);
        let text = match to_json(&metadata) {
            Ok(text) => text,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        self.run(move |connection| {
            let updated = connection
                .prepare_cached("UPDATE asyncapy_api_keys SET metadata = ?2 WHERE digest = ?1")
                .map_err(db)?
                .execute(params![&digest[..], text])
                .map_err(db)?;
            Ok(updated == 1)
        })
    }

    fn remove<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        let digest = digest(key);
        self.run(move |connection| {
            let removed = connection
                .prepare_cached("DELETE FROM asyncapy_api_keys WHERE digest = ?1")
                .map_err(db)?
                .execute(params![&digest[..]])
                .map_err(db)?;
            Ok(removed == 1)
        })
    }

    fn rename<'a>(&'a self, old: &'a str, new: &'a str) -> StoreFuture<'a, Rename> {
        let (old, new) = (digest(old), digest(new));
        self.run(move |connection| {
            // IMMEDIATE: the write lock is taken first, so no other
            // connection (another process) changes either row in between.
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            if lookup(&transaction, &new)?.is_some() {
                return Ok(Rename::Taken);
            }
            let moved = transaction
                .prepare_cached("UPDATE asyncapy_api_keys SET digest = ?2 WHERE digest = ?1")
                .map_err(db)?
                .execute(params![&old[..], &new[..]])
                .map_err(db)?;
            if moved == 0 {
                return Ok(Rename::NotFound);
            }
            transaction.commit().map_err(db)?;
            Ok(Rename::Renamed)
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<ListedKey>> {
        self.run(|connection| {
            let mut statement = connection
                .prepare_cached("SELECT digest, metadata FROM asyncapy_api_keys ORDER BY digest")
                .map_err(db)?;
            let rows = statement
                .query_map([], |row| {
                    Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, String>(1)?))
                })
                .map_err(db)?;
            let mut listed = Vec::new();
            for row in rows {
                let (digest, text) = row.map_err(db)?;
                listed.push(ListedKey::new(to_hex(&digest), from_json(&text)?));
            }
            Ok(listed)
        })
    }
}

impl fmt::Debug for SqliteKeyStore {
    /// The file only: keys are secrets and never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteKeyStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(store: &SqliteKeyStore) -> std::sync::MutexGuard<'_, Connection> {
        store.connection.lock().unwrap()
    }

    #[tokio::test]
    async fn rows_hold_the_digest_and_json_never_the_key() {
        let store = SqliteKeyStore::open_in_memory().unwrap();
        let metadata = Value::from(asyncaproto::Map::from_iter([("user", "ada")]));
        assert!(store.insert("the-key", metadata).await.unwrap());
        let (stored, text): (Vec<u8>, String) = raw(&store)
            .query_row(
                "SELECT digest, metadata FROM asyncapy_api_keys",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(stored, digest("the-key"));
        assert_eq!(text, r#"{"user": "ada"}"#);
    }

    #[tokio::test]
    async fn a_row_that_is_not_json_is_corrupt_not_a_panic() {
        let store = SqliteKeyStore::open_in_memory().unwrap();
        raw(&store)
            .execute(
                "INSERT INTO asyncapy_api_keys VALUES (?1, '{not json')",
                params![&digest("k")[..]],
            )
            .unwrap();
        assert!(store.contains("k").await.unwrap());
        assert!(matches!(
            store.get("k").await,
            Err(KeyStoreError::Corrupt(_))
        ));
        assert!(matches!(store.list().await, Err(KeyStoreError::Corrupt(_))));
        assert!(store.remove("k").await.unwrap());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.db");
        drop(SqliteKeyStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 2)
            .unwrap();
        let err = SqliteKeyStore::open(&path).unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let err = SqliteKeyStore::open(&path).unwrap_err();
        assert!(err.to_string().contains("notes.txt"), "{err}");
    }

    #[test]
    fn files_are_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteKeyStore::open(dir.path().join("keys.db")).unwrap();
        let mode: String = raw(&store)
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert!(format!("{store:?}").contains("keys.db"));
    }
}
