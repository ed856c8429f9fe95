"""A synchronous client of AsyncAPY servers (the original's
``asyncapy.client.Client``), on the Rust blocking client: framing, TLS and the
payload codecs are the engine's, and the GIL is released while it waits on the
network."""

from . import _engine

__all__ = ["Client"]


class _Socket:
    """``client.sock``: the connection's raw byte stream, for what the
    original's users (and its test suite) do with the socket itself: write
    split or malformed frames, read raw bytes. Bytes go through TLS when the
    client uses it."""

    __slots__ = ("_client",)

    def __init__(self, client):
        self._client = client

    def _conn(self):
        conn = self._client._conn
        if conn is None or not conn.connected:
            raise OSError("the client is not connected")
        return conn

    def sendall(self, data):
        """Writes all of ``data``."""
        self._conn().send_bytes(bytes(data))

    def send(self, data):
        """Writes all of ``data``; returns its length."""
        data = bytes(data)
        self._conn().send_bytes(data)
        return len(data)

    def recv(self, bufsize):
        """Reads at most ``bufsize`` bytes (empty when the server closed)."""
        return self._conn().receive_bytes(int(bufsize))

    def gettimeout(self):
        """The client's timeout, in seconds (``None``: none)."""
        return self._client.timeout

    def close(self):
        """Closes the connection (as ``client.disconnect()``)."""
        self._client.disconnect()


class Client:
    """Connects to an AsyncAPY server and exchanges packets with it.

    ``byteorder`` (``"big"`` or ``"little"``) and ``header_size`` (1 to 8
    bytes: the original took any size, the engine's framing stops at a 64-bit
    Content-Length; other sizes raise ``ValueError``) describe the
    Content-Length field. ``tls`` wraps the connection in TLS without
    checking the server's certificate, as the original (default ``True``, as
    the original). ``encoding`` is ``"json"`` or ``"ziproto"``: the packets
    sent use the one set when ``send`` is called, so
    ``client.encoding = "ziproto"`` between sends works. ``timeout`` bounds
    connecting, each write and each read, in seconds (``None``: no bound).

    A timeout, a broken connection or a server that closes drops the
    connection (a late reply is never read as the next one's); calls then
    raise ``ConnectionError`` until the next ``connect``.
    """

    def __init__(self, byteorder="big", header_size=4, tls=True, encoding="json", timeout=60):
        if byteorder not in ("big", "little"):
            raise ValueError("byteorder must either be 'big' or 'little'!")
        if not isinstance(header_size, int) or isinstance(header_size, bool):
            raise ValueError("header_size must be an integer!")
        if not 1 <= header_size <= 8:
            raise ValueError("header_size must be between 1 and 8 bytes")
        if encoding not in ("json", "ziproto"):
            raise ValueError("The encoding must either be 'json' or 'ziproto'")
        self.byteorder = byteorder
        self.header_size = header_size
        self.tls = tls
        self.encoding = encoding
        self.timeout = timeout
        self._conn = None
        self.sock = None

    def connect(self, hostname, port):
        """Connects to ``hostname:port`` (closing any previous connection)."""
        if not isinstance(hostname, str):
            raise ValueError("address must be string!")
        if not isinstance(port, int):
            raise ValueError("port must be an integer!")
        self.disconnect()
        conn = _engine.SyncClient(
            self.header_size, self.byteorder, bool(self.tls), self.encoding, self.timeout
        )
        conn.connect(hostname, port)
        self._conn = conn
        self.sock = _Socket(self)

    def disconnect(self):
        """Closes the connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()

    def _connection(self):
        if self._conn is None:
            raise ConnectionError("not connected")
        return self._conn

    def send(self, payload):
        """Sends ``payload`` (a dict, or a JSON object as ``str``) as one
        packet, in :attr:`encoding`."""
        conn = self._connection()
        conn.set_encoding(self.encoding)
        conn.send(payload)

    def receive_raw(self):
        """Reads one packet; returns its bytes, head included (empty when the
        server closed the connection, as the original)."""
        return self._connection().receive_raw()

    def _split_packet(self, packet):
        """``(content_length, version, encoding, payload)`` of a raw packet."""
        size = self.header_size
        return (
            int.from_bytes(packet[0:size], self.byteorder),
            int.from_bytes(packet[size:size + 1], self.byteorder),
            int.from_bytes(packet[size + 1:size + 2], self.byteorder),
            packet[size + 2:],
        )

    def receive(self):
        """Reads one packet; returns its payload as a dict, decoded in the
        encoding its head names (a failure reply too:
        ``{"status": "failure", "error": "ERR_..."}``). Like the original, it
        prints the split packet (``(length, version, encoding, payload)``)."""
        raw, payload = self._connection().receive()
        print(self._split_packet(raw))
        return payload
