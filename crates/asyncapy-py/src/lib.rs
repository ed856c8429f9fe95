//! `asyncapy._engine`: the Rust engine under the Python `asyncapy` package.
//!
//! The engine is an [`asyncapy::Server`] on its own tokio runtime. Every
//! Python handler is registered as a Rust route (same group, same filters,
//! in the same order), so dispatch, limits, timeouts, refusals and the wire
//! are all Rust. A route's handler does not run Python: it pushes a plain
//! Rust `Event` onto a queue and waits for its outcome.
//!
//! ```text
//! tokio threads (no GIL, ever)              the trio thread (holds the GIL)
//! ─────────────────────────────             ───────────────────────────────
//! route handler / Python filter
//!   push Event::Job { id, Client, Packet }
//!   if armed.swap(false): write 1 byte ──▶ wait_readable(fd) wakes
//!   await oneshot(id)                        drain(): read bytes, armed = true,
//!                                            take the batch, build Python values
//!                                            run handlers as trio tasks
//!   ◀── finish(id, outcome) ──────────────── (sends go to the outbox at call time)
//!   handler future dropped (timeout)
//!   push Event::Cancel(id) ──────────────▶  cancel the task's CancelScope
//! ```
//!
//! No `Py<T>` is ever stored where a tokio thread could drop it: the queue,
//! the pending table and the filters hold Rust values only. The log goes the
//! same way: a `tracing` layer turns engine records into `Event::Log`, and
//! the trio thread hands them to Python's `logging`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use asyncapy::asyncaproto::{Encoding, Map, Value};
use asyncapy::filters::{ApiKey, Check, Filter, Ip};
use asyncapy::keys::{ApiKeyFactory, KeyError, KeyStore, RedisKeyStore, SqliteKeyStore};
use asyncapy::{Client, Config, Packet, Server, ServerHandle};
use pyo3::exceptions::{PyKeyError, PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use tokio::sync::oneshot;

/// Most log records held for Python; beyond that, records are dropped (the
/// trio thread is blocked and the log would grow without bound).
const MAX_LOG_BACKLOG: usize = 10_000;

/// What the engine tells the trio thread. Rust values only.
enum Event {
    /// Run Python handler `handler` for this packet; answer with `finish(id, ..)`.
    Job {
        id: u64,
        handler: usize,
        client: Client,
        packet: Packet,
    },
    /// Check Python filter `filter`; answer with `finish(id, ..)`.
    Filter {
        id: u64,
        filter: usize,
        client: Client,
        packet: Packet,
    },
    /// The job or filter check `id` was given up on (timeout, closed session): cancel it.
    Cancel(u64),
    /// A log record of the engine.
    Log {
        level: u8,
        session: Option<String>,
        message: String,
        created: f64,
    },
    /// The server has stopped: every session is closed.
    Stopped,
}

/// How a job or a filter check ended, as Python reports it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    /// The handler returned.
    Done,
    /// The handler raised `StopPropagation`.
    Stop,
    /// The handler raised (its traceback is logged on the Python side).
    Failed,
    /// A filter matched.
    Pass,
    /// A filter did not match (or raised).
    Fail,
}

impl Outcome {
    fn from_code(code: u8) -> PyResult<Outcome> {
        Ok(match code {
            0 => Outcome::Done,
            1 => Outcome::Stop,
            2 => Outcome::Failed,
            3 => Outcome::Pass,
            4 => Outcome::Fail,
            _ => return Err(PyValueError::new_err("unknown outcome code")),
        })
    }
}

/// What the trio thread hands back to the engine: applied in order, in one
/// tokio task, after the trio thread calls `flush` (once per scheduling batch).
enum Out {
    /// `client.send(payload, close)`.
    Send {
        client: Client,
        map: Map,
        close: bool,
    },
    /// `client.close()`.
    Close(Client),
    /// A job's or a filter check's outcome.
    Finish(oneshot::Sender<Outcome>, Outcome),
}

