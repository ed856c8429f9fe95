//! The fuzz targets' checks (`fuzz/`, see fuzz/README.md) on their committed
//! seed corpus, in the normal test suite: every frame, JSON and ZiProto seed
//! decodes as it did, and what decodes round-trips. Inputs the fuzzers find in
//! this crate's decoders are added here too, written out byte for byte.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

use std::fs;
use std::path::{Path, PathBuf};

use asyncaproto::frame::DEFAULT_MAX_PACKET_SIZE;
use asyncaproto::{
    json, ziproto, ByteOrder, Encoding, Frame, FrameCodec, FrameConfig, FrameError, Map, Value,
};
use bytes::BytesMut;
use tokio_util::codec::Decoder;

/// The seeds of one fuzz target, by file name. The corpus is part of the
/// repository: a missing folder fails the test rather than passing on nothing.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "fuzz",
        "corpus",
        target,
    ]
    .iter()
    .collect();
    let entries =
        fs::read_dir(&dir).unwrap_or_else(|e| panic!("no seed corpus at {}: {e}", dir.display()));
    let mut seeds: Vec<(String, Vec<u8>)> = entries
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    seeds
}

/// The seed called `name`; a seed a test names must exist.
fn seed<'a>(seeds: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    seeds
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, bytes)| &bytes[..])
        .unwrap_or_else(|| panic!("the seed {name:?} is missing from the corpus"))
}

/// Fails unless every seed in `names` is in `seeds`.
fn assert_seeds_present(seeds: &[(String, Vec<u8>)], names: &[&str]) {
    for name in names {
        seed(seeds, name);
    }
}

/// What the `json` and `ziproto` targets check of a value that decoded.
fn assert_round_trips(encoding: Encoding, value: &Value) {
    let mut encoded = Vec::new();
    encoding.encode_value(value, &mut encoded).unwrap();
    let decoded = encoding.decode_value(&encoded).unwrap();
    assert_eq!(&decoded, value);
    let mut again = Vec::new();
    encoding.encode_value(&decoded, &mut again).unwrap();
    assert_eq!(again, encoded, "encoding is not stable");
}

#[test]
fn json_seeds_decode_and_round_trip() {
    let seeds = seeds("json");
    let mut accepted = 0;
    for (name, bytes) in &seeds {
        if let Ok(value) = json::decode(bytes) {
            assert_round_trips(Encoding::Json, &value);
            assert_eq!(value.to_string().as_bytes(), {
                let mut out = Vec::new();
                json::encode(&value, &mut out).unwrap();
                out
            });
            accepted += 1;
        } else {
            assert!(!name.starts_with("protocol"), "{name}");
        }
    }
    assert!(json::decode(seed(&seeds, "depth_128")).is_ok());
    assert_eq!(
        json::decode(seed(&seeds, "depth_129")),
        Err(asyncaproto::PayloadError::TooDeep)
    );
    assert_seeds_present(&seeds, &["protocol_example", "python_dumps"]);
    assert!(accepted >= 10, "{accepted} seeds decode");
}

#[test]
fn ziproto_seeds_decode_and_round_trip() {
    let seeds = seeds("ziproto");
    let mut accepted = 0;
    for (_, bytes) in &seeds {
        if let Ok(value) = ziproto::decode(bytes) {
            assert_round_trips(Encoding::ZiProto, &value);
            accepted += 1;
        }
    }
    let map: Map = Encoding::ZiProto
        .decode(seed(&seeds, "protocol_example"))
        .unwrap();
    assert_eq!(map, Map::from_iter([("foo", "bar")]));
    assert!(accepted >= 20, "{accepted} seeds decode");
}

/// The maximums the fuzz targets choose from (`fuzz/src/lib.rs`).
const MAX_PACKET_SIZES: [u64; 10] = [
    2,
    3,
    16,
    255,
    256,
    4096,
    65_535,
    DEFAULT_MAX_PACKET_SIZE,
    u32::MAX as u64,
    u64::MAX,
];

