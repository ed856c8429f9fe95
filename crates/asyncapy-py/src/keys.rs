//! Key sets and engine key stores offered to Python, and the `Ip` filter's address set.

use super::*;

/// The key membership of a Python `APIKeyFactory`, mirrored for the engine.
#[pyclass(frozen, module = "asyncapy._engine")]
pub(crate) struct KeySet {
    pub(crate) keys: Arc<RwLock<HashSet<String>>>,
}

#[pymethods]
impl KeySet {
    #[new]
    fn new() -> KeySet {
        KeySet {
            keys: Arc::new(RwLock::new(HashSet::new())),
        }
    }

    /// Replaces the whole set.
    fn replace(&self, keys: Vec<String>) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys.into_iter().collect();
    }

    /// Adds one key.
    fn add(&self, key: String) {
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key);
    }

    /// Removes one key (absent: nothing happens).
    fn discard(&self, key: &str) {
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    fn __contains__(&self, key: &str) -> bool {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(key)
    }

    fn __len__(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// An API key factory over one of the engine's stores (SQLite, Redis): what
/// `asyncapy.util.SQLiteAPIKeyFactory` and `RedisAPIKeyFactory` wrap. Its
/// methods block (the GIL released) on a runtime of its own; in a handler, run
/// them with `await server.run_sync_task(...)`.
#[pyclass(frozen, module = "asyncapy._engine")]
pub(crate) struct StoreKeys {
    pub(crate) factory: ApiKeyFactory<dyn KeyStore>,
    pub(crate) runtime: tokio::runtime::Runtime,
}

pub(crate) fn key_error(error: KeyError) -> PyErr {
    match error {
        KeyError::NotFound => PyKeyError::new_err("no such API key"),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

pub(crate) fn store_runtime() -> PyResult<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("asyncapy-keys")
        .enable_all()
        .build()?)
}

#[pymethods]
impl StoreKeys {
    /// A factory over the SQLite file at `path` (created if missing).
    #[staticmethod]
    #[pyo3(signature = (path, size=32))]
    fn sqlite(path: std::path::PathBuf, size: usize) -> PyResult<StoreKeys> {
        let store = SqliteKeyStore::open(path).map_err(|e| PyOSError::new_err(e.to_string()))?;
        let store: Arc<dyn KeyStore> = Arc::new(store);
        Ok(StoreKeys {
            factory: ApiKeyFactory::from_arc(store).with_size(size),
            runtime: store_runtime()?,
        })
    }

    /// A factory over the Redis at `url` (`redis://[:PASSWORD@]HOST[:PORT][/DB]`).
    #[staticmethod]
    #[pyo3(signature = (url, size=32))]
    fn redis(py: Python<'_>, url: &str, size: usize) -> PyResult<StoreKeys> {
        let runtime = store_runtime()?;
        let store = py
            .detach(|| runtime.block_on(RedisKeyStore::connect(url)))
            .map_err(|e| PyOSError::new_err(e.to_string()))?;
        let store: Arc<dyn KeyStore> = Arc::new(store);
        Ok(StoreKeys {
            factory: ApiKeyFactory::from_arc(store).with_size(size),
            runtime,
        })
    }

    /// Issues a key with `metadata` (JSON-like values); returns it.
    #[pyo3(signature = (metadata=None))]
    fn issue(&self, py: Python<'_>, metadata: Option<&Bound<'_, PyAny>>) -> PyResult<String> {
        let metadata = match metadata {
            Some(m) => to_value(m, 0)?,
            None => Value::Null,
        };
        py.detach(|| self.runtime.block_on(self.factory.issue(metadata)))
            .map_err(key_error)
    }

    /// The metadata of `key` (`KeyError` when it is not a live key).
    fn get<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        let value = py
            .detach(|| self.runtime.block_on(self.factory.get(key)))
            .map_err(key_error)?;
        to_py(py, &value)
    }

    /// Replaces the metadata of `key` (`KeyError` when it is not a live key).
    fn update(&self, py: Python<'_>, key: &str, metadata: &Bound<'_, PyAny>) -> PyResult<()> {
        let metadata = to_value(metadata, 0)?;
        py.detach(|| self.runtime.block_on(self.factory.update(key, metadata)))
            .map_err(key_error)
    }

    /// Revokes `key` and issues a new one with its metadata.
    fn reissue(&self, py: Python<'_>, key: &str) -> PyResult<String> {
        py.detach(|| self.runtime.block_on(self.factory.reissue(key)))
            .map_err(key_error)
    }

    /// Revokes `key` (`KeyError` when it is not a live key).
    fn revoke(&self, py: Python<'_>, key: &str) -> PyResult<()> {
        py.detach(|| self.runtime.block_on(self.factory.revoke(key)))
            .map_err(key_error)
    }

    fn __contains__(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        py.detach(|| self.runtime.block_on(self.factory.contains(key)))
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }
}

/// The address set of a `Filters.Ip`, checked by the engine.
#[pyclass(frozen, module = "asyncapy._engine")]
pub(crate) struct IpSet {
    pub(crate) ip: Ip,
}

#[pymethods]
impl IpSet {
    #[new]
    fn new(entries: Vec<String>) -> PyResult<IpSet> {
        let ip = Ip::new(entries).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(IpSet { ip })
    }

    /// Replaces the addresses.
    fn replace(&self, entries: Vec<String>) -> PyResult<()> {
        self.ip
            .handle()
            .replace(entries)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    fn __contains__(&self, address: &str) -> bool {
        address.parse().is_ok_and(|ip| self.ip.contains(ip))
    }
}
