//! One connection slot's load loop: connect, keep `pipeline` requests
//! outstanding, verify and time every reply, reconnect after errors.
//!
//! The driver knows nothing of the command line or the report: it gets a
//! [`Target`] (where and how long to wait), a [`Workload`] (what to send and how
//! to judge replies) and a [`Schedule`] (when to stop), and it hands back the
//! [`ConnStats`] it gathered. That is the interface a shared client library can
//! take over later.
//!
//! The hot path (persistent mode) is written for a load generator that runs on
//! one core against a fast server:
//!
//! - the request frame is encoded once; a refill of `k` requests is the last
//!   `k` frames of a pre-built buffer of `pipeline` copies, written with one
//!   `write` call (a partly written refill is still a suffix of that buffer);
//! - replies are read in large reads (room for every reply in flight, up to
//!   64 KiB); every complete frame in the buffer is parsed with
//!   [`asyncaproto::FrameCodec::check_head`] and checked in place, without
//!   allocating;
//! - one `Instant` is taken per write batch and one per read: every request of a
//!   batch shares its send time, every reply of a read its arrival time;
//! - the reply timeout is one pinned timer per connection, moved only when it
//!   fires (progress just records the time of the last reply);
//! - the only shared writes are a counter bump per read batch (for the progress
//!   display), with `-n` one atomic claim per refill, and one uncontended lock
//!   per [`super::stats::LATENCY_BATCH`] replies to hand latencies to the
//!   shared histogram.
//!
//! With `--tls`, each connection starts with a handshake (within the connect
//! timeout; the client configuration is built once for the run), and the
//! persistent loop polls the TLS stream's reads, writes and flushes together
//! ([`Driver::session_stream`]); replies are judged by the same code.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use asyncaproto::FrameCodec;
use asyncapy::tls::rustls::pki_types::ServerName;
use asyncapy::tls::tokio_rustls::{client::TlsStream, TlsConnector};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::payload::Request;
use super::stats::{micros, ConnStats, ErrorKind, Progress};
use super::verify::{Outcome, Verifier};

/// The most room one read is given: enough for many pipelined replies at once.
const MAX_READ_CHUNK: usize = 64 * 1024;

/// The least room one read is given.
const MIN_READ_CHUNK: usize = 4 * 1024;

/// The pause after a failed connection attempt, so that a server that is down
/// does not turn the load generator into a busy loop.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// How far "never" is, for deadlines that do not apply.
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

/// How a connection slot uses its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One connection carries requests until an error or the end of the run.
    Persistent,
    /// Connect, send one request, read its reply, close; again.
    PerRequest,
}

/// Where to connect, and how long to wait.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// The server's address.
    pub(crate) addr: SocketAddr,
    /// The longest wait for a connection to be established.
    pub(crate) connect_timeout: Duration,
    /// The longest wait for the next reply while requests are outstanding.
    pub(crate) reply_timeout: Duration,
    /// Set with `--tls`: every connection starts with this handshake.
    pub(crate) tls: Option<TlsTarget>,
}

/// How to open TLS on a connection: the client configuration (built once for
/// the run) and the name the server's certificate must carry.
#[derive(Clone)]
pub(crate) struct TlsTarget {
    pub(crate) connector: TlsConnector,
    pub(crate) server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTarget")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// An open connection: plain TCP, or TLS over TCP.
enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What to send, and how to judge what comes back.
#[derive(Debug)]
pub(crate) struct Workload {
    /// Frames replies (the head layout both sides agreed on).
    pub(crate) codec: FrameCodec,
    /// The one request, pre-encoded.
    pub(crate) request: Request,
    /// `pipeline` copies of the request frame, back to back.
    pub(crate) refill: Bytes,
    /// Requests kept outstanding per connection.
    pub(crate) pipeline: usize,
    /// Judges replies against the request.
    pub(crate) verifier: Verifier,
    /// Persistent connections or one connection per request.
    pub(crate) mode: Mode,
    /// The room given to one read: all the replies a connection can have in
    /// flight (`pipeline` echoes), within [4 KiB, 64 KiB]. Sized to the load so
    /// that thousands of connections do not each hold 64 KiB.
    pub(crate) read_chunk: usize,
    /// `--rate`: one request per connection every this long, instead of a new
    /// request as soon as a reply comes.
    pub(crate) pace: Option<Duration>,
}

impl Workload {
    /// The workload of sending `request` with `pipeline` requests outstanding.
    pub(crate) fn new(codec: FrameCodec, request: Request, pipeline: usize, mode: Mode) -> Self {
        let pipeline = pipeline.max(1);
        let read_chunk = pipeline
            .saturating_mul(request.frame.len())
            .clamp(MIN_READ_CHUNK, MAX_READ_CHUNK);
        Workload {
            codec,
            read_chunk,
            refill: request.repeated(pipeline),
            verifier: Verifier::new(&request, codec.config().head_len()),
            request,
            pipeline,
            mode,
            pace: None,
        }
    }
}

/// With `--rate`: when a connection's requests are due. A request that fell
/// due while the pipeline was full waited for the server: its latency counts
/// from when it was due (no coordinated omission). One that waited only for
/// this side's timer (which wakes up to a millisecond late) counts from its
/// write. The schedule runs on through reconnects.
#[derive(Debug)]
pub(crate) struct Pacer {
    interval: Duration,
    next: Instant,
    /// Since when the pipeline has been full, if it is.
    full_since: Option<Instant>,
}

impl Pacer {
    /// One request every `interval`, the first at `first`.
    pub(crate) fn new(interval: Duration, first: Instant) -> Pacer {
        Pacer {
            interval,
            next: first,
            full_since: None,
        }
    }

