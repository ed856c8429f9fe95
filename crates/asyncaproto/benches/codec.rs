//! Criterion benches of the payload codecs and the whole frame path.
//!
//! A tiny packet (64 bytes of JSON, what the echo-server load test sends), a
//! small one (about 100 bytes, a typical request), a large one (about
//! 64 KiB of JSON) and the load test's large request (one 64 KiB string),
//! each decoded and encoded in JSON and ZiProto; then the
//! frame path a server runs per packet: cut the frame off the read buffer and
//! decode its payload, and frame a reply with `FrameCodec::write_frame`.
//!
//! Run: `cargo bench -p asyncaproto --bench codec` (add `-- --quick` for a
//! short run).

use std::hint::black_box;

use asyncaproto::{Encoding, FrameCodec, Map, Value};
use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};

/// The load test's request: `{"data": "xxx…"}`, exactly 64 bytes in JSON.
fn tiny_packet() -> Map {
    let mut map = Map::new();
    map.insert("data", "x".repeat(52));
    map
}

/// A typical request: about 100 bytes in JSON.
fn small_packet() -> Map {
    let mut map = Map::new();
    map.insert("request", "login");
    map.insert("user", "ada@example.org");
    map.insert("api_key", "Zx81Kq0pLm2Nb7Vc");
    map.insert("remember", true);
    map.insert("attempt", 3);
    map.insert("ratio", 0.75);
    map.insert("tags", vec!["web", "eu"]);
    map
}

/// A reply listing many records: about 64 KiB in JSON.
fn large_packet() -> Map {
    let items: Vec<Value> = (0..560)
        .map(|i| {
            let mut item = Map::new();
            item.insert("id", i);
            item.insert("name", format!("item number {i}"));
            item.insert("price", f64::from(i) * 1.25 + 0.1);
            item.insert("active", i % 3 == 0);
            item.insert("tags", vec!["alpha", "beta", "gamma"]);
            item.insert("owner", Value::Null);
            Value::Map(item)
        })
        .collect();
    let mut map = Map::new();
    map.insert("status", "ok");
    map.insert("count", items.len());
    map.insert("items", items);
    map
}

/// The load test's large request (`asyncapy bench --payload-size 65536`):
/// `{"data": "xxx…"}`, exactly 65536 bytes in JSON.
fn filler_packet() -> Map {
    let mut map = Map::new();
    map.insert("data", "x".repeat(65536 - 12));
    map
}

fn encoded(encoding: Encoding, map: &Map) -> Vec<u8> {
    let mut out = Vec::new();
    encoding.encode_map(map, &mut out).expect("encodable");
    out
}

const ENCODINGS: [Encoding; 2] = [Encoding::Json, Encoding::ZiProto];

fn payloads(c: &mut Criterion) {
    for (size, map) in [
        ("tiny", tiny_packet()),
        ("small", small_packet()),
        ("large", large_packet()),
        ("filler", filler_packet()),
    ] {
        let mut group = c.benchmark_group(format!("payload/{size}"));
        for encoding in ENCODINGS {
            let bytes = encoded(encoding, &map);
            group.throughput(Throughput::Bytes(bytes.len() as u64));
            group.bench_with_input(BenchmarkId::new("decode", encoding), &bytes, |b, bytes| {
                b.iter(|| encoding.decode(black_box(bytes)).expect("valid"))
            });
            let mut out = Vec::with_capacity(bytes.len());
            group.bench_with_input(BenchmarkId::new("encode", encoding), &map, |b, map| {
                b.iter(|| {
                    out.clear();
                    encoding
                        .encode_map(black_box(map), &mut out)
                        .expect("encodable");
                    out.len()
                })
            });
        }
        group.finish();
    }
}

fn frames(c: &mut Criterion) {
    let codec = FrameCodec::default();
    for (size, map) in [
        ("small", small_packet()),
        ("large", large_packet()),
        ("filler", filler_packet()),
    ] {
        let mut group = c.benchmark_group(format!("frame/{size}"));
        for encoding in ENCODINGS {
            let mut wire = BytesMut::new();
            codec
                .write_frame(encoding, &map, &mut wire)
                .expect("framed");
            group.throughput(Throughput::Bytes(wire.len() as u64));
            // What a session does per request: take the frame off the read
            // buffer, then decode its payload in the declared encoding.
            group.bench_with_input(
                BenchmarkId::new("read_and_decode", encoding),
                &wire,
                |b, wire| {
                    b.iter_batched_ref(
                        || BytesMut::from(&wire[..]),
                        |buf| {
                            let frame = codec.decode_frame(buf).expect("valid").expect("whole");
                            frame
                                .encoding
                                .decode(&frame.payload)
                                .expect("valid payload")
                        },
                        BatchSize::SmallInput,
                    )
                },
            );
            // And per reply: encode the payload straight into the write buffer.
            let mut out = BytesMut::with_capacity(wire.len());
            group.bench_with_input(BenchmarkId::new("write_frame", encoding), &map, |b, map| {
                b.iter(|| {
                    out.clear();
                    codec
                        .write_frame(encoding, black_box(map), &mut out)
                        .expect("framed");
                    out.len()
                })
            });
            // As a session's first reply after a large one: into an empty
            // buffer (those grown past 64 KiB are released after a write).
            group.bench_with_input(
                BenchmarkId::new("write_frame_fresh", encoding),
                &map,
                |b, map| {
                    b.iter(|| {
                        let mut out = BytesMut::new();
                        codec
                            .write_frame(encoding, black_box(map), &mut out)
                            .expect("framed");
                        out.len()
                    })
                },
            );
        }
        group.finish();
    }
}

criterion_group!(benches, payloads, frames);
criterion_main!(benches);
