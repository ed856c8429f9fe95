//! The PROXY protocol (HAProxy's, versions 1 and 2): the header a load
//! balancer or proxy sends ahead of a client's bytes, naming the client.
//!
//! With [`Config::proxy_protocol`](crate::Config::proxy_protocol) on, every
//! connection must start with a PROXY header (either version, told apart by
//! its first bytes, as the specification requires: the server never guesses
//! whether a header is there). The client address it names is the session's
//! [`Client::peer_addr`](crate::Client::peer_addr): the `Ip` filter and the
//! per-IP `session_limit` see the real client, not the proxy. A connection
//! whose header is missing, malformed, longer than [`MAX_HEADER_LEN`] or not
//! complete within the session `timeout` is closed without a reply.
//!
//! A header for the proxy's own connection (a v2 `LOCAL` health check) or for
//! a client the protocol cannot name (v1 `UNKNOWN`; v2 `UNSPEC`, UNIX sockets,
//! datagrams) leaves the connection's own address in place.
//!
//! This module is sans-IO: [`parse`] reads a header from the bytes received so
//! far, and [`ProxyHeader::write_v1`] / [`ProxyHeader::write_v2`] write one
//! (for tests, and for clients that stand in for a proxy).
//!
//! ```
//! use asyncapy::proxy::{parse, ProxyHeader, Version};
//!
//! let bytes = b"PROXY TCP4 203.0.113.7 192.0.2.1 51234 1500\r\n{...frame...}";
//! let (header, len) = parse(bytes)?.expect("a whole header");
//! assert_eq!(header.version, Version::V1);
//! assert_eq!(header.source, Some("203.0.113.7:51234".parse()?));
//! assert_eq!(&bytes[len..], b"{...frame...}");
//!
//! // Incomplete: more bytes are needed.
//! assert_eq!(parse(b"PROXY TCP4 203.0")?, None);
//!
//! // Version 2, written and read back.
//! let mut v2 = Vec::new();
//! ProxyHeader::proxied("[2001:db8::7]:40000".parse()?, "[2001:db8::1]:1500".parse()?)
//!     .write_v2(&mut v2);
//! let (back, len) = parse(&v2)?.expect("a whole header");
//! assert_eq!((back.version, len), (Version::V2, v2.len()));
//! assert_eq!(back.source, Some("[2001:db8::7]:40000".parse()?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::BytesMut;

/// The longest version 1 header, `\r\n` included (the specification's bound).
pub const MAX_V1_LEN: usize = 107;

/// The longest header accepted, of either version: a version 2 header's
/// address block and TLVs may take 4,096 bytes after its 16-byte head.
pub const MAX_HEADER_LEN: usize = 16 + 4096;

/// The 12 bytes a version 2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

const V1_PREFIX: &[u8] = b"PROXY ";

/// Which version of the protocol a header was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Version 1: one line of text.
    V1,
    /// Version 2: binary.
    V2,
}

/// A PROXY header: who the proxy speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The version the header was written in.
    pub version: Version,
    /// The client's address, when the header names one; `None` for the
    /// proxy's own connection (v2 `LOCAL`) or an address the protocol cannot
    /// name (v1 `UNKNOWN`, v2 `UNSPEC`, UNIX, datagrams).
    pub source: Option<SocketAddr>,
    /// The address the client connected to, when `source` is set.
    pub destination: Option<SocketAddr>,
}

