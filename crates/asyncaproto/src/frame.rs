//! The AsyncAProto frame: a length-prefixed head and a payload, decoded and
//! encoded without copying the payload.
//!
//! ```text
//!  header_size bytes      1 byte       1 byte          Content-Length - 2 bytes
//! +--------------------+------------+----------------+---------------------------+
//! |   Content-Length   |  Version   |    Encoding    |          Payload          |
//! |  (byteorder, u64)  |  0x16 (22) |  0 JSON 1 Zi   |                           |
//! +--------------------+------------+----------------+---------------------------+
//!                      \___________________ Content-Length ______________________/
//! ```
//!
//! The decoder is two-step: until the whole head (`header_size + 2` bytes) is
//! buffered it answers "need more" (`Ok(None)`); once the head is there it checks
//! the version, the encoding and the declared length against the configured
//! maximum, *before* any of the body is buffered, and refuses a bad head at once.
//!
//! ```
//! use asyncaproto::{ByteOrder, Encoding, FrameCodec, FrameConfig};
//! use bytes::BytesMut;
//! use tokio_util::codec::Decoder;
//!
//! // A 2-byte little-endian Content-Length, as some deployments use.
//! let config = FrameConfig::new(2, ByteOrder::Little, 1024)?;
//! let mut codec = FrameCodec::new(config);
//! let mut buf = BytesMut::from(&b"\x04\x00\x16\x00{}"[..]);
//! let frame = codec.decode(&mut buf)?.expect("complete");
//! assert_eq!(frame.encoding, Encoding::Json);
//! assert_eq!(&frame.payload[..], b"{}");
//! assert!(buf.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io;
use std::str::FromStr;

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::encoding::{Encoding, PayloadError};
use crate::error_code::ErrorCode;
use crate::value::{Map, Value};

/// The only Protocol-Version AsyncAProto defines: 22 (`0x16`).
pub const PROTOCOL_VERSION: u8 = 22;

/// The default largest Content-Length accepted: 8 MiB.
pub const DEFAULT_MAX_PACKET_SIZE: u64 = 8 * 1024 * 1024;

/// The standard size of the Content-Length field, in bytes.
pub const DEFAULT_HEADER_SIZE: u8 = 4;

/// How much body the decoder reserves room for at a time: a peer that declares
/// a large packet and then trickles gets buffers grown as its bytes arrive,
/// not the whole declared size up front.
const RESERVE_CHUNK: usize = 64 * 1024;

/// The byte order of the Content-Length field (it applies to nothing else).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Most significant byte first: the protocol standard.
    #[default]
    Big,
    /// Least significant byte first.
    Little,
}

impl ByteOrder {
    /// The name used in AsyncAPY configuration: `"big"` or `"little"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ByteOrder::Big => "big",
            ByteOrder::Little => "little",
        }
    }
}

impl fmt::Display for ByteOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`ByteOrder`] from anything but `big` or `little`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte order must be 'big' or 'little', not {0:?}")]
pub struct ParseByteOrderError(pub String);

impl FromStr for ByteOrder {
    type Err = ParseByteOrderError;

    /// ```
    /// use asyncaproto::ByteOrder;
    /// assert_eq!("little".parse::<ByteOrder>().unwrap(), ByteOrder::Little);
    /// assert!("middle".parse::<ByteOrder>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "big" => Ok(ByteOrder::Big),
            "little" => Ok(ByteOrder::Little),
            other => Err(ParseByteOrderError(other.to_owned())),
        }
    }
}

/// How frames are laid out on one connection: both peers must agree on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameConfig {
    header_size: u8,
    byte_order: ByteOrder,
    max_packet_size: u64,
}

impl Default for FrameConfig {
    /// The protocol standard: a 4-byte big-endian Content-Length, 8 MiB at most.
    fn default() -> Self {
        FrameConfig {
            header_size: DEFAULT_HEADER_SIZE,
            byte_order: ByteOrder::Big,
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
        }
    }
}

