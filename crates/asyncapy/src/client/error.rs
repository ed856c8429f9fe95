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
    /// TLS was asked for, and this build has no TLS (asyncapy's `tls` feature
    /// is off).
    #[error("TLS connections are not available in this build (enable asyncapy's `tls` feature)")]
    TlsUnavailable,
    /// The server answered in TLS: it serves TLS only, and the client
    /// connected without it.
    #[error("the server answered with TLS: connect with TLS")]
    TlsExpected,
    /// TLS failed: the server's certificate was refused (expired, unknown
    /// issuer, wrong name...), the server refused ours, the server does not
    /// speak TLS, or the TLS options are unusable.
    #[error("TLS: {0}")]
    Tls(TlsError),
    /// Another I/O error on the connection.
    #[error(transparent)]
    Io(io::Error),
}

impl ClientError {
    /// Whether the connection can no longer be trusted to carry the next
    /// request: a timeout (a late reply may still come), a close, or a broken
    /// stream. The clients drop their connection after such an error.
    pub(crate) fn ends_connection(&self) -> bool {
        matches!(
            self,
            ClientError::TimedOut(_)
                | ClientError::Closed
                | ClientError::ClosedMidFrame { .. }
                | ClientError::Frame(_)
                | ClientError::Tls(_)
                | ClientError::TlsExpected
                | ClientError::Io(_)
        )
    }
}

/// Why a TLS connection failed, as a client sees it.
///
/// ```
/// use asyncapy::client::{ClientError, TlsError};
///
/// let err = ClientError::Tls(TlsError::CertificateExpired);
/// assert_eq!(err.to_string(), "TLS: the server's certificate has expired");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The server's certificate is past its validity period.
    #[error("the server's certificate has expired")]
    CertificateExpired,
    /// The server's certificate is not valid yet (or this machine's clock is wrong).
    #[error("the server's certificate is not valid yet")]
    CertificateNotYetValid,
    /// The server's certificate is not signed by a trusted root.
    #[error(
        "the server's certificate is signed by an unknown issuer: trust its CA \
         (a CA file), or use the insecure mode for development"
    )]
    UnknownIssuer,
    /// The server's certificate is not valid for the name connected to.
    #[error(
        "the server's certificate is not valid for {}{}: connect by a name it \
         carries, or set the server name",
        name.as_deref().map_or_else(|| "the name asked for".to_owned(), |n| format!("{n:?}")),
        if presented.is_empty() { String::new() } else { format!(" (it is for {})", presented.join(", ")) }
    )]
    WrongName {
        /// The name the certificate was checked against.
        name: Option<String>,
        /// The names the certificate carries.
        presented: Vec<String>,
    },
    /// The server's certificate is unusable for another reason.
    #[error("the server's certificate was refused: {0}")]
    BadCertificate(String),
    /// The server requires a client certificate and none was given.
    #[error("the server requires a client certificate")]
    ClientCertificateRequired,
    /// The server refused the client certificate (unknown CA, expired...).
    #[error("the server refused the client certificate ({0})")]
    ClientCertificateRefused(String),
    /// What came back is not TLS: the port probably serves plain TCP.
    #[error("the server does not speak TLS on this port ({0})")]
    NotTls(String),
    /// The handshake failed for another reason.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The TLS options cannot be used (a CA file that does not load, no
    /// system roots, a bad server name...).
    #[error("{0}")]
    Setup(String),
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
        #[cfg(feature = "tls")]
        if let Some(tls) = super::tls::from_io(&error) {
            return ClientError::Tls(tls);
        }
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
