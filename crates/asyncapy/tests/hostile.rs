//! The hostile-network suite: corrupted frames, slow and vanished peers,
//! connection floods, failing handlers. Every test talks only to 127.0.0.1,
//! is bounded in count and time, and the tests of this file run one at a time
//! (they measure latency and CPU, so they must not load each other).

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use asyncapy::asyncaproto::{Encoding, ErrorCode, FrameCodec, Value};
use asyncapy::{Client, Config, Packet, Server};
use bytes::BytesMut;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// One hostile test at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// No log in this file: its tests measure memory and CPU, and tens of
/// thousands of deliberate failures would fill the harness's log capture.
fn quiet_log() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::OFF)
        .try_init();
}

/// A small deterministic PRNG (xorshift64*): reproducible corruption.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A valid frame, then one of the corruptions the suite promises.
fn corrupted_frame(rng: &mut Rng, codec: &FrameCodec) -> Vec<u8> {
    let encoding = if rng.below(2) == 0 {
        Encoding::Json
    } else {
        Encoding::ZiProto
    };
    let mut payload = asyncapy::asyncaproto::Map::new();
    for i in 0..rng.below(20) {
        payload.insert(format!("k{i}"), Value::from(rng.next() as i64));
    }
    payload.insert("s", Value::from("x".repeat(rng.below(300))));
    let mut frame = BytesMut::new();
    codec.write_frame(encoding, &payload, &mut frame).unwrap();
    let mut bytes = frame.to_vec();
    match rng.below(7) {
        0 => {
            // Bit flips anywhere.
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
        }
        1 => bytes.truncate(rng.below(bytes.len())), // truncation
        2 => {
            // A wrong length, shorter or longer than the body.
            let delta = rng.below(64) as i64 - 32;
            let len = (bytes.len() as i64 - 4 + delta).max(0) as u32;
            bytes[..4].copy_from_slice(&len.to_be_bytes());
        }
        3 => {
            // A wrong Protocol-Version or Content-Encoding.
            let i = 4 + rng.below(2);
            bytes[i] = rng.next() as u8;
        }
        6 => {
            // A declared length over the maximum packet size.
            let len = (8 << 20) + 1 + rng.below(u32::MAX as usize - (8 << 20)) as u32;
            bytes[..4].copy_from_slice(&len.to_be_bytes());
        }
        4 => {
            // Garbage.
            bytes = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
        }
        _ => {
            // Garbage after a valid frame.
            bytes.extend((0..1 + rng.below(50)).map(|_| rng.next() as u8));
        }
    }
    bytes
}

/// What the server owes a connection that sent these bytes and then waits
/// (PROTOCOL.md §1, §7, worked out from the bytes alone): an echo for each
/// complete valid frame, then one failure reply, then the close.
#[derive(Debug, PartialEq)]
enum Owed {
    /// The request's payload back, in the session's encoding.
    Echo(asyncapy::asyncaproto::Map),
    /// A failure reply for a complete bad frame (or a bad head), at once.
    Failure(ErrorCode, Encoding),
    /// `ERR_TIMED_OUT` at the timeout: the bytes end short of a whole frame
    /// (or at a frame boundary, and the client sends nothing more).
    TimedOut(Encoding),
}

fn owed(mut bytes: &[u8]) -> Vec<Owed> {
    const MAX: u64 = asyncapy::asyncaproto::frame::DEFAULT_MAX_PACKET_SIZE;
    let mut owed = Vec::new();
    let mut session: Option<Encoding> = None;
    loop {
        let timed_out = Owed::TimedOut(session.unwrap_or(Encoding::Json));
        let Some(field) = bytes.get(..4) else {
            owed.push(timed_out);
            return owed;
        };
        let length = u64::from(u32::from_be_bytes([field[0], field[1], field[2], field[3]]));
        // A Content-Length below 2 ends before its own headers: refused as
        // soon as the field is in.
        if length < 2 {
            owed.push(Owed::Failure(ErrorCode::HeaderInvalid, Encoding::Json));
            return owed;
        }
        let Some(head) = bytes.get(..6) else {
            owed.push(timed_out);
            return owed;
        };
        let encoding = match (head[4], head[5]) {
            (22, 0) => Encoding::Json,
            (22, 1) => Encoding::ZiProto,
            _ => {
                owed.push(Owed::Failure(ErrorCode::HeaderInvalid, Encoding::Json));
                return owed;
            }
        };
        if length > MAX {
            owed.push(Owed::Failure(ErrorCode::PacketTooLarge, encoding));
            return owed;
        }
        let Some(payload) = bytes.get(6..4 + length as usize) else {
            owed.push(timed_out);
            return owed;
        };
        session.get_or_insert(encoding);
        match encoding.decode(payload) {
            Ok(map) => owed.push(Owed::Echo(map)),
            Err(_) => {
                owed.push(Owed::Failure(ErrorCode::RequestMalformed, encoding));
                return owed;
            }
        }
        bytes = &bytes[4 + length as usize..];
    }
}

