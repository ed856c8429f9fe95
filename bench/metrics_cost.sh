#!/usr/bin/env bash
# Server CPU per request of `asyncapy serve` with metrics off and on
# (`--metrics-addr 127.0.0.1:0`), 16 connections, unpipelined and pipelined
# (16), 64-byte JSON echoes. Rounds alternate off/on so both see the same
# machine conditions; the server is pinned to one core and `asyncapy bench
# --threads 1` to the other, and the server's utime+stime is read from
# /proc/PID/stat after the warm-up and at the end, as bench/run.sh does.
#
#   bench/metrics_cost.sh            (BENCH_ROUNDS=3, BENCH_DURATION=3, BENCH_WARMUP=0.5)
#
# Prints one line per run and, per pipeline depth, the ratio on/off of the
# median CPU per request. Expects target/release/asyncapy (or $ASYNCAPY_BIN).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${ASYNCAPY_BIN:-${CARGO_TARGET_DIR:-target}/release/asyncapy}
ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-3}
WARMUP=${BENCH_WARMUP:-0.5}
CLK_TCK=$(getconf CLK_TCK)
OUT=$(mktemp -d)
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$OUT"
}
trap cleanup EXIT

cpu_ticks() { local stat; stat=$(cat "/proc/$1/stat"); awk '{ print $12 + $13 }' <<<"${stat##*) }"; }

run() { # mode pipeline
    local mode=$1 pipeline=$2 extra=()
    [[ $mode == on ]] && extra=(--metrics-addr 127.0.0.1:0)
    : >"$OUT/server.out"
    taskset -c 0 "$BIN" serve --addr 127.0.0.1 --port 0 --logging-level 40 "${extra[@]}" >"$OUT/server.out" 2>"$OUT/server.err" &
    SERVER_PID=$!
    local port=""
    for _ in $(seq 200); do
        port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$OUT/server.out" | head -n1)
        [[ -n $port ]] && break
        sleep 0.05
    done
    taskset -c 1 "$BIN" bench --host 127.0.0.1 --port "$port" --threads 1 --json --no-progress \
        -c 16 -p "$pipeline" --payload-size 64 -e json -d "${DURATION}s" --warmup "${WARMUP}s" >"$OUT/report.json" &
    local client=$!
    sleep "$WARMUP"
    local before after
    before=$(cpu_ticks "$SERVER_PID")
    wait "$client"
    after=$(cpu_ticks "$SERVER_PID")
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
    python3 - "$mode" "$pipeline" $((after - before)) "$CLK_TCK" "$OUT/report.json" <<'EOF'
import json, sys
mode, pipeline, ticks, clk, path = sys.argv[1:]
rep = json.load(open(path))
cpu = float(ticks) / float(clk) * 1e6 / rep["requests"]
print(f"{mode}\t{pipeline}\t{rep['requests_per_sec']:.0f}\t{cpu:.3f}\t{rep['errors']['total']}")
EOF
}

echo -e "metrics\tpipeline\treq/s\tcpu_us_per_req\terrors" | tee "$OUT/rows.tsv" >&2
for round in $(seq "$ROUNDS"); do
    for pipeline in 1 16; do
        for mode in off on; do
            run "$mode" "$pipeline" | tee -a "$OUT/rows.tsv"
        done
    done
done
python3 - "$OUT/rows.tsv" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l[0] in "o"]
for p in ("1", "16"):
    off = [float(r[3]) for r in rows if r[0] == "off" and r[1] == p]
    on = [float(r[3]) for r in rows if r[0] == "on" and r[1] == p]
    ratios = [b / a for a, b in zip(off, on)]
    print(f"pipeline {p}: CPU/req median off {statistics.median(off):.3f} us, on {statistics.median(on):.3f} us, "
          f"ratio on/off of medians {statistics.median(on) / statistics.median(off):.3f}, "
          f"per round {', '.join(f'{r:.3f}' for r in ratios)}")
EOF
