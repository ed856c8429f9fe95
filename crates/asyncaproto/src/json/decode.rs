//! Decoding: a direct parser for the common case, and the `serde_json`
//! fallback that decodes everything else and classifies its errors.

use serde::de::DeserializeSeed;

use crate::payload_error::PayloadError;
use crate::value::{DecodeState, Map, Spares, Value, ValueSeed};
use crate::MAX_DEPTH;

/// Decodes one JSON value that spans the whole of `bytes`.
///
/// `bytes` must be UTF-8 ([`PayloadError::InvalidUtf8`]) and hold exactly one
/// RFC 8259 value, optionally surrounded by whitespace; see the
/// [data-model rules](crate::value#data-model-rules) for the rest. Other
/// details: [`PayloadError::TrailingBytes`] counts from the first
/// non-whitespace byte after the value; whitespace alone is
/// [`PayloadError::Truncated`]; Python's `NaN`, `Infinity` and `-Infinity`
/// literals are [`PayloadError::NonFinite`]; any other deviation from RFC 8259
/// (comments, trailing commas, single quotes, a byte-order mark) is
/// [`PayloadError::Syntax`].
///
/// ```
/// use asyncaproto::{json, PayloadError, Value};
///
/// assert_eq!(json::decode(b"[1, 1.0, null]")?, Value::from(vec![Value::from(1), 1.0.into(), Value::Null]));
/// assert_eq!(json::decode(br#"{"a": 1, "a": 2}"#), Err(PayloadError::DuplicateKey("a".into())));
/// assert_eq!(json::decode(b"{} {}"), Err(PayloadError::TrailingBytes(2)));
/// assert_eq!(json::decode(b"[NaN]"), Err(PayloadError::NonFinite));
/// assert_eq!(json::decode(b"18446744073709551616"), Err(PayloadError::NumberOutOfRange));
/// # Ok::<(), PayloadError>(())
/// ```
pub fn decode(bytes: &[u8]) -> Result<Value, PayloadError> {
    decode_with(bytes, &mut Spares::new())
}

/// As [`decode`], filling strings and map entry vectors kept in `spares`
/// (from earlier payloads) before allocating new ones.
///
/// ```
/// use asyncaproto::{json, Spares, Value};
///
/// let mut spares = Spares::new();
/// let value = json::decode_with(br#"{"k": "v"}"#, &mut spares)?;
/// assert_eq!(value, json::decode(br#"{"k": "v"}"#)?);
/// # Ok::<(), asyncaproto::PayloadError>(())
/// ```
pub fn decode_with(bytes: &[u8], spares: &mut Spares) -> Result<Value, PayloadError> {
    if bytes.is_empty() {
        return Err(PayloadError::Empty);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| PayloadError::InvalidUtf8)?;
    // The common case, valid JSON within the rules, takes a direct parser;
    // anything it does not accept (an error, or a rare form such as a lone
    // surrogate escape or an out-of-range number) goes to serde_json, which
    // names the error. Both build the same value from what the first accepts.
    if let Some(value) = FastParser::parse(text, spares) {
        return Ok(value);
    }
    decode_slow(text)
}

/// Decodes valid UTF-8 `text` with serde_json and the rule-enforcing visitor:
/// the reference decoder, and the one that reports errors.
fn decode_slow(text: &str) -> Result<Value, PayloadError> {
    let mut de = serde_json::Deserializer::from_str(text);
    // serde_json's own limit allows only 127 levels. Ours (MAX_DEPTH) is checked
    // by the visitor before each nested array or object is entered, so the
    // recursion stays bounded without serde_json's counter.
    de.disable_recursion_limit();
    let mut state = DecodeState::default();
    let mut value = match ValueSeed::new(&mut state).deserialize(&mut de) {
        Ok(value) => value,
        Err(e) => return Err(state.error.take().unwrap_or_else(|| classify(text, &e))),
    };
    if let Err(e) = de.end() {
        // `end` fails only on a non-whitespace byte after the value.
        return Err(match error_offset(text, &e) {
            Some(offset) => PayloadError::TrailingBytes(text.len() - offset),
            None => classify(text, &e),
        });
    }
    if state.huge_float && has_out_of_range_integer(text) {
        return Err(PayloadError::NumberOutOfRange);
    }
    if state.negative_zero {
        fix_negative_zero_integers(&mut value, text);
    }
    Ok(value)
}

