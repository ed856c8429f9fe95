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
//!   deferred = true; await oneshot(id)
//! a worker about to park (or the watchdog):
//!   if armed.swap(false): write 1 byte ──▶ wait_readable(fd) wakes
//!                                            drain(): read, armed = true,
//!                                            take the batch, build Python values
//!                                            run handlers (first step inline)
//!   ◀── flush(): outcomes and sends ──────── (handed back at call time, applied
//!                                             once per trio batch)
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

mod client;
mod filters;
mod keys;
mod log;
mod peer;
mod values;

use client::*;
use filters::*;
use keys::*;
use log::*;
use peer::*;
use values::*;

/// Most log records held for Python; beyond that, records are dropped (the
/// trio thread is blocked and the log would grow without bound).
const MAX_LOG_BACKLOG: usize = 10_000;

/// Longest a deferred job waits for a tokio worker to park before the
/// watchdog wakes the trio thread for it (see `Shared::push_deferred`).
const DEFER_LIMIT: std::time::Duration = std::time::Duration::from_millis(1);

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
    /// A handler blocks (it awaits something slow): its session writes what
    /// it holds back for the batch (`Client::cork`) at once, and what the
    /// handler sends from now on.
    Uncork(Client),
    /// A job's or a filter check's outcome.
    Finish(oneshot::Sender<Outcome>, Outcome),
}

/// The queue between the engine and the trio thread, with its wakeup.
struct Shared {
    /// Sends and outcomes from the trio thread, waiting for `flush`.
    outgoing: Mutex<Vec<Out>>,
    /// Wakes the task that applies `outgoing`.
    flush: tokio::sync::Notify,
    /// Whether each hand-back wakes that task at once (`Engine::set_autoflush`):
    /// off under trio, whose instrument flushes once per scheduling batch.
    autoflush: AtomicBool,
    queue: Mutex<VecDeque<Event>>,
    logs: AtomicU64,
    /// True when the trio side may be asleep: the next push writes a wake byte.
    armed: AtomicBool,
    /// A job or filter check was queued without its wake byte (`push_deferred`):
    /// the next worker to park writes it (or the watchdog, after `DEFER_LIMIT`).
    deferred: AtomicBool,
    /// Starts the watchdog of a deferred push.
    watchdog: tokio::sync::Notify,
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
            autoflush: AtomicBool::new(false),
            queue: Mutex::new(VecDeque::new()),
            logs: AtomicU64::new(0),
            armed: AtomicBool::new(true),
            deferred: AtomicBool::new(false),
            watchdog: tokio::sync::Notify::new(),
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

