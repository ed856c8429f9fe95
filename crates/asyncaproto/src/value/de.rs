//! Serde deserialization: `Deserialize` for [`Value`] and [`Map`] (the visitor
//! the JSON decoder runs, enforcing the data-model rules), and `Deserializer`
//! over a [`Value`] or a [`Map`], owned or borrowed ([`from_value`]).

use std::fmt;

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, Expected, IntoDeserializer,
    MapAccess, SeqAccess, Unexpected, VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;

use super::{Error, Map, Value};
use crate::payload_error::PayloadError;
use crate::MAX_DEPTH;

/// The most elements a deserializer's size hint may preallocate: a hint comes
/// from the input and is not trusted further than this.
const MAX_PREALLOCATED: usize = 1024;

/// What a [`ValueSeed`] tracks while it builds one tree: the nesting depth and
/// the data-model rule that failed, if one did (a deserializer's error type
/// carries only a message; the JSON decoder wants the [`PayloadError`]).
#[derive(Debug, Default)]
pub(crate) struct DecodeState {
    depth: usize,
    /// The rule that stopped decoding, if the visitor refused something.
    pub(crate) error: Option<PayloadError>,
    /// A float at or beyond the integer range was seen: it may have been an
    /// out-of-range integer literal that the deserializer turned into a float.
    pub(crate) huge_float: bool,
    /// A `-0.0` was seen: it may have been the integer literal `-0`, which
    /// serde_json reads as a float.
    pub(crate) negative_zero: bool,
}

/// Builds a [`Value`] from any deserializer, enforcing the data-model rules:
/// string keys, no duplicate keys, finite floats, integers within
/// `i64 ∪ u64`, at most [`MAX_DEPTH`] levels of nesting.
pub(crate) struct ValueSeed<'s> {
    state: &'s mut DecodeState,
}

impl<'s> ValueSeed<'s> {
    pub(crate) fn new(state: &'s mut DecodeState) -> Self {
        ValueSeed { state }
    }

    fn child(&mut self) -> ValueSeed<'_> {
        ValueSeed {
            state: &mut *self.state,
        }
    }

    fn fail<E: de::Error>(&mut self, error: PayloadError) -> E {
        let e = E::custom(&error);
        self.state.error = Some(error);
        e
    }

    fn enter<E: de::Error>(&mut self) -> Result<(), E> {
        self.state.depth += 1;
        if self.state.depth > MAX_DEPTH {
            return Err(self.fail(PayloadError::TooDeep));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.state.depth -= 1;
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a payload value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from_u64(v))
    }

    fn visit_i128<E: de::Error>(mut self, v: i128) -> Result<Value, E> {
        if let Ok(i) = i64::try_from(v) {
            Ok(Value::Int(i))
        } else if let Ok(u) = u64::try_from(v) {
            Ok(Value::UInt(u))
        } else {
            Err(self.fail(PayloadError::NumberOutOfRange))
        }
    }

    fn visit_u128<E: de::Error>(mut self, v: u128) -> Result<Value, E> {
        match u64::try_from(v) {
            Ok(u) => Ok(Value::from_u64(u)),
            Err(_) => Err(self.fail(PayloadError::NumberOutOfRange)),
        }
    }

    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<Value, E> {
        if !v.is_finite() {
            return Err(self.fail(PayloadError::NonFinite));
        }
        // 2^64 and -2^63: a JSON integer literal outside i64 ∪ u64 reaches us as
        // a float at least this large (serde_json falls back to f64 for them).
        if v >= 18_446_744_073_709_551_616.0 || v <= -9_223_372_036_854_775_808.0 {
            self.state.huge_float = true;
        }
        if v == 0.0 && v.is_sign_negative() {
            self.state.negative_zero = true;
        }
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bin(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bin(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        self.enter()?;
        let hint = seq.size_hint().unwrap_or(0).min(MAX_PREALLOCATED);
        let mut items = Vec::with_capacity(hint);
        while let Some(item) = seq.next_element_seed(self.child())? {
            items.push(item);
        }
        self.leave();
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut access: A) -> Result<Value, A::Error> {
        self.enter()?;
        // JSON gives no hint: room for a typical small object saves rehashing.
        let hint = access.size_hint().unwrap_or(8).min(MAX_PREALLOCATED);
        let mut map = Map::with_capacity(hint);
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value_seed(self.child())?;
            if let Err((key, _)) = map.insert_new(key, value) {
                return Err(self.fail(PayloadError::DuplicateKey(key)));
            }
        }
        self.leave();
        Ok(Value::Map(map))
    }
}

impl<'de> serde::Deserialize<'de> for Value {
    /// Any self-describing format's value, under the data-model rules (string
    /// keys, no duplicate keys, finite floats, at most [`MAX_DEPTH`] levels).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        let mut state = DecodeState::default();
        ValueSeed::new(&mut state).deserialize(deserializer)
    }
}

