//! The data model every payload decodes to: a [`Map`] of string keys to [`Value`]s.
//!
//! Both payload encodings, JSON and ZiProto, decode to the same tree, and a tree
//! encodes to either; a handler never needs to know which one a packet used.
//!
//! ```
//! use asyncaproto::{Encoding, Map, Value};
//!
//! let map: Map = Encoding::ZiProto.decode(b"\x82\xa3foo\xa3bar\xa1n\x2a")?;
//! assert_eq!(map["foo"], "bar");
//! assert_eq!(map["n"].as_i64(), Some(42));
//! assert!(map["missing"].is_null());
//! assert_eq!(map.to_string(), r#"{"foo": "bar", "n": 42}"#);
//! # Ok::<(), asyncaproto::PayloadError>(())
//! ```
//!
//! # Data-model rules
//!
//! These rules hold for both encodings; breaking one makes a payload malformed
//! (a [`PayloadError`], answered with `ERR_REQUEST_MALFORMED`).
//!
//! | topic | rule | error when broken |
//! |---|---|---|
//! | top level | a payload is exactly one map and nothing after it; `{}` is valid | [`NotAMap`], [`TrailingBytes`], [`Truncated`], [`Empty`] |
//! | map keys | strings only; a ZiProto map with any other key type is malformed | [`NonStringKey`] |
//! | duplicate keys | one map may not hold the same key twice | [`DuplicateKey`] |
//! | key order | kept: maps iterate and encode in insertion (wire) order; equality ignores order | |
//! | integers | anything in `i64 ∪ u64`; [`Value::Int`] for the `i64` range, [`Value::UInt`] only above `i64::MAX` | a JSON integer outside: [`NumberOutOfRange`] |
//! | JSON numbers | a fraction or an exponent makes a [`Value::Float`] (`1.0`, `1e2`); digits alone an integer (`-0` is `0`, as in Python) | a JSON float beyond `f64`: [`NumberOutOfRange`] |
//! | floats | finite only; ZiProto float32 widens to `f64`; ZiProto writes float64 | NaN, ±Infinity (decode or encode): [`NonFinite`] |
//! | strings | valid UTF-8 (JSON: the whole payload, and no `\uD800`-`\uDFFF` escape outside a surrogate pair, which Python would accept but no Rust string can hold) | [`InvalidUtf8`] |
//! | binary | ZiProto bin round-trips as [`Value::Bin`]; JSON writes it as a base64 string (standard alphabet, padded), one way: a JSON string always decodes as [`Value::Str`] | |
//! | nesting | at most [`MAX_DEPTH`] (128) levels of arrays and maps, the top-level map being level 1 | [`TooDeep`] |
//! | ZiProto types | only the formats of PROTOCOL.md §2: no ext types (`c7`-`c9`, `d4`-`d8`), never `c1` | [`UnsupportedType`] |
//!
//! Notes on the rules:
//!
//! * The integer normalisation (`UInt` never holds a value that fits `i64`) is
//!   kept by every constructor in this crate, so the derived equality is exact:
//!   `Value::from(5u64) == Value::from(5i8)`. Build values with `From`, not by
//!   writing `Value::UInt(5)` by hand.
//! * Floats and integers are distinct: `Value::Float(1.0) != Value::Int(1)`, and
//!   JSON writes them as `1.0` and `1`, as Python does.
//! * ZiProto empty binary is written `c4 00`; the reference Python encoder writes
//!   a lone `c4` (a bug, which its own decoder cannot read back).
//! * Decoders never allocate more than the remaining input could hold, and
//!   recurse at most [`MAX_DEPTH`] levels, so hostile input cannot exhaust memory
//!   or the stack.
//!
//! # Typed access with serde
//!
//! [`Value`] and [`Map`] implement `Serialize`, `Deserialize` and serde's
//! `Deserializer` (owned and borrowed), so any serde type converts to and from
//! them: see [`to_value`] and [`from_value`].
//!
//! [`PayloadError`]: crate::PayloadError
//! [`NotAMap`]: crate::PayloadError::NotAMap
//! [`TrailingBytes`]: crate::PayloadError::TrailingBytes
//! [`Truncated`]: crate::PayloadError::Truncated
//! [`Empty`]: crate::PayloadError::Empty
//! [`NonStringKey`]: crate::PayloadError::NonStringKey
//! [`DuplicateKey`]: crate::PayloadError::DuplicateKey
//! [`NumberOutOfRange`]: crate::PayloadError::NumberOutOfRange
//! [`NonFinite`]: crate::PayloadError::NonFinite
//! [`InvalidUtf8`]: crate::PayloadError::InvalidUtf8
//! [`TooDeep`]: crate::PayloadError::TooDeep
//! [`UnsupportedType`]: crate::PayloadError::UnsupportedType
//! [`MAX_DEPTH`]: crate::MAX_DEPTH

