//! JSON payloads: strict RFC 8259 decoding, and encoding byte for byte as
//! Python's `json.dumps(obj)` writes it.
//!
//! Decoding enforces the data-model rules (see [`crate::value`]): no duplicate
//! keys, at most [`MAX_DEPTH`](crate::MAX_DEPTH) levels, integers within `i64 ∪ u64`, and
//! reports each broken rule as its own [`PayloadError`](crate::PayloadError). A direct parser
//! builds the value of a payload within the rules; anything else is decoded
//! again by `serde_json` with a rule-enforcing visitor, which names the error
//! (the two agree on every payload the first accepts).
//!
//! Encoding writes what the original AsyncAPY server (Python) writes with
//! `json.dumps(obj)` and its default arguments, so replies are byte-identical:
//!
//! * separators `", "` and `": "`, keys in insertion order;
//! * `ensure_ascii`: every non-ASCII character as `\uXXXX` (lowercase hex,
//!   surrogate pairs above U+FFFF), `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`,
//!   other control characters and DEL as `\u00XX`; `/` is not escaped;
//! * floats as Python's `repr`: the shortest digits that read back exactly, in
//!   fixed notation when the decimal exponent is in `-4 <= exp < 16` (`1.0`,
//!   `0.0001`, `-0.0`), else in exponent notation (`1e-05`, `1e+16`, `1.5e+300`);
//! * binary ([`Value::Bin`](crate::Value::Bin), which Python cannot dump) as a base64 string.
//!
//! ```
//! use asyncaproto::{json, Map, Value};
//!
//! let mut map = Map::new();
//! map.insert("msg", "héllo 😀");
//! map.insert("ratio", 1e-5);
//! map.insert("n", 10);
//! let mut out = Vec::new();
//! json::encode_map(&map, &mut out)?;
//! assert_eq!(out, br#"{"msg": "h\u00e9llo \ud83d\ude00", "ratio": 1e-05, "n": 10}"#);
//! assert_eq!(json::decode(&out)?, Value::Map(map));
//! # Ok::<(), asyncaproto::PayloadError>(())
//! ```

mod decode;
mod encode;
mod scan;

pub use decode::{decode, decode_with};
pub use encode::{encode, encode_map};
