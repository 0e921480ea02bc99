#!/usr/bin/env bash
# Where the operator's CPU time goes (not a test): `perf record -e cpu-clock` on the operator
# serving the full-size store in local mode, pinned to CPU 0, while uid2-load (CPU 1) drives one
# scenario; or on the operator's startup with that store. Prints the top symbols by self time.
# docs/performance.md quotes these profiles for the targets it misses.
#
#   benches/profile.sh [--seconds 10] [--top 30] [--store DIR] [--no-build] SCENARIO
#
#   SCENARIO  generate | refresh | key-sharing | map-v2 | map-v3 | startup
#   --store   a store made by benches/load.sh (default: its full-size store in the cache)
#
# The operator is built with line tables (CARGO_PROFILE_RELEASE_DEBUG=line-tables-only) in its
# own target directory ($UID2_PROFILE_TARGET, default /tmp/uid2-profile-target) so that the
# normal release build is untouched. Needs perf (linux-perf); hardware counters are not needed
# (a VM often has none), cpu-clock sampling is. Loopback only; the load run is bounded by
# --seconds and uid2-load's own caps; every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=10
top=30
build=1
store="${UID2_LOAD_STORE_CACHE:-${CARGO_TARGET_DIR:-$PWD/target}/uid2-load-stores}/store-1048576-10000000-seed7"
scenario=""
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --top) top="$2"; shift 2 ;;
        --store) store="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        generate | refresh | key-sharing | map-v2 | map-v3 | startup) scenario="$1"; shift ;;
        *) echo "unknown argument: $1" >&2; exit 64 ;;
    esac
done
[ -n "$scenario" ] || { echo "a scenario is required (see the header)" >&2; exit 64; }
for n in "$seconds" "$top"; do
    case "$n" in '' | *[!0-9]*) echo "not a whole number: $n" >&2; exit 64 ;; esac
done
if [ "$seconds" -lt 1 ] || [ "$seconds" -gt 60 ]; then echo "--seconds: 1..60" >&2; exit 64; fi
[ -f "$store/salts/metadata.json" ] || {
    echo "no store at $store: run benches/load.sh once (it generates and caches it)" >&2
    exit 1
}
for tool in cargo curl perf taskset; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

target="${UID2_PROFILE_TARGET:-/tmp/uid2-profile-target}"
if [ "$build" = 1 ]; then
    CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR="$target" \
        cargo build --release -q -p uid2-operator -p uid2-load
fi

work="$(mktemp -d /tmp/uid2-profile.XXXXXX)"
server_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=SCRIPTDIR/ports.sh
. benches/ports.sh
api_port=$(free_port 18280 28280 38280 48280)
metrics_port=$(free_port 19280 29280 39280 49280)
printf '{"local_store_dir": "%s", "service_instances": 1, "http_port": %s, "metrics_port": %s}\n' \
    "$store" "$api_port" "$metrics_port" >"$work/operator.json"
url="http://127.0.0.1:$api_port"

wait_healthy() {
    for _ in $(seq 1 3000); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/ops/healthcheck")" = 200 ]; then return 0; fi
        kill -0 "$server_pid" 2>/dev/null || { echo "the operator exited:" >&2; tail -20 "$work/operator.log" >&2; exit 1; }
        sleep 0.02
    done
    echo "not healthy within 60 s" >&2
    exit 1
}

if [ "$scenario" = startup ]; then
    # perf runs the operator, so the whole start (store load, opt-out index) is sampled.
    taskset -c 0 perf record -q -e cpu-clock -F 999 -g -o "$work/perf.data" \
        "$target/release/uid2-operator" --config "$work/operator.json" >"$work/operator.log" 2>&1 &
    server_pid=$!
    started=$(date +%s.%N)
    wait_healthy
    echo "startup: healthy after $(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}') s (under perf)"
    kill -INT "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
else
    taskset -c 0 "$target/release/uid2-operator" --config "$work/operator.json" >"$work/operator.log" 2>&1 &
    server_pid=$!
    wait_healthy
    connections=16
    case "$scenario" in map-*) connections=4 ;; esac
    perf record -q -e cpu-clock -F 999 -g -p "$server_pid" -o "$work/perf.data" -- sleep "$seconds" \
        >"$work/perf.log" 2>&1 &
    perf_pid=$!
    taskset -c 1 "$target/release/uid2-load" --url "$url" --scenario "$scenario" \
        --connections "$connections" --duration "$seconds" --timeout 10 --requests 10000000
    wait "$perf_pid" || { cat "$work/perf.log" >&2; exit 1; }
fi

echo "top $top symbols by self time ($scenario, operator pinned to CPU 0):"
perf report -i "$work/perf.data" --no-children --stdio --sort symbol 2>/dev/null |
    grep -E '^ +[0-9.]+%' | head -n "$top" | sed -E 's/ +- +- +$//; s/ +$//'