impl FrameConfig {
    /// A frame layout with a `header_size`-byte Content-Length (1 to 8) in
    /// `byte_order`, accepting a Content-Length of at most `max_packet_size`.
    ///
    /// `max_packet_size` must be at least 2 (the two one-byte headers).
    ///
    /// ```
    /// use asyncaproto::{ByteOrder, FrameConfig};
    /// assert!(FrameConfig::new(4, ByteOrder::Big, 1 << 20).is_ok());
    /// assert!(FrameConfig::new(9, ByteOrder::Big, 1 << 20).is_err());
    /// assert!(FrameConfig::new(0, ByteOrder::Big, 1 << 20).is_err());
    /// ```
    pub fn new(
        header_size: u8,
        byte_order: ByteOrder,
        max_packet_size: u64,
    ) -> Result<Self, FrameConfigError> {
        if !(1..=8).contains(&header_size) {
            return Err(FrameConfigError::HeaderSize(header_size));
        }
        if max_packet_size < 2 {
            return Err(FrameConfigError::MaxPacketSize(max_packet_size));
        }
        Ok(FrameConfig {
            header_size,
            byte_order,
            max_packet_size,
        })
    }

    /// The size of the Content-Length field in bytes (1 to 8).
    pub fn header_size(&self) -> u8 {
        self.header_size
    }

    /// The byte order of the Content-Length field.
    pub fn byte_order(&self) -> ByteOrder {
        self.byte_order
    }

    /// The largest Content-Length the decoder accepts.
    pub fn max_packet_size(&self) -> u64 {
        self.max_packet_size
    }

    /// The size of the whole head: the Content-Length field and the two
    /// one-byte headers.
    pub fn head_len(&self) -> usize {
        usize::from(self.header_size) + 2
    }

    /// The largest Content-Length the field can express.
    pub fn max_representable_length(&self) -> u64 {
        if self.header_size >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * u32::from(self.header_size))) - 1
        }
    }

    fn read_length(&self, field: &[u8]) -> u64 {
        // The default layout (4 bytes, big-endian) is most of the traffic.
        if let (ByteOrder::Big, Ok(bytes)) = (self.byte_order, <[u8; 4]>::try_from(field)) {
            return u64::from(u32::from_be_bytes(bytes));
        }
        let mut value = 0u64;
        match self.byte_order {
            ByteOrder::Big => {
                for &b in field {
                    value = (value << 8) | u64::from(b);
                }
            }
            ByteOrder::Little => {
                for &b in field.iter().rev() {
                    value = (value << 8) | u64::from(b);
                }
            }
        }
        value
    }

    fn length_bytes(&self, length: u64) -> ([u8; 8], usize) {
        let n = usize::from(self.header_size);
        match self.byte_order {
            ByteOrder::Big => {
                let all = length.to_be_bytes();
                let mut out = [0u8; 8];
                out[..n].copy_from_slice(&all[8 - n..]);
                (out, n)
            }
            ByteOrder::Little => (length.to_le_bytes(), n),
        }
    }

    /// Writes a whole head for a payload of `payload_len` bytes.
    ///
    /// Fails when `payload_len + 2` does not fit the Content-Length field.
    pub fn write_head(
        &self,
        encoding: Encoding,
        payload_len: usize,
        dst: &mut impl BufMut,
    ) -> Result<(), FrameError> {
        let length = self.content_length(payload_len)?;
        let (bytes, n) = self.length_bytes(length);
        dst.put_slice(&bytes[..n]);
        dst.put_u8(PROTOCOL_VERSION);
        dst.put_u8(encoding.as_byte());
        Ok(())
    }

    fn content_length(&self, payload_len: usize) -> Result<u64, FrameError> {
        let length = (payload_len as u64).saturating_add(2);
        if length > self.max_representable_length() {
            return Err(FrameError::PayloadTooLong {
                len: payload_len,
                header_size: self.header_size,
            });
        }
        Ok(length)
    }
}

/// A bad [`FrameConfig`] value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameConfigError {
    /// The Content-Length field must be 1 to 8 bytes.
    #[error("header_size must be between 1 and 8 bytes, not {0}")]
    HeaderSize(u8),
    /// The maximum packet size must leave room for the two one-byte headers.
    #[error("the maximum packet size must be at least 2 bytes, not {0}")]
    MaxPacketSize(u64),
}

