#!/usr/bin/env bash
# Entry point of the runtime image, run by tini: prepares the untrusted side of the enclave, then
# execs the command (default `occlum run /bin/uid2-operator`) so that it, not this shell, is the
# process that tini signals.
set -euo pipefail

instance=/root/uid2-operator

# az-dcap-client (quote collateral from Azure's THIM) logs only fatal errors unless told otherwise.
export AZDCAP_DEBUG_LOG_LEVEL="${AZDCAP_DEBUG_LOG_LEVEL:-FATAL}"

# aesmd is needed only to launch enclaves on CPUs without flexible launch control (Occlum's
# `occlum run` checks the same CPU flag). Quotes are made in this process by the DCAP quoting
# library, or by the node's aesmd when SGX_AESM_ADDR is set (the AKS quote helper).
if [ -z "${SGX_AESM_ADDR:-}" ] && ! grep -qw sgx_lc /proc/cpuinfo; then
    if [ -x /opt/occlum/start_aesm.sh ]; then
        /opt/occlum/start_aesm.sh
    else
        echo "run.sh: this CPU has no flexible launch control and the image has no aesmd; the enclave will not start" >&2
    fi
fi

cd "$instance"
# /tmp in the enclave is a temporary SEFS over this directory (encrypted, integrity-protected,
# new at every start): it must exist, and leftovers of a previous run are useless.
mkdir -p run/mount/tmp
find run/mount/tmp -mindepth 1 -delete

exec "$@"
