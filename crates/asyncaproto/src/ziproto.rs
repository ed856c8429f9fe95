//! ZiProto payloads: the MessagePack subset AsyncAPY speaks, decoded strictly
//! and encoded in the smallest forms, as the reference Python `ziproto` does.
//!
//! ```text
//!  format          first byte   then                      decodes to
//!  positive fixint 00-7f        -                         Int 0..=127
//!  fixmap          80-8f        N entries                 Map (N = low 4 bits)
//!  fixarray        90-9f        N values                  Array (N = low 4 bits)
//!  fixstr          a0-bf        N bytes                   Str (N = low 5 bits)
//!  nil/false/true  c0 c2 c3     -                         Null, Bool
//!  bin 8/16/32     c4 c5 c6     length, bytes             Bin
//!  float 32/64     ca cb        4 or 8 bytes              Float (float32 widened)
//!  uint 8..64      cc-cf        1, 2, 4, 8 bytes          Int, or UInt above i64::MAX
//!  int 8..64       d0-d3        1, 2, 4, 8 bytes          Int
//!  str 8/16/32     d9 da db     length, bytes             Str
//!  array 16/32     dc dd        count, values             Array
//!  map 16/32       de df        count, key-value pairs    Map
//!  negative fixint e0-ff        -                         Int -32..=-1
//!  refused         c1 c7-c9 d4-d8                         UnsupportedType
//! ```
//!
//! Every length and number after the first byte is big-endian. The decoder
//! never allocates more than the rest of the input could fill, and nests at
//! most [`MAX_DEPTH`] levels; see the [data-model rules](crate::value#data-model-rules)
//! for what else is malformed.
//!
//! The encoder writes exactly what `ziproto` 1.0's `encode` writes: integers in
//! the smallest form (non-negative ones as positive fixint or uint 8/16/32/64,
//! negative ones as negative fixint or int 8/16/32/64), floats as float64,
//! strings, arrays and maps in the smallest fix/8/16/32 form; with one
//! deliberate difference: an empty binary is `c4 00`, where the reference
//! writes a lone `c4` that no decoder (its own included) can read.
//!
//! ```
//! use asyncaproto::{ziproto, Map, Value};
//!
//! let map = Map::from_iter([("foo", "bar")]);
//! let mut out = Vec::new();
//! ziproto::encode_map(&map, &mut out)?;
//! assert_eq!(out, b"\x81\xa3foo\xa3bar");
//! assert_eq!(ziproto::decode(&out)?, Value::Map(map));
//! # Ok::<(), asyncaproto::PayloadError>(())
//! ```

use bytes::BufMut;

use crate::payload_error::PayloadError;
use crate::value::{Map, Spares, Value};
use crate::MAX_DEPTH;

/// Decodes one ZiProto value that spans the whole of `bytes`.
///
/// ```
/// use asyncaproto::{ziproto, PayloadError, Value};
///
/// assert_eq!(ziproto::decode(b"\x92\xcc\xff\xd0\x80")?, Value::from(vec![255, -128]));
/// assert_eq!(ziproto::decode(b"\x81\x01\x02"), Err(PayloadError::NonStringKey));
/// assert_eq!(ziproto::decode(b"\xc1"), Err(PayloadError::UnsupportedType(0xc1)));
/// assert_eq!(ziproto::decode(b"\xdd\xff\xff\xff\xff"), Err(PayloadError::Truncated));
/// # Ok::<(), PayloadError>(())
/// ```
pub fn decode(bytes: &[u8]) -> Result<Value, PayloadError> {
    decode_with(bytes, &mut Spares::new())
}

/// As [`decode`], filling strings and map entry vectors kept in `spares`
/// (from earlier payloads) before allocating new ones.
///
/// ```
/// use asyncaproto::{ziproto, Spares, Value};
///
/// let mut spares = Spares::new();
/// assert_eq!(ziproto::decode_with(b"\x81\xa1k\xa1v", &mut spares)?, ziproto::decode(b"\x81\xa1k\xa1v")?);
/// # Ok::<(), asyncaproto::PayloadError>(())
/// ```
pub fn decode_with(bytes: &[u8], spares: &mut Spares) -> Result<Value, PayloadError> {
    if bytes.is_empty() {
        return Err(PayloadError::Empty);
    }
    let mut reader = Reader {
        input: bytes,
        pos: 0,
        promised: 0,
        spares,
    };
    let value = reader.value(0)?;
    match bytes.len() - reader.pos {
        0 => Ok(value),
        rest => Err(PayloadError::TrailingBytes(rest)),
    }
}

