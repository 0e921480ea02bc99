#!/usr/bin/env bash
# Load benchmark (not a test): the operator serving a full-size synthetic store (1,048,576 salt
# buckets, 10,000,000 opt-out entries, made by `uid2-local-core generate-store`), measured against
# the floor for HTTP on this machine (`uid2-load floor-server`: hyper, one thread, a fixed
# 400-byte answer) in the same run.
#
# In order: the floor (pinned like the operator, driven like generate); the operator started on
# the store (time to a healthy /ops/healthcheck, RSS then); generate, refresh, key-sharing,
# map-v2 and map-v3 at full speed (maps: --batch fresh random email hashes per request, so the
# salt and opt-out lookups are cache-cold); generate again at half its measured req/s (--rate),
# for the latency at half load; the floor again. Then one table with req/s, identities/s, p50,
# p99, server and client CPU, peak RSS, and each figure as a ratio to its floor: req/s to the
# floor server's (the better of its two runs), identities/s to the 1.0 M/s target, peak RSS to
# twice the store's in-memory bytes (salt file bytes + 72 B per opt-out entry). One client core
# cannot quite saturate the floor server, so req/s per second of server CPU ("req/s/core") and
# the ratio of those are printed too.
#
# The server (operator or floor) is pinned to CPU 0 and the client (uid2-load, one thread) to
# CPU 1 with taskset, and the operator runs one worker (`service_instances: 1`): the figures are
# one server core. Loopback only; every wait and every load run is bounded in time and request
# count; every process started here is stopped on exit. Exit status 1 when a load run saw a
# wrong answer; missed targets are reported, not failed (benchmarks measure, tests check).
#
#   benches/load.sh [--quick] [--mode local|attested] [--seconds 10] [--connections 16]
#                   [--map-connections 4] [--batch 5000] [--store-cache DIR] [--no-build] [--no-pin]
#
#   --quick        a smoke run: a small store (65,536 buckets, 100,000 opt-outs), 2 s per run
#   --mode         local (default): `local_store_dir` on the store (its opt-out files are indexed
#                  at startup). attested: the operator syncs the store from uid2-local-core
#                  (pinned to the client's CPU)
#   --store-cache  where generated stores are kept and reused (default $UID2_LOAD_STORE_CACHE,
#                  else <target dir>/uid2-load-stores); one directory per size
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=10
connections=16
map_connections=4
batch=5000
buckets=1048576
optouts=10000000
mode=local
build=1
pin=1
cache="${UID2_LOAD_STORE_CACHE:-${CARGO_TARGET_DIR:-$PWD/target}/uid2-load-stores}"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) seconds=2; buckets=65536; optouts=100000; shift ;;
        --mode) mode="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --connections) connections="$2"; shift 2 ;;
        --map-connections) map_connections="$2"; shift 2 ;;
        --batch) batch="$2"; shift 2 ;;
        --store-cache) cache="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        --no-pin) pin=0; shift ;;
        *) echo "unknown argument: $1" >&2; exit 64 ;;
    esac
done
case "$mode" in local | attested) ;; *) echo "--mode: local or attested" >&2; exit 64 ;; esac
for n in "$seconds" "$connections" "$map_connections" "$batch"; do
    case "$n" in '' | *[!0-9]*) echo "not a whole number: $n" >&2; exit 64 ;; esac
done
# Each load run ends within --seconds + its 10 s request timeout (and uid2-load caps 600 s, 10 M).
if [ "$seconds" -lt 1 ] || [ "$seconds" -gt 60 ]; then echo "--seconds: 1..60" >&2; exit 64; fi

for tool in cargo curl jq python3; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

