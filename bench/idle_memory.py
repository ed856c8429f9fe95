#!/usr/bin/env python3
"""Memory cost of idle connections: start a server, open N idle TCP connections
to it (10,000 by default), and report the growth of its resident set per
connection.

    bench/idle_memory.py [--server yardstick|serve|serve-proxy] [--connections 10000]

With `serve-proxy` the server runs with `--proxy-protocol` and each connection
first sends a PROXY v1 header naming a client of its own (the path of a server
behind a load balancer), then idles.

The server's RSS (VmRSS in /proc/PID/status) is read before the connections are
opened and again once the server has accepted all of them (its count of open
file descriptors has risen by N). Connections are opened in batches, each one
waited for, so the listen backlog never overflows. Everything talks to
127.0.0.1 only, and the server and every socket are closed on exit.
"""

import argparse
import os
import resource
import select
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARIES = {
    "yardstick": [os.path.join(ROOT, "target/release/examples/yardstick")],
    "serve": [os.path.join(ROOT, "target/release/asyncapy"), "serve"],
    "serve-quiet": [os.path.join(ROOT, "target/release/asyncapy"), "serve", "--logging-level", "30"],
    "serve-proxy": [os.path.join(ROOT, "target/release/asyncapy"), "serve", "--proxy-protocol"],
}


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for the server")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


def start_server(command, timeout=10.0):
    """Starts the server on port 0; returns (process, port) once it listens."""
    proc = subprocess.Popen(
        command + ["--addr", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    # The first line is "listening on ADDR"; a server that dies closes stdout.
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("listening on "):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{command} did not start (first line {line!r})")
    return proc, int(line.rsplit(":", 1)[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=sorted(BINARIES), default="yardstick")
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--no-build", action="store_true", help="use target/release as it is")
    args = parser.parse_args()
    if not 1 <= args.connections <= 20_000:
        parser.error("--connections must be between 1 and 20000")

    if not args.no_build:
        subprocess.run(
            ["cargo", "build", "--release", "-p", "asyncapy-cli", "--bin", "asyncapy",
             "--example", "yardstick"],
            cwd=ROOT, check=True, stdout=sys.stderr,
        )

    # Room for N sockets here and N in the server (which inherits the limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = args.connections + 256
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            sys.exit(f"the open-file limit is {hard}; {needed} are needed")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))

    proc, port = start_server(BINARIES[args.server])
    sockets = []
    try:
        # Let the server settle, then take the baseline.
        time.sleep(0.2)
        fds_before = fd_count(proc.pid)
        rss_before = rss_bytes(proc.pid)

        while len(sockets) < args.connections:
            for _ in range(min(args.batch, args.connections - len(sockets))):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                if args.server == "serve-proxy":
                    n = len(sockets)
                    client = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
                    sock.sendall(f"PROXY TCP4 {client} 127.0.0.1 40000 {port}\r\n".encode())
                sockets.append(sock)
            expected = fds_before + len(sockets)
            wait_until(lambda: fd_count(proc.pid) >= expected, 10, f"{expected} server fds")

        time.sleep(0.5)
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        rss_after = rss_bytes(proc.pid)
        per_conn = (rss_after - rss_before) / args.connections
        print(f"server: {args.server}")
        print(f"idle connections: {args.connections}")
        print(f"RSS before: {rss_before / 1024:.0f} KiB, after: {rss_after / 1024:.0f} KiB")
        print(f"bytes per idle connection: {per_conn:.0f}")
    finally:
        for s in sockets:
            s.close()
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
