//! One persistent connection's load loop, over any byte stream (plain TCP or
//! TLS): keep the pipeline full, judge replies in place, watch the reply
//! timer and, with `--rate`, the pace.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;

use asyncaproto::ErrorCode;
use bytes::Buf;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::Instant;

use super::schedule::Claim;
use super::{Driver, FAR_FUTURE};
use crate::bench::stats::{micros, ErrorKind};
use crate::bench::verify::Outcome;

/// How a persistent session ended.
pub(super) enum SessionEnd {
    /// The run is over for this slot.
    Done,
    /// The connection is unusable; open another one if the run goes on. The
    /// requests in flight are lost (counted with the error that ended it).
    Reconnect,
    /// With `--resend`: the server is restarting (it answered
    /// `ERR_SHUTTING_DOWN`, or closed or reset the connection); the requests
    /// in flight stay in flight, to be sent again on the next connection.
    Resend,
}

/// What woke a persistent session up.
enum Event {
    /// This many bytes were read.
    Read(usize),
    /// The reply timer went off (timeout, or the end of a timed run).
    Timer,
    /// With `--rate`: a request is due.
    Due,
    /// The connection failed.
    Failed(ErrorKind),
}

/// A group of requests written together: they share their send time.
#[derive(Clone, Copy, Debug)]
struct Batch {
    sent: Instant,
    count: usize,
    measured: bool,
}

/// The requests in flight on one connection, oldest first (replies come in order).
#[derive(Debug, Default)]
pub(super) struct InFlight {
    batches: VecDeque<Batch>,
    requests: usize,
}

impl InFlight {
    /// Room for `batches` batches before it grows.
    pub(super) fn with_capacity(batches: usize) -> InFlight {
        InFlight {
            batches: VecDeque::with_capacity(batches),
            requests: 0,
        }
    }

    #[inline]
    pub(super) fn push(&mut self, sent: Instant, claim: Claim) {
        if claim.granted > 0 {
            self.batches.push_back(Batch {
                sent,
                count: claim.granted,
                measured: claim.measured,
            });
            self.requests += claim.granted;
        }
    }

    /// Retires the oldest request: its send time and whether it is measured.
    #[inline]
    fn pop(&mut self) -> Option<(Instant, bool)> {
        let front = self.batches.front_mut()?;
        let answer = (front.sent, front.measured);
        front.count -= 1;
        if front.count == 0 {
            self.batches.pop_front();
        }
        self.requests -= 1;
        Some(answer)
    }

    /// Requests in flight.
    pub(super) fn requests(&self) -> usize {
        self.requests
    }

    pub(super) fn clear(&mut self) {
        self.batches.clear();
        self.requests = 0;
    }
}

impl Driver {
    /// With `--rate`: queues the requests due by `now`, as many as the
    /// pipeline has room for, each with its scheduled time (latency counts
    /// from it). Returns how many, and whether the run's budget is spent.
    fn queue_due(&mut self, now: Instant) -> (usize, bool) {
        let Some(pacer) = self.pacer.as_mut() else {
            return (0, false);
        };
        let schedule = &self.shared.schedule;
        let pipeline = self.shared.workload.pipeline;
        let room = pipeline.saturating_sub(self.in_flight.requests);
        let mut queued = 0;
        let mut spent = false;
        while queued < room && pacer.next <= now {
            let start = pacer.start_of(pacer.next, now);
            let claim = schedule.claim(start, 1);
            if claim.granted == 0 {
                spent = true;
                break;
            }
            self.in_flight.push(start, claim);
            pacer.next += pacer.interval;
            queued += 1;
        }
        pacer.full_since = if self.in_flight.requests >= pipeline {
            pacer.full_since.or(Some(now))
        } else {
            None
        };
        (queued, spent)
    }

    /// With `--rate`, when to wake up for the next request: `None` without a
    /// pacer, or while the pipeline is full (a reply makes room first).
    fn next_due(&self) -> Option<Instant> {
        let pacer = self.pacer.as_ref()?;
        (self.in_flight.requests < self.shared.workload.pipeline).then_some(pacer.next)
    }

