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

use asyncapy::asyncaproto::{Encoding, Value};
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
