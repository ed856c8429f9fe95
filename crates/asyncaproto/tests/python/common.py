"""Shared helpers of the Python cross-check scripts (run by tests/payload_python.rs).

Values travel between Rust and Python as "tagged" JSON, so that nothing is lost
on the way: every value is a list whose first item names its type.

    None            -> ["nil"]
    True / False    -> ["bool", true]
    int             -> ["int", "123"]          (decimal string: any size)
    float           -> ["float", "1e-05"]      (repr: reads back exactly)
    str             -> ["str", "..."]
    bytes           -> ["bin", "00ff"]         (hex)
    list            -> ["array", [tagged, ...]]
    dict            -> ["map", [["key", tagged], ...]]   (in order)
"""

import importlib.metadata
import json
import sys

REQUIRED = {"ziproto": "1.0"}
INSTALL_HINT = "python3 -m pip install -r requirements-test.txt"


def check_packages():
    """Exits with a clear message unless ziproto 1.0 and msgpack are installed."""
    try:
        import msgpack  # noqa: F401
        import ziproto  # noqa: F401
    except ImportError as exc:
        sys.exit(f"missing Python test package ({exc}): {INSTALL_HINT}")
    for name, version in REQUIRED.items():
        found = importlib.metadata.version(name)
        if found != version:
            sys.exit(f"{name} {version} is required, found {found}: {INSTALL_HINT}")


def tag(value):
    if value is None:
        return ["nil"]
    if value is True or value is False:
        return ["bool", value]
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, float):
        return ["float", repr(value)]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ["bin", bytes(value).hex()]
    if isinstance(value, (list, tuple)):
        return ["array", [tag(item) for item in value]]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"non-string key {key!r}")
        return ["map", [[key, tag(item)] for key, item in value.items()]]
    raise TypeError(f"cannot tag {type(value)}")


def dumps(tagged):
    return json.dumps(tagged)
