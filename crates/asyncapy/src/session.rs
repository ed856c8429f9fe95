//! Sessions: one per connection. [`Client`] is the handle a handler receives
//! (the original's `asyncapy.core.Client`), [`Session`] the session it belongs to,
//! and the registry keeps every live session by client IP.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use asyncaproto::{Encoding, ErrorCode, FrameCodec, FrameError, Map};
use bytes::BytesMut;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use uuid::Uuid;

use crate::limits::SharedLimits;
use crate::metrics::Metrics;
use crate::packet::{AsPayload, Packet};
use crate::reply::FailureCode;

const NO_ENCODING: u8 = u8::MAX;

/// Keys of sessions in the registry.
static NEXT_SEQ: AtomicU64 = AtomicU64::new(0);

/// The state of one session, shared by its connection task and every handle.
pub(crate) struct SessionState {
    id: Uuid,
    peer: SocketAddr,
    started: SystemTime,
    codec: FrameCodec,
    encoding: AtomicU8,
    /// Frames waiting to be written; the connection task drains it.
    outbox: Mutex<BytesMut>,
    /// Notified when the session task has taken what the outbox held (or the
    /// session closes): senders waiting for room try again.
    room: tokio::sync::Notify,
    /// `CLOSING`, `SHUTDOWN`, `ABORT`: what the session task is asked to do;
    /// `OUTPUT`, `BUSY`: whether it must be woken to write.
    signals: AtomicU8,
    /// The session task, woken when a signal is raised.
    waker: AtomicWaker,
    /// The key of this session in the registry.
    seq: u64,
    registry: Arc<Registry>,
}

/// Close once what was queued is written.
const CLOSING: u8 = 1;
/// The server is shutting down: answer `ERR_SHUTTING_DOWN` when idle.
const SHUTDOWN: u8 = 2;
/// The grace period is over: drop everything now.
const ABORT: u8 = 4;
/// The outbox holds frames the session task has not taken yet.
const OUTPUT: u8 = 8;
/// The session task is processing a batch of input without waiting: it
/// writes the outbox when the batch is done, so sends need not wake it.
const BUSY: u8 = 16;
/// The running handler asked the session to hold its output back while it
/// waits ([`Client::cork`]).
const CORKED: u8 = 32;

/// A signal raised on a session from outside its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// A handle closed the session.
    Close,
    /// The server is shutting down.
    Shutdown,
    /// The grace period is over.
    Abort,
}

/// A random (version 4) session id, as `Uuid::new_v4` makes, from the same
/// operating system randomness, taken [`IDS_PER_DRAW`] ids at a time: one
/// `getrandom` system call per session was a tenth of a short connection's
/// system calls.
fn new_session_id() -> Uuid {
    thread_local! {
        static POOL: std::cell::RefCell<([u8; 16 * IDS_PER_DRAW], usize)> =
            const { std::cell::RefCell::new(([0; 16 * IDS_PER_DRAW], 16 * IDS_PER_DRAW)) };
    }
    POOL.with_borrow_mut(|(bytes, used)| {
        if *used == bytes.len() {
            if getrandom::fill(bytes).is_err() {
                return Uuid::new_v4();
            }
            *used = 0;
        }
        let mut id = [0u8; 16];
        if let Some(drawn) = bytes.get(*used..*used + 16) {
            id.copy_from_slice(drawn);
        }
        *used += 16;
        uuid::Builder::from_random_bytes(id).into_uuid()
    })
}

/// Session ids drawn from the operating system at a time (`new_session_id`).
const IDS_PER_DRAW: usize = 32;

impl SessionState {
    pub(crate) fn new(peer: SocketAddr, codec: FrameCodec, registry: Arc<Registry>) -> Self {
        SessionState {
            id: new_session_id(),
            peer,
            started: SystemTime::now(),
            codec,
            encoding: AtomicU8::new(NO_ENCODING),
            outbox: Mutex::new(BytesMut::new()),
            room: tokio::sync::Notify::new(),
            signals: AtomicU8::new(0),
            waker: AtomicWaker::new(),
            seq: NEXT_SEQ.fetch_add(1, Ordering::Relaxed),
            registry,
        }
    }

    pub(crate) fn id(&self) -> Uuid {
        self.id
    }

