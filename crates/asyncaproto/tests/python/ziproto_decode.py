"""Decodes ZiProto written by the Rust encoder with the Python reference decoders.

Reads lines `hex<TAB>mode` from stdin; mode `both` means the value has no
array or map of more than 15 entries, so `ziproto` 1.0 can decode it too (its
map16/array16 decoding is broken); mode `msgpack` means only msgpack can.
Writes one line per input: `[msgpack tagged, ziproto tagged or null]`.
"""

import json
import sys

from common import check_packages, tag


def main():
    check_packages()
    import msgpack
    import ziproto

    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        hex_bytes, mode = line.split("\t")
        raw = bytes.fromhex(hex_bytes)
        by_msgpack = tag(msgpack.unpackb(raw, raw=False, strict_map_key=False))
        by_ziproto = tag(ziproto.decode(raw)) if mode == "both" else None
        sys.stdout.write(json.dumps([by_msgpack, by_ziproto]) + "\n")


if __name__ == "__main__":
    main()
