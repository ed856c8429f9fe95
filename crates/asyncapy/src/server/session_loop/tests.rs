//! The session loop's tests: real sockets on loopback, and a transport that counts writes.

use super::*;
use crate::dispatch::Dispatcher;
use crate::session::Registry;
use asyncaproto::{FrameCodec, Map, Value};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// A session's connection to an echo server with `buf` as its first read
/// size, and the client end.
async fn echo_connection(buf: usize) -> (SessionLoop<TcpStream>, TcpStream) {
    connection(
        buf,
        |c: Client, p: Packet| async move { c.send(&p).await },
        |s| s,
    )
    .await
}

/// A session's connection to a server whose one handler is `handler`,
/// over the transport `wrap` makes of the accepted socket, and the
/// client end.
async fn connection<H, T>(
    buf: usize,
    handler: H,
    wrap: impl FnOnce(TcpStream) -> T,
) -> (SessionLoop<T>, TcpStream)
where
    H: crate::Handler<(Client, Packet)>,
    T: Transport,
{
    let mut dispatcher = Dispatcher::default();
    dispatcher.add("handler".to_owned(), crate::dispatch::erase(handler));
    dispatcher.freeze();
    let registry = Arc::new(Registry::new(0));
    let shutdown = Arc::new(crate::server::Shutdown::new(registry.clone()));
    let config = crate::Config {
        buf,
        ..crate::Config::default()
    };
    let ctx = Arc::new(ServerContext::for_tests(
        config,
        dispatcher,
        shutdown.clone(),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (stream, peer) = listener.accept().await.unwrap();
    let state = Arc::new(SessionState::new(peer, ctx.codec, registry.clone()));
    let registered = shutdown.register(state.clone()).ok().unwrap();
    let permit = ctx.permits.clone().try_acquire_owned().unwrap();
    let connection = SessionLoop::new(
        ctx,
        state,
        wrap(stream),
        registered,
        BytesMut::new(),
        permit,
    );
    (connection, client)
}

/// A TCP stream that counts its writes.
struct Counting {
    inner: TcpStream,
    writes: Arc<std::sync::atomic::AtomicUsize>,
}

impl Counting {
    fn count(&self, written: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(_)) = written {
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl tokio::io::AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.count(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.count(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Transport for Counting {}

/// Serves `packets` pipelined packets in one batch to an echo handler
/// that waits for another task's answer (corking the session first if
/// `cork`); returns how many writes the replies took.
async fn writes_for_a_pipelined_batch(cork: bool, packets: usize) -> usize {
    let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = writes.clone();
    let handler = move |c: Client, p: Packet| async move {
        if cork {
            c.cork();
        }
        // Answered by another task, which (on one thread) runs only once
        // the session task waits.
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _ = tx.send(());
        });
        let _ = rx.await;
        c.send(&p).await
    };
    let (mut connection, mut client) = connection(1024, handler, move |inner| Counting {
        inner,
        writes: counter,
    })
    .await;
    let one = frame(16);
    let mut batch = BytesMut::new();
    for _ in 0..packets {
        batch.extend_from_slice(&one);
    }
    client.write_all(&batch).await.unwrap();
    read_all(&mut connection, &batch).await;
    assert_eq!(connection.process().await, None, "the session goes on");
    let mut replies = vec![0u8; batch.len()];
    client.read_exact(&mut replies).await.unwrap();
    assert_eq!(replies, batch[..], "every packet is echoed, in order");
    writes.load(std::sync::atomic::Ordering::Relaxed)
}

#[tokio::test(flavor = "current_thread")]
async fn a_corked_handler_s_pipelined_replies_leave_in_one_write() {
    assert_eq!(writes_for_a_pipelined_batch(true, 16).await, 1);
    // Without the cork, a reply is written while the next packet waits.
    assert_eq!(writes_for_a_pipelined_batch(false, 16).await, 16);
}

/// A connection whose handler sends `first`, corks the session, hands
/// its client over `handed` and waits for `gate` before it returns.
async fn corked_and_waiting(
    first: usize,
) -> (
    tokio::task::JoinHandle<Option<End>>,
    TcpStream,
    Client,
    tokio::sync::oneshot::Sender<()>,
) {
    let (handed_tx, handed_rx) = tokio::sync::oneshot::channel::<Client>();
    let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
    let handed = std::sync::Mutex::new(Some((handed_tx, gate_rx)));
    let handed = Arc::new(handed);
    let handler = move |c: Client, _p: Packet| {
        let handed = handed.lock().unwrap().take();
        async move {
            let (handed_tx, gate_rx) = handed.expect("one packet");
            c.send(&Map::from_iter([("first", Value::from("f".repeat(first)))]))
                .await?;
            c.cork();
            let _ = handed_tx.send(c.clone());
            let _ = gate_rx.await;
            Ok::<(), crate::SendError>(())
        }
    };
    let (mut connection, mut client) = connection(1024, handler, |s| s).await;
    let one = frame(16);
    client.write_all(&one).await.unwrap();
    read_all(&mut connection, &one).await;
    let processing = tokio::spawn(async move { connection.process().await });
    let handle = handed_rx.await.unwrap();
    (processing, client, handle, gate_tx)
}

/// Reads one frame's bytes from `client` (the payload's length: 4-byte
/// big-endian head).
async fn read_frame(client: &mut TcpStream) -> Vec<u8> {
    let mut head = [0u8; 4];
    client.read_exact(&mut head).await.unwrap();
    let mut rest = vec![0u8; u32::from_be_bytes(head) as usize];
    client.read_exact(&mut rest).await.unwrap();
    rest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncork_writes_what_a_waiting_handler_sent_at_once() {
    let (processing, mut client, handle, gate) = corked_and_waiting(10).await;
    handle.uncork();
    // The handler still waits: the reply comes from the lifted cork.
    let reply = read_frame(&mut client).await;
    assert_eq!(reply[2..], br#"{"first": "ffffffffff"}"#[..]);
    assert!(!processing.is_finished());
    gate.send(()).unwrap();
    assert_eq!(processing.await.unwrap(), None);
}

#[tokio::test(flavor = "current_thread")]
async fn what_a_cork_held_is_written_while_a_later_handler_waits_uncorked() {
    // Packet 1 corks, sends and waits for another task; packet 2 does not
    // cork, and waits for the test, which reads packet 1's reply first.
    let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
    let gate = Arc::new(std::sync::Mutex::new(Some(gate_rx)));
    let handler = move |c: Client, p: Packet| {
        let gate = gate.clone();
        async move {
            if p.map().get("blob").is_some() {
                c.cork();
                c.send(&p).await?;
                let (tx, rx) = tokio::sync::oneshot::channel();
                tokio::spawn(async move {
                    let _ = tx.send(());
                });
                let _ = rx.await;
            } else {
                let gate = gate.lock().unwrap().take();
                if let Some(gate) = gate {
                    let _ = gate.await;
                }
            }
            Ok::<(), crate::SendError>(())
        }
    };
    let (mut connection, mut client) = connection(1024, handler, |s| s).await;
    let mut batch = frame(16);
    FrameCodec::default()
        .write_frame(
            Encoding::Json,
            &Map::from_iter([("wait", Value::from(true))]),
            &mut batch,
        )
        .unwrap();
    client.write_all(&batch).await.unwrap();
    read_all(&mut connection, &batch).await;
    let processing = tokio::spawn(async move { connection.process().await });
    let reply = tokio::time::timeout(Duration::from_secs(10), read_frame(&mut client))
        .await
        .expect("the held reply is written while packet 2 waits");
    assert_eq!(reply.len(), frame(16).len() - 4);
    assert!(!processing.is_finished());
    gate_tx.send(()).unwrap();
    assert_eq!(processing.await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cork_holds_back_no_more_than_64_kib() {
    let (processing, mut client, _handle, gate) = corked_and_waiting(CORK_LIMIT).await;
    // Never uncorked: the reply is over the limit, so it is written anyway.
    let reply = read_frame(&mut client).await;
    assert!(reply.len() > CORK_LIMIT);
    assert!(!processing.is_finished());
    gate.send(()).unwrap();
    assert_eq!(processing.await.unwrap(), None);
}

fn frame(payload_bytes: usize) -> BytesMut {
    let map = Map::from_iter([("blob", Value::from("b".repeat(payload_bytes)))]);
    let mut frame = BytesMut::new();
    FrameCodec::default()
        .write_frame(Encoding::Json, &map, &mut frame)
        .unwrap();
    frame
}

/// Reads `frame`'s bytes as the session loop does, one wait at a time,
/// checking how the room given to reads grows; returns the largest.
async fn read_all<T: Transport>(connection: &mut SessionLoop<T>, frame: &[u8]) -> usize {
    let mut largest = connection.read_size;
    let first_room = (connection.rbuf.capacity() == 0).then_some(connection.read_size);
    while connection.rbuf.len() < frame.len() {
        let before = connection.read_size;
        let Wake::Input(Ok(n)) = connection.wait().await else {
            panic!("expected input");
        };
        assert!(n > 0);
        if let Some(room) = first_room.filter(|_| connection.rbuf.len() == n) {
            // The buffer is made on the first read, `buf` bytes large.
            assert!(n <= room, "a first read of {n} bytes with buf = {room}");
        }
        let expected = if n >= before {
            (before * 2).min(MAX_READ_SIZE)
        } else {
            before
        };
        assert_eq!(connection.read_size, expected, "after a read of {n} bytes");
        largest = largest.max(connection.read_size);
    }
    largest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_room_doubles_up_to_128_kib_and_a_large_buffer_is_released_once_emptied() {
    let (mut connection, mut client) = echo_connection(1024).await;
    let big = frame(1 << 20);
    let expected_reply = big.clone();
    // The peer writes a 1 MiB packet and reads its echo.
    let peer = tokio::spawn(async move {
        client.write_all(&big).await.unwrap();
        let mut reply = vec![0u8; expected_reply.len()];
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply, expected_reply[..]);
        client
    });
    assert_eq!(connection.read_size, 1024);
    let largest = read_all(&mut connection, &frame(1 << 20)).await;
    assert_eq!(largest, MAX_READ_SIZE, "the room grew to 128 KiB");
    assert!(connection.rbuf.capacity() > KEEP_BUFFER_UP_TO);
    assert_eq!(connection.process().await, None, "the session goes on");
    assert_eq!(
        connection.rbuf.capacity(),
        0,
        "an emptied buffer over 256 KiB is released"
    );
    assert_eq!(connection.wbuf.capacity(), 0, "so is the write buffer");
    let mut client = peer.await.unwrap();

    // A small packet afterwards: the buffer it needs is kept.
    let small = frame(100);
    client.write_all(&small).await.unwrap();
    read_all(&mut connection, &small).await;
    assert_eq!(connection.process().await, None);
    assert!(connection.rbuf.is_empty());
    assert!(
        connection.rbuf.capacity() > 0 && connection.rbuf.capacity() <= KEEP_BUFFER_UP_TO,
        "a small buffer is kept ({} bytes)",
        connection.rbuf.capacity()
    );
}

/// Reads until `len` bytes are buffered, checking after each read that it
/// fell short of the room it had (so the reactor saw the socket drained,
/// and no read that finds nothing follows).
async fn read_short_of_the_room(connection: &mut SessionLoop<TcpStream>, len: usize) {
    while connection.rbuf.len() < len {
        let Wake::Input(Ok(n)) = connection.wait().await else {
            panic!("expected input");
        };
        assert!(n > 0);
        assert!(
            connection.rbuf.len() < connection.rbuf.capacity(),
            "a read of {n} bytes filled the buffer ({} of {})",
            connection.rbuf.len(),
            connection.rbuf.capacity()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_packet_is_read_into_more_room_than_it_needs_and_its_buffer_is_reused() {
    let (mut connection, mut client) = echo_connection(8192).await;
    let big = frame(64 * 1024);
    // The first part of the frame, then (once the session has seen it) the rest.
    let (head, rest) = big.split_at(8192);
    client.write_all(head).await.unwrap();
    while connection.rbuf.len() < head.len() {
        let Wake::Input(Ok(_)) = connection.wait().await else {
            panic!("expected input");
        };
    }
    assert_eq!(connection.process().await, None);
    let missing = big.len() - connection.rbuf.len();
    assert!(
        connection.rbuf.capacity() - connection.rbuf.len() > missing,
        "room for the rest of the frame and more"
    );
    client.write_all(rest).await.unwrap();
    read_short_of_the_room(&mut connection, big.len()).await;
    assert_eq!(connection.process().await, None);
    let mut reply = vec![0u8; big.len()];
    client.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply, big[..]);
    // Emptied, the buffer shows its whole allocation again: the next packet
    // is read into it, not onto the stack. Once the room given to reads has
    // settled (it doubles while reads fill it), packet after packet is read
    // into the same allocation.
    let mut kept = Vec::new();
    for _ in 0..8 {
        assert!(connection.rbuf.is_empty());
        let capacity = connection.rbuf.capacity();
        assert!(
            capacity > big.len() && capacity <= KEEP_BUFFER_UP_TO,
            "{capacity} bytes kept"
        );
        kept.push(capacity);
        client.write_all(&big).await.unwrap();
        read_short_of_the_room(&mut connection, big.len()).await;
        assert_eq!(connection.process().await, None);
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply, big[..]);
    }
    assert!(
        kept[4..].iter().all(|&c| c == kept[4]),
        "the same allocation: {kept:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_packet_that_trickles_in_is_not_copied_at_every_read() {
    let (mut connection, mut client) = echo_connection(1024).await;
    let big = frame(1 << 20);
    // The first 300 KiB of a 1 MiB packet, 1 KiB a write, each read and
    // handled by the session before the next is sent.
    let mut buffers = 0;
    let mut last = std::ptr::null();
    for piece in big[..300 * 1024].chunks(1024) {
        client.write_all(piece).await.unwrap();
        let want = connection.rbuf.len() + piece.len();
        while connection.rbuf.len() < want {
            let Wake::Input(Ok(_)) = connection.wait().await else {
                panic!("expected input");
            };
        }
        assert_eq!(connection.process().await, None);
        if connection.rbuf.as_ptr() != last {
            buffers += 1;
            last = connection.rbuf.as_ptr();
        }
    }
    assert_eq!(connection.rbuf.len(), 300 * 1024, "every byte kept");
    assert_eq!(&connection.rbuf[..], &big[..300 * 1024]);
    assert!(buffers <= 12, "{buffers} buffers for 300 one-KiB reads");
}
