//! The bounds on a session's writes and on its close, over real sockets: a
//! peer that never reads is cut at the write timeout; after its last reply the
//! server discards a peer's input for at most 1 s or 1 MiB (the lingering
//! close), then drops the connection.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::time::{Duration, Instant};

use asyncapy::asyncaproto::{Encoding, ErrorCode, Value};
use asyncapy::{Client, Config, Packet, Server};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How late past a bound its effect may be seen on this shared 2-core machine.
const SLACK: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_cut_at_the_write_timeout() {
    let timeout = Duration::from_millis(500);
    let mut server = Server::new(Config {
        timeout,
        ..test_config()
    });
    // 16 MiB of replies to one request (binary, so that they cost little to
    // encode): far more than the socket buffers hold, with the peer's receive
    // buffer kept small, so the write waits on a peer that does not read.
    server.add_handler(|c: Client, p: Packet| async move {
        if p.contains_key("flood") {
            let chunk = map(&[("blob", Value::Bin(vec![0; 256 << 10]))]);
            for _ in 0..64 {
                c.send(&chunk).await?;
            }
            return Ok(());
        }
        c.send(&p).await
    });
    let running = server.bind().await.unwrap();
    let handle = running.handle();
    let mut reader = RawClient::connect_small_window(running.local_addr()).await;
    reader
        .send(Encoding::ZiProto, &map(&[("flood", Value::Null)]))
        .await;
    let sent = Instant::now();
    wait_until("the session exists", || handle.session_count() == 1).await;
    // Never read. Others are served meanwhile.
    assert_still_serving(running.local_addr()).await;
    wait_until("the stuck session is dropped", || {
        handle.session_count() == 0
    })
    .await;
    let dropped_after = sent.elapsed();
    assert!(
        dropped_after >= timeout && dropped_after < timeout + SLACK,
        "dropped after {dropped_after:?} (timeout {timeout:?})"
    );
    // What arrived is whole frames, then the connection ends (reset or close)
    // inside the flood: the server gave up on it.
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    let ended = within_patience("the connection ends", async {
        loop {
            match reader.stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received += n,
            }
        }
    });
    ended.await;
    assert!(
        received < 16 << 20,
        "the whole flood arrived ({received} bytes)"
    );
    assert_still_serving(running.local_addr()).await;
}

/// Connects, sends a bad head, and reads the `ERR_HEADER_INVALID` reply and
/// the server's half-close; returns the client with its write side open.
///
/// The client's send buffer is kept small (16 KiB), so that what it manages
/// to write is close to what the server has read: a server that stopped
/// discarding early would break the connection long before 1 MiB is written.
async fn refused(addr: std::net::SocketAddr) -> RawClient {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(16 << 10).unwrap();
    let stream = within_patience("connect", socket.connect(addr))
        .await
        .unwrap();
    let mut client = RawClient::from_stream(stream);
    client.send_raw(b"\x00\x00\x00\x10\x15\x00").await;
    client
        .expect_failure_then_close(ErrorCode::HeaderInvalid, Encoding::Json)
        .await;
    client
}

/// Writes `chunk` again and again until a write fails (the server dropped the
/// connection and the kernel answered with a reset); returns how many bytes
/// were written and how long it took.
async fn write_until_dropped(
    client: &mut RawClient,
    chunk: &[u8],
    pause: Duration,
) -> (usize, Duration) {
    let started = Instant::now();
    let mut written = 0usize;
    within_patience("the server drops the connection", async {
        while client.stream.write_all(chunk).await.is_ok() {
            written += chunk.len();
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    })
    .await;
    (written, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lingering_close_lasts_at_most_one_second() {
    let running = start_echo(test_config()).await; // timeout 60 s
    let mut client = refused(running.local_addr()).await;
    // A little input every 10 ms, far below 1 MiB in a second: only the time
    // bound can end the linger.
    let (written, took) = write_until_dropped(&mut client, b"x", Duration::from_millis(10)).await;
    assert!(written < 1 << 10, "{written} bytes");
    assert!(
        took >= Duration::from_secs(1) - Duration::from_millis(50)
            && took < Duration::from_secs(1) + SLACK,
        "the server lingered {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lingering_close_discards_at_most_one_mebibyte() {
    let running = start_echo(test_config()).await;
    let mut client = refused(running.local_addr()).await;
    // As fast as the socket takes it: the byte bound ends the linger long
    // before its second.
    let (written, took) = write_until_dropped(&mut client, &[b'x'; 64 << 10], Duration::ZERO).await;
    assert!(written >= 1 << 20, "dropped after only {written} bytes");
    assert!(
        took < Duration::from_millis(500),
        "the server lingered {took:?} with {written} bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lingering_close_is_no_longer_than_the_timeout() {
    let timeout = Duration::from_millis(300);
    let running = start_echo(Config {
        timeout,
        ..test_config()
    })
    .await;
    let mut client = refused(running.local_addr()).await;
    let (_, took) = write_until_dropped(&mut client, b"x", Duration::from_millis(10)).await;
    assert!(
        took >= timeout - Duration::from_millis(50) && took < timeout + SLACK,
        "the server lingered {took:?} with a timeout of {timeout:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_timeout_counts_from_when_the_peer_stopped_reading() {
    // A handler sends a first packet (written at once), works for 800 ms,
    // then queues 16 MiB for a peer that has stopped reading. The peer is
    // cut a full timeout after the writes stalled, not a timeout after the
    // first packet went out.
    let timeout = Duration::from_secs(1);
    let mut server = Server::new(Config {
        timeout,
        max_outbox: 32 << 20,
        ..test_config()
    });
    server.add_handler(|c: Client, _p: Packet| async move {
        c.send(map(&[("first", Value::Null)])).await?;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let chunk = map(&[("blob", Value::Bin(vec![0; 256 << 10]))]);
        for _ in 0..64 {
            c.send(&chunk).await?;
        }
        Ok::<(), asyncapy::SendError>(())
    });
    let running = server.bind().await.unwrap();
    let handle = running.handle();
    let mut client = RawClient::connect_small_window(running.local_addr()).await;
    let sent = Instant::now();
    client.send(Encoding::ZiProto, &map(&[])).await;
    let (_, first) = client.read().await;
    assert_eq!(first, map(&[("first", Value::Null)]));
    // Read nothing more.
    wait_until("the stalled session is cut", || handle.session_count() == 0).await;
    let cut_after = sent.elapsed();
    let stalled_at = Duration::from_millis(800);
    assert!(
        cut_after >= stalled_at + timeout - Duration::from_millis(100)
            && cut_after < stalled_at + timeout + SLACK,
        "cut after {cut_after:?}: the writes stalled at about {stalled_at:?}, the timeout is {timeout:?}"
    );
}
