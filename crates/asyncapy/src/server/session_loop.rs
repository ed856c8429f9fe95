//! The session loop ([`SessionLoop`]): one task per connection, from the first byte to the close.
//!
//! ```text
//!          ┌────────────── more bytes ◀────────────────┐
//!          ▼                                            │
//! read ─▶ decode every complete frame ─▶ dispatch ─▶ flush replies (one write)
//!   │          │ bad head / payload                     │
//!   │          ▼                                        ▼
//!   │     failure reply ─▶ lingering close        wait: bytes | close | shutdown | deadline
//!   └ EOF ─▶ close
//! ```
//!
//! The read buffer is allocated only when the socket first becomes readable, so
//! an idle session costs little. The idle deadline moves only when a complete
//! packet arrives: a peer trickling bytes cannot keep a session alive.
//!
//! What handlers send is written when sent: a send wakes the session when it
//! waits (for input, or for a handler that awaits something), and the session
//! writes while the handler goes on. Only while the session is processing a
//! batch of input without waiting do sends skip the wake-up: their frames leave
//! together when the batch is done, in one write. A handler that waits for a
//! quick answer from elsewhere may cork the session ([`Client::cork`]): what is
//! sent meanwhile then waits for the batch too (up to 64 KiB, or until the cork
//! is lifted), so that a pipelined batch's replies still leave in one write.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use asyncaproto::{Encoding, ErrorCode};
use bytes::{Buf, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{sleep_until, Instant, Sleep};
use tracing::{debug, info, warn};

use crate::dispatch::{HandlerSlots, Outcome};
use crate::metrics::Refusal;
use crate::packet::Packet;
use crate::reply::FailureCode;
use crate::server::thread_spares::ThreadSpares;
use crate::server::transport::{poll_read_more, Transport};
use crate::server::ServerContext;
use crate::session::{Client, RegistryGuard, SessionState, Signal};

/// A read or write buffer emptied while larger than this is released rather
/// than kept: room for one read of [`MAX_READ_SIZE`] and a 64 KiB packet
/// begun is kept, so a stream of such packets does not allocate fresh
/// buffers (and touch fresh pages) for every batch.
const KEEP_BUFFER_UP_TO: usize = 256 * 1024;

/// The most room one read is given (a larger packet still arrives whole, over
/// several reads): room for two 64 KiB packets, so that a session that
/// pipelines large packets reads more than one at a time. (256 KiB cut the
/// CPU per request at 16 × 16 64 KiB packets by a further 8%, but raised the
/// p99 at 256 connections × 16 by a quarter.)
const MAX_READ_SIZE: usize = 128 * 1024;

/// Room kept in the read buffer beyond the rest of a frame begun (see
/// [`SessionLoop::make_room_for_rest`]).
const READ_SLACK: usize = 1024;

/// Output held back by a corked handler ([`Client::cork`]) is written anyway
/// once the outbox holds this much: a batch of large replies gains nothing
/// from waiting, and the outbox has a limit.
const CORK_LIMIT: usize = 64 * 1024;

/// At most this long, and this many bytes, are read and discarded after the
/// server's last reply before it drops a connection (so that the reply is not
/// destroyed by a reset caused by unread input).
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 1024 * 1024;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The client closed the connection between packets.
    ClientClosed,
    /// The client closed the connection inside a packet.
    Truncated,
    /// A handler (or another session) closed the session.
    Closed,
    /// The server replied with a failure code and closed.
    Failed(ErrorCode),
    /// The transport failed (reset, write timeout...).
    Broken,
    /// The shutdown's grace period ended while the session was still open.
    Aborted,
}

pub(crate) struct SessionLoop<T: Transport> {
    ctx: Arc<ServerContext>,
    state: Arc<SessionState>,
    stream: T,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// The session's one timer: the idle deadline, the handler deadline, the
    /// write deadline and the linger deadline, one after the other.
    deadline: Pin<Box<Sleep>>,
    /// The session's entry in the registry, dropped as soon as the session
    /// ends (before the lingering close).
    registered: Option<RegistryGuard>,
    /// The connection's place under `max_connections`, held to the close.
    _permit: OwnedSemaphorePermit,
    /// How much room each read gets: `buf` at first, doubled whenever a read
    /// fills it, up to [`MAX_READ_SIZE`].
    read_size: usize,
    /// Since when the peer has taken none of the bytes waiting to be written
    /// (none while everything is written): a peer that reads nothing for
    /// `timeout` is cut, however the wait is split between a handler's run
    /// and the writes after it.
    stalled_since: Option<Instant>,
    /// The handlers' futures, reused packet after packet (none before the first).
    slots: HandlerSlots,
}

