//! The session loop: one task per connection, from the first byte to the close.
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

use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use asyncaproto::{Encoding, ErrorCode};
use bytes::BytesMut;
use futures_util::FutureExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant};
use tracing::{debug, error, info, warn};

use crate::dispatch::Dispatched;
use crate::packet::Packet;
use crate::server::ServerContext;
use crate::session::{Client, SessionState};

/// A read buffer emptied while larger than this is released rather than kept.
const KEEP_BUFFER_UP_TO: usize = 64 * 1024;

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
}

pub(crate) struct Connection {
    ctx: Arc<ServerContext>,
    state: Arc<SessionState>,
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

impl Connection {
    pub(crate) fn new(
        ctx: Arc<ServerContext>,
        state: Arc<SessionState>,
        stream: TcpStream,
    ) -> Self {
        Connection {
            ctx,
            state,
            stream,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
        }
    }

    /// Serves the session until it ends, then closes the connection.
    pub(crate) async fn run(mut self) -> End {
        let end = self.serve().await;
        match end {
            End::ClientClosed | End::Truncated | End::Broken => {}
            End::Closed | End::Failed(_) => self.linger().await,
        }
        end
    }

    async fn serve(&mut self) -> End {
        let period = self.ctx.config.timeout;
        let mut deadline = pin!(sleep_until(Instant::now() + period));
        let client = Client::new(self.state.clone());
        loop {
            // 1. Every complete frame already buffered, in order.
            let mut got_packet = false;
            loop {
                if self.state.is_closing() {
                    return match self.flush().await {
                        Ok(()) => End::Closed,
                        Err(_) => End::Broken,
                    };
                }
                let frame = match self.ctx.codec.decode_frame(&mut self.rbuf) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(e) => {
                        warn!("Refusing packet: {e}");
                        let code = e.error_code().unwrap_or(ErrorCode::HeaderInvalid);
                        return self.fail(code, e.reply_encoding()).await;
                    }
                };
                got_packet = true;
                debug!(
                    "Expected stream length is {}, Protocol-Version is V2, Content-Encoding is {}",
                    frame.payload.len() + 2,
                    frame.encoding
                );
                self.state.settle_encoding(frame.encoding);
                let map = match frame.encoding.decode(&frame.payload) {
                    Ok(map) => map,
                    Err(e) => {
                        warn!("Malformed {} payload: {e}", frame.encoding);
                        return self.fail(ErrorCode::RequestMalformed, frame.encoding).await;
                    }
                };
                drop(frame);
                let packet = Packet::new(map, self.state.encoding().unwrap_or_default());
                deadline.as_mut().reset(Instant::now() + period);
                let dispatch =
                    AssertUnwindSafe(self.ctx.dispatcher.dispatch(&client, packet)).catch_unwind();
                let outcome = tokio::select! {
                    biased;
                    outcome = dispatch => outcome,
                    () = &mut deadline => {
                        warn!("Handler timed out after {period:?}");
                        return self.fail(ErrorCode::TimedOut, self.session_encoding()).await;
                    }
                };
                match outcome {
                    Ok(Ok(Dispatched::Handled)) => {}
                    Ok(Ok(Dispatched::Unhandled)) => {
                        info!("No handler accepted the packet");
                        return self
                            .fail(ErrorCode::NoHandler, self.session_encoding())
                            .await;
                    }
                    Ok(Err(e)) => {
                        error!("Handler failed: {e}");
                        return self
                            .fail(ErrorCode::HandlerFailed, self.session_encoding())
                            .await;
                    }
                    Err(panic) => {
                        error!("Handler panicked: {}", panic_message(&panic));
                        return self
                            .fail(ErrorCode::HandlerFailed, self.session_encoding())
                            .await;
                    }
                }
            }

            // 2. One write for everything the batch produced.
            if self.flush().await.is_err() {
                return End::Broken;
            }
            if self.rbuf.is_empty() && self.rbuf.capacity() > KEEP_BUFFER_UP_TO {
                self.rbuf = BytesMut::new();
            }
            if got_packet {
                deadline.as_mut().reset(Instant::now() + period);
            }

            // 3. Wait for more bytes, a close, the shutdown, or the deadline.
            if self.ctx.shutdown.is_cancelled() {
                return self
                    .fail(ErrorCode::ShuttingDown, self.session_encoding())
                    .await;
            }
            tokio::select! {
                biased;
                () = self.state.closed() => {}
                () = self.ctx.shutdown.cancelled() => {
                    info!("Server shutting down");
                    return self.fail(ErrorCode::ShuttingDown, self.session_encoding()).await;
                }
                () = &mut deadline => {
                    info!("Session timed out after {period:?} without a complete packet");
                    return self.fail(ErrorCode::TimedOut, self.session_encoding()).await;
                }
                read = read_more(&self.stream, &mut self.rbuf, self.ctx.config.buf) => match read {
                    Ok(0) if self.rbuf.is_empty() => return End::ClientClosed,
                    Ok(0) => {
                        debug!("Connection closed inside a packet ({} bytes buffered)", self.rbuf.len());
                        return End::Truncated;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        debug!("Read failed: {e}");
                        return End::Broken;
                    }
                },
            }
        }
    }

