#!/usr/bin/env bash
# Server CPU per request of the yardstick and `asyncapy serve` at the same
# offered load (`asyncapy bench --rate`), alternating, twice each: the server on
# core 0, the load on core 1, CPU time (utime + stime) from /proc/PID/stat over
# the measured 6 s. Build first: cargo build --release -p asyncapy-cli --bin
# asyncapy --example yardstick.
#
#   bench/rate_compare.sh RATE CONNECTIONS PIPELINE     e.g. 250000 16 16
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 RATE CONNECTIONS PIPELINE" >&2; exit 2; }
RATE=$1; C=$2; P=$3
cd "$(dirname "$0")/.."
TMPDIR_RC=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMPDIR_RC"' EXIT
for round in 1 2; do
for name in yardstick serve; do
  rm -f "$TMPDIR_RC/srv.out"
  if [ $name = serve ]; then
    taskset -c 0 ./target/release/asyncapy serve --addr 127.0.0.1 --port 0 --logging-level 30 > "$TMPDIR_RC/srv.out" 2>/dev/null &
  else
    taskset -c 0 ./target/release/examples/yardstick --addr 127.0.0.1 --port 0 > "$TMPDIR_RC/srv.out" 2>/dev/null &
  fi
  SPID=$!
  for i in $(seq 50); do grep -q "listening on" "$TMPDIR_RC/srv.out" && break; sleep 0.1; done
  PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$TMPDIR_RC/srv.out")
  taskset -c 1 ./target/release/asyncapy bench --port $PORT --threads 1 --no-progress --json -c $C -p $P --rate $RATE -d 6s --warmup 1s > $TMPDIR_RC/b.json 2>/dev/null &
  BPID=$!
  sleep 1
  t0=$(awk '{print $14+$15}' /proc/$SPID/stat)
  wait $BPID
  t1=$(awk '{print $14+$15}' /proc/$SPID/stat)
  kill $SPID; wait $SPID 2>/dev/null || true
  python3 - "$name" "$t0" "$t1" "$TMPDIR_RC/b.json" <<'PY'
import json,sys
name,t0,t1=sys.argv[1],int(sys.argv[2]),int(sys.argv[3])
r=json.load(open(sys.argv[4]))
req=r['requests']; secs=r['duration_secs']
cpu=(t1-t0)/100.0
print(f"{name:10s} req/s {r['requests_per_sec']:>10.0f}  p50 {r['latency_us']['p50']:>6} p99 {r['latency_us']['p99']:>7} us  cpu {cpu:5.2f}s  cpu/req {cpu/req*1e6:6.2f} us  errors {r['errors']['total']}")
PY
done
done