    /// When the request due at `due` counts from, sent at `now`.
    fn start_of(&self, due: Instant, now: Instant) -> Instant {
        match self.full_since {
            Some(since) if due >= since => due,
            _ => now,
        }
    }
}

/// When a run stops.
#[derive(Debug)]
pub(crate) enum Stop {
    /// At this instant (`--duration`).
    At(Instant),
    /// Once this many more requests have been sent (`--requests`), counted down.
    AfterRequests(AtomicU64),
}

/// The phases of a run, shared by every connection slot.
#[derive(Debug)]
pub(crate) struct Schedule {
    /// Requests sent before this instant are not measured.
    pub(crate) warmup_end: Instant,
    /// When the run stops.
    pub(crate) stop: Stop,
}

/// Permission to send `granted` more requests.
#[derive(Clone, Copy, Debug)]
struct Claim {
    granted: usize,
    measured: bool,
}

impl Schedule {
    /// Asks to send `want` more requests at `now`.
    fn claim(&self, now: Instant, want: usize) -> Claim {
        let measured = now >= self.warmup_end;
        let granted = match &self.stop {
            Stop::At(end) => {
                if now >= *end {
                    0
                } else {
                    want
                }
            }
            Stop::AfterRequests(_) if !measured => want,
            Stop::AfterRequests(left) => {
                let want64 = want as u64;
                match left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n > 0).then(|| n.saturating_sub(want64))
                }) {
                    Ok(before) => before.min(want64) as usize,
                    Err(_) => 0,
                }
            }
        };
        Claim { granted, measured }
    }

    /// The end of a timed run.
    fn stop_at(&self) -> Option<Instant> {
        match self.stop {
            Stop::At(end) => Some(end),
            Stop::AfterRequests(_) => None,
        }
    }

    /// Whether a timed run is over at `now`.
    fn time_is_up(&self, now: Instant) -> bool {
        self.stop_at().is_some_and(|end| now >= end)
    }

    /// Whether no request may be sent any more: the time is up, or every one
    /// of `--requests` has been claimed.
    fn is_spent(&self, now: Instant) -> bool {
        match &self.stop {
            Stop::At(end) => now >= *end,
            Stop::AfterRequests(left) => left.load(Ordering::Relaxed) == 0,
        }
    }
}

/// Whether the server can be reached at all. In a timed run, once the first
/// connection attempt of every slot has failed, the run stops (a dead port
/// would otherwise be retried for the whole duration, measuring nothing).
/// One slot that connects is enough for the run to go on.
#[derive(Debug)]
pub(crate) struct Reachability {
    /// How many connection slots there are.
    slots: usize,
    /// Slots whose first attempt failed.
    failed: AtomicUsize,
    /// Why the first failed attempt failed.
    reason: Mutex<Option<String>>,
    /// Told once every slot's first attempt has failed.
    unreachable: Notify,
}

impl Reachability {
    /// For a run of `slots` connection slots.
    pub(crate) fn new(slots: usize) -> Reachability {
        Reachability {
            slots,
            failed: AtomicUsize::new(0),
            reason: Mutex::new(None),
            unreachable: Notify::new(),
        }
    }

    /// A slot's first attempt failed, for `reason`.
    fn first_attempt_failed(&self, reason: String) {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(reason);
        if self.failed.fetch_add(1, Ordering::AcqRel) + 1 == self.slots {
            self.unreachable.notify_one();
        }
    }

