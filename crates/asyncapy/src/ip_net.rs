//! [`IpNet`]: an IP address or a CIDR range of them, as the [`Ip`](crate::filters::Ip)
//! filter and the `proxy_trusted` option take them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP address or a CIDR range of them: `192.0.2.7`, `10.0.0.0/8`, `::1`,
/// `2001:db8::/32`.
///
/// What parses:
///
/// * an address as [`IpAddr`] parses it: dotted-quad IPv4 without leading
///   zeros (`010.0.0.1` is refused: octal or decimal?), any RFC 4291 IPv6 text
///   form, no zone (`fe80::1%eth0`), no brackets, no surrounding spaces;
/// * optionally `/` and a prefix length in decimal without leading zeros, at
///   most 32 for IPv4 and 128 for IPv6 (`/0` is every address of the family);
/// * no bits set past the prefix: `10.0.0.1/8` is refused (did you mean
///   `10.0.0.0/8`, or `10.0.0.1`?).
///
/// IPv4 addresses are the IPv4-mapped IPv6 range `::ffff:0:0/96`:
/// `::ffff:10.0.0.0/104` is the same range as `10.0.0.0/8` (and displays as
/// it), and an IPv6 range holding that block, such as `::/0`, also holds every
/// IPv4 address.
///
/// ```
/// use asyncapy::filters::IpNet;
///
/// let net: IpNet = "10.0.0.0/8".parse()?;
/// assert!(net.contains("10.255.0.1".parse()?));
/// assert_eq!(net.prefix_len(), 8);
/// assert_eq!("::ffff:10.0.0.0/104".parse::<IpNet>()?, net);
/// assert_eq!("::ffff:1.2.3.4".parse::<IpNet>()?.to_string(), "1.2.3.4");
/// assert!("10.0.0.1/8".parse::<IpNet>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    /// The network's first address, IPv4 as IPv4-mapped IPv6.
    bits: u128,
    /// Out of 128 bits.
    prefix: u8,
}

/// The IPv4-mapped block `::ffff:0:0/96`.
const MAPPED: u128 = 0xffff << 32;

impl IpNet {
    /// The network's first address (the address itself for a single address).
    ///
    /// ```
    /// use asyncapy::filters::IpNet;
    /// let net: IpNet = "2001:db8::/32".parse()?;
    /// assert_eq!(net.addr().to_string(), "2001:db8::");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn addr(&self) -> IpAddr {
        let v6 = Ipv6Addr::from(self.bits);
        match (self.is_v4(), v6.to_ipv4_mapped()) {
            (true, Some(v4)) => IpAddr::V4(v4),
            _ => IpAddr::V6(v6),
        }
    }

    /// The prefix length, in bits of [`IpNet::addr`]'s family (32 for a single
    /// IPv4 address, 128 for a single IPv6 one).
    ///
    /// ```
    /// use asyncapy::filters::IpNet;
    /// assert_eq!("127.0.0.1".parse::<IpNet>()?.prefix_len(), 32);
    /// assert_eq!("::/0".parse::<IpNet>()?.prefix_len(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prefix_len(&self) -> u8 {
        if self.is_v4() {
            self.prefix - 96
        } else {
            self.prefix
        }
    }

    /// Whether `ip` is in this range.
    ///
    /// ```
    /// use asyncapy::filters::IpNet;
    /// let all: IpNet = "0.0.0.0/0".parse()?;
    /// assert!(all.contains("203.0.113.9".parse()?));
    /// assert!(!all.contains("::1".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.contains_bits(canonical(ip))
    }

    pub(crate) fn contains_bits(&self, bits: u128) -> bool {
        (bits ^ self.bits) & mask(self.prefix) == 0
    }

    /// Within the IPv4-mapped block: shown and sized as IPv4.
    fn is_v4(&self) -> bool {
        self.prefix >= 96 && self.bits & mask(96) == MAPPED
    }
}

impl From<IpAddr> for IpNet {
    /// The single address.
    fn from(ip: IpAddr) -> IpNet {
        IpNet {
            bits: canonical(ip),
            prefix: 128,
        }
    }
}

impl From<Ipv4Addr> for IpNet {
    /// The single address.
    fn from(ip: Ipv4Addr) -> IpNet {
        IpNet::from(IpAddr::V4(ip))
    }
}

