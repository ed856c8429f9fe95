"""The engine's key stores from Python."""

import pytest

from asyncapy.util import SQLiteAPIKeyFactory


def test_sqlite_factory(tmp_path):
    f = SQLiteAPIKeyFactory(tmp_path / "keys.db", size=24)
    key = f.issue({"user": "ann"})
    assert len(key) == 24 and key in f and f.get(key) == {"user": "ann"}
    f.update(key, {"user": "bob"})
    new = f.reissue(key)
    assert key not in f and f.get(new) == {"user": "bob"}
    f.revoke(new)
    for call in (f.get, f.revoke, f.reissue):
        with pytest.raises(KeyError):
            call(new)
    # persistent: a second factory on the file sees the keys
    kept = f.issue({"user": "cy"})
    assert SQLiteAPIKeyFactory(tmp_path / "keys.db").get(kept) == {"user": "cy"}


def test_sqlite_filter_checked_by_the_engine(tmp_path, serve, conn):
    db = tmp_path / "keys.db"
    key = SQLiteAPIKeyFactory(db).issue({"user": "ann"})
    server = serve("sqlite_keys.py", db)
    c = conn(server.port)
    assert c.request({"key": key}) == {"user": "ann"}
    assert c.request({"key": "nope"}) == {"public": True}
