//! [`Spares`]: the allocations of decoded values that are done with, kept for
//! the next decode to fill instead of asking the allocator again.

use super::{Map, Value};

/// At most this many strings are kept.
const MAX_STRINGS: usize = 64;

/// At most this many map entry vectors are kept.
const MAX_ENTRY_VECS: usize = 8;

/// The allocations of payloads that are done with, for the next decode.
///
/// A server decodes packet after packet of much the same shape. Handing each
/// decoded map back once it is done with ([`Spares::reclaim`]) lets the next
/// decode ([`Encoding::decode_with`](crate::Encoding::decode_with)) fill the
/// same strings and entry vectors instead of allocating new ones: a stream of
/// same-shaped packets then decodes without the allocator. What is kept is
/// bounded (a few dozen strings and a few maps' entry vectors, each as large
/// as the payload that left it); drop the `Spares` to release it, for example
/// when a session goes idle.
///
/// Reclaimed strings are handed out in the order the values that held them
/// were decoded, so each tends to get back the string it held last time (and
/// so its capacity).
///
/// ```
/// use asyncaproto::{Encoding, Spares};
///
/// let mut spares = Spares::new();
/// let map = Encoding::Json.decode_with(br#"{"name": "Ada", "id": 1}"#, &mut spares)?;
/// assert_eq!(map["name"], "Ada");
/// spares.reclaim(map);
/// assert!(!spares.is_empty());
/// // The same decode again: "name" and "Ada" are written into the strings kept.
/// let again = Encoding::Json.decode_with(br#"{"name": "Bob", "id": 2}"#, &mut spares)?;
/// assert_eq!(again["name"], "Bob");
/// # Ok::<(), asyncaproto::PayloadError>(())
/// ```
#[derive(Debug, Default)]
pub struct Spares {
    /// Strings, cleared, the next one to hand out last.
    strings: Vec<String>,
    /// Map entry vectors, emptied, the next one to hand out last.
    entries: Vec<Vec<(String, Value)>>,
}

impl Spares {
    /// No spares (allocates nothing until something is reclaimed).
    pub fn new() -> Spares {
        Spares::default()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty() && self.entries.is_empty()
    }

    /// The bytes of heap memory kept: the strings' capacities and the entry
    /// vectors' (each entry counted at its size).
    pub fn kept_bytes(&self) -> usize {
        let strings: usize = self.strings.iter().map(String::capacity).sum();
        let entries: usize = self.entries.iter().map(Vec::capacity).sum();
        strings + entries * std::mem::size_of::<(String, Value)>()
    }

    /// Drops everything kept.
    pub fn clear(&mut self) {
        self.strings.clear();
        self.entries.clear();
    }

    /// Keeps only strings of at most `max_string` bytes of capacity and
    /// entry vectors of at most `max_entries` entries: what a long-lived
    /// `Spares` (one per thread, say) holds on to after a large payload.
    ///
    /// ```
    /// use asyncaproto::{Encoding, Spares};
    ///
    /// let mut spares = Spares::new();
    /// let long = format!(r#"{{"k": "{}"}}"#, "x".repeat(10_000));
    /// let map = Encoding::Json.decode_with(long.as_bytes(), &mut spares)?;
    /// spares.reclaim(map);
    /// assert!(spares.kept_bytes() >= 10_000);
    /// spares.trim(1024, 16);
    /// // The 10,000-byte string is gone; the key's string stays.
    /// assert!(!spares.is_empty());
    /// assert!(spares.kept_bytes() < 1024);
    /// # Ok::<(), asyncaproto::PayloadError>(())
    /// ```
    pub fn trim(&mut self, max_string: usize, max_entries: usize) {
        self.strings.retain(|s| s.capacity() <= max_string);
        self.entries.retain(|v| v.capacity() <= max_entries);
    }

    /// Takes back the allocations of `map`, a decoded payload that is done
    /// with: its strings and entry vectors, in the reverse of the order a
    /// decoder takes them (so that popping gives decode order).
    pub fn reclaim(&mut self, map: Map) {
        let mut entries = map.into_entries();
        while let Some((key, value)) = entries.pop() {
            self.reclaim_value(value);
            self.keep_string(key);
        }
        if self.entries.len() < MAX_ENTRY_VECS {
            self.entries.push(entries);
        }
    }