    /// The session's encoding, once its first packet has set it.
    pub(crate) fn encoding(&self) -> Option<Encoding> {
        Encoding::from_byte(self.encoding.load(Ordering::Relaxed))
    }

    /// Fixes the session's encoding to `encoding` unless a packet already did;
    /// returns the session's encoding.
    pub(crate) fn settle_encoding(&self, encoding: Encoding) -> Encoding {
        match self.encoding.compare_exchange(
            NO_ENCODING,
            encoding.as_byte(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => encoding,
            Err(current) => Encoding::from_byte(current).unwrap_or(encoding),
        }
    }

    pub(crate) fn outbox(&self) -> MutexGuard<'_, BytesMut> {
        // A panic while holding this lock (in a handler's send) leaves at worst a
        // partly written frame; the session is closed after a panic anyway.
        self.outbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.signals.load(Ordering::Acquire) & CLOSING != 0
    }

    fn raise(&self, signal: u8) {
        self.signals.fetch_or(signal, Ordering::AcqRel);
        self.waker.wake();
        if signal & (CLOSING | ABORT) != 0 {
            // Senders waiting for room give up: the session is closing.
            self.room.notify_waiters();
        }
    }

    /// Tells the session task that the outbox holds frames to write; wakes it
    /// unless it is processing a batch (it writes the outbox after that).
    fn output_queued(&self) {
        let before = self.signals.fetch_or(OUTPUT, Ordering::SeqCst);
        if before & BUSY == 0 {
            self.waker.wake();
        }
    }

    /// The session task starts processing a batch of input: sends made
    /// meanwhile are written when it is done, with no wake-up each.
    pub(crate) fn begin_batch(&self) {
        self.signals.fetch_or(BUSY, Ordering::SeqCst);
    }

    /// The session task waits (for a handler, or for input): sends wake it
    /// from now on. Sends made while it was busy are seen by the next
    /// [`SessionState::poll_output`].
    pub(crate) fn end_batch(&self) {
        self.signals.fetch_and(!BUSY, Ordering::SeqCst);
    }

