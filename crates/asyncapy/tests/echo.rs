//! The echo server over real loopback sockets: framing, sessions, and every refusal.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::time::Duration;

use asyncapy::asyncaproto::{ByteOrder, Encoding, ErrorCode, FrameConfig, Map, Value};
use asyncapy::Config;
use common::*;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn echoes_json_and_ziproto_byte_for_byte() {
    let server = start_echo(test_config()).await;
    let addr = server.local_addr();

    let mut json = RawClient::connect(addr).await;
    json.send_raw(b"\x00\x00\x00\x10\x16\x00{\"foo\": \"bar\"}")
        .await;
    let frame = json.read_frame().await.expect("reply");
    assert_eq!(frame.encoding, Encoding::Json);
    assert_eq!(&frame.payload[..], b"{\"foo\": \"bar\"}");

    let mut zi = RawClient::connect(addr).await;
    zi.send_raw(b"\x00\x00\x00\x0b\x16\x01\x81\xa3foo\xa3bar")
        .await;
    let frame = zi.read_frame().await.expect("reply");
    assert_eq!(frame.encoding, Encoding::ZiProto);
    assert_eq!(&frame.payload[..], b"\x81\xa3foo\xa3bar");
}

#[tokio::test]
async fn a_session_carries_many_packets_and_keeps_its_first_encoding() {
    let server = start_echo(test_config()).await;
    let mut client = RawClient::connect(server.local_addr()).await;
    for i in 0..50i64 {
        let m = map(&[("i", Value::from(i)), ("s", Value::from("x"))]);
        let (encoding, reply) = client.request(Encoding::Json, &m).await;
        assert_eq!((encoding, &reply), (Encoding::Json, &m));
    }
    // FAQ 1.3.3: a ZiProto packet in a JSON session is answered in JSON.
    let m = map(&[("zi", Value::from(true))]);
    let (encoding, reply) = client.request(Encoding::ZiProto, &m).await;
    assert_eq!(encoding, Encoding::Json);
    assert_eq!(reply, m);
}

#[tokio::test]
async fn the_empty_map_is_a_valid_payload() {
    let server = start_echo(test_config()).await;
    let mut client = RawClient::connect(server.local_addr()).await;
    client.send_raw(b"\x00\x00\x00\x04\x16\x00{}").await;
    let (_, reply) = client.read().await;
    assert!(reply.is_empty());
    client.send_raw(b"\x00\x00\x00\x03\x16\x01\x80").await;
    let (encoding, reply) = client.read().await;
    assert_eq!(encoding, Encoding::Json, "the session stays JSON");
    assert!(reply.is_empty());
}

#[tokio::test]
async fn a_frame_sent_one_byte_at_a_time() {
    let server = start_echo(test_config()).await;
    let mut client = RawClient::connect(server.local_addr()).await;
    let m = map(&[("test", Value::from(1))]);
    let bytes = client.frame_bytes(Encoding::Json, &m);
    for byte in bytes.iter() {
        client.send_raw(&[*byte]).await;
        client.stream.flush().await.expect("flush");
        tokio::task::yield_now().await;
    }
    let (_, reply) = client.read().await;
    assert_eq!(reply, m);
}

#[tokio::test]
async fn two_hundred_frames_in_one_write_are_answered_in_order() {
    let server = start_echo(test_config()).await;
    let mut client = RawClient::connect(server.local_addr()).await;
    let mut all = Vec::new();
    for i in 0..200i64 {
        let encoding = if i % 3 == 0 {
            Encoding::ZiProto
        } else {
            Encoding::Json
        };
        all.extend_from_slice(&client.frame_bytes(encoding, &map(&[("n", Value::from(i))])));
    }
    client.send_raw(&all).await;
    for i in 0..200i64 {
        let (encoding, reply) = client.read().await;
        assert_eq!(
            encoding,
            Encoding::ZiProto,
            "the first packet set the session's encoding"
        );
        assert_eq!(reply.get("n"), Some(&Value::from(i)));
    }
}

