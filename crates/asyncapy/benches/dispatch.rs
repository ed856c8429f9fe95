//! The framework's cost per packet, without the network: a decoded packet
//! through a server's routes to its reply frame, with `asyncapy::testing`.
//!
//! `cargo bench -p asyncapy --bench dispatch`
//!
//! - `echo`: one route, no filter (what `asyncapy serve` runs);
//! - `three_groups`: a `Fields` regex filter in group -1 that does not match,
//!   an `Ip` filter and a closure filter in group 0, a second group after it;
//! - `fields_check` / `ip_check`: one filter's check alone;
//! - `packet_and_reply`: building the `Packet` and framing the reply, the
//!   floor under both dispatch figures.
//!
//! Every handler here finishes without waiting, as most do: the futures are
//! polled once (`now_or_never`), no runtime involved.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use asyncapy::asyncaproto::{Encoding, Map, Value};
use asyncapy::filters::{Fields, Ip};
use asyncapy::testing::{Outcome, TestSession};
use asyncapy::{Client, Config, Filter, Packet, SendError, Server};
use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::FutureExt as _;

async fn echo(client: Client, packet: Packet) -> Result<(), SendError> {
    client.send(&packet).await
}

/// The 64-byte request of `asyncapy bench`: `{"data": "xxx…"}`.
fn request() -> Map {
    let mut map = Map::new();
    map.insert("data", Value::from("x".repeat(52)));
    map
}

fn session() -> TestSession {
    TestSession::new("10.0.0.7:40000".parse().unwrap())
}

fn run(c: &mut Criterion, name: &str, mut server: Server) {
    let session = session();
    let map = request();
    c.bench_function(name, |b| {
        b.iter(|| {
            let packet = session.packet(map.clone(), Encoding::Json);
            let outcome = session
                .dispatch(&mut server, black_box(packet))
                .now_or_never()
                .unwrap();
            assert!(matches!(outcome, Outcome::Handled));
            black_box(session.sent_raw());
        })
    });
}

fn benches(c: &mut Criterion) {
    let mut server = Server::new(Config::default());
    server.add_handler(echo);
    run(c, "dispatch/echo", server);

    let mut server = Server::new(Config::default());
    server
        .add_handler(echo)
        .filter(Fields::from_pairs([("id", Some(r"\d{1,8}"))]).unwrap())
        .group(-1);
    server
        .add_handler(echo)
        .filter(Ip::new(["10.0.0.0/8", "192.168.0.0/16"]).unwrap())
        .filter(|_: &Client, packet: &Packet| packet.contains_key("data"));
    server.add_handler(|_: Client, _: Packet| async {}).group(1);
    run(c, "dispatch/three_groups", server);

    let session = session();
    let client = session.client();
    let packet = session.packet(request(), Encoding::Json);
    let fields = Fields::from_pairs([("data", Some(r"x+"))]).unwrap();
    c.bench_function("dispatch/fields_check", |b| {
        b.iter(|| black_box(fields.check(&client, black_box(&packet))))
    });
    let ip = Ip::new(["10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32"]).unwrap();
    c.bench_function("dispatch/ip_check", |b| {
        b.iter(|| black_box(ip.check(&client, black_box(&packet))))
    });

    let map = request();
    c.bench_function("dispatch/packet_and_reply", |b| {
        b.iter(|| {
            let packet = session.packet(map.clone(), Encoding::Json);
            client.send(&packet).now_or_never().unwrap().unwrap();
            black_box(session.sent_raw());
        })
    });
}

criterion_group!(dispatch, benches);
criterion_main!(dispatch);
