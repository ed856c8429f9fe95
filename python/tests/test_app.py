"""An application using state, push, sleeps, run_sync_task, timeouts, failures and
filters, under trio (plain and async hooks) and under the asyncio backend."""

import socket
import time

import pytest

from conftest import frame


@pytest.fixture(params=["sync", "async", "asyncio"])
def app(request, serve):
    return serve("app.py", 2, 4096, request.param)


def test_setup_state_and_hooks(app, conn):
    c = conn(app.port)
    first = c.request({"op": "count"})
    second = c.request({"op": "count"})
    assert second["hits"] == first["hits"] + 1
    assert first["session"] == second["session"]  # one session per connection
    assert app.stop() == 0
    assert "SETUP" in app.output
    assert "SHUTDOWN 2" in app.output


def test_send_is_on_the_wire_before_a_sleep_ends(app, conn):
    c = conn(app.port)
    c.send({"op": "sleep", "s": 1.0})
    t0 = time.monotonic()
    assert c.recv() == {"before": True}
    assert time.monotonic() - t0 < 0.8
    assert c.recv() == {"after": True}


def test_pipelined_packets_keep_order_and_a_send_before_a_sleep_leaves_at_once(app, conn):
    # Three packets in one write: the session waits on Python for each in
    # turn (holding its replies back to write them together), but the
    # handler that sleeps has what it sent written as soon as it blocks.
    c = conn(app.port)
    count, sleep = frame({"op": "count"}), frame({"op": "sleep", "s": 1.0})
    t0 = time.monotonic()
    c.sock.sendall(count + sleep + count)
    first = c.recv()
    assert c.recv() == {"before": True}
    assert time.monotonic() - t0 < 0.8
    assert c.recv() == {"after": True}
    last = c.recv()
    assert last["session"] == first["session"] and last["hits"] > first["hits"]


def test_push_to_another_session(app, conn):
    idle = conn(app.port)
    idle.request({"op": "count"})  # the session exists
    c = conn(app.port)
    assert c.request({"op": "push", "msg": "hi"}) == {"pushed_to": 1}
    assert idle.recv() == {"pushed": "hi"}


def test_run_sync_task(app, conn):
    assert conn(app.port).request({"op": "sync", "x": 21}) == {"result": 42}


def test_run_sync_task_with_a_limiter_sees_the_handlers_context(app, conn):
    assert conn(app.port).request({"op": "sync_limited", "tag": "t7"}) == {"seen": "t7"}


def test_timeout_cancels_the_trio_task(app, conn):
    c = conn(app.port)
    t0 = time.monotonic()
    assert c.request({"op": "slow", "tag": "t1"})["error"] == "ERR_TIMED_OUT"
    assert 1.5 < time.monotonic() - t0 < 5
    # the cancellation reaches the task asynchronously: ask until it ran
    deadline = time.monotonic() + 5
    while True:
        seen = conn(app.port).request({"op": "cancelled"})["cancelled"]
        if seen or time.monotonic() > deadline:
            break
    assert seen == ["t1"]


def test_handler_exception(app, conn):
    c = conn(app.port)
    assert c.request({"op": "fail"})["error"] == "ERR_HANDLER_FAILED"
    other = conn(app.port)
    assert other.request({"op": "echo"}) == {"op": "echo"}
    app.stop()
    assert "ValueError: boom" in app.output
    assert "Traceback (most recent call last)" in app.output
    assert "A fatal unhandled exception occurred -> ValueError: boom" in app.output


def test_handler_that_cannot_be_called(app, conn):
    # A handler without the (client, packet) signature fails its packet only.
    c = conn(app.port)
    assert c.request({"op": "badsig"})["error"] == "ERR_HANDLER_FAILED"
    assert conn(app.port).request({"op": "echo"}) == {"op": "echo"}
    app.stop()
    assert "TypeError" in app.output


def test_filter_exception_does_not_match(app, conn):
    c = conn(app.port)
    assert c.request({"op": "explode"})["error"] == "ERR_NO_HANDLER"
    app.stop()
    assert "RuntimeError: filter blew up" in app.output
    assert "it does not match" in app.output


def test_python_filter_uses_server_state(app, conn):
    assert conn(app.port).request({"op": "vip", "who": "ann"}) == {"vip": "ann"}
    assert conn(app.port).request({"op": "vip", "who": "bob"})["error"] == "ERR_NO_HANDLER"


def test_ip_filter_changed_at_run_time(app, conn):
    # setup() added 127.0.0.1 to the (initially empty) filter
    assert conn(app.port).request({"op": "ip"}) == {"ip": "127.0.0.1"}


def test_api_key_filter_checked_by_the_engine(app, conn):
    c = conn(app.port)
    key = c.request({"op": "getkey"})["key"]
    assert c.request({"op": "key", "key": key}) == {"key": {"user": "bob"}}
    assert c.request({"op": "key", "key": "nope"}) == {"key": "refused"}
    assert c.request({"op": "revoke", "key": key}) == {"revoked": True}
    assert c.request({"op": "key", "key": key}) == {"key": "refused"}


def test_close_after_send(app, conn):
    c = conn(app.port)
    assert c.request({"op": "close"}) == {"bye": True}
    assert c.closed()


