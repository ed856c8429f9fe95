//! Without the `redis` feature there are no shared limits (`limits_store`
//! is refused by `Config::validate`): a type with no values.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::{LimitsFail, RateLimit};
use crate::metrics::Metrics;

/// How often a server refreshes its sessions' entries (unused here).
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(5);

/// The live sessions of a server, asked for when a heartbeat is sent.
pub(crate) type LiveSessions = Box<dyn FnOnce() -> Vec<(IpAddr, Uuid)> + Send>;

/// Shared limits: none in this build.
pub(crate) enum SharedLimits {}

#[allow(dead_code, reason = "the calls of the `redis` build, never made")]
impl SharedLimits {
    pub(crate) fn connect(_: &str, _: LimitsFail) -> Result<Arc<SharedLimits>, String> {
        Err("this build has no shared limits (enable the `redis` feature of asyncapy)".to_owned())
    }
    pub(crate) async fn acquire(&self, _: IpAddr, _: Uuid, _: usize, _: Option<&Metrics>) -> bool {
        match *self {}
    }
    pub(crate) fn release(&self, _: IpAddr, _: Uuid) {
        match *self {}
    }
    pub(crate) fn heartbeat(&self, _: LiveSessions, _: Option<Arc<Metrics>>) {
        match *self {}
    }
    pub(crate) async fn allow(&self, _: IpAddr, _: RateLimit, _: Option<&Metrics>) -> bool {
        match *self {}
    }
}