impl ProxyHeader {
    /// A header naming a TCP client (`source`) and the address it connected
    /// to (`destination`), in version 1 (see [`ProxyHeader::version`]). With
    /// an IPv4 and an IPv6 address, the IPv4 one is written IPv4-mapped.
    ///
    /// ```
    /// use asyncapy::proxy::ProxyHeader;
    /// let header = ProxyHeader::proxied("10.1.2.3:4000".parse()?, "10.0.0.1:1500".parse()?);
    /// let mut line = Vec::new();
    /// header.write_v1(&mut line);
    /// assert_eq!(line, b"PROXY TCP4 10.1.2.3 10.0.0.1 4000 1500\r\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn proxied(source: SocketAddr, destination: SocketAddr) -> ProxyHeader {
        ProxyHeader {
            version: Version::V1,
            source: Some(source),
            destination: Some(destination),
        }
    }

    /// A header that names no client: v1 `UNKNOWN`, v2 `LOCAL` (a proxy's
    /// health check). The server keeps the connection's own address.
    ///
    /// ```
    /// use asyncapy::proxy::ProxyHeader;
    /// let mut line = Vec::new();
    /// ProxyHeader::local().write_v1(&mut line);
    /// assert_eq!(line, b"PROXY UNKNOWN\r\n");
    /// ```
    pub fn local() -> ProxyHeader {
        ProxyHeader {
            version: Version::V1,
            source: None,
            destination: None,
        }
    }

    /// The same header, to be written in `version`.
    ///
    /// ```
    /// use asyncapy::proxy::{ProxyHeader, Version};
    /// let header = ProxyHeader::local().version(Version::V2);
    /// assert_eq!(header.to_bytes().len(), 16);
    /// ```
    pub fn version(self, version: Version) -> ProxyHeader {
        ProxyHeader { version, ..self }
    }

    /// The header's bytes, in its [`ProxyHeader::version`].
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match self.version {
            Version::V1 => self.write_v1(&mut out),
            Version::V2 => self.write_v2(&mut out),
        }
        out
    }

    /// The source and destination when both are set, of one family: with
    /// one of each, the IPv4 one as IPv4-mapped IPv6.
    fn pair(&self) -> Option<(SocketAddr, SocketAddr)> {
        let (s, d) = (self.source?, self.destination?);
        let v6 = |a: SocketAddr| match a {
            SocketAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port()),
            v6 => v6,
        };
        Some(if s.is_ipv4() == d.is_ipv4() {
            (s, d)
        } else {
            (v6(s), v6(d))
        })
    }

    /// Appends the header as version 1 text (`PROXY UNKNOWN` unless both
    /// addresses are set).
    pub fn write_v1(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        let _ = match self.pair() {
            Some((s, d)) => {
                let family = if s.is_ipv4() { "TCP4" } else { "TCP6" };
                write!(
                    out,
                    "PROXY {family} {} {} {} {}\r\n",
                    s.ip(),
                    d.ip(),
                    s.port(),
                    d.port()
                )
            }
            None => out.write_all(b"PROXY UNKNOWN\r\n"),
        };
    }

    /// Appends the header as version 2 (a `LOCAL` command unless both
    /// addresses are set).
    pub fn write_v2(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&V2_SIGNATURE);
        match self.pair() {
            Some((s, d)) => {
                out.push(0x21); // version 2, PROXY
                let (family, len) = if s.is_ipv4() {
                    (0x11, 12u16)
                } else {
                    (0x21, 36)
                };
                out.push(family);
                out.extend_from_slice(&len.to_be_bytes());
                for ip in [s.ip(), d.ip()] {
                    match ip {
                        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
                        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
                    }
                }
                out.extend_from_slice(&s.port().to_be_bytes());
                out.extend_from_slice(&d.port().to_be_bytes());
            }
            None => out.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]), // version 2, LOCAL
        }
    }
}

/// Why bytes are not a PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The bytes start neither `PROXY ` nor the version 2 signature.
    #[error("no PROXY protocol header (the connection must come through the proxy)")]
    Missing,
    /// A version 1 line without its `\r\n` within [`MAX_V1_LEN`] bytes.
    #[error("PROXY v1 header longer than {MAX_V1_LEN} bytes")]
    V1TooLong,
    /// A version 1 line that does not follow the specification.
    #[error("malformed PROXY v1 header: {0}")]
    V1Malformed(&'static str),
    /// A version 2 header of a version other than 2, or a command other than
    /// `LOCAL` and `PROXY`.
    #[error("unsupported PROXY v2 version/command byte {0:#04x}")]
    V2Unsupported(u8),
    /// A version 2 header longer than [`MAX_HEADER_LEN`].
    #[error("PROXY v2 header of {0} bytes (at most {MAX_HEADER_LEN})")]
    V2TooLong(usize),
    /// A version 2 address block shorter than its family's addresses.
    #[error("PROXY v2 address block of {len} bytes, too short for family {family:#04x}")]
    V2Short {
        /// The family and transport byte.
        family: u8,
        /// The length the header gave.
        len: usize,
    },
}

/// Reads a PROXY header at the start of `buf`, the bytes received so far.
///
/// `Ok(Some((header, len)))`: a whole header of `len` bytes (what follows is
/// the client's). `Ok(None)`: the bytes so far start a header; read more.
/// `Err`: not a header, whatever may follow. An error is given as soon as
/// the bytes show it: no more than [`MAX_HEADER_LEN`] bytes are ever needed.
pub fn parse(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first == b'P' {
        let n = buf.len().min(V1_PREFIX.len());
        if buf[..n] != V1_PREFIX[..n] {
            return Err(ProxyError::Missing);
        }
        return parse_v1(buf);
    }
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] != V2_SIGNATURE[..n] {
        return Err(ProxyError::Missing);
    }
    parse_v2(buf)
}

