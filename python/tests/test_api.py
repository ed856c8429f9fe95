"""The API's objects, without a server."""

import logging

import pytest

import asyncapy
from asyncapy import Packet, Server
from asyncapy.core import Client, Session
from asyncapy.errors import StopPropagation
from asyncapy.filters import Filter, Filters
from asyncapy.util import APIKeyFactory


def test_module_names():
    import asyncapy.client
    import asyncapy.core
    import asyncapy.server

    assert asyncapy.Server is asyncapy.server.Server
    assert asyncapy.core.Client is asyncapy.Client
    assert callable(asyncapy.client.Client)


def test_packet_is_dict_like():
    p = Packet({"a": 1, "b": [1, 2]}, "json")
    assert p["a"] == 1 and "b" in p and len(p) == 2
    assert list(p) == ["a", "b"] and p.get("c", 3) == 3
    assert dict(p.items()) == {"a": 1, "b": [1, 2]} and list(p.keys()) == ["a", "b"]
    assert str(Packet({"test": 1}, "json")) == 'Packet({"test": 1})'
    assert Packet('{"x": 1}', "ziproto").dict_payload == {"x": 1}
    assert Packet(b'{"x": 1}', "json").payload == '{"x": 1}'
    with pytest.raises(ValueError):
        Packet({}, "xml")
    with pytest.raises(ValueError):
        Packet({}, 1)
    with pytest.raises(StopPropagation):
        p.stop_propagation()


def test_client_and_session():
    c = Client("127.0.0.1", encoding="json")
    assert str(c) == "Client(127.0.0.1)"
    s = Session("id", c, 1.0)
    assert s.get_client() is c and str(s) == "id"


def test_server_type_checks():
    with pytest.raises(TypeError):
        Server(port="1")
    with pytest.raises(TypeError):
        Server(addr=1)
    with pytest.raises(TypeError):
        Server(byteorder="middle")
    with pytest.raises(TypeError):
        Server(no_such_option=1)
    s = Server(max_packet_size=10, logging_level=logging.DEBUG)
    assert s.engine_options == {"max_packet_size": 10}


def test_add_handler_returns_the_function():
    s = Server()

    @s.add_handler(group=3)
    async def h(c, p):
        pass

    assert h is not None and s._handlers[0][1] == 3


def test_config_file(tmp_path):
    ini = tmp_path / "config.ini"
    ini.write_text("[AsyncAPY]\naddr = 0.0.0.0\nport = 1600\ntimeout = 15\nmax_outbox = 99\n")
    s = Server(config=str(ini))
    assert (s.addr, s.port, s.timeout) == ("0.0.0.0", 1600, 15)
    assert s.engine_options["max_outbox"] == 99


def test_backend_choice(tmp_path):
    assert Server().backend == "trio"
    assert Server(backend="asyncio").backend == "asyncio"
    with pytest.raises(ValueError, match="backend must be"):
        Server(backend="curio")
    ini = tmp_path / "config.ini"
    ini.write_text("[AsyncAPY]\nbackend = asyncio\n")
    assert Server(config=str(ini)).backend == "asyncio"
    ini.write_text("[AsyncAPY]\nbackend = twisted\n")
    with pytest.raises(ValueError, match="backend must be"):
        Server(config=str(ini))


def test_api_key_factory():
    f = APIKeyFactory(size=16)
    key = f.issue({"u": 1})
    assert len(key) == 16 and key in f and f.get(key) == {"u": 1}
    assert key in f._native
    f.update(key, {"u": 2})
    assert f.get(key) == {"u": 2}
    new = f.reissue(key)
    assert new in f and key not in f and key not in f._native
    f.revoke(new)
    for call in (f.get, f.revoke, f.reissue):
        with pytest.raises(KeyError):
            call(new)
    with pytest.raises(KeyError):
        f.update(new, None)


def test_ip_filter():
    f = Filters.Ip(["127.0.0.1"])
    assert f.check(Client("127.0.0.1"), None)
    f.ips.add("10.0.0.1")
    assert f.check(Client("10.0.0.1"), None)
    f.ips.discard("10.0.0.1")
    assert not f.check(Client("10.0.0.1"), None)
    f.ips = ["10.0.0.2"]
    assert f.check(Client("10.0.0.2"), None) and not f.check(Client("127.0.0.1"), None)
    with pytest.raises(ValueError):
        Filters.Ip(["not an ip"])
    with pytest.raises(ValueError):
        Filters.Ip(1)


def test_fields_filter_in_python():
    f = Filters.Fields(foo=r"\d+", bar=None)
    assert f.check(None, Packet({"foo": "12abc", "bar": 1}, "json"))
    assert not f.check(None, Packet({"foo": "x1", "bar": 1}, "json"))
    assert not f.check(None, Packet({"foo": "1"}, "json"))
    assert isinstance(f, Filter)
