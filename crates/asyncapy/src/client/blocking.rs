//! [`BlockingClient`]: the client for code without an async runtime.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};

use asyncaproto::{Encoding, FrameCodec, Map};
use bytes::{BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    closed, encode_request, take_frame, ClientConfig, ClientError, IntoPayload, RawFrame, Received,
};
use crate::packet::Packet;

/// An AsyncAProto client that blocks the calling thread: no runtime needed,
/// usable from a plain `fn main`. With [`ClientConfig::tls`] it connects with
/// TLS (rustls over the std socket; still no runtime).
///
/// ```no_run
/// use asyncapy::client::{BlockingClient, ClientConfig};
///
/// let mut client = BlockingClient::new(ClientConfig::new());
/// client.connect("127.0.0.1", 8081)?;
/// client.send(r#"{"test": 1}"#)?;
/// client.send(r#"{"test": 2}"#)?; // pipelined
/// assert_eq!(client.receive()?["test"], 1);
/// assert_eq!(client.receive()?["test"], 2);
/// # Ok::<(), asyncapy::client::ClientError>(())
/// ```
pub struct BlockingClient {
    config: ClientConfig,
    connection: Option<Connection>,
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

#[cfg(feature = "tls")]
type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A connection's byte stream: plain TCP or TLS over TCP.
enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl Stream {
    fn shutdown(self) {
        match self {
            Stream::Plain(s) => {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            #[cfg(feature = "tls")]
            Stream::Tls(mut s) => {
                s.conn.send_close_notify();
                let _ = s.flush();
                let _ = s.sock.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

struct Connection {
    stream: Stream,
    codec: FrameCodec,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

impl BlockingClient {
    /// A client with `config`, not connected yet.
    pub fn new(config: ClientConfig) -> BlockingClient {
        BlockingClient {
            config,
            connection: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Connects to `host:port` with `config` in one step.
    pub fn connect_to(
        host: &str,
        port: u16,
        config: ClientConfig,
    ) -> Result<BlockingClient, ClientError> {
        let mut client = BlockingClient::new(config);
        client.connect(host, port)?;
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
    /// completes the handshake too.
    pub fn connect(&mut self, host: &str, port: u16) -> Result<(), ClientError> {
        let codec = self.config.codec()?;
        self.connection = None;
        #[cfg(not(feature = "tls"))]
        super::refuse_tls(&self.config)?;
        #[cfg(feature = "tls")]
        let tls = super::tls_target(&self.config, &mut self.tls, host)?;
        let addr = format!("{host}:{port}");
        let targets = (host, port)
            .to_socket_addrs()
            .map_err(|e| ClientError::connect(addr.clone(), e))?;
        let mut last = None;
        let mut stream = None;
        for target in targets {
            let attempt = match self.config.timeout {
                Some(limit) => TcpStream::connect_timeout(&target, limit),
                None => TcpStream::connect(target),
            };
            match attempt {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = match (stream, last) {
            (Some(stream), _) => stream,
            (None, Some(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(ClientError::TimedOut(
                    self.config.timeout.unwrap_or_default(),
                ))
            }
            (None, Some(e)) => return Err(ClientError::connect(addr, e)),
            (None, None) => {
                return Err(ClientError::connect(
                    addr,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
                ))
            }
        };
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(self.config.timeout)
            .and_then(|()| stream.set_write_timeout(self.config.timeout))
            .map_err(ClientError::Io)?;
        if let Some(header) = &self.config.proxy_header {
            (&stream)
                .write_all(&header.to_bytes())
                .map_err(ClientError::Io)?;
        }
        #[cfg(feature = "tls")]
        let stream = match tls {
            Some((config, name)) => Stream::Tls(Box::new(self.handshake(config, name, stream)?)),
            None => Stream::Plain(stream),
        };
        #[cfg(not(feature = "tls"))]
        let stream = Stream::Plain(stream);
        self.connection = Some(Connection {
            stream,
            codec,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
        });
        Ok(())
    }

    /// Runs the TLS handshake on `tcp` (bounded by the socket's timeouts).
    #[cfg(feature = "tls")]
    fn handshake(
        &self,
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
        mut tcp: TcpStream,
    ) -> Result<TlsStream, ClientError> {
        let timeout = self.config.timeout;
        let mut conn = rustls::ClientConnection::new(config, name).map_err(|e| {
            ClientError::Tls(super::TlsError::Setup(format!("cannot start TLS: {e}")))
        })?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)
                .map_err(|e| super::tls::handshake_error(e, timeout))?;
        }
        Ok(rustls::StreamOwned::new(conn, tcp))
    }

    /// Sends a packet (a [`Map`], a [`Packet`], or a JSON object as text) in the
    /// configured encoding.
    pub fn send(&mut self, payload: impl IntoPayload) -> Result<(), ClientError> {
        let encoding = self.config.encoding;
        let timeout = self.config.timeout;
        let connection = self.connection.as_mut().ok_or(ClientError::NotConnected)?;
        connection.wbuf.clear();
        encode_request(&connection.codec, encoding, payload, &mut connection.wbuf)?;
        let written = connection
            .stream
            .write_all(&connection.wbuf)
            .and_then(|()| connection.stream.flush())
            .map_err(|e| ClientError::io(e, timeout));
        super::drop_if_broken(&mut self.connection, written)
    }

    /// Drops the connection after an error that leaves it unusable (a
    /// timeout: the late reply would be read as the next request's).
    /// Sends any value that serializes to a map.
    pub fn send_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ClientError> {
        let packet =
            Packet::from_serialize(value, self.config.encoding).map_err(ClientError::Value)?;
        self.send(&packet)
    }

    fn next_frame(&mut self) -> Result<RawFrame, ClientError> {
        let frame = self.read_frame();
        super::drop_if_broken(&mut self.connection, frame)
    }

    fn read_frame(&mut self) -> Result<RawFrame, ClientError> {
        let timeout = self.config.timeout;
        let connection = self.connection.as_mut().ok_or(ClientError::NotConnected)?;
        loop {
            if let Some(frame) = take_frame(&connection.codec, &mut connection.rbuf)? {
                return Ok(frame);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = connection
                .stream
                .read(&mut chunk)
                .map_err(|e| ClientError::io(e, timeout))?;
            if n == 0 {
                return Err(closed(connection.rbuf.len()));
            }
            connection.rbuf.put_slice(&chunk[..n]);
        }
    }

    /// Receives the next reply, decoded. A failure reply is
    /// [`ClientError::Failure`] with its code.
    pub fn receive(&mut self) -> Result<Map, ClientError> {
        self.next_frame()?.decode()
    }

    /// Receives the next reply with the encoding it came in.
    pub fn receive_packet(&mut self) -> Result<Received, ClientError> {
        let frame = self.next_frame()?;
        let map = frame.decode()?;
        Ok(Received {
            map,
            encoding: frame.encoding,
        })
    }

    /// Receives the next reply as a Rust type, through serde.
    pub fn receive_as<T: DeserializeOwned>(&mut self) -> Result<T, ClientError> {
        let map = self.receive()?;
        T::deserialize(&map).map_err(ClientError::Value)
    }

    /// Receives the next whole frame, head included, without decoding it.
    pub fn receive_raw(&mut self) -> Result<Bytes, ClientError> {
        Ok(self.next_frame()?.raw)
    }

    /// Changes the encoding of the packets sent from now on (the original
    /// client's `client.encoding = "ziproto"` between sends).
    pub fn set_encoding(&mut self, encoding: Encoding) {
        self.config.encoding = encoding;
    }

    /// Writes `bytes` to the connection as they are, unframed (through TLS
    /// when it is on): for exercising a server with split or malformed
    /// frames, as the original's tests do through `client.sock`.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let timeout = self.config.timeout;
        let connection = self.connection.as_mut().ok_or(ClientError::NotConnected)?;
        let written = connection
            .stream
            .write_all(bytes)
            .and_then(|()| connection.stream.flush())
            .map_err(|e| ClientError::io(e, timeout));
        super::drop_if_broken(&mut self.connection, written)
    }

    /// Reads at most `max` bytes as they come, unframed: what the client has
    /// buffered first, else one read of the connection. Empty when the server
    /// closed the connection.
    pub fn receive_bytes(&mut self, max: usize) -> Result<Bytes, ClientError> {
        let timeout = self.config.timeout;
        let connection = self.connection.as_mut().ok_or(ClientError::NotConnected)?;
        if !connection.rbuf.is_empty() {
            let n = max.min(connection.rbuf.len());
            return Ok(connection.rbuf.split_to(n).freeze());
        }
        let mut chunk = vec![0u8; max.min(64 * 1024)];
        let read = connection
            .stream
            .read(&mut chunk)
            .map_err(|e| ClientError::io(e, timeout));
        let n = super::drop_if_broken(&mut self.connection, read)?;
        chunk.truncate(n);
        Ok(Bytes::from(chunk))
    }

    /// Sends a packet and receives the reply.
    pub fn request(&mut self, payload: impl IntoPayload) -> Result<Map, ClientError> {
        self.send(payload)?;
        self.receive()
    }

    /// Closes the connection; with TLS, says so first (close_notify).
    pub fn disconnect(&mut self) -> Result<(), ClientError> {
        if let Some(connection) = self.connection.take() {
            connection.stream.shutdown();
        }
        Ok(())
    }
}