    /// Ready when the outbox holds frames not taken yet (clearing the mark),
    /// registering the task to be woken by the next send.
    pub(crate) fn poll_output(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.waker.register(cx.waker());
        if self.signals.load(Ordering::SeqCst) & OUTPUT != 0 {
            self.signals.fetch_and(!OUTPUT, Ordering::SeqCst);
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Moves what the outbox holds to the end of `wbuf` (the bytes the task
    /// is writing), and lets waiting senders try again.
    pub(crate) fn take_outbox(&self, wbuf: &mut BytesMut) {
        self.signals.fetch_and(!OUTPUT, Ordering::SeqCst);
        {
            let mut outbox = self.outbox();
            if outbox.is_empty() {
                return;
            }
            if wbuf.is_empty() {
                std::mem::swap(&mut *outbox, wbuf);
            } else {
                wbuf.extend_from_slice(&outbox);
                outbox.clear();
            }
        }
        self.room.notify_waiters();
    }

    pub(crate) fn close(&self) {
        self.raise(CLOSING);
    }

    /// Whether the running handler holds the session's output back.
    pub(crate) fn is_corked(&self) -> bool {
        self.signals.load(Ordering::SeqCst) & CORKED != 0
    }

    fn cork(&self) {
        self.signals.fetch_or(CORKED, Ordering::SeqCst);
    }

    /// Lifts the cork, waking the session task if it was set.
    pub(crate) fn uncork(&self) {
        if self.signals.fetch_and(!CORKED, Ordering::SeqCst) & CORKED != 0 {
            self.waker.wake();
        }
    }

    /// Lifts the cork once the packet's dispatch is over (a plain load
    /// when, as for most handlers, there is none).
    pub(crate) fn clear_cork(&self) {
        if self.is_corked() {
            self.signals.fetch_and(!CORKED, Ordering::SeqCst);
        }
    }

    /// Ready once the cork is lifted, registering the task to be woken when it is.
    pub(crate) fn poll_uncorked(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.waker.register(cx.waker());
        if self.is_corked() {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }

    /// Marks the outbox as holding frames to write, so that the next
    /// [`SessionState::poll_output`] is ready (after a cork is lifted).
    pub(crate) fn output_pending(&self) {
        self.signals.fetch_or(OUTPUT, Ordering::SeqCst);
    }

    /// How many bytes the outbox holds.
    pub(crate) fn outbox_len(&self) -> usize {
        self.outbox().len()
    }

    /// Told by the server's [`Shutdown`](crate::server::Shutdown): the drain began.
    pub(crate) fn shutdown(&self) {
        self.raise(SHUTDOWN);
    }

    /// Told by the server's [`Shutdown`](crate::server::Shutdown): the grace period is over.
    pub(crate) fn abort(&self) {
        self.raise(ABORT);
    }

    /// The most pressing signal raised, registering the task to be woken by the
    /// next one. Abort outranks close, which outranks shutdown.
    pub(crate) fn poll_signal(&self, cx: &mut Context<'_>) -> Poll<Signal> {
        self.waker.register(cx.waker());
        let signals = self.signals.load(Ordering::Acquire);
        if signals & ABORT != 0 {
            Poll::Ready(Signal::Abort)
        } else if signals & CLOSING != 0 {
            Poll::Ready(Signal::Close)
        } else if signals & SHUTDOWN != 0 {
            Poll::Ready(Signal::Shutdown)
        } else {
            Poll::Pending
        }
    }

    /// Ready once the session is aborted (other signals do not end a handler).
    pub(crate) fn poll_abort(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.waker.register(cx.waker());
        if self.signals.load(Ordering::Acquire) & ABORT != 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Queues the failure reply `code` (after what handlers queued) and
    /// closes the session, as the server does when a packet fails.
    pub(crate) fn queue_failure(&self, code: ErrorCode, encoding: Encoding) {
        self.queue_failure_code(FailureCode::Protocol(code), encoding, true);
    }

    /// Queues a failure reply with `code` (a protocol code, or one a handler
    /// chose), closing the session after it if `close`.
    pub(crate) fn queue_failure_code(
        &self,
        code: FailureCode<'_>,
        encoding: Encoding,
        close: bool,
    ) {
        if close {
            self.close();
        }
        match code {
            FailureCode::Protocol(code) => {
                let mut payload = Vec::with_capacity(64);
                code.write_payload(encoding, &mut payload);
                // Protocol failure payloads are under 64 bytes: they fit every
                // Content-Length size.
                let _ = self.codec.write_raw(encoding, &payload, &mut self.outbox());
            }
            FailureCode::Application(code) => {
                let mut map = Map::with_capacity(2);
                map.insert("status", asyncaproto::Value::from("failure"));
                map.insert("error", asyncaproto::Value::from(code));
                if let Err(e) = self.codec.write_frame(encoding, &map, &mut self.outbox()) {
                    tracing::error!("Cannot send the failure reply {code}: {e}");
                }
            }
        }
    }

    /// Queues `map` as a frame if the outbox has room (an empty outbox
    /// always has room for one frame, however large).
    fn try_send_map(&self, map: &Map, close: bool) -> Result<(), SendError> {
        if self.is_closing() {
            return Err(SendError::Closed);
        }
        let encoding = self.encoding().unwrap_or_default();
        {
            let mut outbox = self.outbox();
            if !outbox.is_empty() && outbox.len() >= self.registry.max_outbox {
                return Err(SendError::Full);
            }
            self.codec.write_frame(encoding, map, &mut outbox)?;
        }
        if close {
            self.close();
        } else {
            self.output_queued();
        }
        Ok(())
    }

    /// Queues `map` as a frame, waiting for room in the outbox if it is full:
    /// at most the session `timeout`, after which the session (whose peer
    /// has read nothing for that long) is closed.
    ///
    /// The common case, room at once, keeps this future small (every
    /// handler that sends holds it): the wait is boxed.
    async fn send_map(&self, map: &Map, close: bool) -> Result<(), SendError> {
        match self.try_send_map(map, close) {
            Err(SendError::Full) => Box::pin(self.wait_to_send(map, close)).await,
            done => done,
        }
    }

    /// The rest of [`SessionState::send_map`] once the outbox was full.
    async fn wait_to_send(&self, map: &Map, close: bool) -> Result<(), SendError> {
        let deadline = tokio::time::Instant::now() + self.registry.send_timeout;
        loop {
            let room = self.room.notified();
            let mut room = std::pin::pin!(room);
            room.as_mut().enable();
            match self.try_send_map(map, close) {
                Err(SendError::Full) => {}
                done => return done,
            }
            // Make sure the task knows there is something to write.
            self.output_queued();
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                tracing::warn!(
                    "Session {}: its outbox stayed full for {:?}: closing it",
                    self.id,
                    self.registry.send_timeout
                );
                self.close();
                return Err(SendError::Closed);
            }
        }
    }
}

/// Why [`Client::send`] did not queue a packet.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The session is closed or closing.
    #[error("the session is closed")]
    Closed,
    /// The value does not serialize to a map.
    #[error("cannot send the value: {0}")]
    Serialize(asyncaproto::value::Error),
    /// The packet cannot be framed (e.g. too long for the configured Content-Length size).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The session's outbox is full ([`Config::max_outbox`](crate::Config::max_outbox)):
    /// only from [`Client::try_send`], which never waits.
    #[error("the session's outbox is full")]
    Full,
}

/// The client of a session, as a handler sees it (the original's
/// `asyncapy.core.Client`, not the connecting client of `asyncapy.client`).
///
/// Cloning is cheap; every clone refers to the same session.
#[derive(Clone)]
pub struct Client {
    state: Arc<SessionState>,
}

impl Client {
    pub(crate) fn new(state: Arc<SessionState>) -> Client {
        Client { state }
    }

    /// The server's metrics, when it has them (`metrics_addr`).
    pub(crate) fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.state.registry.metrics()
    }

    /// The client's address (IP and port): the socket's peer, or behind a
    /// proxy speaking the PROXY protocol
    /// ([`Config::proxy_protocol`](crate::Config::proxy_protocol)), the client
    /// its header named.
    pub fn peer_addr(&self) -> SocketAddr {
        self.state.peer
    }

    /// The client's IP address.
    pub fn ip(&self) -> IpAddr {
        self.state.peer.ip()
    }

    /// The session this client is talking in.
    pub fn session(&self) -> Session {
        Session {
            state: self.state.clone(),
        }
    }

    /// The session's encoding: replies are written in it.
    pub fn encoding(&self) -> Encoding {
        self.state.encoding().unwrap_or_default()
    }

    /// Sends `packet` to the client in the session's encoding.
    ///
    /// The packet is on its way at once, in order with every other packet of
    /// the session: the session writes it while the handler goes on (replies
    /// of handlers that return without waiting leave together, in one write
    /// per batch of input; so do those sent while a handler that
    /// [corked](Client::cork) the session waits). It works from any task or thread, on any session
    /// (another session's [`Session::client`] included).
    ///
    /// When the session's outbox is full ([`Config::max_outbox`](crate::Config::max_outbox)),
    /// `send` waits for room: at most the session `timeout`, after which the
    /// session, whose peer has read nothing for that long, is closed and
    /// `send` returns [`SendError::Closed`].
    /// That wait needs a tokio runtime (any one, not necessarily the
    /// server's); [`Client::try_send`] works from any thread.
    pub async fn send(&self, packet: impl AsPayload) -> Result<(), SendError> {
        self.state.send_map(packet.as_payload(), false).await
    }

    /// Sends `packet` if the session's outbox has room, without waiting:
    /// [`SendError::Full`] otherwise. For code that cannot wait (a callback
    /// on another thread, a binding to another language).
    ///
    /// ```
    /// # async fn handler(client: asyncapy::Client, packet: asyncapy::Packet) {
    /// match client.try_send(&packet) {
    ///     Ok(()) => {}
    ///     Err(asyncapy::SendError::Full) => { /* the peer is not reading: drop, or retry later */ }
    ///     Err(_) => { /* the session is closed */ }
    /// }
    /// # }
    /// ```
    pub fn try_send(&self, packet: impl AsPayload) -> Result<(), SendError> {
        self.state.try_send_map(packet.as_payload(), false)
    }

    /// Sends any value that serializes to a map (a `#[derive(Serialize)]`
    /// struct, a `HashMap`...), in the session's encoding.
    pub async fn send_value<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> Result<(), SendError> {
        let packet =
            Packet::from_serialize(value, self.encoding()).map_err(SendError::Serialize)?;
        self.state.send_map(packet.map(), false).await
    }

    /// Sends `packet`, then closes the session (the original's `send(packet, close=True)`).
    pub async fn send_and_close(&self, packet: impl AsPayload) -> Result<(), SendError> {
        self.state.send_map(packet.as_payload(), true).await
    }

    /// Closes the session once what was sent so far is written.
    pub async fn close(&self) {
        self.state.close();
    }

    /// Whether the session is closed or closing.
    pub fn is_closed(&self) -> bool {
        self.state.is_closing()
    }

    /// Asks the session to hold back what is sent while the calling handler
    /// waits, and to write it with the rest of its batch of input instead of
    /// at once (unless the cork is lifted first, or it grows past 64 KiB).
    ///
    /// For a handler that hands its work to another thread which answers
    /// many sessions in bulk (the Python package's handlers run so): without
    /// the cork, a pipelined session writes each reply alone, one system
    /// call per packet, while it waits for the next packet's answer; with
    /// it, the whole batch's replies leave in one write. Order is kept
    /// either way.
    ///
    /// The cork lasts until the handler finishes (the packet's dispatch ends)
    /// or [`Client::uncork`] is called, which a handler should do once it
    /// waits for something slow: what it sent before is then written at once,
    /// and so is what it sends afterwards.
    ///
    /// ```
    /// # async fn handler(client: asyncapy::Client, packet: asyncapy::Packet) -> Result<(), asyncapy::SendError> {
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// client.cork();
    /// // Another thread answers quickly, with many other packets.
    /// std::thread::spawn(move || { let _ = tx.send(packet); });
    /// if let Ok(reply) = rx.await {
    ///     client.send(&reply).await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn cork(&self) {
        self.state.cork();
    }

    /// Lifts [`Client::cork`]: what was held back is written at once, and so
    /// is what is sent from now on. From any thread; nothing happens when
    /// the session is not corked.
    pub fn uncork(&self) {
        self.state.uncork();
    }

    /// Every live session of this client's IP address, this one included.
    pub fn get_sessions(&self) -> Vec<Session> {
        self.state.registry.sessions_of(self.ip())
    }
}

impl fmt::Display for Client {
    /// `Client(IP)`, like the original.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Client({})", self.state.peer.ip())
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.state.peer)
            .field("session", &self.state.id)
            .finish()
    }
}

