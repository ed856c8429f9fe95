"""Cross-checks with the Rust side: the `asyncapy send` binary against our
Python server, and our Python client against the Rust `asyncapy serve`."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from asyncapy import client as sync_client

ROOT = Path(__file__).resolve().parents[2]


def _binary():
    candidates = [os.environ.get("ASYNCAPY_BIN")]
    target = os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target")
    candidates += [str(Path(target) / "debug" / "asyncapy"), str(Path(target) / "release" / "asyncapy")]
    candidates.append(shutil.which("asyncapy"))
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    pytest.skip("the asyncapy binary is not built (cargo build -p asyncapy-cli)")


def test_rust_send_to_python_server(serve):
    binary = _binary()
    server = serve("app.py", 5)
    for encoding in ("json", "ziproto"):
        out = subprocess.run(
            [binary, "send", "--port", str(server.port), "--encoding", encoding, "--compact",
             '{"op": "echo", "n": 1}', '{"op": "count"}'],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip().splitlines()
        assert json.loads(out[0]) == {"op": "echo", "n": 1}
        assert "hits" in json.loads(out[1])


def test_python_client_to_rust_serve():
    binary = _binary()
    help_text = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True).stdout
    if "--port" not in help_text:
        pytest.skip("asyncapy serve has no --port")
    proc = subprocess.Popen(
        [binary, "serve", "--port", "0", "--addr", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        port = None
        for line in proc.stdout:
            if "Serving on " in line:
                port = int(line.split("Serving on ", 1)[1].split()[0].rsplit(":", 1)[1])
                break
        assert port, "serve did not start"
        for encoding in ("json", "ziproto"):
            c = sync_client.Client(tls=False, encoding=encoding, timeout=10)
            c.connect("127.0.0.1", port)
            c.send({"hello": "rust"})
            assert c.receive() == {"hello": "rust"}
            c.disconnect()
    finally:
        proc.terminate()
        proc.wait(10)
