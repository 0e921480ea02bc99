#!/usr/bin/env bash
# Overload benchmark (not a test): the operator driven well past saturation, then relieved.
#
# Three phases against one operator process (local mode, the bundled store, one tokio worker
# pinned to CPU 0; uid2-load on CPU 1; benches/pinning.sh), all of one --scenario:
#   baseline  --normal-connections (4) connections: the operator saturated, not overloaded;
#   overload  --connections (1024) connections with --allow-shedding: far more requests in
#             progress than the admission limits (http_max_concurrent_requests +
#             http_max_queued_requests, 64 + 512 by default), so the excess is answered 503;
#   recovery  the baseline load again: every request must succeed.
# The default scenario is map-v3 with --batch 500: one client core can then keep far more work
# in the operator than its core can do. With the cheap token requests the single-threaded client
# is the bottleneck (it seals and opens every envelope) and the operator never fills its queue.
# During every phase it samples the operator's RSS (every 100 ms) and times GET /ops/healthcheck
# (API port, a new connection each time, every 200 ms) and GET /metrics (metrics port, every
# second) with curl. After each phase it reads the admission metrics. One table at the end.
#
# Loopback only; every phase is bounded by --seconds (and uid2-load's 10 s request timeout);
# every process started here is stopped on exit. Exit status 1 when a baseline or recovery
# request failed, an overload request failed other than by a 503, or a probe did not answer 200;
# figures are reported, not judged.
#
#   benches/overload.sh [--seconds 10] [--scenario map-v3] [--batch 500] [--connections 1024]
#                       [--normal-connections 4] [--config FILE] [--no-build] [--no-pin]
#
#   --config  extra operator configuration (a JSON object merged over the ports and
#             service_instances this script sets), e.g. other admission limits
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=10
scenario=map-v3
batch=500
connections=1024
normal_connections=4
extra_config=""
build=1
pin=1
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --scenario) scenario="$2"; shift 2 ;;
        --batch) batch="$2"; shift 2 ;;
        --connections) connections="$2"; shift 2 ;;
        --normal-connections) normal_connections="$2"; shift 2 ;;
        --config) extra_config="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        --no-pin) pin=0; shift ;;
        *) echo "unknown argument: $1" >&2; exit 64 ;;
    esac
done
case "$scenario" in generate | refresh | key-sharing | map-v2 | map-v3) ;; *) echo "--scenario: unknown" >&2; exit 64 ;; esac
for n in "$seconds" "$batch" "$connections" "$normal_connections"; do
    case "$n" in '' | *[!0-9]*) echo "not a whole number: $n" >&2; exit 64 ;; esac
done
if [ "$seconds" -lt 1 ] || [ "$seconds" -gt 60 ]; then echo "--seconds: 1..60" >&2; exit 64; fi
# uid2-load's own cap.
if [ "$connections" -lt 1 ] || [ "$connections" -gt 1024 ]; then echo "--connections: 1..1024" >&2; exit 64; fi
if [ "$normal_connections" -lt 1 ] || [ "$normal_connections" -gt 1024 ]; then
    echo "--normal-connections: 1..1024" >&2
    exit 64
fi
if [ -n "$extra_config" ] && [ ! -f "$extra_config" ]; then echo "--config: no such file" >&2; exit 64; fi

for tool in cargo curl jq python3; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

