//! # AsyncAPY for Rust
//!
//! Serve asynchronous API endpoints over AsyncAProto. TODO: the guide.

pub mod config;
pub mod dispatch;
pub mod ini;
pub mod packet;
pub mod server;
pub mod session;

pub use asyncaproto;
pub use config::{Config, ConfigError, LogLevel};
pub use dispatch::{Handler, HandlerError, IntoHandlerResult};
pub use packet::{AsPayload, Packet};
pub use server::{RunningServer, Server, ServerError, ServerHandle};
pub use session::{Client, SendError, Session};
