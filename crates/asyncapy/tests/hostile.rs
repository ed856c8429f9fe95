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
    match rng.below(6) {
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

/// Sends `bytes`, half-closes, and reads until the server closes. Every frame
/// received must be well formed; returns how many came.
async fn send_and_drain(addr: std::net::SocketAddr, bytes: &[u8]) -> usize {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(bytes).await;
    let _ = stream.shutdown().await;
    let codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    let mut frames = 0;
    loop {
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        while let Some(frame) = codec
            .decode_frame(&mut buf)
            .expect("well-formed reply frames")
        {
            frame
                .encoding
                .decode(&frame.payload)
                .expect("well-formed reply payloads");
            frames += 1;
        }
    }
    assert!(buf.is_empty(), "the server never closes inside a frame");
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_corrupted_frames_over_a_hundred_connections() {
    let _serial = SERIAL.lock().await;
    let running = start_echo(Config {
        timeout: Duration::from_secs(5),
        ..test_config()
    })
    .await;
    let addr = running.local_addr();
    let codec = FrameCodec::default();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let frames: Vec<Vec<u8>> = (0..1000)
        .map(|_| corrupted_frame(&mut rng, &codec))
        .collect();
    let frames = Arc::new(frames);
    let mut workers = Vec::new();
    for w in 0..100 {
        let frames = frames.clone();
        workers.push(tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            for i in (w..1000).step_by(100) {
                let started = Instant::now();
                tokio::time::timeout(Duration::from_secs(1), send_and_drain(addr, &frames[i]))
                    .await
                    .unwrap_or_else(|_| panic!("frame {i} got no answer or close within 1 s"));
                slowest = slowest.max(started.elapsed());
            }
            slowest
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    assert_still_serving(addr).await;
    let handle = running.handle();
    let deadline = Instant::now() + Duration::from_secs(2);
    while handle.session_count() > 0 && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    assert_eq!(handle.session_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_tricklers_are_cut_off_and_others_are_served_quickly() {
    let _serial = SERIAL.lock().await;
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
        assert!(
            cut_after >= timeout - Duration::from_millis(100)
                && cut_after < timeout + Duration::from_secs(2),
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

/// The resident set of this process.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<usize>()
        .unwrap()
        * 1024
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
    let rss_before = rss();
    round(addr, 10_000, 1_000).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while handle.session_count() > 0 && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    assert_eq!(handle.session_count(), 0, "the session registry is empty");
    let grown = rss().saturating_sub(rss_before);
    println!("RSS growth over 10,000 panics and 1,000 timeouts: {grown} bytes");
    assert!(grown < 5 << 20, "memory grew by {grown} bytes");
    let latency = median_latency(addr).await;
    assert!(
        latency < baseline_latency * 2 + Duration::from_micros(200),
        "latency {latency:?} against {baseline_latency:?} before"
    );
}
