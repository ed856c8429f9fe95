//! The frame codec, one edge case per test, plus chunking properties.

use asyncaproto::{ByteOrder, Encoding, ErrorCode, Frame, FrameCodec, FrameConfig, FrameError};
use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

const JSON_FRAME: &[u8] = b"\x00\x00\x00\x10\x16\x00{\"foo\": \"bar\"}";
const ZIPROTO_FRAME: &[u8] = b"\x00\x00\x00\x0b\x16\x01\x81\xa3foo\xa3bar";

fn codec(header_size: u8, order: ByteOrder, max: u64) -> FrameCodec {
    FrameCodec::new(FrameConfig::new(header_size, order, max).expect("valid config"))
}

#[test]
fn decodes_the_protocol_examples() {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::from(JSON_FRAME);
    let frame = codec.decode(&mut buf).unwrap().expect("complete");
    assert_eq!(
        frame,
        Frame::new(Encoding::Json, &b"{\"foo\": \"bar\"}"[..])
    );
    assert!(buf.is_empty());

    let mut buf = BytesMut::from(ZIPROTO_FRAME);
    let frame = codec.decode(&mut buf).unwrap().expect("complete");
    assert_eq!(frame.encoding, Encoding::ZiProto);
    assert_eq!(&frame.payload[..], b"\x81\xa3foo\xa3bar");
}

#[test]
fn a_head_split_at_every_offset_needs_more_then_decodes() {
    for split in 0..JSON_FRAME.len() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&JSON_FRAME[..split]);
        assert!(
            codec.decode(&mut buf).unwrap().is_none(),
            "{split} bytes are not a frame"
        );
        assert_eq!(
            buf.len(),
            split,
            "nothing is consumed before the frame is whole"
        );
        buf.extend_from_slice(&JSON_FRAME[split..]);
        let frame = codec.decode(&mut buf).unwrap().expect("complete");
        assert_eq!(&frame.payload[..], b"{\"foo\": \"bar\"}");
        assert!(buf.is_empty());
    }
}

#[test]
fn one_byte_at_a_time() {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for &byte in JSON_FRAME.iter().chain(ZIPROTO_FRAME) {
        buf.extend_from_slice(&[byte]);
        if let Some(frame) = codec.decode(&mut buf).unwrap() {
            frames.push(frame);
        }
    }
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1].encoding, Encoding::ZiProto);
}

#[test]
fn several_frames_in_one_buffer_come_out_in_order() {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    for i in 0..200u32 {
        let payload = format!("{{\"i\": {i}}}");
        codec
            .encode(Frame::new(Encoding::Json, payload.into_bytes()), &mut buf)
            .unwrap();
    }
    for i in 0..200u32 {
        let frame = codec.decode(&mut buf).unwrap().expect("complete");
        assert_eq!(frame.payload, format!("{{\"i\": {i}}}").as_bytes());
    }
    assert!(codec.decode(&mut buf).unwrap().is_none());
}

#[test]
fn bad_version_is_refused_once_the_head_is_complete() {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::from(&b"\x00\x00\x00\x10\x15"[..]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    buf.extend_from_slice(b"\x00");
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(err, FrameError::BadVersion(0x15)), "{err}");
    assert_eq!(err.error_code(), Some(ErrorCode::HeaderInvalid));
    assert_eq!(err.reply_encoding(), Encoding::Json);
}

#[test]
fn bad_encoding_is_refused() {
    let mut buf = BytesMut::from(&b"\x00\x00\x00\x04\x16\x02{}"[..]);
    let err = FrameCodec::default().decode(&mut buf).unwrap_err();
    assert!(matches!(err, FrameError::BadEncoding(2)), "{err}");
    assert_eq!(err.error_code(), Some(ErrorCode::HeaderInvalid));
}

#[test]
fn content_length_below_two_is_refused_and_two_is_an_empty_payload() {
    for length in [0u8, 1] {
        let mut buf = BytesMut::from(&[0, 0, 0, length, 0x16, 0][..]);
        let err = FrameCodec::default().decode(&mut buf).unwrap_err();
        assert!(matches!(err, FrameError::LengthTooSmall(l) if l == u64::from(length)));
        assert_eq!(err.error_code(), Some(ErrorCode::HeaderInvalid));
    }
    // Exactly 2: a frame with no payload, which the payload decoder refuses.
    let mut buf = BytesMut::from(&b"\x00\x00\x00\x02\x16\x01"[..]);
    let frame = FrameCodec::default()
        .decode(&mut buf)
        .unwrap()
        .expect("frame");
    assert!(frame.payload.is_empty());
}

