"""The original AsyncAPY client with tls=True, against a TLS server under test.

The original `asyncapy.client.Client` wraps its socket with
`ssl.wrap_socket(socket.socket())`: TLS with no certificate verification and
no SNI. Then it frames `json.dumps(payload)` with a 4-byte big-endian
Content-Length, Protocol-Version 22 and Content-Encoding 0. This script does
the same with the standard library only, and checks every echo. Exits 0 and
prints OK, how it wrapped the socket, the TLS version and the SHA-256
fingerprint of the server's certificate on success.

`ssl.wrap_socket` was removed in Python 3.12; there, an SSLContext with
CERT_NONE and check_hostname off does the same."""

import argparse
import hashlib
import json
import socket
import ssl
import sys
import warnings

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()


def wrap(sock):
    if hasattr(ssl, "wrap_socket"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return ssl.wrap_socket(sock), "ssl.wrap_socket"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context.wrap_socket(sock), "SSLContext(CERT_NONE)"


def frame(payload):
    body = json.dumps(payload).encode("utf-8")
    return (len(body) + 2).to_bytes(4, "big") + bytes([22, 0]) + body


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def receive(sock):
    length = int.from_bytes(recv_exact(sock, 4), "big")
    head = recv_exact(sock, 2)
    assert head == bytes([22, 0]), head
    return json.loads(recv_exact(sock, length - 2).decode("utf-8"))


packets = [
    {"foo": "bar"},
    {"test": 1, "text": "h\u00e9llo \u2603", "nested": {"list": [1, 2, 3]}},
    {"big": "x" * 100_000},
]

sock, how = wrap(socket.socket())
sock.settimeout(10)
sock.connect(("127.0.0.1", args.port))
for packet in packets:
    sock.sendall(frame(packet))
    reply = receive(sock)
    assert reply == packet, (reply, packet)
# Pipelined, as a batch.
sock.sendall(b"".join(frame({"n": n}) for n in range(10)))
for n in range(10):
    assert receive(sock) == {"n": n}
version = sock.version()
der = sock.getpeercert(binary_form=True)
fingerprint = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
sock.close()

print(f"OK {how} {version} {fingerprint}")
sys.exit(0)
