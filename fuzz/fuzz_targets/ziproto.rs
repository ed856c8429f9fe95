//! The ZiProto payload decoder on arbitrary bytes.
//!
//! Checks: what decodes re-encodes, decode → encode → decode gives the same
//! value and encode is then stable byte for byte; the canonical encoding is
//! never longer than the input; `Encoding::ZiProto.decode` agrees with
//! `ziproto::decode`; and a value without binary survives the trip through
//! JSON unchanged (both encodings carry the same data model).

#![no_main]

use asyncaproto::{json, ziproto, Encoding, PayloadError, Value};
use asyncapy_fuzz::{has_bin, timed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| timed(data, || check(data)));

fn check(data: &[u8]) {
    let ours = ziproto::decode(data);

    match (&ours, Encoding::ZiProto.decode(data)) {
        (Ok(Value::Map(a)), Ok(b)) => assert_eq!(a, &b),
        (Ok(_), Err(PayloadError::NotAMap)) => {}
        (Err(a), Err(b)) => assert_eq!(a, &b),
        (a, b) => panic!("ziproto::decode gave {a:?} but Encoding::ZiProto.decode {b:?}"),
    }

    let Ok(value) = ours else { return };

    let mut encoded = Vec::new();
    ziproto::encode(&value, &mut encoded).expect("a decoded value encodes");
    let decoded = ziproto::decode(&encoded).expect("our own encoding decodes");
    assert_eq!(decoded, value, "decode(encode(v)) != v");
    let mut again = Vec::new();
    ziproto::encode(&decoded, &mut again).expect("it encoded once");
    assert_eq!(again, encoded, "encode is not stable");
    // Smallest forms, except that float32 widens to float64 (4 bytes more each).
    let float32s = data.iter().filter(|&&b| b == 0xca).count();
    assert!(
        encoded.len() <= data.len() + 4 * float32s,
        "canonical form of {} bytes from {} bytes",
        encoded.len(),
        data.len()
    );
    if let Value::Map(map) = &value {
        let mut as_map = Vec::new();
        Encoding::ZiProto
            .encode_map(map, &mut as_map)
            .expect("a decoded map encodes");
        assert_eq!(as_map, encoded);
    }

    // Across encodings: JSON carries everything but binary back unchanged.
    let mut as_json = Vec::new();
    json::encode(&value, &mut as_json).expect("a decoded value encodes as JSON");
    let from_json = json::decode(&as_json).expect("our own JSON decodes");
    if !has_bin(&value) {
        assert_eq!(from_json, value, "the JSON trip changed the value");
    }
}
