"""A tiny Python AsyncAProto echo server (threads, one per connection),
written from the original documentation. Prints "listening on 127.0.0.1:PORT"
once bound; answers each packet with itself in the session's encoding (the
first packet's); runs until stdin closes."""

import argparse
import socket
import sys
import threading

from asyncaproto import encode, read_frame

parser = argparse.ArgumentParser()
parser.add_argument("--header-size", type=int, default=4)
parser.add_argument("--byteorder", choices=["big", "little"], default="big")
args = parser.parse_args()
layout = dict(header_size=args.header_size, byteorder=args.byteorder)


def serve(conn):
    session_encoding = None
    with conn:
        while True:
            try:
                got = read_frame(conn, **layout)
            except (ConnectionError, OSError):
                return
            if got is None:
                return
            encoding, payload = got
            session_encoding = session_encoding or encoding
            body = encode(payload, session_encoding)
            head = (len(body) + 2).to_bytes(args.header_size, args.byteorder)
            conn.sendall(head + bytes([22, 0 if session_encoding == "json" else 1]) + body)


listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
print(f"listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)


def accept_loop():
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


threading.Thread(target=accept_loop, daemon=True).start()
sys.stdin.read()  # the test closes our stdin to stop us
