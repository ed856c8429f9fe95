//! Blocking work off the async runtime: the original's `run_sync_task`.
//!
//! A handler must not block its worker thread (a database driver without async
//! support, a CPU-heavy computation...). [`run_sync_task`] runs a closure on
//! tokio's blocking thread pool and awaits its result; a [`SyncLimiter`] bounds
//! how many such closures run at once (the original's `limiter=`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), asyncapy::SyncTaskError> {
//! use asyncapy::{run_sync_task, SyncLimiter};
//!
//! let sum = run_sync_task(|| (1..=10u64).sum::<u64>()).await?;
//! assert_eq!(sum, 55);
//!
//! let limiter = SyncLimiter::new(2); // at most two at a time
//! let len = limiter.run(|| "four".len()).await?;
//! assert_eq!(len, 4);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use tokio::sync::Semaphore;

/// A blocking task that did not return a value.
#[derive(Debug, thiserror::Error)]
pub enum SyncTaskError {
    /// The closure panicked.
    #[error("the blocking task panicked")]
    Panicked,
    /// The runtime is shutting down and did not run it.
    #[error("the blocking task was cancelled")]
    Cancelled,
}

impl From<tokio::task::JoinError> for SyncTaskError {
    fn from(e: tokio::task::JoinError) -> SyncTaskError {
        if e.is_panic() {
            SyncTaskError::Panicked
        } else {
            SyncTaskError::Cancelled
        }
    }
}

/// Runs `f` on the blocking thread pool and returns its result.
///
/// If the awaiting future is dropped (say the handler timed out), `f` still runs
/// to its end: a thread cannot be interrupted safely.
pub async fn run_sync_task<F, R>(f: F) -> Result<R, SyncTaskError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    Ok(tokio::task::spawn_blocking(f).await?)
}

/// Bounds how many blocking tasks run at once; clones share the bound.
#[derive(Clone, Debug)]
pub struct SyncLimiter {
    permits: Arc<Semaphore>,
}

impl SyncLimiter {
    /// A limiter letting at most `limit` tasks run at once (at least one).
    pub fn new(limit: usize) -> SyncLimiter {
        SyncLimiter {
            permits: Arc::new(Semaphore::new(limit.max(1))),
        }
    }

    /// Waits for a free slot, then runs `f` like [`run_sync_task`].
    pub async fn run<F, R>(&self, f: F) -> Result<R, SyncTaskError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| SyncTaskError::Cancelled)?;
        Ok(tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await?)
    }

    /// How many more tasks could start right now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_limiter_bounds_concurrency() {
        let limiter = SyncLimiter::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (limiter, running, peak) = (limiter.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                limiter
                    .run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 2);
        assert_eq!(limiter.available(), 2);
    }

    #[tokio::test]
    async fn a_panicking_task_is_an_error_not_a_crash() {
        let err = run_sync_task(|| -> u8 { panic!("boom") })
            .await
            .unwrap_err();
        assert!(matches!(err, SyncTaskError::Panicked));
    }
}
