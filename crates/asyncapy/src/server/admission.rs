//! Admission: how an accepted connection becomes a session, in named stages.
//!
//! ```text
//! accepted ─▶ read_proxy_header ─▶ handshake ─▶ admit ─▶ SessionLoop::run
//!  (Incoming)   (proxy_protocol)     (TLS)       │ per-IP limit
//!                                                └▶ refuse (ERR_SESSION_LIMIT_REACHED)
//! ```
//!
//! An [`Incoming`] connection moves forward through the stages, each taking
//! it by value and giving it back one step further (or dropping it, logged).
//! The two stages before admission are [`Incoming::preamble`]: both are
//! bounded by a time limit and by the shutdown, and a connection refused as
//! over `max_connections` goes through them too (a TLS client could not read
//! its `ERR_SERVER_BUSY` otherwise).
//!
//! # Why a plain session's task holds nothing but its connection
//!
//! What an idle session costs is the size of its task's future, so the plain
//! session, the common case, gets a task that is its connection's future
//! alone ([`start_plain`]): a plain connection accepted without a preamble is
//! admitted on the listener's task, and one that had a PROXY header is moved
//! out of its preamble task into a fresh small one. The TLS path (rustls's
//! state is large) is boxed away from the preamble task, so a connection still
//! sending its PROXY header costs little too. The tests at the end keep both
//! sizes in check.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use asyncaproto::{Encoding, ErrorCode};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::task::TaskTracker;
use tracing::{info, warn, Instrument};

use super::session_loop::{End, SessionLoop};
use super::transport::{TlsStream, Transport};
use super::ServerContext;
use crate::metrics::Refusal;
use crate::session::SessionState;

/// How long the refusal of a connection over a limit may take.
pub(super) const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// A connection on its way in: accepted, not yet a session.
///
/// `P` is its place under `max_connections`: an [`OwnedSemaphorePermit`] for
/// a connection that may become a session, `()` for one being refused as busy.
pub(super) struct Incoming<S, P = OwnedSemaphorePermit> {
    stream: S,
    /// The client: the socket's peer, or the client a PROXY header named.
    client: SocketAddr,
    /// The proxy's address, once a PROXY header named the client.
    via: Option<SocketAddr>,
    /// Bytes read past the PROXY header: the client's first bytes.
    early: BytesMut,
    permit: P,
}

/// Whether connections have a preamble: a PROXY header or a TLS handshake.
pub(super) fn has_preamble(ctx: &ServerContext) -> bool {
    #[cfg(feature = "tls")]
    let tls = ctx.tls.is_some();
    #[cfg(not(feature = "tls"))]
    let tls = false;
    tls || ctx.config.proxy_protocol
}

/// What admission made of a connection.
pub(super) enum Admission<S: Transport> {
    /// A session, to run.
    Admitted(SessionLoop<S>),
    /// Over the per-IP session limit: the connection back, to refuse.
    OverLimit(Incoming<S>),
}

/// A connection past its preamble, over the stream its session will speak.
pub(super) enum Secured<P> {
    Plain(Incoming<TcpStream, P>),
    /// Boxed: a TLS stream is large, and the preamble's task holds this.
    /// (Never made without the `tls` feature: [`TlsStream`] has no values then.)
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Tls(Box<Incoming<TlsStream, P>>),
}

impl<P> Incoming<TcpStream, P> {
    /// A connection just accepted from `peer`.
    pub(super) fn accepted(stream: TcpStream, peer: SocketAddr, permit: P) -> Self {
        Incoming {
            stream,
            client: peer,
            via: None,
            early: BytesMut::new(),
            permit,
        }
    }

