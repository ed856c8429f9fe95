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

use std::any::TypeId;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use asyncaproto::ErrorCode;

use crate::extract::{AppState, FromRequest, Rejection, RequestParts};
use crate::filters::{Check, Filter, Found, Verdict};
use crate::packet::Packet;
use crate::reply::{Failure, FailureCode, IntoReply, Reply, ReplyKind};
use crate::session::{Client, SendError};

pub(crate) use crate::reply::HandlerError;

/// An async function whose arguments are all [`FromRequest`] types (up to
/// eight: [`Client`], [`Packet`], [`State`](crate::extract::State),
/// [`Payload`](crate::extract::Payload)...) and whose result is
/// [`IntoReply`]: what a server runs for each packet. Plain `async fn`s and
/// closures capturing values both qualify; `Args` is inferred.
///
/// ```
/// use asyncapy::{Client, Packet};
///
/// async fn echo(client: Client, packet: Packet) -> Result<(), asyncapy::SendError> {
///     client.send(&packet).await
/// }
/// async fn reply_value(packet: Packet) -> Packet {
///     packet
/// }
/// fn assert_handler<A, H: asyncapy::Handler<A>>(_: H) {}
/// assert_handler(echo);
/// assert_handler(reply_value);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an AsyncAPY handler",
    note = "a handler is an `async fn` whose arguments are `Client`, `Packet`, `State<S>`, `Payload<T>`, `Extension<T>` or other `FromRequest` types (at most 8), returning `()`, a reply (`Map`, `Packet`, `Failure`) or a `Result` of one; closures must be `Send + Sync + 'static` and their futures `Send`"
)]
pub trait Handler<Args>: Send + Sync + 'static {
    /// The running handler, its arguments taken.
    #[doc(hidden)]
    type Future: Future<Output = Reply> + Send + 'static;

    /// Takes the arguments from `parts` and starts the handler, or refuses.
    #[doc(hidden)]
    fn call(&self, parts: &RequestParts<'_>) -> Result<Self::Future, Rejection>;

    /// The state types the arguments need.
    #[doc(hidden)]
    fn required_states() -> Vec<(TypeId, &'static str)>
    where
        Self: Sized;
}

macro_rules! handler_for {
    ($($arg:ident),*) => {
        impl<F, Fut, $($arg,)*> Handler<($($arg,)*)> for F
        where
            F: Fn($($arg),*) -> Fut + Send + Sync + 'static,
            Fut: Future + Send + 'static,
            Fut::Output: IntoReply,
            $($arg: FromRequest,)*
        {
            type Future = Replying<Fut>;

            #[allow(non_snake_case, unused_variables)]
            fn call(&self, parts: &RequestParts<'_>) -> Result<Replying<Fut>, Rejection> {
                $(let $arg = $arg::from_request(parts)?;)*
                Ok(Replying { running: self($($arg),*) })
            }

            fn required_states() -> Vec<(TypeId, &'static str)> {
                let states: Vec<Option<(TypeId, &'static str)>> = vec![$($arg::required_state()),*];
                states.into_iter().flatten().collect()
            }
        }
    };
}

handler_for!();
handler_for!(A1);
handler_for!(A1, A2);
handler_for!(A1, A2, A3);
handler_for!(A1, A2, A3, A4);
handler_for!(A1, A2, A3, A4, A5);
handler_for!(A1, A2, A3, A4, A5, A6);
handler_for!(A1, A2, A3, A4, A5, A6, A7);
handler_for!(A1, A2, A3, A4, A5, A6, A7, A8);

pin_project_lite::pin_project! {
    /// A handler's future, its output made a [`Reply`] (a named type, where
    /// a `map` combinator would call through a function pointer).
    #[doc(hidden)]
    pub struct Replying<Fut> {
        #[pin]
        running: Fut,
    }
}

impl<Fut: Future<Output: IntoReply>> Future for Replying<Fut> {
    type Output = Reply;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply> {
        self.project().running.poll(cx).map(IntoReply::into_reply)
    }
}

/// A handler with its argument types erased, as the dispatcher holds it.
pub(crate) trait ErasedHandler: Send + Sync + 'static {
    /// A place for this handler's future, for one session to run it in.
    fn slot(self: Arc<Self>) -> Pin<Box<dyn HandlerSlot>>;
}

struct Erased<H, Args>(H, PhantomData<fn() -> Args>);

impl<H: Handler<Args>, Args: 'static> ErasedHandler for Erased<H, Args> {
    fn slot(self: Arc<Self>) -> Pin<Box<dyn HandlerSlot>> {
        Box::pin(Slot {
            handler: self,
            running: None,
        })
    }
}

