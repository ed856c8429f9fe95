//! Filters: which packets (from which clients) a handler accepts.
//!
//! A [`Filter`] looks at the [`Client`] and the [`Packet`] and answers with a
//! [`Check`]: pass, fail, or — for filters that need I/O, such as an API key
//! store on a network — a future that answers later. In-memory filters answer
//! at once and cost no allocation.
//!
//! Every filter of a handler must pass (AND). To accept any of several
//! conditions, combine them with [`FilterExt::or`], or give one filter a list
//! (one [`Ip`] filter with two addresses, not two filters).
//!
//! ```
//! use asyncapy::filters::{Check, Filter, FilterExt};
//! use asyncapy::{Client, Packet};
//!
//! // Any closure of (&Client, &Packet) -> bool is a filter.
//! let has_id = |_: &Client, p: &Packet| p.contains_key("id");
//! let is_admin = |_: &Client, p: &Packet| p.get("role").and_then(|r| r.as_str()) == Some("admin");
//! let filter = has_id.and(is_admin.not());
//! # fn assert_filter<F: Filter>(_: &F) {}
//! assert_filter(&filter);
//! ```

mod api_key;
mod fields;
mod ip;

pub use self::api_key::ApiKey;
pub use self::fields::{Fields, PatternError};
pub use self::ip::{Ip, IpHandle, IpNet, IpNetError, IpNetErrorKind};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::packet::Packet;
use crate::session::Client;

/// A filter's answer that needs I/O to decide.
pub type CheckFuture = Pin<Box<dyn Future<Output = bool> + Send + 'static>>;

/// A filter's answer.
pub enum Check {
    /// The packet may reach the handler.
    Pass,
    /// It may not.
    Fail,
    /// The answer comes later (the future owns what it needs: clone the
    /// client or packet into it, both are cheap to clone).
    Later(CheckFuture),
}

impl Check {
    /// An answer that comes from `future`.
    pub fn later(future: impl Future<Output = bool> + Send + 'static) -> Check {
        Check::Later(Box::pin(future))
    }

    /// Resolves the answer, awaiting it if it comes later.
    pub async fn resolve(self) -> bool {
        match self {
            Check::Pass => true,
            Check::Fail => false,
            Check::Later(future) => future.await,
        }
    }
}

impl From<bool> for Check {
    fn from(pass: bool) -> Check {
        if pass {
            Check::Pass
        } else {
            Check::Fail
        }
    }
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Check::Pass => "Pass",
            Check::Fail => "Fail",
            Check::Later(_) => "Later",
        })
    }
}

/// Decides whether a packet from a client reaches a handler.
///
/// Implement [`Filter::check`]; answer [`Check::Pass`] or [`Check::Fail`]
/// directly when you can, [`Check::later`] when you must wait for I/O.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an AsyncAPY filter",
    note = "implement `asyncapy::filters::Filter`, or use a closure `|client: &Client, packet: &Packet| -> bool`"
)]
pub trait Filter: Send + Sync + 'static {
    /// Looks at one packet.
    fn check(&self, client: &Client, packet: &Packet) -> Check;
}

impl<F> Filter for F
where
    F: Fn(&Client, &Packet) -> bool + Send + Sync + 'static,
{
    fn check(&self, client: &Client, packet: &Packet) -> Check {
        Check::from(self(client, packet))
    }
}

impl Filter for Arc<dyn Filter> {
    fn check(&self, client: &Client, packet: &Packet) -> Check {
        (**self).check(client, packet)
    }
}

/// Combinators for every filter.
pub trait FilterExt: Filter + Sized {
    /// Passes when both pass (`other` is not consulted when `self` fails).
    fn and<G: Filter>(self, other: G) -> And<Self, G> {
        And(Arc::new((self, other)))
    }

    /// Passes when either passes (`other` is not consulted when `self` passes).
    fn or<G: Filter>(self, other: G) -> Or<Self, G> {
        Or(Arc::new((self, other)))
    }

    /// Passes when `self` fails.
    fn not(self) -> Not<Self> {
        Not(Arc::new(self))
    }
}

impl<F: Filter> FilterExt for F {}

/// Both filters must pass. See [`FilterExt::and`].
pub struct And<A, B>(Arc<(A, B)>);

/// Either filter must pass. See [`FilterExt::or`].
pub struct Or<A, B>(Arc<(A, B)>);

/// The filter must fail. See [`FilterExt::not`].
pub struct Not<A>(Arc<A>);

impl<A: Filter, B: Filter> Filter for And<A, B> {
    fn check(&self, client: &Client, packet: &Packet) -> Check {
        match self.0 .0.check(client, packet) {
            Check::Fail => Check::Fail,
            Check::Pass => self.0 .1.check(client, packet),
            Check::Later(first) => {
                let (both, client, packet) = (self.0.clone(), client.clone(), packet.clone());
                Check::later(async move {
                    first.await && both.1.check(&client, &packet).resolve().await
                })
            }
        }
    }
}

impl<A: Filter, B: Filter> Filter for Or<A, B> {
    fn check(&self, client: &Client, packet: &Packet) -> Check {
        match self.0 .0.check(client, packet) {
            Check::Pass => Check::Pass,
            Check::Fail => self.0 .1.check(client, packet),
            Check::Later(first) => {
                let (both, client, packet) = (self.0.clone(), client.clone(), packet.clone());
                Check::later(async move {
                    first.await || both.1.check(&client, &packet).resolve().await
                })
            }
        }
    }
}

impl<A: Filter> Filter for Not<A> {
    fn check(&self, client: &Client, packet: &Packet) -> Check {
        match self.0.check(client, packet) {
            Check::Pass => Check::Fail,
            Check::Fail => Check::Pass,
            Check::Later(inner) => Check::later(async move { !inner.await }),
        }
    }
}