/// A client session: one connection, from accept to close.
#[derive(Clone)]
pub struct Session {
    state: Arc<SessionState>,
}

impl Session {
    /// The session's id, a random UUID (v4).
    pub fn id(&self) -> Uuid {
        self.state.id
    }

    /// When the session started.
    pub fn started(&self) -> SystemTime {
        self.state.started
    }

    /// The client of this session.
    pub fn client(&self) -> Client {
        Client::new(self.state.clone())
    }

    /// Closes the session, from any task (another session's handler included).
    pub fn close(&self) {
        self.state.close();
    }

    /// Whether the session is closed or closing.
    pub fn is_closed(&self) -> bool {
        self.state.is_closing()
    }
}

impl PartialEq for Session {
    fn eq(&self, other: &Session) -> bool {
        self.state.id == other.state.id
    }
}

impl Eq for Session {}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.state.id)
            .field("peer", &self.state.peer)
            .finish()
    }
}

/// Every live session, by client IP; it enforces the per-IP `session_limit`.
pub(crate) struct Registry {
    limit: usize,
    by_ip: Mutex<HashMap<IpAddr, HashMap<u64, Arc<SessionState>>>>,
    /// Every session's outbox bound ([`Config::max_outbox`](crate::Config::max_outbox)).
    max_outbox: usize,
    /// How long a send waits for room in a full outbox (the session timeout).
    send_timeout: Duration,
    /// The server's metrics (`metrics_addr`): the open sessions' gauge, and
    /// what handlers' filters count (key store failures).
    metrics: Option<Arc<Metrics>>,
    /// The shared limits store, when `session_limit` is kept there: an
    /// ended session's entry is freed through it.
    shared: Option<Arc<SharedLimits>>,
}