work="$(mktemp -d /tmp/uid2-load-bench.XXXXXX)"
server_pid=""
core_pid=""
# Stops one process started here: SIGTERM, 10 s to drain, then SIGKILL.
stop() {
    local pid="$1"
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
stop_server() { stop "$server_pid"; server_pid=""; }
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    stop_server
    stop "$core_pid"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$build" = 1 ]; then
    cargo build --release -q -p uid2-operator -p uid2-local-core -p uid2-load
fi
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"

# shellcheck source=SCRIPTDIR/pinning.sh
. benches/pinning.sh

# --- the store ------------------------------------------------------------------------------
store="$cache/store-$buckets-$optouts-seed7"
if [ ! -f "$store/salts/metadata.json" ]; then
    echo "generating a store: $buckets buckets, $optouts opt-outs -> $store"
    rm -rf "$store.partial"
    mkdir -p "$cache"
    "$bin/uid2-local-core" generate-store --out "$store.partial" --buckets "$buckets" \
        --optouts "$optouts" --seed 7 >"$work/generate.log"
    mv "$store.partial" "$store"
fi
salt_bytes=$(find "$store/salts" -name 'salts.txt.*' -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s}')
# Each partition file is its entries between two 72-byte sentinels.
store_optouts=$(find "$store/optout" -name '*.dat' -printf '%s\n' | awk '{n += $1 / 72 - 2} END {printf "%.0f", n}')
store_bytes=$((salt_bytes + 72 * store_optouts))

# --- ports ----------------------------------------------------------------------------------
# shellcheck source=SCRIPTDIR/ports.sh
. benches/ports.sh
api_port=$(free_port 18180 28180 38180 48180)
metrics_port=$(free_port 19180 29180 39180 49180)
core_port=$(free_port 18188 28188 38188 48188)
floor_port=$(free_port 18190 28190 38190 48190)

# --- measuring ------------------------------------------------------------------------------
kib() { awk -v key="$1:" '$1 == key {print $2}' "/proc/$server_pid/status"; }
# CPU time of the server so far (user + system of all its threads, in clock ticks).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
clock_ticks=$(getconf CLK_TCK)
now() { date +%s.%N; }

# Waits (at most $2 seconds) for $1 to answer 200; dies with the server's log otherwise.
wait_healthy() {
    local url="$1" limit="$2" log="$3"
    local tries=$((limit * 50))
    for _ in $(seq 1 "$tries"); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 200 ]; then return 0; fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "the server exited; log:" >&2
            tail -30 "$log" >&2
            exit 1
        fi
        sleep 0.02
    done
    echo "not healthy within $limit s; log:" >&2
    tail -30 "$log" >&2
    exit 1
}

# User-mode CPU time (clock ticks) of the whole machine and of the server: what neither the
# server nor the client used during a run was other work on the machine, which spoils a figure.
machine_user() { awk '$1 == "cpu" {print $2 + $3}' /proc/stat; }
# Time the hypervisor gave this VM's CPUs to someone else (clock ticks, all CPUs).
machine_steal() { awk '$1 == "cpu" {print $9}' /proc/stat; }
server_user() { awk '{print $14}' "/proc/$server_pid/stat"; }

# One bounded uid2-load run against $url (scenario $1, row name $2, extra flags after), pinned
# to the client CPU. Appends "row json server% client% other% steal% peak-KiB" to $work/rows.
failed_any=0
run_load() {
    local scenario="$1" row="$2"
    shift 2
    local conns="$connections"
    case "$scenario" in map-*) conns="$map_connections" ;; esac
    local out="$work/$row.json" status=0
    local ticks_before machine_before steal_before user_before started
    ticks_before=$(cpu_ticks)
    machine_before=$(machine_user)
    steal_before=$(machine_steal)
    user_before=$(server_user)
    started=$(now)
    TIMEFORMAT='%R %U %S'
    { time "${client_cpu[@]}" "$bin/uid2-load" --url "$url" --scenario "$scenario" \
        --duration "$seconds" --requests 10000000 --timeout 10 --connections "$conns" --batch "$batch" \
        --json "$@" >"$out" 2>"$out.err"; } 2>"$work/$row.time" || status=$?
    local server client other steal ended
    ended=$(now)
    server=$(awk -v t="$(($(cpu_ticks) - ticks_before))" -v hz="$clock_ticks" -v a="$started" -v b="$ended" \
        'BEGIN {printf "%.0f", 100 * t / hz / (b - a)}')
    client=$(awk '{printf "%.0f", 100 * ($2 + $3) / $1}' "$work/$row.time")
    other=$(awk -v m="$(($(machine_user) - machine_before))" -v s="$(($(server_user) - user_before))" \
        -v c="$(awk '{print $2}' "$work/$row.time")" -v hz="$clock_ticks" -v a="$started" -v b="$ended" \
        'BEGIN {o = 100 * ((m - s) / hz - c) / (b - a); printf "%.0f", (o > 0 ? o : 0)}')
    steal=$(awk -v t="$(($(machine_steal) - steal_before))" -v hz="$clock_ticks" -v a="$started" -v b="$ended" \
        'BEGIN {printf "%.0f", 100 * t / hz / (b - a)}')
    if [ "$status" != 0 ]; then
        failed_any=1
        echo "$row: uid2-load reported failures:" >&2
        cat "$out" "$out.err" >&2 || true
    fi
    echo "$row $out $server $client $other $steal $(kib VmHWM)" >>"$work/rows"
}

