#!/usr/bin/env bash
# Load benchmark (not a test): the operator binary's size, and its memory under load in local
# mode (the bundled test store). Each scenario of tools/uid2-load runs against a fresh operator
# process, so its peak RSS (VmHWM at the end) is that scenario's alone; a last phase runs all of
# them at once. RSS is also sampled (VmRSS, every 100 ms) while the load runs. Loopback only;
# every wait and every load run is bounded; the operator is always stopped.
#
# The server is pinned to CPU 0 and the client to CPU 1 with taskset when there are two CPUs, so
# the figures are one server core (as in ../shared/reference/perf.md §5); --no-pin shares both.
#
#   benches/local-load-rss.sh [--seconds 15] [--connections 16] [--map-connections 4]
#                             [--batch 5000] [--no-pin] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=15
connections=16
map_connections=4
batch=5000
pin=1
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --connections) connections="$2"; shift 2 ;;
        --map-connections) map_connections="$2"; shift 2 ;;
        --batch) batch="$2"; shift 2 ;;
        --no-pin) pin=0; shift ;;
        --no-build) build=0; shift ;;
        *) echo "unknown argument: $1" >&2; exit 64 ;;
    esac
done

work="$(mktemp -d /tmp/uid2-local-load.XXXXXX)"
operator_pid=""
sampler_pid=""
stop_operator() {
    if [ -n "$sampler_pid" ]; then kill "$sampler_pid" 2>/dev/null || true; wait "$sampler_pid" 2>/dev/null || true; fi
    sampler_pid=""
    if [ -n "$operator_pid" ]; then
        kill "$operator_pid" 2>/dev/null || true
        # SIGTERM drains gracefully; give it 10 s, then insist.
        for _ in $(seq 1 100); do kill -0 "$operator_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$operator_pid" 2>/dev/null || true
        wait "$operator_pid" 2>/dev/null || true
    fi
    operator_pid=""
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    stop_operator
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$build" = 1 ]; then
    cargo build --release -q -p uid2-operator -p uid2-load
fi
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
operator="$bin/uid2-operator"
load="$bin/uid2-load"

# shellcheck source=SCRIPTDIR/pinning.sh
. benches/pinning.sh

# The default ports, or the first offset at which both are free (port_offset shifts both).
# shellcheck source=SCRIPTDIR/ports.sh
. benches/ports.sh
offset=""
for candidate in 0 10000 20000 30000 40000; do
    if ! port_in_use $((8080 + candidate)) && ! port_in_use $((9080 + candidate)); then
        offset=$candidate
        break
    fi
done
if [ -z "$offset" ]; then
    echo "no free port pair at 8080/9080 + 0..40000" >&2
    exit 1
fi
url="http://127.0.0.1:$((8080 + offset))"

kib() { awk -v key="$1:" '$1 == key {print $2}' "/proc/$operator_pid/status"; }
# The operator's CPU time so far (user + system, in clock ticks), to tell whether it was saturated.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$operator_pid/stat"; }
clock_ticks=$(getconf CLK_TCK)
now() { date +%s.%N; }
percent() { awk -v part="$1" -v whole="$2" 'BEGIN {printf "%.0f", (whole > 0 ? 100 * part / whole : 0)}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

# Starts a fresh operator and waits (at most 30 s) for /ops/healthcheck = 200; then 1 s idle.
start_operator() {
    port_offset="$offset" "${server_cpu[@]}" "$operator" >"$work/operator.log" 2>&1 &
    operator_pid=$!
    for _ in $(seq 1 300); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/ops/healthcheck")" = 200 ]; then
            sleep 1
            return 0
        fi
        if ! kill -0 "$operator_pid" 2>/dev/null; then
            echo "the operator exited; log:" >&2
            cat "$work/operator.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "the operator was not healthy within 30 s; log:" >&2
    tail -20 "$work/operator.log" >&2
    exit 1
}

# Samples VmRSS (kB) every 100 ms into $1 until stopped.
start_sampler() {
    local out="$1" pid="$operator_pid"
    (while kill -0 "$pid" 2>/dev/null; do
        awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status" 2>/dev/null || true
        sleep 0.1
    done) >"$out" &
    sampler_pid=$!
}
stop_sampler() {
    kill "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=""
}
max_of() { sort -n "$1" | tail -1; }

connections_for() {
    case "$1" in
        map-*) echo "$map_connections" ;;
        *) echo "$connections" ;;
    esac
}

# Runs uid2-load for one scenario (bounded by --seconds and 10 M requests), JSON summary into $2.
run_load() {
    local scenario="$1" out="$2" conns="$3"
    "${client_cpu[@]}" "$load" --url "$url" --scenario "$scenario" --duration "$seconds" \
        --requests 10000000 --connections "$conns" --batch "$batch" --json >"$out" 2>"$out.err"
}

