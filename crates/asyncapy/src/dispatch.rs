//! Dispatch: which handlers a packet reaches.
//!
//! ```text
//! packet ─▶ group -1: [h1, h2, ...] ─▶ group 0: [h3, ...] ─▶ group 1: [...] ─▶ done
//!              │ first handler that accepts runs; the others in the group are skipped
//!              └ packet.stop_propagation() ends the walk after this group
//! ```
//!
//! Groups run in ascending order; within a group, handlers are tried in
//! registration order and only the first one that accepts the packet runs.
//! When no handler ran at all, the server replies `ERR_NO_HANDLER`.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::filters::{Check, Filter};
use crate::packet::Packet;
use crate::session::Client;

/// The error a handler may return; the session is closed with `ERR_HANDLER_FAILED`
/// and the error is logged (never sent to the client).
pub type HandlerError = Box<dyn StdError + Send + Sync + 'static>;

/// A boxed handler future.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send + 'static>>;

/// What a handler may return: nothing, or a `Result` with any error type.
pub trait IntoHandlerResult {
    /// Converts into the dispatcher's result type.
    fn into_handler_result(self) -> Result<(), HandlerError>;
}

impl IntoHandlerResult for () {
    fn into_handler_result(self) -> Result<(), HandlerError> {
        Ok(())
    }
}

impl<E> IntoHandlerResult for Result<(), E>
where
    E: Into<HandlerError>,
{
    fn into_handler_result(self) -> Result<(), HandlerError> {
        self.map_err(Into::into)
    }
}

/// An async function of a [`Client`] and a [`Packet`]: what a server runs for
/// each packet. Any `Fn(Client, Packet) -> impl Future` that is `Send + Sync`
/// is a handler; plain `async fn`s and closures capturing state both qualify.
///
/// ```
/// use asyncapy::{Client, Packet};
///
/// async fn echo(client: Client, packet: Packet) -> Result<(), asyncapy::SendError> {
///     client.send(&packet).await
/// }
/// fn assert_handler<H: asyncapy::Handler>(_: H) {}
/// assert_handler(echo);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an AsyncAPY handler",
    note = "a handler is an `async fn(client: Client, packet: Packet)` returning `()` or `Result<(), E>`; closures must be `Send + Sync + 'static` and their futures `Send`"
)]
pub trait Handler: Send + Sync + 'static {
    /// Runs the handler for one packet.
    fn call(&self, client: Client, packet: Packet) -> HandlerFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(Client, Packet) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoHandlerResult,
{
    fn call(&self, client: Client, packet: Packet) -> HandlerFuture {
        let fut = self(client, packet);
        Box::pin(async move { fut.await.into_handler_result() })
    }
}

/// A registered handler with its filters and group, as returned by
/// [`Server::add_handler`](crate::Server::add_handler): chain [`Route::filter`]
/// and [`Route::group`] on it.
///
/// ```
/// use asyncapy::{Client, Config, Packet, Server};
///
/// async fn first(client: Client, packet: Packet) {
///     let _ = client.send(&packet).await;
/// }
///
/// let mut server = Server::new(Config::default());
/// server
///     .add_handler(first)
///     .filter(|_: &Client, p: &Packet| p.contains_key("id"))
///     .group(-1);
/// ```
pub struct Route {
    name: String,
    handler: Arc<dyn Handler>,
    filters: Vec<Arc<dyn Filter>>,
    group: i32,
}

impl Route {
    /// Adds a filter: every filter of a route must pass for its handler to run.
    pub fn filter<F: Filter>(&mut self, filter: F) -> &mut Route {
        self.filters.push(Arc::new(filter));
        self
    }

    /// Puts the handler in `group` (default 0): groups run in ascending order,
    /// and the first matching handler of each group runs.
    pub fn group(&mut self, group: i32) -> &mut Route {
        self.group = group;
        self
    }

    /// Names the handler in the log (default: its function's name).
    pub fn name(&mut self, name: impl Into<String>) -> &mut Route {
        self.name = name.into();
        self
    }

    /// Whether every filter passes.
    async fn accepts(&self, client: &Client, packet: &Packet) -> bool {
        for filter in &self.filters {
            let pass = match filter.check(client, packet) {
                Check::Pass => true,
                Check::Fail => false,
                Check::Later(answer) => answer.await,
            };
            if !pass {
                return false;
            }
        }
        true
    }
}

/// The registered handlers, by group.
#[derive(Default)]
pub(crate) struct Dispatcher {
    /// In registration order, until [`Dispatcher::freeze`].
    routes: Vec<Route>,
    /// Sorted by group number; within a group, in registration order.
    groups: Vec<(i32, Vec<Route>)>,
}

/// What happened to a packet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Dispatched {
    /// At least one handler ran.
    Handled,
    /// No handler in any group accepted it.
    Unhandled,
}

impl Dispatcher {
    pub(crate) fn add(&mut self, name: String, handler: Arc<dyn Handler>) -> &mut Route {
        self.routes.push(Route {
            name,
            handler,
            filters: Vec::new(),
            group: 0,
        });
        let last = self.routes.len() - 1;
        &mut self.routes[last]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.groups.is_empty()
    }

    /// Sorts the routes into their groups; called once, before serving.
    pub(crate) fn freeze(&mut self) {
        for route in self.routes.drain(..) {
            match self.groups.binary_search_by_key(&route.group, |(g, _)| *g) {
                Ok(i) => self.groups[i].1.push(route),
                Err(i) => self.groups.insert(i, (route.group, vec![route])),
            }
        }
    }

    /// Runs the packet through every group in order.
    pub(crate) async fn dispatch(
        &self,
        client: &Client,
        packet: Packet,
    ) -> Result<Dispatched, HandlerError> {
        let mut outcome = Dispatched::Unhandled;
        for (group, routes) in &self.groups {
            tracing::debug!("Checking group {group}");
            let mut chosen = None;
            for route in routes {
                if route.accepts(client, &packet).await {
                    chosen = Some(route);
                    break;
                }
            }
            let Some(route) = chosen else {
                continue;
            };
            tracing::debug!("Calling '{}' in group {group}", route.name);
            route.handler.call(client.clone(), packet.clone()).await?;
            outcome = Dispatched::Handled;
            if packet.is_propagation_stopped() || client.is_closed() {
                break;
            }
        }
        Ok(outcome)
    }
}