# A short unmeasured run, so the first measured one does not pay for first touches.
warm_up() {
    "${client_cpu[@]}" "$bin/uid2-load" --url "$url" --scenario "$1" --duration 1 --timeout 10 \
        --requests 100000 --connections "$connections" --batch "$batch" >/dev/null 2>&1 || true
}

floor_run() {
    local row="$1"
    "${server_cpu[@]}" "$bin/uid2-load" floor-server --listen "127.0.0.1:$floor_port" \
        --lifetime 300 >"$work/floor.log" 2>&1 &
    server_pid=$!
    url="http://127.0.0.1:$floor_port"
    # Any path answers 200 with the fixed body.
    wait_healthy "$url/" 10 "$work/floor.log"
    warm_up floor
    run_load floor "$row"
    stop_server
}

# --- the operator's configuration -----------------------------------------------------------
# Local: the store directory itself. Attested: the repository's local-Core configuration, pointed
# at this run's Core port. One worker either way.
if [ "$mode" = local ]; then
    echo '{}' | jq --arg dir "$store" '{local_store_dir: $dir}'
else
    sed -e "s#127.0.0.1:8088#127.0.0.1:$core_port#g" conf/attested-local-config.json |
        jq --arg dir "$work/optout/" '. + {optout_data_dir: $dir}'
fi | jq --argjson api "$api_port" --argjson metrics "$metrics_port" \
    '. + {service_instances: 1, http_port: $api, metrics_port: $metrics}' >"$work/operator.json"

echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
if commit=$(git rev-parse --short HEAD 2>/dev/null); then
    git diff --quiet HEAD -- crates testing tools || commit="$commit + uncommitted changes"
else
    commit="? (not a git checkout)"
fi
echo "commit:  $commit"
echo "pinning: $pinning"
echo "store:   $store ($buckets buckets, $store_optouts opt-outs; mode $mode)"
echo "load:    $seconds s per run; $connections connections ($map_connections for maps, $batch email hashes per map request)"
echo

: >"$work/rows"
floor_run floor

# --- the operator ---------------------------------------------------------------------------
if [ "$mode" = attested ]; then
    "${client_cpu[@]}" "$bin/uid2-local-core" --store "$store" --listen "127.0.0.1:$core_port" \
        >"$work/core.log" 2>&1 &
    core_pid=$!
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$core_port/_test/faults" && break
        sleep 0.1
    done
fi
started=$(now)
"${server_cpu[@]}" "$bin/uid2-operator" --config "$work/operator.json" >"$work/operator.log" 2>&1 &
server_pid=$!
url="http://127.0.0.1:$api_port"
wait_healthy "$url/ops/healthcheck" 120 "$work/operator.log"
startup=$(awk -v a="$started" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}')
ready_rss=$(kib VmRSS)
ready_hwm=$(kib VmHWM)
held_optouts=$(curl -s "http://127.0.0.1:$metrics_port/metrics" | awk '$1 ~ /^uid2_optout_entries([{]|$)/ {print $2}')
held_optouts="${held_optouts:-0}"

