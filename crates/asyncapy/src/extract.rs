//! What a handler takes: its arguments' types decide what it receives.
//!
//! A handler is an `async fn` of up to eight arguments, each a type that
//! implements [`FromRequest`]:
//!
//! | argument | what it holds |
//! |---|---|
//! | [`Client`] | the session's client (send, close, list the IP's sessions) |
//! | [`Packet`] | the request |
//! | [`State<S>`] | the server's state, given with [`Server::with_state`](crate::Server::with_state) |
//! | [`Payload<T>`] | the request as any `serde::Deserialize` type |
//! | [`Extension<T>`] | what one of the handler's filters found (see [`Check::pass_with`](crate::Check::pass_with)) |
//! | [`ApiKeyInfo`] | the key and metadata the [`ApiKey`](crate::filters::ApiKey) filter found |
//!
//! The arguments are taken after the handler's filters pass, before it runs.
//! A [`Payload<T>`] the packet does not fit is the client's fault: the
//! handler does not run, and the packet goes on to the next handler of the
//! group as if a filter had refused it. If no handler in any group runs, the
//! client gets `ERR_REQUEST_MALFORMED` (not `ERR_NO_HANDLER`), and the log
//! says at WARNING which field was wrong:
//!
//! ```text
//! packet ─▶ group 0: [handler(Payload<Login>), handler(Payload<Token>), ...]
//!              │ fits Login? run it. No: try the next handler of the group
//!              ▼
//!           group 1: [...] ─▶ ... ─▶ no handler ran: ERR_REQUEST_MALFORMED if a
//!                                    payload did not fit, else ERR_NO_HANDLER
//! ```
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use asyncapy::asyncaproto::{Map, Value};
//! use asyncapy::extract::{Payload, State};
//! use asyncapy::{Client, Server};
//!
//! #[derive(Clone, Default)]
//! struct AppState { logins: Arc<AtomicU64> }
//!
//! #[derive(serde::Deserialize)]
//! struct Login { user: String }
//!
//! async fn login(State(state): State<AppState>, Payload(login): Payload<Login>) -> Map {
//!     let n = state.logins.fetch_add(1, Ordering::Relaxed) + 1;
//!     Map::from_iter([("user", Value::from(login.user)), ("login", Value::from(n))])
//! }
//!
//! let mut server = Server::builder().port(0).build()?;
//! server.with_state(AppState::default());
//! server.add_handler(login);
//! # Ok::<(), asyncapy::ServerError>(())
//! ```

use std::any::{Any, TypeId};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::filters::{ApiKeyInfo, Found};
use crate::packet::Packet;
pub use crate::rejection::Rejection;
use crate::session::Client;

/// The server's state, type-erased.
pub(crate) type AppState = Option<Arc<dyn Any + Send + Sync>>;

/// What a handler's arguments are taken from: the request and what the
/// server and the handler's filters hold for it.
pub struct RequestParts<'a> {
    pub(crate) client: &'a Client,
    pub(crate) packet: &'a Packet,
    pub(crate) state: &'a AppState,
    pub(crate) found: &'a Found,
}

impl RequestParts<'_> {
    /// The session's client.
    pub fn client(&self) -> &Client {
        self.client
    }

    /// The request.
    pub fn packet(&self) -> &Packet {
        self.packet
    }

    /// The server's state, if it is an `S`.
    pub fn state<S: 'static>(&self) -> Option<&S> {
        self.state.as_deref().and_then(|state| state.downcast_ref())
    }

    /// What a filter of this handler found, if it found a `T`.
    pub fn found<T: 'static>(&self) -> Option<&T> {
        self.found.get()
    }
}

