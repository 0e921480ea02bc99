#!/usr/bin/env bash
# Runs the enclave image on this host (an SGX-capable VM) with Docker.
#
#   ./run.sh [--dry-run] [--image REF] [COMMAND...]
#
# COMMAND defaults to `occlum run /bin/uid2-operator`; `./run.sh occlum run /bin/sgx_quote` prints
# the enclave's identity (MRENCLAVE, MRSIGNER, product id, SVN) from a fresh quote. The operator
# keys are passed through by name only (`-e core_api_token`), when they are set in this shell:
# their values never appear on a command line or in this script's output. --dry-run prints the
# docker command and runs nothing.
set -euo pipefail

image="${UID2_IMAGE:-uid2-operator-azure-sgx:dev}"
dry_run=0

usage() {
    cat <<EOF
usage: $0 [--dry-run] [--image REF] [COMMAND...]

  --image REF   the image to run (default \$UID2_IMAGE or uid2-operator-azure-sgx:dev)
  --dry-run     print the docker command, run nothing
  COMMAND       default: occlum run /bin/uid2-operator

environment passed into the enclave when set: core_api_token, optout_api_token
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry_run=1; shift ;;
        --image)
            [ $# -ge 2 ] || { echo "run.sh: --image needs a value" >&2; exit 64; }
            image="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        --) shift; break ;;
        -*) usage >&2; echo "run.sh: unknown option: $1" >&2; exit 64 ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || set -- occlum run /bin/uid2-operator

# The DCAP driver's device names; with only the in-kernel driver's names present, map them to the
# same paths inside the container (Occlum accepts either pair).
if [ ! -e /dev/sgx/enclave ] && [ -e /dev/sgx_enclave ]; then
    devices=(--device /dev/sgx_enclave:/dev/sgx/enclave --device /dev/sgx_provision:/dev/sgx/provision)
else
    devices=(--device /dev/sgx/enclave --device /dev/sgx/provision)
fi

# `-e NAME` without a value makes docker read the value from this environment.
secrets=()
for name in core_api_token optout_api_token; do
    if [ -n "${!name:-}" ]; then
        secrets+=(-e "$name")
    fi
done

tty=()
if [ -t 0 ] && [ -t 1 ]; then
    tty=(-it)
fi

command=(docker run --rm "${tty[@]}" "${devices[@]}" -p 8080:8080 -p 9091:9091 "${secrets[@]}" "$image" "$@")
printf '+'
printf ' %q' "${command[@]}"
printf '\n'
[ "$dry_run" = 1 ] || exec "${command[@]}"
