#!/usr/bin/env bash
# Runs fuzz targets for a fixed time each and prints their figures.
#
#   fuzz/run.sh SECONDS [TARGET...]      every target when none is named
#
# Environment:
#   RUNS=N          also stop a target after N executions (libFuzzer -runs)
#   SLOW_MS=10      the per-input time budget checked at the end (default 10 ms)
#   MAX_CRASHES=5   restarts after a crash, within the time left, before giving up
#   FUZZ_ARGS=...   more libFuzzer options (e.g. -max_len=8192)
#
# Each target runs on stable Rust (`cargo fuzz run -s none`, with debug
# assertions and overflow checks: `-a`) over a COPY of its seed corpus in a
# temporary directory, so the committed corpus never grows. libFuzzer limits:
# 256 MB of RSS, 1 s per input. libFuzzer times inputs in whole seconds only, so
# the targets record the slowest input they saw (the fastest of three runs:
# see `timed` in src/lib.rs);
# at the end it is re-timed alone (the mean of 200 runs) and checked against
# SLOW_MS. Crash, timeout and out-of-memory inputs land in fuzz/artifacts/TARGET/.
#
# Prints one line per target: executions, exec/s, peak RSS, the slowest input
# (re-timed), crashes. Exits non-zero when a target crashed or an input was
# over the time budget.
set -euo pipefail

usage() {
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
}
[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
seconds=$1
shift

cd "$(dirname "$0")"
all_targets=$(cargo fuzz list)
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets <<<"$all_targets"
fi
for t in "${targets[@]}"; do
    grep -qx -- "$t" <<<"$all_targets" || {
        echo "unknown target '$t'; targets: $(echo $all_targets)" >&2
        exit 2
    }
done

slow_ms=${SLOW_MS:-10}
max_crashes=${MAX_CRASHES:-5}
read -r -a extra <<<"${FUZZ_ARGS:-}"
runs=()
[[ -n ${RUNS:-} ]] && runs=("-runs=$RUNS")

cargo fuzz build -s none -a
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir=target/$triple/release

work=$(mktemp -d "${TMPDIR:-/tmp}/asyncapy-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

status=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "$work/$t/corpus" "artifacts/$t"
    cp corpus/"$t"/* "$work/$t/corpus/" 2>/dev/null || true
    export ASYNCAPY_FUZZ_SLOWEST="$work/$t/slowest"
    execs=0 crashes=0 rss=0 left=$seconds
    # Build first (a no-op unless sources changed since), so that exec/s
    # counts fuzzing time only.
    cargo fuzz build -s none -a "$t" >/dev/null 2>&1 || cargo fuzz build -s none -a "$t"
    start=$(date +%s)
    log="$work/$t/log"
    echo "== $t: ${seconds}s${RUNS:+ or $RUNS executions}" >&2
    while ((left > 0)); do
        rc=0
        cargo fuzz run -s none -a "$t" "$work/$t/corpus" -- \
            -max_total_time="$left" -rss_limit_mb=256 -timeout=1 \
            -print_final_stats=1 "${runs[@]}" "${extra[@]}" >"$log" 2>&1 || rc=$?
        n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        r=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
        execs=$((execs + ${n:-0}))
        ((${r:-0} > rss)) && rss=${r:-0}
        if ((rc == 0)); then
            break
        fi
        crashes=$((crashes + 1))
        status=1
        echo "-- $t crashed (exit $rc):" >&2
        grep -E "^(thread '|==[0-9]+== ERROR|SUMMARY|artifact_prefix|Test unit written|.*panicked at)" "$log" | head -8 >&2 || true
        cp "$log" "artifacts/$t/crash-$crashes.log"
        ((crashes >= max_crashes)) && break
        [[ -n ${RUNS:-} ]] && break
        left=$((seconds - ($(date +%s) - start)))
    done
    elapsed=$(($(date +%s) - start))
    ((elapsed > 0)) || elapsed=1

    # The slowest input seen, re-timed alone: the mean of 200 runs.
    slowest="-"
    if [[ -s $ASYNCAPY_FUZZ_SLOWEST ]]; then
        time_runs() {
            "$bin_dir/$t" -runs="$1" -rss_limit_mb=256 "$ASYNCAPY_FUZZ_SLOWEST" 2>&1 |
                sed -n 's/^Executed .* in \([0-9]*\) ms$/\1/p'
        }
        n=1
        ms=$(time_runs 1)
        if ((${ms:-0} < 50)); then
            n=200
            ms=$(time_runs $n)
        fi
        seen_us=$(($(cat "$ASYNCAPY_FUZZ_SLOWEST.ns") / 1000))
        size=$(stat -c %s "$ASYNCAPY_FUZZ_SLOWEST")
        mean_us=$((${ms:-0} * 1000 / n))
        slowest="${mean_us}us alone (${seen_us}us in the run, ${size} bytes)"
        if ((mean_us > slow_ms * 1000)); then
            cp "$ASYNCAPY_FUZZ_SLOWEST" "artifacts/$t/slow-unit-$(sha1sum <"$ASYNCAPY_FUZZ_SLOWEST" | cut -c1-16)"
            slowest="$slowest OVER ${slow_ms}ms"
            status=1
        fi
    fi
    line=$(printf '%-14s executions %11d  exec/s %8d  peak RSS %4d MB  slowest %s  crashes %d' \
        "$t" "$execs" $((execs / elapsed)) "$rss" "$slowest" "$crashes")
    echo "$line" >&2
    summary+=("$line")
done

echo
echo "fuzz figures (${seconds}s per target${RUNS:+, at most $RUNS executions}):"
printf '%s\n' "${summary[@]}"
exit $status