/// One decoded frame: its Content-Encoding and its payload bytes (not yet decoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The payload's declared encoding.
    pub encoding: Encoding,
    /// The payload: Content-Length minus 2 bytes, shared with the read buffer.
    pub payload: Bytes,
}

impl Frame {
    /// A frame of `payload` declared as `encoding`.
    pub fn new(encoding: Encoding, payload: impl Into<Bytes>) -> Self {
        Frame {
            encoding,
            payload: payload.into(),
        }
    }
}

/// Why a frame could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The Protocol-Version byte is not 22.
    #[error("unsupported Protocol-Version {0} (expected 22)")]
    BadVersion(u8),
    /// The Content-Encoding byte is neither 0 (JSON) nor 1 (ZiProto).
    #[error("unknown Content-Encoding {0} (expected 0 for JSON or 1 for ZiProto)")]
    BadEncoding(u8),
    /// The Content-Length is below 2, so it cannot even hold the two one-byte headers.
    #[error("Content-Length {0} is below the minimum of 2")]
    LengthTooSmall(u64),
    /// The Content-Length is above the configured maximum; nothing of the body was read.
    #[error("declared packet of {declared} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The Content-Length the peer declared.
        declared: u64,
        /// The configured maximum.
        max: u64,
        /// The packet's declared encoding (valid, since it is checked first).
        encoding: Encoding,
    },
    /// A payload to send is too long for the configured Content-Length field.
    #[error("a payload of {len} bytes does not fit a {header_size}-byte Content-Length")]
    PayloadTooLong {
        /// The payload's length.
        len: usize,
        /// The configured size of the Content-Length field.
        header_size: u8,
    },
    /// The stream ended inside a frame.
    #[error("the stream ended in the middle of a frame ({buffered} bytes buffered)")]
    Truncated {
        /// How many bytes of the unfinished frame had arrived.
        buffered: usize,
    },
    /// A payload to send could not be encoded.
    #[error("payload could not be encoded: {0}")]
    Encode(#[from] PayloadError),
    /// The underlying transport failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl FrameError {
    /// The failure code a server replies with for this error, if it replies at all.
    ///
    /// ```
    /// use asyncaproto::{ErrorCode, FrameError};
    /// assert_eq!(FrameError::BadVersion(21).error_code(), Some(ErrorCode::HeaderInvalid));
    /// ```
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            FrameError::BadVersion(_)
            | FrameError::BadEncoding(_)
            | FrameError::LengthTooSmall(_) => Some(ErrorCode::HeaderInvalid),
            FrameError::TooLarge { .. } => Some(ErrorCode::PacketTooLarge),
            FrameError::PayloadTooLong { .. }
            | FrameError::Truncated { .. }
            | FrameError::Encode(_)
            | FrameError::Io(_) => None,
        }
    }

    /// The encoding of the failure reply: the packet's own when its head named a
    /// valid one, JSON otherwise (PROTOCOL.md §7).
    pub fn reply_encoding(&self) -> Encoding {
        match self {
            FrameError::TooLarge { encoding, .. } => *encoding,
            _ => Encoding::Json,
        }
    }
}

/// The AsyncAProto frame codec, for `tokio_util::codec::Framed` or by hand.
#[derive(Clone, Copy, Debug, Default)]
pub struct FrameCodec {
    config: FrameConfig,
}

impl FrameCodec {
    /// A codec for the given frame layout.
    pub fn new(config: FrameConfig) -> Self {
        FrameCodec { config }
    }

    /// The frame layout this codec reads and writes.
    pub fn config(&self) -> &FrameConfig {
        &self.config
    }

