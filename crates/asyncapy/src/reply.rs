//! What a handler returns, and the failure replies it may choose.
//!
//! A handler may send any number of packets with [`Client::send`](crate::Client::send)
//! and return nothing; or return its reply as a value; or end with a
//! [`Failure`] of its choosing. Whatever it returns goes through
//! [`IntoReply`]:
//!
//! | the handler returns | the client gets |
//! |---|---|
//! | `()`, `Ok(())`, `None` | nothing more |
//! | a [`Map`], a [`Packet`], `Ok(map)`, `Some(map)` | that packet, in the session's encoding |
//! | a [`Failure`], or `Err(e)` where `e` is a `Failure` (also through `?` into a boxed error) | `{"status": "failure", "error": CODE}`; the session closes unless [`Failure::keep_open`] |
//! | `Err(e)` where `e` is a [`Rejection`] of the request (e.g. [`Packet::parse`] of a packet missing a field) | `ERR_REQUEST_MALFORMED`, logged as a client error (WARNING); the session closes |
//! | any other `Err(e)` | `ERR_HANDLER_FAILED`, logged as an ERROR with the details; the session closes |
//!
//! ```
//! use asyncapy::asyncaproto::{Map, Value};
//! use asyncapy::{Failure, Packet};
//!
//! #[derive(serde::Deserialize)]
//! struct Login { user: String, password: String }
//!
//! async fn login(packet: Packet) -> Result<Map, Failure> {
//!     let login: Login = packet.parse().map_err(|_| Failure::new("ERR_BAD_LOGIN"))?;
//!     if login.password != "open sesame" {
//!         return Err(Failure::new("ERR_UNAUTHORIZED").keep_open());
//!     }
//!     Ok(Map::from_iter([("welcome", Value::from(login.user))]))
//! }
//! # let _ = login;
//! ```

use std::borrow::Cow;
use std::fmt;

use asyncaproto::{ErrorCode, Map};

use crate::packet::Packet;
use crate::rejection::Rejection;

/// The error a handler may return; the session is closed with `ERR_HANDLER_FAILED`
/// and the error is logged (never sent to the client). A [`Failure`] or a
/// [`Rejection`] boxed in it keeps its own reply (see the [module docs](self)).
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure reply a handler chooses: a protocol code ([`ErrorCode`]) or an
/// application code of its own (`ERR_UNAUTHORIZED`), sent as
/// `{"status": "failure", "error": CODE}` in the session's encoding.
///
/// By default the session closes after it, as after every failure reply of
/// the protocol; [`Failure::keep_open`] keeps it open for more packets.
/// Later groups never see the packet.
///
/// ```
/// use asyncapy::Failure;
/// use asyncapy::asyncaproto::ErrorCode;
///
/// let denied = Failure::new("ERR_UNAUTHORIZED");
/// assert_eq!(denied.code(), "ERR_UNAUTHORIZED");
/// assert!(denied.closes());
/// assert!(!Failure::from(ErrorCode::TimedOut).keep_open().closes());
/// assert_eq!(denied.to_string(), "failure reply ERR_UNAUTHORIZED");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    code: Cow<'static, str>,
    close: bool,
}

impl Failure {
    /// A failure with `code`, e.g. `"ERR_UNAUTHORIZED"` (by convention an
    /// `ERR_` name, as the protocol's own codes).
    pub fn new(code: impl Into<Cow<'static, str>>) -> Failure {
        Failure {
            code: code.into(),
            close: true,
        }
    }

    /// Keeps the session open after the failure reply.
    pub fn keep_open(mut self) -> Failure {
        self.close = false;
        self
    }

    /// The code sent.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Whether the session closes after the reply.
    pub fn closes(&self) -> bool {
        self.close
    }

    /// The protocol code this is, if it is one.
    pub(crate) fn protocol_code(&self) -> Option<ErrorCode> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| code.as_str() == self.code)
    }
}

impl From<ErrorCode> for Failure {
    fn from(code: ErrorCode) -> Failure {
        Failure::new(code.as_str())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failure reply {}", self.code)
    }
}

impl std::error::Error for Failure {}

/// The code of a failure reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureCode<'a> {
    /// One of the protocol's.
    Protocol(ErrorCode),
    /// One a handler chose.
    Application(&'a str),
}

