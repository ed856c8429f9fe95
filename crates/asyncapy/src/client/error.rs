//! [`ClientError`]: every way a client operation can fail.

use std::io;
use std::time::Duration;

use asyncaproto::frame::FrameConfigError;
use asyncaproto::{ErrorCode, FrameError, PayloadError};

/// A client operation that failed, by cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Nothing listens at the address.
    #[error("connection refused by {addr}")]
    Refused {
        /// The address connected to.
        addr: String,
    },
    /// The connection could not be made for another reason.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address connected to.
        addr: String,
        /// The system's error.
        source: io::Error,
    },
    /// The operation took longer than the configured timeout.
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    /// The server closed the connection between frames.
    #[error("the server closed the connection")]
    Closed,
    /// The server closed the connection in the middle of a frame.
    #[error(
        "the server closed the connection in the middle of a frame ({buffered} bytes received)"
    )]
    ClosedMidFrame {
        /// How many bytes of the unfinished frame had arrived.
        buffered: usize,
    },
    /// The server sent a frame with a bad head, or one too large.
    #[error("malformed frame from the server: {0}")]
    Frame(FrameError),
    /// The server sent a payload that does not decode.
    #[error("malformed payload from the server: {0}")]
    Payload(PayloadError),
    /// The server answered with a failure reply.
    #[error("the server replied {0}")]
    Failure(ErrorCode),
    /// A JSON text given to `send` is not a JSON object.
    #[error("the payload to send is not a JSON object: {0}")]
    InvalidPayload(PayloadError),
    /// A value given to `send_value` does not serialize to a map, or a reply
    /// does not deserialize to the type asked for.
    #[error("{0}")]
    Value(asyncaproto::value::Error),
    /// The operation needs a connection and there is none.
    #[error("not connected")]
    NotConnected,
    /// The framing options are invalid.
    #[error("invalid client configuration: {0}")]
    Config(FrameConfigError),
    /// TLS was asked for, and this version has no TLS yet.
    #[error("TLS connections are not available in this version")]
    TlsUnavailable,
    /// Another I/O error on the connection.
    #[error(transparent)]
    Io(io::Error),
}

impl ClientError {
    /// The failure code, when the server replied with one.
    pub fn failure_code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Failure(code) => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn connect(addr: String, source: io::Error) -> ClientError {
        if source.kind() == io::ErrorKind::ConnectionRefused {
            ClientError::Refused { addr }
        } else {
            ClientError::Connect { addr, source }
        }
    }

    /// Maps an I/O error of an established connection.
    pub(crate) fn io(error: io::Error, timeout: Option<Duration>) -> ClientError {
        match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                ClientError::TimedOut(timeout.unwrap_or_default())
            }
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => ClientError::Closed,
            _ => ClientError::Io(error),
        }
    }
}