impl From<Ipv6Addr> for IpNet {
    /// The single address.
    fn from(ip: Ipv6Addr) -> IpNet {
        IpNet::from(IpAddr::V6(ip))
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(entry: &str) -> Result<IpNet, IpNetError> {
        let error = |kind| IpNetError {
            entry: entry.to_owned(),
            kind,
        };
        let (addr, prefix) = match entry.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (entry, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| error(IpNetErrorKind::Address))?;
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix = match prefix {
            None => max,
            Some(text) => {
                let plain_decimal = !text.is_empty()
                    && text.len() <= 3
                    && text.bytes().all(|b| b.is_ascii_digit())
                    && (text == "0" || !text.starts_with('0'));
                let value = match text.parse::<u8>() {
                    Ok(value) if plain_decimal => value,
                    _ => return Err(error(IpNetErrorKind::Prefix)),
                };
                if value > max {
                    return Err(error(IpNetErrorKind::PrefixTooLong { max }));
                }
                value
            }
        };
        let prefix = prefix + (128 - max);
        let bits = canonical(addr);
        if bits & !mask(prefix) != 0 {
            return Err(error(IpNetErrorKind::HostBits));
        }
        Ok(IpNet { bits, prefix })
    }
}

impl fmt::Display for IpNet {
    /// `addr/len`, or the address alone for a single address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = self.addr();
        let full = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if self.prefix_len() == full {
            write!(f, "{addr}")
        } else {
            write!(f, "{addr}/{}", self.prefix_len())
        }
    }
}

impl fmt::Debug for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IpNet({self})")
    }
}