    /// The stages before admission: the PROXY header, then the TLS handshake,
    /// each where the server asks for it and each bounded by `limit` and the
    /// shutdown. `None` when the connection was dropped (and logged).
    ///
    /// A function returning an `async move` block rather than an `async fn`:
    /// an `async fn` keeps its arguments twice (as given, and as moved into
    /// its body), and the connection is then held twice in the future.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn would hold the connection twice"
    )]
    pub(super) fn preamble(
        mut self,
        ctx: &ServerContext,
        limit: Duration,
    ) -> impl Future<Output = Option<Secured<P>>> + Send + '_
    where
        P: Send + 'static,
    {
        async move {
            if ctx.config.proxy_protocol {
                self.read_proxy_header(ctx, limit).await?;
            }
            #[cfg(feature = "tls")]
            if let Some(acceptor) = &ctx.tls {
                let secured = Box::pin(self.handshake(ctx, acceptor, limit)).await?;
                return Some(Secured::Tls(Box::new(secured)));
            }
            Some(Secured::Plain(self))
        }
    }

    /// Reads the PROXY header (`proxy_protocol`): the client becomes the one
    /// it names (the peer, a proxy, when it names none), and the bytes after
    /// it are kept. A connection from outside `proxy_trusted`, or without a
    /// valid header, is logged and dropped unanswered (`None`).
    async fn read_proxy_header(&mut self, ctx: &ServerContext, limit: Duration) -> Option<()> {
        let peer = self.client;
        let trusted = &ctx.config.proxy_trusted;
        if !trusted.is_empty() && !trusted.iter().any(|net| net.contains(peer.ip())) {
            warn!("Connection from {peer} closed: not a trusted proxy (proxy_trusted)");
            if let Some(metrics) = &ctx.metrics {
                metrics.refused(Refusal::Proxy);
            }
            return None;
        }
        let read = crate::proxy::read_header(&mut self.stream);
        let probe = |e: &crate::proxy::ReadError| e.is_probe();
        let (header, mut early) = bounded(ctx, peer, Refusal::Proxy, limit, read, probe).await?;
        if header.source.is_none() && early.is_empty() {
            // LOCAL: the proxy's own connection, usually a health check that
            // leaves at once. Its first read tells: one that leaves is not a
            // session (logged at DEBUG only, and never counted against the
            // proxy's address's session_limit).
            let read = self.stream.read_buf(&mut early);
            let n = bounded(ctx, peer, Refusal::Proxy, limit, read, |_| true).await?;
            if n == 0 {
                tracing::debug!("Health check from the proxy at {peer}");
                return None;
            }
        }
        self.client = header.source.unwrap_or(peer);
        self.via = Some(peer);
        self.early = early;
        tracing::debug!(
            "PROXY {:?} header from {peer}: client {}",
            header.version,
            self.client
        );
        Some(())
    }

    /// Runs the server's side of the TLS handshake, fed first with the bytes
    /// that came after a PROXY header.
    #[cfg(feature = "tls")]
    async fn handshake(
        self,
        ctx: &ServerContext,
        acceptor: &tokio_rustls::TlsAcceptor,
        limit: Duration,
    ) -> Option<Incoming<TlsStream, P>> {
        let Incoming {
            stream,
            client,
            via,
            early,
            permit,
        } = self;
        let peer = via.unwrap_or(client);
        // Bytes already read off the socket go to rustls first, as if it had
        // read them itself.
        let mut fed: Result<(), String> = Ok(());
        let accept = acceptor.accept_with(stream, |conn| {
            let mut rest = &early[..];
            while !rest.is_empty() && fed.is_ok() {
                fed = conn
                    .read_tls(&mut rest)
                    .map_err(|e| e.to_string())
                    .and_then(|_| {
                        conn.process_new_packets()
                            .map(drop)
                            .map_err(|e| e.to_string())
                    });
            }
        });
        if let Err(e) = fed {
            info!("TLS handshake from {peer} failed: {e}");
            if let Some(metrics) = &ctx.metrics {
                metrics.refused(Refusal::Tls);
            }
            return None;
        }
        let stream = bounded(ctx, peer, Refusal::Tls, limit, accept, |_| false).await?;
        let (_, tls) = stream.get_ref();
        tracing::debug!(
            "TLS handshake from {peer} done: {:?}, {:?}",
            tls.protocol_version(),
            tls.negotiated_cipher_suite().map(|suite| suite.suite())
        );
        Some(Incoming {
            stream,
            client,
            via,
            early: BytesMut::new(),
            permit,
        })
    }
}

impl<S: Transport> Incoming<S> {
    /// Admits the connection as a session: registers it (within the per-IP
    /// limit) and logs its start. The connection to run, with the span its
    /// lines go under; or, over the limit, the connection back to refuse.
    pub(super) fn admit(self, ctx: &Arc<ServerContext>) -> (Admission<S>, tracing::Span) {
        let state = self.session_state(ctx);
        self.admit_as(ctx, state, true)
    }

    /// As [`Incoming::admit`], with `session_limit` counted in the shared
    /// limits store first when the server keeps it there (`limits_store`).
    pub(super) async fn admit_shared(
        self,
        ctx: &Arc<ServerContext>,
    ) -> (Admission<S>, tracing::Span) {
        let state = self.session_state(ctx);
        let limit = ctx.config.session_limit;
        let within = match &ctx.shared {
            Some(shared) if limit > 0 => {
                let ip = self.client.ip();
                shared
                    .acquire(ip, state.id(), limit, ctx.metrics.as_deref())
                    .await
            }
            _ => true,
        };
        self.admit_as(ctx, state, within)
    }

