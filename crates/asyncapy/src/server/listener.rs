//! The accept loop: admission (connection cap, PROXY header, TLS handshake,
//! per-IP session limit), a task per session, and the shutdown sequence. It
//! survives every per-connection error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use asyncaproto::{Encoding, ErrorCode};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn, Instrument};

use super::connection::{Connection, End};
use super::transport::Transport;
use super::{BoxedHook, ServerContext};
use crate::session::{SessionState, Signal};

/// How long the refusal of a connection over a limit may take.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

pub(super) async fn run(
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    tracker: TaskTracker,
    shutdown_hooks: Vec<BoxedHook>,
) {
    let permits = ctx.permits.clone();
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            biased;
            () = ctx.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                backoff = Duration::from_millis(5);
                pair
            }
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS...: wait and try again; never die.
                error!("Accept failed: {e}; retrying in {backoff:?}");
                tokio::select! {
                    () = ctx.shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            warn!("Connection limit reached, refusing {peer}");
            tracker.spawn(refuse_busy(stream, peer, ctx.clone()));
            continue;
        };
        #[cfg(feature = "tls")]
        let tls = ctx.tls.is_some();
        #[cfg(not(feature = "tls"))]
        let tls = false;
        if tls || ctx.config.proxy_protocol {
            // The PROXY header or the TLS handshake comes first.
            let task = session_via(ctx.clone(), tracker.clone(), permit, stream, peer);
            tracker.spawn(task);
            continue;
        }
        let state = Arc::new(SessionState::new(peer, ctx.codec, ctx.registry.clone()));
        // At the ERROR level, the span is enabled whenever any line is logged:
        // at logging_level 30 the warnings still carry the session id.
        let span = tracing::error_span!("session", id = %state.id());
        spawn_plain(
            &ctx,
            &tracker,
            state,
            span,
            stream,
            None,
            BytesMut::new(),
            permit,
        );
    }
    drop(listener);
    info!(
        "No longer accepting; {} sessions open, waiting up to {:?}",
        ctx.registry.len(),
        ctx.config.grace_period
    );
    ctx.registry.signal_all(Signal::Shutdown);
    tracker.close();
    if tokio::time::timeout(ctx.config.grace_period, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            "Grace period over, dropping {} sessions",
            ctx.registry.len()
        );
        ctx.abort.cancel();
        ctx.registry.signal_all(Signal::Abort);
        tracker.wait().await;
    }
    for hook in shutdown_hooks {
        let finished = match hook(&ctx.state) {
            Ok(running) => running.await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = finished {
            error!("Shutdown hook failed: {e}");
        }
    }
    info!("Server stopped");
}

/// A session behind a proxy (the PROXY header read first), over TLS (after
/// the handshake), or both.
async fn session_via(
    ctx: Arc<ServerContext>,
    tracker: TaskTracker,
    permit: OwnedSemaphorePermit,
    mut stream: TcpStream,
    peer: SocketAddr,
) {
    // Behind a proxy, the session is the client's that the header names.
    let (client, via, early) = if ctx.config.proxy_protocol {
        match accept_proxy(&ctx, &mut stream, peer, ctx.config.timeout).await {
            Some((client, early)) => (client, Some(peer), early),
            None => return,
        }
    } else {
        (peer, None, BytesMut::new())
    };
    let state = Arc::new(SessionState::new(client, ctx.codec, ctx.registry.clone()));
    // ERROR: enabled at every logging_level (see run).
    let span = tracing::error_span!("session", id = %state.id());
    #[cfg(feature = "tls")]
    if ctx.tls.is_some() {
        // Boxed: a TLS session is large (rustls's state, the handshake); a
        // connection still sending its PROXY header must not cost that much.
        let session = tls_session(ctx, state, stream, peer, via, early, permit);
        Box::pin(session.instrument(span)).await;
        return;
    }
    // A plain session behind a proxy: from here on, a task of its own that is
    // the connection's future alone, as small as any plain session's.
    spawn_plain(&ctx, &tracker, state, span, stream, via, early, permit);
}

