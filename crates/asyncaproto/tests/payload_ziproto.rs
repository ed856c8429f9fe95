//! ZiProto payloads: every format decoded from hand-written bytes, the encoder's
//! choice of form at each boundary, and one test per data-model rule.

use asyncaproto::{ziproto, Encoding, Map, PayloadError, Value, MAX_DEPTH};

fn decode(bytes: &[u8]) -> Result<Value, PayloadError> {
    ziproto::decode(bytes)
}

fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ziproto::encode(value, &mut out).expect("encodable");
    out
}

/// Bytes from a head and a body.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn fixstr(s: &str) -> Vec<u8> {
    assert!(s.len() < 32);
    cat(&[&[0xa0 | s.len() as u8], s.as_bytes()])
}

// ---- every format, decoded ----

#[test]
fn nil_and_booleans() {
    assert_eq!(decode(b"\xc0"), Ok(Value::Null));
    assert_eq!(decode(b"\xc2"), Ok(Value::Bool(false)));
    assert_eq!(decode(b"\xc3"), Ok(Value::Bool(true)));
}

#[test]
fn fixints() {
    assert_eq!(decode(b"\x00"), Ok(Value::Int(0)));
    assert_eq!(decode(b"\x2a"), Ok(Value::Int(42)));
    assert_eq!(decode(b"\x7f"), Ok(Value::Int(127)));
    assert_eq!(decode(b"\xff"), Ok(Value::Int(-1)));
    assert_eq!(decode(b"\xf0"), Ok(Value::Int(-16)));
    assert_eq!(decode(b"\xe0"), Ok(Value::Int(-32)));
}

