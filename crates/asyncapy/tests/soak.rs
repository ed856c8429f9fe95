//! The soak test: mixed traffic for a while, then the server must be back where
//! it started (memory, file descriptors, sessions). Ignored by default; run it
//! with a duration (seconds):
//!
//! ```sh
//! SOAK_SECS=600 cargo test --release -p asyncapy --test soak -- --ignored --nocapture
//! ```

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use asyncapy::asyncaproto::{Encoding, Value};
use asyncapy::Config;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run with SOAK_SECS=N cargo test --release --test soak -- --ignored"]
async fn soak() {
    let seconds: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let running = start_echo(Config {
        timeout: Duration::from_secs(2),
        ..test_config()
    })
    .await;
    let addr = running.local_addr();
    let handle = running.handle();
    // Warm up, then take the baseline.
    for _ in 0..200 {
        assert_still_serving(addr).await;
    }
    let (rss0, fds0) = (resident_set_bytes(), open_fds());
    let until = Instant::now() + Duration::from_secs(seconds);
    let requests = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..32u64 {
        let (requests, bad) = (requests.clone(), bad.clone());
        workers.push(tokio::spawn(async move {
            let mut round = 0u64;
            while Instant::now() < until {
                round += 1;
                let encoding = if (w + round).is_multiple_of(2) {
                    Encoding::Json
                } else {
                    Encoding::ZiProto
                };
                match (w + round) % 8 {
                    // A bad frame: a failure reply and a close.
                    0 => {
                        let mut stream = TcpStream::connect(addr).await.unwrap();
                        stream
                            .write_all(b"\x00\x00\x00\x04\x15\x00{}")
                            .await
                            .unwrap();
                        let mut sink = Vec::new();
                        let _ = stream.read_to_end(&mut sink).await;
                        assert!(String::from_utf8_lossy(&sink).contains("ERR_HEADER_INVALID"));
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                    // A client that vanishes mid-frame.
                    1 => {
                        let mut stream = TcpStream::connect(addr).await.unwrap();
                        stream
                            .write_all(b"\x00\x00\x01\x00\x16\x00{\"a\"")
                            .await
                            .unwrap();
                    }
                    // A pipelined session of 50, then a reconnect.
                    _ => {
                        let mut client = RawClient::connect(addr).await;
                        let mut all = Vec::new();
                        for i in 0..50i64 {
                            let m = map(&[("i", Value::from(i)), ("w", Value::from(w))]);
                            all.extend_from_slice(&client.frame_bytes(encoding, &m));
                        }
                        client.send_raw(&all).await;
                        for i in 0..50i64 {
                            let (_, reply) = client.read().await;
                            assert_eq!(reply["i"], i);
                        }
                        requests.fetch_add(50, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while (handle.session_count() > 0 || open_fds() > fds0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (rss1, fds1) = (resident_set_bytes(), open_fds());
    println!(
        "soak: {seconds} s, {} requests, {} bad frames; RSS {} KiB -> {} KiB; fds {fds0} -> {fds1}; sessions {}",
        requests.load(Ordering::Relaxed),
        bad.load(Ordering::Relaxed),
        rss0 / 1024,
        rss1 / 1024,
        handle.session_count()
    );
    assert_eq!(handle.session_count(), 0);
    assert!(fds1 <= fds0, "file descriptors {fds0} -> {fds1}");
    assert!(rss1 < rss0 + (8 << 20), "RSS {rss0} -> {rss1}");
}