    fn session_encoding(&self) -> Encoding {
        self.state.encoding().unwrap_or(Encoding::Json)
    }

    /// Writes what handlers queued, then the failure reply, and ends the session.
    async fn fail(&mut self, code: ErrorCode, encoding: Encoding) -> End {
        self.state.close();
        let mut payload = Vec::with_capacity(64);
        code.write_payload(encoding, &mut payload);
        // Failure payloads are under 64 bytes: they fit every Content-Length size.
        let _ = self
            .ctx
            .codec
            .write_raw(encoding, &payload, &mut self.state.outbox());
        match self.flush().await {
            Ok(()) => End::Failed(code),
            Err(_) => End::Broken,
        }
    }

    /// Writes the outbox, bounded by the session timeout.
    async fn flush(&mut self) -> io::Result<()> {
        std::mem::swap(&mut *self.state.outbox(), &mut self.wbuf);
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let written = timeout(self.ctx.config.timeout, self.stream.write_all(&self.wbuf)).await;
        self.wbuf.clear();
        if self.wbuf.capacity() > KEEP_BUFFER_UP_TO {
            self.wbuf = BytesMut::new();
        }
        match written {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        }
    }

    /// Half-closes, then reads and discards what the peer still sends (bounded),
    /// so that the peer reads our last reply before it sees the connection end.
    async fn linger(&mut self) {
        if self.stream.shutdown().await.is_err() {
            return;
        }
        let limit = Instant::now() + LINGER_TIME.min(self.ctx.config.timeout);
        let mut discarded = 0usize;
        self.rbuf.clear();
        while discarded < LINGER_BYTES {
            match tokio::time::timeout_at(limit, read_more(&self.stream, &mut self.rbuf, 8192))
                .await
            {
                Ok(Ok(n)) if n > 0 => {
                    discarded += n;
                    self.rbuf.clear();
                }
                _ => break,
            }
        }
    }
}

/// Reads whatever is available into `buf`, allocating it only once the socket
/// is readable; `Ok(0)` is the end of the stream.
async fn read_more(stream: &TcpStream, buf: &mut BytesMut, chunk: usize) -> io::Result<usize> {
    if buf.capacity() == buf.len() {
        if buf.is_empty() {
            // Not `readable()`: tokio reports a fresh socket readable before any
            // byte arrives, which would allocate every idle session's buffer.
            if stream.peek(&mut [0u8; 1]).await? == 0 {
                return Ok(0);
            }
        }
        buf.reserve(chunk);
    }
    loop {
        match stream.try_read_buf(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.readable().await?,
            Err(e) => return Err(e),
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> &str {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}