fn parse_v1(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let window = &buf[..buf.len().min(MAX_V1_LEN)];
    let Some(cr) = window.windows(2).position(|w| w == b"\r\n") else {
        // (Whatever else the line holds is judged at its end: after
        // `UNKNOWN`, anything may come before the `\r\n`.)
        if window.len() >= MAX_V1_LEN {
            return Err(ProxyError::V1TooLong);
        }
        return Ok(None);
    };
    let len = cr + 2;
    let line = std::str::from_utf8(&buf[V1_PREFIX.len()..cr])
        .map_err(|_| ProxyError::V1Malformed("not ASCII"))?;
    let mut fields = line.split(' ');
    let family = fields.next().unwrap_or_default();
    let header = match family {
        // "UNKNOWN" may be followed by anything: the receiver ignores it.
        "UNKNOWN" => ProxyHeader {
            version: Version::V1,
            source: None,
            destination: None,
        },
        "TCP4" | "TCP6" => {
            let (Some(src), Some(dst), Some(sport), Some(dport), None) = (
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
            ) else {
                return Err(ProxyError::V1Malformed(
                    "expected TCP4|TCP6 SRC DST SRCPORT DSTPORT",
                ));
            };
            let (src, dst) = if family == "TCP4" {
                let parse = |s: &str| {
                    s.parse::<Ipv4Addr>()
                        .map(IpAddr::V4)
                        .map_err(|_| "a bad IPv4 address")
                };
                (parse(src), parse(dst))
            } else {
                let parse = |s: &str| {
                    s.parse::<Ipv6Addr>()
                        .map(IpAddr::V6)
                        .map_err(|_| "a bad IPv6 address")
                };
                (parse(src), parse(dst))
            };
            let (src, dst) = (
                src.map_err(ProxyError::V1Malformed)?,
                dst.map_err(ProxyError::V1Malformed)?,
            );
            ProxyHeader {
                version: Version::V1,
                source: Some(SocketAddr::new(src, v1_port(sport)?)),
                destination: Some(SocketAddr::new(dst, v1_port(dport)?)),
            }
        }
        _ => return Err(ProxyError::V1Malformed("unknown protocol family")),
    };
    Ok(Some((header, len)))
}

/// A port: 1 to 5 decimal digits, no sign, no leading zero, at most 65535.
fn v1_port(text: &str) -> Result<u16, ProxyError> {
    let plain = !text.is_empty()
        && text.len() <= 5
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    plain
        .then(|| text.parse().ok())
        .flatten()
        .ok_or(ProxyError::V1Malformed("a bad port"))
}