mod de;
mod map;
mod ser;
mod spares;

use std::borrow::Cow;
use std::fmt;
use std::ops::Index;

pub use self::de::from_value;
pub(crate) use self::de::{DecodeState, ValueSeed};
pub use self::map::{IntoIter, Iter, IterMut, Keys, Map, Values, ValuesMut};
pub use self::ser::to_value;
pub use self::spares::Spares;

/// One payload value: what a JSON value or a ZiProto object decodes to.
///
/// See the [module docs](self) for the rules that tie it to both encodings.
///
/// ```
/// use asyncaproto::{Map, Value};
///
/// let mut user = Map::new();
/// user.insert("name", "Ada");
/// user.insert("age", 36);
/// user.insert("tags", vec!["admin", "ops"]);
/// let value = Value::from(user);
///
/// assert_eq!(value["name"].as_str(), Some("Ada"));
/// assert_eq!(value["tags"][1], "ops");
/// assert_eq!(value.to_string(), r#"{"name": "Ada", "age": 36, "tags": ["admin", "ops"]}"#);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Value {
    /// JSON `null`, ZiProto nil.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer in the `i64` range.
    Int(i64),
    /// An integer above `i64::MAX` (never used for values that fit `Int`).
    UInt(u64),
    /// A finite float.
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// Binary data (ZiProto bin; a base64 string in JSON).
    Bin(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// A map with string keys, in insertion order.
    Map(Map),
}

/// The value indexing returns for a missing key or index.
static NULL: Value = Value::Null;

impl Value {
    /// A binary value (ZiProto bin).
    ///
    /// `Vec<u8>` converts to an array of integers, like any other `Vec`; binary
    /// data is always asked for by name.
    ///
    /// ```
    /// use asyncaproto::Value;
    /// assert_eq!(Value::bin(b"\x00\x01".to_vec()).as_bin(), Some(&b"\x00\x01"[..]));
    /// assert!(Value::from(vec![0u8, 1]).is_array());
    /// ```
    pub fn bin(bytes: impl Into<Vec<u8>>) -> Value {
        Value::Bin(bytes.into())
    }

