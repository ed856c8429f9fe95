//! # asyncaproto: the AsyncAProto wire format
//!
//! A sans-IO implementation of AsyncAProto, the length-prefixed binary protocol
//! spoken by AsyncAPY servers and clients. Nothing here touches a socket: the
//! [`FrameCodec`] turns bytes into [`Frame`]s and back (it plugs into
//! `tokio_util::codec`), and [`Encoding`] turns a frame's payload into a
//! [`Map`] of [`Value`]s and back, in JSON or ZiProto.
//!
//! ```text
//! +----------------------+------------------+-------------------+-----------------+
//! | Content-Length       | Protocol-Version | Content-Encoding  | Payload         |
//! | header_size bytes    | 1 byte = 22      | 1 byte: 0 or 1    | Length-2 bytes  |
//! | unsigned, byteorder  | (0x16)           | 0 JSON, 1 ZiProto |                 |
//! +----------------------+------------------+-------------------+-----------------+
//! ```
//!
//! ```
//! use asyncaproto::{Encoding, FrameCodec, Map, Value};
//! use bytes::BytesMut;
//! use tokio_util::codec::Decoder;
//!
//! let mut codec = FrameCodec::default();
//! let mut buf = BytesMut::from(&b"\x00\x00\x00\x10\x16\x00{\"foo\": \"bar\"}"[..]);
//! let frame = codec.decode(&mut buf)?.expect("a whole frame");
//! assert_eq!(frame.encoding, Encoding::Json);
//! let map: Map = frame.encoding.decode(&frame.payload)?;
//! assert_eq!(map.get("foo"), Some(&Value::from("bar")));
//!
//! // The same map in ZiProto, framed again.
//! let mut out = BytesMut::new();
//! codec.write_frame(Encoding::ZiProto, &map, &mut out)?;
//! assert_eq!(&out[..], b"\x00\x00\x00\x0b\x16\x01\x81\xa3foo\xa3bar");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod encoding;
pub mod error_code;
pub mod frame;
pub mod json;
mod payload_error;
pub mod value;
pub mod ziproto;

pub use encoding::{Encoding, PayloadError};
pub use error_code::ErrorCode;
pub use frame::{ByteOrder, Frame, FrameCodec, FrameConfig, FrameError, PROTOCOL_VERSION};
pub use value::{from_value, to_value, Map, Spares, Value};

/// The deepest nesting of arrays and maps a payload may have; deeper is malformed.
pub const MAX_DEPTH: usize = 128;