    pub(crate) fn reclaim_value(&mut self, value: Value) {
        match value {
            Value::Str(s) => self.keep_string(s),
            Value::Map(map) => self.reclaim(map),
            Value::Array(mut items) => {
                while let Some(item) = items.pop() {
                    self.reclaim_value(item);
                }
            }
            _ => {}
        }
    }

    fn keep_string(&mut self, mut s: String) {
        if self.strings.len() < MAX_STRINGS && s.capacity() > 0 {
            s.clear();
            self.strings.push(s);
        }
    }

    /// `text` as an owned string, in a kept allocation when there is one.
    pub(crate) fn string(&mut self, text: &str) -> String {
        match self.strings.pop() {
            Some(mut s) => {
                s.push_str(text);
                s
            }
            None => text.to_owned(),
        }
    }

    /// An empty string with room for at least `n` bytes.
    pub(crate) fn string_with_capacity(&mut self, n: usize) -> String {
        match self.strings.pop() {
            Some(mut s) => {
                s.reserve(n);
                s
            }
            None => String::with_capacity(n),
        }
    }

    /// An empty entry vector with room for at least `n` entries.
    pub(crate) fn entries(&mut self, n: usize) -> Vec<(String, Value)> {
        match self.entries.pop() {
            Some(mut v) => {
                v.reserve(n);
                v
            }
            None => Vec::with_capacity(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Encoding;

    #[test]
    fn strings_come_back_in_decode_order() {
        let mut spares = Spares::new();
        let text = br#"{"a": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "b": {"c": ["dd", 1]}}"#;
        let map = Encoding::Json.decode_with(text, &mut spares).unwrap();
        let capacities: Vec<usize> = vec![1, 40, 1, 1, 2];
        spares.reclaim(map);
        assert_eq!(spares.entries.len(), 2);
        let popped: Vec<usize> = spares.strings.iter().rev().map(String::capacity).collect();
        // Each string is handed out again for the value that held it.
        for (got, want) in popped.iter().zip(&capacities) {
            assert!(got >= want, "{popped:?}");
        }
        assert_eq!(popped[1], 40);
        let again = Encoding::Json.decode_with(text, &mut spares).unwrap();
        assert_eq!(again, Encoding::Json.decode(text).unwrap());
        assert!(spares.is_empty());
    }

    #[test]
    fn what_is_kept_is_bounded() {
        let mut spares = Spares::new();
        let mut map = Map::new();
        for i in 0..200 {
            map.insert(format!("k{i}"), Value::Map(Map::new()));
        }
        spares.reclaim(map);
        assert_eq!(spares.strings.len(), MAX_STRINGS);
        assert_eq!(spares.entries.len(), MAX_ENTRY_VECS);
        spares.clear();
        assert!(spares.is_empty());
    }

    #[test]
    fn trim_drops_only_large_allocations() {
        let mut spares = Spares::new();
        spares.keep_string(String::with_capacity(8));
        spares.keep_string(String::with_capacity(5000));
        spares.entries.push(Vec::with_capacity(2));
        spares.entries.push(Vec::with_capacity(100));
        spares.trim(4096, 16);
        assert_eq!(spares.strings.len(), 1);
        assert!(spares.strings[0].capacity() < 4096);
        assert_eq!(spares.entries.len(), 1);
        assert!(spares.entries[0].capacity() <= 16);
    }

    #[test]
    fn decoding_with_spares_gives_the_same_values() {
        let payloads: [&[u8]; 4] = [
            br#"{"k": "v", "n": [1, 2.5, null, true], "m": {"x": "y"}}"#,
            br#"{"other": "shape", "k": "a much longer string than before"}"#,
            br#"{}"#,
            br#"{"esc": "a\nb\u00e9", "k": ""}"#,
        ];
        let mut spares = Spares::new();
        for round in 0..3 {
            for text in payloads {
                let plain = Encoding::Json.decode(text).unwrap();
                let recycled = Encoding::Json.decode_with(text, &mut spares).unwrap();
                assert_eq!(recycled, plain, "round {round}");
                let mut zi = Vec::new();
                Encoding::ZiProto.encode_map(&plain, &mut zi).unwrap();
                let recycled_zi = Encoding::ZiProto.decode_with(&zi, &mut spares).unwrap();
                assert_eq!(recycled_zi, plain, "round {round}");
                spares.reclaim(recycled);
                spares.reclaim(recycled_zi);
            }
        }
    }
}
