#!/usr/bin/env bash
# The enclave package checks (deploy/azure-sgx): Occlum.json against Occlum 0.31's schema and the
# package policy, the baked profiles (also through the real operator's --check-config when a
# binary is at $UID2_OPERATOR_BIN or target/debug/uid2-operator), the AKS manifest against the
# Kubernetes schemas, build.sh and run.sh dry runs, and shellcheck over every shell script of the
# repository. Needs python3 with venv and shellcheck; no Docker, no SGX.
#
# Creates deploy/azure-sgx/tests/.venv if missing; extra arguments go to pytest (e.g. -k aks).
set -euo pipefail

tests="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$tests"

if [[ ! -x .venv/bin/python ]]; then
    echo "== creating deploy/azure-sgx/tests/.venv"
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt

exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@" .
