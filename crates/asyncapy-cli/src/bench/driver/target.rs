//! Where a slot connects and what it sends: the [`Target`] (address,
//! timeouts, TLS), the open connection ([`Conn`]), and the [`Workload`].

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use asyncaproto::FrameCodec;
use asyncapy::tls::rustls::pki_types::ServerName;
use asyncapy::tls::tokio_rustls::{client::TlsStream, TlsConnector};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::bench::payload::Request;
use crate::bench::verify::Verifier;

/// The most room one read is given: enough for many pipelined replies at once.
const MAX_READ_CHUNK: usize = 64 * 1024;

/// The least room one read is given.
const MIN_READ_CHUNK: usize = 4 * 1024;

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
    /// `--resend`: what a restarting server loses is sent again.
    pub(crate) resend: bool,
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
pub(super) enum Conn {
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