    /// Waits until every slot's first attempt has failed: why the first failed.
    pub(crate) async fn unreachable(&self) -> String {
        self.unreachable.notified().await;
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_default()
    }
}

/// Everything a connection slot shares with the others.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Where to connect.
    pub(crate) target: Target,
    /// What to send.
    pub(crate) workload: Workload,
    /// When to stop.
    pub(crate) schedule: Schedule,
    /// Live counters for the progress display.
    pub(crate) progress: Progress,
    /// Whether any connection could be made, in a timed run.
    pub(crate) reach: Reachability,
}

/// How a persistent session ended.
enum SessionEnd {
    /// The run is over for this slot.
    Done,
    /// The connection is unusable; open another one if the run goes on.
    Reconnect,
}

/// What woke a persistent session up.
enum Event {
    /// This many bytes were read.
    Read(usize),
    /// A stuck refill can go on.
    Writable,
    /// The reply timer went off (timeout, or the end of a timed run).
    Timer,
    /// With `--rate`: a request is due.
    Due,
    /// The connection failed.
    Failed(ErrorKind),
}

/// A group of requests written together: they share their send time.
#[derive(Clone, Copy, Debug)]
struct Batch {
    sent: Instant,
    count: usize,
    measured: bool,
}

/// The requests in flight on one connection, oldest first (replies come in order).
#[derive(Debug, Default)]
struct InFlight {
    batches: VecDeque<Batch>,
    requests: usize,
}

impl InFlight {
    fn push(&mut self, sent: Instant, claim: Claim) {
        if claim.granted > 0 {
            self.batches.push_back(Batch {
                sent,
                count: claim.granted,
                measured: claim.measured,
            });
            self.requests += claim.granted;
        }
    }

    /// Retires the oldest request: its send time and whether it is measured.
    fn pop(&mut self) -> Option<(Instant, bool)> {
        let front = self.batches.front_mut()?;
        let answer = (front.sent, front.measured);
        front.count -= 1;
        if front.count == 0 {
            self.batches.pop_front();
        }
        self.requests -= 1;
        Some(answer)
    }

    fn clear(&mut self) {
        self.batches.clear();
        self.requests = 0;
    }
}

/// One connection slot: its own buffers and figures.
pub(crate) struct Driver {
    shared: Arc<Shared>,
    stats: ConnStats,
    read_buf: BytesMut,
    in_flight: InFlight,
    /// With `--rate`, this slot's schedule.
    pacer: Option<Pacer>,
    /// Until the slot's first connection attempt has ended.
    first_attempt: bool,
}

impl Driver {
    /// A slot that will report into `stats`.
    pub(crate) fn new(shared: Arc<Shared>, stats: ConnStats, pacer: Option<Pacer>) -> Self {
        let pipeline = shared.workload.pipeline;
        Driver {
            shared,
            stats,
            read_buf: BytesMut::new(),
            in_flight: InFlight {
                batches: VecDeque::with_capacity(pipeline),
                requests: 0,
            },
            pacer,
            first_attempt: true,
        }
    }

    /// With `--rate`: queues the requests due by `now`, as many as the
    /// pipeline has room for, each with its scheduled time (latency counts
    /// from it). Returns how many, and whether the run's budget is spent.
    fn queue_due(&mut self, now: Instant) -> (usize, bool) {
        let Some(pacer) = self.pacer.as_mut() else {
            return (0, false);
        };
        let schedule = &self.shared.schedule;
        let pipeline = self.shared.workload.pipeline;
        let room = pipeline.saturating_sub(self.in_flight.requests);
        let mut queued = 0;
        let mut spent = false;
        while queued < room && pacer.next <= now {
            let start = pacer.start_of(pacer.next, now);
            let claim = schedule.claim(start, 1);
            if claim.granted == 0 {
                spent = true;
                break;
            }
            self.in_flight.push(start, claim);
            pacer.next += pacer.interval;
            queued += 1;
        }
        pacer.full_since = if self.in_flight.requests >= pipeline {
            pacer.full_since.or(Some(now))
        } else {
            None
        };
        (queued, spent)
    }

    /// With `--rate`, when to wake up for the next request: `None` without a
    /// pacer, or while the pipeline is full (a reply makes room first).
    fn next_due(&self) -> Option<Instant> {
        let pacer = self.pacer.as_ref()?;
        (self.in_flight.requests < self.shared.workload.pipeline).then_some(pacer.next)
    }

