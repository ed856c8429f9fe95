//! `asyncapy::testing`: handlers, filters and route tables without a socket,
//! and proof that a `TestSession` answers exactly what a real session does.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

use std::net::SocketAddr;

use asyncapy::asyncaproto::{Encoding, ErrorCode, Map, Value};
use asyncapy::filters::{Fields, Ip};
use asyncapy::testing::{Outcome, TestSession};
use asyncapy::{Client, Packet, SendError, Server};
use common::*;

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

async fn tag(client: &Client, packet: &Packet, tag: &str) -> Result<(), SendError> {
    let mut reply = packet.map().clone();
    reply.insert("by", Value::from(tag));
    client.send(&reply).await
}

/// Three groups: -1 answers digits and stops propagation, 0 echoes (but not
/// "nobody"; it fails on "fail" and panics on "panic"), 1 answers "bye" and
/// closes.
fn routes() -> Server {
    let mut server = Server::new(test_config());
    server
        .add_handler(|client: Client, packet: Packet| async move {
            tag(&client, &packet, "digits").await?;
            packet.stop_propagation();
            Ok::<(), SendError>(())
        })
        .filter(Fields::from_pairs([("n", Some(r"\d+"))]).unwrap())
        .group(-1);
    server
        .add_handler(|client: Client, packet: Packet| async move {
            if packet.get("fail").is_some() {
                return Err("refused on purpose".into());
            }
            if packet.get("panic").is_some() {
                panic!("a handler bug");
            }
            tag(&client, &packet, "echo")
                .await
                .map_err(asyncapy::HandlerError::from)
        })
        .filter(|_: &Client, packet: &Packet| packet.get("nobody").is_none());
    server
        .add_handler(|client: Client, packet: Packet| async move {
            if packet.get("bye").is_some() {
                client
                    .send_and_close(&map(&[("bye", Value::from(true))]))
                    .await?;
            }
            Ok::<(), SendError>(())
        })
        .filter(|_: &Client, packet: &Packet| packet.get("bye").is_some())
        .group(1);
    server
}

fn payload(pairs: &[(&str, Value)]) -> Map {
    map(pairs)
}

#[tokio::test]
async fn handlers_groups_and_propagation() {
    let mut server = routes();
    let session = TestSession::new(peer());
    let digits = session.packet(payload(&[("n", Value::from("42"))]), Encoding::ZiProto);
    assert!(matches!(
        session.dispatch(&mut server, digits).await,
        Outcome::Handled
    ));
    let sent = session.sent().unwrap();
    assert_eq!(sent.len(), 1, "group 0 never saw it: {sent:?}");
    assert_eq!(sent[0]["by"], "digits");

    let word = session.packet(payload(&[("n", Value::from("x"))]), Encoding::Json);
    assert!(matches!(
        session.dispatch(&mut server, word).await,
        Outcome::Handled
    ));
    assert_eq!(session.sent().unwrap()[0]["by"], "echo");
    assert!(session.sent().unwrap().is_empty(), "sent() drains");

    let bye = session.packet(payload(&[("bye", Value::from(1))]), Encoding::Json);
    assert!(matches!(
        session.dispatch(&mut server, bye).await,
        Outcome::Handled
    ));
    let sent = session.sent().unwrap();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1]["bye"], true);
    assert!(session.is_closed());
}

#[tokio::test]
async fn failures_answer_like_the_server() {
    let mut server = routes();
    for (key, code) in [
        ("fail", ErrorCode::HandlerFailed),
        ("panic", ErrorCode::HandlerFailed),
        ("nobody", ErrorCode::NoHandler),
    ] {
        let session = TestSession::new(peer());
        let packet = session.packet(payload(&[(key, Value::from(1))]), Encoding::ZiProto);
        let outcome = session.dispatch(&mut server, packet).await;
        match (key, &outcome) {
            ("fail", Outcome::Failed(e)) => assert_eq!(e.to_string(), "refused on purpose"),
            ("panic", Outcome::Panicked(message)) => assert_eq!(message, "a handler bug"),
            ("nobody", Outcome::NoHandler) => {}
            _ => panic!("{key}: {outcome:?}"),
        }
        let sent = session.sent().unwrap();
        assert_eq!(
            ErrorCode::from_map(sent.last().unwrap()),
            Some(code),
            "{key}"
        );
        assert!(session.is_closed());
    }
}

#[tokio::test]
async fn filters_see_the_session_peer() {
    let mut server = Server::new(test_config());
    server
        .add_handler(|client: Client, packet: Packet| async move { client.send(&packet).await })
        .filter(Ip::new(["10.0.0.0/8"]).unwrap());
    let inside = TestSession::new("10.1.2.3:5".parse().unwrap());
    let packet = inside.packet(payload(&[("a", Value::from(1))]), Encoding::Json);
    assert!(matches!(
        inside.dispatch(&mut server, packet).await,
        Outcome::Handled
    ));
    let outside = TestSession::new(peer());
    let packet = outside.packet(payload(&[("a", Value::from(1))]), Encoding::Json);
    assert!(matches!(
        outside.dispatch(&mut server, packet).await,
        Outcome::NoHandler
    ));
}

/// The same packets through a `TestSession` and through a real server over
/// a socket give the same replies, in the same order and encoding.
#[tokio::test]
async fn a_test_session_answers_what_a_real_session_does() {
    let script = [
        (Encoding::ZiProto, payload(&[("n", Value::from("7"))])),
        (
            Encoding::Json,
            payload(&[("n", Value::from("x")), ("k", Value::from(1.5))]),
        ),
        (Encoding::Json, payload(&[("bye", Value::from(1))])),
    ];
    let mut server = routes();
    let session = TestSession::new(peer());
    let mut expected = Vec::new();
    for (encoding, map) in &script {
        let packet = session.packet(map.clone(), *encoding);
        session.dispatch(&mut server, packet).await;
        expected.extend(session.sent().unwrap());
    }

    let running = routes().bind().await.unwrap();
    let mut client = RawClient::connect(running.local_addr()).await;
    let mut got = Vec::new();
    for (encoding, map) in &script {
        client.send(*encoding, map).await;
    }
    while let Some(frame) = client.read_frame().await {
        // The session's first packet set the encoding of every reply.
        assert_eq!(frame.encoding, Encoding::ZiProto);
        got.push(frame.encoding.decode(&frame.payload).unwrap());
    }
    assert_eq!(got, expected);
    assert_eq!(got.len(), 4);

    // And a failure, on both.
    let session = TestSession::new(peer());
    let packet = session.packet(payload(&[("fail", Value::from(1))]), Encoding::Json);
    session.dispatch(&mut server, packet).await;
    let mut client = RawClient::connect(running.local_addr()).await;
    client
        .send(Encoding::Json, &payload(&[("fail", Value::from(1))]))
        .await;
    let (_, reply) = client.read().await;
    assert_eq!(session.sent().unwrap(), vec![reply]);
}

#[test]
fn a_new_session_is_open_and_has_sent_nothing() {
    // No runtime is needed to build one, only to dispatch.
    let session = TestSession::new(peer());
    assert!(!session.is_closed());
    assert!(session.sent().unwrap().is_empty());
    assert_eq!(session.client().peer_addr(), peer());
}
