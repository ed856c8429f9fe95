//! The per-request codec work of an echo server for one large payload, in a
//! loop: for instruction counts under callgrind.
//!
//! The payload is the load generator's (`asyncapy bench --payload-size`): a
//! map `{"data": "xxxx…"}` of exactly `SIZE` encoded bytes. Each round takes
//! the frame off a read buffer, decodes its payload, and frames it again into
//! an empty write buffer, as `asyncapy serve` does per request.
//!
//! ```text
//! cargo build --release -p asyncaproto --example large_echo
//! valgrind --tool=callgrind target/release/examples/large_echo json 65536 200
//! ```
//!
//! Arguments: the encoding (`json` or `ziproto`), the payload size in bytes
//! (65536) and the number of rounds (200).

use std::hint::black_box;

use asyncaproto::{Encoding, FrameCodec, Map, Value};
use bytes::BytesMut;

fn main() {
    let mut args = std::env::args().skip(1);
    let encoding: Encoding = args
        .next()
        .as_deref()
        .unwrap_or("json")
        .parse()
        .expect("json or ziproto");
    let size: usize = args.next().map_or(65536, |s| s.parse().expect("a size"));
    let rounds: usize = args.next().map_or(200, |s| s.parse().expect("a count"));

    let codec = FrameCodec::default();
    let map = sized_map(encoding, size);
    let mut wire = BytesMut::new();
    codec
        .write_frame(encoding, &map, &mut wire)
        .expect("framed");
    assert_eq!(wire.len(), size + codec.config().head_len(), "exact size");

    let mut total = 0;
    for _ in 0..rounds {
        // What a read leaves in the buffer.
        let mut rbuf = BytesMut::from(&wire[..]);
        let frame = codec
            .decode_frame(&mut rbuf)
            .expect("valid")
            .expect("whole");
        let decoded = frame
            .encoding
            .decode(&frame.payload)
            .expect("valid payload");
        drop(frame);
        // The reply, into an empty outbox.
        let mut outbox = BytesMut::new();
        codec
            .write_frame(encoding, black_box(&decoded), &mut outbox)
            .expect("framed");
        total += black_box(outbox).len();
    }
    assert_eq!(total, rounds * wire.len());
}

/// `{"data": "x" * n}` with `n` chosen so that the payload is `size` bytes.
fn sized_map(encoding: Encoding, size: usize) -> Map {
    let with = |n: usize| Map::from_iter([("data", Value::Str("x".repeat(n)))]);
    let mut out = Vec::new();
    encoding.encode_map(&with(0), &mut out).expect("encodable");
    let mut n = size.saturating_sub(out.len());
    // ZiProto's string head grows with the length: shrink until it fits.
    loop {
        out.clear();
        encoding.encode_map(&with(n), &mut out).expect("encodable");
        if out.len() <= size || n == 0 {
            break;
        }
        n -= 1;
    }
    with(n)
}