/// A direct JSON parser for the common case: it builds the [`Value`] of
/// valid JSON within the data-model rules, or gives up (`None`) on anything
/// else, without saying why; [`decode_slow`] then decodes the text again and
/// reports the error. It never accepts what the slow path refuses, and builds
/// the same value (a differential test below checks it).
struct FastParser<'t, 's> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
    /// Where strings and map entry vectors are taken from first.
    spares: &'s mut Spares,
}

impl<'t, 's> FastParser<'t, 's> {
    /// The value of the whole of `text`, surrounded by optional whitespace.
    fn parse(text: &'t str, spares: &'s mut Spares) -> Option<Value> {
        let mut p = FastParser {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            spares,
        };
        p.skip_whitespace();
        let value = p.value(0)?;
        p.skip_whitespace();
        (p.pos == p.bytes.len()).then_some(value)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// Reads a value (at its first byte) that sits inside `depth` arrays and
    /// maps.
    fn value(&mut self, depth: usize) -> Option<Value> {
        match self.peek()? {
            b'"' => self.string().map(Value::Str),
            b'{' => self.object(depth + 1).map(Value::Map),
            b'[' => self.array(depth + 1),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Option<Value> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word).then(|| {
            self.pos = end;
            value
        })
    }

    /// Reads an object at nesting level `depth`; a duplicate key gives up.
    fn object(&mut self, depth: usize) -> Option<Map> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.pos += 1;
        self.skip_whitespace();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(Map::new());
        }
        // JSON gives no count: room for a typical small object saves growing.
        let mut entries = self.spares.entries(8);
        loop {
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek()? != b':' {
                return None;
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.value(depth)?;
            entries.push((key, value));
            self.skip_whitespace();
            let b = self.peek()?;
            self.pos += 1;
            match b {
                b',' => self.skip_whitespace(),
                // Duplicate keys are looked for once all are known, so that
                // a large map's index is built once, at its size.
                b'}' => return Map::try_from_entries(entries),
                _ => return None,
            }
        }
    }

    /// Reads an array at nesting level `depth`.
    fn array(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(Value::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_whitespace();
            let b = self.peek()?;
            self.pos += 1;
            match b {
                b',' => self.skip_whitespace(),
                b']' => return Some(Value::Array(items)),
                _ => return None,
            }
        }
    }

    /// Reads a string (at its opening quote). Gives up on a control
    /// character, a malformed escape and an escape of half a surrogate pair.
    fn string(&mut self) -> Option<String> {
        let start = self.pos + 1;
        let mut i = self.skip_plain(start);
        if self.bytes.get(i) == Some(&b'"') {
            self.pos = i + 1;
            let text = self.text.get(start..i)?;
            return Some(self.spares.string(text));
        }
        let mut out = self.spares.string_with_capacity(i - start + 8);
        let mut run = start;
        loop {
            match *self.bytes.get(i)? {
                b'"' => {
                    out.push_str(self.text.get(run..i)?);
                    self.pos = i + 1;
                    return Some(out);
                }
                b'\\' => {
                    out.push_str(self.text.get(run..i)?);
                    let escape = *self.bytes.get(i + 1)?;
                    i += 2;
                    let c = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let unit = self.hex4(i)?;
                            i += 4;
                            match unit {
                                0xd800..=0xdbff => {
                                    if self.bytes.get(i..i + 2)? != b"\\u" {
                                        return None;
                                    }
                                    let low = self.hex4(i + 2)?;
                                    if !(0xdc00..=0xdfff).contains(&low) {
                                        return None;
                                    }
                                    i += 6;
                                    let high = u32::from(unit - 0xd800);
                                    char::from_u32(
                                        0x10000 + (high << 10) + u32::from(low - 0xdc00),
                                    )?
                                }
                                0xdc00..=0xdfff => return None,
                                _ => char::from_u32(u32::from(unit))?,
                            }
                        }
                        _ => return None,
                    };
                    out.push(c);
                    run = i;
                    i = self.skip_plain(i);
                }
                // A control character (a malformed string).
                _ => return None,
            }
        }
    }

    /// The position of the first byte at or after `i` that ends a plain run
    /// inside a string: a quote, a backslash or a control character (or the
    /// end of the text).
    fn skip_plain(&self, i: usize) -> usize {
        super::scan::string_run_end(self.bytes, i)
    }

    /// The 4 hex digits at `i`, as a UTF-16 unit.
    fn hex4(&self, i: usize) -> Option<u16> {
        let digits = self.bytes.get(i..i + 4)?;
        let mut unit = 0u16;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return None,
            };
            unit = unit << 4 | u16::from(v);
        }
        Some(unit)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Reads a number: an integer (digits alone, in `i64 ∪ u64`; `-0` is
    /// `0`) or a finite float (with a fraction or an exponent). Gives up on
    /// malformed numbers and out-of-range ones.
    fn number(&mut self) -> Option<Value> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        let int_end = self.pos;
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        if float {
            // Rust's parser rounds correctly, as serde_json's float_roundtrip.
            let f: f64 = self.text.get(start..self.pos)?.parse().ok()?;
            return f.is_finite().then_some(Value::Float(f));
        }
        let mut n: u64 = 0;
        for &d in self.bytes.get(int_start..int_end)? {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        if !negative {
            Some(Value::from_u64(n))
        } else if n <= 1 << 63 {
            // -2^63 wraps to itself: i64::MIN.
            Some(Value::Int((n as i64).wrapping_neg()))
        } else {
            None
        }
    }
}

