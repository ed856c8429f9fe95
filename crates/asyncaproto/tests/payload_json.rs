//! JSON payloads: one test per data-model rule, and the exact bytes Python's
//! `json.dumps` writes.

use asyncaproto::{json, Encoding, Map, PayloadError, Value, MAX_DEPTH};

fn decode(text: &str) -> Result<Value, PayloadError> {
    json::decode(text.as_bytes())
}

fn encode(value: &Value) -> String {
    let mut out = Vec::new();
    json::encode(value, &mut out).expect("encodable");
    String::from_utf8(out).expect("JSON output is ASCII")
}

/// `levels` nested containers: a top-level map holding `levels - 1` arrays.
fn nested(levels: usize) -> String {
    let inner = levels - 1;
    format!("{{\"a\": {}{}}}", "[".repeat(inner), "]".repeat(inner))
}

fn nested_value(levels: usize) -> Value {
    let mut value = Value::Array(Vec::new());
    for _ in 1..levels - 1 {
        value = Value::Array(vec![value]);
    }
    Value::Map(Map::from_iter([("a", value)]))
}

// ---- the top level ----

#[test]
fn empty_payload_is_empty() {
    assert_eq!(json::decode(b""), Err(PayloadError::Empty));
    assert_eq!(Encoding::Json.decode(b""), Err(PayloadError::Empty));
}

#[test]
fn whitespace_only_is_truncated() {
    assert_eq!(decode(" \n\t "), Err(PayloadError::Truncated));
}

#[test]
fn empty_map_is_a_valid_payload() {
    assert_eq!(Encoding::Json.decode(b"{}"), Ok(Map::new()));
    assert_eq!(Encoding::Json.decode(b" \r\n{ }\n"), Ok(Map::new()));
}

#[test]
fn non_map_top_level_is_not_a_map() {
    for text in ["[1]", "1", "\"s\"", "null", "true", "1.5"] {
        assert_eq!(
            Encoding::Json.decode(text.as_bytes()),
            Err(PayloadError::NotAMap),
            "{text}"
        );
        assert!(decode(text).is_ok(), "{text} is a valid value");
    }
}

#[test]
fn truncated_values_are_truncated() {
    for text in [
        "{",
        "{\"a\"",
        "{\"a\":",
        "{\"a\": 1",
        "{\"a\": 1,",
        "{\"a\": \"bc",
        "{\"a\": [1, 2",
        "{\"a\": tru",
        "[",
    ] {
        assert_eq!(decode(text), Err(PayloadError::Truncated), "{text:?}");
    }
}

#[test]
fn trailing_bytes_are_counted() {
    assert_eq!(decode("{} {}"), Err(PayloadError::TrailingBytes(2)));
    assert_eq!(decode("{}x"), Err(PayloadError::TrailingBytes(1)));
    assert_eq!(
        decode("{}\n\n  garbage"),
        Err(PayloadError::TrailingBytes(7))
    );
    assert_eq!(decode("{\"a\": 1}}"), Err(PayloadError::TrailingBytes(1)));
    assert_eq!(decode("{}\0"), Err(PayloadError::TrailingBytes(1)));
    // Trailing whitespace is not trailing bytes.
    assert!(decode("{}  \n\t\r").is_ok());
}

// ---- strings and UTF-8 ----

#[test]
fn invalid_utf8_anywhere_is_invalid_utf8() {
    for bytes in [
        &b"{\"a\": \"\xff\"}"[..],
        b"{\"\xc3\x28\": 1}",
        b"{\"a\": \"\xed\xa0\x80\"}", // a surrogate encoded in UTF-8
        b"{\"a\": \"\xc0\xaf\"}",     // overlong
        b"{\"a\": 1}\xff",
        b"\xfe{}",
    ] {
        assert_eq!(
            json::decode(bytes),
            Err(PayloadError::InvalidUtf8),
            "{bytes:?}"
        );
    }
}