/// A `frame`/`payload_frame` seed: its layout and its stream (the chunking
/// bytes skipped; the `frame` target checks they change nothing).
fn frame_seed(bytes: &[u8]) -> (FrameConfig, &[u8]) {
    let [h, order, max, count, rest @ ..] = bytes else {
        panic!("a frame seed starts with 4 layout bytes");
    };
    let byte_order = if order & 1 == 1 {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };
    let max = MAX_PACKET_SIZES[usize::from(*max) % MAX_PACKET_SIZES.len()];
    let config = FrameConfig::new(1 + h % 8, byte_order, max).unwrap();
    (config, &rest[usize::from(count % 17)..])
}

/// Decodes a whole stream: the frames (each checked to re-encode to its own
/// bytes), then the error or end-of-stream result that ended it.
fn decode_stream(config: FrameConfig, stream: &[u8]) -> (Vec<Frame>, Option<FrameError>) {
    let mut codec = FrameCodec::new(config);
    let mut buf = BytesMut::from(stream);
    let mut frames = Vec::new();
    let mut offset = 0;
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(frame)) => {
                let len = config.head_len() + frame.payload.len();
                let mut raw = BytesMut::new();
                codec
                    .write_raw(frame.encoding, &frame.payload, &mut raw)
                    .unwrap();
                assert_eq!(&raw[..], &stream[offset..offset + len]);
                offset += len;
                frames.push(frame);
            }
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(e)),
        }
    }
}

#[test]
fn frame_seeds_decode_and_re_encode() {
    let seeds = seeds("frame");
    // The seeds whose outcome is checked by name below.
    assert_seeds_present(
        &seeds,
        &[
            "protocol_json",
            "split_after_5th_byte",
            "h8_big",
            "pipelined_two",
            "bad_version",
            "bad_encoding",
            "length_below_2",
            "too_large",
            "max_2_refuses_3",
            "h8_huge_declared",
            "truncated_body",
            "truncated_head",
        ],
    );
    for (name, bytes) in &seeds {
        let (config, stream) = frame_seed(bytes);
        let (frames, end) = decode_stream(config, stream);
        if let Some(e) = &end {
            assert!(
                e.error_code().is_some() || matches!(e, FrameError::Truncated { .. }),
                "{name}: {e}"
            );
        }
        match name.as_str() {
            "protocol_json" | "split_after_5th_byte" | "h8_big" => {
                assert_eq!(frames.len(), 1, "{name}");
                let map: Map = frames[0].encoding.decode(&frames[0].payload).unwrap();
                assert_eq!(map, Map::from_iter([("foo", "bar")]));
            }
            "pipelined_two" => assert_eq!(frames.len(), 2),
            "bad_version" => assert!(matches!(end, Some(FrameError::BadVersion(0x15)))),
            "bad_encoding" => assert!(matches!(end, Some(FrameError::BadEncoding(2)))),
            "length_below_2" => assert!(matches!(end, Some(FrameError::LengthTooSmall(1)))),
            "too_large" | "max_2_refuses_3" | "h8_huge_declared" => {
                assert!(
                    matches!(end, Some(FrameError::TooLarge { .. })),
                    "{name}: {end:?}"
                )
            }
            "truncated_body" | "truncated_head" => {
                assert!(matches!(end, Some(FrameError::Truncated { .. })), "{name}")
            }
            _ => {}
        }
    }
}

#[test]
fn payload_frame_seeds_decode_like_the_server() {
    let seeds = seeds("payload_frame");
    assert_seeds_present(&seeds, &["protocol_ziproto"]);
    for (name, bytes) in &seeds {
        let (config, stream) = frame_seed(bytes);
        let (frames, _) = decode_stream(config, stream);
        for frame in frames {
            if let Ok(map) = frame.encoding.decode(&frame.payload) {
                assert_round_trips(frame.encoding, &Value::Map(map));
            }
        }
        if name == "protocol_ziproto" {
            let (frames, end) = decode_stream(config, stream);
            assert!(end.is_none());
            assert_eq!(frames[0].encoding, Encoding::ZiProto);
        }
    }
}

#[test]
fn seed_corpus_is_where_the_fuzz_readme_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    for target in [
        "frame",
        "json",
        "ziproto",
        "payload_frame",
        "ini",
        "log_format",
        "ip_net",
        "proxy",
    ] {
        let dir = root.join("corpus").join(target);
        let count = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .count();
        assert!((5..=60).contains(&count), "{target}: {count} seeds");
    }
}