    /// The state of the session this connection would become.
    fn session_state(&self, ctx: &ServerContext) -> Arc<SessionState> {
        let registry = ctx.shutdown.registry().clone();
        Arc::new(SessionState::new(self.client, ctx.codec, registry))
    }

    /// Registers `state` (within the local limit, and `within` the shared one).
    fn admit_as(
        self,
        ctx: &Arc<ServerContext>,
        state: Arc<SessionState>,
        within: bool,
    ) -> (Admission<S>, tracing::Span) {
        // At the ERROR level, the span is enabled whenever any line is logged:
        // at logging_level 30 the warnings still carry the session id.
        let span = tracing::error_span!("session", id = %state.id(), peer = %self.client);
        let registered = match within {
            true => ctx.shutdown.register(state.clone()).ok(),
            false => None,
        };
        let Some(registered) = registered else {
            span.in_scope(|| warn!("Session limit reached for {}", self.client.ip()));
            if let Some(metrics) = &ctx.metrics {
                metrics.refused(Refusal::SessionLimit);
            }
            return (Admission::OverLimit(self), span);
        };
        span.in_scope(|| match self.via {
            None => info!(
                "New session started from {}, UUID is {}",
                self.client,
                state.id()
            ),
            Some(proxy) => info!(
                "New session started from {} (through the proxy at {proxy}), UUID is {}",
                self.client,
                state.id()
            ),
        });
        let connection = SessionLoop::new(
            ctx.clone(),
            state,
            self.stream,
            registered,
            self.early,
            self.permit,
        );
        (Admission::Admitted(connection), span)
    }

    /// Admits the connection and runs its session to the end, on this task
    /// (or refuses it, over the per-IP limit).
    pub(super) async fn serve(self, ctx: &Arc<ServerContext>) {
        match self.admit_shared(ctx).await {
            (Admission::Admitted(connection), span) => {
                connection.run().instrument(span).await;
            }
            (Admission::OverLimit(refused), span) => {
                refused
                    .refuse(ctx, ErrorCode::SessionLimitReached)
                    .instrument(span)
                    .await;
            }
        }
    }
}

impl<S: Transport, P> Incoming<S, P> {
    /// Answers a connection refused at admission with `code` (in JSON) and
    /// closes it, within [`REFUSAL_TIME`].
    pub(super) async fn refuse(mut self, ctx: &ServerContext, code: ErrorCode) {
        let mut payload = Vec::with_capacity(64);
        code.write_payload(Encoding::Json, &mut payload);
        let mut frame = BytesMut::with_capacity(80);
        if ctx
            .codec
            .write_raw(Encoding::Json, &payload, &mut frame)
            .is_err()
        {
            return;
        }
        let stream = &mut self.stream;
        let _ = tokio::time::timeout(REFUSAL_TIME, async {
            stream.write_all(&frame).await?;
            stream.shutdown().await?;
            // Let the reply reach the peer before the socket closes (a close
            // with unread input would reset the connection and could destroy it).
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<(), std::io::Error>(())
        })
        .await;
        drop(self.permit);
    }
}

/// Starts a plain session on a task of its own that holds nothing but the
/// connection (see the module's notes), or the refusal of one over the
/// per-IP limit.
pub(super) fn start_plain(
    ctx: &Arc<ServerContext>,
    tracker: &TaskTracker,
    incoming: Incoming<TcpStream>,
) {
    if ctx.shared.is_some() && ctx.config.session_limit > 0 {
        // Admission waits on the store: on a task of its own, which hands an
        // admitted session to a small task as below.
        let (ctx, sessions) = (ctx.clone(), tracker.clone());
        tracker.spawn(async move {
            match incoming.admit_shared(&ctx).await {
                (Admission::Admitted(connection), span) => {
                    sessions.spawn(plain_task(connection, span));
                }
                (Admission::OverLimit(refused), span) => {
                    refused
                        .refuse(&ctx, ErrorCode::SessionLimitReached)
                        .instrument(span)
                        .await;
                }
            }
        });
        return;
    }
    match incoming.admit(ctx) {
        (Admission::Admitted(connection), span) => {
            tracker.spawn(plain_task(connection, span));
        }
        (Admission::OverLimit(refused), span) => {
            let ctx = ctx.clone();
            tracker.spawn(
                async move { refused.refuse(&ctx, ErrorCode::SessionLimitReached).await }
                    .instrument(span),
            );
        }
    }
}

/// The task of an admitted plain session: the connection's own future and
/// its span, nothing around it.
fn plain_task(
    connection: SessionLoop<TcpStream>,
    span: tracing::Span,
) -> impl Future<Output = End> + Send + 'static {
    connection.run().instrument(span)
}