/// The [`PayloadError`] for a `serde_json` error the visitor did not raise.
fn classify(text: &str, e: &serde_json::Error) -> PayloadError {
    if e.classify() == serde_json::error::Category::Eof {
        return PayloadError::Truncated;
    }
    let message = e.to_string();
    if message.starts_with("number out of range") {
        PayloadError::NumberOutOfRange
    } else if message.contains("surrogate")
        || message.starts_with("invalid unicode code point")
        || (message.starts_with("unexpected end of hex escape")
            && error_offset(text, e).is_some_and(|at| follows_high_surrogate(text, at)))
    {
        // A `\uXXXX` escape that names half a surrogate pair: no UTF-8 form
        // (Python would accept it into a str; Rust strings cannot hold it).
        PayloadError::InvalidUtf8
    } else if error_offset(text, e).is_some_and(|at| non_finite_literal_at(text, at)) {
        PayloadError::NonFinite
    } else {
        PayloadError::Syntax(message)
    }
}

/// Whether the 6 bytes before `at` are a `\uD800`-`\uDBFF` escape: serde_json
/// reports a lone high surrogate as the end of a hex escape there.
fn follows_high_surrogate(text: &str, at: usize) -> bool {
    let Some(escape) = at
        .checked_sub(6)
        .and_then(|start| text.as_bytes().get(start..at))
    else {
        return false;
    };
    escape.starts_with(b"\\u")
        && escape[2].eq_ignore_ascii_case(&b'd')
        && matches!(escape[3].to_ascii_lowercase(), b'8' | b'9' | b'a' | b'b')
}

/// Whether the text around byte `at` (where `serde_json` stopped) is one of
/// the non-finite literals Python's `json.dumps` writes: `NaN`, `Infinity`,
/// `-Infinity`.
fn non_finite_literal_at(text: &str, at: usize) -> bool {
    let bytes = text.as_bytes();
    // serde_json stops on the literal's first letter; after a `-` on the `I`.
    let start = if at > 0 && bytes.get(at - 1) == Some(&b'-') {
        at - 1
    } else {
        at
    };
    let rest = bytes.get(start..).unwrap_or_default();
    rest.starts_with(b"NaN") || rest.starts_with(b"Infinity") || rest.starts_with(b"-Infinity")
}

/// The byte offset a `serde_json` error points at (its line and column, both
/// 1-based, the column counting bytes).
fn error_offset(text: &str, e: &serde_json::Error) -> Option<usize> {
    let (line, column) = (e.line(), e.column());
    if line == 0 || column == 0 {
        return None;
    }
    let line_start = if line == 1 {
        0
    } else {
        text.bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .nth(line - 2)
            .map(|(i, _)| i + 1)?
    };
    let offset = line_start + column - 1;
    (offset < text.len()).then_some(offset)
}

/// Whether valid JSON `text` holds an integer literal (no fraction, no
/// exponent) outside `i64 ∪ u64`, which `serde_json` would silently read as a
/// float. Only called when such a float was seen, so the common path never
/// scans twice.
fn has_out_of_range_integer(text: &str) -> bool {
    NumberTokens::new(text).any(|token| {
        is_integer_literal(token) && token.parse::<i64>().is_err() && token.parse::<u64>().is_err()
    })
}

fn is_integer_literal(token: &str) -> bool {
    !token.contains(['.', 'e', 'E'])
}