/// The queue between the engine and the trio thread, with its wakeup.
struct Shared {
    /// Sends and outcomes from the trio thread, waiting for `flush`.
    outgoing: Mutex<Vec<Out>>,
    /// Wakes the task that applies `outgoing`.
    flush: tokio::sync::Notify,
    queue: Mutex<VecDeque<Event>>,
    logs: AtomicU64,
    /// True when the trio side may be asleep: the next push writes a wake byte.
    armed: AtomicBool,
    wake_tx: UnixStream,
    wake_rx: UnixStream,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Outcome>>>,
}

impl Shared {
    fn new() -> std::io::Result<Shared> {
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        Ok(Shared {
            outgoing: Mutex::new(Vec::new()),
            flush: tokio::sync::Notify::new(),
            queue: Mutex::new(VecDeque::new()),
            logs: AtomicU64::new(0),
            armed: AtomicBool::new(true),
            wake_tx,
            wake_rx,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
        })
    }

    fn wake(&self) {
        // Non-blocking: a full socket already means "the trio side will wake".
        let _ = (&self.wake_tx).write(&[1u8]);
    }

    fn push(&self, event: Event) {
        let is_log = matches!(event, Event::Log { .. });
        {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            if is_log {
                if self.logs.load(Ordering::Relaxed) >= MAX_LOG_BACKLOG as u64 {
                    return;
                }
                self.logs.fetch_add(1, Ordering::Relaxed);
            }
            queue.push_back(event);
        }
        if self.armed.swap(false, Ordering::AcqRel) {
            self.wake();
        }
    }

    fn hand_back(&self, out: Out) {
        self.outgoing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(out);
    }

    /// Applies what the trio thread handed back, in order, on a tokio task:
    /// the wakes it causes are local to the runtime, and the trio thread paid
    /// one cross-thread wake (`flush`) for the whole batch.
    async fn apply_outgoing(self: Arc<Shared>) {
        loop {
            self.flush.notified().await;
            let batch =
                std::mem::take(&mut *self.outgoing.lock().unwrap_or_else(PoisonError::into_inner));
            for out in batch {
                match out {
                    Out::Send { client, map, close } => match client.try_send(&map) {
                        Ok(()) => {
                            if close {
                                client.session().close();
                            }
                        }
                        Err(asyncapy::SendError::Full) => {
                            // The peer is not reading: wait for room (in order
                            // with later sends of this session only roughly).
                            tokio::spawn(async move {
                                let _ = if close {
                                    client.send_and_close(&map).await
                                } else {
                                    client.send(&map).await
                                };
                            });
                        }
                        Err(_) => {}
                    },
                    Out::Close(client) => client.session().close(),
                    Out::Finish(tx, outcome) => {
                        let _ = tx.send(outcome);
                    }
                }
            }
        }
    }

    /// Registers a job or check: its id and the receiver of its outcome.
    fn register(&self) -> (u64, oneshot::Receiver<Outcome>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, tx);
        (id, rx)
    }

    /// Runs `event` (made with the id) on the Python side and waits for its
    /// outcome; `None` when the engine stopped first. Dropped before the
    /// outcome (a timeout), it has the Python side cancel the work.
    async fn call(self: &Arc<Shared>, event: impl FnOnce(u64) -> Event) -> Option<Outcome> {
        let (id, rx) = self.register();
        let mut guard = CancelGuard {
            shared: self.clone(),
            id,
            armed: true,
        };
        self.push(event(id));
        let outcome = rx.await.ok();
        guard.armed = false;
        outcome
    }
}

/// Cancels a job on the Python side when the future waiting for it is dropped.
struct CancelGuard {
    shared: Arc<Shared>,
    id: u64,
    armed: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if self.armed {
            self.shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&self.id);
            self.shared.push(Event::Cancel(self.id));
        }
    }
}

/// An error a Python handler ended with (its traceback is in the log).
#[derive(Debug)]
struct PythonHandlerFailed;

impl std::fmt::Display for PythonHandlerFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the Python handler raised an exception")
    }
}

