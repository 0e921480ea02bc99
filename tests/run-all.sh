#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace (unit, vector and HTTP integration tests)
# and the official Python SDK (uid2-client 2.9.0) against the real operator binary, in local mode,
# in attested mode against the local Core/OptOut service, and attesting as a simulated SGX enclave
# (azure-sgx) through the local Core's MAA simulator; then the checks of the SGX enclave package
# (deploy/azure-sgx/tests).
#
# Needs: a Rust toolchain, python3 with venv, and shellcheck. On a fresh Debian machine without
# the venv module or shellcheck, it installs python3-venv / shellcheck when run as root, or says
# what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing python3-venv (needed for the SDK tests)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    else
        echo "python3 with the venv module is required for the SDK tests: apt-get install python3-venv" >&2
        exit 1
    fi
fi

if ! command -v shellcheck >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing shellcheck (needed for the enclave package checks)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck
    else
        echo "shellcheck is required for the enclave package checks: apt-get install shellcheck" >&2
        exit 1
    fi
fi

echo "== cargo test --workspace"
cargo test --workspace

cargo build -p uid2-operator -p uid2-local-core
export UID2_OPERATOR_BIN="$PWD/target/debug/uid2-operator"
export UID2_LOCAL_CORE_BIN="$PWD/target/debug/uid2-local-core"

echo "== official SDK conformance (uid2-client 2.9.0), local mode"
UID2_SDK_MODE=local tests/sdk/run.sh

echo "== official SDK conformance (uid2-client 2.9.0), attested mode against the local Core"
UID2_SDK_MODE=attested tests/sdk/run.sh

echo "== official SDK conformance (uid2-client 2.9.0), as a simulated SGX enclave (azure-sgx) against the local Core and its MAA simulator"
UID2_SDK_MODE=azure-sgx tests/sdk/run.sh

echo "== enclave package (deploy/azure-sgx): Occlum.json, profiles (--check-config), AKS manifest, build.sh/run.sh dry runs, shellcheck"
deploy/azure-sgx/tests/run.sh
