#!/usr/bin/env python3
"""Side by side, in one run: the same Python echo application
(bench/py_echo_app.py) under the original AsyncAPY 0.5, under our package
(asyncapy on the Rust engine), and the Rust `asyncapy serve`.

    bench/python_compare.py --original PATH/TO/AsyncAPY [--python PY] [--duration 5]

--original is a checkout of the original's source tree (github.com/intellivoid/AsyncAPY,
0.5, commit ce315f2): it is put first on PYTHONPATH for its runs. --python is
an interpreter with our package installed (`pip install ./python`) and trio and
ziproto (the original needs both). The load generator is the release
`asyncapy bench` (target/release/asyncapy, or --asyncapy), pinned to core 1
with one thread; servers are pinned to core 0. Server CPU per request is
utime+stime of the whole server process (all threads) from /proc/PID/stat,
sampled after the warm-up and at the end.

The original closes every connection after one packet, so it is measured only
with one request per connection; persistent sessions show n/a for it.
Prints a Markdown table.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _common import ROOT, cpu_seconds, free_port, wait_port


def start(kind, args, port):
    env = dict(os.environ)
    if kind == "original":
        env["PYTHONPATH"] = str(args.original)
        cmd = [args.python, str(ROOT / "bench" / "py_echo_app.py"), str(port)]
    elif kind in ("ours", "ours-asyncio"):
        env.pop("PYTHONPATH", None)
        if kind == "ours-asyncio":
            env["ECHO_BACKEND"] = "asyncio"
        cmd = [args.python, str(ROOT / "bench" / "py_echo_app.py"), str(port)]
    else:
        cmd = [args.asyncapy, "serve", "--port", str(port), "--logging-level", "30"]
    proc = subprocess.Popen(
        ["taskset", "-c", args.server_core, *cmd],
        env=env, cwd="/tmp", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_port(port, proc)
    return proc


def run(kind, args, mode, connections, pipeline):
    port = free_port()
    proc = start(kind, args, port)
    try:
        cmd = [
            "taskset", "-c", args.client_core, args.asyncapy, "bench", "--port", str(port),
            "--threads", "1", "--json", "--no-progress", "-c", str(connections),
            "-p", str(pipeline), "--mode", mode, "-d", f"{args.duration}s", "--warmup", "0s",
        ]
        warm = subprocess.run(
            [*cmd[:-4], "-d", f"{args.warmup}s", "--warmup", "0s"],
            capture_output=True, text=True,
        )
        cpu0 = cpu_seconds(proc.pid)
        out = subprocess.run(cmd, capture_output=True, text=True)
        cpu1 = cpu_seconds(proc.pid)
        report = json.loads(out.stdout)
        return report, cpu1 - cpu0
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def figures(report, cpu):
    ok = report.get("requests", 0)
    rps = report.get("requests_per_sec", 0)
    p99 = report.get("latency_us", {}).get("p99")
    errors = report.get("errors", {}).get("total", 0)
    return ok, rps, p99, (cpu / ok * 1e6 if ok else float("nan")), errors


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original", type=Path, required=True)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--asyncapy", default=str(ROOT / "target" / "release" / "asyncapy"))
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--client-core", default="1")
    parser.add_argument("--raw", action="store_true", help="print the raw JSON reports too")
    parser.add_argument(
        "--servers", default="original,ours,serve",
        help="comma-separated, from original, ours, ours-asyncio, serve",
    )
    parser.add_argument("--cases", default="0,1,2", help="comma-separated case numbers")
    args = parser.parse_args()
    # The servers run in /tmp: relative paths are taken from here.
    args.asyncapy = str(Path(args.asyncapy).resolve())
    args.original = args.original.resolve()
    cases = [
        ("one request per connection, 16 at once", "per-request", 16, 1),
        ("16 persistent connections", "persistent", 16, 1),
        ("16 persistent connections, pipeline 16", "persistent", 16, 16),
    ]
    print("| case | server | req/s | p99 (ms) | server CPU µs/req | errors |")
    print("|---|---|---|---|---|---|")
    chosen = [cases[int(i)] for i in args.cases.split(",")]
    for title, mode, c, p in chosen:
        for kind in args.servers.split(","):
            if kind == "original" and mode == "persistent":
                print(f"| {title} | AsyncAPY 0.5 | n/a (closes after each packet) | | | |")
                continue
            report, cpu = run(kind, args, mode, c, p)
            if args.raw:
                print(json.dumps(report), file=sys.stderr)
            ok, rps, p99, per, errors = figures(report, cpu)
            name = {
                "original": "AsyncAPY 0.5",
                "ours": "asyncapy on Rust",
                "ours-asyncio": "asyncapy on Rust, asyncio backend",
                "serve": "asyncapy serve (Rust)",
            }[kind]
            p99s = f"{p99 / 1000:.2f}" if isinstance(p99, (int, float)) else "?"
            print(f"| {title} | {name} | {rps:,.0f} | {p99s} | {per:.1f} | {errors} |", flush=True)


if __name__ == "__main__":
    main()
