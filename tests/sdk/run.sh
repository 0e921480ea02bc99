#!/usr/bin/env bash
# The official-SDK conformance suite: uid2-client (Python) against the real operator binary.
#
# Creates .venv in the repo root if missing, installs tests/sdk/requirements.txt into it, builds
# the release operator unless UID2_OPERATOR_BIN names a binary already, then runs pytest and exits
# with its status. Extra arguments go to pytest (e.g. -k cstg, -x).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"

if [[ ! -x .venv/bin/python ]]; then
    echo "== creating .venv"
    python3 -m venv .venv
fi

echo "== installing tests/sdk/requirements.txt"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt

if [[ -z "${UID2_OPERATOR_BIN:-}" ]]; then
    echo "== cargo build --release -p uid2-operator"
    cargo build --release -p uid2-operator
    export UID2_OPERATOR_BIN="$repo_root/target/release/uid2-operator"
fi

echo "== pytest tests/sdk (operator: $UID2_OPERATOR_BIN)"
exec .venv/bin/python -m pytest tests/sdk -q "$@"
