//! What one connection measured, and the sum over all of them.
//!
//! Each connection owns its [`ConnStats`] (no sharing on the hot path); the
//! only shared state is [`Progress`], two relaxed counters bumped once per read
//! batch for the live display. The per-connection figures are merged at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use asyncaproto::ErrorCode;
use hdrhistogram::Histogram;

/// The kinds of error a connection can meet, besides failure replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// The server refused the connection.
    ConnectRefused,
    /// Connecting failed for another reason (e.g. no free local port).
    ConnectError,
    /// Connecting took longer than `--connect-timeout`.
    ConnectTimeout,
    /// The TLS handshake failed (a certificate refused, a server without TLS…).
    Tls,
    /// The server closed the connection while replies were outstanding.
    Closed,
    /// Reading or writing failed (connection reset, broken pipe, …).
    Reset,
    /// No reply came within `--timeout` while requests were outstanding.
    Timeout,
    /// A well-formed reply that does not echo the request.
    Mismatch,
    /// A reply whose head or payload does not parse.
    Malformed,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub(crate) const ALL: [ErrorKind; 9] = [
        ErrorKind::ConnectRefused,
        ErrorKind::ConnectError,
        ErrorKind::ConnectTimeout,
        ErrorKind::Tls,
        ErrorKind::Closed,
        ErrorKind::Reset,
        ErrorKind::Timeout,
        ErrorKind::Mismatch,
        ErrorKind::Malformed,
    ];

    /// The kind's name in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::ConnectError => "connect_error",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::Tls => "tls",
            ErrorKind::Closed => "closed",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Mismatch => "mismatch",
            ErrorKind::Malformed => "malformed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Error counts by kind, and failure replies by code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ErrorCounts {
    kinds: [u64; ErrorKind::ALL.len()],
    failures: [u64; ErrorCode::ALL.len()],
}

impl ErrorCounts {
    /// Counts one error of `kind`.
    pub(crate) fn add(&mut self, kind: ErrorKind) {
        self.kinds[kind.index()] += 1;
    }

    /// Counts one failure reply carrying `code`.
    pub(crate) fn add_failure(&mut self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|&c| c == code) {
            self.failures[i] += 1;
        }
    }

    /// How many errors of `kind`.
    pub(crate) fn of(&self, kind: ErrorKind) -> u64 {
        self.kinds[kind.index()]
    }

    /// The failure replies received, by code (codes never seen are left out).
    pub(crate) fn failures(&self) -> impl Iterator<Item = (ErrorCode, u64)> + '_ {
        ErrorCode::ALL
            .iter()
            .zip(self.failures)
            .filter(|&(_, n)| n > 0)
            .map(|(&code, n)| (code, n))
    }

    /// Every error of every kind, failure replies included.
    pub(crate) fn total(&self) -> u64 {
        self.kinds.iter().sum::<u64>() + self.failures.iter().sum::<u64>()
    }

    fn merge(&mut self, other: &ErrorCounts) {
        for (a, b) in self.kinds.iter_mut().zip(other.kinds) {
            *a += b;
        }
        for (a, b) in self.failures.iter_mut().zip(other.failures) {
            *a += b;
        }
    }
}

/// How many latencies a connection buffers before handing them to the shared
/// histogram: one lock per this many replies.
pub(crate) const LATENCY_BATCH: usize = 256;

/// The latency histogram every connection feeds, in microseconds.
pub(crate) type SharedHistogram = Arc<Mutex<Histogram<u64>>>;

/// An empty shared latency histogram (3 significant figures, growing as needed).
pub(crate) fn shared_histogram() -> anyhow::Result<SharedHistogram> {
    Ok(Arc::new(Mutex::new(Histogram::new(3)?)))
}

/// The figures of one connection slot (across its reconnections).
///
/// Latencies are not kept in a histogram per connection (at 3 significant
/// figures that is 8 to 50 KiB each, too much for 10,000 connections) but
/// buffered, [`LATENCY_BATCH`] at a time, and added to one shared histogram:
/// 2 KiB per connection, one uncontended lock per batch.
#[derive(Debug)]
pub(crate) struct ConnStats {
    /// Latencies not yet in the shared histogram, in microseconds.
    pending_latencies: Vec<u64>,
    /// Where latencies go.
    histogram: SharedHistogram,
    /// Larger latencies are recorded as this.
    max_latency_us: u64,
    /// Measured requests answered with a correct echo.
    pub(crate) requests: u64,
    /// Errors, counted whether or not the warm-up was over.
    pub(crate) errors: ErrorCounts,
    /// Bytes written after the warm-up.
    pub(crate) bytes_sent: u64,
    /// Bytes read after the warm-up.
    pub(crate) bytes_received: u64,
    /// With `--resend`: what a restarting server lost and was tried again.
    pub(crate) resent: Resent,
    /// When the connection stopped working.
    pub(crate) finished: Option<Instant>,
}

impl ConnStats {
    /// Empty figures feeding `histogram`; latencies above `max_latency` are
    /// recorded as `max_latency`.
    pub(crate) fn new(histogram: SharedHistogram, max_latency: Duration) -> Self {
        ConnStats {
            pending_latencies: Vec::with_capacity(LATENCY_BATCH),
            histogram,
            max_latency_us: micros(max_latency),
            requests: 0,
            errors: ErrorCounts::default(),
            bytes_sent: 0,
            bytes_received: 0,
            resent: Resent::default(),
            finished: None,
        }
    }

