//! A handler's panic is reported once: in the server's log, with the
//! session id, where it happened and its message; not also by Rust's
//! default panic hook on standard error.
//!
//! The server polls each handler inside [`Reported`], which marks the thread
//! while the handler runs. The hook installed by [`install_hook`] (once per
//! process, wrapping whatever hook was there) keeps the location of a panic
//! on a marked thread for the session's log line, and hands every other panic
//! to the previous hook unchanged.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};

thread_local! {
    /// Whether a handler is being polled on this thread.
    static IN_HANDLER: Cell<bool> = const { Cell::new(false) };
    /// Where the last handler panic on this thread happened.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the hook (once per process).
pub(crate) fn install_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_HANDLER.with(Cell::get) {
                let location = info.location().map(ToString::to_string);
                LOCATION.with(|l| *l.borrow_mut() = location);
            } else {
                previous(info);
            }
        }));
    });
}

/// Where the last handler panic on this thread happened, if the hook saw it.
pub(crate) fn take_location() -> Option<String> {
    LOCATION.with(|l| l.borrow_mut().take())
}

/// The message a panic carried.
pub(crate) fn message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

/// Polls a handler's future with the thread marked, so that its panics are
/// left to the session's log.
pub(crate) struct Reported<F>(pub(crate) F);

impl<F: Future + Unpin> Future for Reported<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        /// Unmarks the thread however the poll ends (a panic included).
        struct Unmark(bool);
        impl Drop for Unmark {
            fn drop(&mut self) {
                IN_HANDLER.with(|f| f.set(self.0));
            }
        }
        let _unmark = Unmark(IN_HANDLER.with(|f| f.replace(true)));
        Pin::new(&mut self.0).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[tokio::test(flavor = "current_thread")]
    async fn a_panic_inside_reported_keeps_its_location_and_the_mark_is_cleared() {
        install_hook();
        let mut handler = Box::pin(async { panic!("deliberate, in a handler") });
        let caught = std::panic::AssertUnwindSafe(Reported(&mut handler)).catch_unwind();
        let panic = caught.await.err().unwrap();
        assert_eq!(message(&*panic), "deliberate, in a handler");
        let location = take_location().unwrap();
        assert!(location.contains("panic_report.rs"), "{location}");
        assert!(!IN_HANDLER.with(Cell::get), "the thread is unmarked");
        assert_eq!(take_location(), None);
    }
}
