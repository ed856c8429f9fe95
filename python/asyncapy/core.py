"""The objects a handler gets: :class:`Client`, :class:`Packet`, :class:`Session`."""

import json
import uuid

from .errors import StopPropagation

__all__ = ["Client", "Packet", "Session", "Handler"]


class _Done:
    """An awaitable that is already finished: ``await client.send(...)`` and a
    bare ``client.send(...)`` both act at call time."""

    __slots__ = ("value",)

    def __init__(self, value=None):
        self.value = value

    def __await__(self):
        return self.value
        yield  # pragma: no cover - makes this a generator

    def __bool__(self):
        return bool(self.value)

    def __repr__(self):
        return f"<done: {self.value!r}>"


_SENT, _NOT_SENT, _NOTHING = _Done(True), _Done(False), _Done(None)


def _check_encoding(encoding):
    if not isinstance(encoding, str):
        raise ValueError("The encoding must be a string")
    if encoding not in ("json", "ziproto"):
        raise ValueError("The encoding must either be 'json' or 'ziproto'")


class Packet:
    """A packet: dict-like over its fields.

    ``Packet(fields, encoding, sender=None)`` takes a dict, a JSON string or
    JSON bytes. ``packet["key"]``, ``"key" in packet``, iteration, ``len``,
    ``get``, ``keys``, ``items`` and ``values`` read the fields;
    ``dict_payload`` is the dict itself and ``payload`` its JSON text.
    """

    __slots__ = ("dict_payload", "encoding", "sender")

    def __init__(self, fields, encoding="json", sender=None):
        _check_encoding(encoding)
        if isinstance(fields, dict):
            self.dict_payload = json.loads(json.dumps(fields))
        elif isinstance(fields, (bytes, bytearray)):
            self.dict_payload = json.loads(bytes(fields).decode("utf-8"))
        elif isinstance(fields, str):
            self.dict_payload = json.loads(fields)
        else:
            raise TypeError("fields must be a dict, a JSON string or JSON bytes")
        self.encoding = encoding
        self.sender = sender

    @classmethod
    def _from_engine(cls, fields, encoding, sender):
        packet = cls.__new__(cls)
        packet.dict_payload = fields
        packet.encoding = encoding
        packet.sender = sender
        return packet

    @property
    def payload(self):
        """The fields as JSON text."""
        return json.dumps(self.dict_payload)

    @property
    def length(self):
        """The length of :attr:`payload`, in characters (as the original)."""
        return len(self.payload)

    def stop_propagation(self):
        """Stops the packet reaching later groups (raises :class:`StopPropagation`).

        Works called plainly or awaited (``await packet.stop_propagation()``)."""
        raise StopPropagation()

    def __iter__(self):
        return iter(self.dict_payload)

    def __contains__(self, key):
        return key in self.dict_payload

    def __getitem__(self, key):
        return self.dict_payload[key]

    def __len__(self):
        return len(self.dict_payload)

    def get(self, key, default=None):
        """The field ``key``, or ``default``."""
        return self.dict_payload.get(key, default)

    def keys(self):
        """The field names."""
        return self.dict_payload.keys()

    def items(self):
        """The ``(name, value)`` pairs."""
        return self.dict_payload.items()

    def values(self):
        """The field values."""
        return self.dict_payload.values()

    def __eq__(self, other):
        if isinstance(other, Packet):
            return self.dict_payload == other.dict_payload
        if isinstance(other, dict):
            return self.dict_payload == other
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return f"Packet({json.dumps(self.dict_payload)})"


class Client:
    """The client of a session, as a handler sees it.

    ``address`` is the peer's IP address, ``session`` its :class:`Session`,
    ``encoding`` the session's encoding and ``server`` the :class:`Server`.
    ``str(client)`` gives ``Client(127.0.0.1)``.
    """

    __slots__ = ("_address", "server", "_encoding", "_peer", "_session", "_stream")

    def __init__(self, address, server=None, stream=None, session=None, encoding="json"):
        self._address = address
        self.server = server
        self._stream = stream
        self._session = session
        self._encoding = encoding
        self._peer = None

    @classmethod
    def _from_peer(cls, peer, server):
        # address and encoding are read from the engine when first asked for
        client = cls.__new__(cls)
        client.server = server
        client._peer = peer
        client._address = client._encoding = client._session = client._stream = None
        return client

    @property
    def address(self):
        """The peer's IP address."""
        if self._address is None and self._peer is not None:
            self._address = self._peer.address
        return self._address

    @address.setter
    def address(self, value):
        self._address = value

    @property
    def encoding(self):
        """The session's encoding, ``json`` or ``ziproto``."""
        if self._encoding is None and self._peer is not None:
            self._encoding = self._peer.encoding
        return self._encoding

    @encoding.setter
    def encoding(self, value):
        self._encoding = value

    @property
    def _server(self):
        return self.server

    @property
    def session(self):
        """This client's :class:`Session`."""
        if self._session is None and self._peer is not None:
            self._session = Session(uuid.UUID(self._peer.session_id), self, self._peer.started)
        return self._session

    @session.setter
    def session(self, value):
        self._session = value

    def send(self, packet, close=False):
        """Sends ``packet`` (a :class:`Packet` or a dict) in the session's
        encoding, then closes the session when ``close``.

        The packet is in the session's outbox when ``send`` returns: ``await
        client.send(p)`` and a plain ``client.send(p)`` both work. The result
        (awaited or not) is true when the packet was queued, false when the
        session is closed; nothing is raised for a closed session."""
        if isinstance(packet, Packet):
            fields = packet.dict_payload
        elif isinstance(packet, dict):
            fields = packet
        else:
            raise TypeError("send() takes a Packet or a dict")
        if self._peer is None:
            return _NOT_SENT
        return _SENT if self._peer.send(fields, close) else _NOT_SENT

    def close(self):
        """Closes the session once what was sent is written (awaitable too)."""
        if self._peer is not None:
            self._peer.close()
        return _NOTHING

    @property
    def closed(self):
        """Whether the session is closed or closing."""
        return self._peer is None or self._peer.closed

    def get_sessions(self):
        """The live :class:`Session` objects of this client's IP address."""
        if self._peer is None:
            return []
        return [Client._from_peer(p, self.server).session for p in self._peer.sessions()]

    def __repr__(self):
        return f"Client({self.address})"


class Session:
    """A session: ``session_id`` (a UUID), ``client`` and ``date`` (a timestamp)."""

    __slots__ = ("session_id", "client", "date")

    def __init__(self, session_id, client, date):
        self.session_id = session_id
        self.client = client
        self.date = date

    def close(self):
        """Closes the session (awaitable too)."""
        return self.client.close()

    def get_client(self):
        """The session's :class:`Client` (push to it: ``session.get_client().send(...)``)."""
        return self.client

    def __repr__(self):
        return f"Session({self.session_id})"

    def __str__(self):
        return str(self.session_id)

    def __hash__(self):
        return hash(self.session_id)

    def __eq__(self, other):
        return hash(self) == hash(other)


class Handler:
    """A handler function with its filters (what ``register_handler`` keeps)."""

    def __init__(self, function, filters=None):
        self.function = function
        self.filters = list(filters or [])

    def check(self, client, packet):
        """Whether every filter passes."""
        return all(f.check(client, packet) for f in self.filters)

    async def call(self, *args):
        """Runs the handler."""
        return await self.function(*args)

    def __repr__(self):
        return f"Handler({getattr(self.function, '__name__', self.function)!r})"
