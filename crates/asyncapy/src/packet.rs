//! [`Packet`]: one decoded request or reply payload, with its encoding.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use asyncaproto::value::Error as ValueError;
use asyncaproto::{Encoding, Map, Spares, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::rejection::Rejection;

/// A payload map with the encoding it arrived in (or will be sent in).
///
/// A `Packet` behaves like a read-only map (it derefs to [`Map`]): `get`,
/// `contains_key`, `iter`, `len`, indexing with `packet["key"]`. Clones are cheap
/// and share the propagation flag, so a handler that calls
/// [`Packet::stop_propagation`] stops the packet for every later group.
///
/// ```
/// use asyncapy::Packet;
/// use asyncaproto::{Encoding, Map};
///
/// let mut map = Map::new();
/// map.insert("test", 1);
/// let packet = Packet::new(map, Encoding::Json);
/// assert_eq!(packet["test"].as_i64(), Some(1));
/// assert_eq!(packet.to_string(), r#"Packet({"test": 1})"#);
/// ```
#[derive(Clone)]
pub struct Packet {
    inner: Arc<Inner>,
}

struct Inner {
    map: Map,
    encoding: Encoding,
    stopped: AtomicBool,
}

impl Packet {
    /// A packet of `map` in `encoding`.
    pub fn new(map: Map, encoding: Encoding) -> Packet {
        Packet {
            inner: Arc::new(Inner {
                map,
                encoding,
                stopped: AtomicBool::new(false),
            }),
        }
    }

    /// The payload.
    pub fn map(&self) -> &Map {
        &self.inner.map
    }

    /// The encoding the packet arrived in.
    pub fn encoding(&self) -> Encoding {
        self.inner.encoding
    }

    /// Stops this packet from reaching handlers of later groups (the original's
    /// `packet.stop_propagation()`; unlike the original it does not close the session).
    pub fn stop_propagation(&self) {
        self.inner.stopped.store(true, Ordering::Relaxed);
    }

    /// Whether [`Packet::stop_propagation`] was called.
    pub fn is_propagation_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::Relaxed)
    }

    /// The payload, taken out without a copy when this is the only handle to it.
    pub fn into_map(self) -> Map {
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner.map,
            Err(shared) => shared.map.clone(),
        }
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.inner.map.get(key)
    }

    /// The payload as a Rust type, through serde (no copy of the payload).
    ///
    /// A packet that does not fit is a [`Rejection`]: returned from a handler
    /// (with `?`), it answers `ERR_REQUEST_MALFORMED`, the client's fault, and
    /// the log names the field. (A handler can also take the type as its
    /// argument: [`Payload<T>`](crate::extract::Payload).)
    ///
    /// ```
    /// use asyncapy::Packet;
    /// use asyncaproto::{Encoding, Map};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Login { user: String, remember: Option<bool> }
    ///
    /// let mut map = Map::new();
    /// map.insert("user", "ada");
    /// let login: Login = Packet::new(map, Encoding::Json).parse()?;
    /// assert_eq!(login.user, "ada");
    /// assert_eq!(login.remember, None);
    /// # Ok::<(), asyncapy::extract::Rejection>(())
    /// ```
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Rejection> {
        T::deserialize(&self.inner.map).map_err(|e| Rejection::malformed(e.to_string()))
    }

    /// A packet of any value that serializes to a map (a struct, a map...).
    ///
    /// ```
    /// use asyncapy::Packet;
    /// use asyncaproto::Encoding;
    ///
    /// #[derive(serde::Serialize)]
    /// struct Reply { status: &'static str, count: u32 }
    ///
    /// let packet = Packet::from_serialize(&Reply { status: "ok", count: 2 }, Encoding::Json)?;
    /// assert_eq!(packet.to_string(), r#"Packet({"status": "ok", "count": 2})"#);
    /// assert!(Packet::from_serialize(&[1, 2], Encoding::Json).is_err()); // not a map
    /// # Ok::<(), asyncaproto::value::Error>(())
    /// ```
    pub fn from_serialize<T: Serialize + ?Sized>(
        value: &T,
        encoding: Encoding,
    ) -> Result<Packet, ValueError> {
        match asyncaproto::to_value(value)? {
            Value::Map(map) => Ok(Packet::new(map, encoding)),
            other => Err(<ValueError as serde::ser::Error>::custom(format!(
                "a packet must be a map, not {}",
                other.kind()
            ))),
        }
    }
}

/// Reuse by the session loop: a packet nothing else holds any more gives
/// its allocations (the shared box, the map's strings and entries) to the
/// next packet of the batch.
impl Packet {
    /// Moves the map's allocations into `spares` and returns the emptied
    /// packet, if this is the last handle to it.
    pub(crate) fn recycle(mut self, spares: &mut Spares) -> Option<Packet> {
        let inner = Arc::get_mut(&mut self.inner)?;
        spares.reclaim(std::mem::take(&mut inner.map));
        Some(self)
    }

    /// A packet of `map`, in `shell` (an emptied packet from
    /// [`Packet::recycle`]) when there is one.
    pub(crate) fn refill(shell: Option<Packet>, map: Map, encoding: Encoding) -> Packet {
        let Some(mut packet) = shell else {
            return Packet::new(map, encoding);
        };
        match Arc::get_mut(&mut packet.inner) {
            Some(inner) => {
                inner.map = map;
                inner.encoding = encoding;
                *inner.stopped.get_mut() = false;
                packet
            }
            None => Packet::new(map, encoding),
        }
    }
}

impl Deref for Packet {
    type Target = Map;

    fn deref(&self) -> &Map {
        &self.inner.map
    }
}

/// Anything a handler can send as a payload: a [`Packet`], a [`Map`], or a
/// reference to either.
pub trait AsPayload {
    /// The payload map.
    fn as_payload(&self) -> &Map;
}

impl AsPayload for Map {
    fn as_payload(&self) -> &Map {
        self
    }
}

impl AsPayload for Packet {
    fn as_payload(&self) -> &Map {
        &self.inner.map
    }
}

impl<T: AsPayload + ?Sized> AsPayload for &T {
    fn as_payload(&self) -> &Map {
        (**self).as_payload()
    }
}

impl From<Map> for Packet {
    /// A JSON packet of `map`.
    fn from(map: Map) -> Packet {
        Packet::new(map, Encoding::Json)
    }
}

impl fmt::Display for Packet {
    /// `Packet({...})` with the payload as JSON, like the original's `str(packet)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut json = Vec::new();
        Encoding::Json
            .encode_map(&self.inner.map, &mut json)
            .map_err(|_| fmt::Error)?;
        write!(f, "Packet({})", String::from_utf8_lossy(&json))
    }
}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packet")
            .field("encoding", &self.inner.encoding)
            .field("map", &self.inner.map)
            .finish()
    }
}