    /// An integer from a `u64`, as `Int` when it fits `i64` (the normal form).
    pub fn from_u64(n: u64) -> Value {
        match i64::try_from(n) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(n),
        }
    }

    /// A short name of the value's type, for messages: `"null"`, `"bool"`,
    /// `"int"` (both integer variants), `"float"`, `"str"`, `"bin"`, `"array"`
    /// or `"map"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::UInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bin(_) => "bin",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
        }
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether this is a boolean.
    pub fn is_bool(&self) -> bool {
        matches!(self, Value::Bool(_))
    }

    /// Whether this is an integer ([`Value::Int`] or [`Value::UInt`]).
    pub fn is_integer(&self) -> bool {
        matches!(self, Value::Int(_) | Value::UInt(_))
    }

    /// Whether this is a number: an integer or a float.
    pub fn is_number(&self) -> bool {
        matches!(self, Value::Int(_) | Value::UInt(_) | Value::Float(_))
    }

    /// Whether this is a string.
    pub fn is_str(&self) -> bool {
        matches!(self, Value::Str(_))
    }

    /// Whether this is binary data.
    pub fn is_bin(&self) -> bool {
        matches!(self, Value::Bin(_))
    }

    /// Whether this is an array.
    pub fn is_array(&self) -> bool {
        matches!(self, Value::Array(_))
    }

    /// Whether this is a map.
    pub fn is_map(&self) -> bool {
        matches!(self, Value::Map(_))
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is one that fits `i64`.
    ///
    /// ```
    /// use asyncaproto::Value;
    /// assert_eq!(Value::from(-3).as_i64(), Some(-3));
    /// assert_eq!(Value::from(u64::MAX).as_i64(), None);
    /// assert_eq!(Value::from(1.0).as_i64(), None);
    /// ```
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The integer, if this is one that fits `u64` (not negative).
    ///
    /// ```
    /// use asyncaproto::Value;
    /// assert_eq!(Value::from(u64::MAX).as_u64(), Some(u64::MAX));
    /// assert_eq!(Value::from(-1).as_u64(), None);
    /// ```
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Int(i) => u64::try_from(*i).ok(),
            Value::UInt(u) => Some(*u),
            _ => None,
        }
    }

    /// The number as an `f64`, if this is a number (integers are converted,
    /// possibly rounding).
    ///
    /// ```
    /// use asyncaproto::Value;
    /// assert_eq!(Value::from(2.5).as_f64(), Some(2.5));
    /// assert_eq!(Value::from(2).as_f64(), Some(2.0));
    /// assert_eq!(Value::from("2").as_f64(), None);
    /// ```
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            Value::UInt(u) => Some(*u as f64),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is binary data.
    pub fn as_bin(&self) -> Option<&[u8]> {
        match self {
            Value::Bin(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The elements, mutably, if this is an array.
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The map, if this is one.
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The map, mutably, if this is one.
    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value of `key`, if this is a map that has it.
    ///
    /// ```
    /// use asyncaproto::{Map, Value};
    /// let value = Value::from(Map::from_iter([("a", 1)]));
    /// assert_eq!(value.get("a"), Some(&Value::from(1)));
    /// assert_eq!(value.get("b"), None);
    /// assert_eq!(Value::from(1).get("a"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// The value of `key`, mutably, if this is a map that has it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.as_map_mut().and_then(|m| m.get_mut(key))
    }

    /// Takes the value out, leaving [`Value::Null`] in its place.
    pub fn take(&mut self) -> Value {
        std::mem::take(self)
    }
}

impl Index<&str> for Value {
    type Output = Value;

    /// The value of `key` if this is a map that has it, else [`Value::Null`]
    /// (never panics, like `serde_json::Value`).
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

impl Index<usize> for Value {
    type Output = Value;

    /// The element at `index` if this is an array that long, else
    /// [`Value::Null`] (never panics).
    fn index(&self, index: usize) -> &Value {
        self.as_array().and_then(|a| a.get(index)).unwrap_or(&NULL)
    }
}

macro_rules! from_int_within_i64 {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Value {
                // Lossless: every one of these types fits i64 (isize is at
                // most 64 bits on every target Rust supports).
                Value::Int(n as i64)
            }
        }
    )*};
}
from_int_within_i64!(i8, i16, i32, i64, isize, u8, u16, u32);

impl From<u64> for Value {
    /// `Int` when the value fits `i64`, `UInt` above (the normal form).
    fn from(n: u64) -> Value {
        Value::from_u64(n)
    }
}

impl From<usize> for Value {
    fn from(n: usize) -> Value {
        Value::from_u64(n as u64)
    }
}

impl From<f64> for Value {
    /// A float, or [`Value::Null`] for NaN and infinities (the data model has
    /// finite floats only; `serde_json::Value` does the same).
    fn from(f: f64) -> Value {
        if f.is_finite() {
            Value::Float(f)
        } else {
            Value::Null
        }
    }
}

