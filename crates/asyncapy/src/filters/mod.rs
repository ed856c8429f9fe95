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

pub use self::api_key::{ApiKey, ApiKeyInfo};
pub use self::fields::{Fields, PatternError};
pub use self::ip::{Ip, IpHandle, IpNet, IpNetError, IpNetErrorKind};

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::packet::Packet;
use crate::session::Client;

/// Values the filters of one handler found for it, by type.
#[derive(Default)]
pub(crate) struct Found(Vec<(TypeId, Box<dyn Any + Send + Sync>)>);

impl Found {
    pub(crate) fn insert(&mut self, value: FoundValue) {
        self.0.retain(|(id, _)| *id != value.id);
        self.0.push((value.id, value.value));
    }

    pub(crate) fn get<T: 'static>(&self) -> Option<&T> {
        self.0
            .iter()
            .find(|(id, _)| *id == TypeId::of::<T>())
            .and_then(|(_, value)| value.downcast_ref())
    }
}

/// A value a filter found, for the handler's [`Extension`](crate::extract::Extension) argument.
pub struct FoundValue {
    id: TypeId,
    value: Box<dyn Any + Send + Sync>,
}

impl FoundValue {
    /// Wraps `value`.
    pub fn new<T: Clone + Send + Sync + 'static>(value: T) -> FoundValue {
        FoundValue {
            id: TypeId::of::<T>(),
            value: Box::new(value),
        }
    }
}

impl fmt::Debug for FoundValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FoundValue").finish_non_exhaustive()
    }
}

/// A filter's answer that needs I/O to decide.
pub type CheckFuture = Pin<Box<dyn Future<Output = Verdict> + Send + 'static>>;

/// A filter's answer.
pub enum Check {
    /// The packet may reach the handler.
    Pass,
    /// It may not.
    Fail,
    /// It may, and the filter hands what it found to the handler (its
    /// [`Extension`](crate::extract::Extension) arguments): see
    /// [`Check::pass_with`].
    PassWith(Vec<FoundValue>),
    /// The answer comes later (the future owns what it needs: clone the
    /// client or packet into it, both are cheap to clone).
    Later(CheckFuture),
}

/// A filter's decided answer: pass (with what it found), or fail.
pub enum Verdict {
    /// The packet may reach the handler; the values go to its arguments.
    Pass(Vec<FoundValue>),
    /// It may not.
    Fail,
}

impl Verdict {
    /// Whether the packet may reach the handler.
    pub fn passes(&self) -> bool {
        matches!(self, Verdict::Pass(_))
    }
}

impl From<bool> for Verdict {
    fn from(pass: bool) -> Verdict {
        if pass {
            Verdict::Pass(Vec::new())
        } else {
            Verdict::Fail
        }
    }
}

impl Check {
    /// An answer that comes from `future`.
    pub fn later(future: impl Future<Output = bool> + Send + 'static) -> Check {
        Check::Later(Box::pin(async move { Verdict::from(future.await) }))
    }

    /// Passes, handing `value` to the handler: a handler argument
    /// [`Extension<T>`](crate::extract::Extension) receives it, so the handler
    /// need not look up again what the filter found.
    ///
    /// ```
    /// use asyncapy::extract::Extension;
    /// use asyncapy::{Check, Client, Filter, Packet, Server};
    ///
    /// #[derive(Clone)]
    /// struct UserId(u64);
    ///
    /// /// Passes packets with a numeric "uid", and hands it on.
    /// struct HasUser;
    /// impl Filter for HasUser {
    ///     fn check(&self, _: &Client, packet: &Packet) -> Check {
    ///         match packet.get("uid").and_then(|v| v.as_i64()) {
    ///             Some(uid) if uid >= 0 => Check::pass_with(UserId(uid as u64)),
    ///             _ => Check::Fail,
    ///         }
    ///     }
    /// }
    ///
    /// async fn profile(Extension(UserId(uid)): Extension<UserId>, client: Client) {
    ///     let _ = client.send(asyncapy::asyncaproto::Map::from_iter([("uid", uid as i64)])).await;
    /// }
    ///
    /// let mut server = Server::new(asyncapy::Config::default());
    /// server.add_handler(profile).filter(HasUser);
    /// ```
    pub fn pass_with<T: Clone + Send + Sync + 'static>(value: T) -> Check {
        Check::PassWith(vec![FoundValue::new(value)])
    }

    /// An answer that comes from `future`: `Some(value)` passes and hands
    /// `value` on (as [`Check::pass_with`]), `None` fails.
    pub fn later_with<T: Clone + Send + Sync + 'static>(
        future: impl Future<Output = Option<T>> + Send + 'static,
    ) -> Check {
        Check::Later(Box::pin(async move {
            match future.await {
                Some(value) => Verdict::Pass(vec![FoundValue::new(value)]),
                None => Verdict::Fail,
            }
        }))
    }

    /// Decides the answer, awaiting it if it comes later.
    pub async fn verdict(self) -> Verdict {
        match self {
            Check::Pass => Verdict::Pass(Vec::new()),
            Check::Fail => Verdict::Fail,
            Check::PassWith(found) => Verdict::Pass(found),
            Check::Later(future) => future.await,
        }
    }

    /// Resolves the answer, awaiting it if it comes later.
    pub async fn resolve(self) -> bool {
        self.verdict().await.passes()
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
            Check::PassWith(_) => "PassWith",
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
            Check::PassWith(mut found) => match self.0 .1.check(client, packet) {
                Check::Fail => Check::Fail,
                Check::Pass => Check::PassWith(found),
                Check::PassWith(more) => {
                    found.extend(more);
                    Check::PassWith(found)
                }
                Check::Later(second) => Check::Later(Box::pin(async move {
                    match second.await {
                        Verdict::Pass(more) => {
                            found.extend(more);
                            Verdict::Pass(found)
                        }
                        Verdict::Fail => Verdict::Fail,
                    }
                })),
            },
            Check::Later(first) => {
                let (both, client, packet) = (self.0.clone(), client.clone(), packet.clone());
                Check::Later(Box::pin(async move {
                    let Verdict::Pass(mut found) = first.await else {
                        return Verdict::Fail;
                    };
                    match both.1.check(&client, &packet).verdict().await {
                        Verdict::Pass(more) => {
                            found.extend(more);
                            Verdict::Pass(found)
                        }
                        Verdict::Fail => Verdict::Fail,
                    }
                }))
            }
        }
    }
}

impl<A: Filter, B: Filter> Filter for Or<A, B> {
    fn check(&self, client: &Client, packet: &Packet) -> Check {
        match self.0 .0.check(client, packet) {
            pass @ (Check::Pass | Check::PassWith(_)) => pass,
            Check::Fail => self.0 .1.check(client, packet),
            Check::Later(first) => {
                let (both, client, packet) = (self.0.clone(), client.clone(), packet.clone());
                Check::Later(Box::pin(async move {
                    match first.await {
                        pass @ Verdict::Pass(_) => pass,
                        Verdict::Fail => both.1.check(&client, &packet).verdict().await,
                    }
                }))
            }
        }
    }
}

impl<A: Filter> Filter for Not<A> {
    fn check(&self, client: &Client, packet: &Packet) -> Check {
        match self.0.check(client, packet) {
            Check::Pass | Check::PassWith(_) => Check::Fail,
            Check::Fail => Check::Pass,
            Check::Later(inner) => Check::later(async move { !inner.await.passes() }),
        }
    }
}
