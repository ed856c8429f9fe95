//! Encoding: the writer, byte for byte as Python's `json.dumps(obj)`.

use std::fmt::{self, Write as _};

use bytes::BufMut;

use super::scan::plain_run_end;
use crate::payload_error::PayloadError;
use crate::value::{Map, Value};
use crate::MAX_DEPTH;

/// Appends `value` as JSON, as Python's `json.dumps(value)` writes it.
///
/// Fails with [`PayloadError::NonFinite`] for a NaN or infinite float and
/// [`PayloadError::TooDeep`] past [`MAX_DEPTH`] levels; `dst` may then hold
/// part of the encoding.
///
/// ```
/// use asyncaproto::{json, Value};
/// let mut out = Vec::new();
/// json::encode(&Value::from(vec![Value::from(1e16), Value::bin(*b"hi"), Value::from("\n")]), &mut out)?;
/// assert_eq!(out, br#"[1e+16, "aGk=", "\n"]"#);
/// # Ok::<(), asyncaproto::PayloadError>(())
/// ```
pub fn encode(value: &Value, dst: &mut impl BufMut) -> Result<(), PayloadError> {
    Writer::strict(dst).value(value, 0)
}

/// Appends `map` as a JSON object, as Python's `json.dumps(map)` writes it.
///
/// Fails like [`encode`].
pub fn encode_map(map: &Map, dst: &mut impl BufMut) -> Result<(), PayloadError> {
    Writer::strict(dst).map(map, 1)
}

/// Writes `value` for `Display`: the JSON encoding, with Python's `NaN` and
/// `Infinity` for non-finite floats and `[...]`/`{...}` past [`MAX_DEPTH`].
pub(crate) fn write_display(value: &Value, out: &mut Vec<u8>) {
    // A lenient writer never fails.
    let _ = Writer::lenient(out).value(value, 0);
}

/// Writes `map` for `Display`, as [`write_display`].
pub(crate) fn write_display_map(map: &Map, out: &mut Vec<u8>) {
    let _ = Writer::lenient(out).map(map, 1);
}

/// The JSON writer: strict for the wire, lenient for `Display`.
struct Writer<'a, B> {
    dst: &'a mut B,
    lenient: bool,
}

impl<'a, B: BufMut> Writer<'a, B> {
    fn strict(dst: &'a mut B) -> Self {
        Writer {
            dst,
            lenient: false,
        }
    }

    fn lenient(dst: &'a mut B) -> Self {
        Writer { dst, lenient: true }
    }

    /// Writes `value`, which sits inside `depth` arrays and maps.
    fn value(&mut self, value: &Value, depth: usize) -> Result<(), PayloadError> {
        match value {
            Value::Null => self.dst.put_slice(b"null"),
            Value::Bool(true) => self.dst.put_slice(b"true"),
            Value::Bool(false) => self.dst.put_slice(b"false"),
            Value::Int(i) => write_i64(self.dst, *i),
            Value::UInt(u) => write_u64(self.dst, *u),
            Value::Float(f) => self.float(*f)?,
            Value::Str(s) => write_str(self.dst, s),
            Value::Bin(b) => write_base64(self.dst, b),
            Value::Array(items) => self.array(items, depth + 1)?,
            Value::Map(map) => self.map(map, depth + 1)?,
        }
        Ok(())
    }

    /// Writes an array at nesting level `depth` (1 = top level).
    fn array(&mut self, items: &[Value], depth: usize) -> Result<(), PayloadError> {
        if depth > MAX_DEPTH {
            return self.too_deep(b"[...]");
        }
        self.dst.put_u8(b'[');
        let mut items = items.iter();
        if let Some(first) = items.next() {
            self.value(first, depth)?;
            for item in items {
                self.dst.put_slice(b", ");
                self.value(item, depth)?;
            }
        }
        self.dst.put_u8(b']');
        Ok(())
    }

