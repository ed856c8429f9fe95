//! Metadata as JSON text, for stores that persist it (SQLite, Redis).
//!
//! The text is the JSON of the metadata, as Python's `json.dumps` writes it,
//! with two escapes so that every [`Value`] comes back unchanged (plain JSON
//! has no binary type, and [`Value::Bin`] would come back a string):
//!
//! * binary is written as the object `{"$bin": "<lowercase hex>"}`;
//! * a map key starting with `$` is written with one more `$` (`"$ref"` is
//!   stored `"$$ref"`), so no user map is ever read back as binary.
//!
//! Metadata without binary and without `$` keys (all metadata that came from
//! JSON, such as `asyncapy keys issue --metadata`) is stored as plain JSON.

use asyncaproto::{json, Map, Value, MAX_DEPTH};

use super::digest::{from_hex, to_hex};
use super::KeyStoreError;

/// The key of the object standing for binary data.
const BIN: &str = "$bin";

/// `metadata` as JSON text.
pub(crate) fn to_json(metadata: &Value) -> Result<String, KeyStoreError> {
    let escaped = escape(metadata, 1)?;
    let mut out = Vec::new();
    json::encode(&escaped, &mut out).map_err(|e| KeyStoreError::Metadata(e.to_string()))?;
    // The encoder escapes every non-ASCII character: the text is ASCII.
    String::from_utf8(out).map_err(|e| KeyStoreError::Metadata(e.to_string()))
}

/// The metadata that [`to_json`] wrote as `text`.
pub(crate) fn from_json(text: &str) -> Result<Value, KeyStoreError> {
    let value = json::decode(text.as_bytes())
        .map_err(|e| KeyStoreError::Corrupt(format!("metadata is not JSON: {e}")))?;
    Ok(unescape(value))
}

fn escape(value: &Value, depth: usize) -> Result<Value, KeyStoreError> {
    if depth > MAX_DEPTH {
        return Err(KeyStoreError::Metadata(format!(
            "nested deeper than {MAX_DEPTH} levels"
        )));
    }
    Ok(match value {
        Value::Bin(bytes) => Value::Map(Map::from_iter([(BIN, to_hex(bytes))])),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| escape(item, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, item) in map {
                let key = if key.starts_with('$') {
                    format!("${key}")
                } else {
                    key.clone()
                };
                out.insert(key, escape(item, depth + 1)?);
            }
            Value::Map(out)
        }
        other => other.clone(),
    })
}

fn unescape(value: Value) -> Value {
    match value {
        Value::Map(map) => {
            if map.len() == 1 {
                if let Some(Value::Str(hex)) = map.get(BIN) {
                    if let Some(bytes) = from_hex(hex) {
                        return Value::Bin(bytes);
                    }
                }
            }
            let mut out = Map::with_capacity(map.len());
            for (key, item) in map {
                let key = match key.strip_prefix('$') {
                    Some(rest) if rest.starts_with('$') => rest.to_owned(),
                    _ => key,
                };
                out.insert(key, unescape(item));
            }
            Value::Map(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(unescape).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: Value) -> String {
        let text = to_json(&value).unwrap();
        assert_eq!(from_json(&text).unwrap(), value, "through {text}");
        text
    }

    #[test]
    fn json_metadata_is_stored_as_plain_json() {
        let map = Map::from_iter([("user", Value::from("ada")), ("n", Value::from(1))]);
        assert_eq!(round_trip(Value::from(map)), r#"{"user": "ada", "n": 1}"#);
        assert_eq!(round_trip(Value::Null), "null");
        assert_eq!(round_trip(Value::from("é")), r#""\u00e9""#);
        assert_eq!(round_trip(Value::from(0.5)), "0.5");
        assert_eq!(round_trip(Value::from(u64::MAX)), "18446744073709551615");
    }

    #[test]
    fn binary_and_dollar_keys_are_escaped() {
        assert_eq!(
            round_trip(Value::bin(vec![0u8, 255])),
            r#"{"$bin": "00ff"}"#
        );
        let tricky = Map::from_iter([
            ("$bin", Value::from("00ff")),
            ("$$", Value::from(1)),
            ("$", Value::bin(vec![])),
        ]);
        assert_eq!(
            round_trip(Value::from(tricky)),
            r#"{"$$bin": "00ff", "$$$": 1, "$$": {"$bin": ""}}"#
        );
        let only = Map::from_iter([("$bin", Value::from("00"))]);
        assert_eq!(round_trip(Value::from(only)), r#"{"$$bin": "00"}"#);
        round_trip(Value::from(vec![Value::bin(vec![1u8]), Value::from("x")]));
    }

    #[test]
    fn unreadable_text_is_corrupt_and_unstorable_values_are_errors() {
        assert!(matches!(from_json("{"), Err(KeyStoreError::Corrupt(_))));
        assert!(matches!(
            to_json(&Value::Float(f64::NAN)),
            Err(KeyStoreError::Metadata(_))
        ));
        let mut deep = Value::Null;
        for _ in 0..200 {
            deep = Value::from(vec![deep]);
        }
        assert!(matches!(to_json(&deep), Err(KeyStoreError::Metadata(_))));
    }
}
