//! What the server does with peer bytes: frames off an arbitrary stream (in
//! arbitrary chunks, under an arbitrary layout), each payload decoded in its
//! declared encoding, answered in the session's encoding (the first frame's).
//!
//! Checks: a bad head or payload gets a failure reply that the codec frames
//! under every layout and that a client reads back as the same error code; a
//! good payload, echoed in the session encoding, frames and decodes back to the
//! same map (binary becomes a string in JSON), or is refused as too long for
//! the Content-Length field without leaving half a frame in the buffer.

#![no_main]

use arbitrary::Unstructured;
use asyncaproto::{Encoding, ErrorCode, FrameCodec, FrameConfig, FrameError, Map};
use asyncapy_fuzz::{chunking, chunks, has_bin, layout, timed};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| timed(data, || check(data)));

fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(config), Ok(sizes)) = (layout(&mut u), chunking(&mut u)) else {
        return;
    };
    let stream = u.take_rest();
    let server = FrameCodec::new(config);
    // The client reads replies with the same layout, but no size limit of its own.
    let client = FrameCodec::new(
        FrameConfig::new(config.header_size(), config.byte_order(), u64::MAX).expect("valid"),
    );
    let mut rbuf = BytesMut::new();
    let mut session: Option<Encoding> = None;
    for chunk in chunks(stream, &sizes) {
        rbuf.extend_from_slice(chunk);
        loop {
            let frame = match server.decode_frame(&mut rbuf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    let code = e.error_code().unwrap_or(ErrorCode::HeaderInvalid);
                    fail(&server, &client, code, e.reply_encoding());
                    return;
                }
            };
            let encoding = *session.get_or_insert(frame.encoding);
            let map = match frame.encoding.decode(&frame.payload) {
                Ok(map) => map,
                Err(_) => {
                    fail(
                        &server,
                        &client,
                        ErrorCode::RequestMalformed,
                        frame.encoding,
                    );
                    return;
                }
            };
            echo(&server, &client, encoding, frame.encoding, &map);
        }
    }
}

/// The failure reply, as the session writes it, read back as a client would.
fn fail(server: &FrameCodec, client: &FrameCodec, code: ErrorCode, encoding: Encoding) {
    let mut payload = Vec::new();
    code.write_payload(encoding, &mut payload);
    let mut out = BytesMut::new();
    server
        .write_raw(encoding, &payload, &mut out)
        .expect("a failure reply fits every Content-Length size");
    let reply = client
        .decode_frame(&mut out)
        .expect("the failure reply decodes")
        .expect("the failure reply is whole");
    assert!(out.is_empty());
    assert_eq!(reply.encoding, encoding);
    let map = reply
        .encoding
        .decode(&reply.payload)
        .expect("a failure payload");
    assert_eq!(ErrorCode::from_map(&map), Some(code));
    assert_eq!(map, code.to_map());
}

/// A handler that sends the packet back: framed in the session's encoding.
fn echo(server: &FrameCodec, client: &FrameCodec, session: Encoding, sent: Encoding, map: &Map) {
    let mut out = BytesMut::from(&b"queued"[..]);
    match server.write_frame(session, map, &mut out) {
        Ok(()) => {}
        Err(FrameError::PayloadTooLong { len, header_size }) => {
            assert!(header_size < 8 && len as u64 + 2 > server.config().max_representable_length());
            assert_eq!(&out[..], b"queued", "a refused reply left bytes behind");
            return;
        }
        Err(e) => panic!("a decoded map does not encode: {e}"),
    }
    let mut reply = out.split_off(6);
    let frame = client
        .decode_frame(&mut reply)
        .expect("our own reply decodes")
        .expect("our own reply is whole");
    assert!(reply.is_empty());
    assert_eq!(frame.encoding, session);
    let back = frame
        .encoding
        .decode(&frame.payload)
        .expect("our own payload decodes");
    if session == sent || !map.values().any(has_bin) {
        assert_eq!(&back, map, "the echo changed the map");
    }
}
