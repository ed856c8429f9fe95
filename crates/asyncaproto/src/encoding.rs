//! The two payload encodings, JSON and ZiProto, onto one data model ([`Map`]).

use std::fmt;
use std::str::FromStr;

use bytes::BufMut;

pub use crate::payload_error::PayloadError;
use crate::value::{Map, Spares, Value};
use crate::{json, ziproto};

/// A payload's Content-Encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `0`: a UTF-8 JSON object.
    #[default]
    Json,
    /// `1`: a ZiProto (MessagePack subset) map.
    ZiProto,
}

impl Encoding {
    /// The Content-Encoding byte: 0 for JSON, 1 for ZiProto.
    pub fn as_byte(self) -> u8 {
        match self {
            Encoding::Json => 0,
            Encoding::ZiProto => 1,
        }
    }

    /// The encoding a Content-Encoding byte names, if any.
    ///
    /// ```
    /// use asyncaproto::Encoding;
    /// assert_eq!(Encoding::from_byte(1), Some(Encoding::ZiProto));
    /// assert_eq!(Encoding::from_byte(2), None);
    /// ```
    pub fn from_byte(byte: u8) -> Option<Encoding> {
        match byte {
            0 => Some(Encoding::Json),
            1 => Some(Encoding::ZiProto),
            _ => None,
        }
    }

    /// The name used in AsyncAPY configuration: `"json"` or `"ziproto"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::ZiProto => "ziproto",
        }
    }

    /// Decodes a whole payload, which must be exactly one map and nothing more.
    ///
    /// ```
    /// use asyncaproto::{Encoding, PayloadError};
    /// assert!(Encoding::Json.decode(br#"{"a": [1, 2.5, null]}"#).is_ok());
    /// assert!(matches!(Encoding::Json.decode(b"[1]"), Err(PayloadError::NotAMap)));
    /// ```
    pub fn decode(self, payload: &[u8]) -> Result<Map, PayloadError> {
        self.decode_with(payload, &mut Spares::new())
    }

    /// As [`Encoding::decode`], filling strings and map entry vectors kept in
    /// `spares` (from earlier payloads) before allocating new ones.
    ///
    /// ```
    /// use asyncaproto::{Encoding, Spares};
    /// let mut spares = Spares::new();
    /// let map = Encoding::Json.decode_with(br#"{"a": "b"}"#, &mut spares)?;
    /// spares.reclaim(map);
    /// let map = Encoding::Json.decode_with(br#"{"a": "c"}"#, &mut spares)?;
    /// assert_eq!(map["a"], "c");
    /// # Ok::<(), asyncaproto::PayloadError>(())
    /// ```
    pub fn decode_with(self, payload: &[u8], spares: &mut Spares) -> Result<Map, PayloadError> {
        let value = match self {
            Encoding::Json => json::decode_with(payload, spares)?,
            Encoding::ZiProto => ziproto::decode_with(payload, spares)?,
        };
        // A top-level value that is not a map is the protocol's error.
        match value {
            Value::Map(map) => Ok(map),
            other => {
                spares.reclaim_value(other);
                Err(PayloadError::NotAMap)
            }
        }
    }

    /// Decodes a whole payload as any value (top-level maps are the protocol's
    /// rule, enforced by [`Encoding::decode`]).
    pub fn decode_value(self, payload: &[u8]) -> Result<Value, PayloadError> {
        match self {
            Encoding::Json => json::decode(payload),
            Encoding::ZiProto => ziproto::decode(payload),
        }
    }

    /// Appends `map` encoded in this encoding to `dst`.
    pub fn encode_map(self, map: &Map, dst: &mut impl BufMut) -> Result<(), PayloadError> {
        match self {
            Encoding::Json => json::encode_map(map, dst),
            Encoding::ZiProto => ziproto::encode_map(map, dst),
        }
    }

    /// Appends `value` encoded in this encoding to `dst`.
    pub fn encode_value(self, value: &Value, dst: &mut impl BufMut) -> Result<(), PayloadError> {
        match self {
            Encoding::Json => json::encode(value, dst),
            Encoding::ZiProto => ziproto::encode(value, dst),
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an [`Encoding`] from anything but `json` or `ziproto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("encoding must be 'json' or 'ziproto', not {0:?}")]
pub struct ParseEncodingError(pub String);

impl FromStr for Encoding {
    type Err = ParseEncodingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Encoding::Json),
            "ziproto" => Ok(Encoding::ZiProto),
            _ => Err(ParseEncodingError(s.to_owned())),
        }
    }
}
