#!/usr/bin/env bash
# Throughput, latency and server CPU cost of `asyncapy serve` against the
# yardstick (a minimal hand-written tokio echo server), over a matrix of
# configurations.
#
#   bench/run.sh [quick|full]
#
# For each configuration the two servers run one after the other (yardstick,
# then serve), so both see the same machine conditions. The server is pinned to
# core 0 and the load generator (`asyncapy bench --threads 1`) to core 1. The
# server's CPU time (utime+stime from /proc/PID/stat) is sampled when the
# warm-up ends and when the run is over, giving server CPU µs per request.
#
# Output: a Markdown table on stdout, also written to bench/results/ with the
# raw JSON reports.
#
# Environment (all optional):
#   BENCH_DURATION     seconds measured per run      (quick 2, full 5)
#   BENCH_WARMUP       seconds of warm-up per run    (quick 0.5, full 1)
#   BENCH_SERVERS      servers to measure            ("yardstick serve"; also
#                      serve-base: the asyncapy binary at $BENCH_BASE_BIN)
#   BENCH_CONNECTIONS  connection counts             (full: "1 16 256")
#   BENCH_PIPELINE     pipeline depths               (full: "1 16")
#   BENCH_PAYLOAD      payload sizes in bytes        (full: "64 65536")
#   BENCH_ZIPROTO      also run the ZiProto subset   (1; 0 to skip)
#   BENCH_SERVER_CORE / BENCH_CLIENT_CORE            (0 / 1)
#   BENCH_NO_BUILD=1   use the binaries already in target/release
#
# Everything talks to 127.0.0.1 only; every process started here is stopped on
# exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

PROFILE=${1:-full}
case "$PROFILE" in
quick)
    DURATION=${BENCH_DURATION:-2}
    WARMUP=${BENCH_WARMUP:-0.5}
    ;;
full)
    DURATION=${BENCH_DURATION:-5}
    WARMUP=${BENCH_WARMUP:-1}
    ;;
*)
    echo "usage: $0 [quick|full]" >&2
    exit 2
    ;;
esac
SERVERS=${BENCH_SERVERS:-yardstick serve}
SERVER_CORE=${BENCH_SERVER_CORE:-0}
CLIENT_CORE=${BENCH_CLIENT_CORE:-1}
CLK_TCK=$(getconf CLK_TCK)

BIN="$ROOT/target/release/asyncapy"
YARDSTICK="$ROOT/target/release/examples/yardstick"

# The matrix: one "connections pipeline payload encoding" per line.
matrix() {
    if [[ "$PROFILE" == quick ]]; then
        cat <<EOF
16 1 64 json
16 16 64 json
256 16 64 json
16 16 65536 json
16 16 64 ziproto
EOF
        return
    fi
    local c p s
    for c in ${BENCH_CONNECTIONS:-1 16 256}; do
        for p in ${BENCH_PIPELINE:-1 16}; do
            for s in ${BENCH_PAYLOAD:-64 65536}; do
                echo "$c $p $s json"
            done
        done
    done
    if [[ "${BENCH_ZIPROTO:-1}" == 1 ]]; then
        for p in ${BENCH_PIPELINE:-1 16}; do
            for s in ${BENCH_PAYLOAD:-64 65536}; do
                echo "16 $p $s ziproto"
            done
        done
    fi
}

STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS="$ROOT/bench/results"
RUN_DIR="$RESULTS/$STAMP"
mkdir -p "$RUN_DIR"
ROWS="$RUN_DIR/rows.tsv"
: >"$ROWS"

SERVER_PID=""
CLIENT_PID=""
cleanup() {
    for pid in $CLIENT_PID $SERVER_PID; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    echo "building release binaries..." >&2
    cargo build --release -p asyncapy-cli --bin asyncapy --example yardstick >&2
fi

# Starts server $1 pinned to the server core; sets SERVER_PID and SERVER_PORT.
start_server() {
    local name=$1 out="$RUN_DIR/server.out"
    : >"$out"
    case "$name" in
    yardstick) taskset -c "$SERVER_CORE" "$YARDSTICK" --addr 127.0.0.1 --port 0 >"$out" 2>"$RUN_DIR/$name.stderr" & ;;
    serve) taskset -c "$SERVER_CORE" "$BIN" serve --addr 127.0.0.1 --port 0 --logging-level 30 >"$out" 2>"$RUN_DIR/$name.stderr" & ;;
    serve-base)
        # Another build of asyncapy (e.g. of the commit before a change), for
        # before/after figures in one run.
        if [[ -z "${BENCH_BASE_BIN:-}" ]]; then
            echo "serve-base needs BENCH_BASE_BIN (the path of another asyncapy binary)" >&2
            return 1
        fi
        taskset -c "$SERVER_CORE" "$BENCH_BASE_BIN" serve --addr 127.0.0.1 --port 0 --logging-level 30 >"$out" 2>"$RUN_DIR/$name.stderr" &
        ;;
    *)
        echo "unknown server $name" >&2
        return 1
        ;;
    esac
    SERVER_PID=$!
    local i
    for i in $(seq 200); do
        if grep -q '^listening on ' "$out"; then
            SERVER_PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out" | head -n1)
            return 0
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            break
        fi
        sleep 0.05
    done
    echo "server $name did not start (see $RUN_DIR/$name.stderr)" >&2
    stop_server
    return 1
}

stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

# utime + stime of $1, in clock ticks.
# Prints nothing when the process is gone.
cpu_ticks() {
    # Fields after the ")" that closes the command name: utime and stime are
    # fields 14 and 15 of the whole line, 12 and 13 after it.
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    awk '{ print $12 + $13 }' <<<"${stat##*) }"
}

# Check which servers can run at all.
AVAILABLE=""
for server in $SERVERS; do
    if start_server "$server"; then
        AVAILABLE="$AVAILABLE $server"
        stop_server
    else
        echo "skipping $server: it does not start" >&2
    fi
done
if [[ -z "$AVAILABLE" ]]; then
    echo "no server to measure" >&2
    exit 1
fi

while read -r conns pipeline payload encoding; do
    config="c=$conns p=$pipeline ${payload}B $encoding"
    for server in $AVAILABLE; do
        echo "== $config :: $server" >&2
        start_server "$server" || continue
        report="$RUN_DIR/$server-c$conns-p$pipeline-s$payload-$encoding.json"
        taskset -c "$CLIENT_CORE" "$BIN" bench --host 127.0.0.1 --port "$SERVER_PORT" \
            --threads 1 --json --no-progress \
            -c "$conns" -p "$pipeline" --payload-size "$payload" -e "$encoding" \
            -d "${DURATION}s" --warmup "${WARMUP}s" >"$report" 2>"$report.stderr" &
        CLIENT_PID=$!
        sleep "$WARMUP"
        cpu_before=$(cpu_ticks "$SERVER_PID")
        status=0
        wait "$CLIENT_PID" || status=$?
        CLIENT_PID=""
        cpu_after=$(cpu_ticks "$SERVER_PID")
        stop_server
        if [[ -n "$cpu_before" && -n "$cpu_after" ]]; then
            cpu=$((cpu_after - cpu_before))
        else
            cpu=nan
            echo "   the server exited during the run" >&2
        fi
        if [[ ! -s "$report" ]]; then
            echo "   no report (exit $status): $(head -c 300 "$report.stderr")" >&2
            continue
        fi
        printf '%s\t%s\t%s\t%s\t%s\n' "$config" "$server" "$report" \
            "$cpu" "$status" >>"$ROWS"
    done
done < <(matrix)

TABLE="$RESULTS/$STAMP.md"
python3 - "$ROWS" "$CLK_TCK" "$PROFILE" "$DURATION" "$WARMUP" >"$TABLE" <<'EOF'
import json, sys

rows_path, clk_tck, profile, duration, warmup = sys.argv[1:]
clk_tck = float(clk_tck)
rows = []
with open(rows_path) as f:
    for line in f:
        config, server, report, ticks, status = line.rstrip("\n").split("\t")
        with open(report) as r:
            rep = json.load(r)
        requests = rep["requests"]
        cpu_us = float(ticks) / clk_tck * 1e6 / requests if requests else float("nan")
        rows.append({
            "config": config, "server": server, "rps": rep["requests_per_sec"],
            "p99": rep["latency_us"]["p99"], "cpu": cpu_us,
            "errors": rep["errors"]["total"],
        })

yard = {r["config"]: r for r in rows if r["server"] == "yardstick"}
print(f"AsyncAProto echo benchmark ({profile}: {duration} s per run after {warmup} s warm-up; "
      "server on one core, `asyncapy bench --threads 1` on another)\n")
print("| config | server | req/s | p99 µs | server CPU µs/req | req/s serve/yardstick | CPU/req serve/yardstick | errors |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    ratio_rps = ratio_cpu = ""
    base = yard.get(r["config"])
    if r["server"] in ("serve", "serve-base") and base:
        if base["rps"]:
            ratio_rps = f"{r['rps'] / base['rps']:.2f}"
        if base["cpu"] == base["cpu"] and base["cpu"] > 0:
            ratio_cpu = f"{r['cpu'] / base['cpu']:.2f}"
    print(f"| {r['config']} | {r['server']} | {r['rps']:,.0f} | {r['p99']:,} | "
          f"{r['cpu']:.2f} | {ratio_rps} | {ratio_cpu} | {r['errors']} |")
EOF
cat "$TABLE"
echo >&2
echo "table: $TABLE; raw reports: $RUN_DIR" >&2