warm_up generate
run_load generate generate
gen_rate=$(python3 -c 'import json, sys; print(max(1, int(json.load(open(sys.argv[1]))["req_per_s"] / 2)))' \
    "$work/generate.json" 2>/dev/null || echo 1)
run_load refresh refresh
run_load key-sharing key-sharing
run_load map-v2 map-v2
run_load map-v3 map-v3
run_load generate generate-half --rate "$gen_rate"
peak=$(kib VmHWM)
stop_server
stop "$core_pid"
core_pid=""

floor_run floor-again

# --- the table ------------------------------------------------------------------------------
python3 - "$work/rows" "$startup" "$ready_rss" "$ready_hwm" "$peak" "$store_bytes" "$salt_bytes" \
    "$store_optouts" "$held_optouts" "$mode" <<'EOF'
import json, sys

rows_file, startup, ready_rss, ready_hwm, peak, store_bytes, salt_bytes, store_optouts, held, mode = sys.argv[1:]
startup = float(startup)
peak, store_bytes = int(peak) * 1024, int(store_bytes)
MIB = 1024 * 1024
TARGET_IDS = 1_000_000

rows = []
for line in open(rows_file):
    name, path, server, client, other, steal, hwm = line.split()
    try:
        summary = json.load(open(path))
    except (OSError, ValueError):
        summary = None
    rows.append((name, summary, int(server), int(client), int(other), int(steal), int(hwm) * 1024))

def get(name):
    return next((s for n, s, *_ in rows if n == name and s), None)

floors = [s["req_per_s"] for n, s, *_ in rows if n.startswith("floor") and s]
floor = max(floors) if floors else 0.0

# req/s per second of server CPU: when the client is the limit (it is, for the floor, on one
# client core) the server is not at 100 %, and this is what it would do per core.
def per_core(s, server):
    return s["req_per_s"] * 100 / server if server > 0 else 0.0

# The per-core figure of the same floor run as `floor`.
floor_core = next((per_core(s, sv) for n, s, sv, *_ in rows if n.startswith("floor") and s and s["req_per_s"] == floor), 0.0)
floor_p99 = min((s["latency_ms"]["p99"] for n, s, *_ in rows if n.startswith("floor") and s), default=None)

def fmt(x, spec):
    return "-" if x is None else format(x, spec)

head = (f"{'scenario':<14} {'conns':>5} {'rate':>7} {'req/s':>10} {'identities/s':>13} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'srv %':>6} {'cli %':>6} {'other %':>7} {'steal %':>7} {'req/s/core':>10} {'peak RSS MiB':>13}  ratio to floor")
print(head)
print("-" * len(head))
warnings = []
for name, s, server, client, other, steal, hwm in rows:
    if s is None:
        print(f"{name:<14} (no summary)")
        continue
    lat = s["latency_ms"]
    if s.get("identities_per_s") is not None:
        ratio = f"{s['identities_per_s'] / TARGET_IDS:.2f} of 1.0 M ids/s"
        if server > 0:
            ratio += f" ({s['identities_per_s'] * 100 / server / TARGET_IDS:.2f} per server core)"
    elif name.startswith("floor"):
        ratio = f"{s['req_per_s'] / floor:.2f} (floor)" if floor else "-"
    else:
        ratio = f"{s['req_per_s'] / floor:.2f} of floor req/s" if floor else "-"
        if floor_core and s.get("rate") is None:
            ratio += f" ({per_core(s, server) / floor_core:.2f} per server core)"
        if floor_p99 and lat["p99"] is not None:
            ratio += f", p99 {lat['p99'] / floor_p99:.1f}x floor's"
    print(f"{name:<14} {s['connections']:>5} {fmt(s.get('rate'), 'd'):>7} {s['req_per_s']:>10.0f} "
          f"{fmt(s.get('identities_per_s'), '.0f'):>13} {fmt(lat['p50'], '.2f'):>8} {fmt(lat['p99'], '.2f'):>8} "
          f"{server:>6} {client:>6} {other:>7} {steal:>7} {per_core(s, server):>10.0f} {hwm / MIB:>13.1f}  {ratio}")
    if s.get("failed"):
        warnings.append(f"{name}: {s['failed']} failed requests {s.get('failures')}")
    if other >= 5:
        warnings.append(f"{name}: other processes used {other} % of a CPU during the run: run again when the machine is quiet")
    if steal >= 5:
        warnings.append(f"{name}: the hypervisor took {steal} % of a CPU from this machine during the run")
    # A paced client spins while it waits, so its CPU says nothing there.
    if client >= 90 and s.get("rate") is None:
        warnings.append(f"{name}: the client used {client} % of its CPU: the figure may be the client's limit")
    if s.get("rate") is None and server < 90:
        warnings.append(f"{name}: the server used {server} % of its CPU: not saturated")