#[tokio::test]
async fn a_200_kb_frame_in_odd_sized_chunks() {
    let server = start_echo(test_config()).await;
    let mut client = RawClient::connect(server.local_addr()).await;
    let big: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let m = map(&[("blob", Value::from(big.as_str())), ("n", Value::from(7))]);
    let bytes = client.frame_bytes(Encoding::Json, &m);
    assert!(bytes.len() > 200_000);
    let sizes = [1usize, 7, 13, 4093, 1, 65537, 3, 999];
    let mut rest = &bytes[..];
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        client.send_raw(&rest[..n]).await;
        rest = &rest[n..];
        i += 1;
    }
    let (_, reply) = client.read().await;
    assert_eq!(reply, m);
    assert_still_serving(server.local_addr()).await;
}

#[tokio::test]
async fn header_refusals_are_answered_in_json_then_closed() {
    let server = start_echo(test_config()).await;
    let addr = server.local_addr();
    let cases: [&[u8]; 4] = [
        b"\x00\x00\x00\x04\x15\x00{}", // Protocol-Version 21
        b"\x00\x00\x00\x04\x16\x02{}", // Content-Encoding 2
        b"\x00\x00\x00\x01\x16\x01",   // Content-Length 1
        b"\x00\x00\x00\x00\x16\x00",   // Content-Length 0
    ];
    for bytes in cases {
        let mut client = RawClient::connect(addr).await;
        client.send_raw(bytes).await;
        client
            .expect_failure_then_close(ErrorCode::HeaderInvalid, Encoding::Json)
            .await;
        assert_still_serving(addr).await;
    }
}

#[tokio::test]
async fn malformed_payloads_are_answered_in_their_declared_encoding_then_closed() {
    let server = start_echo(test_config()).await;
    let addr = server.local_addr();
    let cases: [(&[u8], Encoding); 10] = [
        (b"\x00\x00\x00\x02\x16\x00", Encoding::Json), // no payload at all
        (b"\x00\x00\x00\x05\x16\x00[1]", Encoding::Json), // not an object
        (b"\x00\x00\x00\x05\x16\x00{\"a", Encoding::Json), // truncated
        (b"\x00\x00\x00\x06\x16\x00{}xx", Encoding::Json), // trailing bytes
        (b"\x00\x00\x00\x0a\x16\x00{\"a\": \xff}", Encoding::Json), // invalid UTF-8
        (b"\x00\x00\x00\x0c\x16\x00{\"a\": NaN}", Encoding::Json), // NaN
        (b"\x00\x00\x00\x02\x16\x01", Encoding::ZiProto), // no payload
        (b"\x00\x00\x00\x03\x16\x01\x91", Encoding::ZiProto), // an array, truncated
        (b"\x00\x00\x00\x04\x16\x01\x81\xc1", Encoding::ZiProto), // 0xc1
        (b"\x00\x00\x00\x05\x16\x01\x81\x01\x02", Encoding::ZiProto), // integer key
    ];
    for (bytes, encoding) in cases {
        let mut client = RawClient::connect(addr).await;
        client.send_raw(bytes).await;
        client
            .expect_failure_then_close(ErrorCode::RequestMalformed, encoding)
            .await;
    }
    assert_still_serving(addr).await;
}

#[tokio::test]
async fn deep_nesting_and_duplicate_keys_are_malformed() {
    let server = start_echo(test_config()).await;
    let addr = server.local_addr();
    let deep = format!("{{\"a\": {}{}}}", "[".repeat(200), "]".repeat(200));
    let duplicate = "{\"a\": 1, \"a\": 2}".to_owned();
    for payload in [deep, duplicate] {
        let mut client = RawClient::connect(addr).await;
        let mut frame = bytes::BytesMut::new();
        client
            .codec
            .write_raw(Encoding::Json, payload.as_bytes(), &mut frame)
            .unwrap();
        client.send_raw(&frame).await;
        client
            .expect_failure_then_close(ErrorCode::RequestMalformed, Encoding::Json)
            .await;
    }
    assert_still_serving(addr).await;
}

