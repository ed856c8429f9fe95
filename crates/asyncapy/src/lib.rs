//! # AsyncAPY for Rust
//!
//! Serve asynchronous API endpoints over AsyncAProto: register async handlers,
//! start a server, and every packet a client sends reaches them, decoded from
//! JSON or ZiProto into a [`Packet`].
//!
//! ```no_run
//! use asyncapy::{Client, Config, Packet, SendError, Server};
//!
//! async fn echo_server(client: Client, packet: Packet) -> Result<(), SendError> {
//!     println!("Hello world from {client}!");
//!     println!("Echoing back {packet}...");
//!     client.send(&packet).await
//! }
//!
//! fn main() -> Result<(), asyncapy::ServerError> {
//!     let mut server = Server::new(Config { port: 1500, ..Config::default() });
//!     server.register_handler(echo_server);
//!     server.start()
//! }
//! ```
//!
//! ## From Python AsyncAPY
//!
//! | Python (`asyncapy` 0.5) | Rust |
//! |---|---|
//! | `Server(addr=..., port=..., ...)` | [`Server::builder`]`().addr(..).port(..).build()`, or [`Server::new`]`(`[`Config`]` { .. })` |
//! | `Server(config="config.ini")` | [`ServerBuilder::config_file`] or [`Config::from_ini_file`] |
//! | `server.register_handler(fn)` | [`Server::register_handler`] |
//! | `register_handler(fn, *filters, group=-1)` | [`Server::add_handler`]`(fn).filter(f).group(-1)` |
//! | `@server.add_handler(*filters, group=g)` | the same call, after the function |
//! | `server.start()` | [`Server::start`] (blocking) or [`Server::bind`] (async) |
//! | `asyncapy.core.Client` (in handlers) | [`Client`] |
//! | `client.send(packet, close=True)` | [`Client::send_and_close`] |
//! | `client.get_sessions()` | [`Client::get_sessions`] |
//! | `asyncapy.core.Packet` | [`Packet`] (derefs to a [`Map`](asyncaproto::Map)) |
//! | `packet.stop_propagation()` | [`Packet::stop_propagation`] |
//! | `asyncapy.core.Session` | [`Session`] |
//! | `Filters.Fields(foo=r"\d+", bar=None)` | [`filters::Fields`]`::from_pairs([("foo", Some(r"\d+")), ("bar", None)])` (whole-value match) |
//! | `Filters.Ip(["127.0.0.1", ...])` | [`filters::Ip`]`::new([...])` (IPv4, IPv6, CIDR; [`filters::IpHandle`] to change it) |
//! | `Filters.APIFactory(factory, "field")` | [`filters::ApiKey`]`::new(factory, "field")` |
//! | `asyncapy.util.APIKeyFactory` | [`keys::ApiKeyFactory`] |
//! | `asyncapy.client.Client` (connecting) | [`client::AsyncClient`] / [`client::BlockingClient`] |
//! | overriding `setup()` / `shutdown()` | [`Server::on_setup`] / [`Server::on_shutdown`] (either may take [`State`]) |
//! | `self.db = ...` in `setup()`, read in handlers | [`Server::with_state`] / [`Server::with_state_from`] and a [`State<S>`](State) handler argument |
//! | `session.get_client().send(...)` (push to another session) | [`Session::client`]`().send(..)`: on the wire at once, even to an idle session |
//! | `json.loads` + checks of the packet's fields | a [`Payload<T>`](Payload) argument (any `serde::Deserialize`): a packet that does not fit is answered `ERR_REQUEST_MALFORMED` |
//! | raising to end a request | returning a [`Failure`] (`ERR_UNAUTHORIZED`, ...) or any error (`ERR_HANDLER_FAILED`) |
//! | `server.run_sync_task(fn, limiter=...)` | [`run_sync_task`] / [`SyncLimiter::run`] |
//!
//! The wire format itself lives in the [`asyncaproto`] crate, re-exported here.
//!
//! ## Features
//!
//! - `tls`: TLS on the server ([`Config::tls_cert`], [`Config::tls_key`],
//!   [`Config::tls_client_ca`], or a ready `tls::ServerTls`) and in the
//!   clients ([`client::TlsOptions`]), with rustls and *ring*. Off by default;
//!   the `asyncapy` command line has it on. Without it, the `tls_*` options
//!   are refused at start-up with a clear error, and clients asked for TLS fail
//!   with [`client::ClientError::TlsUnavailable`].

// The public surface: the types a server or a client is written with are at
// the root; modules are public where they group a family of items with a doc
// page of their own (the option table, extractors, replies, filters, key
// stores, the connecting clients, test sessions, TLS, the PROXY protocol
// codec), the common ones of which are also at the root. `ini` and `logging` are
// public only for the fuzz targets and tests (hidden from the docs).
pub mod client;
pub mod config;
mod dispatch;
pub mod extract;
pub mod filters;
#[doc(hidden)]
pub mod ini;
mod ip_net;
pub mod keys;
mod limits;
#[doc(hidden)]
pub mod logging;
mod metrics;
mod packet;
mod panic_report;
pub mod proxy;
#[cfg(feature = "redis")]
mod redis_conn;
mod rejection;
pub mod reply;
mod server;
mod session;
mod sync_task;
pub mod testing;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "tls")]
mod tls_common;

pub use asyncaproto;
pub use config::{Config, ConfigError, LogLevel};
pub use dispatch::{Handler, Route};
pub use extract::{Payload, State};
pub use filters::{Check, Filter, FilterExt};
pub use ip_net::{IpNet, IpNetError, IpNetErrorKind};
pub use keys::ApiKeyFactory;
pub use limits::{LimitsFail, RateLimit, RateLimitError};
pub use packet::{AsPayload, Packet};
pub use reply::{Failure, HandlerError, IntoReply};
#[doc(hidden)]
pub use server::runtime;
pub use server::{
    Hook, IntoHookResult, Ready, RunningServer, Server, ServerBuilder, ServerError, ServerHandle,
};
pub use session::{Client, SendError, Session};
pub use sync_task::{run_sync_task, SyncLimiter, SyncTaskError};

/// The README's Rust examples, compiled as doctests so the quickstart stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
