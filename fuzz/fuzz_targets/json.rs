//! The JSON payload decoder on arbitrary bytes.
//!
//! Checks: what decodes re-encodes, and decode → encode → decode gives the same
//! value and encode is then stable byte for byte (and equal to `Display`);
//! `Encoding::Json.decode` agrees with `json::decode`; and serde_json is the
//! reference: whatever we accept, it accepts with the same value, and whatever
//! it accepts that we refuse breaks a documented data-model rule.

#![no_main]

use asyncaproto::{json, Encoding, PayloadError, Value, MAX_DEPTH};
use asyncapy_fuzz::{rough_depth, same_as_serde, timed};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize as _;

fuzz_target!(|data: &[u8]| timed(data, || check(data)));

fn check(data: &[u8]) {
    let ours = json::decode(data);

    match (&ours, Encoding::Json.decode(data)) {
        (Ok(Value::Map(a)), Ok(b)) => assert_eq!(a, &b),
        (Ok(_), Err(PayloadError::NotAMap)) => {}
        (Err(a), Err(b)) => assert_eq!(a, &b),
        (a, b) => panic!("json::decode gave {a:?} but Encoding::Json.decode {b:?}"),
    }

    if let Ok(value) = &ours {
        round_trip(value);
    }

    // The reference recurses once per level: keep it off deep inputs we refused.
    if ours.is_ok() || rough_depth(data) <= 2 * MAX_DEPTH {
        let reference = reference(data);
        match (&ours, &reference) {
            (Ok(v), Ok(r)) => assert!(same_as_serde(v, r), "ours {v:?}, serde_json {r:?}"),
            (Ok(v), Err(e)) => panic!("we accept {v:?}, serde_json refuses: {e}"),
            (Err(e), Ok(r)) => assert!(
                matches!(
                    e,
                    PayloadError::DuplicateKey(_)
                        | PayloadError::TooDeep
                        | PayloadError::NumberOutOfRange
                ),
                "we refuse with {e:?} what serde_json reads as {r:?}"
            ),
            (Err(_), Err(_)) => {}
        }
    }
}

fn round_trip(value: &Value) {
    let mut encoded = Vec::new();
    json::encode(value, &mut encoded).expect("a decoded value encodes");
    let decoded = json::decode(&encoded).unwrap_or_else(|e| {
        panic!(
            "our encoding {:?} does not decode: {e}",
            String::from_utf8_lossy(&encoded)
        )
    });
    assert_eq!(&decoded, value, "decode(encode(v)) != v");
    let mut again = Vec::new();
    json::encode(&decoded, &mut again).expect("it encoded once");
    assert_eq!(again, encoded, "encode is not stable");
    assert_eq!(
        value.to_string().as_bytes(),
        &encoded[..],
        "Display differs from the encoder"
    );
    if let Value::Map(map) = value {
        let mut as_map = Vec::new();
        Encoding::Json
            .encode_map(map, &mut as_map)
            .expect("a decoded map encodes");
        assert_eq!(as_map, encoded);
    }
}

fn reference(data: &[u8]) -> Result<serde_json::Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(data);
    de.disable_recursion_limit();
    let value = serde_json::Value::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}
