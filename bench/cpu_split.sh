#!/usr/bin/env bash
# Server CPU per request split into user and system time, with minor page
# faults per request: where a server's cost goes, beside another in one run.
#
#   bench/cpu_split.sh NAME SERVER_COMMAND...
#
# The server command must print `listening on ADDR:PORT` (both `asyncapy
# serve --port 0` and the yardstick do). It runs pinned to core 0
# (BENCH_SERVER_CORE); `asyncapy bench --threads 1` loads it from core 1
# (BENCH_CLIENT_CORE) for a 1 s warm-up, then for DUR seconds, between two
# readings of the server's /proc/PID/stat (utime, stime, minflt).
#
# Environment: C (connections, 16), P (pipeline, 1), S (payload bytes,
# 65536), E (json or ziproto), DUR (seconds, 3), BENCH_CLIENT (the
# asyncapy binary that loads, target/release/asyncapy).
# Talks to 127.0.0.1 only; the server is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1
shift
CLIENT=${BENCH_CLIENT:-target/release/asyncapy}
log=$(mktemp)
pid=""
cleanup() {
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -f "$log"
}
trap cleanup EXIT
taskset -c "${BENCH_SERVER_CORE:-0}" "$@" >"$log" 2>&1 &
pid=$!
port=""
for _ in $(seq 200); do
    port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$log" | head -n1)
    [[ -n "$port" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.05
done
[[ -n "$port" ]] || { echo "$name: no listening line" >&2; exit 1; }
load() {
    taskset -c "${BENCH_CLIENT_CORE:-1}" "$CLIENT" bench --host 127.0.0.1 --port "$port" \
        -c "${C:-16}" -p "${P:-1}" --payload-size "${S:-65536}" -e "${E:-json}" \
        --threads 1 --no-progress "$@"
}
load -d 1s >/dev/null
read -r u0 s0 f0 < <(awk '{print $14, $15, $10}' "/proc/$pid/stat")
report=$(load -d "${DUR:-3}s" --json)
read -r u1 s1 f1 < <(awk '{print $14, $15, $10}' "/proc/$pid/stat")
python3 - "$name" "$(getconf CLK_TCK)" "$u0" "$u1" "$s0" "$s1" "$f0" "$f1" "$report" <<'PY'
import json, sys
name, tck, u0, u1, s0, s1, f0, f1 = sys.argv[1], *map(int, sys.argv[2:9])
n = json.loads(sys.argv[9])["requests"]
us = lambda a, b: (b - a) / tck / n * 1e6
print(f"{name:<12} requests {n:>8}  user {us(u0, u1):6.2f} µs  system {us(s0, s1):6.2f} µs"
      f"  total {us(u0, u1) + us(s0, s1):6.2f} µs  minor faults {(f1 - f0) / n:.2f} a request")
PY
