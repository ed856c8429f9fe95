#!/usr/bin/env bash
# Instructions per request on the server's per-packet path, under callgrind:
# stable on a noisy machine, where CPU time is not.
#
#   bench/callgrind_serve.sh [SERVER_BIN ...]
#
# Each server binary is either an `asyncapy` build (run as `serve`) or the
# yardstick (run as it is; recognised by its file name). For each, the server
# runs under `valgrind --tool=callgrind` twice, answering N and then 2N requests
# from `asyncapy bench -n` (release build at target/release/asyncapy or
# $BENCH_CLIENT); the difference of the two totals over N is its instructions
# per request, with start-up and shutdown cancelled out. The callgrind output
# of the 2N run is kept in bench/results/callgrind-STAMP/ for callgrind_annotate.
#
# Environment: CG_REQUESTS (N, default 20000), CG_CONNECTIONS (16),
# CG_PIPELINE (16), CG_PAYLOAD (64), CG_ENCODING (json), CG_MODE (persistent,
# or per-request: one connection per request, so the figure is per connection).
# Talks to 127.0.0.1 only; every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
N=${CG_REQUESTS:-20000}
C=${CG_CONNECTIONS:-16}
P=${CG_PIPELINE:-16}
S=${CG_PAYLOAD:-64}
E=${CG_ENCODING:-json}
M=${CG_MODE:-persistent}
CLIENT=${BENCH_CLIENT:-$ROOT/target/release/asyncapy}
if [[ $# -eq 0 ]]; then
    set -- "$ROOT/target/release/examples/yardstick" "$ROOT/target/release/asyncapy"
fi
OUT="$ROOT/bench/results/callgrind-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"

SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs server $1 under callgrind for $2 requests; prints its total Ir.
measure() {
    local bin=$1 count=$2 tag=$3 log="$OUT/$3.log" cgout="$OUT/callgrind.out.$3"
    local args=(serve --addr 127.0.0.1 --port 0 --logging-level 30)
    [[ $(basename "$bin") == yardstick* ]] && args=(--addr 127.0.0.1 --port 0)
    : >"$log"
    valgrind --tool=callgrind --callgrind-out-file="$cgout" "$bin" "${args[@]}" >"$log" 2>"$log.stderr" &
    SERVER_PID=$!
    local port="" i
    for i in $(seq 600); do
        port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$log" | head -n1)
        [[ -n "$port" ]] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z "$port" ]]; then
        echo "$bin did not start under valgrind (see $log.stderr)" >&2
        return 1
    fi
    "$CLIENT" bench --host 127.0.0.1 --port "$port" --threads 1 --no-progress \
        -c "$C" -p "$P" --payload-size "$S" -e "$E" --mode "$M" -n "$count" >"$OUT/$tag.bench" 2>&1
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
    sed -n 's/^summary: *//p' "$cgout"
}

printf '%-50s %14s\n' "server (c=$C p=$P ${S}B $E, N=$N)" "instr/request"
for bin in "$@"; do
    name=$(basename "$(dirname "$bin")")/$(basename "$bin")
    tag=$(echo "$name" | tr '/' '_')
    one=$(measure "$bin" "$N" "$tag-1")
    two=$(measure "$bin" $((2 * N)) "$tag-2")
    printf '%-50s %14s\n' "$bin" $(((two - one) / N))
done
echo "callgrind output: $OUT" >&2
