//! Property tests: arbitrary trees round-trip through both encodings, and no
//! input, random or a mutated valid payload, makes a decoder panic.

use asyncaproto::{from_value, json, to_value, ziproto, Encoding, Map, PayloadError, Value};
use proptest::collection::vec;
use proptest::prelude::*;
use serde::Deserialize;

fn finite_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
        (-1e6..1e6f64),
        prop::sample::select(vec![0.0, -0.0, 0.1, 1e-5, 1e16, 5e-324, f64::MAX, f64::MIN]),
    ]
}

/// Any characters (control, astral, ...), short.
fn text() -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..12).prop_map(String::from_iter)
}

fn leaf(with_bin: bool) -> BoxedStrategy<Value> {
    let common = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (-200i64..200).prop_map(Value::Int),
        ((1u64 << 63)..=u64::MAX).prop_map(Value::UInt),
        finite_f64().prop_map(Value::Float),
        text().prop_map(Value::Str),
        "[a-z]{0,40}".prop_map(Value::Str),
    ];
    if with_bin {
        prop_oneof![
            8 => common,
            1 => vec(any::<u8>(), 0..40).prop_map(Value::Bin),
        ]
        .boxed()
    } else {
        common.boxed()
    }
}

fn map_of(entries: Vec<(String, Value)>) -> Map {
    // Inserting replaces a repeated key: keys stay unique.
    entries.into_iter().collect()
}

/// Trees of bounded depth and size, floats finite, keys unique.
fn value(with_bin: bool) -> impl Strategy<Value = Value> {
    leaf(with_bin).prop_recursive(4, 40, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::Array),
            vec((text(), inner.clone()), 0..8).prop_map(|e| Value::Map(map_of(e))),
            // Sometimes past 15 entries: map16.
            vec(("[a-z]{1,4}", inner), 0..20).prop_map(|e| Value::Map(map_of(e))),
        ]
    })
}

fn payload(with_bin: bool) -> impl Strategy<Value = Map> {
    vec(("[a-z_]{1,10}", value(with_bin)), 0..6).prop_map(map_of)
}

/// What JSON gives back for a tree: binary becomes its base64 string.
fn json_view(value: &Value) -> Value {
    match value {
        Value::Bin(bytes) => Value::Str(base64(bytes)),
        Value::Array(items) => Value::Array(items.iter().map(json_view).collect()),
        Value::Map(map) => Value::Map(map.iter().map(|(k, v)| (k.clone(), json_view(v))).collect()),
        other => other.clone(),
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= n {
                out.push(ALPHABET[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn encoded(encoding: Encoding, value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encoding.encode_value(value, &mut out).expect("encodable");
    out
}

/// Decoding never panics; whatever decodes encodes again, and decodes back to
/// the same tree in the same order.
fn check_decode_is_total(encoding: Encoding, bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(value) = encoding.decode_value(bytes) {
        let again = encoded(encoding, &value);
        prop_assert_eq!(encoding.decode_value(&again), Ok(value));
        prop_assert_eq!(
            encoded(encoding, &encoding.decode_value(&again).expect("decodes")),
            again
        );
    }
    let _ = encoding.decode(bytes);
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Flip(i, b) => {
                if let Some(byte) = bytes.get_mut(i % len) {
                    *byte ^= b | 1;
                }
            }
            Mutation::Truncate(i) => bytes.truncate(i % len),
            Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Mutation::Remove(i) => {
                if !bytes.is_empty() {
                    bytes.remove(i % len);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ziproto_round_trips_every_tree(value in value(true)) {
        let bytes = encoded(Encoding::ZiProto, &value);
        let back = ziproto::decode(&bytes);
        prop_assert_eq!(back.as_ref(), Ok(&value));
        // Order too: re-encoding gives the same bytes.
        prop_assert_eq!(encoded(Encoding::ZiProto, &back.expect("decodes")), bytes);
    }

    #[test]
    fn ziproto_round_trips_payloads(map in payload(true)) {
        let mut bytes = Vec::new();
        ziproto::encode_map(&map, &mut bytes).expect("encodable");
        prop_assert_eq!(Encoding::ZiProto.decode(&bytes), Ok(map));
    }

    #[test]
    fn json_round_trips_trees_without_binary(value in value(false)) {
        let bytes = encoded(Encoding::Json, &value);
        prop_assert!(bytes.is_ascii());
        let back = json::decode(&bytes);
        prop_assert_eq!(back.as_ref(), Ok(&value));
        prop_assert_eq!(encoded(Encoding::Json, &back.expect("decodes")), bytes);
    }

    #[test]
    fn json_turns_binary_into_base64_strings(map in payload(true)) {
        let mut bytes = Vec::new();
        json::encode_map(&map, &mut bytes).expect("encodable");
        let back = Encoding::Json.decode(&bytes).expect("decodes");
        prop_assert_eq!(Value::Map(back), json_view(&Value::Map(map)));
    }

    #[test]
    fn display_is_the_json_encoding(value in value(true)) {
        let bytes = encoded(Encoding::Json, &value);
        prop_assert_eq!(value.to_string().into_bytes(), bytes);
    }

    #[test]
    fn serde_conversions_are_identities(value in value(true)) {
        prop_assert_eq!(to_value(&value), Ok(value.clone()));
        prop_assert_eq!(Value::deserialize(&value), Ok(value.clone()));
        prop_assert_eq!(from_value::<Value>(value.clone()), Ok(value));
    }

    #[test]
    fn ziproto_decode_never_panics_on_random_bytes(bytes in vec(any::<u8>(), 0..256)) {
        check_decode_is_total(Encoding::ZiProto, &bytes)?;
    }

    #[test]
    fn json_decode_never_panics_on_random_bytes(bytes in vec(any::<u8>(), 0..256)) {
        check_decode_is_total(Encoding::Json, &bytes)?;
    }

    #[test]
    fn json_decode_never_panics_on_json_like_text(
        bytes in vec(prop::sample::select(b"{}[]\":, 0123456789.eE-+ntrufalsNIy\\u".to_vec()), 0..128)
    ) {
        check_decode_is_total(Encoding::Json, &bytes)?;
    }

    #[test]
    fn decoders_never_panic_on_mutated_payloads(
        map in payload(true),
        mutations in vec(mutation(), 1..4),
    ) {
        for encoding in [Encoding::ZiProto, Encoding::Json] {
            let mut bytes = Vec::new();
            encoding.encode_map(&map, &mut bytes).expect("encodable");
            mutate(&mut bytes, &mutations);
            check_decode_is_total(encoding, &bytes)?;
        }
    }

    #[test]
    fn truncating_a_ziproto_payload_is_always_an_error(map in payload(true), cut in any::<usize>()) {
        let mut bytes = Vec::new();
        ziproto::encode_map(&map, &mut bytes).expect("encodable");
        let cut = cut % bytes.len();
        let err = ziproto::decode(&bytes[..cut]).expect_err("a prefix is never a whole value");
        prop_assert!(matches!(err, PayloadError::Truncated | PayloadError::Empty), "{:?}", err);
    }
}
