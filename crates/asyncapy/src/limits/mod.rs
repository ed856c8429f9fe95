//! Per-client-IP rate limit (`rate_limit = N/SECONDS`): GCRA, the generic
//! cell rate algorithm, with a burst of N.
//!
//! Each IP has a theoretical arrival time (TAT). A packet at `now` is allowed
//! when `TAT - now <= period - period / N` (at most N packets may arrive at
//! once after a quiet period), and then moves the TAT on by `period / N`
//! (from `now` if it was in the past). A refused packet moves nothing, so a
//! client over the rate gets its packets through again at the rate, however
//! fast it keeps sending. One timestamp per IP active in the last period is
//! all that is kept; older ones are swept.
//!
//! A packet over the rate is answered `ERR_RATE_LIMITED` and not handled;
//! the session stays open.
//!
//! With `limits_store`, the rate and `session_limit` are kept in Redis and
//! shared by every server pointing at it (`shared.rs`, feature `redis`).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

#[cfg(feature = "redis")]
mod shared;
#[cfg(feature = "redis")]
pub(crate) use shared::SharedLimits;
#[cfg(feature = "redis")]
pub(crate) use shared::HEARTBEAT;

#[cfg(not(feature = "redis"))]
mod unshared;
#[cfg(not(feature = "redis"))]
pub(crate) use unshared::{SharedLimits, HEARTBEAT};

/// What a server does when the shared limits store (`limits_store`) fails or
/// does not answer in time: let the session or packet through (`open`, the
/// default) or refuse it (`closed`). Either way the failure is logged and
/// counted.
///
/// ```
/// use asyncapy::LimitsFail;
/// assert_eq!("closed".parse::<LimitsFail>(), Ok(LimitsFail::Closed));
/// assert_eq!(LimitsFail::default().to_string(), "open");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LimitsFail {
    /// Let through.
    #[default]
    Open,
    /// Refuse (`ERR_SESSION_LIMIT_REACHED`, `ERR_RATE_LIMITED`).
    Closed,
}

impl FromStr for LimitsFail {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        match text.trim().to_ascii_lowercase().as_str() {
            "open" => Ok(LimitsFail::Open),
            "closed" => Ok(LimitsFail::Closed),
            _ => Err(()),
        }
    }
}

impl fmt::Display for LimitsFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitsFail::Open => "open",
            LimitsFail::Closed => "closed",
        })
    }
}

/// A rate: at most `count` packets per `period`, in bursts of up to `count`
/// ([`Config::rate_limit`](crate::Config::rate_limit)).
///
/// ```
/// use asyncapy::RateLimit;
/// let rate: RateLimit = "100/1".parse()?;
/// assert_eq!(rate.count, 100);
/// assert_eq!(rate.period, std::time::Duration::from_secs(1));
/// assert_eq!(rate.to_string(), "100/1");
/// assert!("0/1".parse::<RateLimit>().is_err());
/// # Ok::<(), asyncapy::RateLimitError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Packets per period, and the largest burst.
    pub count: u32,
    /// The period.
    pub period: Duration,
}

/// A rate that is not `N/SECONDS` with N a positive integer and SECONDS a
/// positive number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a rate N/SECONDS (a positive count, a positive number of seconds): {0:?}")]
pub struct RateLimitError(pub String);

impl FromStr for RateLimit {
    type Err = RateLimitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || RateLimitError(text.to_owned());
        let (count, seconds) = text.trim().split_once('/').ok_or_else(error)?;
        let count: u32 = count.trim().parse().map_err(|_| error())?;
        let seconds: f64 = seconds.trim().parse().map_err(|_| error())?;
        if count == 0 || !seconds.is_finite() || seconds <= 0.0 || seconds > 1e6 {
            return Err(error());
        }
        Ok(RateLimit {
            count,
            period: Duration::from_secs_f64(seconds),
        })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.period.as_secs_f64())
    }
}

impl RateLimit {
    /// The time one packet costs: `period / count`.
    pub(crate) fn emission(&self) -> Duration {
        self.period / self.count
    }

    /// How far ahead of now a client's TAT may be: `period - emission`.
    pub(crate) fn tolerance(&self) -> Duration {
        self.period.saturating_sub(self.emission())
    }
}

/// The rate limit of one server, in local memory.
pub(crate) struct LocalRate {
    emission: Duration,
    tolerance: Duration,
    state: Mutex<Tats>,
}

struct Tats {
    by_ip: HashMap<IpAddr, Instant>,
    /// The size at which the next sweep of stale entries runs.
    sweep_at: usize,
}

impl LocalRate {
    pub(crate) fn new(rate: RateLimit) -> LocalRate {
        LocalRate {
            emission: rate.emission(),
            tolerance: rate.tolerance(),
            state: Mutex::new(Tats {
                by_ip: HashMap::new(),
                sweep_at: 1024,
            }),
        }
    }

    /// Whether a packet of `ip` arriving at `now` is within the rate (it is
    /// then counted).
    pub(crate) fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let tat = state.by_ip.get(&ip).copied().unwrap_or(now).max(now);
        if tat.saturating_duration_since(now) > self.tolerance {
            return false;
        }
        state.by_ip.insert(ip, tat + self.emission);
        if state.by_ip.len() >= state.sweep_at {
            // A TAT in the past is the same as none.
            state.by_ip.retain(|_, tat| *tat > now);
            state.sweep_at = (state.by_ip.len() * 2).max(1024);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print() {
        let rate: RateLimit = "20/1".parse().unwrap();
        assert_eq!(rate.emission(), Duration::from_millis(50));
        assert_eq!(rate.tolerance(), Duration::from_millis(950));
        let rate: RateLimit = " 3 / 0.5 ".parse().unwrap();
        assert_eq!(rate.period, Duration::from_millis(500));
        for bad in ["", "10", "a/1", "10/0", "10/-1", "0/1", "10/x", "10/inf"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_burst_of_n_then_one_per_emission_interval() {
        let limiter = LocalRate::new("5/1".parse().unwrap());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let start = Instant::now();
        let allowed = (0..20).filter(|_| limiter.allow(ip, start)).count();
        assert_eq!(allowed, 5, "a burst of 5");
        assert!(limiter.allow(other, start), "IPs are counted apart");
        // 200 ms on, one more; refused packets did not push the time on.
        assert!(!limiter.allow(ip, start + Duration::from_millis(150)));
        assert!(limiter.allow(ip, start + Duration::from_millis(200)));
        assert!(!limiter.allow(ip, start + Duration::from_millis(200)));
        // After a quiet period, a whole burst again.
        let later = start + Duration::from_secs(5);
        assert_eq!((0..20).filter(|_| limiter.allow(ip, later)).count(), 5);
    }

    #[test]
    fn stale_entries_are_swept() {
        let limiter = LocalRate::new("1/1".parse().unwrap());
        let start = Instant::now();
        for i in 0..2000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            assert!(limiter.allow(ip, start + Duration::from_secs(u64::from(i))));
        }
        let len = limiter.state.lock().unwrap().by_ip.len();
        assert!(len < 1100, "{len} entries kept");
    }
}
