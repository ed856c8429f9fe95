"""AsyncAProto framing written from the original AsyncAPY documentation (§1.5),
independently of the Rust code: Content-Length (header_size bytes, byteorder),
Protocol-Version 22, Content-Encoding 0 (JSON) or 1 (ZiProto), payload.
ZiProto payloads use the reference `ziproto` package from PyPI."""

import json
import socket

import ziproto


def encode(payload, encoding):
    if encoding == "json":
        return json.dumps(payload).encode("utf-8")
    return bytes(ziproto.encode(payload))


def decode(data, encoding):
    if encoding == "json":
        return json.loads(data.decode("utf-8"))
    return ziproto.decode(data)


def frame(payload, encoding, header_size=4, byteorder="big"):
    body = encode(payload, encoding)
    head = (len(body) + 2).to_bytes(header_size, byteorder)
    return head + bytes([22, 0 if encoding == "json" else 1]) + body


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def read_frame(sock, header_size=4, byteorder="big"):
    """Returns (encoding, payload) of the next frame, or None at a clean close."""
    first = sock.recv(1)
    if not first:
        return None
    head = first + recv_exact(sock, header_size + 1)
    length = int.from_bytes(head[:header_size], byteorder)
    version, enc = head[header_size], head[header_size + 1]
    assert version == 22, f"Protocol-Version {version}"
    assert enc in (0, 1), f"Content-Encoding {enc}"
    encoding = "json" if enc == 0 else "ziproto"
    body = recv_exact(sock, length - 2)
    return encoding, decode(body, encoding)
