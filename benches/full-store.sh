#!/usr/bin/env bash
# Load benchmark (not a test): an operator in attested mode syncing a full-size synthetic store
# (1,048,576 salt buckets, 10,000,000 opt-out entries) from the local Core/OptOut service.
# Reports the time from process start to a healthy /ops/healthcheck, and the operator's RSS then
# (VmRSS) and at its peak (VmHWM). Loopback only; every wait is bounded.
#
#   benches/full-store.sh [--buckets N] [--optouts N] [--store DIR] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."

buckets=1048576
optouts=10000000
store=""
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --buckets) buckets="$2"; shift 2 ;;
        --optouts) optouts="$2"; shift 2 ;;
        --store) store="$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        *) echo "unknown argument: $1" >&2; exit 64 ;;
    esac
done

work="$(mktemp -d /tmp/uid2-full-store.XXXXXX)"
store="${store:-$work/store}"
core_pid=""
operator_pid=""
cleanup() {
    if [ -n "$operator_pid" ]; then kill "$operator_pid" 2>/dev/null || true; fi
    if [ -n "$core_pid" ]; then kill "$core_pid" 2>/dev/null || true; fi
    if [ "$keep" = 0 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

cargo build --release -q -p uid2-local-core -p uid2-operator
bin="$PWD/target/release"

if [ ! -d "$store/salts" ]; then
    echo "generating a store: $buckets buckets, $optouts opt-outs"
    "$bin/uid2-local-core" generate-store --out "$store" --buckets "$buckets" --optouts "$optouts" --seed 7
fi

port_core=18088
port_api=18080
port_metrics=19080
"$bin/uid2-local-core" --store "$store" --listen "127.0.0.1:$port_core" >"$work/core.log" 2>&1 &
core_pid=$!
for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port_core/_test/faults" && break
    sleep 0.1
done

sed -e "s#127.0.0.1:8088#127.0.0.1:$port_core#g" \
    -e "s#/tmp/uid2-local-operator/optout/#$work/optout/#" conf/attested-local-config.json |
    python3 -c "import json,sys; c=json.load(sys.stdin); c.update(http_port=$port_api, metrics_port=$port_metrics); print(json.dumps(c))" \
    >"$work/operator.json"

start=$(date +%s.%N)
"$bin/uid2-operator" --config "$work/operator.json" >"$work/operator.log" 2>&1 &
operator_pid=$!
ready=""
for _ in $(seq 1 1200); do
    if [ "$(curl -s "http://127.0.0.1:$port_api/ops/healthcheck")" = "OK" ]; then
        ready=$(date +%s.%N)
        break
    fi
    if ! kill -0 "$operator_pid" 2>/dev/null; then
        echo "the operator exited; log:" >&2
        cat "$work/operator.log" >&2
        exit 1
    fi
    sleep 0.05
done
if [ -z "$ready" ]; then
    echo "not healthy within 60 s; log:" >&2
    tail -20 "$work/operator.log" >&2
    exit 1
fi
rss=$(awk '/VmRSS/ {print $2}' "/proc/$operator_pid/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$operator_pid/status")
entries=$(curl -s "http://127.0.0.1:$port_metrics/metrics" | awk '/^uid2_optout_entries/ {print $2}')
printf 'buckets=%s optouts=%s indexed=%s\n' "$buckets" "$optouts" "${entries:-?}"
printf 'ready_after_s=%.2f rss_mib=%d peak_rss_mib=%d\n' "$(echo "$ready - $start" | bc)" $((rss / 1024)) $((hwm / 1024))
