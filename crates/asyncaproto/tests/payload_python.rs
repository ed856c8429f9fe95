//! Cross-checks against the Python implementations the original AsyncAPY uses:
//! the PyPI `ziproto` 1.0 package (and `msgpack`, where ziproto 1.0 cannot
//! decode), and Python's own `json.dumps`.
//!
//! These tests need `python3` with the packages of `requirements-test.txt`;
//! without them they fail (never skip) and say how to install them:
//! `python3 -m pip install -r requirements-test.txt`.

use std::io::Write;
use std::process::{Command, Stdio};

use asyncaproto::{json, ziproto, Encoding, Map, PayloadError, Value};

const INSTALL_HINT: &str = "python3 -m pip install -r requirements-test.txt";

/// Runs `tests/python/<script>` with `input` on stdin and returns its stdout.
fn run_python(script: &str, input: &[u8]) -> String {
    let path = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("python3")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}): install Python 3, then {INSTALL_HINT}")
        });
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    // Write from another thread: the script answers while it reads.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("python3 ran");
    writer
        .join()
        .expect("writer thread")
        .expect("stdin written");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({}): {stderr}\n(are the test packages installed? {INSTALL_HINT})",
        output.status
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

// ---- tagged values (see tests/python/common.py) ----

fn untag(tagged: &Value) -> Value {
    let items = tagged.as_array().expect("a tag is an array");
    let kind = items[0].as_str().expect("tag name");
    let arg = items.get(1).unwrap_or(&Value::Null);
    match kind {
        "nil" => Value::Null,
        "bool" => Value::Bool(arg.as_bool().expect("bool")),
        "int" => {
            let digits = arg.as_str().expect("int digits");
            match digits.parse::<i64>() {
                Ok(i) => Value::from(i),
                Err(_) => Value::from(digits.parse::<u64>().expect("u64")),
            }
        }
        "float" => Value::Float(arg.as_str().expect("repr").parse().expect("float repr")),
        "str" => Value::from(arg.as_str().expect("str")),
        "bin" => Value::bin(from_hex(arg.as_str().expect("hex"))),
        "array" => Value::Array(arg.as_array().expect("items").iter().map(untag).collect()),
        "map" => {
            let mut map = Map::new();
            for pair in arg.as_array().expect("pairs") {
                let key = pair[0].as_str().expect("str key");
                assert!(
                    map.insert(key, untag(&pair[1])).is_none(),
                    "duplicate {key}"
                );
            }
            Value::Map(map)
        }
        other => panic!("unknown tag {other}"),
    }
}

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ziproto_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ziproto::encode(value, &mut out).expect("encodable");
    out
}

fn json_text(value: &Value) -> String {
    let mut out = Vec::new();
    json::encode(value, &mut out).expect("encodable");
    String::from_utf8(out).expect("ASCII")
}

/// The reference vectors: (bytes ziproto 1.0 wrote, the value they encode).
fn reference_vectors() -> (Vec<(Vec<u8>, Value)>, Vec<u8>) {
    let output = run_python("ziproto_vectors.py", b"");
    let mut vectors = Vec::new();
    let mut empty_bin = None;
    for line in output.lines() {
        let (first, second) = line.split_once('\t').expect("two columns");
        if first == "EMPTY_BIN" {
            empty_bin = Some(from_hex(second));
            continue;
        }
        let tagged = json::decode(second.as_bytes()).expect("tagged JSON");
        vectors.push((from_hex(first), untag(&tagged)));
    }
    assert!(vectors.len() >= 80, "too few vectors: {}", vectors.len());
    (vectors, empty_bin.expect("EMPTY_BIN line"))
}