# One row of the table from a uid2-load JSON summary (or several, summed, for the mixed phase).
summary_cells() {
    python3 - "$@" <<'EOF'
import json, sys
rows = [json.load(open(path)) for path in sys.argv[1:]]
req = sum(r["req_per_s"] for r in rows)
ids = sum(r["identities_per_s"] or 0 for r in rows)
failed = sum(r["failed"] for r in rows)
lat = [r["latency_ms"] for r in rows]
worst = lambda k: max((l[k] or 0) for l in lat)
print(f"{req:10.1f} {ids:13.0f} {worst('p50'):8.2f} {worst('p99'):8.2f} {worst('max'):8.2f} {failed:7d}")
EOF
}

scenarios=(generate refresh key-sharing map-v2 map-v3)

size=$(stat -c %s "$operator")
cp "$operator" "$work/uid2-operator.stripped"
strip "$work/uid2-operator.stripped"
stripped=$(stat -c %s "$work/uid2-operator.stripped")

echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
echo "rustc:   $(rustc --version)"
echo "pinning: $pinning"
echo "load:    $seconds s per scenario; $connections connections ($map_connections for maps, $batch email hashes per map request); $url"
printf 'binary:  %s bytes (%s MiB), stripped %s bytes (%s MiB)\n\n' \
    "$size" "$(mib $((size / 1024)))" "$stripped" "$(mib $((stripped / 1024)))"

failed_any=0
overall=0
table="$work/table"
printf '%-12s %5s %10s %13s %8s %8s %8s %7s %6s %6s %9s %9s %9s %9s\n' \
    scenario conns "req/s" "identities/s" "p50 ms" "p99 ms" "max ms" failed "srv %" "cli %" \
    "idle MiB" "peak MiB" "sampled" "VmPeak" >"$table"

for scenario in "${scenarios[@]}" mixed; do
    start_operator
    idle=$(kib VmRSS)
    start_sampler "$work/$scenario.rss"
    ticks_before=$(cpu_ticks)
    started=$(now)
    if [ "$scenario" = mixed ]; then
        # Every scenario at once, a quarter of the connections each (at least one): the
        # operator's memory when all endpoints are busy together.
        pids=()
        for s in "${scenarios[@]}"; do
            c=$(( $(connections_for "$s") / 4 ))
            run_load "$s" "$work/mixed-$s.json" $((c > 0 ? c : 1)) &
            pids+=($!)
        done
        status=0
        for p in "${pids[@]}"; do wait "$p" || status=1; done
        files=()
        for s in "${scenarios[@]}"; do files+=("$work/mixed-$s.json"); done
        conns="mix"
        client="-"
    else
        status=0
        # The client's own CPU use, from bash's time: wall, user and system seconds.
        TIMEFORMAT='%R %U %S'
        { time run_load "$scenario" "$work/$scenario.json" "$(connections_for "$scenario")"; } \
            2>"$work/$scenario.time" || status=$?
        client=$(awk '{print $2 + $3, $1}' "$work/$scenario.time" | { read -r busy wall; percent "$busy" "$wall"; })
        files=("$work/$scenario.json")
        conns=$(connections_for "$scenario")
    fi
    server=$(percent "$(awk -v t="$(( $(cpu_ticks) - ticks_before ))" -v hz="$clock_ticks" 'BEGIN {print t / hz}')" \
        "$(awk -v a="$started" -v b="$(now)" 'BEGIN {print b - a}')")
    stop_sampler
    peak=$(kib VmHWM)
    # Address space, not RSS: what an Occlum enclave must reserve (deploy/azure-sgx/README.md).
    vmpeak=$(kib VmPeak)
    sampled=$(max_of "$work/$scenario.rss")
    stop_operator
    if [ "$status" != 0 ]; then
        failed_any=1
        echo "$scenario: uid2-load reported failures:" >&2
        for f in "${files[@]}"; do cat "$f" "$f.err" >&2 2>/dev/null || true; done
    fi
    cells=$(summary_cells "${files[@]}" 2>/dev/null || echo "(no summary)")
    printf '%-12s %5s %s %6s %6s %9s %9s %9s %9s\n' "$scenario" "$conns" "$cells" "$server" "$client" \
        "$(mib "$idle")" "$(mib "$peak")" "$(mib "${sampled:-0}")" "$(mib "$vmpeak")" >>"$table"
    overall=$((peak > overall ? peak : overall))
done

cat "$table"
echo
echo "peak RSS over all runs (max VmHWM): $(mib "$overall") MiB"
echo "(req/s and identities/s: this machine, this pinning; mixed = the five clients at once, summed;"
echo " latency columns of mixed are the worst client's; srv % / cli % = CPU time of the operator /"
echo " of uid2-load over the run's wall time (100 = one core busy); peak = VmHWM at the end of the"
echo " run; sampled = max VmRSS seen every 100 ms; VmPeak = peak address space, all in MiB)"
exit "$failed_any"