#[tokio::test]
async fn a_huge_declared_length_is_refused_at_once_without_the_body() {
    let server = start_echo(Config {
        max_packet_size: 1024 * 1024,
        ..test_config()
    })
    .await;
    let addr = server.local_addr();
    let mut client = RawClient::connect(addr).await;
    // Only the head: 4 GiB declared, ZiProto. No body follows.
    client.send_raw(b"\xff\xff\xff\xff\x16\x01").await;
    client
        .expect_failure_then_close(ErrorCode::PacketTooLarge, Encoding::ZiProto)
        .await;

    // Just over the limit, with the body streaming in: refused, and the
    // server keeps serving.
    let mut client = RawClient::connect(addr).await;
    let declared: u32 = 1024 * 1024 + 1;
    let mut head = declared.to_be_bytes().to_vec();
    head.extend_from_slice(&[0x16, 0x00]);
    client.send_raw(&head).await;
    let _ = client.stream.write_all(&vec![b' '; 64 * 1024]).await;
    client
        .expect_failure_then_close(ErrorCode::PacketTooLarge, Encoding::Json)
        .await;
    assert_still_serving(addr).await;
}

#[tokio::test]
async fn an_idle_session_times_out_with_err_timed_out_in_its_encoding() {
    let server = start_echo(Config {
        timeout: Duration::from_millis(300),
        ..test_config()
    })
    .await;
    let addr = server.local_addr();

    // Never sends anything: JSON reply.
    let mut silent = RawClient::connect(addr).await;
    silent
        .expect_failure_then_close(ErrorCode::TimedOut, Encoding::Json)
        .await;

    // A ZiProto session that goes quiet: ZiProto reply.
    let mut zi = RawClient::connect(addr).await;
    let m = map(&[("a", Value::from(1))]);
    zi.request(Encoding::ZiProto, &m).await;
    zi.expect_failure_then_close(ErrorCode::TimedOut, Encoding::ZiProto)
        .await;
    assert_still_serving(addr).await;
}