/// One route's handler future, kept by a session from one packet to the
/// next: once a handler has run in a session, running it again allocates
/// nothing (the future is written into the same box).
pub(crate) trait HandlerSlot: Send {
    /// Takes the arguments from `parts` and starts the handler (dropping
    /// whatever ran before), or refuses.
    fn start(self: Pin<&mut Self>, parts: &RequestParts<'_>) -> Result<(), Rejection>;
    /// Polls the handler started last; once it is ready its future is
    /// dropped, and what it held with it.
    fn poll_reply(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply>;
    /// Drops the handler's future, if one is running.
    fn stop(self: Pin<&mut Self>);
    /// The slot's size in bytes (its handler's future's, mostly).
    fn size(&self) -> usize;
}

/// The largest handler slot a session keeps between packets: most handlers'
/// futures are a few hundred bytes; one holding a large buffer inline is
/// boxed anew for each packet instead of being kept while the session rests.
const MAX_KEPT_SLOT: usize = 1024;

pin_project_lite::pin_project! {
    struct Slot<H, Args>
    where
        H: Handler<Args>,
    {
        handler: Arc<Erased<H, Args>>,
        #[pin]
        running: Option<H::Future>,
    }
}

impl<H: Handler<Args>, Args: 'static> HandlerSlot for Slot<H, Args> {
    fn start(self: Pin<&mut Self>, parts: &RequestParts<'_>) -> Result<(), Rejection> {
        let mut this = self.project();
        // The last run is over (its future was dropped when it ended, or
        // when its dispatch was): nothing of it lives while this one starts.
        this.running.set(None);
        let running = this.handler.0.call(parts)?;
        this.running.set(Some(running));
        Ok(())
    }

    fn poll_reply(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply> {
        let mut running = self.project().running;
        let Some(future) = running.as_mut().as_pin_mut() else {
            return Poll::Ready(Reply::from_error("the handler was polled after it ended"));
        };
        let reply = ready!(future.poll(cx));
        running.set(None);
        Poll::Ready(reply)
    }

    fn stop(self: Pin<&mut Self>) {
        self.project().running.set(None);
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

/// A session's handler slots, by route id: made on a route's first packet,
/// kept to the session's end (unless large: [`MAX_KEPT_SLOT`]). Route ids
/// are given by [`Dispatcher::freeze`], before which no route is dispatched
/// to.
#[derive(Default)]
pub(crate) struct HandlerSlots(Vec<Option<Pin<Box<dyn HandlerSlot>>>>);

impl HandlerSlots {
    /// Drops the slot of `route` if its future is large (over
    /// [`MAX_KEPT_SLOT`] bytes): what a session keeps while it rests stays
    /// small, at the price of an allocation per packet for such handlers.
    fn release_if_large(&mut self, route: &Route) {
        if let Some(place) = self.0.get_mut(route.id) {
            if place
                .as_ref()
                .is_some_and(|slot| slot.size() > MAX_KEPT_SLOT)
            {
                *place = None;
            }
        }
    }

    /// The slot of `route`, made if this session has not run it yet.
    fn get(&mut self, route: &Route) -> Pin<&mut dyn HandlerSlot> {
        if self.0.len() <= route.id {
            self.0.resize_with(route.id + 1, || None);
        }
        let slot = self.0[route.id].get_or_insert_with(|| route.handler.clone().slot());
        slot.as_mut()
    }
}

/// A started handler, polled to its reply; dropped early (the handler
/// deadline, a panic, the session aborted), it drops the handler's future.
struct Running<'s>(Pin<&'s mut dyn HandlerSlot>);

impl Future for Running<'_> {
    type Output = Reply;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply> {
        self.0.as_mut().poll_reply(cx)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.as_mut().stop();
    }
}

/// Erases `handler`'s argument types; returns it with the states it needs.
pub(crate) fn erase<H: Handler<Args>, Args: 'static>(
    handler: H,
) -> (Arc<dyn ErasedHandler>, Vec<(TypeId, &'static str)>) {
    (Arc::new(Erased(handler, PhantomData)), H::required_states())
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
    handler: Arc<dyn ErasedHandler>,
    filters: Vec<Arc<dyn Filter>>,
    group: i32,
    /// The state types the handler's arguments need.
    states: Vec<(TypeId, &'static str)>,
    /// Its place among the frozen routes (group order): its metrics' index.
    id: usize,
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

    /// Whether every filter passes; what they found goes into `found`.
    async fn accepts(&self, client: &Client, packet: &Packet, found: &mut Found) -> bool {
        for filter in &self.filters {
            let verdict = match filter.check(client, packet) {
                // The common answers cost no future.
                Check::Pass => continue,
                Check::Fail => return false,
                other => other.verdict().await,
            };
            match verdict {
                Verdict::Fail => return false,
                Verdict::Pass(values) => values.into_iter().for_each(|v| found.insert(v)),
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

/// What happened to a packet, and what the session owes the client for it.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// At least one handler ran, and none failed.
    Handled,
    /// No handler in any group accepted it.
    Unhandled,
    /// No handler ran, and a handler's arguments refused the packet (a
    /// payload that did not fit its type): the client's fault.
    Malformed(Rejection),
    /// A handler ended with a failure reply of its choosing.
    Failure(Failure),
    /// A handler failed (an error, or arguments the server cannot give).
    Failed(HandlerError),
    /// A handler panicked (caught by the session).
    Panicked {
        /// The panic's message.
        message: String,
        /// Where it happened, when the server's panic hook saw it.
        location: Option<String>,
    },
}

impl Outcome {
    /// The `outcome` label of the metrics: `None` for ok, else the code replied.
    pub(crate) fn failure_label(&self) -> Option<&str> {
        Some(match self {
            Outcome::Handled => return None,
            Outcome::Unhandled => ErrorCode::NoHandler.as_str(),
            Outcome::Malformed(_) => ErrorCode::RequestMalformed.as_str(),
            Outcome::Failure(failure) => failure.code(),
            Outcome::Failed(_) | Outcome::Panicked { .. } => ErrorCode::HandlerFailed.as_str(),
        })
    }

    /// Logs the outcome and returns the failure reply the client gets, and
    /// whether the session closes after it; `None` when nothing is owed.
    pub(crate) fn reply(&self) -> Option<(FailureCode<'_>, bool)> {
        match self {
            Outcome::Handled => None,
            Outcome::Unhandled => {
                tracing::info!("No handler accepted the packet");
                Some((FailureCode::Protocol(ErrorCode::NoHandler), true))
            }
            Outcome::Malformed(rejection) => {
                tracing::warn!("Refusing packet: {rejection}");
                Some((FailureCode::Protocol(ErrorCode::RequestMalformed), true))
            }
            Outcome::Failure(failure) => {
                tracing::info!("Handler replied {}", failure.code());
                let code = match failure.protocol_code() {
                    Some(code) => FailureCode::Protocol(code),
                    None => FailureCode::Application(failure.code()),
                };
                Some((code, failure.closes()))
            }
            Outcome::Failed(e) => {
                tracing::error!("Handler failed: {e}");
                Some((FailureCode::Protocol(ErrorCode::HandlerFailed), true))
            }
            Outcome::Panicked { message, location } => {
                match location {
                    Some(at) => tracing::error!("Handler panicked at {at}: {message}"),
                    None => tracing::error!("Handler panicked: {message}"),
                }
                Some((FailureCode::Protocol(ErrorCode::HandlerFailed), true))
            }
        }
    }
}

impl Dispatcher {
    pub(crate) fn add(
        &mut self,
        name: String,
        (handler, states): (Arc<dyn ErasedHandler>, Vec<(TypeId, &'static str)>),
    ) -> &mut Route {
        self.routes.push(Route {
            name,
            handler,
            filters: Vec::new(),
            group: 0,
            states,
            id: 0,
        });
        let last = self.routes.len() - 1;
        &mut self.routes[last]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.groups.is_empty()
    }

    /// Every route's name with a state type it needs.
    pub(crate) fn required_states(&self) -> impl Iterator<Item = (&str, TypeId, &'static str)> {
        self.routes
            .iter()
            .chain(self.groups.iter().flat_map(|(_, routes)| routes))
            .flat_map(|route| {
                route
                    .states
                    .iter()
                    .map(move |(id, name)| (route.name.as_str(), *id, *name))
            })
    }

    /// Sorts the routes into their groups; called once, before serving.
    pub(crate) fn freeze(&mut self) {
        for route in self.routes.drain(..) {
            match self.groups.binary_search_by_key(&route.group, |(g, _)| *g) {
                Ok(i) => self.groups[i].1.push(route),
                Err(i) => self.groups.insert(i, (route.group, vec![route])),
            }
        }
        for (id, route) in self.groups.iter_mut().flat_map(|(_, r)| r).enumerate() {
            route.id = id;
        }
    }

    /// The name of the frozen route `id`.
    pub(crate) fn route_name(&self, id: usize) -> Option<&str> {
        self.route_names().nth(id)
    }

    /// The frozen routes' names, by id.
    pub(crate) fn route_names(&self) -> impl Iterator<Item = &str> {
        self.groups
            .iter()
            .flat_map(|(_, routes)| routes)
            .map(|route| route.name.as_str())
    }

    /// Runs the packet through every group in order, as a session does: a
    /// handler's (or filter's) panic is caught, reported once
    /// ([`panic_report`](crate::panic_report)) and becomes
    /// [`Outcome::Panicked`].
    pub(crate) async fn run(&self, client: &Client, packet: Packet, state: &AppState) -> Outcome {
        let mut slots = HandlerSlots::default();
        self.run_routed(client, &packet, state, &mut slots).await.0
    }

    /// As [`Dispatcher::run`], with the id of the last route whose handler
    /// ran (`None`: no handler ran), for the metrics; the handlers run in
    /// the session's `slots`.
    pub(crate) async fn run_routed(
        &self,
        client: &Client,
        packet: &Packet,
        state: &AppState,
        slots: &mut HandlerSlots,
    ) -> (Outcome, Option<usize>) {
        use futures_util::FutureExt as _;
        let mut ran = None;
        let caught = {
            let dispatch = std::pin::pin!(self.dispatch(client, packet, state, slots, &mut ran));
            std::panic::AssertUnwindSafe(crate::panic_report::Reported(dispatch))
                .catch_unwind()
                .await
        };
        let outcome = match caught {
            Ok(outcome) => outcome,
            Err(panic) => Outcome::Panicked {
                message: crate::panic_report::message(&*panic).to_owned(),
                location: crate::panic_report::take_location(),
            },
        };
        (outcome, ran)
    }

    /// Runs the packet through every group in order (panics not caught);
    /// `ran` is the last route whose handler ran.
    async fn dispatch(
        &self,
        client: &Client,
        packet: &Packet,
        state: &AppState,
        slots: &mut HandlerSlots,
        ran: &mut Option<usize>,
    ) -> Outcome {
        let mut handled = false;
        let mut refused = None;
        for (group, routes) in &self.groups {
            tracing::debug!("Checking group {group}");
            let mut chosen = None;
            for route in routes {
                let mut found = Found::default();
                if !route.accepts(client, packet, &mut found).await {
                    continue;
                }
                let parts = RequestParts {
                    client,
                    packet,
                    state,
                    found: &found,
                };
                match slots.get(route).start(&parts) {
                    Ok(()) => {
                        chosen = Some(route);
                        break;
                    }
                    Err(rejection) if rejection.is_malformed() => {
                        tracing::debug!(
                            "'{}' in group {group} does not take the packet: {rejection}",
                            route.name
                        );
                        refused = Some(rejection);
                    }
                    Err(rejection) => {
                        return Outcome::Failed(format!("'{}': {rejection}", route.name).into())
                    }
                }
            }
            let Some(route) = chosen else {
                continue;
            };
            // Guarded from here on: whatever happens, the handler's future
            // does not outlive this packet's dispatch.
            let running = Running(slots.get(route));
            tracing::debug!("Calling '{}' in group {group}", route.name);
            handled = true;
            *ran = Some(route.id);
            let reply = running.await.0;
            slots.release_if_large(route);
            match reply {
                ReplyKind::Nothing => {}
                ReplyKind::Send(map) => match client.send(&map).await {
                    Ok(()) | Err(SendError::Closed) => {}
                    Err(e) => return Outcome::Failed(e.into()),
                },
                ReplyKind::Failure(failure) => return Outcome::Failure(failure),
                ReplyKind::Rejected(rejection) if rejection.is_malformed() => {
                    return Outcome::Malformed(rejection)
                }
                ReplyKind::Rejected(rejection) => return Outcome::Failed(rejection.into()),
                ReplyKind::Error(e) => return Outcome::Failed(e),
            }
            if packet.is_propagation_stopped() || client.is_closed() {
                break;
            }
        }
        match (handled, refused) {
            (true, _) => Outcome::Handled,
            (false, Some(rejection)) => Outcome::Malformed(rejection),
            (false, None) => Outcome::Unhandled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Registry, SessionState};
    use asyncaproto::{Encoding, FrameCodec, Map};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts its drops.
    struct Dropped(Arc<AtomicUsize>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn client() -> Client {
        let peer = "127.0.0.1:9".parse().unwrap();
        let registry = Arc::new(Registry::new(0));
        Client::new(Arc::new(SessionState::new(
            peer,
            FrameCodec::default(),
            registry,
        )))
    }

    fn packet() -> Packet {
        Packet::new(Map::new(), Encoding::Json)
    }

    /// The address of `route`'s slot box, if the session made one.
    fn slot_address(slots: &HandlerSlots, route: usize) -> Option<*const u8> {
        let slot = slots.0.get(route)?.as_ref()?;
        Some(std::ptr::from_ref::<dyn HandlerSlot>(&**slot).cast::<u8>())
    }

    #[tokio::test]
    async fn a_handler_s_future_ends_with_its_packet_and_the_next_packet_reuses_its_box() {
        let drops = Arc::new(AtomicUsize::new(0));
        let held = drops.clone();
        let mut dispatcher = Dispatcher::default();
        dispatcher.add(
            "counting".to_owned(),
            erase(move |packet: Packet| {
                let guard = Dropped(held.clone());
                async move {
                    let _guard = guard;
                    tokio::task::yield_now().await;
                    packet
                }
            }),
        );
        dispatcher.freeze();
        let (client, mut slots) = (client(), HandlerSlots::default());
        assert_eq!(slot_address(&slots, 0), None, "no slot before a packet");
        let mut boxes = Vec::new();
        for run in 1..=3 {
            let packet = packet();
            let (outcome, route) = dispatcher
                .run_routed(&client, &packet, &None, &mut slots)
                .await;
            assert!(matches!(outcome, Outcome::Handled), "{outcome:?}");
            assert_eq!(route, Some(0));
            // Dropped as it ended, not when the next packet starts it again:
            // nothing it held (here, the packet) outlives its run.
            assert_eq!(drops.load(Ordering::SeqCst), run);
            let mut spares = asyncaproto::Spares::new();
            assert!(
                packet.recycle(&mut spares).is_some(),
                "the packet is still held"
            );
            boxes.push(slot_address(&slots, 0));
        }
        assert!(boxes[0].is_some());
        assert!(boxes.iter().all(|b| *b == boxes[0]), "{boxes:?}");
    }

    #[tokio::test]
    async fn a_dispatch_dropped_midway_drops_the_handler_s_future() {
        let drops = Arc::new(AtomicUsize::new(0));
        let held = drops.clone();
        let mut dispatcher = Dispatcher::default();
        dispatcher.add(
            "forever".to_owned(),
            erase(move || {
                let guard = Dropped(held.clone());
                async move {
                    let _guard = guard;
                    std::future::pending::<()>().await;
                }
            }),
        );
        dispatcher.freeze();
        let (client, mut slots) = (client(), HandlerSlots::default());
        let packet = packet();
        {
            let mut run =
                std::pin::pin!(dispatcher.run_routed(&client, &packet, &None, &mut slots));
            assert!(futures_util::poll!(run.as_mut()).is_pending());
            assert_eq!(drops.load(Ordering::SeqCst), 0, "still running");
        }
        // The deadline (or an abort) dropped the dispatch: the handler's
        // future went with it, though its box stays with the session.
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(slot_address(&slots, 0).is_some());
    }

    #[tokio::test]
    async fn a_handler_that_panicked_leaves_its_slot_ready_for_the_next_packet() {
        crate::panic_report::install_hook();
        let drops = Arc::new(AtomicUsize::new(0));
        let held = drops.clone();
        let panicked = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut dispatcher = Dispatcher::default();
        dispatcher.add(
            "panics once".to_owned(),
            erase(move || {
                let guard = Dropped(held.clone());
                let panicked = panicked.clone();
                async move {
                    let _guard = guard;
                    tokio::task::yield_now().await;
                    if !panicked.swap(true, Ordering::SeqCst) {
                        panic!("the first packet");
                    }
                }
            }),
        );
        dispatcher.freeze();
        let (client, mut slots) = (client(), HandlerSlots::default());
        let packet = packet();
        let (outcome, _) = dispatcher
            .run_routed(&client, &packet, &None, &mut slots)
            .await;
        assert!(matches!(outcome, Outcome::Panicked { .. }), "{outcome:?}");
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "dropped once, in the unwind"
        );
        let (outcome, _) = dispatcher
            .run_routed(&client, &packet, &None, &mut slots)
            .await;
        assert!(matches!(outcome, Outcome::Handled), "{outcome:?}");
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_large_handler_future_is_not_kept_between_packets() {
        let mut dispatcher = Dispatcher::default();
        dispatcher.add(
            "large".to_owned(),
            erase(|| async {
                let buffer = [7u8; 4 * MAX_KEPT_SLOT];
                tokio::task::yield_now().await;
                assert_eq!(buffer[MAX_KEPT_SLOT], 7);
            }),
        );
        dispatcher
            .add("small".to_owned(), erase(|| async {}))
            .group(1);
        dispatcher.freeze();
        let (client, mut slots) = (client(), HandlerSlots::default());
        let packet = packet();
        for _ in 0..2 {
            let (outcome, route) = dispatcher
                .run_routed(&client, &packet, &None, &mut slots)
                .await;
            assert!(matches!(outcome, Outcome::Handled), "{outcome:?}");
            assert_eq!(route, Some(1));
            assert_eq!(slot_address(&slots, 0), None, "the large slot was released");
            assert!(slot_address(&slots, 1).is_some(), "the small one is kept");
        }
    }
}