    /// Checks the head at the start of `src`, if it is all there: `Ok(None)`
    /// means "need more bytes", `Ok(Some((encoding, total)))` gives the frame's
    /// encoding and its whole length including the head.
    ///
    /// A Content-Length below 2 is refused as soon as the field is in: such a
    /// frame ends before its own one-byte headers, so the bytes after the field
    /// are not part of it, and waiting for them would leave a peer that sent
    /// exactly that frame to its timeout.
    ///
    /// ```
    /// use asyncaproto::{FrameCodec, FrameError};
    /// let codec = FrameCodec::default();
    /// assert!(matches!(codec.check_head(b"\x00\x00\x00\x00"), Err(FrameError::LengthTooSmall(0))));
    /// assert!(matches!(codec.check_head(b"\x00\x00\x00\x10\x16"), Ok(None)));
    /// ```
    pub fn check_head(&self, src: &[u8]) -> Result<Option<(Encoding, usize)>, FrameError> {
        let field = usize::from(self.config.header_size);
        let Some(length_field) = src.get(..field) else {
            return Ok(None);
        };
        let length = self.config.read_length(length_field);
        let Some(head) = src.get(..field + 2) else {
            if length < 2 {
                return Err(FrameError::LengthTooSmall(length));
            }
            return Ok(None);
        };
        let version = head[field];
        let encoding_byte = head[field + 1];
        if version != PROTOCOL_VERSION {
            return Err(FrameError::BadVersion(version));
        }
        // `let .. else`, not `ok_or(..)?`: an error built eagerly is dropped
        // on every good frame (FrameError has drop glue), ~38 instructions each.
        let Some(encoding) = Encoding::from_byte(encoding_byte) else {
            return Err(FrameError::BadEncoding(encoding_byte));
        };
        if length < 2 {
            return Err(FrameError::LengthTooSmall(length));
        }
        if length > self.config.max_packet_size {
            return Err(FrameError::TooLarge {
                declared: length,
                max: self.config.max_packet_size,
                encoding,
            });
        }
        // length <= max_packet_size, which the caller chose to fit in memory;
        // still, never let a u64 -> usize conversion wrap on a 32-bit target.
        let Some(total) = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(field))
        else {
            return Err(FrameError::TooLarge {
                declared: length,
                max: self.config.max_packet_size,
                encoding,
            });
        };
        Ok(Some((encoding, total)))
    }

    /// Frames `map` encoded as `encoding` onto the end of `dst`, encoding the
    /// payload in place (no intermediate buffer).
    pub fn write_frame(
        &self,
        encoding: Encoding,
        map: &Map,
        dst: &mut BytesMut,
    ) -> Result<(), FrameError> {
        let start = dst.len();
        let head_len = self.config.head_len();
        // Room for the whole frame at once when its size is mostly that of
        // strings and binaries at the top level (a large one would otherwise
        // grow the buffer, and be copied again, on its last bytes).
        dst.reserve(head_len + size_hint(map));
        dst.put_bytes(0, head_len);
        if let Err(e) = encoding.encode_map(map, dst) {
            dst.truncate(start);
            return Err(e.into());
        }
        let payload_len = dst.len() - start - head_len;
        let mut head = [0u8; 10];
        let mut cursor = &mut head[..];
        if let Err(e) = self.config.write_head(encoding, payload_len, &mut cursor) {
            dst.truncate(start);
            return Err(e);
        }
        dst[start..start + head_len].copy_from_slice(&head[..head_len]);
        Ok(())
    }

    /// Frames an already-encoded `payload` onto the end of `dst`.
    pub fn write_raw(
        &self,
        encoding: Encoding,
        payload: &[u8],
        dst: &mut BytesMut,
    ) -> Result<(), FrameError> {
        dst.reserve(self.config.head_len() + payload.len());
        self.config.write_head(encoding, payload.len(), dst)?;
        dst.put_slice(payload);
        Ok(())
    }
}

/// About how many bytes `map` takes encoded, at least, from its top-level
/// entries alone: strings and binaries count by their length, the rest a few
/// bytes each (nested arrays and maps are not walked).
fn size_hint(map: &Map) -> usize {
    map.iter()
        .map(|(key, value)| {
            // Quotes and separators, or ZiProto's heads: up to 10 bytes.
            let data = match value {
                Value::Str(s) => s.len(),
                // Base64 in JSON: 4 bytes for 3.
                Value::Bin(b) => b.len() / 3 * 4 + 4,
                _ => 8,
            };
            key.len() + data + 10
        })
        .sum::<usize>()
        + 8
}

