# shellcheck shell=bash
# Sourced by the bench scripts that start servers: loopback port checks.
#   port_in_use PORT      true when something accepts on 127.0.0.1:PORT
#   free_port P1 P2 ...   prints the first candidate nothing listens on; exits 1 if none
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local port
    for port in "$@"; do
        if ! port_in_use "$port"; then echo "$port"; return 0; fi
    done
    echo "no free port among $*" >&2
    exit 1
}
