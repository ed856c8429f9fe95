//! The yardstick: the smallest reasonable tokio echo server of AsyncAProto.
//!
//! No framework and no payload decoding: a task per connection reads into a
//! buffer, finds the complete frames with [`FrameCodec::check_head`], copies them
//! into a write buffer, and writes that once per read (so a pipelined batch of
//! requests costs one write). A bad head closes the connection. Benchmarks
//! compare `asyncapy serve` against it to see what the framework costs.
//!
//! ```text
//! cargo run --release -p asyncapy-cli --example yardstick -- --port 0
//! ```
//!
//! It prints `listening on ADDR` once bound.

use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Poll};
use std::time::Duration;

use asyncaproto::{ByteOrder, FrameCodec, FrameConfig};
use bytes::{Buf as _, BytesMut};
use clap::Parser;
use tokio::io::{AsyncRead as _, AsyncReadExt as _, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The size of one read.
const READ_CHUNK: usize = 64 * 1024;

/// The most the first read of a connection takes (on the stack).
const FIRST_READ: usize = 8 * 1024;

/// Below this much free room, the read buffer is topped up to [`READ_CHUNK`].
const MIN_READ_ROOM: usize = 8 * 1024;

/// The pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// A minimal AsyncAProto echo server, the yardstick for `asyncapy serve`.
#[derive(Debug, Parser)]
#[command(name = "yardstick")]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    addr: std::net::IpAddr,
    /// Port to bind (0 picks a free one).
    #[arg(long, default_value_t = 8081)]
    port: u16,
    /// Size of the Content-Length field, 1 to 8 bytes.
    #[arg(long, default_value_t = 4)]
    header_size: u8,
    /// Byte order of the Content-Length field: big or little.
    #[arg(long, default_value = "big")]
    byteorder: ByteOrder,
    /// Runtime worker threads [default: the available parallelism].
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = FrameConfig::new(
        args.header_size,
        args.byteorder,
        asyncaproto::frame::DEFAULT_MAX_PACKET_SIZE,
    )?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(serve(
        SocketAddr::new(args.addr, args.port),
        FrameCodec::new(config),
    ))
}

async fn serve(addr: SocketAddr, codec: FrameCodec) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", listener.local_addr()?)?;
    stdout.flush()?;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(echo(stream, codec));
            }
            Err(e) => {
                eprintln!("accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Echoes every complete frame back until the peer closes or sends a bad head.
async fn echo(mut stream: TcpStream, codec: FrameCodec) {
    let _ = stream.set_nodelay(true);
    // No buffers until there is something to read: an idle connection costs
    // only its socket and this task. The first read lands on the stack of a
    // poll (not in the task) and is copied. (`readable()` would not do: tokio
    // takes a freshly accepted stream to be ready, so it answers at once;
    // only a read really waits.)
    let mut read_buf = BytesMut::new();
    let first = std::future::poll_fn(|cx| {
        let mut stack = [std::mem::MaybeUninit::<u8>::uninit(); FIRST_READ];
        let mut first = ReadBuf::uninit(&mut stack);
        ready!(Pin::new(&mut stream).poll_read(cx, &mut first))?;
        read_buf = BytesMut::with_capacity(READ_CHUNK);
        read_buf.extend_from_slice(first.filled());
        Poll::Ready(std::io::Result::Ok(first.filled().len()))
    })
    .await;
    if !matches!(first, Ok(n) if n > 0) {
        return;
    }
    let mut write_buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        let mut complete = 0;
        loop {
            match codec.check_head(&read_buf[complete..]) {
                Ok(Some((_, total))) if read_buf.len() - complete >= total => complete += total,
                Ok(Some((_, total))) => {
                    let missing = total - (read_buf.len() - complete);
                    read_buf.reserve(missing);
                    break;
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if complete > 0 {
            write_buf.extend_from_slice(&read_buf[..complete]);
            read_buf.advance(complete);
            if stream.write_all(&write_buf).await.is_err() {
                return;
            }
            write_buf.clear();
        }
        if read_buf.capacity() - read_buf.len() < MIN_READ_ROOM {
            read_buf.reserve(READ_CHUNK);
        }
        match stream.read_buf(&mut read_buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
