//! [`Map`]: string keys to [`Value`]s, in insertion order.

use std::collections::hash_map::{self, RandomState};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::iter::FusedIterator;
use std::ops::Index;

use super::{Value, NULL};

/// Up to this many entries a map has no hash index: a linear scan of the
/// keys is faster than hashing one (payloads are mostly a handful of keys).
/// Past it, lookups go through an [`Index`] keyed with a random SipHash key,
/// so peer-chosen keys cannot make them quadratic.
const LINEAR_MAX: usize = 16;

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
#[derive(Clone, Default)]
pub struct Map {
    /// The entries in insertion order.
    entries: Vec<(String, Value)>,
    /// Key positions, once the map has grown past [`LINEAR_MAX`] entries;
    /// when present it holds every entry.
    index: Option<Box<KeyIndex>>,
}

impl Map {
    /// An empty map.
    pub fn new() -> Self {
        Map::default()
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Map {
            entries: Vec::with_capacity(n),
            index: None,
        }
    }

    /// The map of `entries`, or `None` if two of them have the same key.
    ///
    /// For a decoder that collects the entries of a map before it knows how
    /// many there are: the hash index of a large map is then built once, at
    /// its final size.
    pub(crate) fn try_from_entries(entries: Vec<(String, Value)>) -> Option<Map> {
        let mut index = None;
        if entries.len() > LINEAR_MAX {
            let mut keys = KeyIndex::with_capacity(entries.len());
            for (position, (key, _)) in entries.iter().enumerate() {
                keys.insert(&entries, key, position).ok()?;
            }
            index = Some(Box::new(keys));
        } else {
            for (position, (key, _)) in entries.iter().enumerate() {
                if entries.iter().take(position).any(|(k, _)| k == key) {
                    return None;
                }
            }
        }
        Some(Map { entries, index })
    }

    /// The entries, for a [`Spares`](super::Spares) to take apart.
    pub(crate) fn into_entries(self) -> Vec<(String, Value)> {
        self.entries
    }

    /// An empty map over `entries`, an empty vector kept from an earlier map.
    pub(crate) fn over(mut entries: Vec<(String, Value)>) -> Map {
        entries.clear();
        Map {
            entries,
            index: None,
        }
    }

    /// The position of `key` in `entries`.
    #[inline]
    fn find(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.find(&self.entries, key),
            None => self.entries.iter().position(|(k, _)| k == key),
        }
    }

    /// Checks that `key` is absent before it is appended (by the caller, at
    /// once: a large map's index records it already); if not, the position
    /// of the entry that has it.
    #[inline]
    fn claim(&mut self, key: &str) -> Result<(), usize> {
        let position = self.entries.len();
        if let Some(index) = &mut self.index {
            return index.insert(&self.entries, key, position);
        }
        if let Some(i) = self.entries.iter().position(|(k, _)| k == key) {
            return Err(i);
        }
        if position >= LINEAR_MAX {
            self.build_index(key);
        }
        Ok(())
    }

    /// Indexes the entries, and `key` after them, as the map outgrows a scan.
    #[cold]
    fn build_index(&mut self, key: &str) {
        // Room for what the entries have room for (a decoder sizes them from
        // the input), or twice the keys so far.
        let room = self.entries.capacity().max(2 * (self.entries.len() + 1));
        self.index = Some(Box::new(KeyIndex::of(&self.entries, key, room)));
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let i = self.find(key)?;
        self.entries.get(i).map(|(_, v)| v)
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
        let i = self.find(key)?;
        self.entries.get_mut(i).map(|(_, v)| v)
    }

    /// The stored key and value of `key`.
    pub fn get_key_value(&self, key: &str) -> Option<(&String, &Value)> {
        let i = self.find(key)?;
        self.entries.get(i).map(|(k, v)| (k, v))
    }

    /// Whether the map has `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    /// Sets `key` to `value`, returning the previous value. A new key goes
    /// last; an existing key keeps its position.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        let (key, value) = (key.into(), value.into());
        match self.claim(&key) {
            Ok(()) => {
                self.entries.push((key, value));
                None
            }
            Err(i) => {
                let (_, old) = self.entries.get_mut(i)?;
                Some(std::mem::replace(old, value))
            }
        }
    }

    /// Inserts `key` only if it is absent: `Err(value)` gives the value back
    /// when the key is already there (how decoders refuse duplicate keys).
    #[inline]
    pub(crate) fn insert_new(&mut self, key: String, value: Value) -> Result<(), (String, Value)> {
        match self.claim(&key) {
            Ok(()) => {
                self.entries.push((key, value));
                Ok(())
            }
            Err(_) => Err((key, value)),
        }
    }

    /// Removes `key`, returning its value; the other entries keep their order.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.remove_entry(key).map(|(_, v)| v)
    }

    /// Removes `key`, returning the stored key and its value; the other entries
    /// keep their order.
    pub fn remove_entry(&mut self, key: &str) -> Option<(String, Value)> {
        let i = self.find(key)?;
        if let Some(index) = &mut self.index {
            index.remove(key, i);
        }
        Some(self.entries.remove(i))
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
        let before = self.entries.len();
        self.entries.retain_mut(|(k, v)| keep(k, v));
        if self.entries.len() != before && self.index.is_some() {
            self.index = match self.entries.split_last() {
                Some((last, rest)) if rest.len() >= LINEAR_MAX => {
                    Some(Box::new(KeyIndex::of(rest, &last.0, rest.len() + 1)))
                }
                _ => None,
            };
        }
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.index = None;
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
        Keys(self.entries.iter())
    }

    /// The values in insertion order.
    pub fn values(&self) -> Values<'_> {
        Values(self.entries.iter())
    }

    /// The values in insertion order, mutable.
    pub fn values_mut(&mut self) -> ValuesMut<'_> {
        ValuesMut(self.entries.iter_mut())
    }
}

