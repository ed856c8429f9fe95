//! Checking a reply against the request it answers.
//!
//! An echo must carry the request's payload in the request's encoding. The
//! cheap test is byte equality of the whole frame; when the bytes differ (a
//! server may re-encode JSON with other spacing), both sides are compared as
//! decoded maps before the reply is called a mismatch. A failure payload
//! (`{"status": "failure", "error": CODE}`) is recognised as such.

use asyncaproto::{Encoding, ErrorCode, Map};
use bytes::Bytes;

use super::payload::Request;

/// What one reply turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The reply echoes the request.
    Echo,
    /// A well-formed reply that is not the echo.
    Mismatch,
    /// A failure reply with a known code.
    Failure(ErrorCode),
    /// A payload that does not decode in its declared encoding.
    Malformed,
}

/// Judges replies against one request.
#[derive(Debug, Clone)]
pub(crate) struct Verifier {
    frame: Bytes,
    encoding: Encoding,
    map: Map,
    head_len: usize,
}

impl Verifier {
    /// A verifier for replies to `request`, framed with heads of `head_len` bytes.
    pub(crate) fn new(request: &Request, head_len: usize) -> Self {
        Verifier {
            frame: request.frame.clone(),
            encoding: request.encoding,
            map: request.map.clone(),
            head_len,
        }
    }

    /// Judges one whole reply `frame` (head included) whose head declared `encoding`.
    pub(crate) fn check(&self, encoding: Encoding, frame: &[u8]) -> Outcome {
        if frame == &self.frame[..] {
            return Outcome::Echo;
        }
        let Some(payload) = frame.get(self.head_len..) else {
            return Outcome::Malformed;
        };
        match encoding.decode(payload) {
            Err(_) => Outcome::Malformed,
            Ok(map) => {
                if let Some(code) = ErrorCode::from_map(&map) {
                    Outcome::Failure(code)
                } else if encoding == self.encoding && map == self.map {
                    Outcome::Echo
                } else {
                    Outcome::Mismatch
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asyncaproto::FrameCodec;
    use bytes::BytesMut;

    fn framed(encoding: Encoding, payload: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        FrameCodec::default()
            .write_raw(encoding, payload, &mut out)
            .expect("fits");
        out
    }

    #[test]
    fn judges_replies() {
        let request = Request::build(&FrameCodec::default(), Encoding::Json, 64).expect("builds");
        let verifier = Verifier::new(&request, 6);
        assert_eq!(
            verifier.check(Encoding::Json, &request.frame),
            Outcome::Echo
        );

        // The same map, spaced differently, is still an echo.
        let payload = &request.frame[6..];
        let compact = String::from_utf8(payload.to_vec())
            .expect("utf-8")
            .replace("\": \"", "\":\"");
        assert_ne!(compact.as_bytes(), payload);
        let reply = framed(Encoding::Json, compact.as_bytes());
        assert_eq!(verifier.check(Encoding::Json, &reply), Outcome::Echo);

        // The same map in the other encoding is not.
        let mut zi = Vec::new();
        Encoding::ZiProto
            .encode_map(&request.map, &mut zi)
            .expect("encodes");
        let reply = framed(Encoding::ZiProto, &zi);
        assert_eq!(verifier.check(Encoding::ZiProto, &reply), Outcome::Mismatch);

        let reply = framed(Encoding::Json, br#"{"data": "y"}"#);
        assert_eq!(verifier.check(Encoding::Json, &reply), Outcome::Mismatch);

        let reply = framed(Encoding::Json, b"{\"data\": ");
        assert_eq!(verifier.check(Encoding::Json, &reply), Outcome::Malformed);

        let mut failure = Vec::new();
        ErrorCode::NoHandler.write_payload(Encoding::Json, &mut failure);
        let reply = framed(Encoding::Json, &failure);
        assert_eq!(
            verifier.check(Encoding::Json, &reply),
            Outcome::Failure(ErrorCode::NoHandler)
        );
    }
}
