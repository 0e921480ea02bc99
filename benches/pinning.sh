# shellcheck shell=bash
# Sourced by the load benchmarks (benches/load.sh, benches/local-load-rss.sh): where the server
# and the client run. With pin=1, two or more CPUs and taskset, the server is pinned to CPU 0 and
# the client to CPU 1, so a throughput figure is one server core, measured as
# ../shared/reference/perf.md §5 measured its ceilings; otherwise both share every CPU.
# Sets server_cpu and client_cpu (command prefixes, empty when not pinned) and pinning (a line
# for the report).
# shellcheck disable=SC2034 # the variables are the sourcing script's
server_cpu=()
client_cpu=()
pinning="none (server and client share every CPU)"
if [ "${pin:-1}" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    server_cpu=(taskset -c 0)
    client_cpu=(taskset -c 1)
    pinning="server on CPU 0, client on CPU 1 (taskset)"
fi
