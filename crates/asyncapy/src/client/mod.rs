//! The connecting client: talk to any AsyncAProto server, from async code
//! ([`AsyncClient`]) or from a plain `fn main` ([`BlockingClient`], no runtime
//! needed).
//!
//! Not to be confused with [`crate::Client`], the handle a server's handler
//! receives. This is the original's `asyncapy.client.Client`:
//!
//! | Python (`asyncapy.client.Client`) | Rust |
//! |---|---|
//! | `Client(byteorder, header_size, tls, encoding, timeout)` | [`ClientConfig`] (builder methods), then [`AsyncClient::new`] / [`BlockingClient::new`] |
//! | `Client(tls=True)` (encrypts, verifies nothing) | [`ClientConfig::tls`]`(`[`TlsOptions::new`]`())` verifies the server; add `.insecure(true)` to verify nothing |
//! | `connect(hostname, port)` | `connect(host, port)` |
//! | `send(dict or JSON str)` | `send(&map)`, `send(r#"{"a": 1}"#)`, `send(&packet)`; `send_value(&any_serialize)` |
//! | `receive() -> dict` | `receive() -> Map` (a failure reply is [`ClientError::Failure`]); `receive_as::<T>()` |
//! | `receive_raw() -> bytes` (empty when closed) | `receive_raw() -> Bytes` (the whole frame; [`ClientError::Closed`] when closed) |
//! | — | `request(payload)`: send, then receive |
//! | `disconnect()` | `disconnect()` |
//!
//! Differences on purpose: the original defaults to TLS although its server
//! has none; ours defaults to plain TCP, and with TLS it verifies the server's
//! certificate (the original verified nothing: [`TlsOptions::insecure`] does
//! the same, for development). Every failure is a typed
//! [`ClientError`] instead of an exception or an empty value. After a timeout
//! (or a close, or a broken stream) the client drops its connection: a late
//! reply is never taken for the reply of a later request, and later calls say
//! [`ClientError::NotConnected`] until the next `connect`.
//!
//! ```no_run
//! use asyncapy::client::{BlockingClient, ClientConfig};
//! use asyncapy::asyncaproto::Encoding;
//!
//! let mut client = BlockingClient::new(ClientConfig::new().encoding(Encoding::Json));
//! client.connect("127.0.0.1", 8081)?;
//! client.send(r#"{"test": 1}"#)?;
//! let reply = client.receive()?;
//! println!("{reply}");
//! # Ok::<(), asyncapy::client::ClientError>(())
//! ```

mod async_client;
mod blocking;
mod config;
mod error;
#[cfg(feature = "tls")]
pub(crate) mod tls;

use asyncaproto::{Encoding, ErrorCode, FrameCodec, FrameError, Map};
use bytes::{Bytes, BytesMut};

pub use async_client::AsyncClient;
pub use blocking::BlockingClient;
pub use config::{ClientConfig, TlsOptions};
pub use error::{ClientError, TlsError};

/// A reply as a client received it: its payload, and the encoding it came in
/// ([`AsyncClient::receive_packet`], [`BlockingClient::receive_packet`]).
/// It derefs to its [`Map`].
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    map: Map,
    encoding: Encoding,
}

impl Received {
    /// The encoding the reply came in.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The payload.
    pub fn into_map(self) -> Map {
        self.map
    }
}

impl std::ops::Deref for Received {
    type Target = Map;

    fn deref(&self) -> &Map {
        &self.map
    }
}

use crate::packet::Packet;

/// What can be sent as a packet: a [`Map`], a [`Packet`], or a JSON object as text.
///
/// Not the server's [`AsPayload`](crate::AsPayload): a connecting client also
/// takes JSON text, as the original's `send` does, and parsing it can fail;
/// a handler sends maps it already holds, borrowed, and that cannot.
pub trait IntoPayload {
    /// The payload map (parsing JSON text if need be).
    fn with_map<R>(self, f: impl FnOnce(&Map) -> R) -> Result<R, ClientError>;
}

impl IntoPayload for &Map {
    fn with_map<R>(self, f: impl FnOnce(&Map) -> R) -> Result<R, ClientError> {
        Ok(f(self))
    }
}

impl IntoPayload for Map {
    fn with_map<R>(self, f: impl FnOnce(&Map) -> R) -> Result<R, ClientError> {
        Ok(f(&self))
    }
}

impl IntoPayload for &Packet {
    fn with_map<R>(self, f: impl FnOnce(&Map) -> R) -> Result<R, ClientError> {
        Ok(f(self.map()))
    }
}

