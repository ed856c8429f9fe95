//! IP filter entries (`IpNet`, `Ip::new`) parsed from arbitrary strings.
//!
//! Checks: an entry without `/` parses exactly when `std` parses it as an
//! address; what parses displays as text that parses back to the same range;
//! a range holds its own first address and its prefix fits its family; `Ip`
//! accepts exactly what `IpNet` does.

#![no_main]

use std::net::IpAddr;

use asyncapy::filters::{Ip, IpNet};
use asyncapy_fuzz::timed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| timed(data, || check(data)));

fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = text.parse::<IpNet>();
    if !text.contains('/') {
        assert_eq!(parsed.is_ok(), text.parse::<IpAddr>().is_ok(), "{text:?}");
    }
    assert_eq!(Ip::new([text]).is_ok(), parsed.is_ok());
    let Ok(net) = parsed else { return };

    let shown = net.to_string();
    let again: IpNet = shown
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} displays as {shown:?}, which does not parse: {e}"));
    assert_eq!(again, net, "{text:?} -> {shown:?}");
    assert_eq!(again.to_string(), shown);

    let addr = net.addr();
    assert!(net.contains(addr));
    let full = if addr.is_ipv4() { 32 } else { 128 };
    assert!(net.prefix_len() <= full);
    assert_eq!(IpNet::from(addr).prefix_len(), full);
    if net.prefix_len() == full {
        assert_eq!(IpNet::from(addr), net);
    }

    let ip = Ip::new([text]).expect("parsed above");
    assert!(ip.contains(addr));
}