fn parse_v2(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let Some(head) = buf.get(..16) else {
        // The version/command byte, when it is there, can already be wrong.
        if let Some(&vc) = buf.get(12) {
            check_v2_command(vc)?;
        }
        return Ok(None);
    };
    let version_command = head[12];
    let local = check_v2_command(version_command)?;
    let family = head[13];
    let block = usize::from(u16::from_be_bytes([head[14], head[15]]));
    let len = 16 + block;
    if len > MAX_HEADER_LEN {
        return Err(ProxyError::V2TooLong(len));
    }
    let Some(addresses) = buf.get(16..len) else {
        return Ok(None);
    };
    let short = || ProxyError::V2Short { family, len: block };
    let port = |at: usize| u16::from_be_bytes([addresses[at], addresses[at + 1]]);
    let (source, destination) = match (local, family) {
        (false, 0x11) => {
            // TCP over IPv4: 4 + 4 address bytes, 2 + 2 port bytes.
            let a = addresses.get(..12).ok_or_else(short)?;
            let ip = |at: usize| IpAddr::V4(Ipv4Addr::new(a[at], a[at + 1], a[at + 2], a[at + 3]));
            (
                Some(SocketAddr::new(ip(0), port(8))),
                Some(SocketAddr::new(ip(4), port(10))),
            )
        }
        (false, 0x21) => {
            // TCP over IPv6: 16 + 16 address bytes, 2 + 2 port bytes.
            let a = addresses.get(..36).ok_or_else(short)?;
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&a[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            (
                Some(SocketAddr::new(ip(0), port(32))),
                Some(SocketAddr::new(ip(16), port(34))),
            )
        }
        // LOCAL, UNSPEC, UNIX sockets, datagrams: no client address to use.
        _ => (None, None),
    };
    Ok(Some((
        ProxyHeader {
            version: Version::V2,
            source,
            destination,
        },
        len,
    )))
}

/// Checks a version 2 version/command byte; `true` for `LOCAL`.
fn check_v2_command(byte: u8) -> Result<bool, ProxyError> {
    match byte {
        0x20 => Ok(true),
        0x21 => Ok(false),
        _ => Err(ProxyError::V2Unsupported(byte)),
    }
}

/// Why a connection gave no PROXY header.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The bytes are not a header.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// The connection ended before the header did.
    #[error("the connection closed inside the PROXY header ({0} bytes)")]
    Closed(usize),
    /// The socket failed.
    #[error("reading the PROXY header failed: {0}")]
    Io(#[from] std::io::Error),
}

impl ReadError {
    /// Whether the peer connected and left without sending a byte (or reset
    /// the connection): a load balancer's health check, or a port probe.
    pub(crate) fn is_probe(&self) -> bool {
        match self {
            ReadError::Closed(0) => true,
            ReadError::Io(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            _ => false,
        }
    }
}

/// Reads a PROXY header off `stream`: the header, and the bytes read past it
/// (the client's first bytes). Never buffers more than [`MAX_HEADER_LEN`]
/// plus one read's worth; the caller bounds the time.
pub(crate) async fn read_header<S>(stream: &mut S) -> Result<(ProxyHeader, BytesMut), ReadError>
where
    S: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt as _;
    let mut buf = BytesMut::with_capacity(256);
    loop {
        if let Some((header, len)) = parse(&buf)? {
            // Nothing after the header (the usual case): keep no buffer, so
            // that an idle session behind a proxy holds none.
            let rest = if buf.len() == len {
                BytesMut::new()
            } else {
                buf.split_off(len)
            };
            return Ok((header, rest));
        }
        if buf.len() == buf.capacity() {
            buf.reserve(512);
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(ReadError::Closed(buf.len()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(bytes: &[u8]) -> (ProxyHeader, usize) {
        parse(bytes).unwrap().unwrap()
    }

    /// Every strict prefix of a whole header asks for more.
    fn prefixes_need_more(bytes: &[u8]) {
        let (_, len) = whole(bytes);
        for cut in 0..len {
            assert_eq!(parse(&bytes[..cut]), Ok(None), "prefix of {cut} bytes");
        }
    }

    #[test]
    fn v1_tcp4_tcp6_unknown() {
        let (h, len) = whole(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET");
        assert_eq!(len, 47);
        assert_eq!(h.source, Some("192.168.0.1:56324".parse().unwrap()));
        assert_eq!(h.destination, Some("192.168.0.11:443".parse().unwrap()));

        let (h, _) = whole(b"PROXY TCP6 2001:db8::1 ::1 65535 0\r\n");
        assert_eq!(h.source, Some("[2001:db8::1]:65535".parse().unwrap()));
        assert_eq!(h.destination, Some("[::1]:0".parse().unwrap()));

        let (h, len) = whole(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nrest");
        assert_eq!((h.source, len), (None, 35));
        assert_eq!(whole(b"PROXY UNKNOWN\r\n").1, 15);

        prefixes_need_more(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
    }

    #[test]
    fn v1_refusals() {
        let malformed = [
            &b"PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n"[..],
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 9\r\n",
            b"PROXY TCP4 ::1 ::1 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 +1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n",
            b"PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n",
            b"PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n",
            b"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n\r\n",
            b"PROXY \xff\r\n",
        ];
        for bytes in malformed {
            assert!(
                matches!(parse(bytes), Err(ProxyError::V1Malformed(_))),
                "{:?}: {:?}",
                String::from_utf8_lossy(bytes),
                parse(bytes)
            );
        }
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(MAX_V1_LEN, b'x');
        assert_eq!(parse(&long), Err(ProxyError::V1TooLong));
        long.truncate(MAX_V1_LEN - 1);
        assert_eq!(parse(&long), Ok(None));
        long.extend_from_slice(b"\r\n");
        assert_eq!(
            parse(&long),
            Err(ProxyError::V1TooLong),
            "the \\n is byte 109"
        );
        long.truncate(MAX_V1_LEN - 2);
        long.extend_from_slice(b"\r\n");
        assert_eq!(whole(&long).1, MAX_V1_LEN);
    }

    #[test]
    fn not_a_header() {
        for bytes in [
            &b"\x00\x00\x00\x10{\"a\": 1}"[..],
            b"GET / HTTP/1.1\r\n",
            b"PROXX",
            b"\r\n\r\n\0\r\nQUIX",
            b"\x16\x03\x01", // a TLS ClientHello
        ] {
            assert_eq!(parse(bytes), Err(ProxyError::Missing), "{bytes:?}");
        }
        assert_eq!(parse(b""), Ok(None));
        assert_eq!(parse(b"PRO"), Ok(None));
        assert_eq!(parse(b"\r\n\r\n"), Ok(None));
    }

    #[test]
    fn v2_round_trips_and_families() {
        for (s, d) in [
            ("203.0.113.7:51234", "192.0.2.1:1500"),
            ("[2001:db8::7]:40000", "[2001:db8::1]:1500"),
        ] {
            let header = ProxyHeader::proxied(s.parse().unwrap(), d.parse().unwrap());
            let mut bytes = Vec::new();
            header.write_v2(&mut bytes);
            let (back, len) = whole(&bytes);
            assert_eq!(len, bytes.len());
            assert_eq!(back.source, header.source);
            assert_eq!(back.destination, header.destination);
            prefixes_need_more(&bytes);

            let mut v1 = Vec::new();
            header.write_v1(&mut v1);
            assert_eq!(whole(&v1).0, header);
        }

        // One address of each family: both written as IPv6.
        let mixed = ProxyHeader::proxied(
            "[2001:db8::7]:1".parse().unwrap(),
            "192.0.2.1:2".parse().unwrap(),
        );
        for version in [Version::V1, Version::V2] {
            let back = whole(&mixed.version(version).to_bytes()).0;
            assert_eq!(back.source, mixed.source);
            assert_eq!(
                back.destination,
                Some("[::ffff:192.0.2.1]:2".parse().unwrap())
            );
        }

        let mut local = Vec::new();
        ProxyHeader::local().write_v2(&mut local);
        assert_eq!(local.len(), 16);
        assert_eq!(whole(&local).0.source, None);

        // TLVs after the addresses are skipped; LOCAL ignores its addresses.
        let mut tlv = V2_SIGNATURE.to_vec();
        tlv.extend_from_slice(&[0x21, 0x11, 0, 12 + 7]);
        tlv.extend_from_slice(&[10, 0, 0, 9, 10, 0, 0, 1, 0x1f, 0x90, 0x05, 0xdc]);
        tlv.extend_from_slice(&[0x01, 0x00, 0x04, b'h', b'2', b'/', b'1']);
        tlv.extend_from_slice(b"frame");
        let (h, len) = whole(&tlv);
        assert_eq!(len, tlv.len() - 5);
        assert_eq!(h.source, Some("10.0.0.9:8080".parse().unwrap()));
        tlv[12] = 0x20;
        assert_eq!(whole(&tlv).0.source, None);

        // UNSPEC, UNIX and datagram families name no client.
        for family in [0x00, 0x12, 0x22, 0x31, 0x32] {
            let mut b = V2_SIGNATURE.to_vec();
            b.extend_from_slice(&[0x21, family, 0, 0]);
            assert_eq!(whole(&b).0.source, None, "family {family:#x}");
        }
    }

    #[test]
    fn v2_refusals() {
        let mut b = V2_SIGNATURE.to_vec();
        b.push(0x22);
        assert_eq!(parse(&b), Err(ProxyError::V2Unsupported(0x22)));
        b[12] = 0x11;
        assert_eq!(parse(&b), Err(ProxyError::V2Unsupported(0x11)));

        let mut short = V2_SIGNATURE.to_vec();
        short.extend_from_slice(&[0x21, 0x21, 0, 12]);
        short.extend_from_slice(&[0; 12]);
        assert_eq!(
            parse(&short),
            Err(ProxyError::V2Short {
                family: 0x21,
                len: 12
            })
        );

        let mut long = V2_SIGNATURE.to_vec();
        long.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(parse(&long), Err(ProxyError::V2TooLong(16 + 65535)));
        let mut limit = V2_SIGNATURE.to_vec();
        limit.extend_from_slice(&[0x21, 0x11, 0x10, 0x00]);
        assert_eq!(parse(&limit), Ok(None), "4096 bytes of addresses and TLVs");
        limit.resize(MAX_HEADER_LEN, 0);
        assert_eq!(whole(&limit).1, MAX_HEADER_LEN);
    }
}