impl std::error::Error for PythonHandlerFailed {}

/// A filter checked in Python, at its turn, on the trio thread.
struct PythonFilter {
    shared: Arc<Shared>,
    filter: usize,
}

impl Filter for PythonFilter {
    fn check(&self, client: &Client, packet: &Packet) -> Check {
        let shared = self.shared.clone();
        let filter = self.filter;
        let client = client.clone();
        let packet = packet.clone();
        Check::later(async move {
            let outcome = shared
                .call(|id| Event::Filter {
                    id,
                    filter,
                    client,
                    packet,
                })
                .await;
            outcome == Some(Outcome::Pass)
        })
    }
}

/// `Filters.Fields` checked in Rust with the original's semantics: the
/// payload's keys are exactly the named ones, and each pattern matches a
/// *prefix* of the value's Python `str()` (`re.match`). A value whose
/// `str()` Rust does not render (a float, a list, a dict) is left to the
/// same filter in Python.
struct PrefixFields {
    fields: Vec<(String, Option<regex::Regex>)>,
    fallback: PythonFilter,
}

/// Python's `str()` of a scalar value, when it is simple to render exactly.
fn python_str(value: &Value) -> Option<String> {
    Some(match value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Null => "None".to_owned(),
        _ => return None,
    })
}

impl Filter for PrefixFields {
    fn check(&self, client: &Client, packet: &Packet) -> Check {
        let map = packet.map();
        if map.len() != self.fields.len() {
            return Check::Fail;
        }
        for (name, pattern) in &self.fields {
            let Some(value) = map.get(name) else {
                return Check::Fail;
            };
            if let Some(pattern) = pattern {
                match python_str(value) {
                    Some(text) => {
                        if !pattern.is_match(&text) {
                            return Check::Fail;
                        }
                    }
                    None => return self.fallback.check(client, packet),
                }
            }
        }
        Check::Pass
    }
}

/// `Filters.APIFactory` over a key set mirrored from Python: the packet's
/// field is a string that is a key.
struct KeyFilter {
    keys: Arc<RwLock<HashSet<String>>>,
    field: String,
}

impl Filter for KeyFilter {
    fn check(&self, _client: &Client, packet: &Packet) -> Check {
        match packet.get(&self.field) {
            Some(Value::Str(key)) => Check::from(
                self.keys
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .contains(key),
            ),
            _ => Check::Fail,
        }
    }
}