    /// Queues a job or filter check without waking the trio thread: the wake
    /// byte is written when a tokio worker runs out of work and is about to
    /// park (`wake_deferred` in `on_thread_park`), so every job queued in the
    /// worker's busy period goes to Python in one wakeup. The first deferred
    /// push after a drain also starts the watchdog (`watch_deferred`), which
    /// writes it after `DEFER_LIMIT` if no worker parked by then.
    fn push_deferred(&self, event: Event) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(event);
        if !self.deferred.swap(true, Ordering::AcqRel) {
            self.watchdog.notify_one();
        }
    }

    /// Writes the wake byte of the deferred pushes, unless a wake already
    /// covers them (the trio side is awake, or a byte is in flight).
    fn wake_deferred(&self) {
        if self.deferred.load(Ordering::Acquire)
            && self.deferred.swap(false, Ordering::AcqRel)
            && self.armed.swap(false, Ordering::AcqRel)
        {
            self.wake();
        }
    }

    /// Bounds how long a deferred push waits for a worker to park: a worker
    /// kept busy by other work (sessions Python is not involved in) would
    /// otherwise hold back the jobs it queued.
    async fn watch_deferred(self: Arc<Shared>) {
        loop {
            self.watchdog.notified().await;
            tokio::time::sleep(DEFER_LIMIT).await;
            self.wake_deferred();
        }
    }

    fn hand_back(&self, out: Out) {
        self.outgoing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(out);
        if self.autoflush.load(Ordering::Relaxed) {
            self.flush.notify_one();
        }
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
                    Out::Uncork(client) => client.uncork(),
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
    ///
    /// The wake byte is not written at once (`push_deferred`): the first job
    /// would wake the trio thread, which then preempts the worker on a shared
    /// core and takes a batch of one, and each job would cost the two thread
    /// switches. Written when the worker parks, it wakes the trio thread once
    /// for everything the worker read in its pass, when the worker has nothing
    /// else to do.
    ///
    /// The session is corked while it waits (`Client::cork`): the replies
    /// of a pipelined batch then leave in one write, not one each. The trio
    /// thread lifts the cork of a handler that blocks (`Peer::uncork`).
    async fn call(
        self: &Arc<Shared>,
        client: Client,
        event: impl FnOnce(u64, Client) -> Event,
    ) -> Option<Outcome> {
        client.cork();
        let (id, rx) = self.register();
        let mut guard = CancelGuard {
            shared: self.clone(),
            id,
            armed: true,
        };
        self.push_deferred(event(id, client));
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
                    .call(client, |id, client| Event::Job {
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
        let parking = self.shared.clone();
        let runtime = builder
            .thread_name("asyncapy-io")
            .on_thread_park(move || parking.wake_deferred())
            .enable_all()
            .build()?;
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
        runtime.spawn(self.shared.clone().watch_deferred());
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
        // One read: a wake byte is written only by whoever turns `armed`
        // off, so at most one is outstanding (a byte left over would only
        // make the next wait return at once; a second read to see
        // `WouldBlock` would cost a system call per batch).
        let mut buf = [0u8; 256];
        loop {
            match (&s.wake_rx).read(&mut buf) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                _ => break,
            }
        }
        // Re-arm before taking, so a push after the take writes a byte; a
        // deferred push before the take is taken now, so its wake is not needed
        // (one after the take sets `deferred` again: the queue's lock orders it).
        s.deferred.store(false, Ordering::Release);
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
                    let (peer, dict, encoding) = packet_args(py, s, client, &packet)?;
                    (pyo3::intern!(py, "job"), id, handler, peer, dict, encoding)
                        .into_pyobject(py)?
                }
                Event::Filter {
                    id,
                    filter,
                    client,
                    packet,
                } => {
                    let (peer, dict, encoding) = packet_args(py, s, client, &packet)?;
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
    /// wake of the engine; nothing when there are none); the trio thread
    /// calls it once per scheduling batch, before trio waits for I/O.
    fn flush(&self) {
        let pending = !self
            .shared
            .outgoing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty();
        if pending {
            self.shared.flush.notify_one();
        }
    }

    /// Whether every send and outcome handed back wakes the engine at once
    /// (true), or waits for the next `flush` (false, the default: the trio
    /// backend flushes once per scheduling batch). The asyncio backend turns
    /// it off while it runs a batch of jobs, and on for what its tasks do
    /// later, since asyncio has no hook before it waits for I/O.
    fn set_autoflush(&self, on: bool) {
        self.shared.autoflush.store(on, Ordering::Relaxed);
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
    m.add_class::<SyncClient>()?;
    Ok(())
}

/// What a handler or a filter check is called with on the Python side: the
/// session's `Peer`, the packet as a dict, and its encoding's name.
fn packet_args<'py>(
    py: Python<'py>,
    shared: &Arc<Shared>,
    client: Client,
    packet: &Packet,
) -> PyResult<(Peer, Bound<'py, PyDict>, Bound<'py, PyString>)> {
    let dict = map_to_py(py, packet.map())?;
    let peer = Peer {
        client,
        shared: shared.clone(),
    };
    Ok((peer, dict, encoding_py(py, packet.encoding())))
}