/// A client IP already holds the most sessions it may.
#[derive(Debug)]
pub(crate) struct LimitReached;

type ByIp = HashMap<IpAddr, HashMap<u64, Arc<SessionState>>>;

impl Registry {
    pub(crate) fn new(limit: usize) -> Registry {
        let defaults = crate::Config::default();
        Registry {
            limit,
            by_ip: Mutex::default(),
            max_outbox: defaults.max_outbox,
            send_timeout: defaults.timeout,
            metrics: None,
            shared: None,
        }
    }

    /// Frees ended sessions' entries in `shared` (`session_limit` kept in
    /// the limits store; the registry's own limit is then 0).
    pub(crate) fn with_shared(mut self, shared: Option<Arc<SharedLimits>>) -> Registry {
        self.shared = shared;
        self
    }

    /// Every live session's client IP and id (for the store's heartbeat).
    pub(crate) fn live(&self) -> Vec<(IpAddr, Uuid)> {
        self.lock()
            .iter()
            .flat_map(|(ip, sessions)| sessions.values().map(move |state| (*ip, state.id)))
            .collect()
    }

    /// Counts the open sessions in `metrics`.
    pub(crate) fn with_metrics(mut self, metrics: Option<Arc<Metrics>>) -> Registry {
        self.metrics = metrics;
        self
    }

