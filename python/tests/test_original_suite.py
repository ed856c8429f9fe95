"""The original AsyncAPY 0.5's own test suite against its `server_example.py`
and `config.ini`, unchanged, under this package, driven as the original's CI
drives it (server started from the directory of config.ini, then pytest on
tests/tests_asyncapy.py; port 1500, fixed by config.ini).

The original is not vendored: set ASYNCAPY_ORIGINAL to a checkout of its
source tree (github.com/intellivoid/AsyncAPY, commit ce315f2) to run this.
Its test_timeout sleeps 15 s."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Running

ORIGINAL = os.environ.get("ASYNCAPY_ORIGINAL")


@pytest.mark.skipif(not ORIGINAL, reason="ASYNCAPY_ORIGINAL (the original's source tree) is not set")
def test_original_suite_passes(tmp_path):
    src = Path(ORIGINAL)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the engine binds
        try:
            s.bind(("127.0.0.1", 1500))
        except OSError:
            pytest.skip("port 1500 (fixed by the original's config.ini) is busy")
    # Outside the original tree, so its asyncapy/ does not shadow ours.
    for name in ("server_example.py", "config.ini"):
        shutil.copy(src / name, tmp_path / name)
    (tmp_path / "tests").mkdir()
    shutil.copy(src / "tests" / "tests_asyncapy.py", tmp_path / "tests" / "tests_asyncapy.py")
    server = Running([str(tmp_path / "server_example.py")], tmp_path)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/tests_asyncapy.py"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr + server.output
    assert "5 passed" in result.stdout