// ---- a deterministic generator of varied trees ----

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn finite_f64(&mut self) -> f64 {
        loop {
            let f = f64::from_bits(self.next());
            if f.is_finite() {
                return f;
            }
        }
    }

    fn string(&mut self) -> String {
        const POOL: &[char] = &[
            'a',
            'b',
            'Z',
            '0',
            ' ',
            '"',
            '\\',
            '/',
            '\n',
            '\r',
            '\t',
            '\u{0}',
            '\u{1f}',
            '\u{7f}',
            '\u{80}',
            'é',
            'ß',
            '€',
            '\u{2028}',
            '\u{ffff}',
            '😀',
            '𝄞',
            '\u{10ffff}',
        ];
        let len = self.below(12);
        (0..len)
            .map(|_| POOL[self.below(POOL.len() as u64) as usize])
            .collect()
    }

    fn leaf(&mut self, with_bin: bool) -> Value {
        match self.below(if with_bin { 10 } else { 9 }) {
            0 => Value::Null,
            1 => Value::Bool(self.below(2) == 1),
            2 => Value::Int(self.next() as i64 >> self.below(64)),
            3 => Value::from(self.next()),
            4 => Value::Int(self.below(400) as i64 - 200),
            5 => Value::Float(self.finite_f64()),
            6 => Value::Float((self.below(2_000_000) as f64 - 1e6) / 1e3),
            7 | 8 => Value::Str(self.string()),
            _ => Value::bin(
                (0..self.below(20))
                    .map(|_| self.next() as u8)
                    .collect::<Vec<_>>(),
            ),
        }
    }

    fn value(&mut self, depth: usize, with_bin: bool) -> Value {
        if depth == 0 || self.below(3) > 0 {
            return self.leaf(with_bin);
        }
        let len = if self.below(4) == 0 {
            16 + self.below(8)
        } else {
            self.below(6)
        };
        if self.below(2) == 0 {
            Value::Array((0..len).map(|_| self.value(depth - 1, with_bin)).collect())
        } else {
            let mut map = Map::new();
            for i in 0..len {
                let key = format!("{}{i}", self.string());
                map.insert(key, self.value(depth - 1, with_bin));
            }
            Value::Map(map)
        }
    }
}

/// The largest array or map in `value`: ziproto 1.0 decodes only those of
/// 15 entries or fewer.
fn largest_container(value: &Value) -> usize {
    match value {
        Value::Array(items) => items
            .iter()
            .map(largest_container)
            .fold(items.len(), usize::max),
        Value::Map(map) => map
            .values()
            .map(largest_container)
            .fold(map.len(), usize::max),
        _ => 0,
    }
}

// ---- (a) what the reference encoder writes, we decode ----

#[test]
fn vectors_encoded_by_python_ziproto_decode_to_the_same_value() {
    let (vectors, _) = reference_vectors();
    for (bytes, want) in &vectors {
        let got = ziproto::decode(bytes);
        assert_eq!(
            got.as_ref(),
            Ok(want),
            "{}",
            to_hex(&bytes[..bytes.len().min(40)])
        );
    }
}

#[test]
fn our_encoder_writes_the_same_bytes_as_python_ziproto() {
    let (vectors, empty_bin) = reference_vectors();
    for (bytes, value) in &vectors {
        assert_eq!(
            &ziproto_bytes(value),
            bytes,
            "{}",
            to_hex(&bytes[..bytes.len().min(40)])
        );
    }
    // The one deliberate difference: the reference's empty binary is a lone
    // c4, which nothing can decode; ours is c4 00.
    assert_eq!(empty_bin, b"\xc4");
    assert_eq!(ziproto::decode(&empty_bin), Err(PayloadError::Truncated));
    assert_eq!(ziproto_bytes(&Value::bin(vec![])), b"\xc4\x00");
}

// ---- (b) what our encoder writes, the Python decoders read ----

#[test]
fn python_decodes_what_our_encoder_writes() {
    let (vectors, _) = reference_vectors();
    let mut values: Vec<Value> = vectors.into_iter().map(|(_, v)| v).collect();
    values.push(Value::bin(vec![]));
    values.push(Value::Map(Map::from_iter([("empty", Value::bin(vec![]))])));
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    for _ in 0..300 {
        values.push(rng.value(4, true));
    }

    let mut input = String::new();
    for value in &values {
        let mode = if largest_container(value) <= 15 {
            "both"
        } else {
            "msgpack"
        };
        input.push_str(&format!("{}\t{mode}\n", to_hex(&ziproto_bytes(value))));
    }
    let output = run_python("ziproto_decode.py", input.as_bytes());
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), values.len());
    let mut by_ziproto = 0;
    for (value, line) in values.iter().zip(lines) {
        let pair = json::decode(line.as_bytes()).expect("JSON line");
        assert_eq!(&untag(&pair[0]), value, "msgpack disagrees");
        if !pair[1].is_null() {
            assert_eq!(&untag(&pair[1]), value, "ziproto disagrees");
            by_ziproto += 1;
        }
    }
    assert!(by_ziproto > 200, "ziproto checked only {by_ziproto} values");
}

// ---- (c) our JSON bytes are json.dumps's bytes ----

