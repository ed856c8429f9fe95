//! The frame codec on an arbitrary byte stream, fed in arbitrary chunks, under
//! an arbitrary layout (header size 1 to 8, either byte order, a maximum).
//!
//! Checks: the chunking changes nothing (the same frames and the same error as
//! when the stream arrives at once); every frame re-encodes to exactly the
//! bytes it was decoded from; "need more" only while the frame is incomplete,
//! with the buffer grown a chunk at a time, never to a declared length; errors
//! carry a reply code; end of stream inside a frame is `Truncated`.

#![no_main]

use arbitrary::Unstructured;
use asyncaproto::{Encoding, Frame, FrameCodec, FrameError};
use asyncapy_fuzz::{chunking, chunks, layout, timed};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};

/// What decoding a whole stream gave: the frames, then how it ended.
#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<Frame>,
    /// The decode error (Debug form), or the end-of-stream result.
    end: String,
}

fuzz_target!(|data: &[u8]| timed(data, || check(data)));

fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(config), Ok(sizes)) = (layout(&mut u), chunking(&mut u)) else {
        return;
    };
    let stream = u.take_rest();
    let codec = FrameCodec::new(config);
    let at_once = decode_stream(codec, stream, &[stream]);
    let chunked = decode_stream(codec, stream, &chunks(stream, &sizes));
    assert_eq!(at_once, chunked, "chunking changed the outcome");
}

fn decode_stream(mut codec: FrameCodec, stream: &[u8], chunks: &[&[u8]]) -> Outcome {
    let head_len = codec.config().head_len();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    // Bytes fed so far, and bytes taken off as whole frames.
    let (mut fed, mut consumed) = (0usize, 0usize);
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let len = head_len + frame.payload.len();
                    let original = &stream[consumed..consumed + len];
                    check_frame(&mut codec, &frame, original);
                    consumed += len;
                    assert_eq!(buf.len(), fed - consumed);
                    frames.push(frame);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), fed - consumed, "need-more consumed bytes");
                    if buf.len() >= head_len {
                        // The head is whole and good: the body is what is missing.
                        let (_, total) = codec
                            .check_head(&buf)
                            .expect("a head that said need-more is valid")
                            .expect("a whole head");
                        assert!(total > buf.len());
                    }
                    // Room is reserved a chunk at a time, whatever was declared.
                    assert!(
                        buf.capacity() <= 4 * (buf.len() + 64 * 1024),
                        "buffer of {} bytes grew to {}",
                        buf.len(),
                        buf.capacity()
                    );
                    break;
                }
                Err(e) => {
                    assert!(
                        buf.len() >= head_len,
                        "error before the head was whole: {e}"
                    );
                    assert!(
                        e.error_code().is_some(),
                        "a decode error without a reply code: {e}"
                    );
                    if let FrameError::TooLarge { declared, max, .. } = e {
                        // Within the maximum only when the total would not fit a usize.
                        assert!(declared > max || declared > (usize::MAX - 8) as u64);
                    }
                    return Outcome {
                        frames,
                        end: format!("{e:?}"),
                    };
                }
            }
        }
    }
    let end = match codec.decode_eof(&mut buf) {
        Ok(None) => {
            assert!(buf.is_empty());
            "end".to_owned()
        }
        Ok(Some(frame)) => panic!("a frame at end of stream that decode did not give: {frame:?}"),
        Err(FrameError::Truncated { buffered }) => {
            assert_eq!(buffered, buf.len());
            assert!(buffered > 0);
            format!("truncated after {buffered}")
        }
        Err(e) => panic!("end of stream gave {e:?}"),
    };
    Outcome { frames, end }
}

/// A decoded frame: within the limit, and re-encoded (by both encoders) to
/// exactly the bytes it came from.
fn check_frame(codec: &mut FrameCodec, frame: &Frame, original: &[u8]) {
    let config = *codec.config();
    let length = frame.payload.len() as u64 + 2;
    assert!(length <= config.max_packet_size());
    assert!(length <= config.max_representable_length());
    assert_eq!(
        original[config.head_len() - 1],
        frame.encoding.as_byte(),
        "the Content-Encoding byte"
    );
    assert!(matches!(frame.encoding, Encoding::Json | Encoding::ZiProto));

    let mut raw = BytesMut::new();
    codec
        .write_raw(frame.encoding, &frame.payload, &mut raw)
        .expect("a decoded frame re-encodes");
    assert_eq!(&raw[..], original, "re-encoding changed the bytes");

    let mut via_encoder = BytesMut::new();
    codec
        .encode(frame, &mut via_encoder)
        .expect("a decoded frame re-encodes");
    assert_eq!(via_encoder, raw);

    // And the re-encoded frame decodes to itself.
    let again = codec
        .decode_frame(&mut raw)
        .expect("our own frame decodes")
        .expect("our own frame is whole");
    assert_eq!(&again, frame);
    assert!(raw.is_empty());
}
