//! The examples behave as the original's documentation describes. Each example's
//! `server(port)` is compiled in here and served on port 0.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod common;

#[allow(dead_code)]
#[path = "../examples/hello_world.rs"]
mod hello_world;

#[allow(dead_code)]
#[path = "../examples/groups.rs"]
mod groups;

#[allow(dead_code)]
#[path = "../examples/filters.rs"]
mod filters;

#[allow(dead_code)]
#[path = "../examples/more_filters.rs"]
mod more_filters;

#[allow(dead_code)]
#[path = "../examples/api_keys.rs"]
mod api_keys;

use asyncapy::asyncaproto::{Encoding, ErrorCode, Value};
use common::*;

#[tokio::test]
async fn hello_world_echoes_then_closes() {
    let running = hello_world::server(0).bind().await.unwrap();
    let mut client = RawClient::connect(running.local_addr()).await;
    let m = map(&[("test", Value::from(1))]);
    client
        .send_raw(b"\x00\x00\x00\x0d\x16\x00{\"test\": 1}")
        .await;
    let frame = client.read_frame().await.unwrap();
    assert_eq!(
        &frame.payload[..],
        b"{\"test\": 1}",
        "the seed's exact reply"
    );
    assert_eq!(frame.encoding.decode(&frame.payload).unwrap(), m);
    client.expect_closed().await;
}

#[tokio::test]
async fn groups_answers_one_packet_twice_then_closes() {
    let running = groups::server(0).bind().await.unwrap();
    let mut client = RawClient::connect(running.local_addr()).await;
    let m = map(&[("foo", Value::from("bar"))]);
    client.send(Encoding::ZiProto, &m).await;
    assert_eq!(client.read().await, (Encoding::ZiProto, m.clone()));
    assert_eq!(client.read().await, (Encoding::ZiProto, m));
    client.expect_closed().await;
}

#[tokio::test]
async fn filters_lets_only_the_documented_shape_through() {
    let running = filters::server(0).unwrap().bind().await.unwrap();
    let addr = running.local_addr();
    let good = map(&[
        ("foo", Value::from(12355)),
        ("bar", Value::from("anything")),
    ]);
    let mut client = RawClient::connect(addr).await;
    assert_eq!(client.request(Encoding::Json, &good).await.1, good);
    client.expect_closed().await;
    for bad in [
        map(&[("foo", Value::from("12abc")), ("bar", Value::from(1))]),
        map(&[("foo", Value::from(1))]),
        map(&[
            ("foo", Value::from(1)),
            ("bar", Value::Null),
            ("baz", Value::Null),
        ]),
    ] {
        let mut client = RawClient::connect(addr).await;
        client.send(Encoding::Json, &bad).await;
        client
            .expect_failure_then_close(ErrorCode::NoHandler, Encoding::Json)
            .await;
    }
}

#[tokio::test]
async fn more_filters_also_checks_the_client_address() {
    let running = more_filters::server(0).unwrap().bind().await.unwrap();
    let addr = running.local_addr();
    let good = map(&[("foo", Value::from(1)), ("bar", Value::from("123lmao"))]);
    let mut local = RawClient::connect(addr).await;
    assert_eq!(local.request(Encoding::Json, &good).await.1, good);
    let mut other = RawClient::connect_from(std::net::Ipv4Addr::new(127, 0, 0, 2), addr).await;
    other.send(Encoding::Json, &good).await;
    other
        .expect_failure_then_close(ErrorCode::NoHandler, Encoding::Json)
        .await;
}

#[tokio::test]
async fn api_keys_accepts_live_keys_and_rotates_them() {
    let (server, key) = api_keys::server(0).await.unwrap();
    let running = server.bind().await.unwrap();
    let addr = running.local_addr();
    let mut client = RawClient::connect(addr).await;
    let whoami = |key: &str| {
        map(&[
            ("api_key", Value::from(key)),
            ("action", Value::from("whoami")),
        ])
    };
    let (_, reply) = client.request(Encoding::Json, &whoami(&key)).await;
    assert_eq!(reply["metadata"]["user"], "ada");
    let rotate = map(&[
        ("api_key", Value::from(key.as_str())),
        ("action", Value::from("rotate")),
    ]);
    let (_, reply) = client.request(Encoding::Json, &rotate).await;
    let new_key = reply["api_key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    let (_, reply) = client.request(Encoding::Json, &whoami(&new_key)).await;
    assert_eq!(reply["metadata"]["user"], "ada");
    // The old key stopped working.
    client.send(Encoding::Json, &whoami(&key)).await;
    client
        .expect_failure_then_close(ErrorCode::NoHandler, Encoding::Json)
        .await;
}