    /// Writes a map at nesting level `depth` (1 = top level).
    fn map(&mut self, map: &Map, depth: usize) -> Result<(), PayloadError> {
        if depth > MAX_DEPTH {
            return self.too_deep(b"{...}");
        }
        self.dst.put_u8(b'{');
        let mut first = true;
        for (key, value) in map {
            if !first {
                self.dst.put_slice(b", ");
            }
            first = false;
            write_str(self.dst, key);
            self.dst.put_slice(b": ");
            self.value(value, depth)?;
        }
        self.dst.put_u8(b'}');
        Ok(())
    }

    fn too_deep(&mut self, placeholder: &[u8]) -> Result<(), PayloadError> {
        if self.lenient {
            self.dst.put_slice(placeholder);
            Ok(())
        } else {
            Err(PayloadError::TooDeep)
        }
    }

    fn float(&mut self, f: f64) -> Result<(), PayloadError> {
        if f.is_finite() {
            write_f64(self.dst, f);
            Ok(())
        } else if self.lenient {
            // What Python's json.dumps writes (allow_nan=True).
            self.dst.put_slice(if f.is_nan() {
                &b"NaN"[..]
            } else if f > 0.0 {
                b"Infinity"
            } else {
                b"-Infinity"
            });
            Ok(())
        } else {
            Err(PayloadError::NonFinite)
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// For each byte: 0 if it is written as is inside a JSON string, else the
/// letter of its short escape (`n` for `\n`), or `u` for `\u00XX`. Bytes of
/// multi-byte UTF-8 characters are marked `u` too (written as `\uXXXX`).
static ESCAPE: [u8; 256] = {
    let mut table = [b'u'; 256];
    let mut b = 0x20;
    while b < 0x7f {
        table[b] = 0;
        b += 1;
    }
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table
};

/// Writes `s` as a JSON string the way Python's `ensure_ascii` encoder does.
fn write_str<B: BufMut>(dst: &mut B, s: &str) {
    dst.put_u8(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = plain_run_end(bytes, 0);
    if i == bytes.len() {
        // Nothing to escape: the common case.
        dst.put_slice(bytes);
        dst.put_u8(b'"');
        return;
    }
    while let Some(&b) = bytes.get(i) {
        // `b` needs an escape: a plain run never ends on anything else.
        if start < i {
            dst.put_slice(bytes.get(start..i).unwrap_or_default());
        }
        if b >= 0x80 {
            // `i` is at a character boundary: only whole characters and ASCII
            // bytes are ever stepped over.
            let c = s
                .get(i..)
                .and_then(|rest| rest.chars().next())
                .unwrap_or('\u{fffd}');
            write_unicode_escape(dst, c);
            i += c.len_utf8();
        } else {
            match ESCAPE[usize::from(b)] {
                b'u' => write_u_escape(dst, u16::from(b)),
                escape => dst.put_slice(&[b'\\', escape]),
            }
            i += 1;
        }
        start = i;
        i = plain_run_end(bytes, i);
    }
    if start < bytes.len() {
        dst.put_slice(bytes.get(start..).unwrap_or_default());
    }
    dst.put_u8(b'"');
}

/// Writes a non-ASCII character as `\uXXXX`, or a surrogate pair above U+FFFF.
fn write_unicode_escape<B: BufMut>(dst: &mut B, c: char) {
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        write_u_escape(dst, *unit);
    }
}

fn write_u_escape<B: BufMut>(dst: &mut B, unit: u16) {
    let nibble = |shift: u16| HEX[usize::from((unit >> shift) & 0xf)];
    dst.put_slice(&[b'\\', b'u', nibble(12), nibble(8), nibble(4), nibble(0)]);
}

/// "00" to "99", for writing integers two digits at a time.
static DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

fn write_u64<B: BufMut>(dst: &mut B, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        pos -= 1;
        buf[pos] = b'0' + n as u8;
    }
    dst.put_slice(&buf[pos..]);
}

fn write_i64<B: BufMut>(dst: &mut B, n: i64) {
    if n < 0 {
        dst.put_u8(b'-');
    }
    write_u64(dst, n.unsigned_abs());
}

/// A fixed-size buffer that `write!` can fill without allocating.
struct StackBuf {
    buf: [u8; 40],
    len: usize,
}

impl StackBuf {
    fn new() -> Self {
        StackBuf {
            buf: [0; 40],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push(&mut self, bytes: &[u8]) {
        // Never full for a float (at most 25 bytes); drop rather than panic.
        if let Some(slot) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            slot.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Writes a finite float as Python's `repr(float)` does.
fn write_f64<B: BufMut>(dst: &mut B, f: f64) {
    match python_float_repr(f) {
        Some(repr) => dst.put_slice(repr.as_bytes()),
        // Unreachable for finite floats; Rust's own form is still a valid number.
        None => dst.put_slice(format!("{f:?}").as_bytes()),
    }
}

/// Python's `repr(f)` for a finite `f`: the shortest digits that read back
/// as `f` ([`short_decimal_digits`] for floats that are short decimals, else
/// Rust's `{:e}`, which gives the same digits), laid out as Python does.
fn python_float_repr(f: f64) -> Option<StackBuf> {
    let mut buf = [0u8; 24];
    let (len, exp) = match short_decimal_digits(f.abs(), &mut buf) {
        Some(found) => found,
        None => formatted_digits(f.abs(), &mut buf)?,
    };
    let digits = buf.get(..len).filter(|d| !d.is_empty())?;

    let mut out = StackBuf::new();
    if f.is_sign_negative() {
        out.push(b"-");
    }
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push(digits);
                for _ in digits.len()..int_len {
                    out.push(b"0");
                }
                out.push(b".0");
            } else {
                out.push(&digits[..int_len]);
                out.push(b".");
                out.push(&digits[int_len..]);
            }
        } else {
            out.push(b"0.");
            for _ in 0..(-exp - 1) {
                out.push(b"0");
            }
            out.push(digits);
        }
    } else {
        out.push(&digits[..1]);
        if digits.len() > 1 {
            out.push(b".");
            out.push(&digits[1..]);
        }
        out.push(if exp < 0 { b"e-" } else { b"e+" });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.push(b"0");
        }
        write!(out, "{abs}").ok()?;
    }
    Some(out)
}

/// The shortest digits of a finite, non-negative `abs` (into `out`: their
/// count) and the decimal exponent of the first, from Rust's `{:e}`.
fn formatted_digits(abs: f64, out: &mut [u8; 24]) -> Option<(usize, i32)> {
    let mut sci = StackBuf::new();
    write!(sci, "{abs:e}").ok()?;
    let sci = sci.as_bytes();
    let e = sci.iter().position(|&b| b == b'e')?;
    let (mantissa, exponent) = (sci.get(..e)?, sci.get(e + 1..)?);
    let exp: i32 = std::str::from_utf8(exponent).ok()?.parse().ok()?;
    let mut digits = [0u8; 24];
    let mut n = 0;
    for &b in mantissa.iter().filter(|&&b| b != b'.') {
        *digits.get_mut(n)? = b;
        n += 1;
    }
    let digits = digits.get(..n).filter(|d| !d.is_empty())?;
    match round_half_even(abs, digits, exp, out) {
        Some(len) => Some((len, exp)),
        None => {
            out.get_mut(..n)?.copy_from_slice(digits);
            Some((n, exp))
        }
    }
}

/// Powers of ten that are exact `f64`s.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The shortest digits of a finite, non-negative `abs` that is a short
/// decimal (into `out`: their count) and the decimal exponent of the first,
/// without formatting machinery; `None` for other floats.
///
/// Tries `k` = 0, 1, 2... fraction digits: `m`, the integer nearest to
/// `abs * 10^k`, gives digits that read back as `abs` exactly when
/// `m / 10^k == abs` (both exact `f64`s below 2^53, so the one rounding of the
/// division is the one of reading the decimal). The first `k` that works
/// gives the fewest digits. While `abs * 10^k` stays below 2^50, a decimal
/// with `k` fraction digits that reads back as `abs` is within 1/8 of
/// `abs * 10^k` and the product is off by at most 1/16, so rounding finds it:
/// none is missed, and none other is within reach (the digits are unique).
fn short_decimal_digits(abs: f64, out: &mut [u8; 24]) -> Option<(usize, i32)> {
    const LIMIT: f64 = (1u64 << 50) as f64;
    if abs == 0.0 {
        out[0] = b'0';
        return Some((1, 0));
    }
    for (k, &power) in EXACT_POWERS_OF_TEN.iter().enumerate() {
        let scaled = abs * power;
        if scaled >= LIMIT {
            return None;
        }
        let m = scaled.round();
        if m >= 1.0 && m / power == abs {
            // An integer in 1..2^50: exact in u64.
            let mut m = m as u64;
            let mut trailing_zeros = 0;
            while m.is_multiple_of(10) {
                m /= 10;
                trailing_zeros += 1;
            }
            let mut digits = [0u8; 20];
            let mut start = digits.len();
            while m > 0 {
                start -= 1;
                digits[start] = b'0' + (m % 10) as u8;
                m /= 10;
            }
            let len = digits.len() - start;
            out.get_mut(..len)?.copy_from_slice(digits.get(start..)?);
            let exp = (len + trailing_zeros) as i32 - 1 - k as i32;
            return Some((len, exp));
        }
    }
    None
}

/// Python breaks a tie between two shortest digit strings (the float lies
/// exactly halfway between them) towards the even last digit; Rust's `{:e}`
/// may pick the other one (`727027186067007.25` is `...007.2` in Python,
/// `...007.3` in Rust). When `digits` (Rust's, `exp` its decimal exponent) is
/// the odd half of such a tie and the even one reads back as `f` too, writes
/// the even digits into `out` and returns their length.
fn round_half_even(f: f64, digits: &[u8], exp: i32, out: &mut [u8; 24]) -> Option<usize> {
    let n = digits.len();
    let last = *digits.last()?;
    if (last - b'0').is_multiple_of(2) {
        return None;
    }
    // f = m * 2^e exactly.
    let bits = f.abs().to_bits();
    let (m, e) = match (bits >> 52) as i32 {
        0 => (bits, -1074),
        biased => (bits & ((1 << 52) - 1) | (1 << 52), biased - 1075),
    };
    if m == 0 {
        return None;
    }
    // The digits are an integer at scale s: f * 10^s is about `digits`.
    let s = n as i32 - 1 - exp;
    // A tie means t = 2 * f * 10^s is an odd integer: t = m * 5^s * 2^(e+1+s).
    let twos = e + 1 + s;
    if twos > 0 || m.trailing_zeros() as i32 != -twos {
        return None;
    }
    let odd_m = u128::from(m >> m.trailing_zeros());
    let t = if s >= 0 {
        odd_m.checked_mul(5u128.checked_pow(u32::try_from(s).ok()?)?)?
    } else {
        let five_pow = 5u128.checked_pow(u32::try_from(-s).ok()?)?;
        if odd_m % five_pow != 0 {
            return None;
        }
        odd_m / five_pow
    };
    let low = (t - 1) / 2;
    let even = if low.is_multiple_of(2) { low } else { low + 1 };
    let mut text = StackBuf::new();
    write!(text, "{even}").ok()?;
    if text.len != n || text.as_bytes() == digits {
        return None;
    }
    out.get_mut(..n)?.copy_from_slice(text.as_bytes());
    // Only if the even digits read back as the same float.
    let mut check = StackBuf::new();
    check.push(text.as_bytes());
    write!(check, "e{}", exp - (n as i32 - 1)).ok()?;
    let back: f64 = std::str::from_utf8(check.as_bytes()).ok()?.parse().ok()?;
    (back == f.abs()).then_some(n)
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Writes `data` as a JSON string of its base64 (standard alphabet, padded).
fn write_base64<B: BufMut>(dst: &mut B, data: &[u8]) {
    let sextet = |v: u32, shift: u32| BASE64[((v >> shift) & 63) as usize];
    dst.put_u8(b'"');
    let mut chunks = data.chunks_exact(3);
    let mut buf = [0u8; 64];
    let mut len = 0;
    for chunk in &mut chunks {
        let v = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        buf[len..len + 4].copy_from_slice(&[
            sextet(v, 18),
            sextet(v, 12),
            sextet(v, 6),
            sextet(v, 0),
        ]);
        len += 4;
        if len == buf.len() {
            dst.put_slice(&buf);
            len = 0;
        }
    }
    dst.put_slice(&buf[..len]);
    match *chunks.remainder() {
        [a] => {
            let v = u32::from(a) << 16;
            dst.put_slice(&[sextet(v, 18), sextet(v, 12), b'=', b'=']);
        }
        [a, b] => {
            let v = u32::from(a) << 16 | u32::from(b) << 8;
            dst.put_slice(&[sextet(v, 18), sextet(v, 12), sextet(v, 6), b'=']);
        }
        _ => {}
    }
    dst.put_u8(b'"');
}

// Display of the data model is JSON as Python writes it: it lives with the
// writer, so that the data model does not depend on a codec.

impl fmt::Display for Value {
    /// The value as Python's `json.dumps` writes it (what the JSON encoder
    /// writes, binary as base64), except that non-finite floats print as
    /// `NaN`/`Infinity` and nesting past [`crate::MAX_DEPTH`] as `[...]`/`{...}`
    /// where the encoder would refuse them.
    ///
    /// ```
    /// use asyncaproto::Value;
    /// let value = Value::from(vec![Value::from(1.0), Value::from("é"), Value::Null]);
    /// assert_eq!(value.to_string(), r#"[1.0, "\u00e9", null]"#);
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        write_display(self, &mut out);
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Display for Map {
    /// The map as Python's `json.dumps` writes it; see [`Value`'s
    /// Display](Value#impl-Display-for-Value).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        write_display_map(self, &mut out);
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(f: f64) -> String {
        let mut out = Vec::new();
        write_f64(&mut out, f);
        String::from_utf8(out).expect("ASCII")
    }

    #[test]
    fn floats_are_laid_out_as_python_repr() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (1e-5, "1e-05"),
            (1.5e-5, "1.5e-05"),
            (1e15, "1000000000000000.0"),
            (1.5e15, "1500000000000000.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e16, "1e+16"),
            (1.2345e16, "1.2345e+16"),
            (1.5e300, "1.5e+300"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (123.456, "123.456"),
            (1.0 / 3.0, "0.3333333333333333"),
            (2.0f64.powi(60), "1.152921504606847e+18"),
            (100.0, "100.0"),
            (12345678.9, "12345678.9"),
            // Ties between two shortest strings go to the even digit.
            (727_027_186_067_007.0 + 0.25, "727027186067007.2"),
            (-(727_027_186_067_007.0 + 0.25), "-727027186067007.2"),
            (0.5, "0.5"),
            (2.5, "2.5"),
        ];
        for (f, want) in cases {
            assert_eq!(repr(f), want, "{f:e}");
        }
    }

    /// Digits and the decimal exponent of the first.
    type Digits = Option<(Vec<u8>, i32)>;

    /// The digits and exponent of both ways of finding them.
    fn both_digit_ways(f: f64) -> (Digits, Digits) {
        let mut fast = [0u8; 24];
        let mut slow = [0u8; 24];
        let fast = short_decimal_digits(f, &mut fast).map(|(n, e)| (fast[..n].to_vec(), e));
        let slow = formatted_digits(f, &mut slow).map(|(n, e)| (slow[..n].to_vec(), e));
        (fast, slow)
    }

    #[test]
    fn short_decimals_get_the_formatted_digits() {
        let mut fast_found = 0;
        let mut check = |f: f64| {
            let (fast, slow) = both_digit_ways(f);
            assert!(slow.is_some(), "{f:e}");
            if fast.is_some() {
                fast_found += 1;
                assert_eq!(fast, slow, "{f:e}");
            }
        };
        // Decimals of every length and scale, and their neighbours.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = 1 + (x % 17) as u32;
            let m = (x >> 8) % 10u64.pow(digits);
            let k = ((x >> 3) % 26) as i32 - 2;
            let f = format!("{m}e{}", -k).parse::<f64>().expect("a number");
            for g in [
                f,
                f64::from_bits(f.to_bits() + 1),
                f64::from_bits(f.to_bits().saturating_sub(1)),
            ] {
                check(g);
            }
            // Any float at all.
            let any = f64::from_bits(x >> 1);
            if any.is_finite() {
                check(any);
            }
        }
        for f in EXACT_POWERS_OF_TEN {
            for g in [
                f,
                f64::from_bits(f.to_bits() + 1),
                f64::from_bits(f.to_bits() - 1),
                1.0 / f,
            ] {
                check(g);
            }
        }
        for f in [
            0.0,
            0.1,
            0.2,
            0.3,
            0.75,
            1.5,
            100.0,
            1e15,
            1e16,
            9007199254740991.0,
            5e-324,
        ] {
            check(f);
        }
        assert!(fast_found > 10_000, "{fast_found}");
    }

    #[test]
    fn integers() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            101,
            12345,
            -1,
            -10,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            write_i64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        let mut out = Vec::new();
        write_u64(&mut out, u64::MAX);
        assert_eq!(out, b"18446744073709551615");
    }

    #[test]
    fn base64() {
        let cases: [(&[u8], &str); 5] = [
            (b"", "\"\""),
            (b"f", "\"Zg==\""),
            (b"fo", "\"Zm8=\""),
            (b"foo", "\"Zm9v\""),
            (b"\xff\xfe\xfd\x00", "\"//79AA==\""),
        ];
        for (data, want) in cases {
            let mut out = Vec::new();
            write_base64(&mut out, data);
            assert_eq!(String::from_utf8(out).expect("ASCII"), want);
        }
        // Longer than one internal buffer.
        let data: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        write_base64(&mut out, &data);
        assert_eq!(out.len(), 2 + 344);
    }

    #[test]
    fn strings_escape_like_python() {
        let mut out = Vec::new();
        write_str(&mut out, "a\"b\\c/\n\r\t\x08\x0c\x00\x1f\x7f é\u{ffff}😀");
        assert_eq!(
            String::from_utf8(out).expect("ASCII"),
            r#""a\"b\\c/\n\r\t\b\f\u0000\u001f\u007f \u00e9\uffff\ud83d\ude00""#
        );
    }

    #[test]
    fn long_strings_escape_like_short_ones() {
        let mut s = "x".repeat(100);
        s.push_str("é\"\n");
        s.push_str(&"y".repeat(70));
        s.push('\u{7f}');
        let mut out = Vec::new();
        write_str(&mut out, &s);
        let want = format!(
            "\"{}\\u00e9\\\"\\n{}\\u007f\"",
            "x".repeat(100),
            "y".repeat(70)
        );
        assert_eq!(String::from_utf8(out).expect("ASCII"), want);
    }

    #[test]
    fn plain_runs_stop_at_the_bytes_the_table_escapes() {
        for b in 0..=255u8 {
            let want = if ESCAPE[usize::from(b)] == 0 { 1 } else { 0 };
            assert_eq!(plain_run_end(&[b], 0), want, "{b:#x}");
            let mut long = [b'a'; 100];
            long[90] = b;
            let want = if ESCAPE[usize::from(b)] == 0 { 100 } else { 90 };
            assert_eq!(plain_run_end(&long, 0), want, "{b:#x}");
        }
    }
}
