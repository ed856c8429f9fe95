//! [`AsyncClient`]: the client for tokio applications.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use asyncaproto::{FrameCodec, Map};
use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::{
    closed, encode_request, take_frame, ClientConfig, ClientError, IntoPayload, RawFrame, Received,
};
use crate::packet::Packet;

/// An AsyncAProto client for async code (tokio).
///
/// Sends and receives may be pipelined: send several packets, then receive
/// their replies in order. With [`ClientConfig::tls`] it connects with TLS
/// (tokio-rustls); the TLS configuration is built at the first connect and
/// kept for the next ones.
///
/// ```no_run
/// use asyncapy::client::{AsyncClient, ClientConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), asyncapy::client::ClientError> {
/// let mut client = AsyncClient::new(ClientConfig::new());
/// client.connect("127.0.0.1", 8081).await?;
/// let reply = client.request(r#"{"test": 1}"#).await?;
/// assert_eq!(reply["test"], 1);
/// client.disconnect().await?;
/// # Ok(())
/// # }
/// ```
pub struct AsyncClient {
    config: ClientConfig,
    connection: Option<Connection>,
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// A connection's byte stream: plain TCP or TLS over TCP.
enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

struct Connection {
    stream: Stream,
    codec: FrameCodec,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

impl AsyncClient {
    /// A client with `config`, not connected yet.
    pub fn new(config: ClientConfig) -> AsyncClient {
        AsyncClient {
            config,
            connection: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Connects to `host:port` with `config` in one step.
    pub async fn connect_to(
        host: &str,
        port: u16,
        config: ClientConfig,
    ) -> Result<AsyncClient, ClientError> {
        let mut client = AsyncClient::new(config);
        client.connect(host, port).await?;
        Ok(client)
    }

    /// The client's configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Whether the client holds a connection.
    pub fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    /// Connects to `host:port` (closing any previous connection); with TLS,
    /// completes the handshake too (both within the timeout).
    pub async fn connect(&mut self, host: &str, port: u16) -> Result<(), ClientError> {
        let codec = self.config.codec()?;
        self.connection = None;
        #[cfg(not(feature = "tls"))]
        super::refuse_tls(&self.config)?;
        #[cfg(feature = "tls")]
        let tls = super::tls_target(&self.config, &mut self.tls, host)?;
        let addr = format!("{host}:{port}");
        let timeout = self.config.timeout;
        let proxy_header = self.config.proxy_header;
        let stream = timed(timeout, async {
            let mut tcp = TcpStream::connect(addr.as_str())
                .await
                .map_err(|e| ClientError::connect(addr.clone(), e))?;
            let _ = tcp.set_nodelay(true);
            if let Some(header) = &proxy_header {
                tcp.write_all(&header.to_bytes())
                    .await
                    .map_err(ClientError::Io)?;
            }
            #[cfg(feature = "tls")]
            if let Some((config, name)) = tls {
                let connector = tokio_rustls::TlsConnector::from(config);
                let stream = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| super::tls::handshake_error(e, timeout))?;
                return Ok(Stream::Tls(Box::new(stream)));
            }
            let _ = timeout;
            Ok(Stream::Plain(tcp))
        })
        .await?;
        self.connection = Some(Connection {
            stream,
            codec,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
        });
        Ok(())
    }

    /// Sends a packet (a [`Map`], a [`Packet`], or a JSON object as text) in the
    /// configured encoding.
    pub async fn send(&mut self, payload: impl IntoPayload) -> Result<(), ClientError> {
        let encoding = self.config.encoding;
        let timeout = self.config.timeout;
        let connection = self.connection.as_mut().ok_or(ClientError::NotConnected)?;
        connection.wbuf.clear();
        encode_request(&connection.codec, encoding, payload, &mut connection.wbuf)?;
        let write = async {
            // The flush matters with TLS: the last records may still sit in
            // rustls's buffer after the write.
            let stream = &mut connection.stream;
            stream.write_all(&connection.wbuf).await?;
            stream.flush().await
        };
        let written = timed(timeout, async {
            write.await.map_err(|e| ClientError::io(e, timeout))
        })
        .await;
        super::drop_if_broken(&mut self.connection, written)
    }

    /// Drops the connection after an error that leaves it unusable (a
    /// timeout: the late reply would be read as the next request's).
    /// Sends any value that serializes to a map.
    pub async fn send_value<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), ClientError> {
        let packet =
            Packet::from_serialize(value, self.config.encoding).map_err(ClientError::Value)?;
        self.send(&packet).await
    }

    async fn next_frame(&mut self) -> Result<RawFrame, ClientError> {
        let timeout = self.config.timeout;
        let connection = self.connection.as_mut().ok_or(ClientError::NotConnected)?;
        let read = async {
            loop {
                if let Some(frame) = take_frame(&connection.codec, &mut connection.rbuf)? {
                    return Ok(frame);
                }
                if connection.rbuf.capacity() - connection.rbuf.len() < 4096 {
                    connection.rbuf.reserve(16 * 1024);
                }
                let n = connection
                    .stream
                    .read_buf(&mut connection.rbuf)
                    .await
                    .map_err(|e| ClientError::io(e, timeout))?;
                if n == 0 {
                    return Err(closed(connection.rbuf.len()));
                }
            }
        };
        let frame = timed(timeout, read).await;
        super::drop_if_broken(&mut self.connection, frame)
    }

    /// Receives the next reply, decoded. A failure reply is
    /// [`ClientError::Failure`] with its code.
    pub async fn receive(&mut self) -> Result<Map, ClientError> {
        self.next_frame().await?.decode()
    }

    /// Receives the next reply with the encoding it came in.
    pub async fn receive_packet(&mut self) -> Result<Received, ClientError> {
        let frame = self.next_frame().await?;
        let map = frame.decode()?;
        Ok(Received {
            map,
            encoding: frame.encoding,
        })
    }

    /// Receives the next reply as a Rust type, through serde.
    pub async fn receive_as<T: DeserializeOwned>(&mut self) -> Result<T, ClientError> {
        let map = self.receive().await?;
        T::deserialize(&map).map_err(ClientError::Value)
    }

    /// Receives the next whole frame, head included, without decoding it.
    pub async fn receive_raw(&mut self) -> Result<Bytes, ClientError> {
        Ok(self.next_frame().await?.raw)
    }

    /// Sends a packet and receives the reply.
    pub async fn request(&mut self, payload: impl IntoPayload) -> Result<Map, ClientError> {
        self.send(payload).await?;
        self.receive().await
    }

    /// Closes the connection (the server notices and ends the session); with
    /// TLS, says so first (close_notify).
    pub async fn disconnect(&mut self) -> Result<(), ClientError> {
        if let Some(mut connection) = self.connection.take() {
            let _ = connection.stream.shutdown().await;
        }
        Ok(())
    }
}

/// `operation`, bounded by `timeout` (none: unbounded).
async fn timed<T>(
    timeout: Option<Duration>,
    operation: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    match timeout {
        Some(limit) => tokio::time::timeout(limit, operation)
            .await
            .unwrap_or(Err(ClientError::TimedOut(limit))),
        None => operation.await,
    }
}