/// What a handler's return value asks the server to do; made by [`IntoReply`].
#[derive(Debug)]
pub struct Reply(pub(crate) ReplyKind);

#[derive(Debug)]
pub(crate) enum ReplyKind {
    /// Nothing more to send.
    Nothing,
    /// Send this packet.
    Send(Map),
    /// Send this failure reply.
    Failure(Failure),
    /// The request was refused: `ERR_REQUEST_MALFORMED` (or, for a rejection
    /// that is the server's fault, `ERR_HANDLER_FAILED`).
    Rejected(Rejection),
    /// The handler failed: `ERR_HANDLER_FAILED`, details in the log only.
    Error(HandlerError),
}

impl Reply {
    /// Nothing more to send.
    pub fn nothing() -> Reply {
        Reply(ReplyKind::Nothing)
    }

    /// The reply to a handler's error: a [`Failure`] or a [`Rejection`] inside
    /// it keeps its meaning (also behind `?` into a boxed error); anything
    /// else is an internal failure.
    pub fn from_error(error: impl Into<HandlerError>) -> Reply {
        let error = error.into();
        let error = match error.downcast::<Failure>() {
            Ok(failure) => return Reply(ReplyKind::Failure(*failure)),
            Err(other) => other,
        };
        match error.downcast::<Rejection>() {
            Ok(rejection) => Reply(ReplyKind::Rejected(*rejection)),
            Err(other) => Reply(ReplyKind::Error(other)),
        }
    }
}

/// What a handler may return; see the [module docs](self) for each type.
#[diagnostic::on_unimplemented(
    message = "a handler cannot return `{Self}`",
    note = "a handler returns `()`, a `Map` or `Packet` to send, a `Failure`, an `Option` of those, or a `Result` of those with any error type"
)]
pub trait IntoReply {
    /// The reply.
    fn into_reply(self) -> Reply;
}

impl IntoReply for () {
    fn into_reply(self) -> Reply {
        Reply::nothing()
    }
}

impl IntoReply for Reply {
    fn into_reply(self) -> Reply {
        self
    }
}

impl IntoReply for Map {
    fn into_reply(self) -> Reply {
        Reply(ReplyKind::Send(self))
    }
}

impl IntoReply for Packet {
    fn into_reply(self) -> Reply {
        Reply(ReplyKind::Send(self.into_map()))
    }
}

impl IntoReply for Failure {
    fn into_reply(self) -> Reply {
        Reply(ReplyKind::Failure(self))
    }
}

impl<T: IntoReply> IntoReply for Option<T> {
    fn into_reply(self) -> Reply {
        self.map_or_else(Reply::nothing, IntoReply::into_reply)
    }
}

impl<T: IntoReply, E: Into<HandlerError>> IntoReply for Result<T, E> {
    fn into_reply(self) -> Reply {
        match self {
            Ok(reply) => reply.into_reply(),
            Err(error) => Reply::from_error(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(reply: impl IntoReply) -> ReplyKind {
        reply.into_reply().0
    }

    #[test]
    fn errors_keep_their_meaning_behind_a_box() {
        let boxed: Result<(), HandlerError> = Err(Box::new(Failure::new("ERR_NOPE")));
        assert!(matches!(kind(boxed), ReplyKind::Failure(f) if f.code() == "ERR_NOPE"));
        let rejected: Result<(), HandlerError> =
            Err(Box::new(Rejection::malformed("missing field `a`")));
        assert!(matches!(kind(rejected), ReplyKind::Rejected(_)));
        let io: Result<(), std::io::Error> = Err(std::io::Error::other("disk"));
        assert!(matches!(kind(io), ReplyKind::Error(_)));
        assert!(matches!(kind(Some(Map::new())), ReplyKind::Send(_)));
        assert!(matches!(kind(None::<Map>), ReplyKind::Nothing));
        assert!(matches!(kind(Ok::<_, Failure>(())), ReplyKind::Nothing));
    }

    #[test]
    fn protocol_codes_are_recognised() {
        assert_eq!(
            Failure::from(ErrorCode::NoHandler).protocol_code(),
            Some(ErrorCode::NoHandler)
        );
        assert_eq!(Failure::new("ERR_UNAUTHORIZED").protocol_code(), None);
    }
}