work="$(mktemp -d /tmp/uid2-overload.XXXXXX)"
operator_pid=""
sampler_pid=""
health_pid=""
metrics_pid=""
# Stops one background process started here and waits for it (SIGTERM; SIGKILL after 15 s).
stop() {
    local pid="$1"
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
stop_probes() {
    stop "$sampler_pid"
    stop "$health_pid"
    stop "$metrics_pid"
    sampler_pid=""
    health_pid=""
    metrics_pid=""
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    stop_probes
    stop "$operator_pid"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$build" = 1 ]; then
    cargo build --release -q -p uid2-operator -p uid2-load
fi
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"

# shellcheck source=SCRIPTDIR/pinning.sh
. benches/pinning.sh

# shellcheck source=SCRIPTDIR/ports.sh
. benches/ports.sh
api_port=$(free_port 18280 28280 38280 48280)
metrics_port=$(free_port 19280 29280 39280 49280)
url="http://127.0.0.1:$api_port"
metrics_url="http://127.0.0.1:$metrics_port/metrics"

jq -n --argjson http "$api_port" --argjson metrics "$metrics_port" \
    '{http_port: $http, metrics_port: $metrics, service_instances: 1}' >"$work/config.json"
if [ -n "$extra_config" ]; then
    jq -s '.[0] * .[1]' "$work/config.json" "$extra_config" >"$work/config.merged.json"
    mv "$work/config.merged.json" "$work/config.json"
fi
"$bin/uid2-operator" --config "$work/config.json" --check-config >/dev/null

"${server_cpu[@]}" "$bin/uid2-operator" --config "$work/config.json" >"$work/operator.log" 2>&1 &
operator_pid=$!
healthy=0
for _ in $(seq 1 300); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/ops/healthcheck")" = 200 ]; then healthy=1; break; fi
    if ! kill -0 "$operator_pid" 2>/dev/null; then break; fi
    sleep 0.1
done
if [ "$healthy" != 1 ]; then
    echo "the operator did not become healthy within 30 s; log:" >&2
    tail -30 "$work/operator.log" >&2
    exit 1
fi
sleep 1

kib() { awk -v key="$1:" '$1 == key {print $2}' "/proc/$operator_pid/status"; }
# CPU time of the operator so far (user + system, clock ticks) and the wall clock.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$operator_pid/stat"; }
clock_ticks=$(getconf CLK_TCK)
now() { date +%s.%N; }
# Busy CPU time of the whole machine (user + nice + system, clock ticks, all CPUs): what neither
# the operator nor uid2-load used of it was other work on the machine, which spoils a figure.
machine_busy() { awk '$1 == "cpu" {print $2 + $3 + $4}' /proc/stat; }
# The value of an unlabelled series on the metrics port (0 when absent).
# Every series carries the application="uid2-operator" label.
metric() {
    curl -s --max-time 5 "$metrics_url" | awk -v name="$1" '
        index($1, name) == 1 && (length($1) == length(name) || substr($1, length(name) + 1, 1) == "{") {
            print $2; found = 1; exit
        }
        END { if (!found) print 0 }'
}

# Probes for one phase: RSS (kB) every 100 ms; "code seconds" of the healthcheck every 200 ms
# and of /metrics every second. Each loop ends when stopped (or when the operator exits).
start_probes() {
    local phase="$1" pid="$operator_pid"
    (while kill -0 "$pid" 2>/dev/null; do
        awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status" 2>/dev/null || true
        sleep 0.1
    done) >"$work/$phase.rss" &
    sampler_pid=$!
    (while kill -0 "$pid" 2>/dev/null; do
        curl -s -o /dev/null --max-time 5 -w '%{http_code} %{time_total}\n' "$url/ops/healthcheck" || echo "000 5"
        sleep 0.2
    done) >"$work/$phase.health" &
    health_pid=$!
    (while kill -0 "$pid" 2>/dev/null; do
        curl -s -o /dev/null --max-time 5 -w '%{http_code} %{time_total}\n' "$metrics_url" || echo "000 5"
        sleep 1
    done) >"$work/$phase.metrics" &
    metrics_pid=$!
}

failed_any=0
# One phase: uid2-load for --seconds with $2 connections (extra flags after), probes around it.
run_phase() {
    local phase="$1" conns="$2"
    shift 2
    local status=0 ticks_before machine_before started
    start_probes "$phase"
    ticks_before=$(cpu_ticks)
    machine_before=$(machine_busy)
    started=$(now)
    TIMEFORMAT='%R %U %S'
    { time "${client_cpu[@]}" "$bin/uid2-load" --url "$url" --scenario "$scenario" --batch "$batch" \
        --duration "$seconds" --requests 10000000 --timeout 10 --connections "$conns" --json "$@" \
        >"$work/$phase.json" 2>"$work/$phase.err"; } 2>"$work/$phase.time" || status=$?
    # Server, client and other CPU, each in % of one core over the phase.
    awk -v t="$(($(cpu_ticks) - ticks_before))" -v m="$(($(machine_busy) - machine_before))" \
        -v hz="$clock_ticks" -v a="$started" -v b="$(now)" \
        '{wall = b - a; server = t / hz; client = $2 + $3; other = m / hz - server - client
          printf "%.0f %.0f %.0f\n", 100 * server / wall, 100 * client / wall, (other > 0 ? 100 * other / wall : 0)}' \
        "$work/$phase.time" >"$work/$phase.cpu"
    stop_probes
    if [ "$status" != 0 ]; then
        failed_any=1
        echo "$phase: uid2-load reported failures:" >&2
        cat "$work/$phase.json" "$work/$phase.err" >&2 || true
    fi
    # The admission gauges once the load is gone (a request still held would show here).
    sleep 0.5
    echo "$(metric uid2_operator_requests_shed_total) $(metric uid2_operator_requests_processing)" \
        "$(metric uid2_operator_requests_waiting) $(kib VmRSS)" >"$work/$phase.after"
}

