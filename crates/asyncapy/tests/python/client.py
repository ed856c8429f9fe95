"""A Python AsyncAProto client against a server under test: sends packets,
one byte at a time for one of them, pipelined for others, and checks every
echo. Exits 0 and prints OK on success."""

import argparse
import socket
import sys

from asyncaproto import frame, read_frame

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--encoding", choices=["json", "ziproto"], default="json")
parser.add_argument("--header-size", type=int, default=4)
parser.add_argument("--byteorder", choices=["big", "little"], default="big")
args = parser.parse_args()
layout = dict(header_size=args.header_size, byteorder=args.byteorder)

packets = [
    {"foo": "bar"},
    {"test": 1},
    {},
    {"int": -129, "big": 2**63 + 5, "float": 1.5, "t": True, "f": False, "n": None},
    {"text": "h\u00e9llo \u2603 \U0001F600", "list": [1, [2, [3, "x"]]], "nested": {"a": {"b": {}}}},
]

with socket.create_connection(("127.0.0.1", args.port), timeout=10) as sock:
    # One at a time; the first one trickled byte by byte.
    first = frame(packets[0], args.encoding, **layout)
    for b in first:
        sock.sendall(bytes([b]))
    reply = read_frame(sock, **layout)
    assert reply == (args.encoding, packets[0]), reply
    # The rest pipelined in one write.
    sock.sendall(b"".join(frame(p, args.encoding, **layout) for p in packets[1:]))
    for p in packets[1:]:
        reply = read_frame(sock, **layout)
        assert reply == (args.encoding, p), (reply, p)

# A malformed header gets the documented failure reply, in JSON.
with socket.create_connection(("127.0.0.1", args.port), timeout=10) as sock:
    sock.sendall((4).to_bytes(args.header_size, args.byteorder) + b"\x15\x00{}")
    reply = read_frame(sock, **layout)
    assert reply == ("json", {"status": "failure", "error": "ERR_HEADER_INVALID"}), reply
    assert read_frame(sock, **layout) is None

print("OK")
sys.exit(0)
