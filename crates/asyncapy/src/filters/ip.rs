//! [`Ip`]: which client addresses a handler accepts, changeable at run time.

use std::fmt;
use std::net::IpAddr;

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{Check, Filter};
use crate::ip_net::canonical;
pub use crate::ip_net::{IpNet, IpNetError, IpNetErrorKind};
use crate::packet::Packet;
use crate::session::Client;

/// Passes packets from clients whose IP address is one of a list of addresses
/// and ranges (the original's `Filters.Ip(ips)`).
///
/// Entries are IPv4 or IPv6 addresses (`127.0.0.1`, `::1`) or CIDR ranges
/// (`10.0.0.0/8`, `2001:db8::/32`); see [`IpNet`] for what parses. The filter
/// checks the client's real peer address ([`Client::ip`]; the original compared
/// the server's own address, a bug). An IPv4 client and its IPv4-mapped IPv6
/// form (`::ffff:a.b.c.d`, as a dual-stack listener reports it) are the same
/// client: each matches the entries the other would.
///
/// The filter is dynamic: [`Ip::handle`] returns an [`IpHandle`] that adds,
/// removes or replaces entries while the server runs; the next packet checked
/// sees the change.
///
/// ```
/// use asyncapy::filters::Ip;
///
/// // Python: Filters.Ip(["127.0.0.1", "151.53.88.15"])
/// let ip = Ip::new(["127.0.0.1", "151.53.88.15", "10.0.0.0/8", "::1"])?;
/// assert!(ip.contains("10.1.2.3".parse()?));
/// assert!(ip.contains("::ffff:127.0.0.1".parse()?));
/// assert!(!ip.contains("192.168.0.1".parse()?));
///
/// let handle = ip.handle();
/// handle.add("192.168.0.0/16")?;
/// assert!(ip.contains("192.168.0.1".parse()?));
///
/// assert!(Ip::new(["10.0.0.0/33"]).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Checking costs one read lock and a scan of the entries; it never allocates.
#[derive(Clone, Debug)]
pub struct Ip {
    handle: IpHandle,
}

impl Ip {
    /// A filter passing the addresses and ranges in `entries`; the first entry
    /// that does not parse is the error.
    ///
    /// ```
    /// use asyncapy::filters::Ip;
    /// let one = Ip::new(["127.0.0.1"])?;
    /// let err = Ip::new(["127.0.0.1", "localhost"]).unwrap_err();
    /// assert_eq!(err.entry(), "localhost");
    /// # Ok::<(), asyncapy::filters::IpNetError>(())
    /// ```
    pub fn new<I, S>(entries: I) -> Result<Ip, IpNetError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(Ip::from_nets(parse_all(entries)?))
    }

    /// A filter passing `nets`.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use asyncapy::filters::{Ip, IpNet};
    /// let ip = Ip::from_nets([IpNet::from(Ipv4Addr::LOCALHOST)]);
    /// assert!(ip.contains(Ipv4Addr::LOCALHOST.into()));
    /// ```
    pub fn from_nets(nets: impl IntoIterator<Item = IpNet>) -> Ip {
        let handle = IpHandle {
            nets: Arc::new(RwLock::new(Vec::new())),
        };
        handle.replace_nets(nets);
        Ip { handle }
    }

    /// A handle that changes this filter's entries at run time. Handles are
    /// cheap to clone, and every clone changes the same filter.
    ///
    /// ```
    /// use asyncapy::filters::Ip;
    /// let ip = Ip::new(["127.0.0.1"])?;
    /// let handle = ip.handle();
    /// handle.remove("127.0.0.1")?;
    /// assert!(!ip.contains("127.0.0.1".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle(&self) -> IpHandle {
        self.handle.clone()
    }

    /// Whether `ip` passes.
    ///
    /// ```
    /// let ip = asyncapy::filters::Ip::new(["2001:db8::/32"])?;
    /// assert!(ip.contains("2001:db8::42".parse()?));
    /// assert!(!ip.contains("2001:db9::42".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.handle.contains(ip)
    }
}

impl Filter for Ip {
    fn check(&self, client: &Client, _: &Packet) -> Check {
        Check::from(self.contains(client.ip()))
    }
}

/// Changes an [`Ip`] filter's entries while the server runs (see [`Ip::handle`]).
///
/// Changes are seen by the next check. Every method that takes text parses
/// all of it before changing anything.
///
/// ```
/// use asyncapy::filters::Ip;
///
/// let ip = Ip::new(["127.0.0.1"])?;
/// let handle = ip.handle();
/// assert!(handle.add("10.0.0.0/8")?);
/// assert!(!handle.add("10.0.0.0/8")?); // already there
/// handle.replace(["::1"])?;
/// assert_eq!(handle.entries().len(), 1);
/// assert!(!ip.contains("127.0.0.1".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct IpHandle {
    nets: Arc<RwLock<Vec<IpNet>>>,
}