impl<'de> serde::Deserialize<'de> for Map {
    /// A map, under the same rules as [`Value`]'s `Deserialize`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Map, D::Error> {
        let mut state = DecodeState::default();
        match deserializer.deserialize_map(ValueSeed::new(&mut state))? {
            Value::Map(map) => Ok(map),
            other => Err(de::Error::invalid_type(other.unexpected(), &"a map")),
        }
    }
}

/// Converts a [`Value`] into any `Deserialize` type.
///
/// Integers convert to any integer type they fit, and to floats; a
/// [`Value::Bin`] to bytes, a string or a sequence of `u8`; an enum is its
/// variant name or a one-entry map `{variant: content}`, as [`to_value`]
/// writes it. To read a borrowed [`Value`] or [`Map`] without cloning it, call
/// `T::deserialize(&value)` directly.
///
/// ```
/// use asyncaproto::{from_value, Encoding, Value};
/// use serde::Deserialize;
///
/// #[derive(Deserialize, Debug, PartialEq)]
/// struct Login {
///     user: String,
///     remember: bool,
///     #[serde(default)]
///     scopes: Vec<String>,
/// }
///
/// let map = Encoding::Json.decode(br#"{"user": "ada", "remember": true}"#)?;
/// let login: Login = from_value(Value::Map(map.clone()))?;
/// assert_eq!(login.user, "ada");
///
/// // Borrowed: no copy of the payload.
/// let again = Login::deserialize(&map)?;
/// assert_eq!(again, login);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`to_value`]: super::to_value
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    T::deserialize(value)
}

impl Value {
    fn unexpected(&self) -> Unexpected<'_> {
        match self {
            Value::Null => Unexpected::Unit,
            Value::Bool(b) => Unexpected::Bool(*b),
            Value::Int(i) => Unexpected::Signed(*i),
            Value::UInt(u) => Unexpected::Unsigned(*u),
            Value::Float(f) => Unexpected::Float(*f),
            Value::Str(s) => Unexpected::Str(s),
            Value::Bin(b) => Unexpected::Bytes(b),
            Value::Array(_) => Unexpected::Seq,
            Value::Map(_) => Unexpected::Map,
        }
    }

    fn invalid_type(&self, expected: &dyn Expected) -> Error {
        de::Error::invalid_type(self.unexpected(), expected)
    }
}

fn visit_array<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, Error> {
    let mut seq = SeqDeserializer::new(items.into_iter());
    let value = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(value)
}

fn visit_map<'de, V: Visitor<'de>>(map: Map, visitor: V) -> Result<V::Value, Error> {
    let mut access = MapDeserializer::new(map.into_iter());
    let value = visitor.visit_map(&mut access)?;
    access.end()?;
    Ok(value)
}

fn visit_array_ref<'de, V: Visitor<'de>>(
    items: &'de [Value],
    visitor: V,
) -> Result<V::Value, Error> {
    let mut seq = SeqDeserializer::new(items.iter());
    let value = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(value)
}

fn visit_map_ref<'de, V: Visitor<'de>>(map: &'de Map, visitor: V) -> Result<V::Value, Error> {
    let mut access = MapDeserializer::new(map.iter().map(|(k, v)| (BorrowedStr(k), v)));
    let value = visitor.visit_map(&mut access)?;
    access.end()?;
    Ok(value)
}

/// A borrowed map key, handed to visitors as `visit_borrowed_str`.
struct BorrowedStr<'de>(&'de str);

impl<'de> IntoDeserializer<'de, Error> for BorrowedStr<'de> {
    type Deserializer = de::value::BorrowedStrDeserializer<'de, Error>;

    fn into_deserializer(self) -> Self::Deserializer {
        de::value::BorrowedStrDeserializer::new(self.0)
    }
}

