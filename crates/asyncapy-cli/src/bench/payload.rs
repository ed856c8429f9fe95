//! The request the load generator sends: one payload of an exact encoded size,
//! framed once, up front.
//!
//! The payload is a map `{"data": "xxxx…"}` whose filler is lengthened until the
//! *encoded* payload is exactly the requested size in the chosen encoding. Where
//! a string-length boundary makes that impossible (ZiProto's string head grows
//! from 1 to 2 bytes at 32 characters, for example), the key is padded instead
//! (`"data_"`, `"data__"`, …).

use anyhow::{bail, Context as _};
use asyncaproto::{Encoding, FrameCodec, Map, Value};
use bytes::{Bytes, BytesMut};

/// The key of the filler field.
const KEY: &str = "data";

/// How many extra key characters to try before giving up on an exact size.
const MAX_KEY_PADDING: usize = 8;

/// One request, ready to be written any number of times.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// The payload's encoding.
    pub(crate) encoding: Encoding,
    /// The payload decoded again: what a re-encoded echo must decode to.
    pub(crate) map: Map,
    /// The whole frame, head and payload.
    pub(crate) frame: Bytes,
}

impl Request {
    /// Builds the request whose encoded payload is exactly `payload_size` bytes.
    pub(crate) fn build(
        codec: &FrameCodec,
        encoding: Encoding,
        payload_size: usize,
    ) -> anyhow::Result<Request> {
        let map = sized_map(encoding, payload_size)?;
        let mut payload = BytesMut::with_capacity(payload_size);
        encoding
            .encode_map(&map, &mut payload)
            .context("encoding the request payload")?;
        let mut frame = BytesMut::with_capacity(codec.config().head_len() + payload.len());
        codec
            .write_raw(encoding, &payload, &mut frame)
            .context("the payload does not fit the frame header (raise --header-size)")?;
        Ok(Request {
            encoding,
            map,
            frame: frame.freeze(),
        })
    }

    /// `copies` back-to-back copies of the frame: a pipelined refill of `k`
    /// requests is always a suffix of this buffer (the frames are identical, so
    /// the last `n` bytes of it are also the rest of a partly written refill).
    pub(crate) fn repeated(&self, copies: usize) -> Bytes {
        let mut out = BytesMut::with_capacity(self.frame.len() * copies);
        for _ in 0..copies {
            out.extend_from_slice(&self.frame);
        }
        out.freeze()
    }
}

/// The map `{KEY + padding: "x" * n}`.
fn filler_map(key_padding: usize, filler: usize) -> Map {
    let mut key = String::with_capacity(KEY.len() + key_padding);
    key.push_str(KEY);
    key.extend(std::iter::repeat_n('_', key_padding));
    let mut map = Map::with_capacity(1);
    map.insert(key, Value::Str("x".repeat(filler)));
    map
}

fn encoded_len(encoding: Encoding, map: &Map) -> anyhow::Result<usize> {
    let mut out = Vec::new();
    encoding
        .encode_map(map, &mut out)
        .context("encoding the request payload")?;
    Ok(out.len())
}

/// The filler map whose encoding in `encoding` is exactly `size` bytes.
pub(crate) fn sized_map(encoding: Encoding, size: usize) -> anyhow::Result<Map> {
    let empty = Map::new();
    if encoded_len(encoding, &empty)? == size {
        return Ok(empty);
    }
    for key_padding in 0..=MAX_KEY_PADDING {
        let base = encoded_len(encoding, &filler_map(key_padding, 0))?;
        if base > size {
            break;
        }
        // Each filler character costs at least one byte, so `size - base`
        // characters is an upper bound; walk down from it while too long.
        let mut filler = size - base;
        loop {
            let len = encoded_len(encoding, &filler_map(key_padding, filler))?;
            if len == size {
                return Ok(filler_map(key_padding, filler));
            }
            if len < size || filler == 0 {
                break;
            }
            filler = filler.saturating_sub(len - size);
        }
    }
    let minimum = encoded_len(encoding, &filler_map(0, 0))?;
    if size < minimum {
        bail!(
            "--payload-size {size} is too small: the smallest {encoding} payload of this \
             shape is {minimum} bytes"
        );
    }
    bail!("no {encoding} payload of exactly {size} bytes could be built")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(encoding: Encoding, size: usize) {
        let map = sized_map(encoding, size).expect("buildable size");
        let mut out = Vec::new();
        encoding.encode_map(&map, &mut out).expect("encodes");
        assert_eq!(out.len(), size, "{encoding} payload of {size} bytes");
        assert_eq!(encoding.decode(&out).expect("decodes"), map);
    }

    #[test]
    fn json_sizes_are_exact() {
        for size in [2, 12, 13, 64, 100, 1024, 65_536] {
            check(Encoding::Json, size);
        }
    }

    #[test]
    fn ziproto_sizes_are_exact_across_string_head_boundaries() {
        for size in (7..300).chain([1, 65_530, 65_536, 65_545, 65_546, 70_000]) {
            check(Encoding::ZiProto, size);
        }
    }

    #[test]
    fn too_small_is_a_clear_error() {
        let err = sized_map(Encoding::Json, 5).expect_err("too small");
        assert!(err.to_string().contains("too small"), "{err}");
    }

    #[test]
    fn the_frame_carries_the_payload() {
        let codec = FrameCodec::default();
        let request = Request::build(&codec, Encoding::Json, 64).expect("builds");
        assert_eq!(request.frame.len(), 64 + 6);
        assert_eq!(&request.frame[..6], b"\x00\x00\x00\x42\x16\x00");
        let mut payload = Vec::new();
        Encoding::Json
            .encode_map(&request.map, &mut payload)
            .expect("encodes");
        assert_eq!(&request.frame[6..], &payload[..]);
        let three = request.repeated(3);
        assert_eq!(three.len(), 3 * request.frame.len());
        assert_eq!(&three[70..140], &request.frame[..]);
    }
}