/// The hash index of a large [`Map`]: each key's keyed SipHash (std's
/// [`RandomState`], a random key per map) to its position in the entries.
///
/// The table is keyed by the 64-bit hash itself; the rare keys that share one
/// share a [`Slot`]. Positions are compared against the stored key, so a
/// collision costs a string comparison, never a wrong answer.
#[derive(Clone)]
struct KeyIndex {
    hasher: RandomState,
    slots: HashMap<u64, Slot, BuildHasherDefault<HashIsKey>>,
}

/// The positions of the keys with one hash: almost always exactly one.
#[derive(Clone, Debug)]
enum Slot {
    One(usize),
    Many(Box<[usize]>),
}

impl KeyIndex {
    /// The index of `entries` (whose keys differ) and of `key` after them,
    /// with room for `capacity` keys.
    fn of(entries: &[(String, Value)], key: &str, capacity: usize) -> Self {
        let mut index = KeyIndex::with_capacity(capacity);
        let keys = entries.iter().map(|(k, _)| k.as_str()).chain([key]);
        for (position, key) in keys.enumerate() {
            let hash = index.hash(key);
            index.record(hash, position);
        }
        index
    }

    /// An empty index with room for `capacity` keys.
    fn with_capacity(capacity: usize) -> Self {
        KeyIndex {
            hasher: RandomState::new(),
            slots: HashMap::with_capacity_and_hasher(capacity, BuildHasherDefault::default()),
        }
    }

    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    fn find(&self, entries: &[(String, Value)], key: &str) -> Option<usize> {
        let slot = self.slots.get(&self.hash(key))?;
        slot.find(entries, key)
    }

    /// Records `key` at `position` (the end of `entries`), unless an entry
    /// already has it: then its position.
    fn insert(
        &mut self,
        entries: &[(String, Value)],
        key: &str,
        position: usize,
    ) -> Result<(), usize> {
        match self.slots.entry(self.hash(key)) {
            hash_map::Entry::Vacant(e) => {
                e.insert(Slot::One(position));
            }
            hash_map::Entry::Occupied(mut e) => {
                if let Some(i) = e.get().find(entries, key) {
                    return Err(i);
                }
                e.get_mut().add(position);
            }
        }
        Ok(())
    }

    /// Records a key known to be new at `position`.
    fn record(&mut self, hash: u64, position: usize) {
        self.slots
            .entry(hash)
            .and_modify(|slot| slot.add(position))
            .or_insert(Slot::One(position));
    }

    /// Forgets `key`, at `position`, and moves every later position down one
    /// (the entry is about to be removed from the entries).
    fn remove(&mut self, key: &str, position: usize) {
        if let hash_map::Entry::Occupied(mut e) = self.slots.entry(self.hash(key)) {
            match e.get() {
                Slot::One(_) => {
                    e.remove();
                }
                Slot::Many(positions) => {
                    let rest: Vec<usize> = positions
                        .iter()
                        .copied()
                        .filter(|&p| p != position)
                        .collect();
                    e.insert(match rest[..] {
                        [only] => Slot::One(only),
                        _ => Slot::Many(rest.into_boxed_slice()),
                    });
                }
            }
        }
        let shift = |p: &mut usize| {
            if *p > position {
                *p -= 1;
            }
        };
        for slot in self.slots.values_mut() {
            match slot {
                Slot::One(p) => shift(p),
                Slot::Many(positions) => positions.iter_mut().for_each(shift),
            }
        }
    }
}