/// Admits a plain session and spawns its task (the connection's own future,
/// nothing around it: that task is what an idle session costs), or spawns the
/// refusal of one over the per-IP limit.
#[allow(clippy::too_many_arguments)]
fn spawn_plain(
    ctx: &Arc<ServerContext>,
    tracker: &TaskTracker,
    state: Arc<SessionState>,
    span: tracing::Span,
    stream: TcpStream,
    via: Option<SocketAddr>,
    early: BytesMut,
    permit: OwnedSemaphorePermit,
) {
    match span.in_scope(|| admit(ctx, state, stream, via, early, permit)) {
        Ok(connection) => {
            tracker.spawn(plain_task(connection, span));
        }
        Err((stream, permit)) => {
            let refusal = refuse(stream, ctx.clone(), ErrorCode::SessionLimitReached);
            tracker.spawn(
                async move {
                    refusal.await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
    }
}

/// The task of an admitted plain session: the connection's own future and
/// its span, nothing around it.
fn plain_task(
    connection: Connection<TcpStream>,
    span: tracing::Span,
) -> impl std::future::Future<Output = End> + Send + 'static {
    connection.run().instrument(span)
}

/// A TLS session: the handshake (fed first with `early`, the bytes that came
/// with a PROXY header), then the session.
#[cfg(feature = "tls")]
async fn tls_session(
    ctx: Arc<ServerContext>,
    state: Arc<SessionState>,
    stream: TcpStream,
    peer: SocketAddr,
    via: Option<SocketAddr>,
    early: BytesMut,
    permit: OwnedSemaphorePermit,
) {
    let Some(acceptor) = &ctx.tls else {
        return;
    };
    let limit = ctx.config.timeout;
    let Some(stream) = handshake(&ctx, acceptor, stream, peer, limit, &early).await else {
        return;
    };
    serve(ctx, state, stream, via, BytesMut::new(), permit).await;
}

/// Admits a TLS session (the per-IP limit), then runs it to its end. `via` is
/// the proxy's address when a PROXY header named the client; `early` holds the
/// client's first bytes when they came with the header.
#[cfg(feature = "tls")]
async fn serve<T: Transport>(
    ctx: Arc<ServerContext>,
    state: Arc<SessionState>,
    stream: T,
    via: Option<SocketAddr>,
    early: BytesMut,
    permit: OwnedSemaphorePermit,
) {
    match admit(&ctx, state, stream, via, early, permit) {
        Ok(connection) => {
            connection.run().await;
        }
        Err((stream, _permit)) => refuse(stream, ctx, ErrorCode::SessionLimitReached).await,
    }
}

/// Registers the session (within the per-IP limit) and logs its start: the
/// connection to run, or, over the limit, the stream back to refuse.
fn admit<T: Transport>(
    ctx: &Arc<ServerContext>,
    state: Arc<SessionState>,
    stream: T,
    via: Option<SocketAddr>,
    early: BytesMut,
    permit: OwnedSemaphorePermit,
) -> Result<Connection<T>, (T, OwnedSemaphorePermit)> {
    let peer = state.peer();
    let Ok(registered) = ctx.registry.register(state.clone()) else {
        warn!("Session limit reached for {}", peer.ip());
        return Err((stream, permit));
    };
    match via {
        None => info!("New session started from {peer}, UUID is {}", state.id()),
        Some(proxy) => info!(
            "New session started from {peer} (through the proxy at {proxy}), UUID is {}",
            state.id()
        ),
    }
    Ok(Connection::new(
        ctx.clone(),
        state,
        stream,
        registered,
        early,
        permit,
    ))
}

/// Reads the PROXY header of a connection from `peer` (a proxy), for at most
/// `limit` and not past the start of a shutdown: the client it names (or
/// `peer` when it names none) and the bytes that came after it. A connection
/// from outside `proxy_trusted`, or without a valid header, is logged and
/// dropped unanswered.
async fn accept_proxy(
    ctx: &ServerContext,
    stream: &mut TcpStream,
    peer: SocketAddr,
    limit: Duration,
) -> Option<(SocketAddr, BytesMut)> {
    let trusted = &ctx.config.proxy_trusted;
    if !trusted.is_empty() && !trusted.iter().any(|net| net.contains(peer.ip())) {
        warn!("Connection from {peer} closed: not a trusted proxy (proxy_trusted)");
        return None;
    }
    let (header, early) = bounded(
        ctx,
        peer,
        "PROXY header",
        limit,
        crate::proxy::read_header(stream),
    )
    .await?;
    let client = header.source.unwrap_or(peer);
    tracing::debug!(
        "PROXY {:?} header from {peer}: client {client}",
        header.version
    );
    Some((client, early))
}

/// Runs one step of a connection's start (`what`: its PROXY header, its TLS
/// handshake) for at most `limit`, and not past the start of a shutdown. A
/// failure, a timeout or the shutdown is logged with the peer's address, and
/// the connection is dropped: nothing of it is kept.
async fn bounded<T, E: std::fmt::Display>(
    ctx: &ServerContext,
    peer: SocketAddr,
    what: &str,
    limit: Duration,
    step: impl std::future::Future<Output = Result<T, E>>,
) -> Option<T> {
    tokio::select! {
        biased;
        () = ctx.shutdown.cancelled() => {
            info!("{what} from {peer} abandoned: the server is shutting down");
            None
        }
        done = tokio::time::timeout(limit, step) => match done {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                info!("{what} from {peer} failed: {e}");
                None
            }
            Err(_) => {
                info!("{what} from {peer} timed out after {limit:?}");
                None
            }
        },
    }
}

/// Runs the server's side of a TLS handshake, [`bounded`] by `limit` and
/// the shutdown.
#[cfg(feature = "tls")]
async fn handshake(
    ctx: &ServerContext,
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    limit: Duration,
    early: &[u8],
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    // Bytes already read off the socket (after a PROXY header) go to rustls
    // first, as if it had read them itself.
    let mut fed: Result<(), String> = Ok(());
    let accept = acceptor.accept_with(stream, |conn| {
        let mut rest = early;
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
        return None;
    }
    let stream = bounded(ctx, peer, "TLS handshake", limit, accept).await?;
    let (_, tls) = stream.get_ref();
    tracing::debug!(
        "TLS handshake from {peer} done: {:?}, {:?}",
        tls.protocol_version(),
        tls.negotiated_cipher_suite().map(|suite| suite.suite())
    );
    Some(stream)
}

/// Refuses a connection over the connection cap with ERR_SERVER_BUSY; on a TLS
/// server, after a handshake bounded by [`REFUSAL_TIME`] (a TLS client could
/// not read the reply otherwise).
async fn refuse_busy(mut stream: TcpStream, peer: SocketAddr, ctx: Arc<ServerContext>) {
    // Behind a proxy, the header comes first (and TLS after it).
    let early = if ctx.config.proxy_protocol {
        match accept_proxy(&ctx, &mut stream, peer, REFUSAL_TIME).await {
            Some((_, early)) => early,
            None => return,
        }
    } else {
        BytesMut::new()
    };
    #[cfg(feature = "tls")]
    if let Some(acceptor) = &ctx.tls {
        if let Some(stream) = handshake(&ctx, acceptor, stream, peer, REFUSAL_TIME, &early).await {
            refuse(stream, ctx.clone(), ErrorCode::ServerBusy).await;
        }
        return;
    }
    let _ = (peer, early);
    refuse(stream, ctx, ErrorCode::ServerBusy).await;
}

/// Answers a connection refused at admission with `code` (in JSON) and closes it.
async fn refuse<T: Transport>(mut stream: T, ctx: Arc<ServerContext>, code: ErrorCode) {
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
    let _ = tokio::time::timeout(REFUSAL_TIME, async {
        stream.write_all(&frame).await?;
        stream.shutdown().await?;
        // Let the reply reach the peer before the socket closes (a close with
        // unread input would reset the connection and could destroy it).
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Dispatcher;
    use crate::session::Registry;
    use asyncaproto::FrameCodec;
    use tokio::sync::Semaphore;
    use tokio_util::sync::CancellationToken;

    fn context(config: crate::Config) -> Arc<ServerContext> {
        Arc::new(ServerContext {
            config,
            codec: FrameCodec::default(),
            dispatcher: Dispatcher::default(),
            state: None,
            registry: Arc::new(Registry::new(0)),
            shutdown: CancellationToken::new(),
            abort: CancellationToken::new(),
            permits: Arc::new(Semaphore::new(1)),
            #[cfg(feature = "tls")]
            tls: None,
        })
    }

    /// A server-side stream, its peer, and the client end to keep open.
    async fn accepted() -> (TcpStream, SocketAddr, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        (stream, peer, client)
    }

    /// What every idle plain session holds is its task's future: keep it
    /// small (a TLS session inlined into it once made it 5.6 KB, and every
    /// idle connection cost 7 KB instead of 1.8).
    #[tokio::test]
    async fn a_plain_session_task_stays_small() {
        let ctx = context(crate::Config::default());
        let (stream, peer, _client) = accepted().await;
        let permit = ctx.permits.clone().try_acquire_owned().unwrap();
        let state = Arc::new(SessionState::new(peer, ctx.codec, ctx.registry.clone()));
        let connection = admit(&ctx, state, stream, None, BytesMut::new(), permit)
            .ok()
            .unwrap();
        let task = plain_task(connection, tracing::Span::none());
        let size = std::mem::size_of_val(&task);
        // 424 bytes in a release build, 440 in a debug one (Rust 1.95).
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
        let (stream, peer, _client) = accepted().await;
        let permit = ctx.permits.clone().try_acquire_owned().unwrap();
        let task = session_via(ctx.clone(), TaskTracker::new(), permit, stream, peer);
        let size = std::mem::size_of_val(&task);
        // 616 bytes in a debug build (Rust 1.95): the TLS session is boxed.
        assert!(size <= 1024, "the preamble task is {size} bytes");
    }
}
