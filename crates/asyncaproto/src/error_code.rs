//! The failure codes a server replies with, and the exact failure payload.
//!
//! A failure reply is an ordinary frame whose payload is
//! `{"status": "failure", "error": CODE}`; the server closes the session after
//! it (all but `ERR_RATE_LIMITED`, which leaves the session open).
//! The first four codes are the original AsyncAPY's; the others are ours, for
//! situations the original left unanswered (PROTOCOL.md §7).

use std::fmt;
use std::str::FromStr;

use bytes::BufMut;

use crate::encoding::Encoding;
use crate::value::{Map, Value};

/// A failure code, as carried in the `error` field of a failure reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `ERR_HEADER_INVALID`: Protocol-Version is not 22, Content-Encoding is not
    /// 0 or 1, or Content-Length is below 2. Replied in JSON.
    HeaderInvalid,
    /// `ERR_REQUEST_MALFORMED`: the payload does not decode in its declared
    /// encoding, or is not a map. Replied in the packet's declared encoding.
    RequestMalformed,
    /// `ERR_TIMED_OUT`: no complete packet within `timeout`, or a handler ran
    /// longer than that. Replied in the session's encoding, else JSON.
    TimedOut,
    /// `ERR_SESSION_LIMIT_REACHED`: the client's IP already holds `session_limit`
    /// sessions. Replied in JSON.
    SessionLimitReached,
    /// `ERR_PACKET_TOO_LARGE` (ours): the declared Content-Length is above the
    /// server's maximum packet size; the body is never read. Replied in the
    /// packet's declared encoding.
    PacketTooLarge,
    /// `ERR_NO_HANDLER` (ours): no handler in any group accepted the packet.
    /// Replied in the session's encoding.
    NoHandler,
    /// `ERR_HANDLER_FAILED` (ours): the handler returned an error or panicked;
    /// no internal detail is sent. Replied in the session's encoding.
    HandlerFailed,
    /// `ERR_SHUTTING_DOWN` (ours): the server is shutting down and takes no new
    /// packets on this session. Replied in the session's encoding, else JSON.
    ShuttingDown,
    /// `ERR_SERVER_BUSY` (ours): the server is at its connection limit; the new
    /// connection is answered and closed. Replied in JSON.
    ServerBusy,
    /// `ERR_RATE_LIMITED` (ours): the client's IP sent packets faster than
    /// `rate_limit` allows; the packet is not handled and the session stays
    /// open (the client may slow down and go on). Replied in the session's
    /// encoding.
    RateLimited,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::HeaderInvalid,
        ErrorCode::RequestMalformed,
        ErrorCode::TimedOut,
        ErrorCode::SessionLimitReached,
        ErrorCode::PacketTooLarge,
        ErrorCode::NoHandler,
        ErrorCode::HandlerFailed,
        ErrorCode::ShuttingDown,
        ErrorCode::ServerBusy,
        ErrorCode::RateLimited,
    ];

    /// The code as it appears on the wire, e.g. `"ERR_TIMED_OUT"`.
    ///
    /// ```
    /// assert_eq!(asyncaproto::ErrorCode::TimedOut.as_str(), "ERR_TIMED_OUT");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::HeaderInvalid => "ERR_HEADER_INVALID",
            ErrorCode::RequestMalformed => "ERR_REQUEST_MALFORMED",
            ErrorCode::TimedOut => "ERR_TIMED_OUT",
            ErrorCode::SessionLimitReached => "ERR_SESSION_LIMIT_REACHED",
            ErrorCode::PacketTooLarge => "ERR_PACKET_TOO_LARGE",
            ErrorCode::NoHandler => "ERR_NO_HANDLER",
            ErrorCode::HandlerFailed => "ERR_HANDLER_FAILED",
            ErrorCode::ShuttingDown => "ERR_SHUTTING_DOWN",
            ErrorCode::ServerBusy => "ERR_SERVER_BUSY",
            ErrorCode::RateLimited => "ERR_RATE_LIMITED",
        }
    }

    /// The failure payload as a map: `{"status": "failure", "error": CODE}`.
    pub fn to_map(self) -> Map {
        let mut map = Map::with_capacity(2);
        map.insert("status", Value::from("failure"));
        map.insert("error", Value::from(self.as_str()));
        map
    }

    /// Writes the failure payload (not framed) in `encoding`, byte for byte as
    /// the original AsyncAPY server does.
    ///
    /// ```
    /// use asyncaproto::{Encoding, ErrorCode};
    /// let mut out = Vec::new();
    /// ErrorCode::HeaderInvalid.write_payload(Encoding::Json, &mut out);
    /// assert_eq!(out, br#"{"status": "failure", "error": "ERR_HEADER_INVALID"}"#);
    /// ```
    pub fn write_payload(self, encoding: Encoding, dst: &mut impl BufMut) {
        let code = self.as_str();
        match encoding {
            Encoding::Json => {
                dst.put_slice(br#"{"status": "failure", "error": ""#);
                dst.put_slice(code.as_bytes());
                dst.put_slice(br#""}"#);
            }
            Encoding::ZiProto => {
                // fixmap(2) "status" "failure" "error" CODE; every code is < 32 bytes.
                dst.put_slice(b"\x82\xa6status\xa7failure\xa5error");
                dst.put_u8(0xa0 | code.len() as u8);
                dst.put_slice(code.as_bytes());
            }
        }
    }

    /// Recognises a failure payload: `Some(code)` when `map` is exactly
    /// `{"status": "failure", "error": CODE}` with a known code.
    pub fn from_map(map: &Map) -> Option<ErrorCode> {
        if map.len() != 2 || map.get("status") != Some(&Value::from("failure")) {
            return None;
        }
        match map.get("error") {
            Some(Value::Str(code)) => code.parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown failure code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown failure code {0:?}")]
pub struct UnknownErrorCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_name() {
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            assert!(code.as_str().len() < 32);
        }
    }

    #[test]
    fn payloads_decode_to_the_failure_map_in_both_encodings() {
        for code in ErrorCode::ALL {
            for encoding in [Encoding::Json, Encoding::ZiProto] {
                let mut out = Vec::new();
                code.write_payload(encoding, &mut out);
                let map = encoding.decode(&out).expect("failure payload decodes");
                assert_eq!(map, code.to_map());
                assert_eq!(ErrorCode::from_map(&map), Some(code));
                // Our own encoder writes the same bytes.
                let mut again = Vec::new();
                encoding
                    .encode_map(&code.to_map(), &mut again)
                    .expect("encodes");
                assert_eq!(again, out, "{code} in {encoding}");
            }
        }
    }
}