/// The key membership of a Python `APIKeyFactory`, mirrored for the engine.
#[pyclass(frozen, module = "asyncapy._engine")]
struct KeySet {
    keys: Arc<RwLock<HashSet<String>>>,
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
struct StoreKeys {
    factory: ApiKeyFactory<dyn KeyStore>,
    runtime: tokio::runtime::Runtime,
}

fn key_error(error: KeyError) -> PyErr {
    match error {
        KeyError::NotFound => PyKeyError::new_err("no such API key"),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

fn store_runtime() -> PyResult<tokio::runtime::Runtime> {
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
struct IpSet {
    ip: Ip,
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

fn encoding_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Json => "json",
        _ => "ziproto",
    }
}

fn epoch_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The engine's side of a session's client: what `asyncapy.core.Client` wraps.
#[pyclass(frozen, module = "asyncapy._engine")]
struct Peer {
    client: Client,
    shared: Arc<Shared>,
}

#[pymethods]
impl Peer {
    /// The client's IP address.
    #[getter]
    fn address(&self) -> String {
        self.client.ip().to_string()
    }

    /// The client's port.
    #[getter]
    fn port(&self) -> u16 {
        self.client.peer_addr().port()
    }

    /// The session id (a UUID, as text).
    #[getter]
    fn session_id(&self) -> String {
        self.client.session().id().to_string()
    }

    /// The session's encoding, `json` or `ziproto`.
    #[getter]
    fn encoding(&self) -> &'static str {
        encoding_name(self.client.encoding())
    }

    /// When the session started (seconds since the epoch).
    #[getter]
    fn started(&self) -> f64 {
        epoch_seconds(self.client.session().started())
    }

    /// Whether the session is closed or closing.
    #[getter]
    fn closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Hands `payload` (a dict) to the engine for the session's outbox (it is
    /// there after the trio thread's next `flush`, at the end of the current
    /// scheduling batch); closes the session after it when `close`. False when
    /// the session is closed.
    #[pyo3(signature = (payload, close=false))]
    fn send(&self, payload: &Bound<'_, PyAny>, close: bool) -> PyResult<bool> {
        let map = to_map(payload)?;
        if self.client.is_closed() {
            return Ok(false);
        }
        self.shared.hand_back(Out::Send {
            client: self.client.clone(),
            map,
            close,
        });
        Ok(true)
    }

    /// Closes the session once what was sent so far is written.
    fn close(&self) {
        self.shared.hand_back(Out::Close(self.client.clone()));
    }

    /// The live sessions of this client's IP address, this one included.
    fn sessions(&self) -> Vec<Peer> {
        self.client
            .get_sessions()
            .into_iter()
            .map(|session| Peer {
                client: session.client(),
                shared: self.shared.clone(),
            })
            .collect()
    }
}

/// A Python value to a payload map (a dict with string keys).
fn to_map(obj: &Bound<'_, PyAny>) -> PyResult<Map> {
    match to_value(obj, 0)? {
        Value::Map(map) => Ok(map),
        _ => Err(PyTypeError::new_err("a packet must be a dict")),
    }
}

fn to_value(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > 128 {
        return Err(PyValueError::new_err("value nested too deeply"));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::Int(i));
        }
        return obj
            .extract::<u64>()
            .map(Value::UInt)
            .map_err(|_| PyValueError::new_err("integer out of range"));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Str(s.extract::<String>()?));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Bin(b.as_bytes().to_vec()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key = match k.cast::<PyString>() {
                Ok(s) => s.extract::<String>()?,
                Err(_) => k.str()?.extract::<String>()?,
            };
            map.insert(key, to_value(&v, depth + 1)?);
        }
        return Ok(Value::Map(map));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l
            .iter()
            .map(|v| to_value(&v, depth + 1))
            .collect::<PyResult<Vec<_>>>()
            .map(Value::Array);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t
            .iter()
            .map(|v| to_value(&v, depth + 1))
            .collect::<PyResult<Vec<_>>>()
            .map(Value::Array);
    }
    Err(PyTypeError::new_err(format!(
        "cannot send a value of type {}",
        obj.get_type().name()?
    )))
}

fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::UInt(u) => u.into_pyobject(py)?.into_any(),
        Value::Float(f) => f.into_pyobject(py)?.into_any(),
        Value::Str(s) => PyString::new(py, s).into_any(),
        Value::Bin(b) => PyBytes::new(py, b).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Map(map) => map_to_py(py, map)?.into_any(),
    })
}

fn map_to_py<'py>(py: Python<'py>, map: &Map) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in map.iter() {
        dict.set_item(k, to_py(py, v)?)?;
    }
    Ok(dict)
}

/// The log sink the global `tracing` layer writes to: the running engine's queue.
fn log_sink() -> &'static RwLock<Option<Arc<Shared>>> {
    static SINK: OnceLock<RwLock<Option<Arc<Shared>>>> = OnceLock::new();
    SINK.get_or_init(|| RwLock::new(None))
}

/// The lowest Python level the log sink keeps.
static LOG_LEVEL: AtomicU8 = AtomicU8::new(20);

/// The session id a "session" span carries, kept in the span's extensions.
struct SessionId(String);

#[derive(Default)]
struct Fields {
    message: String,
    id: Option<String>,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "id" => self.id = Some(value.to_owned()),
            name => {
                use std::fmt::Write as _;
                let _ = write!(self.message, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "id" => self.id = Some(format!("{value:?}")),
            name => {
                let _ = write!(self.message, " {name}={value:?}");
            }
        }
    }
}

