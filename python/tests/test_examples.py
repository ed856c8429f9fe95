"""The seed's documented examples, unchanged but for their port."""

import subprocess
import sys

from conftest import EXAMPLES


def test_hello_world_answers_the_seed_test_client(serve):
    server = serve("example.py")
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "testclient.py"), str(server.port)],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    assert "{'test': 1}" in out
    assert "(13, 22, 0, b'{\"test\": 1}')" in out  # the original client's print
    server.stop()
    assert "Hello world from Client(127.0.0.1)!" in server.output
    assert 'Echoing back Packet({"test": 1})...' in server.output


def test_groups_send_twice(serve, conn):
    server = serve("groups.py")
    c = conn(server.port)
    c.send({"a": 1})
    assert c.recv() == {"a": 1}  # group -1
    assert c.recv() == {"a": 1}  # group 0, which then closes
    assert c.closed()


def test_fields_filter_prefix_semantics(serve, conn):
    server = serve("filters.py")
    # re.match semantics: "\d+" matches the start of str(value)
    for packet in ({"foo": 12355, "bar": "anything"}, {"foo": "12abc", "bar": None}):
        c = conn(server.port)
        c.send(packet)
        assert c.closed()  # the handler prints and closes
    c = conn(server.port)
    assert c.request({"foo": "abc", "bar": 1})["error"] == "ERR_NO_HANDLER"
    c = conn(server.port)
    assert c.request({"foo": 1, "bar": 1, "extra": 1})["error"] == "ERR_NO_HANDLER"
    server.stop()
    assert server.output.count("Look at this! Client(127.0.0.1) sent me") == 2


def test_morefilters(serve, conn):
    server = serve("morefilters.py")
    c = conn(server.port)
    c.send({"foo": 1, "bar": "123lmao"})
    c.send({"foo": "x", "bar": "123lmao"})
    assert c.recv()["error"] == "ERR_NO_HANDLER"  # the first matched, and sent nothing