/// The task of a connection with a preamble: the preamble, then its session
/// (a plain one moves to a small task of its own).
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would hold the connection twice"
)]
pub(super) fn session_via(
    ctx: Arc<ServerContext>,
    tracker: TaskTracker,
    incoming: Incoming<TcpStream>,
) -> impl Future<Output = ()> + Send + 'static {
    async move {
        let tls = match incoming.preamble(&ctx, ctx.config.timeout).await {
            None => return,
            Some(Secured::Plain(incoming)) => return start_plain(&ctx, &tracker, incoming),
            Some(Secured::Tls(incoming)) => incoming,
        };
        // Awaited out of the match: the future keeps no room for what the
        // preamble returned while the session runs.
        Box::pin(tls.serve(&ctx)).await;
    }
}

/// Refuses a connection over the connection cap with `ERR_SERVER_BUSY`, after
/// its preamble (bounded by [`REFUSAL_TIME`]).
pub(super) async fn refuse_busy(ctx: Arc<ServerContext>, incoming: Incoming<TcpStream, ()>) {
    match incoming.preamble(&ctx, REFUSAL_TIME).await {
        None => {}
        Some(Secured::Plain(incoming)) => incoming.refuse(&ctx, ErrorCode::ServerBusy).await,
        Some(Secured::Tls(incoming)) => incoming.refuse(&ctx, ErrorCode::ServerBusy).await,
    }
}

/// Runs one step of a connection's preamble (`step`: its PROXY header, its
/// TLS handshake) for at most `limit`, and not past the start of a shutdown.
/// A failure, a timeout or the shutdown is logged with the peer's address,
/// and the connection is dropped: nothing of it is kept. A failure or a
/// timeout is counted as a refusal for `reason`; a `probe` (a health check
/// that connects and leaves without a byte) is only logged at DEBUG.
async fn bounded<T, E: std::fmt::Display>(
    ctx: &ServerContext,
    peer: SocketAddr,
    reason: Refusal,
    limit: Duration,
    step: impl Future<Output = Result<T, E>>,
    probe: impl Fn(&E) -> bool,
) -> Option<T> {
    let what = match reason {
        Refusal::Tls => "TLS handshake",
        _ => "PROXY header",
    };
    let refused = || {
        if let Some(metrics) = &ctx.metrics {
            metrics.refused(reason);
        }
    };
    tokio::select! {
        biased;
        () = ctx.shutdown.draining() => {
            info!("{what} from {peer} abandoned: the server is shutting down");
            None
        }
        done = tokio::time::timeout(limit, step) => match done {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) if probe(&e) => {
                tracing::debug!("Probe from {peer} (a health check?): {e}");
                None
            }
            Ok(Err(e)) => {
                info!("{what} from {peer} failed: {e}");
                refused();
                None
            }
            Err(_) => {
                info!("{what} from {peer} timed out after {limit:?}");
                refused();
                None
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Dispatcher;
    use crate::server::Shutdown;
    use crate::session::Registry;
    use tokio::net::TcpListener;

    fn context(config: crate::Config) -> Arc<ServerContext> {
        Arc::new(ServerContext::for_tests(
            config,
            Dispatcher::default(),
            Arc::new(Shutdown::new(Arc::new(Registry::new(0)))),
        ))
    }

    /// A server-side connection, just accepted, and the client end to keep open.
    async fn accepted(ctx: &ServerContext) -> (Incoming<TcpStream>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let permit = ctx.permits.clone().try_acquire_owned().unwrap();
        (Incoming::accepted(stream, peer, permit), client)
    }

    /// What every idle plain session holds is its task's future (see the
    /// module's notes). The bound leaves room for the compiler's layout to
    /// vary; a TLS session inlined into it would be several times over.
    #[tokio::test]
    async fn a_plain_session_task_stays_small() {
        let ctx = context(crate::Config::default());
        let (incoming, _client) = accepted(&ctx).await;
        let (Admission::Admitted(connection), span) = incoming.admit(&ctx) else {
            panic!("no limit, yet not admitted");
        };
        let task = plain_task(connection, span);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 640, "a plain session's task is {size} bytes");
    }

    /// A session behind a proxy ends up in the same small task as any plain
    /// one; the task that reads the PROXY header (perhaps from a slow peer)
    /// stays small too, with the large TLS path boxed away from it.
    #[tokio::test]
    async fn the_task_that_reads_a_proxy_header_is_bounded() {
        let ctx = context(crate::Config {
            proxy_protocol: true,
            ..crate::Config::default()
        });
        let (incoming, _client) = accepted(&ctx).await;
        let task = session_via(ctx.clone(), TaskTracker::new(), incoming);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 1024, "the preamble task is {size} bytes");
    }
}