    /// Runs the slot until the schedule says stop, and returns its figures.
    pub(crate) async fn run(mut self) -> ConnStats {
        match self.shared.workload.mode {
            Mode::Persistent => self.persistent().await,
            Mode::PerRequest => self.per_request().await,
        }
        self.stats.finished = Some(Instant::now());
        self.stats
    }

    fn error(&mut self, kind: ErrorKind) {
        self.stats.errors.add(kind);
        self.shared.progress.add_error();
    }

    /// Connects (with `--tls`, handshakes too), bounded by the connect
    /// timeout and by the end of a timed run. `None` when the run ended while
    /// connecting, or when connecting failed (the error is counted, then a
    /// short pause keeps a dead server from turning this into a busy loop;
    /// in a timed run, a failed first attempt is told to [`Reachability`]).
    async fn connect(&mut self) -> Option<Conn> {
        let shared = Arc::clone(&self.shared);
        let target = &shared.target;
        let deadline = Instant::now() + target.connect_timeout;
        let stop = shared.schedule.stop_at().unwrap_or(deadline);
        let connect = async {
            let stream = TcpStream::connect(target.addr).await.map_err(|e| {
                let kind = if e.kind() == io::ErrorKind::ConnectionRefused {
                    ErrorKind::ConnectRefused
                } else {
                    ErrorKind::ConnectError
                };
                (kind, e.to_string())
            })?;
            // Every write is a whole batch: never hold one back.
            let _ = stream.set_nodelay(true);
            match &target.tls {
                None => Ok(Conn::Plain(stream)),
                Some(tls) => tls
                    .connector
                    .connect(tls.server_name.clone(), stream)
                    .await
                    .map(|stream| Conn::Tls(Box::new(stream)))
                    .map_err(|e| (ErrorKind::Tls, format!("the TLS handshake failed: {e}"))),
            }
        };
        let (kind, reason) = match tokio::time::timeout_at(deadline.min(stop), connect).await {
            Ok(Ok(conn)) => {
                self.first_attempt = false;
                return Some(conn);
            }
            Err(_) if shared.schedule.time_is_up(Instant::now()) => return None,
            Err(_) => (
                ErrorKind::ConnectTimeout,
                format!(
                    "no connection within {:?} (--connect-timeout)",
                    target.connect_timeout
                ),
            ),
            Ok(Err(failure)) => failure,
        };
        self.error(kind);
        if std::mem::take(&mut self.first_attempt) && shared.schedule.stop_at().is_some() {
            shared.reach.first_attempt_failed(reason);
        }
        let pause = (Instant::now() + CONNECT_BACKOFF).min(stop);
        tokio::time::sleep_until(pause).await;
        None
    }

    async fn persistent(&mut self) {
        let pipeline = self.shared.workload.pipeline;
        loop {
            let now = Instant::now();
            let schedule = &self.shared.schedule;
            let claim = match self.pacer {
                // Paced: the session claims each request when it is due.
                Some(_) if schedule.is_spent(now) => return,
                Some(_) => Claim {
                    granted: 0,
                    measured: false,
                },
                None => match schedule.claim(now, pipeline) {
                    Claim { granted: 0, .. } => return,
                    claim => claim,
                },
            };
            let Some(conn) = self.connect().await else {
                continue;
            };
            let end = match conn {
                Conn::Plain(stream) => self.session(stream, claim).await,
                Conn::Tls(stream) => Box::pin(self.session_stream(stream, claim)).await,
            };
            match end {
                SessionEnd::Done => return,
                SessionEnd::Reconnect => {}
            }
        }
    }

