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
//! - one session loop serves plain TCP and TLS alike (generic over the
//!   stream): one poll writes what is pending (as much as the stream takes),
//!   flushes, reads, and watches the timers, so a refill is never a separate
//!   wake-up.
//!
//! With `--tls`, each connection starts with a handshake (within the connect
//! timeout; the client configuration is built once for the run); replies are
//! judged by the same code.
//!
//! Modules: [`target`] holds where to connect and what to send, [`schedule`]
//! when a slot may send, [`session`] the persistent loop; this one the slot
//! itself (connecting, reconnecting, and the one-request-per-connection mode).

mod schedule;
mod session;
mod target;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use asyncaproto::ErrorCode;
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

pub(crate) use schedule::{Pacer, Reachability, Schedule, Stop};
pub(crate) use target::{Mode, Target, TlsTarget, Workload};

use super::stats::{micros, ConnStats, ErrorKind, Progress};
use super::verify::Outcome;
use schedule::Claim;
use session::{InFlight, SessionEnd};
use target::Conn;

/// The pause after a failed connection attempt, so that a server that is down
/// does not turn the load generator into a busy loop.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// How far "never" is, for deadlines that do not apply.
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

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
    /// With `--resend`: when the current run of losses began (none since the
    /// last answered request: `None`).
    resend_since: Option<Instant>,
}

/// Why [`Driver::connect`] gave no connection.
enum NoConn {
    /// The run ended while connecting.
    Over,
    /// The attempt failed and was counted as an error.
    Failed,
    /// With `--resend`: refused while the server restarts; try again.
    Retry,
}

impl Driver {
    /// A slot that will report into `stats`.
    pub(crate) fn new(shared: Arc<Shared>, stats: ConnStats, pacer: Option<Pacer>) -> Self {
        let pipeline = shared.workload.pipeline;
        Driver {
            shared,
            stats,
            read_buf: BytesMut::new(),
            in_flight: InFlight::with_capacity(pipeline),
            pacer,
            first_attempt: true,
            resend_since: None,
        }
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

    /// With `--resend`, whether what was just lost (at `now`) is tried again
    /// rather than counted as an error: within `--timeout` of the first loss
    /// since the server last answered a request.
    fn may_resend(&mut self, now: Instant) -> bool {
        if !self.shared.target.resend {
            return false;
        }
        let since = *self.resend_since.get_or_insert(now);
        now.saturating_duration_since(since) < self.shared.target.reply_timeout
    }

    /// Connects (with `--tls`, handshakes too), bounded by the connect
    /// timeout and by the end of a timed run. No connection when the run
    /// ended while connecting, or when connecting failed: the error is
    /// counted (with `--resend`, a refused attempt after the slot's first is
    /// counted as resent instead, while [`Driver::may_resend`] allows), then a
    /// short pause keeps a dead server from turning this into a busy loop; in
    /// a timed run, a failed first attempt is told to [`Reachability`].
    async fn connect(&mut self) -> Result<Conn, NoConn> {
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
                return Ok(conn);
            }
            Err(_) if shared.schedule.time_is_up(Instant::now()) => return Err(NoConn::Over),
            Err(_) => (
                ErrorKind::ConnectTimeout,
                format!(
                    "no connection within {:?} (--connect-timeout)",
                    target.connect_timeout
                ),
            ),
            Ok(Err(failure)) => failure,
        };
        let first = std::mem::take(&mut self.first_attempt);
        let outcome = if !first
            && matches!(kind, ErrorKind::ConnectRefused)
            && self.may_resend(Instant::now())
        {
            self.stats.resent.connects += 1;
            NoConn::Retry
        } else {
            self.error(kind);
            if first && shared.schedule.stop_at().is_some() {
                shared.reach.first_attempt_failed(reason);
            }
            NoConn::Failed
        };
        let pause = (Instant::now() + CONNECT_BACKOFF).min(stop);
        tokio::time::sleep_until(pause).await;
        Err(outcome)
    }

    async fn persistent(&mut self) {
        let pipeline = self.shared.workload.pipeline;
        self.in_flight.clear();
        loop {
            let now = Instant::now();
            let schedule = &self.shared.schedule;
            // With --resend, requests a restarting server lost are still in
            // flight: they go first, and the pipeline is topped up.
            let carried = self.in_flight.requests();
            match self.pacer {
                // Paced: the session claims each request when it is due.
                Some(_) if carried == 0 && schedule.is_spent(now) => return,
                Some(_) => {}
                None => match schedule.claim(now, pipeline - carried) {
                    Claim { granted: 0, .. } if carried == 0 => return,
                    claim => self.in_flight.push(now, claim),
                },
            }
            let conn = match self.connect().await {
                Ok(conn) => conn,
                // Refused while the server restarts: the requests wait.
                Err(NoConn::Retry) => continue,
                Err(NoConn::Over | NoConn::Failed) => {
                    // Lost with the attempt (it cost them: a dead server
                    // cannot keep a counted run going).
                    self.in_flight.clear();
                    continue;
                }
            };
            let end = match conn {
                Conn::Plain(stream) => self.session(stream).await,
                Conn::Tls(stream) => Box::pin(self.session(stream)).await,
            };
            match end {
                SessionEnd::Done => return,
                SessionEnd::Reconnect => self.in_flight.clear(),
                SessionEnd::Resend => {}
            }
        }
    }

    async fn per_request(&mut self) {
        let shared = Arc::clone(&self.shared);
        let workload = &shared.workload;
        let schedule = &shared.schedule;
        let mut claim = Claim {
            granted: 0,
            measured: false,
        };
        let mut start = Instant::now();
        loop {
            if claim.granted == 0 {
                // A new request (with --resend, a lost one is kept, with its
                // start, until it is answered).
                start = Instant::now();
                claim = schedule.claim(start, 1);
                if claim.granted == 0 {
                    return;
                }
            }
            let mut stream = match self.connect().await {
                Ok(stream) => stream,
                Err(NoConn::Retry) => continue,
                Err(NoConn::Over | NoConn::Failed) => {
                    claim.granted = 0;
                    if schedule.time_is_up(Instant::now()) {
                        return;
                    }
                    continue;
                }
            };
            let deadline = Instant::now() + shared.target.reply_timeout;
            let deadline = schedule.stop_at().map_or(deadline, |end| end.min(deadline));
            let exchange = exchange(&mut stream, workload, &mut self.read_buf);
            let (encoding, total) = match tokio::time::timeout_at(deadline, exchange).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(ErrorKind::Closed | ErrorKind::Reset))
                    if self.may_resend(Instant::now()) =>
                {
                    self.stats.resent.requests += 1;
                    continue;
                }
                Ok(Err(kind)) => {
                    self.error(kind);
                    claim.granted = 0;
                    continue;
                }
                Err(_) if schedule.time_is_up(Instant::now()) => return,
                Err(_) => {
                    self.error(ErrorKind::Timeout);
                    claim.granted = 0;
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
            let outcome = workload.verifier.check(encoding, reply);
            if matches!(outcome, Outcome::Failure(ErrorCode::ShuttingDown)) && self.may_resend(now)
            {
                self.stats.resent.requests += 1;
                continue;
            }
            claim.granted = 0;
            match outcome {
                Outcome::Echo => {
                    self.resend_since = None;
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