impl IntoPayload for Packet {
    fn with_map<R>(self, f: impl FnOnce(&Map) -> R) -> Result<R, ClientError> {
        Ok(f(self.map()))
    }
}

/// A JSON object as text, like the original client's `send(json_string)`.
impl IntoPayload for &str {
    fn with_map<R>(self, f: impl FnOnce(&Map) -> R) -> Result<R, ClientError> {
        let map = Encoding::Json
            .decode(self.as_bytes())
            .map_err(ClientError::InvalidPayload)?;
        Ok(f(&map))
    }
}

impl IntoPayload for &String {
    fn with_map<R>(self, f: impl FnOnce(&Map) -> R) -> Result<R, ClientError> {
        self.as_str().with_map(f)
    }
}

/// Frames `payload` in `encoding` onto `out`.
fn encode_request(
    codec: &FrameCodec,
    encoding: Encoding,
    payload: impl IntoPayload,
    out: &mut BytesMut,
) -> Result<(), ClientError> {
    payload
        .with_map(|map| codec.write_frame(encoding, map, out))?
        .map_err(ClientError::Frame)
}

/// A whole frame taken off the read buffer.
struct RawFrame {
    encoding: Encoding,
    /// The frame with its head.
    raw: Bytes,
    head_len: usize,
}

impl RawFrame {
    fn payload(&self) -> &[u8] {
        &self.raw[self.head_len..]
    }

    /// The decoded payload; a failure reply is an error carrying its code.
    fn decode(&self) -> Result<Map, ClientError> {
        let map = self
            .encoding
            .decode(self.payload())
            .map_err(ClientError::Payload)?;
        match ErrorCode::from_map(&map) {
            Some(code) => Err(ClientError::Failure(code)),
            None => Ok(map),
        }
    }
}

/// Takes the first complete frame off `buf`, if there is one.
fn take_frame(codec: &FrameCodec, buf: &mut BytesMut) -> Result<Option<RawFrame>, ClientError> {
    match codec.decode_raw_frame(buf) {
        Ok(frame) => Ok(frame.map(|(encoding, raw)| RawFrame {
            encoding,
            raw,
            head_len: codec.config().head_len(),
        })),
        Err(_) if looks_like_tls(buf) => Err(ClientError::TlsExpected),
        Err(e) => Err(ClientError::Frame(e)),
    }
}

/// Whether `bytes` start like a TLS record (an alert or a handshake, TLS 1.0
/// to 1.3): what a TLS server answers to a plain AsyncAProto frame.
fn looks_like_tls(bytes: &[u8]) -> bool {
    matches!(bytes, [0x15 | 0x16, 0x03, 0x00..=0x04, ..])
}

/// Without the `tls` feature, a configuration asking for TLS cannot connect.
#[cfg(not(feature = "tls"))]
fn refuse_tls(config: &ClientConfig) -> Result<(), ClientError> {
    match config.tls {
        Some(_) => Err(ClientError::TlsUnavailable),
        None => Ok(()),
    }
}

/// What a TLS connection to `host` needs: the client's rustls configuration
/// (built on first use and kept in `cache`) and the name the server's
/// certificate must carry; `None` when the client does not use TLS.
#[cfg(feature = "tls")]
fn tls_target(
    config: &ClientConfig,
    cache: &mut Option<std::sync::Arc<rustls::ClientConfig>>,
    host: &str,
) -> Result<
    Option<(
        std::sync::Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
    ClientError,
> {
    let Some(options) = &config.tls else {
        return Ok(None);
    };
    let rustls_config = match cache {
        Some(cached) => cached.clone(),
        None => cache.insert(tls::client_config(options)?).clone(),
    };
    Ok(Some((rustls_config, tls::server_name(options, host)?)))
}

/// Drops `connection` when `result` is an error after which it can no longer
/// be trusted ([`ClientError::ends_connection`]); passes `result` on.
fn drop_if_broken<C, T>(
    connection: &mut Option<C>,
    result: Result<T, ClientError>,
) -> Result<T, ClientError> {
    if result.as_ref().is_err_and(ClientError::ends_connection) {
        *connection = None;
    }
    result
}

/// The error for a stream that ended with `buffered` bytes of an unfinished frame.
fn closed(buffered: usize) -> ClientError {
    if buffered == 0 {
        ClientError::Closed
    } else {
        ClientError::ClosedMidFrame { buffered }
    }
}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> ClientError {
        ClientError::Frame(e)
    }
}