    /// Drives one connection, starting with `first` requests, until the run
    /// ends or the connection fails.
    async fn session(&mut self, mut stream: TcpStream, first: Claim) -> SessionEnd {
        let shared = Arc::clone(&self.shared);
        let workload = &shared.workload;
        let schedule = &shared.schedule;
        let refill = &workload.refill[..];
        let frame_len = workload.request.frame.len();
        let reply_timeout = shared.target.reply_timeout;

        self.in_flight.clear();
        self.read_buf.clear();
        let now = Instant::now();
        let mut measuring = now >= schedule.warmup_end;
        let mut pending_write = first.granted * frame_len;
        self.in_flight.push(now, first);
        let mut last_reply = now;
        let next_deadline = |last_reply: Instant| {
            let timeout = last_reply
                .checked_add(reply_timeout)
                .unwrap_or_else(|| last_reply + FAR_FUTURE);
            schedule.stop_at().map_or(timeout, |end| end.min(timeout))
        };
        let timer = tokio::time::sleep_until(next_deadline(last_reply));
        tokio::pin!(timer);
        // With --rate: wakes the session when its next request is due.
        let pace = tokio::time::sleep_until(self.next_due().unwrap_or(now + FAR_FUTURE));
        tokio::pin!(pace);
        let mut spent = false;
        let (mut reader, writer) = stream.split();
        let stream = writer.as_ref();

        loop {
            if self.pacer.is_some() {
                let now = Instant::now();
                if schedule.time_is_up(now) {
                    return SessionEnd::Done;
                }
                let idle = self.in_flight.requests == 0;
                let (queued, now_spent) = self.queue_due(now);
                spent |= now_spent;
                if queued > 0 {
                    pending_write += queued * frame_len;
                    if idle {
                        // The reply timeout runs while requests are out.
                        last_reply = now;
                        timer.as_mut().reset(next_deadline(last_reply));
                    }
                }
                if let Some(due) = self.next_due() {
                    pace.as_mut().reset(due);
                }
            }
            // Write what is pending, for as long as the socket takes it.
            while pending_write > 0 {
                let rest = &refill[refill.len() - pending_write..];
                match stream.try_write(rest) {
                    Ok(0) => {
                        self.error(ErrorKind::Closed);
                        return SessionEnd::Reconnect;
                    }
                    Ok(n) => {
                        pending_write -= n;
                        if measuring {
                            self.stats.bytes_sent += n as u64;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        self.error(ErrorKind::Reset);
                        return SessionEnd::Reconnect;
                    }
                }
            }
            if self.in_flight.requests == 0 && (self.pacer.is_none() || spent) {
                return SessionEnd::Done;
            }
            let pacing = self.next_due().is_some();

            // Wait for replies (and for room to write, if a refill is stuck).
            // `read_buf` through `AsyncRead` (unlike `try_read_buf`) forgets the
            // socket's readiness after a short read, which saves the extra
            // `read` that would only answer "would block".
            if self.read_buf.capacity() - self.read_buf.len() < workload.read_chunk / 4 {
                self.read_buf.reserve(workload.read_chunk);
            }
            let event = tokio::select! {
                biased;
                read = reader.read_buf(&mut self.read_buf) => match read {
                    Ok(0) => Event::Failed(ErrorKind::Closed),
                    Ok(n) => Event::Read(n),
                    Err(_) => Event::Failed(ErrorKind::Reset),
                },
                writable = stream.writable(), if pending_write > 0 => match writable {
                    Ok(()) => Event::Writable,
                    Err(_) => Event::Failed(ErrorKind::Reset),
                },
                () = &mut timer => Event::Timer,
                () = &mut pace, if pacing => Event::Due,
            };
            let read = match event {
                Event::Read(n) => n,
                Event::Writable | Event::Due => continue,
                Event::Failed(kind) => {
                    self.error(kind);
                    return SessionEnd::Reconnect;
                }
                Event::Timer => {
                    let now = Instant::now();
                    if schedule.time_is_up(now) {
                        return SessionEnd::Done;
                    }
                    if self.in_flight.requests == 0 {
                        // Paced and waiting for the next request: no reply is owed.
                        last_reply = now;
                        timer.as_mut().reset(next_deadline(last_reply));
                        continue;
                    }
                    if now >= last_reply + reply_timeout {
                        self.error(ErrorKind::Timeout);
                        return SessionEnd::Reconnect;
                    }
                    timer.as_mut().reset(next_deadline(last_reply));
                    continue;
                }
            };
            let now = Instant::now();
            measuring = now >= schedule.warmup_end;
            let replies = match self.take_replies(now, measuring, read) {
                Ok(replies) => replies,
                Err(end) => return end,
            };
            if replies > 0 {
                last_reply = now;
            }

            // Refill what was answered.
            if schedule.time_is_up(now) {
                return SessionEnd::Done;
            }
            if self.pacer.is_none() {
                let claim = schedule.claim(now, replies);
                pending_write += claim.granted * frame_len;
                self.in_flight.push(now, claim);
            }
        }
    }

    /// Judges every complete reply in the read buffer, in place, after a read
    /// of `read` bytes at `now`; the number of replies, or how the session ends.
    #[inline]
    fn take_replies(
        &mut self,
        now: Instant,
        measuring: bool,
        read: usize,
    ) -> Result<usize, SessionEnd> {
        let shared = Arc::clone(&self.shared);
        let workload = &shared.workload;
        let codec = &workload.codec;
        if measuring {
            self.stats.bytes_received += read as u64;
        }

        // Every complete reply in the buffer, judged in place.
        let mut parsed = 0;
        let mut replies = 0;
        let mut echoes = 0u64;
        let mut missing = 0;
        let mut end = None;
        let mut latency: Option<(Instant, u64)> = None;
        loop {
            let rest = &self.read_buf[parsed..];
            let (encoding, total) = match codec.check_head(rest) {
                Ok(Some(head)) => head,
                Ok(None) => break,
                Err(_) => {
                    end = Some(ErrorKind::Malformed);
                    break;
                }
            };
            if rest.len() < total {
                missing = total - rest.len();
                break;
            }
            let outcome = workload.verifier.check(encoding, &rest[..total]);
            parsed += total;
            replies += 1;
            let Some((sent, measured)) = self.in_flight.pop() else {
                // A reply to nothing: the stream is out of step with us.
                end = Some(ErrorKind::Mismatch);
                break;
            };
            match outcome {
                Outcome::Echo => {
                    echoes += 1;
                    if measured {
                        // Replies of one batch share a latency: compute it once.
                        let us = match latency {
                            Some((batch, us)) if batch == sent => us,
                            _ => micros(now.saturating_duration_since(sent)),
                        };
                        latency = Some((sent, us));
                        self.stats.record_latency(us);
                        self.stats.requests += 1;
                    }
                }
                Outcome::Mismatch => self.error(ErrorKind::Mismatch),
                Outcome::Malformed => {
                    end = Some(ErrorKind::Malformed);
                    break;
                }
                Outcome::Failure(code) => {
                    // The server closes the session after a failure reply.
                    self.stats.errors.add_failure(code);
                    shared.progress.add_error();
                    shared.progress.add_requests(echoes);
                    return Err(SessionEnd::Reconnect);
                }
            }
        }
        shared.progress.add_requests(echoes);
        if let Some(kind) = end {
            self.error(kind);
            return Err(SessionEnd::Reconnect);
        }
        self.read_buf.advance(parsed);
        if missing > 0 {
            self.read_buf.reserve(missing);
        }
        Ok(replies)
    }

    /// Drives one connection over any byte stream (TLS) with the same protocol
    /// as [`Driver::session`]: one poll writes what is pending (as much as the
    /// stream takes), flushes, reads, and watches the timer.
    async fn session_stream<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        mut stream: S,
        first: Claim,
    ) -> SessionEnd {
        let shared = Arc::clone(&self.shared);
        let workload = &shared.workload;
        let schedule = &shared.schedule;
        let refill = &workload.refill[..];
        let frame_len = workload.request.frame.len();
        let reply_timeout = shared.target.reply_timeout;

        self.in_flight.clear();
        self.read_buf.clear();
        let now = Instant::now();
        let mut measuring = now >= schedule.warmup_end;
        let mut pending_write = first.granted * frame_len;
        self.in_flight.push(now, first);
        let mut last_reply = now;
        let next_deadline = |last_reply: Instant| {
            let timeout = last_reply
                .checked_add(reply_timeout)
                .unwrap_or_else(|| last_reply + FAR_FUTURE);
            schedule.stop_at().map_or(timeout, |end| end.min(timeout))
        };
        let timer = tokio::time::sleep_until(next_deadline(last_reply));
        tokio::pin!(timer);
        // With --rate: wakes the session when its next request is due.
        let pace = tokio::time::sleep_until(self.next_due().unwrap_or(now + FAR_FUTURE));
        tokio::pin!(pace);
        let mut spent = false;
        // Written but perhaps still in the TLS layer's buffer.
        let mut unflushed = false;

        loop {
            if self.pacer.is_some() {
                let now = Instant::now();
                if schedule.time_is_up(now) {
                    return SessionEnd::Done;
                }
                let idle = self.in_flight.requests == 0;
                let (queued, now_spent) = self.queue_due(now);
                spent |= now_spent;
                if queued > 0 {
                    pending_write += queued * frame_len;
                    if idle {
                        // The reply timeout runs while requests are out.
                        last_reply = now;
                        timer.as_mut().reset(next_deadline(last_reply));
                    }
                }
                if let Some(due) = self.next_due() {
                    pace.as_mut().reset(due);
                }
            }
            if self.in_flight.requests == 0 && (self.pacer.is_none() || spent) {
                return SessionEnd::Done;
            }
            let pacing = self.next_due().is_some();
            if self.read_buf.capacity() - self.read_buf.len() < workload.read_chunk / 4 {
                self.read_buf.reserve(workload.read_chunk);
            }
            let read_buf = &mut self.read_buf;
            let stats = &mut self.stats;
            let event = poll_fn(|cx| {
                while pending_write > 0 {
                    let rest = &refill[refill.len() - pending_write..];
                    match Pin::new(&mut stream).poll_write(cx, rest) {
                        Poll::Ready(Ok(0)) => return Poll::Ready(Event::Failed(ErrorKind::Closed)),
                        Poll::Ready(Ok(n)) => {
                            pending_write -= n;
                            unflushed = true;
                            if measuring {
                                stats.bytes_sent += n as u64;
                            }
                        }
                        Poll::Ready(Err(_)) => return Poll::Ready(Event::Failed(ErrorKind::Reset)),
                        Poll::Pending => break,
                    }
                }
                if unflushed {
                    match Pin::new(&mut stream).poll_flush(cx) {
                        Poll::Ready(Ok(())) => unflushed = false,
                        Poll::Ready(Err(_)) => return Poll::Ready(Event::Failed(ErrorKind::Reset)),
                        Poll::Pending => {}
                    }
                }
                let read = pin!(stream.read_buf(&mut *read_buf)).poll(cx);
                match read {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Event::Failed(ErrorKind::Closed)),
                    Poll::Ready(Ok(n)) => return Poll::Ready(Event::Read(n)),
                    Poll::Ready(Err(_)) => return Poll::Ready(Event::Failed(ErrorKind::Reset)),
                    Poll::Pending => {}
                }
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Timer);
                }
                if pacing && pace.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Due);
                }
                Poll::Pending
            })
            .await;
            let read = match event {
                Event::Read(n) => n,
                Event::Writable | Event::Due => continue,
                Event::Failed(kind) => {
                    self.error(kind);
                    return SessionEnd::Reconnect;
                }
                Event::Timer => {
                    let now = Instant::now();
                    if schedule.time_is_up(now) {
                        return SessionEnd::Done;
                    }
                    if self.in_flight.requests == 0 {
                        // Paced and waiting for the next request: no reply is owed.
                        last_reply = now;
                        timer.as_mut().reset(next_deadline(last_reply));
                        continue;
                    }
                    if now >= last_reply + reply_timeout {
                        self.error(ErrorKind::Timeout);
                        return SessionEnd::Reconnect;
                    }
                    timer.as_mut().reset(next_deadline(last_reply));
                    continue;
                }
            };
            let now = Instant::now();
            measuring = now >= schedule.warmup_end;
            let replies = match self.take_replies(now, measuring, read) {
                Ok(replies) => replies,
                Err(end) => return end,
            };
            if replies > 0 {
                last_reply = now;
            }
            if schedule.time_is_up(now) {
                return SessionEnd::Done;
            }
            if self.pacer.is_none() {
                let claim = schedule.claim(now, replies);
                pending_write += claim.granted * frame_len;
                self.in_flight.push(now, claim);
            }
        }
    }

    async fn per_request(&mut self) {
        let shared = Arc::clone(&self.shared);
        let workload = &shared.workload;
        let schedule = &shared.schedule;
        loop {
            let start = Instant::now();
            let claim = schedule.claim(start, 1);
            if claim.granted == 0 {
                return;
            }
            let Some(mut stream) = self.connect().await else {
                if schedule.time_is_up(Instant::now()) {
                    return;
                }
                continue;
            };
            let deadline = Instant::now() + shared.target.reply_timeout;
            let deadline = schedule.stop_at().map_or(deadline, |end| end.min(deadline));
            let exchange = exchange(&mut stream, workload, &mut self.read_buf);
            let (encoding, total) = match tokio::time::timeout_at(deadline, exchange).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(kind)) => {
                    self.error(kind);
                    continue;
                }
                Err(_) if schedule.time_is_up(Instant::now()) => return,
                Err(_) => {
                    self.error(ErrorKind::Timeout);
                    continue;
                }
            };
            let now = Instant::now();
            drop(stream);
            if claim.measured {
                self.stats.bytes_sent += workload.request.frame.len() as u64;
                self.stats.bytes_received += total as u64;
            }
            let reply = self.read_buf.get(..total).unwrap_or_default();
            match workload.verifier.check(encoding, reply) {
                Outcome::Echo => {
                    shared.progress.add_requests(1);
                    if claim.measured {
                        self.stats.requests += 1;
                        let latency = micros(now.saturating_duration_since(start));
                        self.stats.record_latency(latency);
                    }
                }
                Outcome::Mismatch => self.error(ErrorKind::Mismatch),
                Outcome::Malformed => self.error(ErrorKind::Malformed),
                Outcome::Failure(code) => {
                    self.stats.errors.add_failure(code);
                    shared.progress.add_error();
                }
            }
        }
    }
}

