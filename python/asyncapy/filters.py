"""Filters: which packets reach a handler.

``Filters.Fields``, ``Filters.Ip`` and ``Filters.APIFactory`` (over an
:class:`~asyncapy.util.APIKeyFactory`) are checked by the engine, in Rust.
A :class:`Filter` subclass of your own is called in Python, at its turn; one
that raises counts as not matching (and is logged).
"""

import re

from . import _engine

__all__ = ["Filter", "Filters"]

_IPV4 = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")


class Filter:
    """Base class of filters: override ``check(client, packet)`` and return a truth value."""

    def check(self, c, p):
        """Whether the packet ``p`` from client ``c`` passes."""
        return None


def _native_ip_set(ips):
    try:
        return _engine.IpSet(sorted(ips))
    except ValueError:
        raise ValueError("Invalid IP address in filter!") from None


class _IpSet(set):
    """The addresses of a ``Filters.Ip``: a set whose changes reach the engine."""

    def __init__(self, items, native):
        super().__init__(items)
        self._native = native

    def _sync(self):
        self._native.replace(sorted(self))


def _mutator(name):
    base = getattr(set, name)

    def method(self, *args):
        result = base(self, *args)
        self._sync()
        return self if name.startswith("__i") else result

    method.__name__ = name
    return method


for _name in (
    "add", "discard", "remove", "pop", "clear", "update", "difference_update",
    "intersection_update", "symmetric_difference_update",
    "__ior__", "__iand__", "__isub__", "__ixor__",
):
    setattr(_IpSet, _name, _mutator(_name))


def _validate_ips(ips):
    if isinstance(ips, str):
        ips = [ips]
    elif not isinstance(ips, (list, set, tuple, frozenset)):
        raise ValueError("ips parameter must be string or list of strings!")
    for ip in ips:
        if not isinstance(ip, str):
            raise ValueError("ips parameter must be string or list of strings!")
    _native_ip_set(ips)
    return set(ips)


class Filters(Filter):
    """The built-in filters."""

    class Ip(Filter):
        """Passes packets from the given IP addresses.

        ``ips`` is a string or a list of strings (IPv4, IPv6 or CIDR ranges).
        The set ``f.ips`` may be changed at run time (``f.ips.add(...)``,
        ``f.ips.discard(...)``, or ``f.ips = [...]``): the engine sees the
        change at once."""

        def __init__(self, ips):
            ips = _validate_ips(ips)
            self._native = _native_ip_set(ips)
            self._ips = _IpSet(ips, self._native)

        @property
        def ips(self):
            """The addresses (a set)."""
            return self._ips

        @ips.setter
        def ips(self, value):
            value = _validate_ips(value)
            self._native.replace(sorted(value))
            self._ips = _IpSet(value, self._native)

        def check(self, c, p):
            return c.address in self._native

        def __repr__(self):
            return f"Filters.Ip({self._ips})"

    class Fields(Filter):
        """Passes packets whose fields are exactly the named ones.

        ``Fields(name=None)`` asks for the field; ``Fields(name=r"regex")``
        also asks that the regex match *the start* of ``str(value)``, as
        Python's ``re.match`` does (the original's semantics). A packet with
        other fields besides does not pass."""

        def __init__(self, **kwargs):
            self.fields = {}
            for name, pattern in kwargs.items():
                self.fields[name] = None if pattern is None else re.compile(pattern)
            self._patterns = dict(kwargs)

        def check(self, c, p):
            payload = p.dict_payload
            if set(payload) != set(self.fields):
                return False
            for name, regex in self.fields.items():
                if regex is not None and not regex.match(str(payload[name])):
                    return False
            return True

        def __repr__(self):
            return f"Filter.Fields({self._patterns})"

    class APIFactory(Filter):
        """Passes packets whose field ``field_name`` is a key of ``factory``."""

        def __init__(self, factory, field_name):
            self.factory = factory
            self.field_name = field_name

        def check(self, c, p):
            return p.dict_payload.get(self.field_name) in self.factory

        def __repr__(self):
            return f"Filters.APIFactory({self.field_name!r})"
