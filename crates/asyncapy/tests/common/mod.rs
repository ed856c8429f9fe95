//! Test helpers: a server on port 0 and a raw AsyncAProto client over a real socket.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use asyncapy::asyncaproto::{Encoding, ErrorCode, Frame, FrameCodec, FrameConfig, Map, Value};
use asyncapy::{Client, Config, Packet, RunningServer, SendError, Server};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub mod process;

/// How long any single wait in a test may take before the test fails.
pub use process::PATIENCE;

/// A test server's configuration: port 0, the defaults otherwise. It also
/// routes the log (servers log from `bind`) through the test harness, which
/// shows it only for a test that fails: an application's own subscriber is
/// kept by the server.
pub fn test_config() -> Config {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .try_init();
    Config {
        port: 0,
        ..Config::default()
    }
}

pub async fn echo(client: Client, packet: Packet) -> Result<(), SendError> {
    client.send(&packet).await
}

/// Starts an echo server with `config` and returns it running.
pub async fn start_echo(config: Config) -> RunningServer {
    let mut server = Server::new(config);
    server.register_handler(echo);
    server.bind().await.expect("server binds")
}

pub fn map(pairs: &[(&str, Value)]) -> Map {
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(*k, v.clone());
    }
    map
}

pub struct RawClient {
    pub stream: TcpStream,
    pub codec: FrameCodec,
    buf: BytesMut,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> RawClient {
        Self::connect_with(addr, FrameConfig::default()).await
    }

    pub async fn connect_with(addr: SocketAddr, config: FrameConfig) -> RawClient {
        let stream = tokio::time::timeout(PATIENCE, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        RawClient {
            stream,
            codec: FrameCodec::new(config),
            buf: BytesMut::new(),
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    pub fn frame_bytes(&self, encoding: Encoding, map: &Map) -> BytesMut {
        let mut out = BytesMut::new();
        self.codec
            .write_frame(encoding, map, &mut out)
            .expect("frame");
        out
    }

    pub async fn send(&mut self, encoding: Encoding, map: &Map) {
        let bytes = self.frame_bytes(encoding, map);
        self.send_raw(&bytes).await;
    }

    /// The next frame, or None when the server closed the connection cleanly.
    pub async fn read_frame(&mut self) -> Option<Frame> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(frame) = self.codec.decode_frame(&mut self.buf).expect("valid frame") {
                    return Some(frame);
                }
                let n = match self.stream.read_buf(&mut self.buf).await {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
                    Err(e) => panic!("read failed: {e}"),
                };
                if n == 0 {
                    assert!(self.buf.is_empty(), "connection closed inside a frame");
                    return None;
                }
            }
        })
        .await
        .expect("a reply in time")
    }

    pub async fn read(&mut self) -> (Encoding, Map) {
        let frame = self.read_frame().await.expect("a reply, not a close");
        let map = frame
            .encoding
            .decode(&frame.payload)
            .expect("reply decodes");
        (frame.encoding, map)
    }

    pub async fn request(&mut self, encoding: Encoding, map: &Map) -> (Encoding, Map) {
        self.send(encoding, map).await;
        self.read().await
    }

    /// Reads a failure reply and asserts its code and encoding, then that the
    /// server closed the connection.
    pub async fn expect_failure_then_close(&mut self, code: ErrorCode, encoding: Encoding) {
        let (got_encoding, map) = self.read().await;
        assert_eq!(ErrorCode::from_map(&map), Some(code), "reply was {map:?}");
        assert_eq!(got_encoding, encoding, "encoding of the {code} reply");
        self.expect_closed().await;
    }

    pub async fn expect_closed(&mut self) {
        assert!(
            self.read_frame().await.is_none(),
            "the server closes the session"
        );
    }
}

/// A fresh client gets its echo: the server is still serving.
pub async fn assert_still_serving(addr: SocketAddr) {
    let mut client = RawClient::connect(addr).await;
    let ping = map(&[("ping", Value::from("pong"))]);
    let (encoding, reply) = client.request(Encoding::Json, &ping).await;
    assert_eq!(encoding, Encoding::Json);
    assert_eq!(reply, ping);
}

impl RawClient {
    /// Wraps an already connected stream (e.g. one bound to a chosen source address).
    pub fn from_stream(stream: TcpStream) -> RawClient {
        stream.set_nodelay(true).expect("nodelay");
        RawClient {
            stream,
            codec: FrameCodec::default(),
            buf: BytesMut::new(),
        }
    }
}

impl RawClient {
    /// Connects to `addr` from the IPv4 `source` address (another loopback
    /// address such as 127.0.0.2 works on Linux), so the server sees that peer.
    pub async fn connect_from(source: std::net::Ipv4Addr, addr: SocketAddr) -> RawClient {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::from((source, 0)))
            .expect("bind the source address");
        let stream = tokio::time::timeout(PATIENCE, socket.connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        RawClient::from_stream(stream)
    }
}

/// Waits until `condition` holds, yielding between checks; fails the test with
/// `what` if it does not hold within [`PATIENCE`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "not within {PATIENCE:?}: {what}"
        );
        tokio::task::yield_now().await;
    }
}

/// Runs `attempts` (a loop that ends when what it waits for has happened),
/// failing the test with `what` if it takes longer than [`PATIENCE`].
pub async fn within_patience<T>(what: &str, attempts: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, attempts).await {
        Ok(value) => value,
        Err(_) => panic!("not within {PATIENCE:?}: {what}"),
    }
}

impl RawClient {
    /// Connects with a small receive buffer (64 KiB), so that a peer that
    /// does not read soon has the server's writes wait.
    pub async fn connect_small_window(addr: SocketAddr) -> RawClient {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .set_recv_buffer_size(64 << 10)
            .expect("a small receive buffer");
        let stream = within_patience("connect", socket.connect(addr))
            .await
            .expect("connect");
        RawClient::from_stream(stream)
    }
}

/// A log destination for a `tracing_subscriber::fmt()` subscriber
/// (`.with_writer(captured.clone())`): every line written, kept for the
/// test to read.
#[derive(Clone, Default)]
pub struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLog {
    /// What was written so far.
    pub fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        String::from_utf8(bytes).expect("the log is UTF-8")
    }
}

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLog {
    type Writer = CapturedLog;
    fn make_writer(&'a self) -> CapturedLog {
        self.clone()
    }
}

/// The resident set of this process, in bytes (from /proc/self/status).
pub fn resident_set_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line");
    kib * 1024
}
