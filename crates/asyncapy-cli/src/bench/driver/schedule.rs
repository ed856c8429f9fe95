//! When a connection slot may send: the run's phases and its end
//! ([`Schedule`], [`Stop`]), the requests it is granted ([`Claim`]), the
//! `--rate` schedule of one slot ([`Pacer`]), and whether the server can be
//! reached at all ([`Reachability`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// With `--rate`: when a connection's requests are due. A request that fell
/// due while the pipeline was full waited for the server: its latency counts
/// from when it was due (no coordinated omission). One that waited only for
/// this side's timer (which wakes up to a millisecond late) counts from its
/// write. The schedule runs on through reconnects.
#[derive(Debug)]
pub(crate) struct Pacer {
    pub(super) interval: Duration,
    pub(super) next: Instant,
    /// Since when the pipeline has been full, if it is.
    pub(super) full_since: Option<Instant>,
}

impl Pacer {
    /// One request every `interval`, the first at `first`.
    pub(crate) fn new(interval: Duration, first: Instant) -> Pacer {
        Pacer {
            interval,
            next: first,
            full_since: None,
        }
    }

    /// When the request due at `due` counts from, sent at `now`.
    #[inline]
    pub(super) fn start_of(&self, due: Instant, now: Instant) -> Instant {
        match self.full_since {
            Some(since) if due >= since => due,
            _ => now,
        }
    }
}

/// When a run stops.
#[derive(Debug)]
pub(crate) enum Stop {
    /// At this instant (`--duration`).
    At(Instant),
    /// Once this many more requests have been sent (`--requests`), counted down.
    AfterRequests(AtomicU64),
}

/// The phases of a run, shared by every connection slot.
#[derive(Debug)]
pub(crate) struct Schedule {
    /// Requests sent before this instant are not measured.
    pub(crate) warmup_end: Instant,
    /// When the run stops.
    pub(crate) stop: Stop,
}

/// Permission to send `granted` more requests.
#[derive(Clone, Copy, Debug)]
pub(super) struct Claim {
    pub(super) granted: usize,
    pub(super) measured: bool,
}

impl Schedule {
    /// Asks to send `want` more requests at `now`.
    #[inline]
    pub(super) fn claim(&self, now: Instant, want: usize) -> Claim {
        let measured = now >= self.warmup_end;
        let granted = match &self.stop {
            Stop::At(end) => {
                if now >= *end {
                    0
                } else {
                    want
                }
            }
            Stop::AfterRequests(_) if !measured => want,
            Stop::AfterRequests(left) => {
                let want64 = want as u64;
                match left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n > 0).then(|| n.saturating_sub(want64))
                }) {
                    Ok(before) => before.min(want64) as usize,
                    Err(_) => 0,
                }
            }
        };
        Claim { granted, measured }
    }

    /// The end of a timed run.
    #[inline]
    pub(super) fn stop_at(&self) -> Option<Instant> {
        match self.stop {
            Stop::At(end) => Some(end),
            Stop::AfterRequests(_) => None,
        }
    }

    /// Whether a timed run is over at `now`.
    #[inline]
    pub(super) fn time_is_up(&self, now: Instant) -> bool {
        self.stop_at().is_some_and(|end| now >= end)
    }

    /// Whether no request may be sent any more: the time is up, or every one
    /// of `--requests` has been claimed.
    pub(super) fn is_spent(&self, now: Instant) -> bool {
        match &self.stop {
            Stop::At(end) => now >= *end,
            Stop::AfterRequests(left) => left.load(Ordering::Relaxed) == 0,
        }
    }
}

/// Whether the server can be reached at all. In a timed run, once the first
/// connection attempt of every slot has failed, the run stops (a dead port
/// would otherwise be retried for the whole duration, measuring nothing).
/// One slot that connects is enough for the run to go on.
#[derive(Debug)]
pub(crate) struct Reachability {
    /// How many connection slots there are.
    slots: usize,
    /// Slots whose first attempt failed.
    failed: AtomicUsize,
    /// Why the first failed attempt failed.
    reason: Mutex<Option<String>>,
    /// Told once every slot's first attempt has failed.
    unreachable: Notify,
}

impl Reachability {
    /// For a run of `slots` connection slots.
    pub(crate) fn new(slots: usize) -> Reachability {
        Reachability {
            slots,
            failed: AtomicUsize::new(0),
            reason: Mutex::new(None),
            unreachable: Notify::new(),
        }
    }

    /// A slot's first attempt failed, for `reason`.
    pub(super) fn first_attempt_failed(&self, reason: String) {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(reason);
        if self.failed.fetch_add(1, Ordering::AcqRel) + 1 == self.slots {
            self.unreachable.notify_one();
        }
    }

    /// Waits until every slot's first attempt has failed: why the first failed.
    pub(crate) async fn unreachable(&self) -> String {
        self.unreachable.notified().await;
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_claims_never_exceed_the_budget() {
        let now = Instant::now();
        let schedule = Schedule {
            warmup_end: now,
            stop: Stop::AfterRequests(AtomicU64::new(5)),
        };
        assert_eq!(schedule.claim(now, 3).granted, 3);
        assert_eq!(schedule.claim(now, 3).granted, 2);
        assert_eq!(schedule.claim(now, 3).granted, 0);
    }

    #[test]
    fn warmup_claims_are_free_and_unmeasured() {
        let now = Instant::now();
        let schedule = Schedule {
            warmup_end: now + Duration::from_secs(60),
            stop: Stop::AfterRequests(AtomicU64::new(1)),
        };
        let claim = schedule.claim(now, 4);
        assert_eq!((claim.granted, claim.measured), (4, false));
        let later = schedule.claim(now + Duration::from_secs(61), 4);
        assert_eq!((later.granted, later.measured), (1, true));
    }

    #[test]
    fn timed_claims_stop_at_the_end() {
        let now = Instant::now();
        let schedule = Schedule {
            warmup_end: now,
            stop: Stop::At(now + Duration::from_secs(1)),
        };
        assert_eq!(schedule.claim(now, 4).granted, 4);
        assert_eq!(schedule.claim(now + Duration::from_secs(1), 4).granted, 0);
        assert!(schedule.time_is_up(now + Duration::from_secs(2)));
    }

    #[test]
    fn paced_requests_count_from_their_due_time_only_when_the_server_held_them() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut pacer = Pacer::new(ms(10), t0);
        // Room all along: a late wake-up is ours, the latency counts from the write.
        assert_eq!(pacer.start_of(t0, t0 + ms(1)), t0 + ms(1));
        // The pipeline has been full since t0 + 5 ms: a request due at 10 ms,
        // sent at 30 ms when a reply made room, counts from 10 ms.
        pacer.full_since = Some(t0 + ms(5));
        assert_eq!(pacer.start_of(t0 + ms(10), t0 + ms(30)), t0 + ms(10));
        // One due before the pipeline filled up was held by nothing but us.
        assert_eq!(pacer.start_of(t0 + ms(2), t0 + ms(30)), t0 + ms(30));
    }
}