/// A cursor over the input.
struct Reader<'a, 's> {
    input: &'a [u8],
    pos: usize,
    /// Bytes that the open arrays and maps still need at the very least for
    /// their values not yet started (one per value): with it, an array or map
    /// is refused before allocation unless the input can fill it together with
    /// all the enclosing ones.
    promised: usize,
    /// Where strings and map entry vectors are taken from first.
    spares: &'s mut Spares,
}

impl<'a> Reader<'a, '_> {
    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PayloadError> {
        let end = self.pos.checked_add(n).ok_or(PayloadError::Truncated)?;
        let bytes = self
            .input
            .get(self.pos..end)
            .ok_or(PayloadError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PayloadError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, PayloadError> {
        let b = *self.input.get(self.pos).ok_or(PayloadError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn u16(&mut self) -> Result<u16, PayloadError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, PayloadError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, PayloadError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn len32(&mut self) -> Result<usize, PayloadError> {
        usize::try_from(self.u32()?).map_err(|_| PayloadError::Truncated)
    }

    /// Reads a value that sits inside `depth` arrays and maps.
    fn value(&mut self, depth: usize) -> Result<Value, PayloadError> {
        let head = self.u8()?;
        Ok(match head {
            0x00..=0x7f => Value::Int(i64::from(head)),
            0x80..=0x8f => Value::Map(self.map(usize::from(head & 0x0f), depth)?),
            0x90..=0x9f => self.array_of(usize::from(head & 0x0f), depth)?,
            0xa0..=0xbf => Value::Str(self.str(usize::from(head & 0x1f))?),
            0xc0 => Value::Null,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4 => {
                let n = usize::from(self.u8()?);
                Value::Bin(self.take(n)?.to_vec())
            }
            0xc5 => {
                let n = usize::from(self.u16()?);
                Value::Bin(self.take(n)?.to_vec())
            }
            0xc6 => {
                let n = self.len32()?;
                Value::Bin(self.take(n)?.to_vec())
            }
            0xca => finite(f64::from(f32::from_be_bytes(self.array()?)))?,
            0xcb => finite(f64::from_be_bytes(self.array()?))?,
            0xcc => Value::Int(i64::from(self.u8()?)),
            0xcd => Value::Int(i64::from(self.u16()?)),
            0xce => Value::Int(i64::from(self.u32()?)),
            0xcf => Value::from_u64(self.u64()?),
            0xd0 => Value::Int(i64::from(i8::from_be_bytes(self.array()?))),
            0xd1 => Value::Int(i64::from(i16::from_be_bytes(self.array()?))),
            0xd2 => Value::Int(i64::from(i32::from_be_bytes(self.array()?))),
            0xd3 => Value::Int(i64::from_be_bytes(self.array()?)),
            0xd9 => {
                let n = usize::from(self.u8()?);
                Value::Str(self.str(n)?)
            }
            0xda => {
                let n = usize::from(self.u16()?);
                Value::Str(self.str(n)?)
            }
            0xdb => {
                let n = self.len32()?;
                Value::Str(self.str(n)?)
            }
            0xdc => {
                let n = usize::from(self.u16()?);
                self.array_of(n, depth)?
            }
            0xdd => {
                let n = self.len32()?;
                self.array_of(n, depth)?
            }
            0xde => {
                let n = usize::from(self.u16()?);
                Value::Map(self.map(n, depth)?)
            }
            0xdf => {
                let n = self.len32()?;
                Value::Map(self.map(n, depth)?)
            }
            0xe0..=0xff => Value::Int(i64::from(head as i8)),
            0xc1 | 0xc7..=0xc9 | 0xd4..=0xd8 => return Err(PayloadError::UnsupportedType(head)),
        })
    }

    fn str(&mut self, n: usize) -> Result<String, PayloadError> {
        let bytes = self.take(n)?;
        let text = std::str::from_utf8(bytes).map_err(|_| PayloadError::InvalidUtf8)?;
        Ok(self.spares.string(text))
    }

    /// Checks that `n` more bytes (the least that `n` values need) fit in the
    /// input on top of what the enclosing arrays and maps already need.
    fn promise(&mut self, n: usize) -> Result<(), PayloadError> {
        let promised = self
            .promised
            .checked_add(n)
            .filter(|&p| p <= self.remaining())
            .ok_or(PayloadError::Truncated)?;
        self.promised = promised;
        Ok(())
    }

    /// Opens an array or map at nesting level `depth + 1`: the new level.
    fn enter(&self, depth: usize) -> Result<usize, PayloadError> {
        let depth = depth + 1;
        if depth > MAX_DEPTH {
            return Err(PayloadError::TooDeep);
        }
        Ok(depth)
    }

    fn array_of(&mut self, n: usize, depth: usize) -> Result<Value, PayloadError> {
        let depth = self.enter(depth)?;
        self.promise(n)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            self.promised -= 1;
            items.push(self.value(depth)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Map, PayloadError> {
        let depth = self.enter(depth)?;
        // A key and a value: at least two bytes per entry.
        self.promise(n.checked_mul(2).ok_or(PayloadError::Truncated)?)?;
        let mut map = Map::over(self.spares.entries(n));
        for _ in 0..n {
            self.promised -= 2;
            let key = self.key()?;
            let value = self.value(depth)?;
            if let Err((key, _)) = map.insert_new(key, value) {
                return Err(PayloadError::DuplicateKey(key));
            }
        }
        Ok(map)
    }

    fn key(&mut self) -> Result<String, PayloadError> {
        let n = match self.u8()? {
            head @ 0xa0..=0xbf => usize::from(head & 0x1f),
            0xd9 => usize::from(self.u8()?),
            0xda => usize::from(self.u16()?),
            0xdb => self.len32()?,
            _ => return Err(PayloadError::NonStringKey),
        };
        self.str(n)
    }
}

fn finite(f: f64) -> Result<Value, PayloadError> {
    if f.is_finite() {
        Ok(Value::Float(f))
    } else {
        Err(PayloadError::NonFinite)
    }
}

/// Appends `value` as ZiProto, in the reference encoder's forms.
///
/// Fails with [`PayloadError::NonFinite`] for a NaN or infinite float,
/// [`PayloadError::TooDeep`] past [`MAX_DEPTH`] levels and
/// [`PayloadError::TooLarge`] for a string, binary, array or map of 2³² or more
/// bytes or entries; `dst` may then hold part of the encoding.
///
/// ```
/// use asyncaproto::{ziproto, Value};
/// let mut out = Vec::new();
/// ziproto::encode(&Value::from(vec![Value::from(-33), Value::from(1.5), Value::bin(vec![])]), &mut out)?;
/// assert_eq!(out, b"\x93\xd0\xdf\xcb\x3f\xf8\0\0\0\0\0\0\xc4\x00");
/// # Ok::<(), asyncaproto::PayloadError>(())
/// ```
pub fn encode(value: &Value, dst: &mut impl BufMut) -> Result<(), PayloadError> {
    write_value(dst, value, 0)
}

/// Appends `map` as a ZiProto map; fails like [`encode`].
pub fn encode_map(map: &Map, dst: &mut impl BufMut) -> Result<(), PayloadError> {
    write_map(dst, map, 1)
}

/// Writes `value`, which sits inside `depth` arrays and maps.
fn write_value<B: BufMut>(dst: &mut B, value: &Value, depth: usize) -> Result<(), PayloadError> {
    match value {
        Value::Null => dst.put_u8(0xc0),
        Value::Bool(false) => dst.put_u8(0xc2),
        Value::Bool(true) => dst.put_u8(0xc3),
        Value::Int(i) => write_int(dst, *i),
        Value::UInt(u) => write_uint(dst, *u),
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(PayloadError::NonFinite);
            }
            dst.put_u8(0xcb);
            dst.put_f64(*f);
        }
        Value::Str(s) => write_str(dst, s)?,
        Value::Bin(b) => {
            write_len(dst, b.len(), None, 0xc4, 0xc5, 0xc6)?;
            dst.put_slice(b);
        }
        Value::Array(items) => {
            let depth = depth + 1;
            if depth > MAX_DEPTH {
                return Err(PayloadError::TooDeep);
            }
            write_len(dst, items.len(), Some((0x90, 16)), 0, 0xdc, 0xdd)?;
            for item in items {
                write_value(dst, item, depth)?;
            }
        }
        Value::Map(map) => write_map(dst, map, depth + 1)?,
    }
    Ok(())
}

/// Writes a map at nesting level `depth` (1 = top level).
fn write_map<B: BufMut>(dst: &mut B, map: &Map, depth: usize) -> Result<(), PayloadError> {
    if depth > MAX_DEPTH {
        return Err(PayloadError::TooDeep);
    }
    write_len(dst, map.len(), Some((0x80, 16)), 0, 0xde, 0xdf)?;
    for (key, value) in map {
        write_str(dst, key)?;
        write_value(dst, value, depth)?;
    }
    Ok(())
}

fn write_str<B: BufMut>(dst: &mut B, s: &str) -> Result<(), PayloadError> {
    write_len(dst, s.len(), Some((0xa0, 32)), 0xd9, 0xda, 0xdb)?;
    dst.put_slice(s.as_bytes());
    Ok(())
}

/// Writes the head of a string, binary, array or map of length `len` in the
/// smallest form: fix (`fix = (first byte, limit)`), 8-bit (`head8`, if not
/// 0), 16-bit or 32-bit.
fn write_len<B: BufMut>(
    dst: &mut B,
    len: usize,
    fix: Option<(u8, usize)>,
    head8: u8,
    head16: u8,
    head32: u8,
) -> Result<(), PayloadError> {
    match fix {
        Some((first, limit)) if len < limit => {
            // len < limit <= 32: fits the low bits.
            dst.put_u8(first | len as u8);
            return Ok(());
        }
        _ => {}
    }
    if head8 != 0 {
        if let Ok(n) = u8::try_from(len) {
            dst.put_slice(&[head8, n]);
            return Ok(());
        }
    }
    if let Ok(n) = u16::try_from(len) {
        dst.put_u8(head16);
        dst.put_u16(n);
    } else if let Ok(n) = u32::try_from(len) {
        dst.put_u8(head32);
        dst.put_u32(n);
    } else {
        return Err(PayloadError::TooLarge);
    }
    Ok(())
}

fn write_int<B: BufMut>(dst: &mut B, i: i64) {
    if let Ok(u) = u64::try_from(i) {
        write_uint(dst, u);
    } else if i >= -32 {
        dst.put_u8(i as u8);
    } else if let Ok(n) = i8::try_from(i) {
        dst.put_slice(&[0xd0, n as u8]);
    } else if let Ok(n) = i16::try_from(i) {
        dst.put_u8(0xd1);
        dst.put_i16(n);
    } else if let Ok(n) = i32::try_from(i) {
        dst.put_u8(0xd2);
        dst.put_i32(n);
    } else {
        dst.put_u8(0xd3);
        dst.put_i64(i);
    }
}

fn write_uint<B: BufMut>(dst: &mut B, u: u64) {
    if u <= 0x7f {
        dst.put_u8(u as u8);
    } else if let Ok(n) = u8::try_from(u) {
        dst.put_slice(&[0xcc, n]);
    } else if let Ok(n) = u16::try_from(u) {
        dst.put_u8(0xcd);
        dst.put_u16(n);
    } else if let Ok(n) = u32::try_from(u) {
        dst.put_u8(0xce);
        dst.put_u32(n);
    } else {
        dst.put_u8(0xcf);
        dst.put_u64(u);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promises_cover_enclosing_containers() {
        // An array of 3 whose first value is an array of 3: 6 values in all,
        // but only 5 bytes follow the first head.
        assert_eq!(
            decode(b"\x93\x93\x01\x02\x03\x04"),
            Err(PayloadError::Truncated)
        );
        assert_eq!(
            decode(b"\x93\x93\x01\x02\x03\x04\x05"),
            Ok(Value::from(vec![
                Value::from(vec![1, 2, 3]),
                4.into(),
                5.into()
            ]))
        );
    }

    #[test]
    fn huge_declared_lengths_are_refused_before_allocating() {
        for bytes in [
            &b"\xdd\xff\xff\xff\xff\xc0"[..],
            b"\xdf\xff\xff\xff\xff\xa0\xc0",
            b"\xdb\xff\xff\xff\xffabc",
            b"\xc6\xff\xff\xff\xff\x00",
        ] {
            assert_eq!(decode(bytes), Err(PayloadError::Truncated));
        }
    }

    #[test]
    fn write_len_picks_the_smallest_form() {
        let head = |len, fix, h8| {
            let mut out = Vec::new();
            write_len(&mut out, len, fix, h8, 0xda, 0xdb).map(|()| out)
        };
        assert_eq!(head(31, Some((0xa0, 32)), 0xd9), Ok(vec![0xbf]));
        assert_eq!(head(32, Some((0xa0, 32)), 0xd9), Ok(vec![0xd9, 32]));
        assert_eq!(head(256, Some((0xa0, 32)), 0xd9), Ok(vec![0xda, 1, 0]));
        assert_eq!(head(16, Some((0x90, 16)), 0), Ok(vec![0xda, 0, 16]));
        assert_eq!(head(65536, None, 0), Ok(vec![0xdb, 0, 1, 0, 0]));
        #[cfg(target_pointer_width = "64")]
        assert_eq!(head(1 << 32, None, 0), Err(PayloadError::TooLarge));
    }
}