/// Turns the engine's `tracing` records into [`Event::Log`]s: no GIL, no I/O.
struct PythonLogLayer;

fn python_level(level: &tracing::Level) -> u8 {
    match *level {
        tracing::Level::ERROR => 40,
        tracing::Level::WARN => 30,
        tracing::Level::INFO => 20,
        _ => 10,
    }
}

impl<S> tracing_subscriber::Layer<S> for PythonLogLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn enabled(
        &self,
        metadata: &tracing::Metadata<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        metadata.is_span() || python_level(metadata.level()) >= LOG_LEVEL.load(Ordering::Relaxed)
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if attrs.metadata().name() != "session" {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(span), Some(sid)) = (ctx.span(id), fields.id) {
            span.extensions_mut().insert(SessionId(sid));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let sink = log_sink().read().unwrap_or_else(PoisonError::into_inner);
        let Some(shared) = sink.as_ref() else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let session = ctx.event_scope(event).and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<SessionId>().map(|s| s.0.clone()))
        });
        shared.push(Event::Log {
            level: python_level(event.metadata().level()),
            session,
            message: fields.message,
            created: epoch_seconds(SystemTime::now()),
        });
    }
}

/// Installs the log layer as the process's `tracing` subscriber (once).
fn install_log_layer() {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt as _;
        let subscriber = tracing_subscriber::registry().with(PythonLogLayer);
        tracing::subscriber::set_global_default(subscriber).is_ok()
    });
}

/// One filter of a route, as the Python package describes it.
enum FilterSpec {
    /// `("fields", [(name, pattern or None)], fallback filter id)`
    Fields(Vec<(String, Option<String>)>, usize),
    /// `("ip", IpSet)`
    Ip(Py<IpSet>),
    /// `("keys", KeySet, field name)`
    Keys(Py<KeySet>, String),
    /// `("python", filter id)`
    Python(usize),
    /// `("store", StoreKeys, field name)`
    Store(Py<StoreKeys>, String),
}

impl<'a, 'py> FromPyObject<'a, 'py> for FilterSpec {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<FilterSpec> {
        let tuple = obj.cast::<PyTuple>()?;
        let tag: String = tuple.get_item(0)?.extract()?;
        Ok(match tag.as_str() {
            "fields" => {
                FilterSpec::Fields(tuple.get_item(1)?.extract()?, tuple.get_item(2)?.extract()?)
            }
            "ip" => FilterSpec::Ip(tuple.get_item(1)?.extract()?),
            "keys" => {
                FilterSpec::Keys(tuple.get_item(1)?.extract()?, tuple.get_item(2)?.extract()?)
            }
            "python" => FilterSpec::Python(tuple.get_item(1)?.extract()?),
            "store" => {
                FilterSpec::Store(tuple.get_item(1)?.extract()?, tuple.get_item(2)?.extract()?)
            }
            _ => return Err(PyValueError::new_err("unknown filter kind")),
        })
    }
}

/// The engine: a configured, then running, Rust server.
#[pyclass(module = "asyncapy._engine")]
struct Engine {
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    server: Mutex<Option<Server>>,
    handle: Option<ServerHandle>,
    local_addr: Option<SocketAddr>,
}

#[pymethods]
impl Engine {
    /// A server with these options: `(key, value)` pairs as in an INI file's
    /// `[AsyncAPY]` section (`Config::set`).
    #[new]
    fn new(options: Vec<(String, String)>) -> PyResult<Engine> {
        let mut config = Config::default();
        for (key, value) in &options {
            config
                .set(key, value)
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
        }
        config
            .validate()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        LOG_LEVEL.store(config.logging_level.0, Ordering::Relaxed);
        Ok(Engine {
            shared: Arc::new(Shared::new()?),
            runtime: None,
            server: Mutex::new(Some(Server::new(config))),
            handle: None,
            local_addr: None,
        })
    }