#[test]
fn unsigned_integers() {
    assert_eq!(decode(b"\xcc\xff"), Ok(Value::Int(255)));
    assert_eq!(decode(b"\xcd\x01\x00"), Ok(Value::Int(256)));
    assert_eq!(decode(b"\xcd\xff\xff"), Ok(Value::Int(65535)));
    assert_eq!(decode(b"\xce\x00\x01\x00\x00"), Ok(Value::Int(65536)));
    assert_eq!(
        decode(b"\xce\xff\xff\xff\xff"),
        Ok(Value::Int(4_294_967_295))
    );
    assert_eq!(
        decode(b"\xcf\x00\x00\x00\x01\x00\x00\x00\x00"),
        Ok(Value::Int(4_294_967_296))
    );
    assert_eq!(
        decode(b"\xcf\x7f\xff\xff\xff\xff\xff\xff\xff"),
        Ok(Value::Int(i64::MAX))
    );
    // Above i64::MAX: UInt, the only place it is used.
    assert_eq!(
        decode(b"\xcf\x80\x00\x00\x00\x00\x00\x00\x00"),
        Ok(Value::UInt(1 << 63))
    );
    assert_eq!(
        decode(b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff"),
        Ok(Value::UInt(u64::MAX))
    );
    // Non-minimal forms are accepted and normalised.
    assert_eq!(decode(b"\xcc\x01"), Ok(Value::Int(1)));
    assert_eq!(decode(b"\xcf\0\0\0\0\0\0\0\x01"), Ok(Value::Int(1)));
}

#[test]
fn signed_integers() {
    assert_eq!(decode(b"\xd0\x80"), Ok(Value::Int(-128)));
    assert_eq!(decode(b"\xd0\x7f"), Ok(Value::Int(127)));
    assert_eq!(decode(b"\xd1\x80\x00"), Ok(Value::Int(-32768)));
    assert_eq!(decode(b"\xd1\xff\x7f"), Ok(Value::Int(-129)));
    assert_eq!(
        decode(b"\xd2\x80\x00\x00\x00"),
        Ok(Value::Int(-2_147_483_648))
    );
    assert_eq!(decode(b"\xd2\xff\xff\x7f\xff"), Ok(Value::Int(-32769)));
    assert_eq!(
        decode(b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
        Ok(Value::Int(i64::MIN))
    );
    assert_eq!(
        decode(b"\xd3\xff\xff\xff\xff\x7f\xff\xff\xff"),
        Ok(Value::Int(-2_147_483_649))
    );
    assert_eq!(decode(b"\xd3\0\0\0\0\0\0\0\x05"), Ok(Value::Int(5)));
}

#[test]
fn floats() {
    // float32 1.5, widened
    assert_eq!(decode(b"\xca\x3f\xc0\x00\x00"), Ok(Value::Float(1.5)));
    // float32 0.1 widens to the f32 value, not to f64 0.1
    assert_eq!(
        decode(b"\xca\x3d\xcc\xcc\xcd"),
        Ok(Value::Float(f64::from(0.1f32)))
    );
    assert_eq!(
        decode(b"\xcb\x3f\xb9\x99\x99\x99\x99\x99\x9a"),
        Ok(Value::Float(0.1))
    );
    assert_eq!(
        decode(b"\xcb\x80\x00\x00\x00\x00\x00\x00\x00"),
        Ok(Value::Float(-0.0))
    );
    assert_eq!(
        decode(b"\xcb\x7f\xef\xff\xff\xff\xff\xff\xff"),
        Ok(Value::Float(f64::MAX))
    );
    assert_eq!(
        decode(b"\xcb\x00\x00\x00\x00\x00\x00\x00\x01"),
        Ok(Value::Float(5e-324))
    );
}

#[test]
fn strings() {
    assert_eq!(decode(b"\xa0"), Ok(Value::from("")));
    assert_eq!(decode(b"\xa3foo"), Ok(Value::from("foo")));
    assert_eq!(decode(b"\xa2\xc3\xa9"), Ok(Value::from("é")));
    let s31 = "x".repeat(31);
    assert_eq!(
        decode(&cat(&[b"\xbf", s31.as_bytes()])),
        Ok(Value::from(&s31))
    );
    assert_eq!(decode(b"\xd9\x00"), Ok(Value::from("")));
    assert_eq!(decode(b"\xd9\x03abc"), Ok(Value::from("abc")));
    let s300 = "y".repeat(300);
    assert_eq!(
        decode(&cat(&[b"\xda\x01\x2c", s300.as_bytes()])),
        Ok(Value::from(&s300))
    );
    assert_eq!(decode(b"\xdb\x00\x00\x00\x02hi"), Ok(Value::from("hi")));
}

#[test]
fn binaries() {
    assert_eq!(decode(b"\xc4\x00"), Ok(Value::bin(vec![])));
    assert_eq!(decode(b"\xc4\x02\x00\xff"), Ok(Value::bin(vec![0, 255])));
    let big = vec![7u8; 300];
    assert_eq!(
        decode(&cat(&[b"\xc5\x01\x2c", &big])),
        Ok(Value::bin(big.clone()))
    );
    assert_eq!(
        decode(b"\xc6\x00\x00\x00\x03abc"),
        Ok(Value::bin(b"abc".to_vec()))
    );
}

#[test]
fn arrays() {
    assert_eq!(decode(b"\x90"), Ok(Value::Array(vec![])));
    assert_eq!(
        decode(b"\x93\x01\xa1a\xc0"),
        Ok(Value::from(vec![
            Value::from(1),
            Value::from("a"),
            Value::Null
        ]))
    );
    let fifteen = cat(&[b"\x9f", &[0x01; 15]]);
    assert_eq!(decode(&fifteen), Ok(Value::from(vec![1; 15])));
    let sixteen = cat(&[b"\xdc\x00\x10", &[0x02; 16]]);
    assert_eq!(decode(&sixteen), Ok(Value::from(vec![2; 16])));
    assert_eq!(decode(b"\xdc\x00\x00"), Ok(Value::Array(vec![])));
    let array32 = cat(&[b"\xdd\x00\x00\x00\x03", b"\xc3\xc2\xc0"]);
    assert_eq!(
        decode(&array32),
        Ok(Value::from(vec![
            Value::from(true),
            false.into(),
            Value::Null
        ]))
    );
    let big = cat(&[b"\xdd\x00\x01\x00\x00", &[0x05; 65536]]);
    assert_eq!(decode(&big), Ok(Value::from(vec![5; 65536])));
}

#[test]
fn maps() {
    assert_eq!(decode(b"\x80"), Ok(Value::Map(Map::new())));
    assert_eq!(
        decode(b"\x82\xa1a\x01\xa1b\x92\xc3\xc2"),
        Ok(Value::Map(Map::from_iter([
            ("a", Value::from(1)),
            ("b", Value::from(vec![true, false]))
        ])))
    );
    let entries = |n: usize| {
        let mut body = Vec::new();
        let mut want = Map::new();
        for i in 0..n {
            let key = format!("k{i}");
            body.extend(fixstr(&key));
            body.push(i as u8);
            want.insert(key, i);
        }
        (body, Value::Map(want))
    };
    let (body, want) = entries(15);
    assert_eq!(decode(&cat(&[b"\x8f", &body])), Ok(want));
    let (body, want) = entries(16);
    assert_eq!(decode(&cat(&[b"\xde\x00\x10", &body])), Ok(want));
    let (body, want) = entries(20);
    assert_eq!(decode(&cat(&[b"\xdf\x00\x00\x00\x14", &body])), Ok(want));
    // Keys in any str form.
    assert_eq!(
        decode(b"\x83\xd9\x01a\x01\xda\x00\x01b\x02\xdb\x00\x00\x00\x01c\x03"),
        Ok(Value::Map(Map::from_iter([("a", 1), ("b", 2), ("c", 3)])))
    );
}

#[test]
fn key_order_is_kept() {
    let value = decode(b"\x83\xa1z\x01\xa1a\x02\xa1m\x03").expect("valid");
    let keys: Vec<&String> = value.as_map().expect("map").keys().collect();
    assert_eq!(keys, ["z", "a", "m"]);
    assert_eq!(encode(&value), b"\x83\xa1z\x01\xa1a\x02\xa1m\x03");
}

#[test]
fn the_protocol_example_decodes() {
    let map = Encoding::ZiProto
        .decode(b"\x81\xa3foo\xa3bar")
        .expect("valid");
    assert_eq!(map, Map::from_iter([("foo", "bar")]));
}

// ---- the data-model rules ----

#[test]
fn empty_payload_is_empty() {
    assert_eq!(decode(b""), Err(PayloadError::Empty));
}

#[test]
fn empty_map_is_a_valid_payload() {
    assert_eq!(Encoding::ZiProto.decode(b"\x80"), Ok(Map::new()));
}

#[test]
fn non_map_top_level_is_not_a_map() {
    for bytes in [&b"\x90"[..], b"\x01", b"\xc0", b"\xa1a", b"\xc4\x00"] {
        assert_eq!(
            Encoding::ZiProto.decode(bytes),
            Err(PayloadError::NotAMap),
            "{bytes:x?}"
        );
    }
}

#[test]
fn truncated_values_are_truncated() {
    for bytes in [
        &b"\xcc"[..],
        b"\xcd\x01",
        b"\xce\x01\x02\x03",
        b"\xcf\x01\x02\x03\x04\x05\x06\x07",
        b"\xd0",
        b"\xd3\x80\x00",
        b"\xca\x3f\xc0\x00",
        b"\xcb\x3f",
        b"\xa3fo",
        b"\xd9",
        b"\xd9\x05abc",
        b"\xda\x00",
        b"\xdb\x00\x00\x00",
        b"\xc4",
        b"\xc4\x02\x00",
        b"\xc5\x00\x01",
        b"\xc6\x00\x00\x00\x01",
        b"\x92\x01",
        b"\xdc\x00\x02\x01",
        b"\xdd\x00\x00\x00\x01",
        b"\x81",
        b"\x81\xa1a",
        b"\x82\xa1a\x01\xa1b",
        b"\xde\x00\x01\xa1a",
        b"\xdf\x00\x00\x00\x01",
        b"\x81\xa1a\x91\x92\x01",
    ] {
        assert_eq!(decode(bytes), Err(PayloadError::Truncated), "{bytes:x?}");
    }
}

#[test]
fn trailing_bytes_are_counted() {
    assert_eq!(decode(b"\x80\x80"), Err(PayloadError::TrailingBytes(1)));
    assert_eq!(
        decode(b"\x81\xa1a\x01garbage"),
        Err(PayloadError::TrailingBytes(7))
    );
    assert_eq!(decode(b"\xc0\x00\x00"), Err(PayloadError::TrailingBytes(2)));
}

#[test]
fn invalid_utf8_in_strings_and_keys() {
    for bytes in [
        &b"\xa1\xff"[..],
        b"\xa2\xc3\x28",
        b"\xa3\xed\xa0\x80",
        b"\xd9\x02\xc0\xaf",
        b"\x81\xa1\xfe\x01",
        b"\x81\xa1a\xa1\x80",
    ] {
        assert_eq!(decode(bytes), Err(PayloadError::InvalidUtf8), "{bytes:x?}");
    }
    // Binary may hold any bytes.
    assert_eq!(decode(b"\xc4\x01\xff"), Ok(Value::bin(vec![0xff])));
}

#[test]
fn duplicate_keys_are_malformed() {
    assert_eq!(
        decode(b"\x82\xa1a\x01\xa1a\x02"),
        Err(PayloadError::DuplicateKey("a".into()))
    );
    // The same key in different str forms is still the same key.
    assert_eq!(
        decode(b"\x82\xa1k\x01\xd9\x01k\x02"),
        Err(PayloadError::DuplicateKey("k".into()))
    );
    assert_eq!(
        decode(b"\x81\xa1x\x91\x82\xa1b\xc0\xa1b\xc0"),
        Err(PayloadError::DuplicateKey("b".into()))
    );
}

#[test]
fn duplicate_keys_are_malformed_in_large_maps() {
    // Small maps are checked by a scan, large ones through a hash index: a
    // duplicate is found on either side of the switch, and at either end.
    for n in [15usize, 16, 17, 18, 100, 5000] {
        let entries = |extra: Option<usize>| {
            let count = n + usize::from(extra.is_some());
            let mut out = vec![0xde];
            out.extend_from_slice(&u16::try_from(count).expect("map16").to_be_bytes());
            for i in (0..n).chain(extra) {
                out.extend(fixstr(&format!("k{i}")));
                out.push(0xc0);
            }
            out
        };
        let map = decode(&entries(None)).expect("distinct keys");
        assert_eq!(map.as_map().map(Map::len), Some(n));
        assert!(map["k0"].is_null() && map.get("k0").is_some());
        for dup in [0, n / 2, n - 1] {
            assert_eq!(
                decode(&entries(Some(dup))),
                Err(PayloadError::DuplicateKey(format!("k{dup}"))),
                "{n} keys, k{dup} again"
            );
        }
    }
}

#[test]
fn non_string_keys_are_malformed() {
    for bytes in [
        &b"\x81\x01\x02"[..],
        b"\x81\xc0\x02",
        b"\x81\xc3\x02",
        b"\x81\xff\x02",
        b"\x81\xcb\x3f\xf0\0\0\0\0\0\0\x02",
        b"\x81\xc4\x01a\x02",
        b"\x81\x90\x02",
        b"\x81\x80\x02",
        b"\x82\xa1a\x01\x02\x03",
    ] {
        assert_eq!(decode(bytes), Err(PayloadError::NonStringKey), "{bytes:x?}");
    }
}

#[test]
fn ext_types_and_c1_are_unsupported() {
    for byte in [0xc1u8, 0xc7, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8] {
        assert_eq!(
            decode(&[byte, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(PayloadError::UnsupportedType(byte))
        );
        assert_eq!(
            decode(&[0x81, 0xa1, b'a', byte, 0, 0]),
            Err(PayloadError::UnsupportedType(byte))
        );
    }
}

#[test]
fn non_finite_floats_are_malformed() {
    for bytes in [
        &b"\xca\x7f\xc0\x00\x00"[..],            // f32 NaN
        b"\xca\x7f\x80\x00\x00",                 // f32 +inf
        b"\xca\xff\x80\x00\x00",                 // f32 -inf
        b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", // f64 NaN
        b"\xcb\xff\xf8\x00\x00\x00\x00\x00\x01", // f64 negative NaN with payload
        b"\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00", // f64 +inf
        b"\xcb\xff\xf0\x00\x00\x00\x00\x00\x00", // f64 -inf
        b"\x81\xa1a\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",
    ] {
        assert_eq!(decode(bytes), Err(PayloadError::NonFinite), "{bytes:x?}");
    }
}

#[test]
fn nesting_128_levels_is_fine_and_129_too_deep() {
    // A top-level map holding 127 nested arrays: 128 levels.
    let levels = |n: usize| cat(&[b"\x81\xa1a", &vec![0x91; n - 2], b"\x90"]);
    let ok = levels(MAX_DEPTH);
    let value = decode(&ok).expect("128 levels decode");
    assert_eq!(encode(&value), ok);
    assert_eq!(decode(&levels(MAX_DEPTH + 1)), Err(PayloadError::TooDeep));
    // Maps only.
    let maps = |n: usize| cat(&[&b"\x81\xa1a".repeat(n), b"\xc0"]);
    assert!(decode(&maps(MAX_DEPTH)).is_ok());
    assert_eq!(decode(&maps(MAX_DEPTH + 1)), Err(PayloadError::TooDeep));
}

#[test]
fn a_megabyte_of_nesting_does_not_overflow_the_stack() {
    assert_eq!(decode(&vec![0x91; 1 << 20]), Err(PayloadError::TooDeep));
    assert_eq!(
        decode(&b"\x81\xa1a".repeat(1 << 18)),
        Err(PayloadError::TooDeep)
    );
    assert_eq!(
        decode(&b"\xdd\x00\x00\x00\x01".repeat(1 << 18)),
        Err(PayloadError::TooDeep)
    );
}

#[test]
fn declared_lengths_beyond_the_input_are_refused_without_allocating() {
    // Each claims ~4 billion items or bytes with a few bytes of input; an
    // allocation of that size would abort the test.
    for bytes in [
        &b"\xdd\xff\xff\xff\xff\x01\x02"[..],
        b"\xdf\xff\xff\xff\xff\xa1a\x01",
        b"\xdb\xff\xff\xff\xffabc",
        b"\xc6\xff\xff\xff\xff\x00\x01",
        b"\xdc\xff\xff\x01",
        b"\xde\xff\xff\xa1a\x01",
        b"\xda\xff\xff",
        b"\xc5\xff\xff",
        // Nested: each level claims the whole remaining input.
        b"\xdd\x00\x00\x00\x0a\xdd\x00\x00\x00\x09\xdd\x00\x00\x00\x08\x01",
    ] {
        assert_eq!(decode(bytes), Err(PayloadError::Truncated), "{bytes:x?}");
    }
}

// ---- the encoder's forms ----

#[test]
fn integer_forms_at_each_boundary() {
    let cases: &[(i128, &[u8])] = &[
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\xcc\x80"),
        (255, b"\xcc\xff"),
        (256, b"\xcd\x01\x00"),
        (65535, b"\xcd\xff\xff"),
        (65536, b"\xce\x00\x01\x00\x00"),
        (4_294_967_295, b"\xce\xff\xff\xff\xff"),
        (4_294_967_296, b"\xcf\x00\x00\x00\x01\x00\x00\x00\x00"),
        (i64::MAX as i128, b"\xcf\x7f\xff\xff\xff\xff\xff\xff\xff"),
        (1 << 63, b"\xcf\x80\x00\x00\x00\x00\x00\x00\x00"),
        (u64::MAX as i128, b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff"),
        (-1, b"\xff"),
        (-32, b"\xe0"),
        (-33, b"\xd0\xdf"),
        (-128, b"\xd0\x80"),
        (-129, b"\xd1\xff\x7f"),
        (-32768, b"\xd1\x80\x00"),
        (-32769, b"\xd2\xff\xff\x7f\xff"),
        (-2_147_483_648, b"\xd2\x80\x00\x00\x00"),
        (-2_147_483_649, b"\xd3\xff\xff\xff\xff\x7f\xff\xff\xff"),
        (i64::MIN as i128, b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
    ];
    for &(n, want) in cases {
        let value = match i64::try_from(n) {
            Ok(i) => Value::from(i),
            Err(_) => Value::from(u64::try_from(n).expect("in range")),
        };
        assert_eq!(encode(&value), want, "{n}");
        assert_eq!(decode(want), Ok(value), "{n}");
    }
}

#[test]
fn floats_are_always_float64() {
    assert_eq!(
        encode(&Value::from(1.5)),
        b"\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00"
    );
    assert_eq!(
        encode(&Value::from(1.5f32)),
        b"\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00"
    );
    assert_eq!(
        encode(&Value::from(0.0)),
        b"\xcb\x00\x00\x00\x00\x00\x00\x00\x00"
    );
    // An integral float stays a float.
    assert_eq!(encode(&Value::from(2.0))[0], 0xcb);
}

#[test]
fn string_forms_at_each_boundary() {
    let cases: &[(usize, &[u8])] = &[
        (0, b"\xa0"),
        (31, b"\xbf"),
        (32, b"\xd9\x20"),
        (255, b"\xd9\xff"),
        (256, b"\xda\x01\x00"),
        (65535, b"\xda\xff\xff"),
        (65536, b"\xdb\x00\x01\x00\x00"),
    ];
    for &(len, head) in cases {
        let s = "s".repeat(len);
        let out = encode(&Value::from(&s));
        assert_eq!(&out[..head.len()], head, "{len}");
        assert_eq!(out.len(), head.len() + len);
        assert_eq!(decode(&out), Ok(Value::from(&s)));
    }
    // The length is in bytes, not characters.
    assert_eq!(encode(&Value::from("é".repeat(16)))[..2], [0xd9, 32]);
}

#[test]
fn binary_forms_at_each_boundary() {
    let cases: &[(usize, &[u8])] = &[
        // The reference writes a lone c4 for empty binary (unreadable); we
        // write the well-formed c4 00.
        (0, b"\xc4\x00"),
        (1, b"\xc4\x01"),
        (255, b"\xc4\xff"),
        (256, b"\xc5\x01\x00"),
        (65535, b"\xc5\xff\xff"),
        (65536, b"\xc6\x00\x01\x00\x00"),
    ];
    for &(len, head) in cases {
        let value = Value::bin(vec![0xab; len]);
        let out = encode(&value);
        assert_eq!(&out[..head.len()], head, "{len}");
        assert_eq!(out.len(), head.len() + len);
        assert_eq!(decode(&out), Ok(value));
    }
}

#[test]
fn array_forms_at_each_boundary() {
    let cases: &[(usize, &[u8])] = &[
        (0, b"\x90"),
        (15, b"\x9f"),
        (16, b"\xdc\x00\x10"),
        (65535, b"\xdc\xff\xff"),
        (65536, b"\xdd\x00\x01\x00\x00"),
    ];
    for &(len, head) in cases {
        let value = Value::from(vec![Value::Null; len]);
        let out = encode(&value);
        assert_eq!(&out[..head.len()], head, "{len}");
        assert_eq!(out.len(), head.len() + len);
        assert_eq!(decode(&out), Ok(value));
    }
}

#[test]
fn map_forms_at_each_boundary() {
    let cases: &[(usize, &[u8])] = &[
        (0, b"\x80"),
        (15, b"\x8f"),
        (16, b"\xde\x00\x10"),
        (65535, b"\xde\xff\xff"),
        (65536, b"\xdf\x00\x01\x00\x00"),
    ];
    for &(len, head) in cases {
        let map: Map = (0..len).map(|i| (i.to_string(), Value::Null)).collect();
        let mut out = Vec::new();
        ziproto::encode_map(&map, &mut out).expect("encodable");
        assert_eq!(&out[..head.len()], head, "{len}");
        assert_eq!(Encoding::ZiProto.decode(&out), Ok(map));
    }
}

#[test]
fn non_finite_floats_cannot_be_encoded() {
    for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let map = Map::from_iter([("f", Value::Float(f))]);
        assert_eq!(
            ziproto::encode_map(&map, &mut Vec::new()),
            Err(PayloadError::NonFinite)
        );
    }
}

#[test]
fn encoding_past_the_depth_limit_is_refused() {
    let mut value = Value::Array(Vec::new());
    for _ in 1..MAX_DEPTH {
        value = Value::Array(vec![value]);
    }
    assert!(ziproto::encode(&value, &mut Vec::new()).is_ok());
    let too_deep = Value::Array(vec![value]);
    assert_eq!(
        ziproto::encode(&too_deep, &mut Vec::new()),
        Err(PayloadError::TooDeep)
    );
    let map = Map::from_iter([("a", too_deep)]);
    assert_eq!(
        ziproto::encode_map(&map, &mut Vec::new()),
        Err(PayloadError::TooDeep)
    );
}

#[test]
fn nested_payload_encodes_as_the_reference_does() {
    // ziproto.encode({"user": "ada", "n": [1, -1, 300, 1.5, None, True], "m": {}})
    let mut map = Map::new();
    map.insert("user", "ada");
    map.insert(
        "n",
        vec![
            Value::from(1),
            Value::from(-1),
            Value::from(300),
            Value::from(1.5),
            Value::Null,
            Value::from(true),
        ],
    );
    map.insert("m", Map::new());
    let mut out = Vec::new();
    ziproto::encode_map(&map, &mut out).expect("encodable");
    assert_eq!(
        out,
        b"\x83\xa4user\xa3ada\xa1n\x96\x01\xff\xcd\x01\x2c\xcb\x3f\xf8\0\0\0\0\0\0\xc0\xc3\xa1m\x80"
    );
}