impl<'de> Deserializer<'de> for Value {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => visitor.visit_i64(i),
            Value::UInt(u) => visitor.visit_u64(u),
            Value::Float(f) => visitor.visit_f64(f),
            Value::Str(s) => visitor.visit_string(s),
            Value::Bin(b) => visitor.visit_byte_buf(b),
            Value::Array(a) => visit_array(a, visitor),
            Value::Map(m) => visit_map(m, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Value::Str(variant) => visitor.visit_enum(EnumDeserializer {
                variant,
                value: None,
            }),
            Value::Map(map) if map.len() == 1 => {
                let Some((variant, value)) = map.into_iter().next() else {
                    return Err(de::Error::custom("empty enum map"));
                };
                visitor.visit_enum(EnumDeserializer {
                    variant,
                    value: Some(value),
                })
            }
            other => Err(other.invalid_type(&"a variant name or a one-entry map")),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Bin(b) => visitor.visit_byte_buf(b),
            Value::Str(s) => visitor.visit_string(s),
            Value::Array(a) => visit_array(a, visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    /// Binary data reads as a sequence of `u8` too (a `Vec<u8>` field).
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Bin(bytes) => {
                let mut seq = SeqDeserializer::new(bytes.into_iter());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        drop(self);
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        unit unit_struct tuple tuple_struct map struct identifier
    }
}

impl<'de> Deserializer<'de> for &'de Value {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::UInt(u) => visitor.visit_u64(*u),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::Bin(b) => visitor.visit_borrowed_bytes(b),
            Value::Array(a) => visit_array_ref(a, visitor),
            Value::Map(m) => visit_map_ref(m, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Value::Str(variant) => visitor.visit_enum(EnumRefDeserializer {
                variant,
                value: None,
            }),
            Value::Map(map) if map.len() == 1 => {
                let Some((variant, value)) = map.iter().next() else {
                    return Err(de::Error::custom("empty enum map"));
                };
                visitor.visit_enum(EnumRefDeserializer {
                    variant,
                    value: Some(value),
                })
            }
            other => Err(other.invalid_type(&"a variant name or a one-entry map")),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Bin(b) => visitor.visit_borrowed_bytes(b),
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::Array(a) => visit_array_ref(a, visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    /// Binary data reads as a sequence of `u8` too (a `Vec<u8>` field).
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Bin(bytes) => {
                let mut seq = SeqDeserializer::new(bytes.iter().copied());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        unit unit_struct tuple tuple_struct map struct identifier
    }
}

impl<'de> Deserializer<'de> for Map {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visit_map(self, visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        Value::Map(self).deserialize_enum(name, variants, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        drop(self);
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier
    }
}

impl<'de> Deserializer<'de> for &'de Map {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visit_map_ref(self, visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let mut entries = self.iter();
        match (entries.next(), entries.next()) {
            (Some((variant, value)), None) => visitor.visit_enum(EnumRefDeserializer {
                variant,
                value: Some(value),
            }),
            _ => Err(de::Error::invalid_type(
                Unexpected::Map,
                &"a one-entry map {variant: content}",
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier
    }
}

impl<'de> IntoDeserializer<'de, Error> for Value {
    type Deserializer = Value;

    fn into_deserializer(self) -> Value {
        self
    }
}

impl<'de> IntoDeserializer<'de, Error> for &'de Value {
    type Deserializer = &'de Value;

    fn into_deserializer(self) -> &'de Value {
        self
    }
}

impl<'de> IntoDeserializer<'de, Error> for Map {
    type Deserializer = Map;

    fn into_deserializer(self) -> Map {
        self
    }
}

impl<'de> IntoDeserializer<'de, Error> for &'de Map {
    type Deserializer = &'de Map;

    fn into_deserializer(self) -> &'de Map {
        self
    }
}

/// An enum read from a [`Value`]: its variant name and content, if any.
struct EnumDeserializer {
    variant: String,
    value: Option<Value>,
}

impl<'de> EnumAccess<'de> for EnumDeserializer {
    type Error = Error;
    type Variant = VariantDeserializer;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantDeserializer), Error> {
        let variant = seed.deserialize(self.variant.into_deserializer())?;
        Ok((variant, VariantDeserializer { value: self.value }))
    }
}

/// The content of an enum variant read from a [`Value`].
struct VariantDeserializer {
    value: Option<Value>,
}

impl<'de> VariantAccess<'de> for VariantDeserializer {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            None | Some(Value::Null) => Ok(()),
            Some(other) => Err(other.invalid_type(&"a unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.value {
            Some(value) => seed.deserialize(value),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Some(Value::Array(items)) => visit_array(items, visitor),
            Some(other) => Err(other.invalid_type(&"a tuple variant")),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Some(Value::Map(map)) => visit_map(map, visitor),
            Some(other) => Err(other.invalid_type(&"a struct variant")),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a struct variant",
            )),
        }
    }
}

/// An enum read from a borrowed [`Value`].
struct EnumRefDeserializer<'de> {
    variant: &'de str,
    value: Option<&'de Value>,
}

impl<'de> EnumAccess<'de> for EnumRefDeserializer<'de> {
    type Error = Error;
    type Variant = VariantRefDeserializer<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantRefDeserializer<'de>), Error> {
        let variant = seed.deserialize(BorrowedStr(self.variant).into_deserializer())?;
        Ok((variant, VariantRefDeserializer { value: self.value }))
    }
}

/// The content of an enum variant read from a borrowed [`Value`].
struct VariantRefDeserializer<'de> {
    value: Option<&'de Value>,
}

impl<'de> VariantAccess<'de> for VariantRefDeserializer<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            None | Some(Value::Null) => Ok(()),
            Some(other) => Err(other.invalid_type(&"a unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.value {
            Some(value) => seed.deserialize(value),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Some(Value::Array(items)) => visit_array_ref(items, visitor),
            Some(other) => Err(other.invalid_type(&"a tuple variant")),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Some(Value::Map(map)) => visit_map_ref(map, visitor),
            Some(other) => Err(other.invalid_type(&"a struct variant")),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a struct variant",
            )),
        }
    }
}
