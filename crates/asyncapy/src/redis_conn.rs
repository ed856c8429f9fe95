//! One reconnecting Redis connection whose every command runs under a
//! timeout: what the Redis key store (`keys::redis`) and the shared limits
//! (`limits::shared`) both talk through (feature `redis`).
//!
//! - The connection is redis-rs's `ConnectionManager`, made lazily: a Redis
//!   that is down when the server starts is not an error, and one that comes
//!   back is picked up without a restart.
//! - Its own connect and response timeouts sit a little past ours, so a
//!   command always ends on ours ([`QueryError::Timeout`]).
//! - A command whose connection attempt was refused was never sent: it is
//!   sent once more, on the connection the manager is making by then (Redis
//!   may be back), within the same timeout.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, FromRedisValue, RedisError};

/// A reconnecting connection, its address for messages, and the timeout of
/// every command.
#[derive(Clone)]
pub(crate) struct RedisConn {
    connection: ConnectionManager,
    /// Where it connects (host and port, never a password).
    address: String,
    timeout: Duration,
}

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum QueryError {
    /// No answer within the timeout.
    Timeout {
        /// Where the command went.
        address: String,
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// Redis (or the connection to it) failed: the message names the address.
    Redis(String),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Timeout { address, timeout } => {
                write!(f, "Redis at {address}: no answer within {timeout:?}")
            }
            QueryError::Redis(message) => f.write_str(message),
        }
    }
}

impl RedisConn {
    /// A connection to `url` (`redis://[:PASSWORD@]HOST[:PORT][/DB]`,
    /// `rediss://`, `unix://`), not made yet: the first command connects.
    /// Fails only on a malformed URL. Must be called inside a tokio runtime.
    pub(crate) fn open(url: &str, timeout: Duration) -> Result<RedisConn, RedisError> {
        let client = Client::open(url)?;
        let address = client.get_connection_info().addr().to_string();
        let internal = timeout + Duration::from_millis(250);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(internal))
            .set_response_timeout(Some(internal))
            // Reconnect attempts are cheap and quick: a command waits for
            // one at most, within its own timeout.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(200));
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(RedisConn {
            connection,
            address,
            timeout,
        })
    }

    /// Where it connects (host and port).
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// Sends `command` and reads its answer, within the timeout (see the
    /// module docs for the one resend after a refused connection).
    pub(crate) async fn query<T: FromRedisValue>(&self, command: &Cmd) -> Result<T, QueryError> {
        let attempt = async {
            let mut connection = self.connection.clone();
            match command.query_async(&mut connection).await {
                Err(e) if e.is_connection_refusal() => command.query_async(&mut connection).await,
                other => other,
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => {
                result.map_err(|e| QueryError::Redis(format!("Redis at {}: {e}", self.address)))
            }
            Err(_) => Err(QueryError::Timeout {
                address: self.address.clone(),
                timeout: self.timeout,
            }),
        }
    }
}