/// `serde_json` reads the integer literal `-0` as the float `-0.0`; Python (and
/// our rule: no fraction, no exponent, an integer) reads it as `0`. Walks the
/// tree in document order beside the number literals of `text` and turns each
/// `-0.0` that was written `-0` into `Int(0)`. Only called when a `-0.0` was seen.
fn fix_negative_zero_integers(value: &mut Value, text: &str) {
    fn walk<'t>(value: &mut Value, tokens: &mut NumberTokens<'t>) {
        match value {
            Value::Int(_) | Value::UInt(_) => {
                tokens.next();
            }
            Value::Float(f) => {
                if tokens.next().is_some_and(is_integer_literal) && *f == 0.0 {
                    *value = Value::Int(0);
                }
            }
            // Arrays, and maps (whose order is the document's: duplicate keys
            // are refused, so every key was appended once).
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, tokens)),
            Value::Map(map) => map.values_mut().for_each(|v| walk(v, tokens)),
            Value::Null | Value::Bool(_) | Value::Str(_) | Value::Bin(_) => {}
        }
    }
    walk(value, &mut NumberTokens::new(text));
}

/// The number literals of valid JSON text, in order (skipping strings).
struct NumberTokens<'t> {
    text: &'t str,
    pos: usize,
}

impl<'t> NumberTokens<'t> {
    fn new(text: &'t str) -> Self {
        NumberTokens { text, pos: 0 }
    }
}

impl<'t> Iterator for NumberTokens<'t> {
    type Item = &'t str;