impl IpHandle {
    /// Adds an address or range; `Ok(false)` when it was already there.
    ///
    /// ```
    /// let ip = asyncapy::filters::Ip::new(Vec::<&str>::new())?;
    /// assert!(ip.handle().add("::1")?);
    /// assert!(ip.contains("::1".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add(&self, entry: &str) -> Result<bool, IpNetError> {
        Ok(self.add_net(entry.parse()?))
    }

    /// Adds `net`; `false` when it was already there.
    ///
    /// ```
    /// use std::net::Ipv6Addr;
    /// use asyncapy::filters::{Ip, IpNet};
    /// let ip = Ip::from_nets([]);
    /// assert!(ip.handle().add_net(IpNet::from(Ipv6Addr::LOCALHOST)));
    /// ```
    pub fn add_net(&self, net: IpNet) -> bool {
        let mut nets = self.write();
        if nets.contains(&net) {
            return false;
        }
        nets.push(net);
        true
    }

    /// Removes an address or range (exactly as added: removing `10.0.0.1`
    /// does not carve it out of `10.0.0.0/8`); `Ok(false)` when it was not there.
    ///
    /// ```
    /// let ip = asyncapy::filters::Ip::new(["10.0.0.0/8"])?;
    /// assert!(!ip.handle().remove("10.0.0.1")?);
    /// assert!(ip.handle().remove("10.0.0.0/8")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove(&self, entry: &str) -> Result<bool, IpNetError> {
        Ok(self.remove_net(entry.parse()?))
    }

    /// Removes `net`; `false` when it was not there.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use asyncapy::filters::{Ip, IpNet};
    /// let ip = Ip::from_nets([IpNet::from(Ipv4Addr::LOCALHOST)]);
    /// assert!(ip.handle().remove_net(IpNet::from(Ipv4Addr::LOCALHOST)));
    /// ```
    pub fn remove_net(&self, net: IpNet) -> bool {
        let mut nets = self.write();
        let before = nets.len();
        nets.retain(|n| *n != net);
        nets.len() != before
    }

    /// Replaces every entry with `entries`; when one does not parse, nothing
    /// changes.
    ///
    /// ```
    /// let ip = asyncapy::filters::Ip::new(["127.0.0.1"])?;
    /// assert!(ip.handle().replace(["::1", "bad"]).is_err());
    /// assert!(ip.contains("127.0.0.1".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn replace<I, S>(&self, entries: I) -> Result<(), IpNetError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.replace_nets(parse_all(entries)?);
        Ok(())
    }

    /// Replaces every entry with `nets`.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use asyncapy::filters::{Ip, IpNet};
    /// let ip = Ip::new(["::1"])?;
    /// ip.handle().replace_nets([IpNet::from(Ipv4Addr::LOCALHOST)]);
    /// assert!(!ip.contains("::1".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn replace_nets(&self, nets: impl IntoIterator<Item = IpNet>) {
        let mut unique = Vec::new();
        for net in nets {
            if !unique.contains(&net) {
                unique.push(net);
            }
        }
        *self.write() = unique;
    }

    /// Removes every entry: the filter then passes no one.
    ///
    /// ```
    /// let ip = asyncapy::filters::Ip::new(["127.0.0.1"])?;
    /// ip.handle().clear();
    /// assert!(ip.handle().entries().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&self) {
        self.write().clear();
    }

    /// The current entries, in the order added.
    ///
    /// ```
    /// let ip = asyncapy::filters::Ip::new(["10.0.0.0/8", "::1"])?;
    /// let shown: Vec<String> = ip.handle().entries().iter().map(ToString::to_string).collect();
    /// assert_eq!(shown, ["10.0.0.0/8", "::1"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn entries(&self) -> Vec<IpNet> {
        self.read().clone()
    }

    /// Whether `ip` passes the filter.
    ///
    /// ```
    /// let ip = asyncapy::filters::Ip::new(["127.0.0.0/8"])?;
    /// assert!(ip.handle().contains("127.0.0.2".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = canonical(ip);
        self.read().iter().any(|net| net.contains_bits(bits))
    }

    // Writers never run user code under the lock and leave the list whole: a
    // poisoned lock is safe to keep using.
    fn read(&self) -> RwLockReadGuard<'_, Vec<IpNet>> {
        self.nets.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Vec<IpNet>> {
        self.nets.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for IpHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.read().iter()).finish()
    }
}

fn parse_all<I, S>(entries: I) -> Result<Vec<IpNet>, IpNetError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    entries.into_iter().map(|e| e.as_ref().parse()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn the_filter_names_the_bad_entry() {
        let err = Ip::new(["127.0.0.1", "::1", "10.0.0.0/40"]).unwrap_err();
        assert_eq!(err.entry(), "10.0.0.0/40");
        assert!(err.to_string().contains("\"10.0.0.0/40\""));
    }

    #[test]
    fn the_handle_changes_the_filter() {
        let filter = Ip::new(["127.0.0.1"]).unwrap();
        let handle = filter.handle();
        let other = handle.clone();
        assert!(filter.contains(ip("127.0.0.1")));
        assert!(!filter.contains(ip("127.0.0.2")));
        assert!(other.add("127.0.0.2").unwrap());
        assert!(filter.contains(ip("127.0.0.2")));
        assert!(handle.remove("127.0.0.1").unwrap());
        assert!(!handle.remove("127.0.0.1").unwrap());
        assert!(!filter.contains(ip("127.0.0.1")));
        assert!(handle.add("nope").is_err());
        assert!(handle.replace(["::1", "1.2.3.4/99"]).is_err());
        assert_eq!(handle.entries(), vec![net("127.0.0.2")]);
        handle.replace(["::1", "::1", "10.0.0.0/8"]).unwrap();
        assert_eq!(handle.entries(), vec![net("::1"), net("10.0.0.0/8")]);
        assert!(filter.contains(ip("::ffff:10.9.9.9")));
        handle.clear();
        assert!(!filter.contains(ip("::1")));
        assert_eq!(format!("{handle:?}"), "[]");
    }
}