#[tokio::test]
async fn trickled_bytes_do_not_keep_a_session_alive() {
    let server = start_echo(Config {
        timeout: Duration::from_millis(300),
        ..test_config()
    })
    .await;
    let mut client = RawClient::connect(server.local_addr()).await;
    // A frame declaring 100 bytes, fed one byte every 20 ms: it would take 2 s.
    client.send_raw(b"\x00\x00\x00\x64\x16\x00").await;
    let started = std::time::Instant::now();
    let trickle = async {
        loop {
            if client.stream.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            if started.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(600), trickle).await;
    client
        .expect_failure_then_close(ErrorCode::TimedOut, Encoding::Json)
        .await;
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn other_clients_are_served_while_one_misbehaves() {
    let server = start_echo(test_config()).await;
    let addr = server.local_addr();
    // A client holding half a frame open.
    let mut stuck = RawClient::connect(addr).await;
    stuck.send_raw(b"\x00\x00\x01\x00\x16\x00{\"a\":").await;
    // A client that vanishes mid-frame.
    {
        let mut gone = RawClient::connect(addr).await;
        gone.send_raw(b"\x00\x00\x01\x00\x16").await;
    }
    let mut tasks = Vec::new();
    for _ in 0..20 {
        tasks.push(tokio::spawn(assert_still_serving(addr)));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    // The stuck one is still waiting; it completes normally.
    let rest = vec![b' '; 0x100 - 2 - 5];
    let mut tail = rest.clone();
    tail[0] = b'1';
    let last = tail.len() - 1;
    tail[last] = b'}';
    stuck.send_raw(&tail).await;
    let (_, reply) = stuck.read().await;
    assert_eq!(reply.get("a"), Some(&Value::from(1)));
}

#[tokio::test]
async fn two_byte_little_endian_headers() {
    let server = start_echo(Config {
        header_size: 2,
        byteorder: ByteOrder::Little,
        ..test_config()
    })
    .await;
    let config = FrameConfig::new(2, ByteOrder::Little, 65535).unwrap();
    let mut client = RawClient::connect_with(server.local_addr(), config).await;
    client.send_raw(b"\x10\x00\x16\x00{\"foo\": \"bar\"}").await;
    let frame = client.read_frame().await.expect("reply");
    assert_eq!(&frame.payload[..], b"{\"foo\": \"bar\"}");
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_with_err_server_busy() {
    let server = start_echo(Config {
        max_connections: 2,
        ..test_config()
    })
    .await;
    let addr = server.local_addr();
    let mut a = RawClient::connect(addr).await;
    let mut b = RawClient::connect(addr).await;
    let m = map(&[("x", Value::Null)]);
    a.request(Encoding::Json, &m).await;
    b.request(Encoding::Json, &m).await;
    let mut c = RawClient::connect(addr).await;
    c.expect_failure_then_close(ErrorCode::ServerBusy, Encoding::Json)
        .await;
    drop(a);
    // A slot frees up once the first session ends.
    let mut tries = 0;
    loop {
        let mut d = RawClient::connect(addr).await;
        d.send(Encoding::Json, &m).await;
        let (_, reply) = d.read().await;
        if reply == m {
            break;
        }
        assert_eq!(ErrorCode::from_map(&reply), Some(ErrorCode::ServerBusy));
        tries += 1;
        assert!(tries < 1000, "the slot of a closed session is released");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_error() {
    let server = start_echo(test_config()).await;
    let taken = server.local_addr().port();
    let mut other = asyncapy::Server::new(Config {
        port: taken,
        ..test_config()
    });
    other.register_handler(echo);
    let err = other.bind().await.err().expect("bind must fail");
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{taken}")), "{text}");
}

#[tokio::test]
async fn shutdown_closes_idle_sessions_with_err_shutting_down() {
    let server = start_echo(test_config()).await;
    let addr = server.local_addr();
    let mut client = RawClient::connect(addr).await;
    let m = map(&[("a", Value::from(1))]);
    client.request(Encoding::ZiProto, &m).await;
    let handle = server.handle();
    assert_eq!(handle.session_count(), 1);
    handle.shutdown();
    client
        .expect_failure_then_close(ErrorCode::ShuttingDown, Encoding::ZiProto)
        .await;
    tokio::time::timeout(PATIENCE, server.wait())
        .await
        .expect("stops in time")
        .expect("stops cleanly");
    assert_eq!(handle.session_count(), 0);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
    let _: Map = m;
}

/// The packets of one batch hand their allocations on to the next: a packet
/// a handler keeps must keep its contents, and every echo must be of its own
/// packet, whatever the shapes in between.
#[tokio::test]
async fn packets_of_one_batch_are_each_their_own_even_when_a_handler_keeps_some() {
    use std::sync::{Arc, Mutex};
    let kept: Arc<Mutex<Vec<(usize, asyncapy::Packet)>>> = Arc::default();
    let mut server = asyncapy::Server::new(test_config());
    let store = kept.clone();
    server.register_handler(move |client: asyncapy::Client, packet: asyncapy::Packet| {
        let store = store.clone();
        async move {
            let i = packet.get("i").and_then(Value::as_i64).unwrap_or(-1);
            if i % 3 == 0 {
                store.lock().unwrap().push((i as usize, packet.clone()));
            }
            client.send(&packet).await
        }
    });
    let server = server.bind().await.unwrap();
    let mut client = RawClient::connect(server.local_addr()).await;
    let sent: Vec<Map> = (0..64usize)
        .map(|i| {
            let mut m = map(&[("i", Value::from(i as i64))]);
            // Shapes and sizes that change from packet to packet.
            match i % 4 {
                0 => m.insert("s", "y".repeat(i * 7)),
                1 => m.insert("nested", Value::from(map(&[("k", Value::from("v"))]))),
                2 => m.insert(
                    "list",
                    Value::from(vec![Value::from("a"), Value::from(i as i64)]),
                ),
                _ => None,
            };
            m
        })
        .collect();
    // One write: the server reads them in as few batches as it can.
    let mut bytes = Vec::new();
    for (i, m) in sent.iter().enumerate() {
        let encoding = if i % 2 == 0 {
            Encoding::Json
        } else {
            Encoding::ZiProto
        };
        bytes.extend_from_slice(&client.frame_bytes(encoding, m));
    }
    client.send_raw(&bytes).await;
    for m in &sent {
        let (_, reply) = client.read().await;
        assert_eq!(&reply, m);
    }
    let kept = kept.lock().unwrap();
    assert_eq!(kept.len(), 22);
    for (i, packet) in kept.iter() {
        assert_eq!(packet.map(), &sent[*i], "kept packet {i}");
    }
}
