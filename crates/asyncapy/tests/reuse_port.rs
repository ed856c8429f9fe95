//! `reuse_port`: a new server binds the address of one still running, and a
//! rolling restart (start the new one, drain the old one) loses no request
//! of a client that resends on `ERR_SHUTTING_DOWN` or a dropped connection.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::net::SocketAddr;

use asyncapy::asyncaproto::{Encoding, ErrorCode, Value};
use asyncapy::{Config, RunningServer, ServerError};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn on(port: u16) -> Config {
    Config {
        port,
        reuse_port: true,
        ..test_config()
    }
}

/// Sends one framed packet and reads one reply; `None` when the connection
/// failed or ended, or the reply was `ERR_SHUTTING_DOWN` (resend elsewhere).
async fn try_request(stream: &mut Option<TcpStream>, addr: SocketAddr, n: i64) -> Option<i64> {
    if stream.is_none() {
        *stream = TcpStream::connect(addr).await.ok();
    }
    let connection = stream.as_mut()?;
    let codec = asyncapy::asyncaproto::FrameCodec::default();
    let mut out = bytes::BytesMut::new();
    codec
        .write_frame(Encoding::Json, &map(&[("n", Value::from(n))]), &mut out)
        .unwrap();
    let mut buf = bytes::BytesMut::new();
    let reply = async {
        connection.write_all(&out).await.ok()?;
        loop {
            if let Some(frame) = codec.decode_frame(&mut buf).ok()? {
                return Some(frame);
            }
            if connection.read_buf(&mut buf).await.ok()? == 0 {
                return None;
            }
        }
    }
    .await;
    let Some(frame) = reply else {
        *stream = None;
        return None;
    };
    let map = frame.encoding.decode(&frame.payload).unwrap();
    if ErrorCode::from_map(&map) == Some(ErrorCode::ShuttingDown) {
        *stream = None;
        return None;
    }
    Some(map["n"].as_i64().unwrap())
}

async fn stop(running: RunningServer) {
    running.handle().shutdown();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_on_one_port_loses_no_request() {
    let old = start_echo(on(0)).await;
    let addr = old.local_addr();
    // Without reuse_port the address is taken.
    let mut plain = asyncapy::Server::new(Config {
        port: addr.port(),
        ..test_config()
    });
    plain.register_handler(echo);
    assert!(matches!(plain.bind().await, Err(ServerError::Bind { .. })));

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let finished = done.clone();
    let client = tokio::spawn(async move {
        let (mut stream, mut resent, mut n) = (None, 0, 0);
        while !finished.load(std::sync::atomic::Ordering::Relaxed) {
            n += 1;
            let mut tries = 0;
            loop {
                match try_request(&mut stream, addr, n).await {
                    Some(echoed) => {
                        assert_eq!(echoed, n, "answered wrongly");
                        break;
                    }
                    None => {
                        tries += 1;
                        resent += 1;
                        assert!(tries < 50, "request {n} never answered");
                        tokio::task::yield_now().await;
                    }
                }
            }
        }
        (n, resent)
    });
    // Restart twice under the client's load: the new one binds beside the
    // old one, then the old one drains.
    let mut current = old;
    for _ in 0..2 {
        let new = start_echo(on(addr.port())).await;
        assert_eq!(new.local_addr(), addr);
        stop(current).await;
        current = new;
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (answered, resent) = within_patience("the client's requests", client)
        .await
        .unwrap();
    assert!(answered > 0);
    println!("{answered} requests answered, {resent} resent");
    stop(current).await;
}