#[test]
fn too_large_is_refused_from_the_head_alone_without_reserving_the_body() {
    let mut codec = codec(4, ByteOrder::Big, 1024);
    let mut buf = BytesMut::from(&b"\xff\xff\xff\xff\x16\x01"[..]);
    let err = codec.decode(&mut buf).unwrap_err();
    match err {
        FrameError::TooLarge {
            declared,
            max,
            encoding,
        } => {
            assert_eq!(declared, 0xffff_ffff);
            assert_eq!(max, 1024);
            assert_eq!(encoding, Encoding::ZiProto);
        }
        other => panic!("expected TooLarge, got {other}"),
    }
    assert!(buf.capacity() < 4096, "no room was reserved for the body");
    // The boundary itself is accepted.
    let mut buf = BytesMut::from(&[0, 0, 4, 0, 0x16, 0][..]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
}

#[test]
fn a_declared_body_is_reserved_a_chunk_at_a_time() {
    let mut codec = codec(4, ByteOrder::Big, 1 << 30);
    let mut buf = BytesMut::from(&b"\x20\x00\x00\x00\x16\x00"[..]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert!(buf.capacity() <= 128 * 1024, "{} reserved", buf.capacity());
}

#[test]
fn body_split_anywhere() {
    let payload: Vec<u8> = std::iter::repeat_n(b'x', 1000).collect();
    let mut whole = BytesMut::new();
    let mut codec = FrameCodec::default();
    codec
        .write_raw(Encoding::Json, &payload, &mut whole)
        .unwrap();
    for split in [7, 100, 500, 1005] {
        let mut buf = BytesMut::from(&whole[..split]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&whole[split..]);
        assert_eq!(
            codec.decode(&mut buf).unwrap().expect("frame").payload,
            &payload[..]
        );
    }
}

#[test]
fn every_header_size_and_byte_order_round_trips() {
    for header_size in 1..=8u8 {
        for order in [ByteOrder::Big, ByteOrder::Little] {
            let mut codec = codec(header_size, order, 1 << 20);
            let mut buf = BytesMut::new();
            codec
                .encode(Frame::new(Encoding::ZiProto, &b"\x80"[..]), &mut buf)
                .unwrap();
            assert_eq!(buf.len(), usize::from(header_size) + 3);
            let length_field = &buf[..usize::from(header_size)];
            let expected_first = match order {
                ByteOrder::Big if header_size > 1 => 0,
                _ => 3,
            };
            assert_eq!(length_field[0], expected_first, "{header_size} {order}");
            let frame = codec.decode(&mut buf).unwrap().expect("frame");
            assert_eq!(&frame.payload[..], b"\x80");
        }
    }
}

#[test]
fn two_byte_little_endian_matches_the_hand_written_bytes() {
    let mut buf = BytesMut::new();
    codec(2, ByteOrder::Little, 1 << 20)
        .encode(
            Frame::new(Encoding::Json, &b"{\"foo\": \"bar\"}"[..]),
            &mut buf,
        )
        .unwrap();
    assert_eq!(&buf[..], b"\x10\x00\x16\x00{\"foo\": \"bar\"}");
}

#[test]
fn a_payload_too_long_for_the_field_is_refused_when_encoding() {
    let mut buf = BytesMut::new();
    let err = codec(1, ByteOrder::Big, 255)
        .encode(Frame::new(Encoding::Json, vec![b' '; 254]), &mut buf)
        .unwrap_err();
    assert!(matches!(
        err,
        FrameError::PayloadTooLong {
            len: 254,
            header_size: 1
        }
    ));
    assert!(buf.is_empty(), "nothing is written on failure");
    codec(1, ByteOrder::Big, 255)
        .encode(Frame::new(Encoding::Json, vec![b' '; 253]), &mut buf)
        .unwrap();
    assert_eq!(buf[0], 255);
}

#[test]
fn eof_inside_a_frame_is_truncated_and_between_frames_is_clean() {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::from(&JSON_FRAME[..9]);
    let err = codec.decode_eof(&mut buf).unwrap_err();
    assert!(matches!(err, FrameError::Truncated { buffered: 9 }));
    let mut empty = BytesMut::new();
    assert!(codec.decode_eof(&mut empty).unwrap().is_none());
}

#[test]
fn bad_configs_are_refused() {
    assert!(FrameConfig::new(0, ByteOrder::Big, 100).is_err());
    assert!(FrameConfig::new(9, ByteOrder::Big, 100).is_err());
    assert!(FrameConfig::new(4, ByteOrder::Big, 1).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any sequence of frames, cut into any chunks, comes out whole and in order.
    #[test]
    fn frames_survive_arbitrary_chunking(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..20),
        cuts in prop::collection::vec(1usize..64, 1..200),
        header_size in 2u8..=8,
        little in any::<bool>(),
    ) {
        let order = if little { ByteOrder::Little } else { ByteOrder::Big };
        let mut codec = codec(header_size, order, 1 << 20);
        let mut stream = BytesMut::new();
        for (i, p) in payloads.iter().enumerate() {
            let encoding = if i % 2 == 0 { Encoding::Json } else { Encoding::ZiProto };
            codec.encode(Frame::new(encoding, p.clone()), &mut stream).unwrap();
        }
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut rest = &stream[..];
        let mut cut = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*cut.next().unwrap()).min(rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                out.push(frame);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(out.len(), payloads.len());
        for (i, (frame, p)) in out.iter().zip(&payloads).enumerate() {
            prop_assert_eq!(&frame.payload[..], &p[..]);
            prop_assert_eq!(frame.encoding.as_byte() as usize, i % 2);
        }
    }

    /// Arbitrary bytes never panic the decoder, and it never yields more than it was given.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut codec = codec(4, ByteOrder::Big, 1 << 16);
        let mut buf = BytesMut::from(&bytes[..]);
        let mut total = 0;
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            total += frame.payload.len() + 6;
        }
        prop_assert!(total <= bytes.len());
    }
}

