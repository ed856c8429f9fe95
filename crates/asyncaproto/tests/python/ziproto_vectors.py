"""Prints test vectors encoded by the reference `ziproto` 1.0 encoder.

Each line: `hex<TAB>tagged value` (see common.py). One extra line,
`EMPTY_BIN<TAB>hex`, shows how the reference encodes b"" (a known bug).
"""

import sys

from common import check_packages, dumps, tag


def vectors():
    ints = [
        0, 1, 42, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1,
        2**63, 2**64 - 1, -1, -31, -32, -33, -127, -128, -129, -32767, -32768,
        -32769, -(2**31) + 1, -(2**31), -(2**31) - 1, -(2**63) + 1, -(2**63),
    ]
    floats = [
        0.0, -0.0, 1.0, -1.5, 0.1, 1 / 3, 1e-5, 1e16, 1.5e300, -2.5e-300, 5e-324,
        2.2250738585072014e-308, 1.7976931348623157e308, 3.141592653589793, 2.0**60,
    ]
    strs = [
        "", "a", "foo", "é", "€", "😀", "mixed é€😀 text", "\x00\n\t\"\\",
        "x" * 31, "x" * 32, "é" * 16, "x" * 255, "x" * 256, "x" * 65535, "x" * 65536,
    ]
    bins = [b"\x00", b"\xff\x00\x80", b"\xab" * 255, b"\x01" * 256, b"\x02" * 65535, b"\x03" * 65536]
    arrays = [[], [1], list(range(15)), list(range(16)), [None] * 65535, list(range(65536))]
    maps = [
        {},
        {"foo": "bar"},
        {f"k{i}": i for i in range(15)},
        {f"k{i}": i for i in range(16)},
        {str(i): None for i in range(65536)},
    ]
    nested = [
        {
            "user": "ada",
            "list": [1, [2, [3, {"deep": True}]]],
            "map": {"a": {"b": {"c": None}}},
            "mixed": [1, -1.5, "s", b"b", None, False, 2**64 - 1, -(2**63)],
            "unicode ключ": "значение",
        },
        {"status": "failure", "error": "ERR_REQUEST_MALFORMED"},
        [[[[[]]]]],
    ]
    return [None, True, False, *ints, *floats, *strs, *bins, *arrays, *maps, *nested]


def main():
    check_packages()
    import ziproto

    out = sys.stdout
    for value in vectors():
        out.write(f"{bytes(ziproto.encode(value)).hex()}\t{dumps(tag(value))}\n")
    out.write(f"EMPTY_BIN\t{bytes(ziproto.encode(b'')).hex()}\n")


if __name__ == "__main__":
    main()
