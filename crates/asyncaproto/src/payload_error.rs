//! [`PayloadError`]: why a payload does not decode or encode. Its own module,
//! below the codecs that return it (re-exported as `encoding::PayloadError`
//! and at the crate root).

/// Why a payload is malformed (decoding) or cannot be written (encoding).
///
/// Every variant maps to `ERR_REQUEST_MALFORMED` when it comes from a peer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The payload has no bytes at all.
    #[error("the payload is empty")]
    Empty,
    /// The payload ends inside a value.
    #[error("the payload ends inside a value")]
    Truncated,
    /// Bytes follow the one top-level value.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// The top-level value is not a map.
    #[error("the top-level value is not a map")]
    NotAMap,
    /// A string is not valid UTF-8.
    #[error("a string is not valid UTF-8")]
    InvalidUtf8,
    /// One map holds the same key twice.
    #[error("duplicate key {0:?} in one map")]
    DuplicateKey(String),
    /// Arrays and maps nest deeper than [`crate::MAX_DEPTH`].
    #[error("values nest deeper than {} levels", crate::MAX_DEPTH)]
    TooDeep,
    /// A float is NaN or infinite, which JSON cannot carry.
    #[error("a float is NaN or infinite")]
    NonFinite,
    /// A ZiProto map key is not a string.
    #[error("a map key is not a string")]
    NonStringKey,
    /// A ZiProto type byte outside the subset (ext types, `0xc1`).
    #[error("ZiProto type byte {0:#04x} is not supported")]
    UnsupportedType(u8),
    /// A JSON number that fits neither a 64-bit integer nor a finite float.
    #[error("number out of range")]
    NumberOutOfRange,
    /// A value too large for the encoding's length fields (encoding only).
    #[error("a value is too large to encode")]
    TooLarge,
    /// JSON syntax error, with the parser's description.
    #[error("invalid JSON: {0}")]
    Syntax(String),
}
