//! The accept loop and the shutdown sequence. Each accepted connection is
//! handed to [`admission`](super::admission) as an [`Incoming`]; the loop
//! survives every per-connection error.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::admission::{has_preamble, refuse_busy, session_via, start_plain, Incoming};
use super::{BoxedHook, ServerContext};

pub(super) async fn run(
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    tracker: TaskTracker,
    shutdown_hooks: Vec<BoxedHook>,
) {
    let permits = ctx.permits.clone();
    let has_preamble = has_preamble(&ctx);
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            biased;
            () = ctx.shutdown.draining() => break,
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
                    () = ctx.shutdown.draining() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        // On Linux the accepted socket has the listener's TCP_NODELAY (`listen`).
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let _ = stream.set_nodelay(true);
        if let Some(metrics) = &ctx.metrics {
            metrics.connection();
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            warn!("Connection limit reached, refusing {peer}");
            if let Some(metrics) = &ctx.metrics {
                metrics.refused(crate::metrics::Refusal::Busy);
            }
            tracker.spawn(refuse_busy(
                ctx.clone(),
                Incoming::accepted(stream, peer, ()),
            ));
            continue;
        };
        let incoming = Incoming::accepted(stream, peer, permit);
        if has_preamble {
            tracker.spawn(session_via(ctx.clone(), tracker.clone(), incoming));
        } else {
            start_plain(&ctx, &tracker, incoming);
        }
    }
    drop(listener);
    let sessions = ctx.shutdown.registry();
    info!(
        "No longer accepting; {} sessions open, waiting up to {:?}",
        sessions.len(),
        ctx.config.grace_period
    );
    // Idempotent: a shutdown from a handle or a signal has already drained.
    ctx.shutdown.drain();
    tracker.close();
    if tokio::time::timeout(ctx.config.grace_period, tracker.wait())
        .await
        .is_err()
    {
        warn!("Grace period over, dropping {} sessions", sessions.len());
        ctx.shutdown.abort();
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

#[cfg(test)]
mod tests {
    /// The accept loop relies on this to skip a `setsockopt` per connection.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[tokio::test]
    async fn an_accepted_socket_has_tcp_nodelay_from_the_listener() {
        let listener =
            crate::server::listen("127.0.0.1:0".parse().expect("addr"), false).expect("listen");
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let (stream, _) = accepted.expect("accept");
        assert!(stream.nodelay().expect("nodelay"));
        drop(client);
    }
}
