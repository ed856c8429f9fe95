//! Limits shared by every server that points at one Redis (`limits_store =
//! redis://HOST:PORT[/DB]`, feature `redis`): `session_limit` counts a client
//! IP's sessions on all of them, `rate_limit` its packets.
//!
//! Every operation is one Lua script (atomic, one round trip) under
//! [`TIMEOUT`], on one reconnecting connection; the clock is Redis's own
//! (`TIME`), so the servers' clocks need not agree.
//!
//! - Sessions: a sorted set per IP, `{prefix}sessions:{ip}`, of session ids
//!   scored by their expiry. Admission drops the expired entries, counts the
//!   rest, and adds the newcomer if there is room. Each server refreshes its
//!   live sessions' entries every [`HEARTBEAT`], so the entries of a server
//!   that dies without cleaning up expire within [`SESSION_TTL`]; the
//!   heartbeat adds back the entries that are missing, so sessions admitted
//!   while Redis was away (`limits_fail = open`), or all of them after Redis
//!   came back empty, count again within one heartbeat. A session that ends
//!   removes its entry at once. Both run on one background task, in order
//!   (the end of a session never waits on Redis, and a heartbeat never
//!   brings back a closed session: see [`SharedLimits::heartbeat`]).
//! - Rate: one GCRA theoretical arrival time per IP, `{prefix}rate:{ip}`, in
//!   microseconds of Redis's clock, expiring when it is in the past.
//!
//! When Redis fails or is slow, `limits_fail` decides: `open` (the default)
//! lets the session or packet through, `closed` refuses it. Each failure is
//! logged and counted (`asyncapy_limits_store_errors_total`); the connection
//! reconnects by itself, so Redis coming back is picked up without a restart.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use uuid::Uuid;

use super::{LimitsFail, RateLimit};
use crate::metrics::Metrics;
use crate::redis_conn::{QueryError, RedisConn};

/// How long one operation may take.
pub(crate) const TIMEOUT: Duration = Duration::from_millis(500);
/// How long a session's entry lives without a heartbeat.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(15);
/// How often a server refreshes its sessions' entries.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(5);

const PREFIX: &str = "asyncapy:limits:";

/// KEYS[1] the IP's set; ARGV: session id, limit, TTL (ms). 1: admitted.
const ACQUIRE: &str = "
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
";

/// KEYS: the sets; ARGV[1] TTL (ms), then one session id per key. Adds
/// the entries that are missing (sessions admitted while Redis was away, or
/// a Redis that came back empty).
const HEARTBEAT_SCRIPT: &str = "
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', key, ttl)
end
return #KEYS
";

/// The live sessions of a server, asked for when a heartbeat is sent.
pub(crate) type LiveSessions = Box<dyn FnOnce() -> Vec<(IpAddr, Uuid)> + Send>;

/// What the background task does, in the order asked.
enum Job {
    /// Remove an ended session's entry.
    Release(IpAddr, Uuid),
    /// Refresh (or add back) the entries of the live sessions.
    Heartbeat(LiveSessions, Option<Arc<Metrics>>),
}

/// KEYS[1] the IP's TAT; ARGV: emission interval, tolerance (µs). 1: allowed.
const GCRA: &str = "
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tonumber(ARGV[2]) then return 0 end
local new = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.ceil((new - now) / 1000) + 1)
return 1
";

/// The shared limits of one server.
pub(crate) struct SharedLimits {
    redis: RedisConn,
    fail: LimitsFail,
    /// The background task's work: ended sessions' entries to remove, and
    /// heartbeats, one queue so that they keep their order.
    jobs: mpsc::UnboundedSender<Job>,
}

impl SharedLimits {
    /// Connects (lazily: a Redis that is down at start is not an error) to
    /// `url`, and starts the task that removes ended sessions' entries, on
    /// the current runtime.
    pub(crate) fn connect(url: &str, fail: LimitsFail) -> Result<Arc<SharedLimits>, String> {
        let redis = RedisConn::open(url, TIMEOUT).map_err(|e| e.to_string())?;
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        // The task holds the connection, not the limits: it ends when the
        // server (every sender) is gone.
        let worker = redis.clone();
        tokio::spawn(async move {
            while let Some(job) = queue.recv().await {
                match job {
                    Job::Release(ip, id) => release(&worker, ip, id).await,
                    Job::Heartbeat(live, metrics) => {
                        heartbeat(&worker, &live(), metrics.as_deref()).await;
                    }
                }
            }
        });
        Ok(Arc::new(SharedLimits { redis, fail, jobs }))
    }