    /// Records one reply's latency, in microseconds.
    pub(crate) fn record_latency(&mut self, latency_us: u64) {
        self.pending_latencies
            .push(latency_us.min(self.max_latency_us));
        if self.pending_latencies.len() >= LATENCY_BATCH {
            self.flush_latencies();
        }
    }

    /// Hands the buffered latencies to the shared histogram.
    pub(crate) fn flush_latencies(&mut self) {
        if self.pending_latencies.is_empty() {
            return;
        }
        let mut histogram = self
            .histogram
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for &us in &self.pending_latencies {
            // Growing fails only past `usize`, far beyond the clamp above.
            let _ = histogram.record(us);
        }
        drop(histogram);
        self.pending_latencies.clear();
    }
}

/// With `--resend`: what a restarting server lost and was tried again
/// instead of being counted as an error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Resent {
    /// Requests sent again on a new connection: answered `ERR_SHUTTING_DOWN`,
    /// or outstanding when the server closed or reset the connection.
    pub(crate) requests: u64,
    /// Connection attempts refused (or closed before an answer) and tried again.
    pub(crate) connects: u64,
}

/// The sum of every connection's figures.
#[derive(Debug, Clone)]
pub(crate) struct Totals {
    /// Latency of every measured, verified reply, in microseconds.
    pub(crate) latency_us: Histogram<u64>,
    /// Measured requests answered with a correct echo.
    pub(crate) requests: u64,
    /// Every error.
    pub(crate) errors: ErrorCounts,
    /// Bytes written after the warm-up.
    pub(crate) bytes_sent: u64,
    /// Bytes read after the warm-up.
    pub(crate) bytes_received: u64,
    /// With `--resend`: what was tried again.
    pub(crate) resent: Resent,
    /// When the last connection stopped working.
    pub(crate) finished: Option<Instant>,
}

impl Totals {
    /// Nothing yet, with latencies to come from `histogram`.
    pub(crate) fn new(histogram: &SharedHistogram) -> Self {
        let empty = histogram
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Totals {
            latency_us: empty,
            requests: 0,
            errors: ErrorCounts::default(),
            bytes_sent: 0,
            bytes_received: 0,
            resent: Resent::default(),
            finished: None,
        }
    }

    /// Adds one connection's figures (its latencies, flushed, are in the
    /// shared histogram: see [`Totals::take_latencies`]).
    pub(crate) fn add(&mut self, conn: &mut ConnStats) {
        conn.flush_latencies();
        self.requests += conn.requests;
        self.errors.merge(&conn.errors);
        self.bytes_sent += conn.bytes_sent;
        self.bytes_received += conn.bytes_received;
        self.resent.requests += conn.resent.requests;
        self.resent.connects += conn.resent.connects;
        self.finished = match (self.finished, conn.finished) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Takes the latencies from the shared histogram, once every connection
    /// has been added.
    pub(crate) fn take_latencies(&mut self, histogram: &SharedHistogram) {
        let mut shared = histogram.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut self.latency_us, &mut shared);
    }
}

/// A duration in whole microseconds, saturating.
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The live counters behind the progress display, shared by every connection.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    requests: AtomicU64,
    errors: AtomicU64,
}

impl Progress {
    /// Adds `n` answered requests (called once per read batch).
    pub(crate) fn add_requests(&self, n: u64) {
        if n > 0 {
            self.requests.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Adds one error.
    pub(crate) fn add_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests answered and errors so far.
    pub(crate) fn snapshot(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_everything() {
        let histogram = shared_histogram().expect("histogram");
        let mut a = ConnStats::new(Arc::clone(&histogram), Duration::from_secs(10));
        let mut b = ConnStats::new(Arc::clone(&histogram), Duration::from_secs(10));
        a.record_latency(10);
        b.record_latency(1000);
        b.record_latency(u64::MAX);
        for _ in 0..LATENCY_BATCH {
            a.record_latency(20);
        }
        a.requests = 1;
        b.requests = 2;
        a.errors.add(ErrorKind::Timeout);
        b.errors.add(ErrorKind::Timeout);
        b.errors.add_failure(ErrorCode::NoHandler);
        let mut totals = Totals::new(&histogram);
        totals.add(&mut a);
        totals.add(&mut b);
        totals.take_latencies(&histogram);
        assert_eq!(totals.requests, 3);
        assert_eq!(totals.latency_us.len(), 3 + LATENCY_BATCH as u64);
        assert_eq!(totals.latency_us.value_at_quantile(0.5), 20);
        // Clamped to the bound (within the histogram's precision).
        let max = totals.latency_us.max();
        assert!((9_990_000..=10_010_000).contains(&max), "{max}");
        assert_eq!(totals.errors.of(ErrorKind::Timeout), 2);
        assert_eq!(
            totals.errors.failures().collect::<Vec<_>>(),
            vec![(ErrorCode::NoHandler, 1)]
        );
        assert_eq!(totals.errors.total(), 3);
    }
}
