"""A synchronous client of AsyncAPY servers (the original's ``asyncapy.client.Client``)."""

import json
import socket
import ssl

import ziproto

__all__ = ["Client"]

_VERSION = 22  # protocol V2


class Client:
    """Connects to an AsyncAPY server and exchanges packets with it.

    ``byteorder`` and ``header_size`` describe the Content-Length field,
    ``tls`` wraps the socket in TLS (without certificate checks, as the
    original), ``encoding`` is ``json`` or ``ziproto`` and ``timeout`` the
    socket timeout in seconds.
    """

    def __init__(self, byteorder="big", header_size=4, tls=True, encoding="json", timeout=60):
        if byteorder not in ("big", "little"):
            raise ValueError("byteorder must either be 'little' or 'big'!")
        if not isinstance(header_size, int):
            raise ValueError("header_size must be an integer!")
        if encoding not in ("json", "ziproto"):
            raise ValueError("The encoding must either be 'json' or 'ziproto'")
        self.byteorder = byteorder
        self.header_size = header_size
        self.tls = tls
        self.encoding = encoding
        self.timeout = timeout
        self.sock = None

    def connect(self, host, port):
        """Connects to ``host:port``."""
        sock = socket.create_connection((host, port), timeout=self.timeout)
        if self.tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(sock, server_hostname=host)
        sock.settimeout(self.timeout)
        self.sock = sock

    def disconnect(self):
        """Closes the connection."""
        if self.sock is not None:
            self.sock.close()

    def _encode(self, payload):
        if self.encoding == "json":
            if isinstance(payload, dict):
                payload = json.dumps(payload)
            body = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
            encoding = 0
        else:
            if isinstance(payload, (str, bytes)):
                payload = json.loads(payload)
            body = ziproto.encode(payload)
            encoding = 1
        header = (len(body) + 2).to_bytes(self.header_size, self.byteorder)
        return header + bytes([_VERSION, encoding]) + body

    def send(self, payload):
        """Sends ``payload``: a dict, or a JSON string."""
        self.sock.sendall(self._encode(payload))

    def _recv_exact(self, size):
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("the server closed the connection")
            data += chunk
        return data

    def receive_raw(self):
        """Reads one packet; returns its bytes, header included."""
        header = self._recv_exact(self.header_size)
        length = int.from_bytes(header, self.byteorder)
        return header + self._recv_exact(length)

    def _split_packet(self, raw):
        """``(content_length, version, encoding, payload)`` of a raw packet."""
        length = int.from_bytes(raw[: self.header_size], self.byteorder)
        version = raw[self.header_size]
        encoding = raw[self.header_size + 1]
        payload = raw[self.header_size + 2 :]
        return length, version, encoding, payload

    def receive(self):
        """Reads one packet; returns its payload decoded (a dict)."""
        raw = self.receive_raw()
        split = self._split_packet(raw)
        print(split)
        _, _, encoding, payload = split
        if encoding == 1:
            return ziproto.decode(payload)
        return json.loads(payload)