impl Slot {
    /// The position among these of the entry whose key is `key`.
    fn find(&self, entries: &[(String, Value)], key: &str) -> Option<usize> {
        let is_key = |i: &usize| entries.get(*i).is_some_and(|(k, _)| k == key);
        match self {
            Slot::One(i) => Some(*i).filter(is_key),
            Slot::Many(positions) => positions.iter().copied().find(is_key),
        }
    }

    /// Adds a position (of another key with the same hash).
    fn add(&mut self, position: usize) {
        let positions = match self {
            Slot::One(other) => vec![*other, position],
            Slot::Many(positions) => positions.iter().copied().chain([position]).collect(),
        };
        *self = Slot::Many(positions.into_boxed_slice());
    }
}

/// The hasher of [`KeyIndex`]'s table, whose keys are already SipHash values:
/// it passes them through.
#[derive(Default)]
struct HashIsKey(u64);

impl Hasher for HashIsKey {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the table's keys are u64); fold anything
        // else in so the hasher stays correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl PartialEq for Map {
    /// Equal when both hold the same keys with equal values, in any order.
    fn eq(&self, other: &Map) -> bool {
        if self.len() != other.len() {
            return false;
        }
        // The same order (the usual case) needs no lookups.
        let mut pairs = self.entries.iter().zip(&other.entries);
        if pairs.all(|((k1, v1), (k2, v2))| k1 == k2 && v1 == v2) {
            return true;
        }
        self.entries
            .iter()
            .all(|(k, v)| other.get(k).is_some_and(|w| v == w))
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Index<&str> for Map {
    type Output = Value;

    /// The value of `key`, or [`Value::Null`] when it is missing (never panics,
    /// like `serde_json`).
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
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
            self.insert(k, v);
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
    (
        $(#[$doc:meta])* $name:ident<$($lt:lifetime)?>, $inner:ty, $item:ty,
        |$entry:pat_param| $project:expr
    ) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name<$($lt)?>($inner);

        impl<$($lt)?> Iterator for $name<$($lt)?> {
            type Item = $item;

            fn next(&mut self) -> Option<$item> {
                self.0.next().map(|$entry| $project)
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                self.0.size_hint()
            }

            fn nth(&mut self, n: usize) -> Option<$item> {
                self.0.nth(n).map(|$entry| $project)
            }
        }

        impl<$($lt)?> DoubleEndedIterator for $name<$($lt)?> {
            fn next_back(&mut self) -> Option<$item> {
                self.0.next_back().map(|$entry| $project)
            }
        }

        impl<$($lt)?> ExactSizeIterator for $name<$($lt)?> {}

        impl<$($lt)?> FusedIterator for $name<$($lt)?> {}
    };
}

iterator!(
    /// The entries of a [`Map`] in insertion order, borrowed: [`Map::iter`].
    Iter<'a>, std::slice::Iter<'a, (String, Value)>, (&'a String, &'a Value),
    |(k, v)| (k, v)
);
iterator!(
    /// The entries of a [`Map`] in insertion order, values mutable: [`Map::iter_mut`].
    IterMut<'a>, std::slice::IterMut<'a, (String, Value)>, (&'a String, &'a mut Value),
    |(k, v)| (&*k, v)
);
iterator!(
    /// The entries of a [`Map`] in insertion order, owned: `Map::into_iter`.
    IntoIter<>, std::vec::IntoIter<(String, Value)>, (String, Value),
    |entry| entry
);
iterator!(
    /// The keys of a [`Map`] in insertion order: [`Map::keys`].
    Keys<'a>, std::slice::Iter<'a, (String, Value)>, &'a String,
    |(k, _)| k
);
iterator!(
    /// The values of a [`Map`] in insertion order: [`Map::values`].
    Values<'a>, std::slice::Iter<'a, (String, Value)>, &'a Value,
    |(_, v)| v
);
iterator!(
    /// The values of a [`Map`] in insertion order, mutable: [`Map::values_mut`].
    ValuesMut<'a>, std::slice::IterMut<'a, (String, Value)>, &'a mut Value,
    |(_, v)| v
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

    fn keys_of(map: &Map) -> Vec<String> {
        map.keys().cloned().collect()
    }

    /// Checks every lookup of `map` against a scan of its entries.
    fn check_lookups(map: &Map) {
        assert_eq!(map.index.is_some(), map.len() > LINEAR_MAX);
        for (i, (k, v)) in map.entries.iter().enumerate() {
            assert_eq!(map.find(k), Some(i), "{k}");
            assert_eq!(map.get(k), Some(v));
        }
        assert_eq!(map.find("absent"), None);
    }

    #[test]
    fn large_maps_keep_order_and_find_every_key() {
        let mut map = Map::new();
        for i in 0..100 {
            assert_eq!(map.insert(format!("k{i}"), i), None);
            check_lookups(&map);
        }
        // Replacing keeps the position, in the indexed map too.
        assert_eq!(map.insert("k3", "three"), Some(Value::from(3)));
        assert_eq!(map.keys().nth(3).map(String::as_str), Some("k3"));
        assert!(map.insert_new("k99".into(), Value::Null).is_err());
        assert!(map.insert_new("k100".into(), Value::Null).is_ok());
        check_lookups(&map);

        // Removing shifts later entries down: their positions stay right.
        let mut order = keys_of(&map);
        for key in ["k0", "k50", "k100", "k7"] {
            assert!(map.remove(key).is_some());
            order.retain(|k| k != key);
            assert_eq!(keys_of(&map), order);
            check_lookups(&map);
        }
        assert_eq!(map.remove("k0"), None);

        // Retain rebuilds the index, or drops it once the map is small.
        map.retain(|k, _| k.len() == 3);
        assert_eq!(map.len(), 89);
        check_lookups(&map);
        map.retain(|k, _| k.ends_with('1'));
        assert_eq!(
            keys_of(&map),
            ["k11", "k21", "k31", "k41", "k51", "k61", "k71", "k81", "k91"]
        );
        check_lookups(&map);

        // Shrinking by removal keeps a correct index until cleared.
        let mut big: Map = (0..20).map(|i| (format!("{i}"), i)).collect();
        for i in 0..18 {
            big.remove(&format!("{i}"));
            for (j, (k, _)) in big.entries.iter().enumerate() {
                assert_eq!(big.find(k), Some(j));
            }
        }
        big.clear();
        assert!(big.is_empty() && big.index.is_none());
        big.insert("a", 1);
        check_lookups(&big);
    }

    #[test]
    fn keys_with_one_hash_share_a_slot() {
        let mut map: Map = (0..20).map(|i| (format!("k{i}"), i)).collect();
        map.entries.push(("other".into(), Value::Null));
        let entries = map.entries.clone();
        let index = map.index.as_mut().expect("indexed");
        let hash = index.hash("k5");
        assert!(matches!(index.slots.get(&hash), Some(Slot::One(5))));
        // Force a collision: record "other" (position 20) under the hash of "k5".
        index.record(hash, 20);
        assert!(matches!(index.slots.get(&hash), Some(Slot::Many(_))));
        assert_eq!(index.find(&entries, "k5"), Some(5));
        // Looked up under its own hash, "other" is not found...
        assert_eq!(index.find(&entries, "other"), None);
        // ...but a key that shares a slot is told apart by comparison.
        assert_eq!(
            index
                .slots
                .get(&hash)
                .and_then(|s| s.find(&entries, "other")),
            Some(20)
        );
        assert_eq!(index.insert(&entries, "k5", 21), Err(5));
        index.remove("k5", 5);
        assert!(matches!(index.slots.get(&hash), Some(Slot::One(19))));
        index.record(hash, 7);
        index.record(hash, 8);
        index.remove("k5", 7);
        assert!(matches!(index.slots.get(&hash), Some(Slot::Many(p)) if p[..] == [18, 7]));
    }

    #[test]
    fn maps_from_collected_entries_refuse_repeated_keys() {
        for n in [0usize, 1, 2, 16, 17, 18, 100] {
            let entries: Vec<(String, Value)> =
                (0..n).map(|i| (format!("k{i}"), i.into())).collect();
            let map = Map::try_from_entries(entries.clone()).expect("distinct");
            assert_eq!(
                map.keys().cloned().collect::<Vec<_>>(),
                keys_of(&Map::from_iter(entries.clone()))
            );
            check_lookups(&map);
            for dup in [0, n / 2, n.saturating_sub(1)]
                .into_iter()
                .filter(|_| n > 0)
            {
                let mut more = entries.clone();
                more.push((format!("k{dup}"), Value::Null));
                assert!(Map::try_from_entries(more).is_none(), "{n} {dup}");
            }
        }
    }

    #[test]
    fn equality_ignores_order_in_large_maps() {
        let a: Map = (0..40).map(|i| (format!("k{i}"), i)).collect();
        let b: Map = (0..40).rev().map(|i| (format!("k{i}"), i)).collect();
        assert_eq!(a, b);
        let c: Map = (0..40).map(|i| (format!("k{i}"), i % 39)).collect();
        assert_ne!(a, c);
        assert_eq!(a.clone(), a);
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