fn assert_same_as_json_dumps(texts: &[String]) {
    let mut input = String::new();
    for text in texts {
        assert!(!text.contains('\n'));
        input.push_str(text);
        input.push('\n');
    }
    let output = run_python("json_redump.py", input.as_bytes());
    let python: Vec<&str> = output.lines().collect();
    assert_eq!(python.len(), texts.len());
    for (text, python) in texts.iter().zip(python) {
        let value = json::decode(text.as_bytes()).expect("valid JSON");
        assert_eq!(json_text(&value), python, "input: {text}");
    }
}

#[test]
fn json_encoding_matches_json_dumps_on_tricky_values() {
    let texts: Vec<String> = [
        r#"{"foo": "bar"}"#,
        r#"{"status":"failure","error":"ERR_TIMED_OUT"}"#,
        r#"{ "a" : [ 1 , 2 ,3 ] , "b":{ } ,"c":[ ] }"#,
        r#"[1.0, -0.0, 0.0, 1e-05, 0.0001, 1e16, 1e15, 1.5e300, 5e-324, 1.7976931348623157e308]"#,
        r#"[0.1, 0.2, 0.30000000000000004, 3.141592653589793, 2.718281828459045, 1e22, 1e21, 123456789012345678]"#,
        r#"[1E5, 1e+5, 2.50, 100.0, 1e-7, 9.999999999999999e-5, 0.00009999, 12345678901234567890.0]"#,
        r#"[-9223372036854775808, 9223372036854775807, 18446744073709551615, 0, -0, 7]"#,
        "[\"h\u{e9}llo\", \"\u{20ac}\", \"\u{1f600}\", \"\u{10ffff}\", \"\u{ffff}\", \"\u{2028}\", \"\u{80}\"]",
        r#"["\u00e9\u20AC\ud83d\ude00", "\u0000\u001f\u007f", "\b\f\n\r\t\"\\\/", "a/b"]"#,
        r#"{"ключ": {"ネスト": [[[[{"deep": [true, false, null]}]]]]}, "": ""}"#,
        r#"{"emoji 😀": "𝄞 clef", "mixed": ["é", 1, 1.5, null, true]}"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_same_as_json_dumps(&texts);
}

#[test]
fn json_encoding_matches_json_dumps_on_floats_of_every_magnitude() {
    let mut rng = Rng(0xf10a_7f10_a7f1_0a7f);
    let mut texts = Vec::new();
    // Random bit patterns: every exponent, subnormals included.
    for _ in 0..20 {
        let floats: Vec<Value> = (0..200).map(|_| Value::Float(rng.finite_f64())).collect();
        texts.push(json_text(&Value::Array(floats)));
    }
    // Every decimal magnitude, around the fixed/exponent switch especially.
    let mut floats = Vec::new();
    for exp in -325..=308 {
        for mantissa in ["1", "1.5", "9.999999999999999", "1.2345678901234567", "5"] {
            let f: f64 = format!("{mantissa}e{exp}").parse().expect("float");
            if f.is_finite() {
                floats.push(Value::Float(f));
                floats.push(Value::Float(-f));
            }
        }
    }
    for chunk in floats.chunks(500) {
        texts.push(json_text(&Value::Array(chunk.to_vec())));
    }
    // Where ties between two shortest digit strings happen (Python takes the
    // even one): 53-bit mantissas with few fractional bits, or none.
    let mut ties = Vec::new();
    for _ in 0..4000 {
        let mantissa = (1u64 << 52) | (rng.next() >> 12);
        let shift = rng.below(30) as i32 - 5;
        ties.push(Value::Float(mantissa as f64 * 2f64.powi(shift)));
    }
    for chunk in ties.chunks(500) {
        texts.push(json_text(&Value::Array(chunk.to_vec())));
    }
    // Integers as floats, where Python writes a ".0".
    let integral: Vec<Value> = (0..64)
        .map(|shift| Value::Float((1u64 << shift) as f64))
        .collect();
    texts.push(json_text(&Value::Array(integral)));
    assert_same_as_json_dumps(&texts);
}

#[test]
fn json_encoding_matches_json_dumps_on_random_trees() {
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    let texts: Vec<String> = (0..300).map(|_| json_text(&rng.value(5, false))).collect();
    assert_same_as_json_dumps(&texts);
}

#[test]
fn python_reads_the_failure_reply_we_write() {
    for encoding in [Encoding::Json, Encoding::ZiProto] {
        let map = asyncaproto::ErrorCode::RequestMalformed.to_map();
        let mut out = Vec::new();
        encoding.encode_map(&map, &mut out).expect("encodable");
        let mut reference = Vec::new();
        asyncaproto::ErrorCode::RequestMalformed.write_payload(encoding, &mut reference);
        assert_eq!(out, reference);
    }
}
