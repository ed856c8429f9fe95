//! PROXY protocol headers (versions 1 and 2) from arbitrary bytes, as a
//! server behind a proxy reads them off each new connection.
//!
//! Checks: parsing never panics; a header is found at the same length in the
//! bytes up to its end alone, and every shorter prefix asks for more; an error
//! is final (more bytes never make it a header); "need more" only below the
//! maximum header length; a header with addresses writes back (in its version)
//! to bytes that read as the same addresses.

#![no_main]

use asyncapy::proxy::{parse, ProxyHeader, MAX_HEADER_LEN};
use asyncapy_fuzz::timed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| timed(data, || check(data)));

fn check(data: &[u8]) {
    match parse(data) {
        Ok(Some((header, len))) => {
            assert!(len <= data.len() && len <= MAX_HEADER_LEN, "{len}");
            assert_eq!(parse(&data[..len]), Ok(Some((header, len))));
            for cut in 0..len {
                assert_eq!(parse(&data[..cut]), Ok(None), "prefix of {cut} of {len}");
            }
            if header.source.is_some() {
                assert!(header.destination.is_some());
                let bytes = header.to_bytes();
                let (back, back_len) = parse(&bytes)
                    .expect("our own header parses")
                    .expect("our own header is whole");
                assert_eq!(back_len, bytes.len());
                assert_eq!(back, header);
            } else {
                // Our `LOCAL` / `UNKNOWN` reads back as naming no client.
                let bytes = ProxyHeader::local().version(header.version).to_bytes();
                assert_eq!(
                    parse(&bytes).map(|h| h.map(|(h, _)| h.source)),
                    Ok(Some(None))
                );
            }
        }
        Ok(None) => assert!(data.len() < MAX_HEADER_LEN, "{} bytes", data.len()),
        Err(error) => {
            let mut more = data.to_vec();
            more.extend_from_slice(b" 1 2\r\n");
            assert!(parse(&more).is_err(), "{error} became a header");
        }
    }
}