/// What ended a wait for input.
enum Wake {
    /// Bytes arrived (or the stream ended: the next read says which).
    Input(io::Result<usize>),
    /// A handle queued frames to send (a handler still running, or another
    /// session's).
    Output,
    /// The session was closed by a handle.
    Closed,
    /// The server is shutting down.
    Shutdown,
    /// The deadline passed.
    Deadline,
    /// The grace period of a shutdown is over.
    Abort,
}

impl<T: Transport> SessionLoop<T> {
    pub(crate) fn new(
        ctx: Arc<ServerContext>,
        state: Arc<SessionState>,
        stream: T,
        registered: RegistryGuard,
        early: BytesMut,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        let deadline = Box::pin(sleep_until(Instant::now() + ctx.config.timeout));
        SessionLoop {
            read_size: ctx.config.buf,
            ctx,
            state,
            stream,
            rbuf: early,
            wbuf: BytesMut::new(),
            deadline,
            registered: Some(registered),
            _permit: permit,
            stalled_since: None,
            slots: HandlerSlots::default(),
        }
    }

    /// Serves the session until it ends, then closes the connection.
    ///
    /// While the session rests, only the small wait for input is held; the
    /// processing of a batch (decode, dispatch, write) lives in a box for the
    /// time it runs, so that an idle session costs as little memory as possible.
    pub(crate) async fn run(mut self) -> End {
        let end = 'session: {
            // Bytes that arrived with a PROXY header are handled before any wait.
            if !self.rbuf.is_empty() {
                if let Some(metrics) = &self.ctx.metrics {
                    metrics.received(self.rbuf.len());
                }
                let wake = Wake::Input(Ok(self.rbuf.len()));
                if let Some(end) = Box::pin(self.on_wake(wake)).await {
                    break 'session end;
                }
            }
            loop {
                let wake = self.wait().await;
                if let Some(end) = Box::pin(self.on_wake(wake)).await {
                    break 'session end;
                }
            }
        };
        // The session is over: it no longer counts against any limit, and
        // handles see it closed (senders waiting for room give up).
        self.registered = None;
        self.state.close();
        match end {
            End::ClientClosed | End::Truncated | End::Broken | End::Aborted => {}
            End::Closed | End::Failed(_) => Box::pin(self.linger()).await,
        }
        info!("The connection was closed ({end:?})");
        end
    }

    /// Waits for more bytes, a close, the shutdown, or the deadline.
    ///
    /// A single `poll_fn` over wakers that live in the socket and the session
    /// state: this is the state an idle session rests in, and it is tiny.
    async fn wait(&mut self) -> Wake {
        poll_fn(|cx| {
            // Input already sent is read before a shutdown is acted on: packets
            // a client sent before the shutdown are in flight, and get answered.
            let signal = self.state.poll_signal(cx);
            match signal {
                Poll::Ready(Signal::Abort) => return Poll::Ready(Wake::Abort),
                Poll::Ready(Signal::Close) => return Poll::Ready(Wake::Closed),
                Poll::Ready(Signal::Shutdown) | Poll::Pending => {}
            }
            if let Poll::Ready(read) =
                poll_read_more(&mut self.stream, &mut self.rbuf, self.read_size, cx)
            {
                if let Ok(n) = read {
                    if let Some(metrics) = &self.ctx.metrics {
                        metrics.received(n);
                    }
                    // A read that filled all the room there was: more is probably
                    // waiting, so read more at a time (up to MAX_READ_SIZE).
                    if n >= self.read_size {
                        self.read_size = (self.read_size * 2).min(MAX_READ_SIZE);
                    }
                }
                return Poll::Ready(Wake::Input(read));
            }
            if signal.is_ready() {
                return Poll::Ready(Wake::Shutdown);
            }
            if self.state.poll_output(cx).is_ready() {
                return Poll::Ready(Wake::Output);
            }
            if self.deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Deadline);
            }
            Poll::Pending
        })
        .await
    }

    /// Acts on what ended the wait; `Some` when the session is over.
    async fn on_wake(&mut self, wake: Wake) -> Option<End> {
        match wake {
            Wake::Input(Ok(0)) if self.rbuf.is_empty() => Some(End::ClientClosed),
            // A TLS client that closes its socket without close_notify (as
            // Python's ssl module does on close()): between packets, a close
            // like any other; the framing tells a cut packet apart.
            Wake::Input(Err(e))
                if e.kind() == io::ErrorKind::UnexpectedEof && self.rbuf.is_empty() =>
            {
                Some(End::ClientClosed)
            }
            Wake::Input(Ok(0)) => {
                debug!(
                    "Connection closed inside a packet ({} bytes buffered)",
                    self.rbuf.len()
                );
                Some(End::Truncated)
            }
            Wake::Input(Ok(_)) => {
                self.state.begin_batch();
                let end = self.process().await;
                self.state.end_batch();
                end
            }
            Wake::Output => match self.flush().await {
                Ok(()) => None,
                Err(_) => Some(End::Broken),
            },
            Wake::Input(Err(e)) => {
                debug!("Read failed: {e}");
                Some(End::Broken)
            }
            Wake::Abort => Some(End::Aborted),
            Wake::Closed => Some(match self.flush().await {
                Ok(()) => End::Closed,
                Err(_) => End::Broken,
            }),
            Wake::Shutdown => {
                info!("Server shutting down");
                Some(
                    self.fail(ErrorCode::ShuttingDown, self.session_encoding())
                        .await,
                )
            }
            Wake::Deadline => {
                info!(
                    "Session timed out after {:?} without a complete packet",
                    self.ctx.config.timeout
                );
                Some(
                    self.fail(ErrorCode::TimedOut, self.session_encoding())
                        .await,
                )
            }
        }
    }

    /// Handles every complete frame buffered, in order, then writes all the
    /// replies at once; `Some` when the session is over.
    async fn process(&mut self) -> Option<End> {
        let ctx = self.ctx.clone();
        let period = ctx.config.timeout;
        let client = Client::new(self.state.clone());
        let mut got_packet = false;
        // Every frame of the batch was complete when it was read: the time a
        // packet spends counts from here (read only when metrics are kept).
        let metrics = ctx.metrics.as_deref();
        let traced = tracing::enabled!(tracing::Level::DEBUG);
        let arrived = (metrics.is_some() || traced).then(Instant::now);
        let mut settled = metrics
            .zip(arrived)
            .map(|(m, at)| crate::metrics::Settled::new(m, at));
        // The allocations of the batch's packets, handed on from each packet
        // to the next: the thread's, given back with the batch.
        let mut batch_spares = ThreadSpares::take();
        let spares = &mut batch_spares.0;
        let mut shell = None;
        loop {
            if self.state.is_closing() {
                break;
            }
            // The payload is decoded where it lies in the read buffer.
            let (frame_encoding, frame_len) = match self.ctx.codec.check_head(&self.rbuf) {
                Ok(Some((encoding, total))) if total <= self.rbuf.len() => (encoding, total),
                Ok(Some((_, total))) => {
                    self.make_room_for_rest(total);
                    break;
                }
                Ok(None) => break,
                Err(e) => {
                    warn!("Refusing packet: {e}");
                    let code = e.error_code().unwrap_or(ErrorCode::HeaderInvalid);
                    return Some(self.fail(code, e.reply_encoding()).await);
                }
            };
            got_packet = true;
            let head_len = ctx.codec.config().head_len();
            let payload = self.rbuf.get(head_len..frame_len).unwrap_or_default();
            debug!(
                "Expected stream length is {}, Protocol-Version is V2, Content-Encoding is {}",
                payload.len() + 2,
                frame_encoding
            );
            let encoding = self.state.settle_encoding(frame_encoding);
            let decoded = frame_encoding.decode_with(payload, spares);
            self.rbuf.advance(frame_len);
            let map = match decoded {
                Ok(map) => map,
                Err(e) => {
                    warn!("Malformed {frame_encoding} payload: {e}");
                    return Some(self.fail(ErrorCode::RequestMalformed, frame_encoding).await);
                }
            };
            let packet = Packet::refill(shell.take(), map, encoding);
            let allowed = match (&ctx.rate, &ctx.shared, ctx.config.rate_limit) {
                (Some(local), _, _) => {
                    local.allow(client.ip(), arrived.unwrap_or_else(Instant::now))
                }
                (None, Some(shared), Some(rate)) => shared.allow(client.ip(), rate, metrics).await,
                _ => true,
            };
            {
                if !allowed {
                    info!("Rate limit reached for {}", client.ip());
                    if let (Some(metrics), Some(arrived)) = (metrics, arrived) {
                        metrics.refused(Refusal::RateLimited);
                        let code = ErrorCode::RateLimited.as_str();
                        metrics.request(None, Some(code), arrived.elapsed());
                    }
                    let code = FailureCode::Protocol(ErrorCode::RateLimited);
                    self.state.queue_failure_code(code, encoding, false);
                    continue;
                }
            }
            let (outcome, waited) = match self.handle(&ctx, &client, &packet, metrics).await {
                Ok(handled) => handled,
                Err(end) => return Some(end),
            };
            shell = packet.recycle(spares);
            let Some((outcome, route)) = outcome else {
                warn!("Handler timed out after {period:?}");
                if let (Some(metrics), Some(arrived)) = (metrics, arrived) {
                    metrics.request(None, Some(ErrorCode::TimedOut.as_str()), arrived.elapsed());
                }
                return Some(self.fail(ErrorCode::TimedOut, encoding).await);
            };
            match (&mut settled, outcome.failure_label()) {
                (Some(settled), None) if !waited => settled.add(route),
                (Some(settled), failure) => {
                    settled.settle();
                    let arrived = settled_at(arrived);
                    if let Some(metrics) = metrics {
                        metrics.request(route, failure, arrived.elapsed());
                    }
                }
                (None, _) => {}
            }
            if let (true, Some(arrived)) = (traced, arrived) {
                let handler = route.and_then(|id| ctx.dispatcher.route_name(id));
                debug!(
                    handler = handler.unwrap_or(crate::metrics::NO_HANDLER),
                    outcome = outcome.failure_label().unwrap_or("ok"),
                    duration = arrived.elapsed().as_secs_f64(),
                    "Packet handled"
                );
            }
            if let Outcome::Handled = outcome {
                continue;
            }
            if let Some(end) = self.reply_failure(&outcome, encoding).await {
                return Some(end);
            }
        }
        // The batch's replies are queued: its packets are counted before
        // the write.
        drop(settled);
        if self.flush().await.is_err() {
            return Some(End::Broken);
        }
        if self.state.is_closing() {
            return Some(End::Closed);
        }
        if self.rbuf.is_empty() {
            self.settle_emptied_read_buffer();
        }
        if got_packet {
            self.deadline.as_mut().reset(Instant::now() + period);
        }
        None
    }

    /// After a batch that read the buffer to its end. Such a buffer counts
    /// only the room after where reading stopped (none when the last read
    /// filled it), so its allocation is taken back from its start: the next
    /// read lands in it, not on the stack (in two reads). Asking for a byte
    /// more than the room it shows moves it back whole (`try_reclaim` never
    /// allocates). Then a large one is let go, and reads start small again.
    fn settle_emptied_read_buffer(&mut self) {
        let _ = self.rbuf.try_reclaim(self.rbuf.capacity() + 1);
        if self.rbuf.capacity() > KEEP_BUFFER_UP_TO {
            self.rbuf = BytesMut::new();
            self.read_size = self.ctx.config.buf;
        }
    }

    /// Room in the read buffer for the rest of its first frame, `total`
    /// bytes long, and [`READ_SLACK`] more (at most [`MAX_READ_SIZE`] of the
    /// rest at a time: a peer that declares a large packet and trickles gets
    /// the buffer grown as its bytes come). A read that brings exactly the
    /// rest then falls short of the room, which tells the reactor that the
    /// socket is drained; a read that fills its room is followed by one that
    /// finds nothing (a system call per packet, for packets as large as a read).
    fn make_room_for_rest(&mut self, total: usize) {
        let len = self.rbuf.len();
        let missing = total.saturating_sub(len);
        let rest = missing.min(MAX_READ_SIZE);
        let want = (rest + READ_SLACK).max(self.read_size);
        let room = self.rbuf.capacity() - len;
        // Enough: more than the rest, when the rest fits in one read (what
        // a read brings of it takes as much room as it leaves, so this holds
        // until the frame is in); else half a read's room, so that a packet
        // that trickles in is not copied into a new buffer at every read.
        let enough = if missing <= MAX_READ_SIZE {
            missing + 1
        } else {
            want / 2
        };
        // Room at the end, or at the front once the frame's start is moved
        // there.
        if room >= enough || self.rbuf.try_reclaim(want) {
            return;
        }
        if len + want > KEEP_BUFFER_UP_TO {
            // A buffer that is not kept anyway grows as `reserve` grows it,
            // doubling: a large packet that trickles in costs linear time.
            self.rbuf.reserve(want);
            return;
        }
        // Grown to what is wanted, no more: `reserve` could double the
        // buffer past KEEP_BUFFER_UP_TO, to be released and allocated afresh
        // for every packet.
        let mut grown = BytesMut::with_capacity(len + want);
        grown.extend_from_slice(&self.rbuf);
        self.rbuf = grown;
    }

    /// Runs `packet` through the handlers: its outcome (`None`: the handler
    /// deadline passed first) and whether a handler waited. Most handlers
    /// finish without waiting; only for those that do is the deadline armed
    /// and what is sent meanwhile written while they run. `Err`: the session
    /// is over (aborted, or the write failed).
    async fn handle(
        &mut self,
        ctx: &ServerContext,
        client: &Client,
        packet: &Packet,
        metrics: Option<&crate::metrics::Metrics>,
    ) -> Result<(Option<(Outcome, Option<usize>)>, bool), End> {
        let mut dispatch =
            pin!(ctx
                .dispatcher
                .run_routed(client, packet, &ctx.state, &mut self.slots));
        if let Poll::Ready(outcome) = futures_util::poll!(dispatch.as_mut()) {
            self.state.clear_cork();
            return Ok((Some(outcome), false));
        }
        self.deadline
            .as_mut()
            .reset(Instant::now() + ctx.config.timeout);
        self.state.end_batch();
        let state = &self.state;
        // A corked handler (`Client::cork`) waits for a quick answer: what is
        // sent meanwhile stays queued, to leave with the batch, unless the
        // cork is lifted or the queue grows past CORK_LIMIT.
        let mut corked = state.is_corked();
        let outcome = loop {
            tokio::select! {
                biased;
                outcome = &mut dispatch => break Some(outcome),
                () = poll_fn(|cx| state.poll_abort(cx)) => return Err(End::Aborted),
                () = &mut self.deadline => break None,
                () = poll_fn(|cx| state.poll_uncorked(cx)), if corked => {
                    corked = false;
                    state.output_pending();
                }
                () = poll_fn(|cx| state.poll_output(cx)), if corked => {
                    if state.outbox_len() >= CORK_LIMIT {
                        corked = false;
                        state.output_pending();
                    }
                }
                written = write_some(&mut self.stream, &mut self.wbuf, state, &mut self.stalled_since, metrics), if !corked => {
                    if let Err(e) = written {
                        debug!("Write failed: {e}");
                        return Err(End::Broken);
                    }
                }
            }
        };
        self.state.clear_cork();
        if corked {
            // What the cork held is still to be written: a later handler that
            // waits without a cork writes it then (the mark was taken above).
            self.state.output_pending();
        }
        self.state.begin_batch();
        Ok((outcome, true))
    }

    fn session_encoding(&self) -> Encoding {
        self.state.encoding().unwrap_or(Encoding::Json)
    }

    /// Sends the failure reply `outcome` owes (logging it); `Some` when the
    /// session is over (a handler may keep it open after a failure of its
    /// choosing).
    async fn reply_failure(&mut self, outcome: &Outcome, encoding: Encoding) -> Option<End> {
        let (code, close) = outcome.reply()?;
        match code {
            FailureCode::Protocol(code) if close => Some(self.fail(code, encoding).await),
            code => {
                self.state.queue_failure_code(code, encoding, close);
                match self.flush().await {
                    Ok(()) if close => Some(End::Closed),
                    Ok(()) => None,
                    Err(_) => Some(End::Broken),
                }
            }
        }
    }

    /// Writes what handlers queued, then the failure reply, and ends the session.
    async fn fail(&mut self, code: ErrorCode, encoding: Encoding) -> End {
        if let (Some(metrics), Some(reason)) = (&self.ctx.metrics, Refusal::of(code)) {
            metrics.refused(reason);
        }
        self.state.queue_failure(code, encoding);
        match self.flush().await {
            Ok(()) => End::Failed(code),
            Err(_) => End::Broken,
        }
    }

    /// Writes the outbox, bounded by the session timeout.
    async fn flush(&mut self) -> io::Result<()> {
        self.state.take_outbox(&mut self.wbuf);
        if self.wbuf.is_empty() {
            return Ok(());
        }
        // The write usually completes at once; arm the deadline only if it waits.
        let written = {
            // The flush is a no-op on TCP; on TLS it sends the records rustls
            // still holds when the socket would not take them all at once.
            let (stream, wbuf) = (&mut self.stream, &self.wbuf);
            let mut write = pin!(async move {
                stream.write_all(wbuf).await?;
                stream.flush().await
            });
            match futures_util::poll!(write.as_mut()) {
                Poll::Ready(result) => result,
                Poll::Pending => {
                    let stalled_since = *self.stalled_since.get_or_insert_with(Instant::now);
                    self.deadline
                        .as_mut()
                        .reset(stalled_since + self.ctx.config.timeout);
                    let state = &self.state;
                    tokio::select! {
                        biased;
                        result = write => result,
                        () = poll_fn(|cx| state.poll_abort(cx)) => Err(io::Error::new(io::ErrorKind::Interrupted, "aborted")),
                        () = &mut self.deadline => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
                    }
                }
            }
        };
        if let (Ok(()), Some(metrics)) = (&written, &self.ctx.metrics) {
            metrics.sent(self.wbuf.len());
        }
        self.wbuf.clear();
        self.stalled_since = None;
        if self.wbuf.capacity() > KEEP_BUFFER_UP_TO {
            self.wbuf = BytesMut::new();
        }
        written
    }

    /// Half-closes, then reads and discards what the peer still sends (bounded),
    /// so that the peer reads our last reply before it sees the connection end.
    async fn linger(&mut self) {
        if self.stream.shutdown().await.is_err() {
            return;
        }
        let linger = LINGER_TIME.min(self.ctx.config.timeout);
        self.deadline.as_mut().reset(Instant::now() + linger);
        let mut discarded = 0usize;
        self.rbuf.clear();
        while discarded < LINGER_BYTES {
            let read = poll_fn(|cx| {
                if self.deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Ok(0));
                }
                if self.state.poll_abort(cx).is_ready() {
                    return Poll::Ready(Ok(0));
                }
                poll_read_more(&mut self.stream, &mut self.rbuf, 8192, cx)
            })
            .await;
            match read {
                Ok(n) if n > 0 => {
                    discarded += n;
                    self.rbuf.clear();
                }
                _ => break,
            }
        }
    }
}

