//! [`Map`]: string keys to [`Value`]s, in insertion order.

use std::fmt;
use std::iter::FusedIterator;
use std::ops::Index;

use indexmap::map::Entry;
use indexmap::IndexMap;

use super::{Value, NULL};

/// A map of string keys to values that keeps insertion order: a payload.
///
/// Keys iterate, print and encode in the order they were first inserted (for a
/// decoded payload: the order on the wire). Two maps are equal when they hold
/// the same entries, whatever their order.
///
/// ```
/// use asyncaproto::{Map, Value};
///
/// let mut map = Map::new();
/// map.insert("status", "ok");
/// map.insert("count", 2);
/// assert_eq!(map["status"], "ok");
/// assert!(map["nope"].is_null()); // indexing a missing key gives Null
/// assert_eq!(map.keys().collect::<Vec<_>>(), ["status", "count"]);
///
/// map.remove("status");
/// assert_eq!(map.to_string(), r#"{"count": 2}"#);
/// ```
#[derive(Clone, Default, PartialEq)]
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

    /// The value of `key`, mutably.
    ///
    /// ```
    /// use asyncaproto::Map;
    /// let mut map = Map::from_iter([("n", 1)]);
    /// if let Some(n) = map.get_mut("n") {
    ///     *n = 2.into();
    /// }
    /// assert_eq!(map["n"], 2);
    /// ```
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.entries.get_mut(key)
    }

    /// The stored key and value of `key`.
    pub fn get_key_value(&self, key: &str) -> Option<(&String, &Value)> {
        self.entries.get_key_value(key)
    }

    /// Whether the map has `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Sets `key` to `value`, returning the previous value. A new key goes
    /// last; an existing key keeps its position.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        self.entries.insert(key.into(), value.into())
    }

    /// Inserts `key` only if it is absent: `Err(value)` gives the value back
    /// when the key is already there (how decoders refuse duplicate keys).
    pub(crate) fn insert_new(&mut self, key: String, value: Value) -> Result<(), (String, Value)> {
        match self.entries.entry(key) {
            Entry::Occupied(e) => Err((e.key().clone(), value)),
            Entry::Vacant(e) => {
                e.insert(value);
                Ok(())
            }
        }
    }

    /// Removes `key`, returning its value; the other entries keep their order.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.entries.shift_remove(key)
    }

    /// Removes `key`, returning the stored key and its value; the other entries
    /// keep their order.
    pub fn remove_entry(&mut self, key: &str) -> Option<(String, Value)> {
        self.entries.shift_remove_entry(key)
    }

    /// Keeps only the entries for which `keep` returns true, in order.
    ///
    /// ```
    /// use asyncaproto::Map;
    /// let mut map = Map::from_iter([("a", 1), ("b", 2), ("c", 3)]);
    /// map.retain(|_, v| v.as_i64() != Some(2));
    /// assert_eq!(map.keys().collect::<Vec<_>>(), ["a", "c"]);
    /// ```
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut Value) -> bool) {
        self.entries.retain(|k, v| keep(k, v));
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
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
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.entries.iter())
    }

    /// The entries in insertion order, values mutable.
    pub fn iter_mut(&mut self) -> IterMut<'_> {
        IterMut(self.entries.iter_mut())
    }

    /// The keys in insertion order.
    pub fn keys(&self) -> Keys<'_> {
        Keys(self.entries.keys())
    }

    /// The values in insertion order.
    pub fn values(&self) -> Values<'_> {
        Values(self.entries.values())
    }

    /// The values in insertion order, mutable.
    pub fn values_mut(&mut self) -> ValuesMut<'_> {
        ValuesMut(self.entries.values_mut())
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter()).finish()
    }
}

