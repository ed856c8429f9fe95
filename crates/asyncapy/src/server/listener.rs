//! The accept loop: admission (connection cap, per-IP session limit), a task per
//! session, and the shutdown sequence. It survives every per-connection error.

use std::sync::Arc;
use std::time::Duration;

use asyncaproto::{Encoding, ErrorCode};
use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn, Instrument};

use super::connection::Connection;
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
    let permits = Arc::new(Semaphore::new(ctx.config.max_connections));
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
            tracker.spawn(refuse(stream, ctx.clone(), ErrorCode::ServerBusy));
            continue;
        };
        let state = Arc::new(SessionState::new(peer, ctx.codec, ctx.registry.clone()));
        let span = tracing::info_span!("session", id = %state.id());
        let ctx = ctx.clone();
        tracker.spawn(
            async move {
                let _permit = permit;
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

/// Answers a connection refused at admission with `code` (in JSON) and closes it.
async fn refuse(mut stream: TcpStream, ctx: Arc<ServerContext>, code: ErrorCode) {
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
        let mut sink = vec![0u8; 1024];
        loop {
            match stream.try_read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => stream.readable().await?,
                Err(e) => return Err(e),
            }
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
}
