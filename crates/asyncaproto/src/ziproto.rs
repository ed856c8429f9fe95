//! ZiProto payloads. TODO(payload helper).

use bytes::BufMut;

use crate::encoding::PayloadError;
use crate::value::{Map, Value};

/// Decodes one ZiProto value that spans the whole of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Value, PayloadError> {
    let _ = bytes;
    todo!()
}

/// Appends `value` as ZiProto.
pub fn encode(value: &Value, dst: &mut impl BufMut) -> Result<(), PayloadError> {
    let _ = (value, dst);
    todo!()
}

/// Appends `map` as a ZiProto map.
pub fn encode_map(map: &Map, dst: &mut impl BufMut) -> Result<(), PayloadError> {
    let _ = (map, dst);
    todo!()
}
