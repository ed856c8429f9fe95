//! The accept loop: admission (connection cap, TLS handshake, per-IP session
//! limit), a task per session, and the shutdown sequence. It survives every
//! per-connection error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use asyncaproto::{Encoding, ErrorCode};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn, Instrument};

use super::connection::Connection;
use super::transport::Transport;
use super::{Hook, ServerContext};
use crate::session::{SessionState, Signal};

/// How long the refusal of a connection over a limit may take.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

pub(super) async fn run(
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    tracker: TaskTracker,
    shutdown_hooks: Vec<Hook>,
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
        let state = Arc::new(SessionState::new(peer, ctx.codec, ctx.registry.clone()));
        let span = tracing::info_span!("session", id = %state.id());
        let ctx = ctx.clone();
        tracker.spawn(
            async move {
                // The permit is held from the accept to the close, handshake included.
                let _permit = permit;
                #[cfg(feature = "tls")]
                if let Some(acceptor) = &ctx.tls {
                    // Boxed: the handshake's future is large, and only lives
                    // until the session starts.
                    let handshake =
                        Box::pin(handshake(&ctx, acceptor, stream, peer, ctx.config.timeout));
                    if let Some(stream) = handshake.await {
                        serve(ctx, state, stream, peer).await;
                    }
                    return;
                }
                serve(ctx, state, stream, peer).await;
            }
            .instrument(span),
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
        if let Err(e) = hook().await {
            error!("Shutdown hook failed: {e}");
        }
    }
    info!("Server stopped");
}

/// Admits the session (the per-IP limit), then runs it to its end.
async fn serve<T: Transport>(
    ctx: Arc<ServerContext>,
    state: Arc<SessionState>,
    stream: T,
    peer: SocketAddr,
) {
    let Ok(registered) = ctx.registry.register(state.clone()) else {
        warn!("Session limit reached for {}", peer.ip());
        // Boxed: the refusal is rare, and its future must not
        // enlarge every session's task.
        Box::pin(refuse(stream, ctx.clone(), ErrorCode::SessionLimitReached)).await;
        return;
    };
    info!("New session started from {peer}, UUID is {}", state.id());
    let end = Connection::new(ctx, state, stream, registered).run().await;
    info!("The connection was closed ({end:?})");
}

/// Runs the server's side of a TLS handshake, for at most `limit` (and not
/// past the start of a shutdown). A failure is logged with the peer's
/// address and the connection dropped: nothing of it is kept.
#[cfg(feature = "tls")]
async fn handshake(
    ctx: &ServerContext,
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    limit: Duration,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let accept = tokio::time::timeout(limit, acceptor.accept(stream));
    tokio::select! {
        biased;
        () = ctx.shutdown.cancelled() => {
            info!("TLS handshake with {peer} abandoned: the server is shutting down");
            None
        }
        accepted = accept => match accepted {
            Ok(Ok(stream)) => {
                let (_, tls) = stream.get_ref();
                tracing::debug!(
                    "TLS handshake with {peer} done: {:?}, {:?}",
                    tls.protocol_version(),
                    tls.negotiated_cipher_suite().map(|suite| suite.suite())
                );
                Some(stream)
            }
            Ok(Err(e)) => {
                info!("TLS handshake with {peer} failed: {e}");
                None
            }
            Err(_) => {
                info!("TLS handshake with {peer} timed out after {limit:?}");
                None
            }
        },
    }
}

/// Refuses a connection over the connection cap with ERR_SERVER_BUSY; on a TLS
/// server, after a handshake bounded by [`REFUSAL_TIME`] (a TLS client could
/// not read the reply otherwise).
async fn refuse_busy(stream: TcpStream, peer: SocketAddr, ctx: Arc<ServerContext>) {
    #[cfg(feature = "tls")]
    if let Some(acceptor) = &ctx.tls {
        if let Some(stream) = handshake(&ctx, acceptor, stream, peer, REFUSAL_TIME).await {
            refuse(stream, ctx.clone(), ErrorCode::ServerBusy).await;
        }
        return;
    }
    let _ = peer;
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