#[test]
fn lone_surrogate_escapes_are_invalid_utf8() {
    for text in [
        r#"{"a": "\ud800"}"#,
        r#"{"a": "\ud800x"}"#,
        r#"{"a": "\udc00"}"#,
        r#"{"a": "\ud800\u0041"}"#,
        r#"{"\uDBFF": 1}"#,
    ] {
        assert_eq!(decode(text), Err(PayloadError::InvalidUtf8), "{text}");
    }
    // A proper pair is one astral character.
    assert_eq!(decode(r#""\ud83d\ude00""#), Ok(Value::from("😀")));
}

#[test]
fn escapes_and_unicode_decode() {
    assert_eq!(
        decode(r#""a\"b\\c\/d\n\r\t\b\f\u0000\u00e9\u20AC""#),
        Ok(Value::from("a\"b\\c/d\n\r\t\u{8}\u{c}\0é€"))
    );
    assert_eq!(decode("\"héllo €\""), Ok(Value::from("héllo €")));
}

// ---- keys ----

#[test]
fn duplicate_keys_are_malformed() {
    assert_eq!(
        decode(r#"{"a": 1, "b": 2, "a": 3}"#),
        Err(PayloadError::DuplicateKey("a".into()))
    );
    assert_eq!(
        decode(r#"{"x": [{"k": 1, "k": 1}]}"#),
        Err(PayloadError::DuplicateKey("k".into()))
    );
    // The same key after escapes: still a duplicate.
    assert_eq!(
        decode(r#"{"é": 1, "\u00e9": 2}"#),
        Err(PayloadError::DuplicateKey("é".into()))
    );
    // The same key in two different maps is fine.
    assert!(decode(r#"{"a": {"a": 1}, "b": {"a": 2}}"#).is_ok());
}

#[test]
fn duplicate_keys_are_malformed_in_large_maps() {
    // Small maps are checked by a scan, large ones through a hash index: a
    // duplicate is found on either side of the switch, and at either end.
    for n in [15, 16, 17, 18, 100, 5000] {
        let keys: Vec<String> = (0..n).map(|i| format!("\"k{i}\": {i}")).collect();
        let text = format!("{{{}}}", keys.join(", "));
        let map = decode(&text).expect("distinct keys");
        assert_eq!(map.as_map().map(|m| m.len()), Some(n));
        assert_eq!(map["k0"], 0);
        for dup in [0, n / 2, n - 1] {
            let text = format!("{{{}, \"k{dup}\": null}}", keys.join(", "));
            assert_eq!(
                decode(&text),
                Err(PayloadError::DuplicateKey(format!("k{dup}"))),
                "{n} keys, k{dup} again"
            );
        }
    }
}

#[test]
fn key_order_is_kept() {
    let value = decode(r#"{"z": 1, "a": 2, "m": 3}"#).expect("valid");
    let keys: Vec<&String> = value.as_map().expect("map").keys().collect();
    assert_eq!(keys, ["z", "a", "m"]);
    assert_eq!(encode(&value), r#"{"z": 1, "a": 2, "m": 3}"#);
}

// ---- numbers ----

#[test]
fn integers_span_i64_and_u64() {
    assert_eq!(decode("0"), Ok(Value::Int(0)));
    assert_eq!(decode("-0"), Ok(Value::Int(0)));
    assert_eq!(
        decode(r#"{"a": [-0, -0.0, "-0", -0e0, -0]}"#),
        decode(r#"{"a": [0, -0.0, "-0", -0.0, 0]}"#)
    );
    assert_eq!(decode("-9223372036854775808"), Ok(Value::Int(i64::MIN)));
    assert_eq!(decode("9223372036854775807"), Ok(Value::Int(i64::MAX)));
    assert_eq!(
        decode("9223372036854775808"),
        Ok(Value::UInt(9_223_372_036_854_775_808))
    );
    assert_eq!(decode("18446744073709551615"), Ok(Value::UInt(u64::MAX)));
}

#[test]
fn integers_outside_the_range_are_out_of_range() {
    for text in [
        "18446744073709551616",
        "-9223372036854775809",
        "{\"a\": [1, 2, 100000000000000000000000000000000000000000000000000]}",
        "{\"a\": -99999999999999999999}",
    ] {
        assert_eq!(decode(text), Err(PayloadError::NumberOutOfRange), "{text}");
    }
    // The same magnitudes written as floats are floats.
    assert_eq!(
        decode("18446744073709551616.0"),
        Ok(Value::Float(18446744073709551616.0))
    );
    assert_eq!(decode("1e19"), Ok(Value::Float(1e19)));
    assert_eq!(decode("-1E30"), Ok(Value::Float(-1e30)));
    // An out-of-range literal is refused even when a big float comes first.
    assert_eq!(
        decode("[1e30, 18446744073709551616]"),
        Err(PayloadError::NumberOutOfRange)
    );
    // Digits inside strings are not numbers.
    assert_eq!(
        decode(r#"[1e30, "18446744073709551616"]"#),
        Ok(Value::from(vec![
            Value::from(1e30),
            Value::from("18446744073709551616")
        ]))
    );
}

#[test]
fn floats_beyond_f64_are_out_of_range() {
    assert_eq!(decode("1e400"), Err(PayloadError::NumberOutOfRange));
    assert_eq!(decode("-1.5e309"), Err(PayloadError::NumberOutOfRange));
    // Underflow rounds to zero, as in Python.
    assert_eq!(decode("1e-400"), Ok(Value::Float(0.0)));
}

#[test]
fn fraction_or_exponent_makes_a_float() {
    assert_eq!(decode("1.0"), Ok(Value::Float(1.0)));
    assert_eq!(decode("1e2"), Ok(Value::Float(100.0)));
    assert_eq!(decode("1E+2"), Ok(Value::Float(100.0)));
    assert_eq!(decode("25e-1"), Ok(Value::Float(2.5)));
    let negative_zero = decode("-0.0").expect("valid");
    assert!(matches!(negative_zero, Value::Float(f) if f == 0.0 && f.is_sign_negative()));
    assert_ne!(decode("1.0"), decode("1"));
}

#[test]
fn floats_parse_exactly() {
    // Cases where a fast-path parser can be one ulp off.
    for text in [
        "2.2250738585072011e-308",
        "0.1",
        "9007199254740993.0",
        "1.7976931348623157e308",
        "5e-324",
        "4.9406564584124654e-324",
        "2.4703282292062328e-324",
        "0.30000000000000004",
    ] {
        let want: f64 = text.parse().expect("Rust parses exactly");
        assert_eq!(decode(text), Ok(Value::Float(want)), "{text}");
    }
}

#[test]
fn nan_and_infinity_are_non_finite() {
    for text in [
        "{\"a\": NaN}",
        "{\"a\": Infinity}",
        "{\"a\": -Infinity}",
        "[1, NaN]",
        "NaN",
    ] {
        assert_eq!(decode(text), Err(PayloadError::NonFinite), "{text}");
    }
}

// ---- nesting ----

#[test]
fn nesting_128_levels_is_fine() {
    let value = decode(&nested(MAX_DEPTH)).expect("128 levels decode");
    assert_eq!(value, nested_value(MAX_DEPTH));
    assert_eq!(encode(&value), nested(MAX_DEPTH));
}

#[test]
fn nesting_129_levels_is_too_deep() {
    assert_eq!(decode(&nested(MAX_DEPTH + 1)), Err(PayloadError::TooDeep));
    let deep_maps = format!("{}1{}", "{\"a\": ".repeat(129), "}".repeat(129));
    assert_eq!(decode(&deep_maps), Err(PayloadError::TooDeep));
    let ok_maps = format!("{}1{}", "{\"a\": ".repeat(128), "}".repeat(128));
    assert!(decode(&ok_maps).is_ok());
}

#[test]
fn a_megabyte_of_brackets_does_not_overflow_the_stack() {
    let open = "[".repeat(1 << 20);
    assert_eq!(decode(&open), Err(PayloadError::TooDeep));
    let maps = "{\"a\":".repeat(1 << 18);
    assert_eq!(decode(&maps), Err(PayloadError::TooDeep));
}

#[test]
fn encoding_past_the_depth_limit_is_refused() {
    let mut out = Vec::new();
    assert_eq!(
        json::encode(&nested_value(MAX_DEPTH + 1), &mut out),
        Err(PayloadError::TooDeep)
    );
    let Value::Map(map) = nested_value(MAX_DEPTH + 1) else {
        unreachable!()
    };
    assert_eq!(
        json::encode_map(&map, &mut Vec::new()),
        Err(PayloadError::TooDeep)
    );
}

// ---- RFC 8259 strictness ----

#[test]
fn non_rfc_json_is_a_syntax_error() {
    for text in [
        "{'a': 1}",
        "{a: 1}",
        "{\"a\": 1,}",
        "[1,]",
        "{\"a\": 01}",
        "{\"a\": 1.}",
        "{\"a\": .5}",
        "{\"a\": +1}",
        "{\"a\": 0x10}",
        "{\"a\": // comment\n 1}",
        "/* c */ {}",
        "{\"a\": \"tab\there\"}",
        "{\"a\": \"\\x41\"}",
        "\u{feff}{}",
        "{\"a\" 1}",
        "{\"a\": True}",
        "{\"a\": None}",
    ] {
        assert!(
            matches!(decode(text), Err(PayloadError::Syntax(_))),
            "{text:?}: {:?}",
            decode(text)
        );
    }
}

// ---- binary ----

#[test]
fn binary_is_written_as_base64_and_reads_back_as_a_string() {
    let value = Value::Map(Map::from_iter([("b", Value::bin(*b"\x00\xffhi"))]));
    let text = encode(&value);
    assert_eq!(text, r#"{"b": "AP9oaQ=="}"#);
    assert_eq!(
        decode(&text),
        Ok(Value::Map(Map::from_iter([("b", "AP9oaQ==")])))
    );
    assert_eq!(encode(&Value::bin(Vec::new())), "\"\"");
}

// ---- encoding as Python's json.dumps ----

#[test]
fn separators_and_layout_match_json_dumps() {
    let mut inner = Map::new();
    inner.insert("k", Value::Null);
    let mut map = Map::new();
    map.insert("s", "v");
    map.insert("i", -3);
    map.insert("f", 2.5);
    map.insert("t", true);
    map.insert("n", Value::Null);
    map.insert(
        "a",
        vec![Value::from(1), Value::from("x"), Value::from(false)],
    );
    map.insert("m", inner);
    map.insert("e", Value::Array(vec![]));
    map.insert("o", Map::new());
    let mut out = Vec::new();
    json::encode_map(&map, &mut out).expect("encodable");
    assert_eq!(
        String::from_utf8(out).expect("ASCII"),
        r#"{"s": "v", "i": -3, "f": 2.5, "t": true, "n": null, "a": [1, "x", false], "m": {"k": null}, "e": [], "o": {}}"#
    );
}

#[test]
fn the_failure_reply_is_byte_identical() {
    let mut map = Map::new();
    map.insert("status", "failure");
    map.insert("error", "ERR_REQUEST_MALFORMED");
    let mut out = Vec::new();
    json::encode_map(&map, &mut out).expect("encodable");
    assert_eq!(
        out,
        br#"{"status": "failure", "error": "ERR_REQUEST_MALFORMED"}"#
    );
}

#[test]
fn strings_are_ascii_with_python_escapes() {
    let cases = [
        ("plain", r#""plain""#),
        ("quote\" back\\ slash/", r#""quote\" back\\ slash/""#),
        ("\n\r\t\u{8}\u{c}", r#""\n\r\t\b\f""#),
        ("\0\u{1}\u{1f}\u{7f}", r#""\u0000\u0001\u001f\u007f""#),
        ("é€", r#""\u00e9\u20ac""#),
        ("😀𝄞", r#""\ud83d\ude00\ud834\udd1e""#),
        (
            "\u{ffff}\u{10000}\u{10ffff}",
            r#""\uffff\ud800\udc00\udbff\udfff""#,
        ),
        ("\u{80}\u{a0}\u{2028}", r#""\u0080\u00a0\u2028""#),
        ("", r#""""#),
    ];
    for (s, want) in cases {
        assert_eq!(encode(&Value::from(s)), want, "{s:?}");
        assert_eq!(decode(want), Ok(Value::from(s)));
    }
    // Keys are escaped the same way.
    let map = Value::Map(Map::from_iter([("ключ", 1)]));
    assert_eq!(encode(&map), r#"{"\u043a\u043b\u044e\u0447": 1}"#);
}

#[test]
fn integers_are_decimal() {
    for (value, want) in [
        (Value::from(0), "0"),
        (Value::from(-1), "-1"),
        (Value::from(i64::MIN), "-9223372036854775808"),
        (Value::from(i64::MAX), "9223372036854775807"),
        (Value::from(u64::MAX), "18446744073709551615"),
        (Value::from(1234567890), "1234567890"),
    ] {
        assert_eq!(encode(&value), want);
    }
}

#[test]
fn floats_are_python_repr() {
    for (f, want) in [
        (1.0, "1.0"),
        (-0.0, "-0.0"),
        (0.0001, "0.0001"),
        (1e-5, "1e-05"),
        (1e16, "1e+16"),
        (1e15, "1000000000000000.0"),
        (1.5e300, "1.5e+300"),
        (0.1 + 0.2, "0.30000000000000004"),
        (123456789.125, "123456789.125"),
        (5e-324, "5e-324"),
        (-1.7976931348623157e308, "-1.7976931348623157e+308"),
    ] {
        assert_eq!(encode(&Value::from(f)), want);
        assert_eq!(decode(want), Ok(Value::Float(f)));
    }
}

#[test]
fn non_finite_floats_cannot_be_encoded() {
    for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let value = Value::Array(vec![Value::Float(f)]);
        assert_eq!(
            json::encode(&value, &mut Vec::new()),
            Err(PayloadError::NonFinite)
        );
    }
}

#[test]
fn display_is_the_json_encoding_and_never_fails() {
    let value = decode(r#"{"a": [1, 2.5, "é"], "b": null}"#).expect("valid");
    assert_eq!(value.to_string(), encode(&value));
    assert_eq!(value.as_map().expect("map").to_string(), encode(&value));
    // Where the encoder refuses, Display still prints something readable.
    let odd = Value::Array(vec![
        Value::Float(f64::NAN),
        Value::Float(f64::INFINITY),
        Value::Float(f64::NEG_INFINITY),
    ]);
    assert_eq!(odd.to_string(), "[NaN, Infinity, -Infinity]");
    let deep = nested_value(MAX_DEPTH + 1);
    assert!(deep.to_string().contains("[...]"));
}

#[test]
fn encode_appends_to_what_is_there() {
    let mut out = b"prefix:".to_vec();
    json::encode(&Value::from(1), &mut out).expect("encodable");
    assert_eq!(out, b"prefix:1");
}
