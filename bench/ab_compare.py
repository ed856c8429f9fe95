#!/usr/bin/env python3
"""Server CPU per request of several servers, alternated in one run.

    bench/ab_compare.py MODE CONNECTIONS PIPELINE SECONDS ROUNDS NAME=COMMAND...

Each COMMAND starts a server on the port written PORT in it, e.g.
`base=/tmp/old/asyncapy serve --port PORT --logging-level 30`. In every
round each server runs in turn, pinned to core 0, while `asyncapy bench
--mode MODE` (target/release/asyncapy, or $BENCH_CLIENT) loads it from core 1
with one thread: a 1 s warm-up, then SECONDS measured. Server CPU is
utime+stime of the whole process from /proc/PID/stat. Prints each run, then
each server's figures side by side. 127.0.0.1 only; every server is stopped.
"""

import json
import os
import subprocess
import sys

from _common import ROOT, cpu_seconds, free_port, wait_port

CLIENT = os.environ.get("BENCH_CLIENT", str(ROOT / "target" / "release" / "asyncapy"))


def main():
    if len(sys.argv) < 7:
        raise SystemExit(__doc__)
    mode, connections, pipeline, seconds, rounds = sys.argv[1:6]
    servers = [arg.split("=", 1) for arg in sys.argv[6:]]
    results = {name: [] for name, _ in servers}
    for _ in range(int(rounds)):
        for name, command in servers:
            port = free_port()
            argv = command.replace("PORT", str(port)).split()
            if os.path.exists(argv[0]):
                argv[0] = os.path.abspath(argv[0])
            proc = subprocess.Popen(
                ["taskset", "-c", "0", *argv],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/tmp",
            )
            try:
                wait_port(port, proc)
                load = ["taskset", "-c", "1", CLIENT, "bench", "--port", str(port),
                        "--mode", mode, "-c", connections, "-p", pipeline,
                        "--threads", "1", "--json", "--no-progress"]
                subprocess.run(load + ["-d", "1s"], capture_output=True, check=False)
                before = cpu_seconds(proc.pid)
                out = subprocess.run(load + ["-d", f"{seconds}s", "--warmup", "0s"],
                                     capture_output=True, text=True, check=False)
                after = cpu_seconds(proc.pid)
            finally:
                proc.terminate()
                proc.wait()
            report = json.loads(out.stdout)
            n = max(report["requests"], 1)
            cost = 1e6 * (after - before) / n
            results[name].append(cost)
            print(f"{name}: {cost:.2f} µs/request, {report['requests_per_sec']:,.0f} req/s, "
                  f"errors {report['errors']['total']}", flush=True)
    for name, costs in results.items():
        print(f"{name}: " + " / ".join(f"{c:.1f}" for c in costs))


if __name__ == "__main__":
    main()
