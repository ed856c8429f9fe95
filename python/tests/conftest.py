"""Fixtures: servers in subprocesses on free ports, ready when they say so."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
APPS = HERE / "apps"


class Running:
    """A server process: its port and its output so far."""

    def __init__(self, args, cwd):
        self.proc = subprocess.Popen(
            [sys.executable, "-u", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines = []
        self.ready = threading.Event()
        self.port = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self.ready.wait(30) or self.port is None:
            self.stop()
            raise RuntimeError("server did not start:\n" + self.output)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            if "{API main} Now serving at " in line and self.port is None:
                self.port = int(line.rsplit(":", 1)[1])
                self.ready.set()
        self.ready.set()

    @property
    def output(self):
        return "".join(self.lines)

    def signal(self, signum=signal.SIGINT):
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def wait(self, timeout=20):
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self):
        self.signal(signal.SIGINT)
        try:
            return self.wait()
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.wait()


@pytest.fixture
def serve():
    started = []

    def start(script, *args, cwd=None):
        path = Path(script)
        if not path.is_absolute():
            path = (EXAMPLES / script) if (EXAMPLES / script).exists() else (APPS / script)
        server = Running([str(path), *map(str, args)], cwd or path.parent)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def frame(payload, encoding=0, header_size=4, byteorder="big"):
    """One AsyncAProto V2 packet."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return (len(body) + 2).to_bytes(header_size, byteorder) + bytes([22, encoding]) + body


def read_frame(sock, header_size=4):
    """Reads one packet: (encoding, decoded payload)."""
    import ziproto

    def exact(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    length = int.from_bytes(exact(header_size), "big")
    body = exact(length)
    payload = body[2:]
    return body[1], (ziproto.decode(payload) if body[1] == 1 else json.loads(payload))


class Conn:
    """A raw connection speaking JSON packets."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def send(self, payload, encoding=0):
        self.sock.sendall(frame(payload, encoding))

    def recv(self):
        return read_frame(self.sock)[1]

    def request(self, payload):
        self.send(payload)
        return self.recv()

    def closed(self):
        """True when the server closed the connection (EOF)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


@pytest.fixture
def conn():
    opened = []

    def connect(port, timeout=10):
        c = Conn(port, timeout)
        opened.append(c)
        return c

    yield connect
    for c in opened:
        c.close()