impl fmt::Display for Map {
    /// The map as Python's `json.dumps` writes it; see [`Value`'s
    /// Display](Value#impl-Display-for-Value).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        crate::json::write_display_map(self, &mut out);
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl Index<&str> for Map {
    type Output = Value;

    /// The value of `key`, or [`Value::Null`] when it is missing (never panics,
    /// like `serde_json`).
    fn index(&self, key: &str) -> &Value {
        self.entries.get(key).unwrap_or(&NULL)
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Map {
    /// A map of the pairs in order; a later duplicate key replaces the earlier
    /// value and keeps the earlier position.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = Map::new();
        map.extend(iter);
        map
    }
}

impl<K: Into<String>, V: Into<Value>> Extend<(K, V)> for Map {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        self.entries.reserve(iter.size_hint().0);
        for (k, v) in iter {
            self.entries.insert(k.into(), v.into());
        }
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = IntoIter;

    fn into_iter(self) -> IntoIter {
        IntoIter(self.entries.into_iter())
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = (&'a String, &'a Value);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Map {
    type Item = (&'a String, &'a mut Value);
    type IntoIter = IterMut<'a>;

    fn into_iter(self) -> IterMut<'a> {
        self.iter_mut()
    }
}

macro_rules! iterator {
    ($(#[$doc:meta])* $name:ident<$($lt:lifetime)?>, $inner:ty, $item:ty) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name<$($lt)?>($inner);

        impl<$($lt)?> Iterator for $name<$($lt)?> {
            type Item = $item;

            fn next(&mut self) -> Option<$item> {
                self.0.next()
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                self.0.size_hint()
            }
        }

        impl<$($lt)?> DoubleEndedIterator for $name<$($lt)?> {
            fn next_back(&mut self) -> Option<$item> {
                self.0.next_back()
            }
        }

        impl<$($lt)?> ExactSizeIterator for $name<$($lt)?> {}

        impl<$($lt)?> FusedIterator for $name<$($lt)?> {}
    };
}

iterator!(
    /// The entries of a [`Map`] in insertion order, borrowed: [`Map::iter`].
    Iter<'a>, indexmap::map::Iter<'a, String, Value>, (&'a String, &'a Value)
);
iterator!(
    /// The entries of a [`Map`] in insertion order, values mutable: [`Map::iter_mut`].
    IterMut<'a>, indexmap::map::IterMut<'a, String, Value>, (&'a String, &'a mut Value)
);
iterator!(
    /// The entries of a [`Map`] in insertion order, owned: `Map::into_iter`.
    IntoIter<>, indexmap::map::IntoIter<String, Value>, (String, Value)
);
iterator!(
    /// The keys of a [`Map`] in insertion order: [`Map::keys`].
    Keys<'a>, indexmap::map::Keys<'a, String, Value>, &'a String
);
iterator!(
    /// The values of a [`Map`] in insertion order: [`Map::values`].
    Values<'a>, indexmap::map::Values<'a, String, Value>, &'a Value
);
iterator!(
    /// The values of a [`Map`] in insertion order, mutable: [`Map::values_mut`].
    ValuesMut<'a>, indexmap::map::ValuesMut<'a, String, Value>, &'a mut Value
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_keeps_position_of_existing_key() {
        let mut map = Map::from_iter([("a", 1), ("b", 2)]);
        assert_eq!(map.insert("a", 3), Some(Value::from(1)));
        assert_eq!(map.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(map["a"], 3);
    }

    #[test]
    fn remove_keeps_order() {
        let mut map = Map::from_iter([("a", 1), ("b", 2), ("c", 3)]);
        assert_eq!(map.remove("a"), Some(Value::from(1)));
        assert_eq!(map.keys().collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(
            map.remove_entry("c"),
            Some(("c".to_owned(), Value::from(3)))
        );
        assert_eq!(map.remove("zz"), None);
    }

    #[test]
    fn insert_new_refuses_duplicates() {
        let mut map = Map::new();
        assert!(map.insert_new("k".into(), Value::Null).is_ok());
        let err = map.insert_new("k".into(), Value::from(1));
        assert_eq!(err, Err(("k".to_owned(), Value::from(1))));
    }

    #[test]
    fn equality_ignores_order() {
        let a = Map::from_iter([("a", 1), ("b", 2)]);
        let b = Map::from_iter([("b", 2), ("a", 1)]);
        assert_eq!(a, b);
    }

    #[test]
    fn iterators() {
        let mut map = Map::from_iter([("a", 1), ("b", 2)]);
        for (_, v) in &mut map {
            *v = Value::from(v.as_i64().unwrap_or(0) * 10);
        }
        for v in map.values_mut() {
            *v = Value::from(v.as_i64().unwrap_or(0) + 1);
        }
        let pairs: Vec<(String, Value)> = map.clone().into_iter().collect();
        assert_eq!(pairs, [("a".into(), 11.into()), ("b".into(), 21.into())]);
        assert_eq!(map.iter().len(), 2);
        assert_eq!(map.values().next_back(), Some(&Value::from(21)));
        let mut more = Map::new();
        more.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
        assert_eq!(more, map);
        assert_eq!(format!("{map:?}"), r#"{"a": Int(11), "b": Int(21)}"#);
    }
}