def test_bad_input(app, conn):
    c = conn(app.port)
    c.sock.sendall(frame(b"{not json"))
    assert c.recv()["error"] == "ERR_REQUEST_MALFORMED"
    c = conn(app.port)
    c.sock.sendall(frame(b"[1, 2]"))
    assert c.recv()["error"] == "ERR_REQUEST_MALFORMED"
    c = conn(app.port)
    c.sock.sendall((10_000).to_bytes(4, "big") + b"\x16\x00")
    assert c.recv()["error"] == "ERR_PACKET_TOO_LARGE"
    c = conn(app.port)
    c.sock.sendall((5).to_bytes(4, "big") + b"\x07\x00abc")
    assert c.recv()["error"] in ("ERR_HEADER_INVALID", "ERR_REQUEST_MALFORMED")
    # the server is fine
    assert conn(app.port).request({"op": "echo"}) == {"op": "echo"}


def test_blocking_handler_delays_python_not_the_engine(app, conn):
    blocker = conn(app.port)
    blocker.send({"op": "block", "s": 1.5})
    time.sleep(0.2)  # let the handler start blocking the trio thread
    t0 = time.monotonic()
    # Rust-side refusals and replies go on while Python is blocked
    c = conn(app.port)
    c.sock.sendall((10_000).to_bytes(4, "big") + b"\x16\x00")
    assert c.recv()["error"] == "ERR_PACKET_TOO_LARGE"
    c = conn(app.port)
    c.sock.sendall(frame(b"{bad"))
    assert c.recv()["error"] == "ERR_REQUEST_MALFORMED"
    assert time.monotonic() - t0 < 1.0
    # a Python handler waits for the loop
    c = conn(app.port)
    assert c.request({"op": "echo"}) == {"op": "echo"}
    assert time.monotonic() - t0 > 1.0
    assert blocker.recv() == {"blocked": True}


def test_many_sessions_at_once(app, conn):
    conns = [conn(app.port) for _ in range(50)]
    for i, c in enumerate(conns):
        c.send({"op": "echo", "i": i})
    for i, c in enumerate(conns):
        assert c.recv() == {"op": "echo", "i": i}


def test_fields_fallbacks_to_python(app, conn):
    # a failure reply ends the session: one connection per refusal
    assert conn(app.port).request({"flt": 1.5}) == {"float": 1.5}
    assert conn(app.port).request({"flt": 2.5})["error"] == "ERR_NO_HANDLER"
    assert conn(app.port).request({"look": "ab"}) == {"look": "ab"}
    assert conn(app.port).request({"look": "ac"})["error"] == "ERR_NO_HANDLER"


def test_client_and_session_objects(app, conn):
    other = conn(app.port)
    other.request({"op": "count"})
    reply = conn(app.port).request({"op": "sessions"})
    assert reply == {"count": 2, "mine": True, "same_client": True, "date": True,
                     "sender": True, "repr": "Client(127.0.0.1)"}


def test_log_lines_carry_session_ids(app, conn):
    c = conn(app.port)
    c.request({"op": "count"})
    app.stop()
    import re
    assert re.search(r"\[INFO\] \d\d/\d\d/\d{4} \d\d:\d\d:\d\d [AP]M \([0-9a-f-]{36}\) \{Engine\} New session started", app.output)


def test_handlers_that_block_run_side_by_side(app, conn):
    # Each sleeping handler keeps the task that ran it; the others go on.
    conns = [conn(app.port) for _ in range(20)]
    t0 = time.monotonic()
    for c in conns:
        c.send({"op": "sleep", "s": 0.5})
    for c in conns:
        assert c.recv() == {"before": True}
    for c in conns:
        assert c.recv() == {"after": True}
    assert time.monotonic() - t0 < 4  # serially: 10 s


def test_a_handler_queued_behind_a_sleeping_one_is_not_held(app, conn):
    sleeper, other = conn(app.port), conn(app.port)
    for _ in range(5):
        sleeper.send({"op": "sleep", "s": 1.0})
        other.send({"op": "echo"})
        t0 = time.monotonic()
        assert other.recv() == {"op": "echo"}
        assert time.monotonic() - t0 < 0.8
        assert sleeper.recv() == {"before": True}
        assert sleeper.recv() == {"after": True}


def test_failure_and_stop_propagation_after_yielding(app, conn):
    assert conn(app.port).request({"op": "fail_later"})["error"] == "ERR_HANDLER_FAILED"
    # StopPropagation raised after an await is a stop, not a failure
    c = conn(app.port)
    assert c.request({"op": "stop_later"}) == {"stopping": True}
    assert c.request({"op": "echo"}) == {"op": "echo"}
    app.stop()
    assert "A fatal unhandled exception occurred -> ValueError: late boom" in app.output


def test_after_a_timeout_the_server_goes_on(app, conn):
    assert conn(app.port).request({"op": "slow", "tag": "t2"})["error"] == "ERR_TIMED_OUT"
    c = conn(app.port)
    for i in range(20):
        assert c.request({"op": "echo", "i": i}) == {"op": "echo", "i": i}
    assert c.request({"op": "sleep", "s": 0.1}) == {"before": True}
    assert c.recv() == {"after": True}
    assert c.request({"op": "sync", "x": 1}) == {"result": 2}
