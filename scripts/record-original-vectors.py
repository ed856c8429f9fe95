#!/usr/bin/env python3
"""Records what the original AsyncAPY 0.5 (Python) puts on the wire, as test vectors.

    python3 scripts/record-original-vectors.py ORIGINAL_SRC_DIR [OUT] [--commit ID] [--tls-port PORT]

ORIGINAL_SRC_DIR is a checkout of the original AsyncAPY (the directory that holds its
`asyncapy/` package); it is put on sys.path, nothing is installed from it. The
Python running this script needs the original's own requirements (trio, ziproto).
It is never fetched by CI and none of it is committed: only the recorded bytes are,
in OUT (default crates/asyncapy/tests/vectors/original-0.5.json), which
crates/asyncapy/tests/original_vectors.rs replays against our server.

What it does:
  * starts the original's `Server` (its own class and connection handler, with the
    apps below: an echo written like the seed's hello world, a filtered app, a
    session-limit app) in a child process per configuration, listening on a free
    loopback port (trio.serve_tcp on port 0, as the original's _serve_forever calls
    it, with the port reported back on stdout);
  * sends each case's request bytes over a raw socket and records the exact bytes
    the original replied, and how the connection ended: closed by the server,
    reset, or still open when the case's bound ran out;
  * points the original client (`asyncapy.client.Client`, tls=False) at a
    recording socket and records what it sends;
  * with --tls-port, runs the original client with tls=True against a TLS server
    already listening on 127.0.0.1:PORT (e.g. `asyncapy serve --tls-self-signed
    --port PORT`) and records whether the echo came back.

Each case runs twice; a case whose two recordings differ fails the script.
How a case compares with our server (equal bytes, or a documented difference and
our expected bytes) is declared here, per case, and checked by the Rust test.
"""

import argparse
import functools
import importlib.metadata
import json
import os
import platform
import queue
import socket
import subprocess
import sys
import threading
import time

DEFAULT_OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..", "crates", "asyncapy", "tests", "vectors", "original-0.5.json",
)

# --------------------------------------------------------------------------
# The original's side: a child process serving one configuration.
# --------------------------------------------------------------------------


def serve(src, cfg):
    """Child process: the original Server with app cfg["app"]; prints the port."""
    sys.path.insert(0, src)
    import logging

    import trio
    from asyncapy import Server
    from asyncapy.filters import Filters

    logging.basicConfig(level=logging.CRITICAL + 1)
    server = Server(
        addr="127.0.0.1",
        port=0,
        timeout=cfg["timeout"],
        header_size=cfg["header_size"],
        byteorder=cfg["byteorder"],
        session_limit=cfg["session_limit"],
    )

    async def echo_server(client, packet):
        await client.send(packet)
        await client.close()

    if cfg["app"] == "echo":
        server.register_handler(echo_server)
    elif cfg["app"] == "routes":
        # Only packets whose key set is exactly {"foo"} or exactly {"fail"}
        # find a handler (Fields is strict in the original).
        server.register_handler(echo_server, Filters.Fields(foo=None))

        async def failing(client, packet):
            raise RuntimeError("a handler failure")

        server.register_handler(failing, Filters.Fields(fail=None))
    elif cfg["app"] == "hold":
        # Echo, but a packet with a "hold" key is answered only once the
        # recorder says so on stdin: its session stays registered meanwhile.
        async def hold(client, packet):
            if "hold" in packet:
                print("held", flush=True)
                await trio.to_thread.run_sync(sys.stdin.readline)
            await echo_server(client, packet)

        server.register_handler(hold)
    else:
        raise SystemExit(f"unknown app {cfg['app']}")

    async def main():
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, server._handle_client, 0, host="127.0.0.1")
            )
            port = listeners[0].socket.getsockname()[1]
            print(f"listening on {port}", flush=True)

    trio.run(main)