    /// Registers Python handler `handler` (an index the Python side keeps)
    /// under `name` in `group`, behind `filters` (checked in this order).
    fn add_route(
        &mut self,
        py: Python<'_>,
        handler: usize,
        name: String,
        group: i32,
        filters: Vec<FilterSpec>,
    ) -> PyResult<()> {
        let mut server = self.server.lock().unwrap_or_else(PoisonError::into_inner);
        let server = server
            .as_mut()
            .ok_or_else(|| PyRuntimeError::new_err("the engine has started"))?;
        let mut built: Vec<Arc<dyn Filter>> = Vec::with_capacity(filters.len());
        for spec in filters {
            built.push(match spec {
                FilterSpec::Fields(pairs, fallback) => {
                    let fallback = PythonFilter {
                        shared: self.shared.clone(),
                        filter: fallback,
                    };
                    let mut fields = Vec::with_capacity(pairs.len());
                    let mut native = true;
                    for (name, pattern) in pairs {
                        let regex = match pattern {
                            None => None,
                            Some(p) => match regex::Regex::new(&format!(r"\A(?:{p})")) {
                                Ok(r) => Some(r),
                                Err(_) => {
                                    native = false;
                                    None
                                }
                            },
                        };
                        fields.push((name, regex));
                    }
                    if native {
                        Arc::new(PrefixFields { fields, fallback })
                    } else {
                        Arc::new(fallback)
                    }
                }
                FilterSpec::Ip(set) => Arc::new(set.bind(py).get().ip.clone()),
                FilterSpec::Keys(set, field) => Arc::new(KeyFilter {
                    keys: set.bind(py).get().keys.clone(),
                    field,
                }),
                FilterSpec::Store(keys, field) => {
                    Arc::new(ApiKey::new(keys.bind(py).get().factory.clone(), field))
                }
                FilterSpec::Python(filter) => Arc::new(PythonFilter {
                    shared: self.shared.clone(),
                    filter,
                }),
            });
        }
        let shared = self.shared.clone();
        let route = server.add_handler(move |client: Client, packet: Packet| {
            let shared = shared.clone();
            async move {
                let stop = packet.clone();
                let outcome = shared
                    .call(|id| Event::Job {
                        id,
                        handler,
                        client,
                        packet,
                    })
                    .await;
                match outcome {
                    Some(Outcome::Done) => Ok(()),
                    Some(Outcome::Stop) => {
                        stop.stop_propagation();
                        Ok(())
                    }
                    _ => Err(PythonHandlerFailed),
                }
            }
        });
        route.name(name).group(group);
        for filter in built {
            route.filter(filter);
        }
        Ok(())
    }

