//! The data model every payload decodes to: a [`Map`] of string keys to [`Value`]s.
//!
//! TODO(payload helper): document the JSON/ZiProto mapping rules here.

use indexmap::IndexMap;

/// One payload value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// JSON `null`, ZiProto nil.
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
    /// Binary data (ZiProto bin).
    Bin(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// A map with string keys, in insertion order.
    Map(Map),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

/// A map of string keys to values that keeps insertion order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map {
    entries: IndexMap<String, Value>,
}

impl Map {
    /// An empty map.
    pub fn new() -> Self {
        Map::default()
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Map {
            entries: IndexMap::with_capacity(n),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key)
    }

    /// Sets `key` to `value`, returning the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        self.entries.insert(key.into(), value.into())
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.entries.iter()
    }
}