    /// The server's metrics, when it has them.
    pub(crate) fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    /// Sets the outbox bound of every session, and how long a send waits for
    /// room in a full one.
    pub(crate) fn with_outbox(mut self, max_outbox: usize, send_timeout: Duration) -> Registry {
        self.max_outbox = max_outbox;
        self.send_timeout = send_timeout;
        self
    }

    fn lock(&self) -> MutexGuard<'_, ByIp> {
        self.by_ip.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a session; the returned guard removes it when dropped, however the
    /// session ends (return, error, panic or cancellation).
    pub(crate) fn register(
        self: &Arc<Self>,
        state: Arc<SessionState>,
    ) -> Result<RegistryGuard, LimitReached> {
        let ip = state.peer.ip();
        let mut by_ip = self.lock();
        let sessions = by_ip.entry(ip).or_default();
        if self.limit != 0 && sessions.len() >= self.limit {
            if sessions.is_empty() {
                by_ip.remove(&ip);
            }
            return Err(LimitReached);
        }
        sessions.insert(state.seq, state.clone());
        if let Some(metrics) = &self.metrics {
            metrics.sessions(1.0);
        }
        Ok(RegistryGuard {
            registry: self.clone(),
            state,
        })
    }

    /// The live sessions of `ip`, oldest first.
    pub(crate) fn sessions_of(&self, ip: IpAddr) -> Vec<Session> {
        let mut states: Vec<Arc<SessionState>> = self
            .lock()
            .get(&ip)
            .map(|sessions| sessions.values().cloned().collect())
            .unwrap_or_default();
        states.sort_by_key(|state| state.seq);
        states.into_iter().map(|state| Session { state }).collect()
    }

    /// How many sessions are live.
    pub(crate) fn len(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }

    /// Calls `f` on every live session.
    pub(crate) fn for_each(&self, f: impl Fn(&SessionState)) {
        for sessions in self.lock().values() {
            for state in sessions.values() {
                f(state);
            }
        }
    }
}

/// Removes its session from the registry when dropped.
pub(crate) struct RegistryGuard {
    registry: Arc<Registry>,
    state: Arc<SessionState>,
}

impl Drop for RegistryGuard {
    fn drop(&mut self) {
        let ip = self.state.peer.ip();
        let mut by_ip = self.registry.lock();
        if let Some(sessions) = by_ip.get_mut(&ip) {
            sessions.remove(&self.state.seq);
            if sessions.is_empty() {
                by_ip.remove(&ip);
            }
        }
        if let Some(metrics) = &self.registry.metrics {
            metrics.sessions(-1.0);
        }
        if let Some(shared) = &self.registry.shared {
            shared.release(ip, self.state.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_random_version_4_uuids_and_never_repeat_across_draws() {
        let ids: Vec<Uuid> = (0..IDS_PER_DRAW * 3 + 5)
            .map(|_| new_session_id())
            .collect();
        let distinct: std::collections::HashSet<Uuid> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), ids.len());
        for id in &ids {
            assert_eq!(id.get_version(), Some(uuid::Version::Random), "{id}");
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122, "{id}");
        }
        // Another thread draws its own ids, not a copy of these.
        let other = std::thread::spawn(new_session_id).join().expect("thread");
        assert!(!distinct.contains(&other));
    }
}
