//! What one connection measured, and the sum over all of them.
//!
//! Each connection owns its [`ConnStats`] (no sharing on the hot path); the
//! only shared state is [`Progress`], two relaxed counters bumped once per read
//! batch for the live display. The per-connection figures are merged at the end.

use std::sync::atomic::{AtomicU64, Ordering};
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
    pub(crate) const ALL: [ErrorKind; 8] = [
        ErrorKind::ConnectRefused,
        ErrorKind::ConnectError,
        ErrorKind::ConnectTimeout,
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

/// The figures of one connection slot (across its reconnections).
#[derive(Debug, Clone)]
pub(crate) struct ConnStats {
    /// Latency of every measured, verified reply, in microseconds.
    pub(crate) latency_us: Histogram<u64>,
    /// Measured requests answered with a correct echo.
    pub(crate) requests: u64,
    /// Errors, counted whether or not the warm-up was over.
    pub(crate) errors: ErrorCounts,
    /// Bytes written after the warm-up.
    pub(crate) bytes_sent: u64,
    /// Bytes read after the warm-up.
    pub(crate) bytes_received: u64,
    /// When the connection stopped working.
    pub(crate) finished: Option<Instant>,
}

/// A latency histogram in microseconds, 3 significant figures, able to hold
/// latencies up to `max_latency` (at least one second); larger values saturate.
pub(crate) fn latency_histogram(max_latency: Duration) -> anyhow::Result<Histogram<u64>> {
    let high = u64::try_from(max_latency.as_micros())
        .unwrap_or(u64::MAX)
        .max(1_000_000);
    Ok(Histogram::new_with_bounds(1, high, 3)?)
}

impl ConnStats {
    /// Empty figures around an empty `latency_us` histogram.
    pub(crate) fn new(latency_us: Histogram<u64>) -> Self {
        ConnStats {
            latency_us,
            requests: 0,
            errors: ErrorCounts::default(),
            bytes_sent: 0,
            bytes_received: 0,
            finished: None,
        }
    }

    /// Adds `other`'s figures to these.
    pub(crate) fn merge(&mut self, other: &ConnStats) {
        // Two histograms of the same bounds always add; saturate anything odd.
        if self.latency_us.add(&other.latency_us).is_err() {
            for v in other.latency_us.iter_recorded() {
                self.latency_us
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        self.requests += other.requests;
        self.errors.merge(&other.errors);
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.finished = match (self.finished, other.finished) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
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
    fn merging_adds_everything() {
        let histogram = latency_histogram(Duration::from_secs(10)).expect("valid bounds");
        let mut a = ConnStats::new(histogram.clone());
        let mut b = ConnStats::new(histogram);
        a.latency_us.saturating_record(10);
        b.latency_us.saturating_record(1000);
        b.latency_us.saturating_record(u64::MAX);
        a.requests = 1;
        b.requests = 2;
        a.errors.add(ErrorKind::Timeout);
        b.errors.add(ErrorKind::Timeout);
        b.errors.add_failure(ErrorCode::NoHandler);
        a.merge(&b);
        assert_eq!(a.requests, 3);
        assert_eq!(a.latency_us.len(), 3);
        assert_eq!(a.errors.of(ErrorKind::Timeout), 2);
        assert_eq!(
            a.errors.failures().collect::<Vec<_>>(),
            vec![(ErrorCode::NoHandler, 1)]
        );
        assert_eq!(a.errors.total(), 3);
    }
}