/// Sends `bytes`, keeps the connection open, and reads until the server
/// closes it. Every frame received must be well formed; returns what came,
/// each with when it came, and when the close came.
async fn send_and_read_to_close(
    addr: std::net::SocketAddr,
    bytes: &[u8],
) -> (Vec<(Encoding, asyncapy::asyncaproto::Map)>, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(bytes).await;
    let codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    let mut replies = Vec::new();
    loop {
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        while let Some(frame) = codec
            .decode_frame(&mut buf)
            .expect("well-formed reply frames")
        {
            let map = frame
                .encoding
                .decode(&frame.payload)
                .expect("well-formed reply payloads");
            replies.push((frame.encoding, map));
        }
    }
    assert!(buf.is_empty(), "the server never closes inside a frame");
    (replies, started.elapsed())
}

/// Checks what one connection got against what it was owed.
fn assert_paid(i: usize, owed: &[Owed], got: &[(Encoding, asyncapy::asyncaproto::Map)]) {
    assert_eq!(
        got.len(),
        owed.len(),
        "frame {i}: owed {owed:?}, got {got:?} (never a bare close)"
    );
    let session = got.first().map(|(encoding, _)| *encoding);
    for (owed, (encoding, map)) in owed.iter().zip(got) {
        match owed {
            Owed::Echo(request) => {
                assert_eq!(map, request, "frame {i}: the echo");
                assert_eq!(
                    Some(*encoding),
                    session,
                    "frame {i}: the session's encoding"
                );
            }
            Owed::Failure(_, want) | Owed::TimedOut(want) => {
                let code = match owed {
                    Owed::Failure(code, _) => *code,
                    _ => ErrorCode::TimedOut,
                };
                assert_eq!(ErrorCode::from_map(map), Some(code), "frame {i}: {map:?}");
                assert_eq!(encoding, want, "frame {i}: the encoding of {code}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_corrupted_frames_over_a_hundred_connections() {
    let _serial = SERIAL.lock().await;
    quiet_log();
    // A complete frame, good or bad, is answered at once; a frame still short
    // of its bytes waits for the timeout. Answers "at once" must come within
    // half the timeout, so the two can never be mistaken for each other; a
    // timeout must come no earlier than the timeout and no more than 0.5 s
    // after it (this machine runs 100 connections and the test on 2 cores).
    let timeout = Duration::from_secs(1);
    let late = Duration::from_millis(500);
    let running = start_echo(Config {
        timeout,
        ..test_config()
    })
    .await;
    let addr = running.local_addr();
    let codec = FrameCodec::default();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let frames: Vec<Vec<u8>> = (0..1000)
        .map(|_| corrupted_frame(&mut rng, &codec))
        .collect();
    let owed: Vec<Vec<Owed>> = frames.iter().map(|f| owed(f)).collect();
    // The corruptions reach every outcome.
    type Outcome = (&'static str, fn(&Owed) -> bool);
    let outcomes: [Outcome; 5] = [
        ("an echo", |o: &Owed| matches!(o, Owed::Echo(_))),
        ("ERR_HEADER_INVALID", |o: &Owed| {
            matches!(o, Owed::Failure(ErrorCode::HeaderInvalid, _))
        }),
        ("ERR_PACKET_TOO_LARGE", |o: &Owed| {
            matches!(o, Owed::Failure(ErrorCode::PacketTooLarge, _))
        }),
        ("ERR_REQUEST_MALFORMED", |o: &Owed| {
            matches!(o, Owed::Failure(ErrorCode::RequestMalformed, _))
        }),
        ("ERR_TIMED_OUT", |o: &Owed| matches!(o, Owed::TimedOut(_))),
    ];
    for (what, kind) in outcomes {
        let count = owed.iter().filter(|o| o.iter().any(kind)).count();
        assert!(count >= 20, "only {count} frames are owed {what}");
    }
    let (frames, owed) = (Arc::new(frames), Arc::new(owed));
    let mut workers = Vec::new();
    for w in 0..100 {
        let (frames, owed) = (frames.clone(), owed.clone());
        workers.push(tokio::spawn(async move {
            for i in (w..1000).step_by(100) {
                let (got, closed_after) = tokio::time::timeout(
                    timeout + Duration::from_secs(5),
                    send_and_read_to_close(addr, &frames[i]),
                )
                .await
                .unwrap_or_else(|_| panic!("frame {i}: the server never closed"));
                assert_paid(i, &owed[i], &got);
                if matches!(owed[i].last(), Some(Owed::TimedOut(_))) {
                    assert!(
                        closed_after >= timeout && closed_after < timeout + late,
                        "frame {i}: ERR_TIMED_OUT and the close after {closed_after:?}"
                    );
                } else {
                    assert!(
                        closed_after < timeout / 2,
                        "frame {i}: answered and closed after {closed_after:?}"
                    );
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    assert_still_serving(addr).await;
    let handle = running.handle();
    wait_until("every session has ended", || handle.session_count() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_tricklers_are_cut_off_and_others_are_served_quickly() {
    let _serial = SERIAL.lock().await;
    quiet_log();
    let timeout = Duration::from_secs(3);
    let running = start_echo(Config {
        timeout,
        ..test_config()
    })
    .await;
    let addr = running.local_addr();
    let mut tricklers = Vec::new();
    for _ in 0..500 {
        tricklers.push(tokio::spawn(async move {
            let mut client = RawClient::connect(addr).await;
            let started = Instant::now();
            // A frame that would need 100 bytes, one byte a second.
            let _ = client.stream.write_all(b"\x00\x00\x00\x64\x16\x00{").await;
            let mut buf = [0u8; 256];
            loop {
                tokio::select! {
                    read = client.stream.read(&mut buf) => {
                        let n = read.unwrap_or(0);
                        assert!(n > 0, "the trickler got its ERR_TIMED_OUT before the close");
                        let reply = &buf[..n];
                        assert!(
                            String::from_utf8_lossy(reply).contains("ERR_TIMED_OUT"),
                            "{reply:?}"
                        );
                        return started.elapsed();
                    }
                    () = tokio::time::sleep(Duration::from_secs(1)) => {
                        let _ = client.stream.write_all(b" ").await;
                    }
                }
            }
        }));
    }
    // Meanwhile, a normal client.
    let mut client = RawClient::connect(addr).await;
    let ping = map(&[("ping", Value::from(1))]);
    let mut latencies = Vec::new();
    let until = Instant::now() + timeout + Duration::from_secs(1);
    while Instant::now() < until {
        let started = Instant::now();
        client.request(Encoding::Json, &ping).await;
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    assert!(p99 < Duration::from_millis(50), "normal client p99 {p99:?}");
    for trickler in tricklers {
        let cut_after = trickler.await.unwrap();
        // The cut comes at the timeout: no earlier (less 0.1 s, as the
        // server's clock starts at its accept, before the trickler's), and at
        // most 0.5 s later, with 500 tricklers cut at once on 2 cores.
        assert!(
            cut_after >= timeout - Duration::from_millis(100)
                && cut_after < timeout + Duration::from_millis(500),
            "cut off after {cut_after:?}"
        );
    }
}

/// Process CPU time (user + system) so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap().split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // 100 ticks per second on Linux
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_closed_and_reset_peers_are_released_promptly_without_spinning() {
    let _serial = SERIAL.lock().await;
    quiet_log();
    let running = start_echo(Config {
        timeout: Duration::from_secs(30),
        ..test_config()
    })
    .await;
    let addr = running.local_addr();
    let handle = running.handle();
    let big = map(&[("blob", Value::from("b".repeat(4 << 20)))]);
    let codec = FrameCodec::default();
    let mut big_frame = BytesMut::new();
    codec
        .write_frame(Encoding::Json, &big, &mut big_frame)
        .unwrap();
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("half-close mid-head", b"\x00\x00\x00".to_vec(), false),
        (
            "half-close mid-body",
            b"\x00\x00\x00\x64\x16\x00{\"a\":".to_vec(),
            false,
        ),
        ("reset mid-head", b"\x00\x00".to_vec(), true),
        (
            "reset mid-body",
            b"\x00\x00\x00\x64\x16\x00{".to_vec(),
            true,
        ),
        ("reset mid-reply", big_frame.to_vec(), true),
        ("close mid-reply", big_frame.to_vec(), false),
    ];
    for (name, bytes, reset) in cases {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        if name.contains("mid-reply") {
            // Read the start of the 4 MB reply, then go away with the rest unread.
            let mut start = [0u8; 1024];
            stream.read_exact(&mut start).await.unwrap();
        }
        // The session exists.
        let deadline = Instant::now() + Duration::from_secs(5);
        while handle.session_count() == 0 && Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        if reset {
            // SO_LINGER 0: close sends a RST.
            stream.set_zero_linger().unwrap();
            drop(stream);
        } else if name.contains("mid-reply") {
            drop(stream);
        } else {
            stream.shutdown().await.unwrap();
            // Keep the socket but never read: the server sees EOF on input.
            std::mem::forget(stream.into_std());
        }
        let closed_at = Instant::now();
        while handle.session_count() > 0 {
            assert!(
                closed_at.elapsed() < Duration::from_millis(100),
                "{name}: the session was not released within 100 ms"
            );
            tokio::task::yield_now().await;
        }
    }
    // Nothing spins afterwards: a second of almost no CPU.
    let before = cpu_time();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = cpu_time() - before;
    assert!(
        used < Duration::from_millis(100),
        "{used:?} of CPU while idle"
    );
    assert_still_serving(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_simultaneous_one_request_connections() {
    let _serial = SERIAL.lock().await;
    quiet_log();
    let running = start_echo(test_config()).await;
    let addr = running.local_addr();
    let mut clients = Vec::new();
    for i in 0..2000i64 {
        clients.push(tokio::spawn(async move {
            let mut client = RawClient::connect(addr).await;
            let m = map(&[("i", Value::from(i))]);
            let (_, reply) = client.request(Encoding::ZiProto, &m).await;
            assert_eq!(reply, m);
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_refuses_the_one_over_it() {
    let _serial = SERIAL.lock().await;
    quiet_log();
    let cap = 200;
    let running = start_echo(Config {
        max_connections: cap,
        ..test_config()
    })
    .await;
    let addr = running.local_addr();
    let ping = map(&[("p", Value::Null)]);
    let mut held = Vec::new();
    for _ in 0..cap {
        let mut client = RawClient::connect(addr).await;
        client.request(Encoding::Json, &ping).await;
        held.push(client);
    }
    let mut extra = RawClient::connect(addr).await;
    extra
        .expect_failure_then_close(ErrorCode::ServerBusy, Encoding::Json)
        .await;
    // Everyone already in is still served.
    for client in held.iter_mut().take(10) {
        client.request(Encoding::Json, &ping).await;
    }
}

async fn median_latency(addr: std::net::SocketAddr) -> Duration {
    let mut client = RawClient::connect(addr).await;
    let m = map(&[("ok", Value::from(1))]);
    let mut samples = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        client.request(Encoding::Json, &m).await;
        samples.push(started.elapsed());
    }
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_and_timed_out_handlers_leave_nothing_behind() {
    let _serial = SERIAL.lock().await;
    quiet_log();
    // Silence only the deliberate panics.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|m| m.starts_with("deliberate"))
        {
            default_hook(info);
        }
    }));
    let mut server = Server::new(Config {
        timeout: Duration::from_millis(200),
        ..test_config()
    });
    server.add_handler(|c: Client, p: Packet| async move {
        if p.contains_key("panic") {
            panic!("deliberate");
        }
        if p.contains_key("hang") {
            std::future::pending::<()>().await;
        }
        c.send(&p).await
    });
    let running = server.bind().await.unwrap();
    let addr = running.local_addr();
    let handle = running.handle();
    let baseline_latency = median_latency(addr).await;

    async fn hit(addr: std::net::SocketAddr, key: &'static str, code: ErrorCode) {
        let mut client = RawClient::connect(addr).await;
        client
            .send(Encoding::Json, &map(&[(key, Value::Null)]))
            .await;
        client.expect_failure_then_close(code, Encoding::Json).await;
    }
    // Both kinds of request, in batches of 100 at a time: the same load as the
    // measured rounds below.
    async fn round(addr: std::net::SocketAddr, panics: usize, hangs: usize) {
        let mut batch = Vec::new();
        for i in 0..panics + hangs {
            let (key, code) = if i < panics {
                ("panic", ErrorCode::HandlerFailed)
            } else {
                ("hang", ErrorCode::TimedOut)
            };
            batch.push(tokio::spawn(hit(addr, key, code)));
            if batch.len() == 100 || i + 1 == panics + hangs {
                for task in batch.drain(..) {
                    task.await.unwrap();
                }
            }
        }
    }
    // Warm up the allocator with the same load, so that the baseline already
    // holds what a peak of 100 concurrent sessions needs; then measure.
    round(addr, 2_000, 200).await;
    let rss_before = resident_set_bytes();
    round(addr, 10_000, 1_000).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while handle.session_count() > 0 && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    assert_eq!(handle.session_count(), 0, "the session registry is empty");
    let grown = resident_set_bytes().saturating_sub(rss_before);
    println!("RSS growth over 10,000 panics and 1,000 timeouts: {grown} bytes");
    assert!(grown < 5 << 20, "memory grew by {grown} bytes");
    // At most twice the median before, plus 0.2 ms: the medians are about
    // 0.1 ms, where a shared 2-core machine's scheduling noise alone can
    // double one (RELIABILITY.md states this bound).
    let latency = median_latency(addr).await;
    assert!(
        latency < baseline_latency * 2 + Duration::from_micros(200),
        "latency {latency:?} against {baseline_latency:?} before"
    );
}