/// Sends the request on a fresh connection and reads one whole reply into
/// `buf`: its encoding and length.
async fn exchange(
    stream: &mut Conn,
    workload: &Workload,
    buf: &mut BytesMut,
) -> Result<(asyncaproto::Encoding, usize), ErrorKind> {
    stream
        .write_all(&workload.request.frame)
        .await
        .map_err(|_| ErrorKind::Reset)?;
    stream.flush().await.map_err(|_| ErrorKind::Reset)?;
    buf.clear();
    loop {
        match workload.codec.check_head(buf) {
            Err(_) => return Err(ErrorKind::Malformed),
            Ok(Some((encoding, total))) if buf.len() >= total => return Ok((encoding, total)),
            Ok(Some((_, total))) => buf.reserve(total - buf.len()),
            Ok(None) => {}
        }
        if buf.capacity() - buf.len() < workload.read_chunk / 4 {
            buf.reserve(workload.read_chunk);
        }
        match stream.read_buf(buf).await {
            Ok(0) => return Err(ErrorKind::Closed),
            Ok(_) => {}
            Err(_) => return Err(ErrorKind::Reset),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_claims_never_exceed_the_budget() {
        let now = Instant::now();
        let schedule = Schedule {
            warmup_end: now,
            stop: Stop::AfterRequests(AtomicU64::new(5)),
        };
        assert_eq!(schedule.claim(now, 3).granted, 3);
        assert_eq!(schedule.claim(now, 3).granted, 2);
        assert_eq!(schedule.claim(now, 3).granted, 0);
    }

    #[test]
    fn warmup_claims_are_free_and_unmeasured() {
        let now = Instant::now();
        let schedule = Schedule {
            warmup_end: now + Duration::from_secs(60),
            stop: Stop::AfterRequests(AtomicU64::new(1)),
        };
        let claim = schedule.claim(now, 4);
        assert_eq!((claim.granted, claim.measured), (4, false));
        let later = schedule.claim(now + Duration::from_secs(61), 4);
        assert_eq!((later.granted, later.measured), (1, true));
    }

    #[test]
    fn timed_claims_stop_at_the_end() {
        let now = Instant::now();
        let schedule = Schedule {
            warmup_end: now,
            stop: Stop::At(now + Duration::from_secs(1)),
        };
        assert_eq!(schedule.claim(now, 4).granted, 4);
        assert_eq!(schedule.claim(now + Duration::from_secs(1), 4).granted, 0);
        assert!(schedule.time_is_up(now + Duration::from_secs(2)));
    }

    #[test]
    fn paced_requests_count_from_their_due_time_only_when_the_server_held_them() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut pacer = Pacer::new(ms(10), t0);
        // Room all along: a late wake-up is ours, the latency counts from the write.
        assert_eq!(pacer.start_of(t0, t0 + ms(1)), t0 + ms(1));
        // The pipeline has been full since t0 + 5 ms: a request due at 10 ms,
        // sent at 30 ms when a reply made room, counts from 10 ms.
        pacer.full_since = Some(t0 + ms(5));
        assert_eq!(pacer.start_of(t0 + ms(10), t0 + ms(30)), t0 + ms(10));
        // One due before the pipeline filled up was held by nothing but us.
        assert_eq!(pacer.start_of(t0 + ms(2), t0 + ms(30)), t0 + ms(30));
    }

    #[test]
    fn in_flight_pops_in_order() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(1);
        let mut in_flight = InFlight::default();
        in_flight.push(
            t0,
            Claim {
                granted: 2,
                measured: false,
            },
        );
        in_flight.push(
            t1,
            Claim {
                granted: 1,
                measured: true,
            },
        );
        assert_eq!(in_flight.requests, 3);
        assert_eq!(in_flight.pop(), Some((t0, false)));
        assert_eq!(in_flight.pop(), Some((t0, false)));
        assert_eq!(in_flight.pop(), Some((t1, true)));
        assert_eq!(in_flight.pop(), None);
        assert_eq!(in_flight.requests, 0);
    }
}