/// The first `prefix` bits set.
fn mask(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

/// `ip` as 128 bits, IPv4 as IPv4-mapped IPv6.
pub(crate) fn canonical(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => MAPPED | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// An IP filter entry that does not parse; see [`IpNet`] for what does.
///
/// ```
/// use asyncapy::filters::{IpNet, IpNetErrorKind};
///
/// let err = "10.0.0.0/33".parse::<IpNet>().unwrap_err();
/// assert_eq!(err.entry(), "10.0.0.0/33");
/// assert_eq!(err.kind(), IpNetErrorKind::PrefixTooLong { max: 32 });
/// assert_eq!(
///     err.to_string(),
///     r#"invalid IP address or range "10.0.0.0/33": the prefix length is over 32"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid IP address or range {entry:?}: {kind}")]
pub struct IpNetError {
    entry: String,
    kind: IpNetErrorKind,
}

impl IpNetError {
    /// The entry, as given.
    ///
    /// ```
    /// let err = "nope".parse::<asyncapy::filters::IpNet>().unwrap_err();
    /// assert_eq!(err.entry(), "nope");
    /// ```
    pub fn entry(&self) -> &str {
        &self.entry
    }

    /// What is wrong with it.
    ///
    /// ```
    /// use asyncapy::filters::{IpNet, IpNetErrorKind};
    /// let err = "10.0.0.0/x".parse::<IpNet>().unwrap_err();
    /// assert_eq!(err.kind(), IpNetErrorKind::Prefix);
    /// ```
    pub fn kind(&self) -> IpNetErrorKind {
        self.kind
    }
}

/// What is wrong with an IP filter entry.
///
/// ```
/// use asyncapy::filters::{IpNet, IpNetErrorKind};
/// let kind = |s: &str| s.parse::<IpNet>().unwrap_err().kind();
/// assert_eq!(kind("1.2.3"), IpNetErrorKind::Address);
/// assert_eq!(kind("::/129"), IpNetErrorKind::PrefixTooLong { max: 128 });
/// assert_eq!(kind("::1/"), IpNetErrorKind::Prefix);
/// assert_eq!(kind("10.0.0.1/8"), IpNetErrorKind::HostBits);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpNetErrorKind {
    /// The part before any `/` is not an IPv4 or IPv6 address.
    #[error("not an IPv4 or IPv6 address")]
    Address,
    /// The part after `/` is not a plain decimal number.
    #[error("the prefix length is not a decimal number")]
    Prefix,
    /// The prefix length is longer than the address.
    #[error("the prefix length is over {max}")]
    PrefixTooLong {
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
    /// The address has bits set past the prefix length.
    #[error("the address has bits set past the prefix length")]
    HostBits,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn kind(s: &str) -> IpNetErrorKind {
        s.parse::<IpNet>().unwrap_err().kind()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn single_addresses() {
        let v4 = net("192.0.2.7");
        assert_eq!(v4.prefix_len(), 32);
        assert!(v4.contains(ip("192.0.2.7")));
        assert!(!v4.contains(ip("192.0.2.8")));
        assert_eq!(v4, net("192.0.2.7/32"));
        let v6 = net("::1");
        assert_eq!(v6.prefix_len(), 128);
        assert!(v6.contains(ip("::1")));
        assert!(!v6.contains(ip("::2")));
        assert!(!v6.contains(ip("127.0.0.1")));
        assert_eq!(v6, net("::1/128"));
        assert_eq!(v6, net("0:0:0:0:0:0:0:1"));
    }

    #[test]
    fn prefix_zero_is_the_whole_family() {
        let all4 = net("0.0.0.0/0");
        assert!(all4.contains(ip("0.0.0.0")));
        assert!(all4.contains(ip("255.255.255.255")));
        assert!(!all4.contains(ip("::1")));
        assert!(!all4.contains(ip("2001:db8::1")));
        // IPv4 addresses are ::ffff:a.b.c.d, which ::/0 holds.
        let all6 = net("::/0");
        assert!(all6.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(all6.contains(ip("10.0.0.1")));
        assert_eq!(all6.prefix_len(), 0);
        assert_eq!(all6.to_string(), "::/0");
        assert_eq!(all4.to_string(), "0.0.0.0/0");
    }

    #[test]
    fn ranges() {
        let ten = net("10.0.0.0/8");
        assert!(ten.contains(ip("10.0.0.0")));
        assert!(ten.contains(ip("10.255.255.255")));
        assert!(!ten.contains(ip("11.0.0.0")));
        assert!(!ten.contains(ip("9.255.255.255")));
        let odd = net("192.168.1.128/25");
        assert!(odd.contains(ip("192.168.1.200")));
        assert!(!odd.contains(ip("192.168.1.127")));
        let doc = net("2001:db8::/32");
        assert!(doc.contains(ip("2001:db8:ffff::1")));
        assert!(!doc.contains(ip("2001:db9::")));
        let last_bit = net("2001:db8::/127");
        assert!(last_bit.contains(ip("2001:db8::1")));
        assert!(!last_bit.contains(ip("2001:db8::2")));
        let v4_31 = net("10.0.0.2/31");
        assert!(v4_31.contains(ip("10.0.0.3")));
        assert!(!v4_31.contains(ip("10.0.0.4")));
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let ten = net("10.0.0.0/8");
        assert!(ten.contains(ip("::ffff:10.1.2.3")));
        assert!(!ten.contains(ip("::ffff:11.1.2.3")));
        assert_eq!(net("::ffff:10.0.0.0/104"), ten);
        assert_eq!(net("::ffff:127.0.0.1"), net("127.0.0.1"));
        assert_eq!(net("::ffff:127.0.0.1").to_string(), "127.0.0.1");
        assert_eq!(net("::ffff:0:0/96").to_string(), "0.0.0.0/0");
        assert!(net("::ffff:0:0/96").contains(ip("8.8.8.8")));
        // The IPv4-compatible (deprecated) form ::a.b.c.d is plain IPv6.
        assert!(!net("127.0.0.1").contains(ip("::127.0.0.1")));
        // A range wider than the mapped block stays IPv6.
        let wider = net("::fffe:0:0/95");
        assert_eq!(wider.to_string(), "::fffe:0:0/95");
        assert!(wider.contains(ip("1.2.3.4")));
        assert_eq!(kind("::ffff:0:0/95"), IpNetErrorKind::HostBits);
    }

    #[test]
    fn bad_prefix_lengths() {
        assert_eq!(
            kind("10.0.0.0/33"),
            IpNetErrorKind::PrefixTooLong { max: 32 }
        );
        assert_eq!(kind("::/129"), IpNetErrorKind::PrefixTooLong { max: 128 });
        assert_eq!(kind("::/255"), IpNetErrorKind::PrefixTooLong { max: 128 });
        for bad in [
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/08",
            "10.0.0.0/00",
            "10.0.0.0/256",
            "10.0.0.0/1000",
            "10.0.0.0/8/8",
            "10.0.0.0/ 8",
            "10.0.0.0/8 ",
            "10.0.0.0/0x8",
            "::/٣",
        ] {
            assert_eq!(kind(bad), IpNetErrorKind::Prefix, "{bad}");
        }
        assert_eq!(kind("10.0.0.0/0"), IpNetErrorKind::HostBits);
    }

    #[test]
    fn host_bits_past_the_prefix() {
        assert_eq!(kind("10.0.0.1/8"), IpNetErrorKind::HostBits);
        assert_eq!(kind("1.0.0.0/0"), IpNetErrorKind::HostBits);
        assert_eq!(kind("2001:db8::1/32"), IpNetErrorKind::HostBits);
        assert_eq!(kind("::1/0"), IpNetErrorKind::HostBits);
        assert_eq!(net("255.255.255.255/32").prefix_len(), 32);
    }

    #[test]
    fn bad_addresses() {
        for bad in [
            "",
            "/8",
            "localhost",
            "1.2.3",
            "1.2.3.4.5",
            "256.0.0.1",
            "010.0.0.1",
            " 10.0.0.1",
            "10.0.0.1 ",
            "fe80::1%eth0",
            "[::1]",
            "::g",
            "1::2::3",
            "127.0.0.1:80",
            "1.2.3.4/",
        ] {
            let err = bad.parse::<IpNet>().unwrap_err();
            assert_eq!(err.entry(), bad);
            if bad != "1.2.3.4/" {
                assert_eq!(err.kind(), IpNetErrorKind::Address, "{bad:?}");
            }
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "10.0.0.0/8",
            "127.0.0.1",
            "::1",
            "2001:db8::/32",
            "::/0",
            "0.0.0.0/0",
        ] {
            assert_eq!(net(s).to_string(), s);
            assert_eq!(net(&net(s).to_string()), net(s));
        }
        assert_eq!(format!("{:?}", net("::1")), "IpNet(::1)");
    }
}