#[test]
fn the_layout_reads_back_and_the_defaults_are_the_documented_ones() {
    let config = FrameConfig::new(2, ByteOrder::Little, 300).unwrap();
    assert_eq!(config.header_size(), 2);
    assert_eq!(config.byte_order(), ByteOrder::Little);
    assert_eq!(config.max_packet_size(), 300);
    let default = FrameConfig::default();
    assert_eq!(default.header_size(), 4);
    assert_eq!(default.byte_order(), ByteOrder::Big);
    assert_eq!(default.max_packet_size(), 8 << 20, "8 MiB");
    assert_eq!(asyncaproto::frame::DEFAULT_MAX_PACKET_SIZE, 8 << 20);
    assert_eq!(ByteOrder::Big.to_string(), "big");
    assert_eq!(ByteOrder::Little.to_string(), "little");
    assert_eq!(ByteOrder::Little.as_str(), "little");
}

#[test]
fn a_large_declared_body_gets_room_64_kib_at_a_time() {
    let codec = FrameCodec::default();
    // A head declaring a 1 MiB packet, and no body yet.
    let mut buf = BytesMut::from(&b"\x00\x10\x00\x02\x16\x00"[..]);
    assert!(codec.decode_frame(&mut buf).unwrap().is_none());
    let room = buf.capacity();
    assert!(
        (64 << 10..128 << 10).contains(&room),
        "room for {room} bytes: one 64 KiB chunk, not the declared 1 MiB"
    );
}

#[test]
fn a_too_large_packet_is_refused_in_its_own_encoding() {
    let codec = codec(4, ByteOrder::Big, 16);
    for (byte, encoding) in [(0u8, Encoding::Json), (1, Encoding::ZiProto)] {
        let mut buf = BytesMut::from(&[0, 0, 1, 0, 0x16, byte][..]);
        let err = codec.decode_frame(&mut buf).unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::PacketTooLarge));
        assert_eq!(err.reply_encoding(), encoding);
    }
    // Other refusals are answered in JSON.
    let mut buf = BytesMut::from(&b"\x00\x00\x00\x04\x15\x01"[..]);
    let err = codec.decode_frame(&mut buf).unwrap_err();
    assert_eq!(err.reply_encoding(), Encoding::Json);
}

#[test]
fn frames_are_written_after_what_the_buffer_holds() {
    use asyncaproto::{Map, Value};
    let map: Map = [("foo", Value::from("bar"))].into_iter().collect();
    for (encoding, expected) in [
        (Encoding::Json, JSON_FRAME),
        (Encoding::ZiProto, ZIPROTO_FRAME),
    ] {
        let mut out = BytesMut::from(&b"queued"[..]);
        FrameCodec::default()
            .write_frame(encoding, &map, &mut out)
            .unwrap();
        assert_eq!(&out[..6], b"queued");
        assert_eq!(&out[6..], expected);
    }
    let codec = codec(2, ByteOrder::Little, 300);
    assert_eq!(
        codec.config(),
        &FrameConfig::new(2, ByteOrder::Little, 300).unwrap()
    );
}

#[test]
fn a_borrowed_frame_encodes_like_an_owned_one() {
    let frame = Frame::new(Encoding::ZiProto, &b"\x81\xa3foo\xa3bar"[..]);
    let (mut by_ref, mut owned) = (BytesMut::new(), BytesMut::new());
    FrameCodec::default().encode(&frame, &mut by_ref).unwrap();
    FrameCodec::default().encode(frame, &mut owned).unwrap();
    assert_eq!(&by_ref[..], ZIPROTO_FRAME);
    assert_eq!(by_ref, owned);
}