print("(srv % / cli % = CPU time of the server / of uid2-load over the run's wall time, 100 = one core;")
print(" other % = user CPU time of every other process then; steal % = CPU time the hypervisor took;")
print(" req/s/core = req/s x 100 / srv %;")
print(" a --rate run sends on a fixed schedule, its client spinning between requests, and counts")
print(" latency from when a request was due if it went out late)")
print()
print(f"startup: healthy after {startup:.2f} s; RSS then {int(ready_rss) / 1024:.0f} MiB (peak so far {int(ready_hwm) / 1024:.0f} MiB)")
print(f"store in memory: {store_bytes:,} bytes = salt file {int(salt_bytes):,} + 72 x {int(store_optouts):,} opt-outs "
      f"({store_bytes / MIB:.0f} MiB); opt-outs the operator indexed: {held}")
print(f"peak RSS of the operator (VmHWM): {peak / MIB:.0f} MiB = {peak / store_bytes:.2f} x the store's in-memory bytes")
if floors:
    print("floor: " + ", ".join(f"{f:.0f}" for f in floors) + f" req/s; ratios use the better, {floor:.0f}"
          f" ({floor_core:.0f} per server core)")

print()
print("targets (one server core, loopback, no TLS):")
def target(label, ok, figure):
    print(f"  {'met    ' if ok else 'NOT MET'}  {label}: {figure}")
gen, half = get("generate"), get("generate-half")
if gen and floor:
    gen_server = next(sv for n, s, sv, *_ in rows if n == "generate")
    target("/v2/token/generate >= 60 % of the floor's req/s", gen["req_per_s"] >= 0.6 * floor,
           f"{gen['req_per_s'] / floor:.0%} ({per_core(gen, gen_server) / floor_core:.0%} per server core)"
           if floor_core else f"{gen['req_per_s'] / floor:.0%}")
if half and half["latency_ms"]["p99"] is not None:
    target("generate p99 < 5 ms at half its max rate", half["latency_ms"]["p99"] < 5,
           f"{half['latency_ms']['p99']:.2f} ms at {half['req_per_s']:.0f} req/s")
for name in ("map-v3", "map-v2"):
    s = get(name)
    if s:
        target(f"{name} >= 1.0 M identities/s", s["identities_per_s"] >= TARGET_IDS, f"{s['identities_per_s']:,.0f}")
target("serving in < 3 s with the store", startup < 3, f"{startup:.2f} s")
target("peak RSS < 2 x the store's in-memory bytes", peak < 2 * store_bytes,
       f"{peak / MIB:.0f} MiB of {2 * store_bytes / MIB:.0f} MiB")
if int(float(held)) < int(store_optouts):
    warnings.append(f"the operator indexed {held} of the store's {int(store_optouts):,} opt-outs "
                    f"({'local mode found fewer opt-out files' if mode == 'local' else 'attested sync incomplete'}): "
                    "the map figures and the RSS target do not include the opt-out index")
for w in warnings:
    print(f"warning: {w}")
EOF
exit "$failed_any"