    /// Drives one connection (plain TCP or TLS), starting with the requests
    /// already in flight (claimed for it, or carried over from a connection
    /// that was lost with `--resend`), until the run ends or the connection
    /// fails. One poll writes
    /// what is pending (as much as the stream takes), flushes, reads, and
    /// watches the timers. Reads go through `AsyncRead` (unlike
    /// `try_read_buf`): a plain socket's readiness is forgotten after a short
    /// read, which saves the extra `read` that would only answer "would block".
    pub(super) async fn session<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        mut stream: S,
    ) -> SessionEnd {
        let shared = Arc::clone(&self.shared);
        let workload = &shared.workload;
        let schedule = &shared.schedule;
        let refill = &workload.refill[..];
        let frame_len = workload.request.frame.len();
        let reply_timeout = shared.target.reply_timeout;

        self.read_buf.clear();
        let now = Instant::now();
        let mut measuring = now >= schedule.warmup_end;
        let mut pending_write = self.in_flight.requests * frame_len;
        let mut last_reply = now;
        let next_deadline = |last_reply: Instant| {
            let timeout = last_reply
                .checked_add(reply_timeout)
                .unwrap_or_else(|| last_reply + FAR_FUTURE);
            schedule.stop_at().map_or(timeout, |end| end.min(timeout))
        };
        let timer = tokio::time::sleep_until(next_deadline(last_reply));
        tokio::pin!(timer);
        // With --rate: wakes the session when its next request is due.
        let pace = tokio::time::sleep_until(self.next_due().unwrap_or(now + FAR_FUTURE));
        tokio::pin!(pace);
        let mut spent = false;
        // Written but perhaps still in the TLS layer's buffer.
        let mut unflushed = false;

        loop {
            if self.pacer.is_some() {
                let now = Instant::now();
                if schedule.time_is_up(now) {
                    return SessionEnd::Done;
                }
                let idle = self.in_flight.requests == 0;
                let (queued, now_spent) = self.queue_due(now);
                spent |= now_spent;
                if queued > 0 {
                    pending_write += queued * frame_len;
                    if idle {
                        // The reply timeout runs while requests are out.
                        last_reply = now;
                        timer.as_mut().reset(next_deadline(last_reply));
                    }
                }
                if let Some(due) = self.next_due() {
                    pace.as_mut().reset(due);
                }
            }
            if self.in_flight.requests == 0 && (self.pacer.is_none() || spent) {
                return SessionEnd::Done;
            }
            let pacing = self.next_due().is_some();
            if self.read_buf.capacity() - self.read_buf.len() < workload.read_chunk / 4 {
                self.read_buf.reserve(workload.read_chunk);
            }
            let read_buf = &mut self.read_buf;
            let stats = &mut self.stats;
            let event = poll_fn(|cx| {
                while pending_write > 0 {
                    let rest = &refill[refill.len() - pending_write..];
                    match Pin::new(&mut stream).poll_write(cx, rest) {
                        Poll::Ready(Ok(0)) => return Poll::Ready(Event::Failed(ErrorKind::Closed)),
                        Poll::Ready(Ok(n)) => {
                            pending_write -= n;
                            unflushed = true;
                            if measuring {
                                stats.bytes_sent += n as u64;
                            }
                        }
                        Poll::Ready(Err(_)) => return Poll::Ready(Event::Failed(ErrorKind::Reset)),
                        Poll::Pending => break,
                    }
                }
                if unflushed {
                    match Pin::new(&mut stream).poll_flush(cx) {
                        Poll::Ready(Ok(())) => unflushed = false,
                        Poll::Ready(Err(_)) => return Poll::Ready(Event::Failed(ErrorKind::Reset)),
                        Poll::Pending => {}
                    }
                }
                let read = pin!(stream.read_buf(&mut *read_buf)).poll(cx);
                match read {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Event::Failed(ErrorKind::Closed)),
                    Poll::Ready(Ok(n)) => return Poll::Ready(Event::Read(n)),
                    Poll::Ready(Err(_)) => return Poll::Ready(Event::Failed(ErrorKind::Reset)),
                    Poll::Pending => {}
                }
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Timer);
                }
                if pacing && pace.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Due);
                }
                Poll::Pending
            })
            .await;
            let read = match event {
                Event::Read(n) => n,
                Event::Due => continue,
                Event::Failed(kind) => {
                    if self.may_resend(Instant::now()) {
                        self.stats.resent.requests += self.in_flight.requests as u64;
                        return SessionEnd::Resend;
                    }
                    self.error(kind);
                    return SessionEnd::Reconnect;
                }
                Event::Timer => {
                    let now = Instant::now();
                    if schedule.time_is_up(now) {
                        return SessionEnd::Done;
                    }
                    if self.in_flight.requests == 0 {
                        // Paced and waiting for the next request: no reply is owed.
                        last_reply = now;
                        timer.as_mut().reset(next_deadline(last_reply));
                        continue;
                    }
                    if now >= last_reply + reply_timeout {
                        self.error(ErrorKind::Timeout);
                        return SessionEnd::Reconnect;
                    }
                    timer.as_mut().reset(next_deadline(last_reply));
                    continue;
                }
            };
            let now = Instant::now();
            measuring = now >= schedule.warmup_end;
            let replies = match self.take_replies(now, measuring, read) {
                Ok(replies) => replies,
                Err(end) => return end,
            };
            if replies > 0 {
                last_reply = now;
            }
            if schedule.time_is_up(now) {
                return SessionEnd::Done;
            }
            if self.pacer.is_none() {
                let claim = schedule.claim(now, replies);
                pending_write += claim.granted * frame_len;
                self.in_flight.push(now, claim);
            }
        }
    }

    /// Judges every complete reply in the read buffer, in place, after a read
    /// of `read` bytes at `now`; the number of replies, or how the session ends.
    #[inline]
    fn take_replies(
        &mut self,
        now: Instant,
        measuring: bool,
        read: usize,
    ) -> Result<usize, SessionEnd> {
        let shared = Arc::clone(&self.shared);
        let workload = &shared.workload;
        let codec = &workload.codec;
        if measuring {
            self.stats.bytes_received += read as u64;
        }

        // Every complete reply in the buffer, judged in place.
        let mut parsed = 0;
        let mut replies = 0;
        let mut echoes = 0u64;
        let mut missing = 0;
        let mut end = None;
        let mut latency: Option<(Instant, u64)> = None;
        loop {
            let rest = &self.read_buf[parsed..];
            let (encoding, total) = match codec.check_head(rest) {
                Ok(Some(head)) => head,
                Ok(None) => break,
                Err(_) => {
                    end = Some(ErrorKind::Malformed);
                    break;
                }
            };
            if rest.len() < total {
                missing = total - rest.len();
                break;
            }
            let outcome = workload.verifier.check(encoding, &rest[..total]);
            parsed += total;
            replies += 1;
            if matches!(outcome, Outcome::Failure(ErrorCode::ShuttingDown)) && self.may_resend(now)
            {
                // The oldest request was not handled (nor any after it; to an
                // idle session the reply comes unasked): all of them go
                // again, on a new connection.
                self.stats.resent.requests += self.in_flight.requests as u64;
                shared.progress.add_requests(echoes);
                return Err(SessionEnd::Resend);
            }
            let Some((sent, measured)) = self.in_flight.pop() else {
                // A reply to nothing: the stream is out of step with us.
                end = Some(ErrorKind::Mismatch);
                break;
            };
            match outcome {
                Outcome::Echo => {
                    echoes += 1;
                    // The server answers: a later loss starts a new window.
                    self.resend_since = None;
                    if measured {
                        // Replies of one batch share a latency: compute it once.
                        let us = match latency {
                            Some((batch, us)) if batch == sent => us,
                            _ => micros(now.saturating_duration_since(sent)),
                        };
                        latency = Some((sent, us));
                        self.stats.record_latency(us);
                        self.stats.requests += 1;
                    }
                }
                Outcome::Mismatch => self.error(ErrorKind::Mismatch),
                Outcome::Malformed => {
                    end = Some(ErrorKind::Malformed);
                    break;
                }
                Outcome::Failure(code) => {
                    // The server closes the session after a failure reply.
                    self.stats.errors.add_failure(code);
                    shared.progress.add_error();
                    shared.progress.add_requests(echoes);
                    return Err(SessionEnd::Reconnect);
                }
            }
        }
        shared.progress.add_requests(echoes);
        if let Some(kind) = end {
            self.error(kind);
            return Err(SessionEnd::Reconnect);
        }
        self.read_buf.advance(parsed);
        if missing > 0 {
            self.read_buf.reserve(missing);
        }
        Ok(replies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn in_flight_pops_in_order() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(1);
        let mut in_flight = InFlight::default();
        in_flight.push(
            t0,
            Claim {
                granted: 2,
                measured: false,
            },
        );
        in_flight.push(
            t1,
            Claim {
                granted: 1,
                measured: true,
            },
        );
        assert_eq!(in_flight.requests, 3);
        assert_eq!(in_flight.pop(), Some((t0, false)));
        assert_eq!(in_flight.pop(), Some((t0, false)));
        assert_eq!(in_flight.pop(), Some((t1, true)));
        assert_eq!(in_flight.pop(), None);
        assert_eq!(in_flight.requests, 0);
    }
}
