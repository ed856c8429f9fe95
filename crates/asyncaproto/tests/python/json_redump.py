"""Writes `json.dumps(json.loads(line))` for every line of stdin (UTF-8).

The Rust JSON encoder must write exactly these bytes (the original AsyncAPY
server replies with json.dumps and its default arguments).
"""

import json
import sys

from common import check_packages


def main():
    check_packages()
    data = sys.stdin.buffer.read().decode("utf-8")
    for line in data.split("\n"):
        if line:
            sys.stdout.write(json.dumps(json.loads(line)) + "\n")


if __name__ == "__main__":
    main()
