//! The connecting clients, async and blocking, over real sockets: every
//! operation and every failure kind.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use asyncapy::asyncaproto::{ByteOrder, Encoding, ErrorCode, Value};
use asyncapy::client::{AsyncClient, BlockingClient, ClientConfig, ClientError};
use asyncapy::{Client, Config, Packet, Server};
use common::*;

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Point {
    x: i64,
    y: i64,
}

/// A misbehaving peer on 127.0.0.1:0: accepts one connection, reads one
/// request's worth of bytes, writes `reply` and then closes (or holds the
/// connection open until the test ends when `hold` is set).
fn raw_server(reply: &'static [u8], hold: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 64];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(reply);
            if hold {
                // Wait for the client to go away.
                let _ = stream.read(&mut buf);
            }
        }
    });
    addr
}

fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn short() -> ClientConfig {
    ClientConfig::new().timeout(Duration::from_millis(300))
}

#[tokio::test]
async fn async_client_every_operation() {
    let running = start_echo(test_config()).await;
    let port = running.local_addr().port();
    let mut client = AsyncClient::connect_to("127.0.0.1", port, ClientConfig::new())
        .await
        .unwrap();
    // A JSON string, as the original's send(str).
    assert_eq!(client.request(r#"{"test": 1}"#).await.unwrap()["test"], 1);
    // A map, a packet, a serializable value.
    let m = map(&[("a", Value::from("b"))]);
    assert_eq!(client.request(&m).await.unwrap(), m);
    let packet = Packet::new(m.clone(), Encoding::Json);
    assert_eq!(client.request(&packet).await.unwrap(), m);
    client.send_value(&Point { x: 1, y: -2 }).await.unwrap();
    assert_eq!(
        client.receive_as::<Point>().await.unwrap(),
        Point { x: 1, y: -2 }
    );
    // The raw frame, head included, exactly as the server wrote it.
    client.send(r#"{"foo": "bar"}"#).await.unwrap();
    assert_eq!(
        &client.receive_raw().await.unwrap()[..],
        b"\x00\x00\x00\x10\x16\x00{\"foo\": \"bar\"}"
    );
    // Pipelined: 100 sends, then 100 replies in order.
    for i in 0..100i64 {
        client.send(map(&[("i", Value::from(i))])).await.unwrap();
    }
    for i in 0..100i64 {
        assert_eq!(client.receive().await.unwrap()["i"], i);
    }
    client.disconnect().await.unwrap();
    assert!(matches!(
        client.receive().await,
        Err(ClientError::NotConnected)
    ));
}

#[tokio::test]
async fn async_client_ziproto_with_a_two_byte_little_endian_header() {
    let running = start_echo(Config {
        header_size: 2,
        byteorder: ByteOrder::Little,
        ..test_config()
    })
    .await;
    let config = ClientConfig::new()
        .encoding(Encoding::ZiProto)
        .header_size(2)
        .byteorder(ByteOrder::Little);
    let mut client = AsyncClient::connect_to("127.0.0.1", running.local_addr().port(), config)
        .await
        .unwrap();
    let packet = {
        client.send(r#"{"foo": "bar"}"#).await.unwrap();
        client.receive_packet().await.unwrap()
    };
    assert_eq!(packet.encoding(), Encoding::ZiProto);
    assert_eq!(packet["foo"], "bar");
}

#[tokio::test]
async fn async_client_failure_kinds() {
    // A failure reply, with its code.
    let mut server = Server::new(test_config());
    server
        .add_handler(|c: Client, p: Packet| async move { c.send(&p).await })
        .filter(|_: &Client, p: &Packet| p.contains_key("ok"));
    let running = server.bind().await.unwrap();
    let mut client = AsyncClient::connect_to("127.0.0.1", running.local_addr().port(), short())
        .await
        .unwrap();
    let err = client.request(r#"{"nope": 1}"#).await.unwrap_err();
    assert_eq!(err.failure_code(), Some(ErrorCode::NoHandler), "{err}");
    // ...after which the server closed the session.
    assert!(matches!(client.receive().await, Err(ClientError::Closed)));

    // Refused.
    let err = AsyncClient::connect_to("127.0.0.1", refused_port(), short())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::Refused { .. }), "{err}");

    // A server that never answers: timed out.
    let addr = raw_server(b"", true);
    let mut client = AsyncClient::connect_to("127.0.0.1", addr.port(), short())
        .await
        .unwrap();
    let err = client.request(r#"{"a": 1}"#).await.unwrap_err();
    assert!(matches!(err, ClientError::TimedOut(_)), "{err}");

    // A server that closes in the middle of a frame.
    let addr = raw_server(b"\x00\x00\x00\x10\x16\x00{\"fo", false);
    let mut client = AsyncClient::connect_to("127.0.0.1", addr.port(), short())
        .await
        .unwrap();
    let err = client.request(r#"{"a": 1}"#).await.unwrap_err();
    assert!(
        matches!(err, ClientError::ClosedMidFrame { buffered: 10 }),
        "{err}"
    );

    // A server that closes between frames.
    let addr = raw_server(b"", false);
    let mut client = AsyncClient::connect_to("127.0.0.1", addr.port(), short())
        .await
        .unwrap();
    let err = client.request(r#"{"a": 1}"#).await.unwrap_err();
    assert!(matches!(err, ClientError::Closed), "{err}");

    // A malformed frame and a malformed payload.
    let addr = raw_server(b"\x00\x00\x00\x04\x15\x00{}", true);
    let mut client = AsyncClient::connect_to("127.0.0.1", addr.port(), short())
        .await
        .unwrap();
    let err = client.request(r#"{"a": 1}"#).await.unwrap_err();
    assert!(matches!(err, ClientError::Frame(_)), "{err}");
    let addr = raw_server(b"\x00\x00\x00\x05\x16\x00[1]", true);
    let mut client = AsyncClient::connect_to("127.0.0.1", addr.port(), short())
        .await
        .unwrap();
    let err = client.request(r#"{"a": 1}"#).await.unwrap_err();
    assert!(matches!(err, ClientError::Payload(_)), "{err}");

    // Bad input from the caller never reaches the wire.
    let err = client.send("[1, 2]").await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidPayload(_)), "{err}");
    let err = client.send_value(&[1, 2]).await.unwrap_err();
    assert!(matches!(err, ClientError::Value(_)), "{err}");
    let mut idle = AsyncClient::new(ClientConfig::new());
    assert!(matches!(
        idle.send(r#"{}"#).await,
        Err(ClientError::NotConnected)
    ));
}

/// Runs an echo server on its own runtime thread, for the blocking client.
fn echo_in_background(config: Config) -> (SocketAddr, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let running = runtime.block_on(start_echo(config));
    let addr = running.local_addr();
    runtime.spawn(running.wait());
    (addr, runtime)
}

#[test]
fn blocking_client_every_operation() {
    let (addr, _runtime) = echo_in_background(test_config());
    let mut client =
        BlockingClient::connect_to("127.0.0.1", addr.port(), ClientConfig::new()).unwrap();
    assert_eq!(client.request(r#"{"test": 1}"#).unwrap()["test"], 1);
    client.send_value(&Point { x: 3, y: 4 }).unwrap();
    assert_eq!(client.receive_as::<Point>().unwrap(), Point { x: 3, y: 4 });
    client.send(r#"{"foo": "bar"}"#).unwrap();
    assert_eq!(
        &client.receive_raw().unwrap()[..],
        b"\x00\x00\x00\x10\x16\x00{\"foo\": \"bar\"}"
    );
    for i in 0..100i64 {
        client.send(map(&[("i", Value::from(i))])).unwrap();
    }
    for i in 0..100i64 {
        assert_eq!(client.receive().unwrap()["i"], i);
    }
    // A 1 MB payload, in ZiProto.
    let mut zi = BlockingClient::connect_to(
        "127.0.0.1",
        addr.port(),
        ClientConfig::new().encoding(Encoding::ZiProto),
    )
    .unwrap();
    let big = map(&[("blob", Value::from("z".repeat(1 << 20)))]);
    assert_eq!(zi.request(&big).unwrap(), big);
    client.disconnect().unwrap();
    assert!(matches!(client.receive(), Err(ClientError::NotConnected)));
}

#[test]
fn blocking_client_failure_kinds() {
    let err = BlockingClient::connect_to("127.0.0.1", refused_port(), short())
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::Refused { .. }), "{err}");

    let addr = raw_server(b"", true);
    let mut client = BlockingClient::connect_to("127.0.0.1", addr.port(), short()).unwrap();
    let err = client.request(r#"{"a": 1}"#).unwrap_err();
    assert!(matches!(err, ClientError::TimedOut(_)), "{err}");

    let addr = raw_server(b"\x00\x00\x00\x10\x16\x00{\"fo", false);
    let mut client = BlockingClient::connect_to("127.0.0.1", addr.port(), short()).unwrap();
    let err = client.request(r#"{"a": 1}"#).unwrap_err();
    assert!(
        matches!(err, ClientError::ClosedMidFrame { buffered: 10 }),
        "{err}"
    );

    let addr = raw_server(b"", false);
    let mut client = BlockingClient::connect_to("127.0.0.1", addr.port(), short()).unwrap();
    let err = client.request(r#"{"a": 1}"#).unwrap_err();
    assert!(matches!(err, ClientError::Closed), "{err}");

    let addr = raw_server(
        b"\x00\x00\x00\x31\x16\x00{\"status\": \"failure\", \"error\": \"ERR_TIMED_OUT\"}",
        true,
    );
    let mut client = BlockingClient::connect_to("127.0.0.1", addr.port(), short()).unwrap();
    let err = client.request(r#"{"a": 1}"#).unwrap_err();
    assert_eq!(err.failure_code(), Some(ErrorCode::TimedOut), "{err}");
}

/// An echo server whose handler answers a packet with `"slow"` after 700 ms.
async fn slow_echo() -> asyncapy::RunningServer {
    let mut server = Server::new(test_config());
    server.add_handler(|c: Client, p: Packet| async move {
        if p.contains_key("slow") {
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        c.send(&p).await
    });
    server.bind().await.unwrap()
}

#[test]
fn a_blocking_client_that_timed_out_never_returns_the_late_reply() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let running = runtime.block_on(slow_echo());
    let port = running.local_addr().port();
    let mut client = BlockingClient::connect_to("127.0.0.1", port, short()).unwrap();
    let err = client.request(r#"{"slow": 1}"#).unwrap_err();
    assert!(matches!(err, ClientError::TimedOut(_)), "{err}");
    // The connection is gone: the late reply can never be read.
    assert!(!client.is_connected());
    let err = client.request(r#"{"next": 2}"#).unwrap_err();
    assert!(matches!(err, ClientError::NotConnected), "{err}");
    // A new connection: each reply is its request's.
    client.connect("127.0.0.1", port).unwrap();
    for i in 0..3i64 {
        assert_eq!(
            client.request(map(&[("i", Value::from(i))])).unwrap()["i"],
            i
        );
    }
}

#[tokio::test]
async fn an_async_client_that_timed_out_never_returns_the_late_reply() {
    let running = slow_echo().await;
    let port = running.local_addr().port();
    let mut client = AsyncClient::connect_to("127.0.0.1", port, short())
        .await
        .unwrap();
    let err = client.request(r#"{"slow": 1}"#).await.unwrap_err();
    assert!(matches!(err, ClientError::TimedOut(_)), "{err}");
    assert!(!client.is_connected());
    let err = client.request(r#"{"next": 2}"#).await.unwrap_err();
    assert!(matches!(err, ClientError::NotConnected), "{err}");
    client.connect("127.0.0.1", port).await.unwrap();
    for i in 0..3i64 {
        let reply = client.request(map(&[("i", Value::from(i))])).await.unwrap();
        assert_eq!(reply["i"], i);
    }
}