impl From<f32> for Value {
    /// A float widened to `f64`, or [`Value::Null`] for NaN and infinities.
    fn from(f: f32) -> Value {
        Value::from(f64::from(f))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<char> for Value {
    fn from(c: char) -> Value {
        Value::Str(c.to_string())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::Str(s.clone())
    }
}

impl From<Cow<'_, str>> for Value {
    fn from(s: Cow<'_, str>) -> Self {
        Value::Str(s.into_owned())
    }
}

impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Map(m)
    }
}

impl From<()> for Value {
    fn from((): ()) -> Self {
        Value::Null
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    /// An array (a `Vec<u8>` too: use [`Value::bin`] for binary data).
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

impl<T: Clone + Into<Value>> From<&[T]> for Value {
    /// An array of the cloned elements.
    fn from(v: &[T]) -> Self {
        Value::Array(v.iter().cloned().map(Into::into).collect())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// The value, or [`Value::Null`] for `None`.
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl<T: Into<Value>> FromIterator<T> for Value {
    /// An array.
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Value::Array(iter.into_iter().map(Into::into).collect())
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Value {
    /// A map (a later duplicate key replaces the earlier value).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Value::Map(iter.into_iter().collect())
    }
}

impl PartialEq<str> for Value {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl PartialEq<&str> for Value {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl PartialEq<String> for Value {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == Some(other.as_str())
    }
}

impl PartialEq<bool> for Value {
    fn eq(&self, other: &bool) -> bool {
        self.as_bool() == Some(*other)
    }
}

impl PartialEq<f64> for Value {
    /// True for a float equal to `other` (integers never equal a float).
    fn eq(&self, other: &f64) -> bool {
        matches!(self, Value::Float(f) if f == other)
    }
}

macro_rules! eq_signed {
    ($($t:ty),*) => {$(
        impl PartialEq<$t> for Value {
            fn eq(&self, other: &$t) -> bool {
                self.as_i64() == Some(i64::from(*other))
            }
        }
    )*};
}
eq_signed!(i8, i16, i32, i64, u8, u16, u32);

impl PartialEq<u64> for Value {
    fn eq(&self, other: &u64) -> bool {
        self.as_u64() == Some(*other)
    }
}

/// Why a Rust value could not be converted to a [`Value`] ([`to_value`]) or
/// from one ([`from_value`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    message: Box<str>,
}

impl Error {
    pub(crate) fn new(message: impl fmt::Display) -> Error {
        Error {
            message: message.to_string().into_boxed_str(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl serde::ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::new(msg)
    }
}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::new(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_normalised() {
        assert_eq!(Value::from(5u64), Value::Int(5));
        assert_eq!(Value::from(i64::MAX as u64), Value::Int(i64::MAX));
        assert_eq!(Value::from(i64::MAX as u64 + 1), Value::UInt(1 << 63));
        assert_eq!(Value::from(usize::MAX), Value::UInt(u64::MAX));
        assert_eq!(Value::from(5u8), Value::from(5i64));
        assert_eq!(Value::from(-1isize), Value::Int(-1));
    }

    #[test]
    fn non_finite_floats_become_null() {
        assert_eq!(Value::from(f64::NAN), Value::Null);
        assert_eq!(Value::from(f32::INFINITY), Value::Null);
        assert_eq!(Value::from(1.5f32), Value::Float(1.5));
    }

    #[test]
    fn comparisons_with_plain_types() {
        assert_eq!(Value::from("a"), "a");
        assert_eq!(Value::from(3), 3);
        assert_eq!(Value::from(3), 3u64);
        assert_ne!(Value::from(3), 3.0);
        assert_eq!(Value::from(true), true);
        assert_eq!(Value::from(u64::MAX), u64::MAX);
    }

    #[test]
    fn indexing_never_panics() {
        let v = Value::from(vec![1, 2]);
        assert_eq!(v[1], 2);
        assert!(v[7].is_null());
        assert!(v["x"].is_null());
        assert!(Value::Null["x"][3]["y"].is_null());
    }

    #[test]
    fn kinds() {
        assert_eq!(Value::from(u64::MAX).kind(), "int");
        assert_eq!(Value::bin(vec![]).kind(), "bin");
        assert_eq!(Value::Map(Map::new()).kind(), "map");
    }
}