    /// Binds and starts serving on `workers` tokio threads (0: one per
    /// core); returns the bound `(host, port)`. Raises `OSError` when the
    /// address cannot be bound.
    #[pyo3(signature = (workers=0))]
    fn start(&mut self, py: Python<'_>, workers: usize) -> PyResult<(String, u16)> {
        let server = self
            .server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("the engine has started"))?;
        install_log_layer();
        *log_sink().write().unwrap_or_else(PoisonError::into_inner) = Some(self.shared.clone());
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if workers > 0 {
            builder.worker_threads(workers);
        }
        let runtime = builder.thread_name("asyncapy-io").enable_all().build()?;
        let shared = self.shared.clone();
        let running = py.detach(|| runtime.block_on(server.bind()));
        let running = running.map_err(|e| match e {
            asyncapy::ServerError::Bind { .. } | asyncapy::ServerError::Resolve { .. } => {
                PyOSError::new_err(e.to_string())
            }
            other => PyRuntimeError::new_err(other.to_string()),
        })?;
        let local = running.local_addr();
        self.handle = Some(running.handle());
        runtime.spawn(self.shared.clone().apply_outgoing());
        runtime.spawn(async move {
            let _ = running.wait().await;
            shared.push(Event::Stopped);
        });
        self.runtime = Some(runtime);
        self.local_addr = Some(local);
        Ok((local.ip().to_string(), local.port()))
    }

    /// The descriptor the trio thread waits on (`trio.lowlevel.wait_readable`).
    fn fileno(&self) -> i32 {
        self.shared.wake_rx.as_raw_fd()
    }

    /// Takes up to `max` events. Each is a tuple:
    /// `("job", id, handler, Peer, dict, encoding)`,
    /// `("filter", id, filter, Peer, dict, encoding)`, `("cancel", id)`,
    /// `("log", level, session id or None, message, created)`, `("stopped",)`.
    #[pyo3(signature = (max=1024))]
    fn drain<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Bound<'py, PyList>> {
        let s = &self.shared;
        let mut buf = [0u8; 256];
        loop {
            match (&s.wake_rx).read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        // Re-arm before taking, so a push after the take writes a byte.
        s.armed.store(true, Ordering::Release);
        let taken: Vec<Event> = {
            let mut queue = s.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let n = queue.len().min(max.max(1));
            let taken: Vec<Event> = queue.drain(..n).collect();
            if !queue.is_empty() && s.armed.swap(false, Ordering::AcqRel) {
                s.wake();
            }
            taken
        };
        let out = PyList::empty(py);
        for event in taken {
            let item = match event {
                Event::Job {
                    id,
                    handler,
                    client,
                    packet,
                } => {
                    let dict = map_to_py(py, packet.map())?;
                    let encoding = encoding_name(packet.encoding());
                    let peer = Peer {
                        client,
                        shared: s.clone(),
                    };
                    ("job", id, handler, peer, dict, encoding).into_pyobject(py)?
                }
                Event::Filter {
                    id,
                    filter,
                    client,
                    packet,
                } => {
                    let dict = map_to_py(py, packet.map())?;
                    let encoding = encoding_name(packet.encoding());
                    let peer = Peer {
                        client,
                        shared: s.clone(),
                    };
                    ("filter", id, filter, peer, dict, encoding).into_pyobject(py)?
                }
                Event::Cancel(id) => ("cancel", id).into_pyobject(py)?,
                Event::Log {
                    level,
                    session,
                    message,
                    created,
                } => {
                    s.logs.fetch_sub(1, Ordering::Relaxed);
                    ("log", level, session, message, created).into_pyobject(py)?
                }
                Event::Stopped => ("stopped",).into_pyobject(py)?,
            };
            out.append(item)?;
        }
        Ok(out)
    }

    /// Reports how job or filter check `id` ended: 0 returned, 1
    /// StopPropagation, 2 raised, 3 filter matched, 4 filter did not match.
    /// False when the engine gave up on it already (a timeout).
    fn finish(&self, id: u64, outcome: u8) -> PyResult<bool> {
        let outcome = Outcome::from_code(outcome)?;
        let tx = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        match tx {
            Some(tx) => {
                self.shared.hand_back(Out::Finish(tx, outcome));
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Applies the sends and outcomes handed back since the last flush (one
    /// wake of the engine); the trio thread calls it once per scheduling batch.
    fn flush(&self) {
        self.shared.flush.notify_one();
    }

    /// Starts a graceful shutdown: stop accepting, let in-flight packets
    /// finish (at most `grace_period`), close the sessions. A `("stopped",)`
    /// event follows.
    fn shutdown(&self) {
        if let Some(handle) = &self.handle {
            handle.shutdown();
        }
    }

    /// Live sessions.
    fn session_count(&self) -> usize {
        self.handle.as_ref().map_or(0, ServerHandle::session_count)
    }

    /// Sets the lowest Python level of the engine records passed to Python.
    fn set_log_level(&self, level: u8) {
        LOG_LEVEL.store(level, Ordering::Relaxed);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let mut sink = log_sink().write().unwrap_or_else(PoisonError::into_inner);
        if sink.as_ref().is_some_and(|s| Arc::ptr_eq(s, &self.shared)) {
            *sink = None;
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The native half of the `asyncapy` package.
#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_class::<Peer>()?;
    m.add_class::<KeySet>()?;
    m.add_class::<IpSet>()?;
    m.add_class::<StoreKeys>()?;
    Ok(())
}