class OriginalServer:
    def __init__(self, script, src, cfg):
        self.proc = subprocess.Popen(
            [sys.executable, script, "--serve", src, json.dumps(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        line = self.expect_line("listening on ", 30)
        self.port = int(line.split()[-1])

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def expect_line(self, prefix, bound):
        try:
            line = self.lines.get(timeout=bound)
        except queue.Empty:
            raise SystemExit(f"the original server said nothing within {bound} s")
        if line is None or not line.startswith(prefix):
            raise SystemExit(f"the original server said {line!r}, not {prefix!r}")
        return line

    def tell(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


# --------------------------------------------------------------------------
# Bytes on the wire.
# --------------------------------------------------------------------------


def frame(body, enc=0, hs=4, bo="big", version=22, length=None):
    """A frame as PROTOCOL.md §1 draws it (length may be forced)."""
    n = len(body) + 2 if length is None else length
    return n.to_bytes(hs, bo) + bytes([version, enc]) + body


def jdump(obj):
    return json.dumps(obj).encode()


def zstr(s):
    b = s.encode()
    if len(b) < 32:
        return bytes([0xA0 | len(b)]) + b
    if len(b) < 256:
        return b"\xd9" + bytes([len(b)]) + b
    return b"\xda" + len(b).to_bytes(2, "big") + b


def zmap(pairs):
    assert len(pairs) < 16
    return bytes([0x80 | len(pairs)]) + b"".join(zstr(k) + v for k, v in pairs)


def zarr(items):
    assert len(items) < 16
    return bytes([0x90 | len(items)]) + b"".join(items)


def failure_body(code, enc):
    obj = {"status": "failure", "error": code}
    if enc == 0:
        return jdump(obj)
    return zmap([("status", zstr("failure")), ("error", zstr(code))])


def exchange(port, chunks, pause, shutdown_write, bound):
    """Sends chunks (pausing between them), then reads until the server closes
    or `bound` seconds pass. Returns (reply bytes, how it ended)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for i, chunk in enumerate(chunks):
            if i and pause:
                time.sleep(pause)
            sock.sendall(chunk)
        if shutdown_write:
            sock.shutdown(socket.SHUT_WR)
        return read_to_end(sock, bound)
    finally:
        sock.close()


def read_to_end(sock, bound):
    data = b""
    deadline = time.monotonic() + bound
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, "open"
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data, "open"
        except ConnectionResetError:
            return data, "reset"
        if not chunk:
            return data, "closed"
        data += chunk


def outcome(reply, end, hs, bo):
    """A label for what the original did, which the Rust test re-derives from the bytes."""
    import ziproto

    if not reply:
        what = "no reply"
    else:
        n = int.from_bytes(reply[:hs], bo)
        body = reply[hs + 2:]
        enc = reply[hs + 1]
        if len(body) != n - 2:
            what = "bytes that are not one frame"
        else:
            try:
                obj = json.loads(body) if enc == 0 else ziproto.decode(body)
            except Exception:
                obj = None
            encname = "json" if enc == 0 else "ziproto"
            if isinstance(obj, dict) and obj.get("status") == "failure" and isinstance(obj.get("error"), str):
                what = f"{obj['error']} in {encname}"
            else:
                what = f"a reply in {encname}"
    return f"{what}, then {end}"


# --------------------------------------------------------------------------
# The servers and the cases.
# --------------------------------------------------------------------------

SERVERS = {
    "echo": dict(app="echo", header_size=4, byteorder="big", timeout=10, session_limit=0),
    "echo_t1": dict(app="echo", header_size=4, byteorder="big", timeout=1, session_limit=0),
    "echo_h4_little": dict(app="echo", header_size=4, byteorder="little", timeout=10, session_limit=0),
    "echo_h2_big": dict(app="echo", header_size=2, byteorder="big", timeout=10, session_limit=0),
    "echo_h2_little": dict(app="echo", header_size=2, byteorder="little", timeout=10, session_limit=0),
    "echo_h8_big": dict(app="echo", header_size=8, byteorder="big", timeout=10, session_limit=0),
    "echo_h1_big": dict(app="echo", header_size=1, byteorder="big", timeout=10, session_limit=0),
    "routes": dict(app="routes", header_size=4, byteorder="big", timeout=10, session_limit=0),
    "limit1": dict(app="hold", header_size=4, byteorder="big", timeout=10, session_limit=1),
}

# Reasons, quoted from PROTOCOL.md, for the differences it documents.
R_PERSISTENT = ("PROTOCOL.md §3: the original closes the connection after dispatching each packet; "
                "we follow the documentation: a session carries any number of packets")
R_EMPTY = ("PROTOCOL.md §2 (Decided): the empty map {} is a valid payload (the original refused any "
           "payload under 3 bytes, an accident of its length check)")
R_NO_REPLY = ("PROTOCOL.md §4: the original sends no reply at all for invalid UTF-8, a non-object "
                   "JSON top level, or a handler exception")
R_NO_HANDLER = ("PROTOCOL.md §4: when no handler in any group runs for a packet, the client must not be "
                "left waiting in silence: reply with a failure packet")
R_HANDLER_FAILED = ("PROTOCOL.md §4: a handler that fails must not take the server down: log it, reply a "
                    "failure packet without internal details, close that session (the original sends no "
                    "reply for a handler exception)")
R_DECIDED = ("PROTOCOL.md §2 (Decided): trailing bytes after the value, JSON NaN/Infinity, duplicate keys in "
             "one map, and nesting deeper than 128 levels are malformed, in both encodings")
R_MAP16 = ("PROTOCOL.md §2: the original's ZiProto decoder (ziproto 1.0) cannot decode map16/array16: a bug; "
           "ours decodes every format listed")
R_NO_JSON_FORM = ("PROTOCOL.md §2: a ZiProto value with no JSON form (binary, non-string map keys) needs a "
                  "documented rule in our data model (asyncaproto::value: binary round-trips, a non-string "
                  "key is malformed); the original dies on binary (no reply) and turns int keys into strings")
R_BIG_FRAME = ("PROTOCOL.md §4: the original silently drops any frame over 1 KiB (here: nothing, then "
               "ERR_TIMED_OUT at its timeout)")
R_SPLIT = ("PROTOCOL.md §4: the original silently drops any frame split after its 5th byte (here: nothing, "
           "then ERR_TIMED_OUT at its timeout)")
R_TWO = ("PROTOCOL.md §4: the original drops two frames sent in one write (here: nothing, then ERR_TIMED_OUT "
         "at its timeout)")
R_MID_FRAME = ("PROTOCOL.md §4: the original spins at 100% CPU when a client closes mid-frame (until its "
               "timeout, then it writes ERR_TIMED_OUT to the half-closed socket); ours ends the session")
# Differences PROTOCOL.md does not document (reported; the test asserts ours).
U_SHORT_CL = ("not in PROTOCOL.md: for Content-Length < 2 the original answers ERR_REQUEST_MALFORMED (its "
              "'under 5 bytes' check); PROTOCOL.md §7 has us answer ERR_HEADER_INVALID, without saying the "
              "original differs")
U_SHORT_VERSION = ("not in PROTOCOL.md: the original checks the length (payload under 3 bytes) before the "
                   "Protocol-Version byte, so a bad version on a short packet is ERR_REQUEST_MALFORMED there, "
                   "ERR_HEADER_INVALID here")
U_CL2_ZIPROTO = ("not in PROTOCOL.md: the original's 'too short' reply is always JSON; PROTOCOL.md §7 has "
                 "ERR_REQUEST_MALFORMED in the packet's declared encoding (ZiProto here)")
U_FALSY = ("not in PROTOCOL.md: a payload that decodes to an empty or falsy value of 3 bytes or more "
           "({ }, [ ], 0) is neither dispatched nor refused by the original: the session waits, and its "
           "timeout answers ERR_TIMED_OUT")
U_RANGE = ("not in PROTOCOL.md (asyncaproto::value data-model rules): Python's json accepts integers "
           "beyond 64 bits, lone surrogate escapes and overflowing floats (written back as Infinity); ours "
           "refuses them as malformed")


REASONS = {k[2:].lower(): v for k, v in list(globals().items()) if k[:2] in ("R_", "U_")}
REASON_IDS = {v: k for k, v in REASONS.items()}

CASES = []


def case(name, server, request, note, ours=None, pause=0.0, shutdown_write=False):
    """request: bytes, or a list of byte chunks sent with `pause` seconds between
    them. ours: None when our reply must equal the original's byte for byte;
    else (reason, reply bytes, "closed" | "open") for a difference."""
    chunks = request if isinstance(request, list) else [request]
    CASES.append(dict(name=name, server=server, chunks=chunks, note=note, ours=ours,
                      pause=pause, shutdown_write=shutdown_write))


def echo_of(body, enc=0, hs=4, bo="big"):
    return frame(body, enc, hs, bo)


def fail(code, enc=0, hs=4, bo="big"):
    return frame(failure_body(code, enc), enc, hs, bo)


def build_cases():
    j = lambda body: frame(body, 0)  # noqa: E731
    z = lambda body: frame(body, 1)  # noqa: E731

    # Ordinary echoes, JSON.
    case("json_seed_test", "echo", j(b'{"test": 1}'), "the seed's hello-world packet")
    case("json_foo_bar", "echo", j(b'{"foo": "bar"}'), "PROTOCOL.md §1's example frame")
    case("json_nested", "echo",
         j(b'{"a": {"b": {"c": [1, [2, [3, {}]], []]}}, "list": [{"x": null}], "e": {}}'),
         "nested maps and lists, empty ones inside")
    case("json_unicode_raw", "echo",
         j('{"text": "h\u00e9llo \u2603 \U0001F600", "cl\u00e9": "\u4e2d\u6587"}'.encode()),
         "raw UTF-8 in, \\u escapes out (ensure_ascii), a surrogate pair above U+FFFF")
    case("json_unicode_escaped", "echo",
         j(b'{"a": "\\u00e9\\ud83d\\ude00\\u2603", "b": "\\/\\b\\f"}'),
         "escapes in, the same escapes out; \\/ comes back as /")
    case("json_string_escapes", "echo",
         j(b'{"s": "quote \\" backslash \\\\ slash / nl \\n cr \\r tab \\t ctl \\u001f del \x7f"}'),
         "control characters as \\u00XX, DEL (0x7f) raw")
    case("json_integers", "echo",
         j(b'{"zero": 0, "neg": -1, "minus_zero": -0, "i64max": 9223372036854775807, '
           b'"i64min": -9223372036854775808, "u64max": 18446744073709551615, "big": 9223372036854775813}'),
         "integers at the i64/u64 edges; -0 is 0")
    case("json_floats", "echo",
         j(b'{"a": 1.5, "b": 0.1, "c": 1.0, "d": -0.0, "e": 1e-5, "f": 1e16, "g": 1.5e300, '
           b'"h": 123456789.123, "i": 1E2, "j": 5e-324, "k": 0.0001, "l": 1234567890123456.0, "m": 2.5E-10}'),
         "floats written as Python's repr: 1e-05, 1e+16, 100.0, 5e-324")
    case("json_bool_null", "echo", j(b'{"t": true, "f": false, "n": null, "l": [true, false, null]}'),
         "true, false, null")
    case("json_whitespace", "echo", j(b' { "a" :1 ,\n\t"b":[ 1,2 ] , "c":{ } }  \r\n'),
         "whitespace around everything, before and after the value: normalised on the way out")
    case("json_key_order", "echo", j(b'{"z": 1, "a": 2, "m": 3, "b": 4}'), "keys keep their order")
    case("json_three_byte_min", "echo", j(b'{"":0}'), "a 6-byte payload with an empty key")
    case("json_trickled", "echo", [bytes([b]) for b in j(b'{"test": 1}')],
         "one byte every 50 ms (the original's own test does this at 100 ms)", pause=0.05)
    case("json_empty_map", "echo", j(b"{}"), "{}: a 2-byte payload",
         ours=(R_EMPTY, echo_of(b"{}"), "open"))

    # Failures, JSON and framing.
    case("bad_version", "echo", frame(b'{"a": 1}', version=21), "Protocol-Version 21")
    case("bad_version_255", "echo", frame(b'{"a": 1}', version=255), "Protocol-Version 255")
    case("bad_version_ziproto", "echo", frame(zmap([("a", b"\x01")]), enc=1, version=23),
         "a bad Protocol-Version on a ZiProto packet: the reply is JSON")
    case("bad_encoding_2", "echo", frame(b'{"a": 1}', enc=2), "Content-Encoding 2")
    case("bad_encoding_255", "echo", frame(b'{"a": 1}', enc=255), "Content-Encoding 255")
    case("bad_version_short", "echo", frame(b"{}", version=21), "Protocol-Version 21 on a 2-byte payload",
         ours=(U_SHORT_VERSION, fail("ERR_HEADER_INVALID"), "closed"))
    case("content_length_0", "echo", (0).to_bytes(4, "big"), "Content-Length 0, nothing after it",
         ours=(U_SHORT_CL, fail("ERR_HEADER_INVALID"), "closed"))
    case("content_length_1", "echo", (1).to_bytes(4, "big") + b"\x16", "Content-Length 1",
         ours=(U_SHORT_CL, fail("ERR_HEADER_INVALID"), "closed"))
    case("content_length_2", "echo", frame(b""), "Content-Length 2: headers, no payload")
    case("content_length_2_ziproto", "echo", frame(b"", enc=1), "Content-Length 2, ZiProto declared",
         ours=(U_CL2_ZIPROTO, fail("ERR_REQUEST_MALFORMED", 1), "closed"))
    case("json_one_byte", "echo", j(b"1"), "a 1-byte payload")
    case("malformed_json", "echo", j(b'{"a": }'), "not JSON")
    case("malformed_json_truncated", "echo", j(b'{"a": [1, 2'), "truncated JSON")
    case("json_trailing_garbage", "echo", j(b'{"a": 1} x'), "a value and then more")
    case("json_two_values", "echo", j(b'{"a": 1}{"b": 2}'), "two JSON values in one payload")
    case("json_single_quotes", "echo", j(b"{'a': 1}"), "not JSON: single quotes")
    case("json_top_list", "echo", j(b"[1, 2, 3]"), "a JSON list at the top",
         ours=(R_NO_REPLY, fail("ERR_REQUEST_MALFORMED"), "closed"))
    case("json_top_string", "echo", j(b'"abc"'), "a JSON string at the top",
         ours=(R_NO_REPLY, fail("ERR_REQUEST_MALFORMED"), "closed"))
    case("json_top_number", "echo", j(b"123"), "a JSON number at the top",
         ours=(R_NO_REPLY, fail("ERR_REQUEST_MALFORMED"), "closed"))
    case("invalid_utf8", "echo", j(b'{"a": "\xff\xfe"}'), "invalid UTF-8 inside a string",
         ours=(R_NO_REPLY, fail("ERR_REQUEST_MALFORMED"), "closed"))
    case("invalid_utf8_key", "echo", j(b'{"\xc3": 1}'), "a truncated UTF-8 sequence in a key",
         ours=(R_NO_REPLY, fail("ERR_REQUEST_MALFORMED"), "closed"))
    case("json_nan", "echo", j(b'{"a": NaN, "b": -Infinity}'), "Python's NaN and Infinity literals",
         ours=(R_DECIDED, fail("ERR_REQUEST_MALFORMED"), "closed"))
    case("json_duplicate_keys", "echo", j(b'{"a": 1, "a": 2}'), "one key twice",
         ours=(R_DECIDED, fail("ERR_REQUEST_MALFORMED"), "closed"))
    case("json_depth_129", "echo", j(b'{"a": ' + b"[" * 128 + b"]" * 128 + b"}"),
         "129 levels of nesting (the map is level 1)",
         ours=(R_DECIDED, fail("ERR_REQUEST_MALFORMED"), "closed"))
    case("json_depth_128", "echo", j(b'{"a": ' + b"[" * 127 + b"]" * 127 + b"}"),
         "128 levels: within our limit")
    case("json_int_beyond_u64", "echo", j(b'{"a": 18446744073709551616}'), "2**64",
         ours=(U_RANGE, fail("ERR_REQUEST_MALFORMED"), "closed"))
    case("json_lone_surrogate", "echo", j(b'{"a": "\\ud800"}'), "a lone surrogate escape",
         ours=(U_RANGE, fail("ERR_REQUEST_MALFORMED"), "closed"))
    case("json_float_overflow", "echo", j(b'{"a": 1e400}'), "a float beyond f64",
         ours=(U_RANGE, fail("ERR_REQUEST_MALFORMED"), "closed"))

    # ZiProto.
    case("zi_foo_bar", "echo", z(zmap([("foo", zstr("bar"))])), "PROTOCOL.md §1's ZiProto example")
    types = zmap([
        ("nil", b"\xc0"), ("t", b"\xc3"), ("f", b"\xc2"),
        ("fix", b"\x7f"), ("negfix", b"\xe0"),
        ("u8", b"\xcc\xc8"), ("u16", b"\xcd\x01\x2c"), ("u32", b"\xce\x00\x01\x11\x70"),
        ("u64", b"\xcf\x80\x00\x00\x00\x00\x00\x00\x05"),
        ("i8", b"\xd0\xdf"), ("i16", b"\xd1\xff\x00"), ("i32", b"\xd2\xff\xff\x00\x00"),
        ("i64", b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
        ("f64", b"\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00"),
    ])
    case("zi_scalars", "echo", z(types), "every scalar format, each in its smallest form")
    case("zi_non_minimal", "echo",
         z(zmap([("a", b"\xcc\x05"), ("b", b"\xd3\xff\xff\xff\xff\xff\xff\xff\xff"),
                 ("c", b"\xcf\x00\x00\x00\x00\x00\x00\x01\x00"), ("d", b"\xd9\x01x")])),
         "integers and a string in larger forms than needed: written back in the smallest")
    case("zi_float32", "echo", z(zmap([("a", b"\xca\x3f\xc0\x00\x00"), ("b", b"\xca\x3d\xcc\xcc\xcd")])),
         "float32 in, float64 out")
    case("zi_floats", "echo",
         z(zmap([("one", b"\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"), ("negzero", b"\xcb\x80" + b"\x00" * 7),
                 ("tiny", b"\xcb" + (1).to_bytes(8, "big"))])),
         "1.0, -0.0 and the smallest subnormal as float64")
    case("zi_strings", "echo",
         z(zmap([("s31", zstr("x" * 31)), ("s40", zstr("y" * 40)), ("s260", zstr("z" * 260)),
                 ("u", zstr("h\u00e9llo \u2603 \U0001F600")), ("e", zstr(""))])),
         "fixstr, str8, str16, UTF-8, empty")
    case("zi_nested", "echo",
         z(zmap([("a", zmap([("b", zarr([b"\x01", zarr([b"\x02", zmap([])]), b"\x90"]))])),
                 ("l", zarr([zmap([("x", b"\xc0")])]))])),
         "nested maps and arrays, empty ones inside")
    case("zi_min_payload", "echo", z(zmap([("", b"\xc0")])), "a 3-byte map: {\"\": nil}")
    case("zi_truncated", "echo", z(b"\x82\xa1a\x01\xa1b"), "a map cut short")
    case("zi_c1", "echo", z(b"\x81\xa1a\xc1"), "the never-used byte c1")
    case("zi_ext", "echo", z(b"\x81\xa1a\xd4\x01\x02"), "an ext type (fixext1)")
    case("zi_top_array", "echo", z(b"\x93\x01\x02\x03"), "an array at the top")
    case("zi_top_int", "echo", z(b"\xcd\x01\x00"), "an integer at the top")
    case("zi_empty_map", "echo", z(b"\x80"), "the empty map: a 1-byte payload",
         ours=(R_EMPTY, echo_of(b"\x80", 1), "open"))
    case("zi_trailing", "echo", z(b"\x81\xa1a\x01\xff\xff"), "a map and then more bytes",
         ours=(R_DECIDED, fail("ERR_REQUEST_MALFORMED", 1), "closed"))
    case("zi_duplicate_keys", "echo", z(b"\x82\xa1a\x01\xa1a\x02"), "one key twice",
         ours=(R_DECIDED, fail("ERR_REQUEST_MALFORMED", 1), "closed"))
    case("zi_nan", "echo", z(zmap([("a", b"\xcb\x7f\xf8" + b"\x00" * 6)])), "a float64 NaN",
         ours=(R_DECIDED, fail("ERR_REQUEST_MALFORMED", 1), "closed"))
    case("zi_depth_129", "echo", z(b"\x81\xa1a" + b"\x91" * 127 + b"\x90"), "129 levels of nesting",
         ours=(R_DECIDED, fail("ERR_REQUEST_MALFORMED", 1), "closed"))
    map16 = b"\xde\x00\x10" + b"".join(zstr(f"k{i:02}") + bytes([i]) for i in range(16))
    case("zi_map16", "echo", z(map16), "a map of 16 entries (map16)",
         ours=(R_MAP16, echo_of(map16, 1), "open"))
    case("zi_array16", "echo", z(b"\x81\xa1a\xdc\x00\x01\x01"), "a 1-entry array written as array16",
         ours=(R_MAP16, echo_of(b"\x81\xa1a\x91\x01", 1), "open"))
    case("zi_bin", "echo", z(b"\x81\xa1a\xc4\x02ab"), "a binary value",
         ours=(R_NO_JSON_FORM, echo_of(b"\x81\xa1a\xc4\x02ab", 1), "open"))
    case("zi_int_key", "echo", z(b"\x81\x01\xa1a"), "an integer map key",
         ours=(R_NO_JSON_FORM, fail("ERR_REQUEST_MALFORMED", 1), "closed"))

    # Header layouts: echoes and failures in each.
    for server, hs, bo in [("echo_h4_little", 4, "little"), ("echo_h2_big", 2, "big"),
                           ("echo_h2_little", 2, "little"), ("echo_h8_big", 8, "big"),
                           ("echo_h1_big", 1, "big")]:
        case(f"{server}_json", server, frame(b'{"foo": "bar", "n": [1, 2.5]}', 0, hs, bo), f"header {hs} {bo}")
        case(f"{server}_ziproto", server, frame(zmap([("foo", zstr("bar"))]), 1, hs, bo), f"header {hs} {bo}")
        case(f"{server}_bad_version", server, frame(b'{"a": 1}', 0, hs, bo, version=21),
             f"header {hs} {bo}: ERR_HEADER_INVALID in that layout")
        case(f"{server}_malformed_ziproto", server, frame(b"\x81\xa1a\xc1", 1, hs, bo),
             f"header {hs} {bo}: ERR_REQUEST_MALFORMED in ZiProto, that layout")
        case(f"{server}_malformed_json", server, frame(b'{"a": }', 0, hs, bo),
             f"header {hs} {bo}: ERR_REQUEST_MALFORMED in JSON, that layout")
    case("echo_h2_big_trickled", "echo_h2_big", [bytes([b]) for b in frame(b'{"test": 1}', 0, 2, "big")],
         "header 2 big, one byte every 50 ms", pause=0.05)

    # Timeouts (timeout = 1 s) and what the original leaves to its timeout.
    case("timeout_idle", "echo_t1", [], "connect and send nothing")
    case("timeout_partial_header", "echo_t1", b"\x00\x00", "half a Content-Length, then nothing")
    case("timeout_partial_body", "echo_t1", frame(b'{"abc": 1}')[:9], "a head and part of the body")
    case("timeout_partial_ziproto", "echo_t1", frame(zmap([("abc", b"\x01")]), 1)[:8],
         "part of a ZiProto packet: no session encoding yet, so JSON")
    case("json_spaced_empty_map", "echo_t1", j(b"{ }"), "{ } (3 bytes): empty, so falsy in Python",
         ours=(U_FALSY, echo_of(b"{}"), "open"))
    case("json_falsy_list", "echo_t1", j(b"[ ]"), "[ ] (3 bytes)",
         ours=(U_FALSY, fail("ERR_REQUEST_MALFORMED"), "closed"))
    case("zi_falsy_zero", "echo_t1", z(b"\x00\x00\x00"), "0 followed by two bytes: ziproto reads 0",
         )  # the original answers this one (not a dict) before the falsy check
    big = jdump({"big": "x" * 1030})
    case("big_frame", "echo_t1", j(big), "a 1,047-byte packet (the original reads 1,024 bytes at a time)", ours=(R_BIG_FRAME, echo_of(big), "open"))
    two = j(b'{"a": 1}') + j(b'{"b": 2}')
    case("two_frames_one_write", "echo_t1", two, "two packets in one write",
         ours=(R_TWO, echo_of(b'{"a": 1}') + echo_of(b'{"b": 2}'), "open"))
    split = j(b'{"split": 1}')
    case("split_after_6", "echo_t1", [split[:6], split[6:]], "the head, 200 ms, then the body", pause=0.2,
         ours=(R_SPLIT, echo_of(b'{"split": 1}'), "open"))
    case("close_mid_frame", "echo_t1", frame(b'{"abc": 1}')[:8], "part of a packet, then the client "
         "shuts down its write side", shutdown_write=True, ours=(R_MID_FRAME, b"", "closed"))

    # Dispatch: a filtered app (Fields(foo=None) echoes; Fields(fail=None) raises).
    case("routes_match", "routes", j(b'{"foo": "x"}'), "the filter passes: echo")
    case("routes_match_ziproto", "routes", z(zmap([("foo", zstr("x"))])), "the filter passes: echo")
    case("no_handler", "routes", j(b'{"bar": 1}'), "no handler takes it",
         ours=(R_NO_HANDLER, fail("ERR_NO_HANDLER"), "closed"))
    case("no_handler_extra_field", "routes", j(b'{"foo": "x", "bar": 1}'),
         "an extra field: strict Fields fails, no handler takes it",
         ours=(R_NO_HANDLER, fail("ERR_NO_HANDLER"), "closed"))
    case("no_handler_ziproto", "routes", z(zmap([("bar", b"\x01")])), "no handler takes it",
         ours=(R_NO_HANDLER, fail("ERR_NO_HANDLER", 1), "closed"))
    case("handler_fails", "routes", j(b'{"fail": 1}'), "the handler raises",
         ours=(R_HANDLER_FAILED, fail("ERR_HANDLER_FAILED"), "closed"))


def bound_for(server):
    return SERVERS[server]["timeout"] + 4


def record_cases(script, src, runs):
    servers = {name: OriginalServer(script, src, cfg) for name, cfg in SERVERS.items()}
    try:
        out = []
        for c in CASES:
            cfg = SERVERS[c["server"]]
            seen = []
            for _ in range(runs):
                seen.append(exchange(servers[c["server"]].port, c["chunks"], c["pause"],
                                     c["shutdown_write"], bound_for(c["server"])))
            if any(s != seen[0] for s in seen):
                raise SystemExit(f"{c['name']}: the original answered differently across runs: {seen}")
            reply, end = seen[0]
            entry = {
                "name": c["name"],
                "server": c["server"],
                "note": c["note"],
                "request": [chunk.hex() for chunk in c["chunks"]],
            }
            if c["pause"]:
                entry["pause_ms"] = int(c["pause"] * 1000)
            if c["shutdown_write"]:
                entry["shutdown_write"] = True
            entry["original"] = {
                "reply": reply.hex(),
                "then": end,
                "outcome": outcome(reply, end, cfg["header_size"], cfg["byteorder"]),
            }
            if c["ours"] is None:
                entry["compare"] = "equal"
                is_failure = " in " in entry["original"]["outcome"] and \
                    entry["original"]["outcome"].startswith("ERR_")
                entry["ours_then"] = "closed" if is_failure or not reply else "open"
            else:
                reason, ours_reply, ours_then = c["ours"]
                entry["compare"] = "undocumented" if reason.startswith("not in PROTOCOL.md") else "documented"
                entry["reason"] = REASON_IDS[reason]
                entry["ours"] = {
                    "reply": ours_reply.hex(),
                    "then": ours_then,
                    "outcome": outcome(ours_reply, ours_then, cfg["header_size"], cfg["byteorder"]),
                }
                if entry["ours"]["reply"] == entry["original"]["reply"] and ours_then == end:
                    raise SystemExit(f"{c['name']}: marked a difference, but the original does the same")
            out.append(entry)
            print(f"{c['name']:40} {entry['original']['outcome']}", file=sys.stderr)
        out_limit = record_session_limit(servers["limit1"])
        out_client = record_client(src, servers)
        return out, out_limit, out_client
    finally:
        for s in servers.values():
            s.stop()


def record_session_limit(server):
    """Two concurrent sessions from 127.0.0.1 with session_limit 1."""
    hold_req = frame(b'{"hold": true}')
    over_req = frame(b'{"over": 1}')
    first = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    first.sendall(hold_req)
    server.expect_line("held", 10)  # the first session is registered, its handler running
    over_reply, over_end = exchange(server.port, [over_req], 0, False, bound_for("limit1"))
    server.tell("release")
    hold_reply, hold_end = read_to_end(first, bound_for("limit1"))
    first.close()
    return {
        "server": "limit1",
        "note": "session_limit 1: a first session holds its packet in its handler; a second "
                "session from the same IP sends a packet; then the first is answered",
        "first_request": hold_req.hex(),
        "second_request": over_req.hex(),
        "original": {
            "second_reply": over_reply.hex(),
            "second_then": over_end,
            "second_outcome": outcome(over_reply, over_end, 4, "big"),
            "first_reply": hold_reply.hex(),
            "first_then": hold_end,
            "first_outcome": outcome(hold_reply, hold_end, 4, "big"),
        },
        "compare": "equal",
        "ours_first_then": "open",
        "reason_first_then": REASON_IDS[R_PERSISTENT],
    }


# --------------------------------------------------------------------------
# The original client.
# --------------------------------------------------------------------------

CLIENT_SENDS = [
    ("client_json_dict", dict(encoding="json"), {"test": 1}, "send(dict), JSON: the seed's example"),
    ("client_json_nested", dict(encoding="json"),
     {"text": "h\u00e9llo \U0001F600", "n": [1, 2.5, None, True], "m": {"k": -7}},
     "send(dict), JSON: unicode, numbers, nesting"),
    ("client_json_str", dict(encoding="json"), '{"foo": "bar"}',
     "send(str), JSON: the original client never encodes a str in JSON mode"),
    ("client_ziproto_dict", dict(encoding="ziproto"), {"foo": "bar", "n": 300, "f": 1.5, "l": [1, None]},
     "send(dict), ZiProto"),
    ("client_ziproto_str", dict(encoding="ziproto"), '{"foo": "bar", "x": [1, 2]}',
     "send(str), ZiProto: the string is parsed as JSON, then encoded"),
    ("client_json_h2_little", dict(encoding="json", header_size=2, byteorder="little"), {"test": 1},
     "send(dict), JSON, header 2 little"),
    ("client_ziproto_h2_little", dict(encoding="ziproto", header_size=2, byteorder="little"), {"test": 1},
     "send(dict), ZiProto, header 2 little"),
]


# The original echo servers that answer the original client's packets, by layout.
CLIENT_SERVERS = {(4, "big"): "echo", (2, "little"): "echo_h2_little"}


def record_client(src, servers):
    """The original client's packets, and the original echo server's answer to each."""
    sys.path.insert(0, src)
    from asyncapy.client import Client

    out = []
    for name, kwargs, payload, note in CLIENT_SENDS:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(10)
        client = Client(tls=False, timeout=10, **kwargs)
        client.connect("127.0.0.1", listener.getsockname()[1])
        conn, _ = listener.accept()
        error = None
        try:
            client.send(payload)
        except Exception as e:  # the original's own failure, recorded as a fact
            error = f"{type(e).__name__}: {e}"
        client.disconnect()
        sent, end = read_to_end(conn, 10)
        conn.close()
        listener.close()
        layout = dict(dict(encoding="json", header_size=4, byteorder="big"), **kwargs)
        entry = {
            "name": name,
            "note": note,
            "client": layout,
            "call": f"Client(tls=False, ...).send({payload!r})",
            "payload_json": payload if isinstance(payload, str) else json.dumps(payload),
            "sent": sent.hex(),
        }
        if error:
            entry["error"] = error
        else:
            server = CLIENT_SERVERS[(layout["header_size"], layout["byteorder"])]
            reply, end = exchange(servers[server].port, [sent], 0, False, bound_for(server))
            entry["original_server"] = {
                "server": server,
                "reply": reply.hex(),
                "then": end,
                "outcome": outcome(reply, end, layout["header_size"], layout["byteorder"]),
            }
        out.append(entry)
        print(f"{name:40} {len(sent)} bytes{' (' + error + ')' if error else ''}", file=sys.stderr)
    return out


def record_client_tls(src, port):
    sys.path.insert(0, src)
    import warnings

    from asyncapy.client import Client

    client = Client(tls=True, timeout=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client.connect("127.0.0.1", port)
    client.send({"tls": True})
    received = client.receive_raw()
    tls_version = client.sock.version()
    client.disconnect()
    sent = frame(jdump({"tls": True}))
    return {
        "note": "the original client, tls=True (ssl.wrap_socket, no verification, no SNI), against our "
                "TLS server (asyncapy serve --tls-self-signed) on 127.0.0.1, recorded once with this file",
        "tls_version": tls_version,
        "sent": sent.hex(),
        "received": received.hex(),
        "echoed": received == sent,
    }


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], json.loads(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", help="the original AsyncAPY's source directory")
    parser.add_argument("out", nargs="?", default=DEFAULT_OUT)
    parser.add_argument("--commit", help="the original's commit id (default: git rev-parse HEAD in src)")
    parser.add_argument("--tls-port", type=int, help="also run the original client with tls=True here")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    src = os.path.abspath(args.src)
    if not os.path.isfile(os.path.join(src, "asyncapy", "server.py")):
        raise SystemExit(f"{src} holds no asyncapy/server.py")
    commit = args.commit
    if not commit:
        try:
            commit = subprocess.run(["git", "-C", src, "rev-parse", "HEAD"], check=True,
                                    capture_output=True, text=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            raise SystemExit("give --commit: src is not a git checkout")
    setup_version = None
    with open(os.path.join(src, "setup.py")) as f:
        for line in f:
            if line.strip().startswith("version="):
                setup_version = line.split('"')[1]

    build_cases()
    cases, session_limit, client = record_cases(os.path.abspath(__file__), src, args.runs)
    client_tls = record_client_tls(src, args.tls_port) if args.tls_port else None
    if client_tls:
        here = os.path.dirname(os.path.abspath(__file__))
        try:
            ours = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], check=True,
                                  capture_output=True, text=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            ours = "unknown"
        client_tls["our_server_built_from"] = f"the work tree at commit {ours}"

    doc = {
        "about": "Wire bytes recorded from the original AsyncAPY (Python) by "
                 "scripts/record-original-vectors.py; replayed against our server by "
                 "crates/asyncapy/tests/original_vectors.rs. Hex strings are raw bytes.",
        "recorded_with": {
            "original": "github.com/intellivoid/AsyncAPY",
            "commit": commit,
            "setup_py_version": setup_version,
            "python": platform.python_version(),
            "trio": importlib.metadata.version("trio"),
            "ziproto": importlib.metadata.version("ziproto"),
            "requirements": "the original's requirements.txt names trio and ziproto, unpinned; "
                            "recorded with trio 0.17.0, the release current at the commit's date "
                            "(2021-01), which installs and runs on Python 3.11",
        },
        "rerecord": "python3 scripts/record-original-vectors.py ORIGINAL_SRC_DIR [--commit ID] [--tls-port PORT]",
        "fields": {
            "request": "byte chunks sent in order on one connection (pause_ms between them)",
            "original.then": "how the original's connection ended after its reply: closed, reset, or "
                             "open when the case's bound (the server's timeout + 4 s) ran out",
            "compare": "equal: our reply must be these bytes exactly; documented: PROTOCOL.md documents "
                       "the difference (reasons[reason]), ours must be ours.reply; undocumented: a "
                       "difference PROTOCOL.md does not document (reported), ours must be ours.reply",
            "ours_then": "for equal cases: closed after a failure reply; open after an echo, where the "
                         "original closed: reasons.persistent",
            "outcome": "a label for the bytes and the ending, which the Rust test derives again",
        },
        "reasons": REASONS,
        "servers": SERVERS,
        "cases": cases,
        "session_limit": session_limit,
        "original_client": client,
        "original_client_tls": client_tls,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(cases)} cases, {len(client)} client sends to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