    /// Whether session `id` of `ip` fits under `limit` across every server
    /// (it is then counted); a failure goes by `limits_fail`.
    pub(crate) async fn acquire(
        &self,
        ip: IpAddr,
        id: Uuid,
        limit: usize,
        metrics: Option<&Metrics>,
    ) -> bool {
        let command = redis::cmd("EVAL")
            .arg(ACQUIRE)
            .arg(1)
            .arg(sessions_key(ip))
            .arg(id.to_string())
            .arg(limit)
            .arg(SESSION_TTL.as_millis() as u64)
            .to_owned();
        match self.redis.query::<i64>(&command).await {
            Ok(admitted) => admitted == 1,
            Err(e) => self.failed("session_limit", ip, &e.to_string(), metrics),
        }
    }

    /// Frees the entry of session `id` of `ip`, at once (in the background).
    pub(crate) fn release(&self, ip: IpAddr, id: Uuid) {
        let _ = self.jobs.send(Job::Release(ip, id));
    }

    /// Refreshes the entries of this server's live sessions, adding back the
    /// missing ones (in the background). `live` is asked for when the
    /// heartbeat goes out, after every release asked for before it: a
    /// session that ended by then is not in it, and one that ends later is
    /// released after it, so a heartbeat never brings back a closed
    /// session's entry (the registry forgets a session before releasing it).
    pub(crate) fn heartbeat(&self, live: LiveSessions, metrics: Option<Arc<Metrics>>) {
        let _ = self.jobs.send(Job::Heartbeat(live, metrics));
    }

    /// Whether a packet of `ip` is within `rate` across every server; a
    /// failure goes by `limits_fail`.
    pub(crate) async fn allow(
        &self,
        ip: IpAddr,
        rate: RateLimit,
        metrics: Option<&Metrics>,
    ) -> bool {
        let command = redis::cmd("EVAL")
            .arg(GCRA)
            .arg(1)
            .arg(format!("{PREFIX}rate:{ip}"))
            .arg(rate.emission().as_micros() as u64)
            .arg(rate.tolerance().as_micros() as u64)
            .to_owned();
        match self.redis.query::<i64>(&command).await {
            Ok(allowed) => allowed == 1,
            Err(e) => self.failed("rate_limit", ip, &e.to_string(), metrics),
        }
    }

    /// Logs and counts a failure; the verdict `limits_fail` gives.
    fn failed(&self, what: &str, ip: IpAddr, error: &str, metrics: Option<&Metrics>) -> bool {
        if let Some(metrics) = metrics {
            metrics.limits_store_error();
        }
        let open = self.fail == LimitsFail::Open;
        let verdict = if open { "let through" } else { "refused" };
        tracing::warn!(
            "limits_store: {what} check for {ip} failed ({error}); {verdict} (limits_fail = {})",
            self.fail
        );
        open
    }
}

/// Removes the entry of session `id` of `ip`.
async fn release(redis: &RedisConn, ip: IpAddr, id: Uuid) {
    let command = redis::cmd("ZREM")
        .arg(sessions_key(ip))
        .arg(id.to_string())
        .to_owned();
    if let Err(e) = redis.query::<i64>(&command).await {
        tracing::warn!("limits_store: the slot of session {id} ({ip}) is left to expire: {e}");
    }
}

/// Sets the entries of the `live` sessions to expire one TTL from now.
async fn heartbeat(redis: &RedisConn, live: &[(IpAddr, Uuid)], metrics: Option<&Metrics>) {
    for batch in live.chunks(500) {
        let mut command = redis::cmd("EVAL");
        command.arg(HEARTBEAT_SCRIPT).arg(batch.len());
        for (ip, _) in batch {
            command.arg(sessions_key(*ip));
        }
        command.arg(SESSION_TTL.as_millis() as u64);
        for (_, id) in batch {
            command.arg(id.to_string());
        }
        // A heartbeat is idempotent: one that failed on the connection (the
        // first command after Redis restarted meets the old connection's
        // broken pipe) is sent once more, on the connection made since, so
        // the entries Redis lost come back within this heartbeat, not the
        // next one. A timeout is not retried: the next heartbeat will do.
        let mut sent = redis.query::<i64>(&command).await;
        if let Err(QueryError::Redis(e)) = &sent {
            tracing::debug!("limits_store: session heartbeat failed ({e}); once more");
            sent = redis.query::<i64>(&command).await;
        }
        if let Err(e) = sent {
            if let Some(metrics) = metrics {
                metrics.limits_store_error();
            }
            tracing::warn!("limits_store: session heartbeat failed: {e}");
            return;
        }
    }
}

fn sessions_key(ip: IpAddr) -> String {
    format!("{PREFIX}sessions:{ip}")
}