impl FrameCodec {
    /// Takes the first complete frame off `src`: `Ok(None)` means "need more
    /// bytes" (room for the rest of the frame is reserved, a chunk at a time).
    /// The same as [`Decoder::decode`], without needing `&mut self`.
    pub fn decode_frame(&self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some((encoding, mut frame)) = self.take_whole_frame(src)? else {
            return Ok(None);
        };
        let _head = frame.split_to(self.config.head_len());
        Ok(Some(Frame {
            encoding,
            payload: frame.freeze(),
        }))
    }

    /// The first frame of `src`, if all of it is there, left in place: its
    /// encoding and its whole length, head included. The payload is then
    /// `src[head_len..length]`, and `src.advance(length)` takes the frame off.
    /// For a reader that decodes the payload where it lies, without splitting
    /// it off the buffer; otherwise as [`FrameCodec::decode_frame`] (`Ok(None)`
    /// means "need more bytes", with room for the rest reserved a chunk at a
    /// time; a bad head is refused before its body arrives).
    ///
    /// ```
    /// use asyncaproto::{Encoding, FrameCodec};
    /// use bytes::Buf;
    /// let codec = FrameCodec::default();
    /// let mut buf = bytes::BytesMut::from(&b"\x00\x00\x00\x04\x16\x00{}\x00"[..]);
    /// let (encoding, length) = codec.complete_frame(&mut buf)?.unwrap();
    /// let head = codec.config().head_len();
    /// assert_eq!((encoding, &buf[head..length]), (Encoding::Json, &b"{}"[..]));
    /// buf.advance(length);
    /// assert_eq!(codec.complete_frame(&mut buf)?, None); // one byte of the next head
    /// # Ok::<(), asyncaproto::FrameError>(())
    /// ```
    pub fn complete_frame(
        &self,
        src: &mut BytesMut,
    ) -> Result<Option<(Encoding, usize)>, FrameError> {
        let Some((encoding, total)) = self.check_head(src)? else {
            return Ok(None);
        };
        if src.len() < total {
            let missing = total - src.len();
            src.reserve(missing.min(RESERVE_CHUNK));
            return Ok(None);
        }
        Ok(Some((encoding, total)))
    }

    /// Takes the first complete frame off `src`, head included (as
    /// [`FrameCodec::decode_frame`], for a reader that wants the frame's own
    /// bytes): its encoding and the whole frame.
    ///
    /// ```
    /// use asyncaproto::{Encoding, FrameCodec};
    /// let mut buf = bytes::BytesMut::from(&b"\x00\x00\x00\x04\x16\x00{}\x00"[..]);
    /// let (encoding, raw) = FrameCodec::default().decode_raw_frame(&mut buf)?.unwrap();
    /// assert_eq!((encoding, &raw[..]), (Encoding::Json, &b"\x00\x00\x00\x04\x16\x00{}"[..]));
    /// assert_eq!(&buf[..], b"\x00"); // the start of the next frame stays
    /// # Ok::<(), asyncaproto::FrameError>(())
    /// ```
    pub fn decode_raw_frame(
        &self,
        src: &mut BytesMut,
    ) -> Result<Option<(Encoding, bytes::Bytes)>, FrameError> {
        Ok(self
            .take_whole_frame(src)?
            .map(|(encoding, frame)| (encoding, frame.freeze())))
    }

    /// The first complete frame of `src`, split off; room for an incomplete
    /// one is reserved, a chunk at a time.
    fn take_whole_frame(
        &self,
        src: &mut BytesMut,
    ) -> Result<Option<(Encoding, BytesMut)>, FrameError> {
        Ok(self
            .complete_frame(src)?
            .map(|(encoding, total)| (encoding, src.split_to(total))))
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        self.decode_frame(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated {
                buffered: src.len(),
            }),
        }
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.write_raw(frame.encoding, &frame.payload, dst)
    }
}

impl Encoder<&Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.write_raw(frame.encoding, &frame.payload, dst)
    }
}
