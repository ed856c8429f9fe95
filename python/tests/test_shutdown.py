"""Graceful shutdown with packets in flight."""

import signal
import time

import pytest


@pytest.mark.parametrize("mode", ["sync", "asyncio"])
def test_sigterm_drains_in_flight_packets(serve, conn, mode):
    server = serve("app.py", 10, 4096, mode)
    busy = conn(server.port)
    busy.send({"op": "sleep", "s": 1.0})
    assert busy.recv() == {"before": True}
    idle = conn(server.port)
    assert idle.request({"op": "echo"}) == {"op": "echo"}
    server.signal(signal.SIGTERM)
    assert busy.recv() == {"after": True}  # the in-flight packet finished
    assert server.wait() == 0
    assert "SHUTDOWN" in server.output
    assert "SIGTERM received" in server.output


@pytest.mark.parametrize("mode", ["sync", "asyncio"])
def test_sigint_with_nothing_in_flight(serve, mode):
    server = serve("app.py", 10, 4096, mode)
    t0 = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - t0 < 5
    assert "Ctrl + C detected" in server.output
