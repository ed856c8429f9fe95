"""Utilities: :class:`APIKeyFactory`."""

import secrets
import string

from . import _engine

__all__ = ["APIKeyFactory", "SQLiteAPIKeyFactory", "RedisAPIKeyFactory"]

_ALPHABET = string.ascii_letters + string.digits


class _KeyDict(dict):
    """The factory's keys and their metadata; membership mirrored to the engine."""

    def __init__(self, native):
        super().__init__()
        self._native = native

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self._native.add(key)

    def __delitem__(self, key):
        super().__delitem__(key)
        self._native.discard(key)

    def pop(self, key, *default):
        value = super().pop(key, *default)
        self._native.discard(key)
        return value

    def popitem(self):
        key, value = super().popitem()
        self._native.discard(key)
        return key, value

    def clear(self):
        super().clear()
        self._native.replace([])

    def update(self, *args, **kwargs):
        super().update(*args, **kwargs)
        self._native.replace(list(self))

    def setdefault(self, key, default=None):
        value = super().setdefault(key, default)
        self._native.add(key)
        return value


class APIKeyFactory:
    """Issues and checks API keys: ``size`` random letters and digits (from
    the operating system's CSPRNG), each with any metadata.

    ``Filters.APIFactory(factory, "field")`` over it is checked by the engine.
    Subclass it for your own storage: a subclass overriding ``__contains__``
    is checked in Python instead."""

    def __init__(self, size=32):
        if not isinstance(size, int) or size <= 0:
            raise ValueError("size must be a positive integer")
        self.size = size
        self._native = _engine.KeySet()
        self._keys = _KeyDict(self._native)

    def _new_key(self):
        while True:
            key = "".join(secrets.choice(_ALPHABET) for _ in range(self.size))
            if key not in self._keys:
                return key

    def issue(self, metadata=None):
        """Issues a new key with ``metadata``; returns the key."""
        key = self._new_key()
        self._keys[key] = metadata
        return key

    def get(self, key):
        """The metadata of ``key`` (``KeyError`` when it is not a key)."""
        return self._keys[key]

    def update(self, key, metadata):
        """Replaces the metadata of ``key`` (``KeyError`` when it is not a key)."""
        if key not in self._keys:
            raise KeyError(key)
        self._keys[key] = metadata

    def reissue(self, key):
        """Revokes ``key`` and issues a new one with its metadata; returns the
        new key (``KeyError`` when ``key`` is not a key)."""
        metadata = self._keys.pop(key)
        return self.issue(metadata)

    def revoke(self, key):
        """Revokes ``key`` (``KeyError`` when it is not a key)."""
        self._keys.pop(key)

    def __contains__(self, key):
        return isinstance(key, str) and key in self._keys

    def __len__(self):
        return len(self._keys)


class _StoreAPIKeyFactory:
    """An API key factory over one of the engine's stores: keys are kept as
    SHA-256 digests, metadata as JSON-like values. ``Filters.APIFactory`` over
    it is checked by the engine. The methods block on the store; in a handler,
    call them through ``await server.run_sync_task(factory.issue, metadata)``."""

    _native = None

    def issue(self, metadata=None):
        """Issues a new key with ``metadata``; returns the key."""
        return self._native.issue(metadata)

    def get(self, key):
        """The metadata of ``key`` (``KeyError`` when it is not a key)."""
        return self._native.get(key)

    def update(self, key, metadata):
        """Replaces the metadata of ``key`` (``KeyError`` when it is not a key)."""
        self._native.update(key, metadata)

    def reissue(self, key):
        """Revokes ``key`` and issues a new one with its metadata; returns it."""
        return self._native.reissue(key)

    def revoke(self, key):
        """Revokes ``key`` (``KeyError`` when it is not a key)."""
        self._native.revoke(key)

    def __contains__(self, key):
        return isinstance(key, str) and key in self._native


class SQLiteAPIKeyFactory(_StoreAPIKeyFactory):
    """API keys in the SQLite file ``path`` (created if missing)."""

    def __init__(self, path, size=32):
        self.size = size
        self._native = _engine.StoreKeys.sqlite(str(path), size)


class RedisAPIKeyFactory(_StoreAPIKeyFactory):
    """API keys in Redis at ``url`` (``redis://[:PASSWORD@]HOST[:PORT][/DB]``),
    shared by several servers."""

    def __init__(self, url, size=32):
        self.size = size
        self._native = _engine.StoreKeys.redis(url, size)