/// The batch's arrival (set whenever metrics are kept).
fn settled_at(arrived: Option<Instant>) -> Instant {
    arrived.unwrap_or_else(Instant::now)
}

/// Writes some of what is queued, for a session whose handler is running:
/// waits until there is something to write (in `wbuf`, or sent since), then
/// makes one write. Cancel-safe: what a write took is removed from `wbuf`
/// when it completes, so dropping this future loses nothing.
async fn write_some<T: Transport>(
    stream: &mut T,
    wbuf: &mut BytesMut,
    state: &SessionState,
    stalled_since: &mut Option<Instant>,
    metrics: Option<&crate::metrics::Metrics>,
) -> io::Result<()> {
    if wbuf.is_empty() {
        poll_fn(|cx| state.poll_output(cx)).await;
        state.take_outbox(wbuf);
        if wbuf.is_empty() {
            return Ok(());
        }
    }
    // The clock runs from here until the peer takes some of it.
    stalled_since.get_or_insert_with(Instant::now);
    let n = stream.write_buf(wbuf).await?;
    if n == 0 {
        return Err(io::ErrorKind::WriteZero.into());
    }
    if let Some(metrics) = metrics {
        metrics.sent(n);
    }
    *stalled_since = (!wbuf.is_empty()).then(Instant::now);
    if wbuf.is_empty() {
        // On TLS, sends the records rustls still holds.
        stream.flush().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
