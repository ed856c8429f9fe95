//! Handlers, filters and whole route tables tested without a socket.
//!
//! A [`TestSession`] stands for one client session: its [`Client`] is the
//! handle a handler receives, what handlers send is kept (and read back with
//! [`TestSession::sent`]), and [`TestSession::dispatch`] runs a packet through
//! a [`Server`]'s routes exactly as a session would (groups in order, the first
//! matching handler of each, `stop_propagation`), failure replies included.
//! Tests over real sockets (a server bound to port 0 and a
//! [`client::AsyncClient`](crate::client::AsyncClient)) remain the way to test
//! the wire; this is for the logic.
//!
//! ```
//! use asyncapy::asyncaproto::{Encoding, ErrorCode, Map, Value};
//! use asyncapy::filters::Fields;
//! use asyncapy::testing::{Outcome, TestSession};
//! use asyncapy::{Client, Config, Packet, SendError, Server};
//!
//! async fn greet(client: Client, packet: Packet) -> Result<(), SendError> {
//!     let mut reply = Map::new();
//!     reply.insert("hello", packet["name"].clone());
//!     client.send(&reply).await
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let mut server = Server::new(Config::default());
//! server.add_handler(greet).filter(Fields::from_pairs([("name", None::<&str>)])?);
//!
//! let session = TestSession::new("127.0.0.1:5000".parse()?);
//! let mut hi = Map::new();
//! hi.insert("name", Value::from("Ann"));
//! let outcome = session.dispatch(&mut server, session.packet(hi, Encoding::Json)).await;
//! assert!(matches!(outcome, Outcome::Handled));
//! assert_eq!(session.sent()?[0]["hello"], "Ann");
//!
//! // A packet no route accepts: the server answers ERR_NO_HANDLER and closes.
//! let outcome = session.dispatch(&mut server, session.packet(Map::new(), Encoding::Json)).await;
//! assert!(matches!(outcome, Outcome::NoHandler));
//! assert_eq!(ErrorCode::from_map(&session.sent()?[0]), Some(ErrorCode::NoHandler));
//! assert!(session.is_closed());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use asyncaproto::{Encoding, FrameCodec, FrameError, Map, PayloadError};
use bytes::BytesMut;

use crate::dispatch::{self, HandlerError};
use crate::extract::Rejection;
use crate::packet::Packet;
use crate::reply::Failure;
use crate::server::Server;
use crate::session::{Client, Registry, SessionState};

/// What a session does with a packet, as [`TestSession::dispatch`] saw it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// A handler accepted the packet and returned `Ok` (in one group or more).
    Handled,
    /// No handler accepted it: the server answers `ERR_NO_HANDLER` and
    /// closes the session.
    NoHandler,
    /// No handler ran, and a handler's arguments refused the packet (a
    /// [`Payload`](crate::extract::Payload) it did not fit): the server
    /// answers `ERR_REQUEST_MALFORMED` and closes the session.
    Malformed(Rejection),
    /// A handler ended with this failure reply of its choosing.
    Failure(Failure),
    /// A handler returned this error: the server logs it, answers
    /// `ERR_HANDLER_FAILED` and closes the session.
    Failed(HandlerError),
    /// A handler panicked with this message: as for `Failed`.
    Panicked(String),
}

/// Why [`TestSession::sent`] could not read back what was sent.
#[derive(Debug, thiserror::Error)]
pub enum SentError {
    /// A frame that does not decode (only a bug would write one).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A payload that does not decode.
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

/// One client session without a connection; see the [module docs](self).
pub struct TestSession {
    state: Arc<SessionState>,
    codec: FrameCodec,
}

impl std::fmt::Debug for TestSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSession")
            .field("client", &self.client())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl TestSession {
    /// A session of a client at `peer`, framed with the default layout
    /// (4-byte big-endian Content-Length).
    pub fn new(peer: SocketAddr) -> TestSession {
        TestSession::with_codec(peer, FrameCodec::default())
    }

    /// A session framed with `codec`'s layout (header size, byte order,
    /// maximum packet size), as a server with that configuration frames.
    pub fn with_codec(peer: SocketAddr, codec: FrameCodec) -> TestSession {
        TestSession {
            state: Arc::new(SessionState::new(peer, codec, Arc::new(Registry::new(0)))),
            codec,
        }
    }

    /// The client, as a handler receives it.
    pub fn client(&self) -> Client {
        Client::new(self.state.clone())
    }

    /// A packet that arrived in `encoding`. As on a real connection, the
    /// session's first packet sets the encoding of every reply.
    pub fn packet(&self, map: Map, encoding: Encoding) -> Packet {
        Packet::new(map, self.state.settle_encoding(encoding))
    }

    /// Runs `packet` through `server`'s routes as a session of it would, and
    /// on a failure queues the failure reply and closes the session, as the
    /// server does. (The route table is sorted into its groups on the first
    /// call, as [`Server::bind`] does.)
    pub async fn dispatch(&self, server: &mut Server, packet: Packet) -> Outcome {
        let encoding = packet.encoding();
        let outcome = server.dispatch_packet(&self.client(), packet).await;
        // The failure reply, exactly as a session sends it.
        if let Some((code, close)) = outcome.reply() {
            self.state.queue_failure_code(code, encoding, close);
        }
        match outcome {
            dispatch::Outcome::Handled => Outcome::Handled,
            dispatch::Outcome::Unhandled => Outcome::NoHandler,
            dispatch::Outcome::Malformed(rejection) => Outcome::Malformed(rejection),
            dispatch::Outcome::Failure(failure) => Outcome::Failure(failure),
            dispatch::Outcome::Failed(e) => Outcome::Failed(e),
            dispatch::Outcome::Panicked { message, .. } => Outcome::Panicked(message),
        }
    }

    /// Every packet sent to the client since the last call, in order,
    /// decoded (failure replies included).
    pub fn sent(&self) -> Result<Vec<Map>, SentError> {
        let mut bytes = self.sent_raw();
        let mut maps = Vec::new();
        while let Some(frame) = self.codec.decode_frame(&mut bytes)? {
            maps.push(frame.encoding.decode(&frame.payload)?);
        }
        Ok(maps)
    }

    /// The frames sent to the client since the last call, exactly as the
    /// server would write them (for byte-level checks).
    ///
    /// ```
    /// use asyncapy::asyncaproto::{Encoding, Map, Value};
    /// use asyncapy::testing::TestSession;
    ///
    /// let session = TestSession::new("127.0.0.1:5000".parse()?);
    /// let mut reply = Map::new();
    /// reply.insert("foo", Value::from("bar"));
    /// let _ = session.packet(Map::new(), Encoding::Json); // the session speaks JSON
    /// block_on(session.client().send(&reply));
    /// assert_eq!(&session.sent_raw()[..], b"\x00\x00\x00\x10\x16\x00{\"foo\": \"bar\"}");
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sent_raw(&self) -> BytesMut {
        std::mem::take(&mut *self.state.outbox())
    }

    /// Whether a handler (or a failure) closed the session.
    pub fn is_closed(&self) -> bool {
        self.state.is_closing()
    }
}