/// A type a handler can take as an argument.
///
/// Implement it for an argument of your own (a session's user from a token,
/// say); return a [`Rejection`] when the request does not provide it.
///
/// ```
/// use asyncapy::extract::{FromRequest, Rejection, RequestParts};
///
/// /// The request's "user" field.
/// struct User(String);
///
/// impl FromRequest for User {
///     fn from_request(parts: &RequestParts<'_>) -> Result<User, Rejection> {
///         match parts.packet().get("user").and_then(|v| v.as_str()) {
///             Some(user) => Ok(User(user.to_owned())),
///             None => Err(Rejection::malformed("missing field `user`")),
///         }
///     }
/// }
///
/// async fn hello(User(name): User) {
///     println!("hello {name}");
/// }
/// # fn assert_handler<A, H: asyncapy::Handler<A>>(_: H) {}
/// # assert_handler(hello);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler's argument",
    note = "a handler's arguments are `Client`, `Packet`, `State<S>`, `Payload<T>`, `Extension<T>`, `ApiKeyInfo`, or your own types implementing `FromRequest`"
)]
pub trait FromRequest: Sized + Send + 'static {
    /// Takes the argument from the request, or refuses it.
    fn from_request(parts: &RequestParts<'_>) -> Result<Self, Rejection>;

    /// The state type this argument needs, checked when the server binds.
    #[doc(hidden)]
    fn required_state() -> Option<(TypeId, &'static str)> {
        None
    }
}

impl FromRequest for Client {
    fn from_request(parts: &RequestParts<'_>) -> Result<Client, Rejection> {
        Ok(parts.client.clone())
    }
}

impl FromRequest for Packet {
    fn from_request(parts: &RequestParts<'_>) -> Result<Packet, Rejection> {
        Ok(parts.packet.clone())
    }
}

/// The server's state ([`Server::with_state`](crate::Server::with_state)),
/// cloned for each packet: put what is shared behind an `Arc` (a pool, a
/// cache, counters). A handler that asks for a state the server does not
/// have makes [`Server::bind`](crate::Server::bind) fail, naming both.
#[derive(Debug, Clone, Copy, Default)]
pub struct State<S>(pub S);

impl<S: Clone + Send + Sync + 'static> FromRequest for State<S> {
    fn from_request(parts: &RequestParts<'_>) -> Result<State<S>, Rejection> {
        parts.state::<S>().cloned().map(State).ok_or_else(|| {
            Rejection::internal(format!(
                "the server has no state of type {}",
                std::any::type_name::<S>()
            ))
        })
    }

    fn required_state() -> Option<(TypeId, &'static str)> {
        Some((TypeId::of::<S>(), std::any::type_name::<S>()))
    }
}

/// The request as any `serde::Deserialize` type. A packet that does not fit
/// is refused before the handler runs (see the [module docs](self) for how
/// that meets groups).
#[derive(Debug, Clone, Copy, Default)]
pub struct Payload<T>(pub T);

impl<T: DeserializeOwned + Send + 'static> FromRequest for Payload<T> {
    fn from_request(parts: &RequestParts<'_>) -> Result<Payload<T>, Rejection> {
        parts.packet.parse().map(Payload)
    }
}

/// A value one of the handler's filters found, with
/// [`Check::pass_with`](crate::Check::pass_with) (or
/// [`Check::later_with`](crate::Check::later_with)).
#[derive(Debug, Clone, Copy, Default)]
pub struct Extension<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromRequest for Extension<T> {
    fn from_request(parts: &RequestParts<'_>) -> Result<Extension<T>, Rejection> {
        parts.found::<T>().cloned().map(Extension).ok_or_else(|| {
            Rejection::internal(format!(
                "no filter of this handler found a {}",
                std::any::type_name::<T>()
            ))
        })
    }
}

impl FromRequest for ApiKeyInfo {
    fn from_request(parts: &RequestParts<'_>) -> Result<ApiKeyInfo, Rejection> {
        parts.found::<ApiKeyInfo>().cloned().ok_or_else(|| {
            Rejection::internal("ApiKeyInfo is only given to a handler behind an ApiKey filter")
        })
    }
}