    fn next(&mut self) -> Option<&'t str> {
        let bytes = self.text.as_bytes();
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b'"' => {
                    self.pos += 1;
                    while let Some(&c) = bytes.get(self.pos) {
                        self.pos += if c == b'\\' { 2 } else { 1 };
                        if c == b'"' {
                            break;
                        }
                    }
                }
                b'-' | b'0'..=b'9' => {
                    let start = self.pos;
                    while bytes.get(self.pos).is_some_and(|c| {
                        matches!(c, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                    }) {
                        self.pos += 1;
                    }
                    return self.text.get(start..self.pos);
                }
                _ => self.pos += 1,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_plain_stops_exactly_at_quotes_backslashes_and_controls() {
        let all = *b"abcdefghijklmnopq";
        for len in 0..=all.len() {
            for b in 0..=255u8 {
                for pos in 0..len {
                    let mut bytes = all;
                    bytes[pos] = b;
                    // A second stop byte later must not hide the first.
                    if pos + 1 < len {
                        bytes[pos + 1] = b'"';
                    }
                    // Not UTF-8 for some bytes: only the byte scan is tested.
                    let p = FastParser {
                        text: "",
                        bytes: &bytes[..len],
                        pos: 0,
                        spares: &mut Spares::new(),
                    };
                    let stop = b == b'"' || b == b'\\' || b < 0x20;
                    let want = if stop { pos } else { (pos + 1).min(len) };
                    assert_eq!(p.skip_plain(0), want, "{b:#x} at {pos} of {len}");
                    assert_eq!(p.skip_plain(pos), want, "{b:#x} at {pos} of {len}");
                }
            }
            let p = FastParser {
                text: "",
                bytes: &all[..len],
                pos: 0,
                spares: &mut Spares::new(),
            };
            assert_eq!(p.skip_plain(0), len);
            assert_eq!(p.skip_plain(len + 3), len + 3);
        }
    }

    /// Compares the fast parser with the serde_json path on `text`: whatever
    /// the fast one accepts, the slow one accepts as the same value (Debug
    /// compares floats by sign too, and maps in order).
    fn check_fast_path(text: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        if let Some(fast) = FastParser::parse(text, &mut Spares::new()) {
            let slow = decode_slow(text);
            proptest::prop_assert_eq!(
                format!("{slow:?}"),
                format!("{:?}", Ok::<_, PayloadError>(fast)),
                "{:?}",
                text
            );
        }
        Ok(())
    }

    #[test]
    fn fast_path_agrees_with_serde_json() {
        let cases = [
            r#"{"data": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
            r#" {"a" : [1, -0, -0.0, 0.5e-3, 1E+2, true, false, null, {}, []] } "#,
            r#"["\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t", "\uD83D\uDE00", "é😀"]"#,
            "[18446744073709551615, 9223372036854775807, 9223372036854775808]",
            "[-9223372036854775808, -9223372036854775807, 1.7976931348623157e308]",
            "[5e-324, 2.2250738585072014e-308, 1e-400, 0.1, 123456789012345678901234.5]",
        ];
        for text in cases {
            assert!(
                FastParser::parse(text, &mut Spares::new()).is_some(),
                "{text}"
            );
            check_fast_path(text).expect("agrees");
        }
        let refused = [
            r#"{"a": 1, "a": 2}"#,
            "[1e400]",
            "[-1e400]",
            "[18446744073709551616]",
            "[-9223372036854775809]",
            r#"["\ud800"]"#,
            r#"["\udc00"]"#,
            r#"["\ud800\u0041"]"#,
            "[01]",
            "[1.]",
            "[.5]",
            "[1e]",
            "[+1]",
            "[-]",
            "[NaN]",
            "[1,]",
            r#"{"a":1,}"#,
            "[\"\t\"]",
            r#"["\x"]"#,
            r#"["\u12"]"#,
            "{} {}",
            "[tru]",
            "\u{feff}{}",
            "",
            " ",
        ];
        for text in refused {
            assert!(
                FastParser::parse(text, &mut Spares::new()).is_none(),
                "{text}"
            );
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(FastParser::parse(&deep, &mut Spares::new()).is_none());
        let deep = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(FastParser::parse(&deep, &mut Spares::new()).is_some());
    }

    /// JSON-like text: valid structure around leaves that are sometimes
    /// malformed or outside the rules, with keys that sometimes repeat.
    fn json_like() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop::sample::select(vec![
            "0",
            "-0",
            "-0.0",
            "0.0",
            "1",
            "-1",
            "12",
            "1.5",
            "-2.5e3",
            "1E+2",
            "1e-2",
            "1e400",
            "-1e400",
            "1e-400",
            "01",
            "1.",
            ".5",
            "-",
            "+1",
            "1e",
            "18446744073709551615",
            "18446744073709551616",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999999",
            "0.30000000000000004",
            "true",
            "false",
            "null",
            "tru",
            "nul",
            "NaN",
            "-Infinity",
            "\"\"",
            "\"a\"",
            "\"\\u00e9\"",
            "\"\\ud83d\\ude00\"",
            "\"\\uD83D\\uDE00\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "\"\\ud800x\"",
            "\"\\u12\"",
            "\"\\x\"",
            "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
            "\"tab\there\"",
            "\"é😀\"",
            "\"\u{7f}\"",
            "\"abcdefghijklmnopq\\\"rstuvwxyz\"",
            "{}",
            "[]",
            "'a'",
            "",
        ])
        .prop_map(str::to_owned);
        let space = prop::sample::select(vec!["", "", " ", "\n", "\t ", "\r\n", "\u{a0}"]);
        let key = prop::sample::select(vec!["\"a\"", "\"b\"", "\"\\u0061\"", "\"c\\nd\"", "1"]);
        // Valid leaves, for maps large enough to have a hash index.
        let valid = prop::sample::select(vec!["1", "-0", "2.5", "null", "\"s\"", "[]", "{}"]);
        leaf.prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec((inner.clone(), space.clone()), 0..6).prop_map(|items| {
                    let items: Vec<String> = items
                        .into_iter()
                        .map(|(v, s)| format!("{s}{v}{s}"))
                        .collect();
                    format!("[{}]", items.join(","))
                }),
                proptest::collection::vec((key.clone(), inner, space.clone()), 0..6).prop_map(
                    |entries| {
                        let entries: Vec<String> = entries
                            .into_iter()
                            .map(|(k, v, s)| format!("{s}{k}{s}:{s}{v}"))
                            .collect();
                        format!("{{{}}}", entries.join(","))
                    }
                ),
                // Past the size where maps get a hash index, keys sometimes
                // repeating.
                proptest::collection::vec(("[a-z]{1,2}", valid.clone()), 14..24).prop_map(
                    |entries| {
                        let entries: Vec<String> = entries
                            .into_iter()
                            .map(|(k, v)| format!("\"{k}\": {v}"))
                            .collect();
                        format!("{{{}}}", entries.join(", "))
                    }
                ),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn fast_path_agrees_on_json_like_text(text in json_like(), trailing in "[ ,}x]{0,2}") {
            check_fast_path(&text)?;
            check_fast_path(&format!(" {text}{trailing}"))?;
        }
    }

    #[test]
    fn out_of_range_scan() {
        assert!(has_out_of_range_integer("[18446744073709551616]"));
        assert!(has_out_of_range_integer("{\"a\": -9223372036854775809}"));
        assert!(!has_out_of_range_integer(
            "[18446744073709551615, -9223372036854775808]"
        ));
        assert!(!has_out_of_range_integer("[1e30, 18446744073709551616.0]"));
        assert!(!has_out_of_range_integer(
            r#"["18446744073709551616", "\"99999999999999999999"]"#
        ));
        let tokens: Vec<&str> =
            NumberTokens::new(r#"{"a\"1": [-0, 1.5e3, "2"], "b": 3}"#).collect();
        assert_eq!(tokens, ["-0", "1.5e3", "3"]);
    }
}
