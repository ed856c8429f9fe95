//! The server's shutdown: one signal, in two steps, that the listener, the
//! connections still in their preamble and every session all hear.
//!
//! 1. **Drain** ([`Shutdown::drain`], from [`ServerHandle::shutdown`] or a
//!    signal): the listener stops accepting, a connection still sending its
//!    PROXY header or TLS handshake is dropped, an idle session answers
//!    `ERR_SHUTTING_DOWN` and closes, and a session with packets in flight
//!    finishes them first.
//! 2. **Abort** ([`Shutdown::abort`], when the grace period is over): every
//!    session still open is dropped where it is.
//!
//! Sessions hear it through their own signal bits (a session's wait is one
//! `poll_fn` over wakers it already has, so an idle session holds nothing more
//! for it); [`Shutdown::register`] is how a session joins, so that one admitted
//! while the shutdown starts is told all the same.
//!
//! [`ServerHandle::shutdown`]: crate::ServerHandle::shutdown

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::session::{LimitReached, Registry, RegistryGuard, SessionState};

const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
const ABORTING: u8 = 2;

/// The shutdown signal of one server.
pub(crate) struct Shutdown {
    stage: AtomicU8,
    /// Cancelled when the drain starts, for those that wait for it outside a
    /// session: the listener and connections in their preamble.
    draining: CancellationToken,
    /// The live sessions, each told of every step.
    registry: Arc<Registry>,
}

impl Shutdown {
    pub(crate) fn new(registry: Arc<Registry>) -> Self {
        Shutdown {
            stage: AtomicU8::new(RUNNING),
            draining: CancellationToken::new(),
            registry,
        }
    }

    /// The live sessions.
    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Starts the drain (once; later calls do nothing).
    pub(crate) fn drain(&self) {
        if self
            .stage
            .compare_exchange(RUNNING, DRAINING, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.draining.cancel();
            self.registry.for_each(SessionState::shutdown);
        }
    }

    /// Ends the grace period: every session still open is dropped.
    pub(crate) fn abort(&self) {
        self.drain();
        if self.stage.swap(ABORTING, Ordering::SeqCst) != ABORTING {
            self.registry.for_each(SessionState::abort);
        }
    }

    /// Whether the drain has started.
    pub(crate) fn is_draining(&self) -> bool {
        self.stage.load(Ordering::SeqCst) != RUNNING
    }

    /// Completes once the drain has started.
    pub(crate) async fn draining(&self) {
        self.draining.cancelled().await;
    }

    /// Adds a session to the registry (within the per-IP limit), and tells it
    /// of a shutdown already under way.
    ///
    /// The stage is read after the session is in the registry, and [`drain`]
    /// and [`abort`](Shutdown::abort) set it before they walk the registry:
    /// whichever comes first, the session hears the step.
    ///
    /// [`drain`]: Shutdown::drain
    pub(crate) fn register(&self, state: Arc<SessionState>) -> Result<RegistryGuard, LimitReached> {
        let guard = self.registry.register(state.clone())?;
        match self.stage.load(Ordering::SeqCst) {
            RUNNING => {}
            DRAINING => state.shutdown(),
            _ => state.abort(),
        }
        Ok(guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asyncaproto::FrameCodec;
    use std::future::poll_fn;
    use std::net::SocketAddr;

    use crate::session::Signal;

    fn session(registry: &Arc<Registry>) -> Arc<SessionState> {
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        Arc::new(SessionState::new(
            peer,
            FrameCodec::default(),
            registry.clone(),
        ))
    }

    async fn signal_of(state: &SessionState) -> Signal {
        poll_fn(|cx| state.poll_signal(cx)).await
    }

    #[tokio::test]
    async fn sessions_before_and_after_each_step_hear_it() {
        let registry = Arc::new(Registry::new(0));
        let shutdown = Shutdown::new(registry.clone());
        let early = session(&registry);
        let _early = shutdown.register(early.clone()).ok().unwrap();
        assert!(!shutdown.is_draining());

        shutdown.drain();
        shutdown.draining().await;
        assert!(shutdown.is_draining());
        assert_eq!(signal_of(&early).await, Signal::Shutdown);
        let late = session(&registry);
        let _late = shutdown.register(late.clone()).ok().unwrap();
        assert_eq!(signal_of(&late).await, Signal::Shutdown, "joined mid-drain");

        shutdown.abort();
        assert_eq!(signal_of(&early).await, Signal::Abort);
        assert_eq!(signal_of(&late).await, Signal::Abort);
        let latest = session(&registry);
        let _latest = shutdown.register(latest.clone()).ok().unwrap();
        assert_eq!(
            signal_of(&latest).await,
            Signal::Abort,
            "joined after abort"
        );
    }

    #[tokio::test]
    async fn an_abort_without_a_drain_drains_too() {
        let registry = Arc::new(Registry::new(0));
        let shutdown = Shutdown::new(registry);
        shutdown.abort();
        assert!(shutdown.is_draining());
        shutdown.draining().await;
    }
}