idle_rss=$(kib VmRSS)
echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- crates tools 2>/dev/null || echo ' (uncommitted changes in crates/ or tools/)')"
echo "pinning: $pinning"
echo "limits:  $(jq -c 'with_entries(select(.key | startswith("http_max")))' "$work/config.json") (defaults unless listed)"
case "$scenario" in map-*) what="$scenario, $batch email hashes per request" ;; *) what="$scenario" ;; esac
echo "load:    $what; $seconds s per phase; $normal_connections connections (baseline, recovery), $connections (overload); $url"
echo

run_phase baseline "$normal_connections"
run_phase overload "$connections" --allow-shedding
run_phase recovery "$normal_connections"

if ! kill -0 "$operator_pid" 2>/dev/null; then
    echo "the operator exited during the run; log:" >&2
    tail -30 "$work/operator.log" >&2
    exit 1
fi
peak_rss=$(kib VmHWM)

report=0
python3 - "$work" "$idle_rss" "$peak_rss" <<'EOF' || report=$?
import json, sys
work, idle, peak = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def probes(path):
    rows = [line.split() for line in open(path) if line.strip()]
    codes = [r[0] for r in rows]
    ms = sorted(float(r[1]) * 1000 for r in rows)
    bad = sum(1 for c in codes if c != "200")
    p50 = ms[len(ms) // 2] if ms else 0.0
    return len(ms), bad, p50, (ms[-1] if ms else 0.0)

def fmt(x):
    return "-" if x is None else f"{x:.2f}"

print(f"{'phase':<9} {'conns':>5} {'srv %':>5} {'cli %':>5} {'oth %':>5} {'ok/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'shed/s':>8} {'shed p50':>8} "
      f"{'shed p99':>8} {'failed':>6} {'health ok/n':>11} {'health p50/max ms':>17} {'metrics ok/n':>12} "
      f"{'metrics max ms':>14} {'RSS max MiB':>11}")
bad_probe = False
for phase in ("baseline", "overload", "recovery"):
    s = json.load(open(f"{work}/{phase}.json"))
    hn, hbad, hp50, hmax = probes(f"{work}/{phase}.health")
    mn, mbad, _, mmax = probes(f"{work}/{phase}.metrics")
    bad_probe |= hbad > 0 or mbad > 0
    rss = [int(x) for x in open(f"{work}/{phase}.rss") if x.strip()]
    lat, shed = s["latency_ms"], s.get("shed_latency_ms", {})
    srv, cli, oth = open(f"{work}/{phase}.cpu").read().split()
    print(f"{phase:<9} {s['connections']:>5} {srv:>5} {cli:>5} {oth:>5} {s['req_per_s']:>8.0f} {fmt(lat['p50']):>7} {fmt(lat['p99']):>7} "
          f"{s.get('shed_per_s', 0):>8.0f} {fmt(shed.get('p50')):>8} {fmt(shed.get('p99')):>8} {s['failed']:>6} "
          f"{hn - hbad:>5}/{hn:<5} {hp50:>8.1f}/{hmax:<8.1f} {mn - mbad:>6}/{mn:<5} {mmax:>14.1f} "
          f"{max(rss, default=0) / 1024:>11.1f}")
print()
for phase in ("baseline", "overload", "recovery"):
    shed_total, processing, waiting, rss = open(f"{work}/{phase}.after").read().split()
    print(f"after {phase:<9} uid2_operator_requests_shed_total {shed_total:>9}   processing {processing}   "
          f"waiting {waiting}   RSS {int(rss) / 1024:.1f} MiB")
print()
print(f"RSS idle before the run {idle / 1024:.1f} MiB; peak over the run (VmHWM) {peak / 1024:.1f} MiB")
print("(srv % / cli % / oth %: CPU time of the operator / of uid2-load / of everything else on the machine")
print(" over the phase's wall time, 100 = one core busy; other work above a few % spoils the figures;")
print(" ok/s: answered 200 and checked; shed: answered 503 by admission control; latencies from uid2-load;")
print(" health: GET /ops/healthcheck on the API port, a new connection every 200 ms; metrics: GET /metrics")
print(" on the metrics port every second; both timed by curl, ok = HTTP 200; RSS max = VmRSS sampled every 100 ms)")
sys.exit(3 if bad_probe else 0)
EOF
if [ "$report" = 3 ]; then
    echo "a healthcheck or /metrics probe did not answer 200" >&2
    failed_any=1
elif [ "$report" != 0 ]; then
    failed_any=1
fi
exit "$failed_any"
