"""Shared paths and loaders for the enclave package checks (deploy/azure-sgx/tests)."""

import json
import pathlib
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent
REPO = PACKAGE.parent.parent
PROFILES = ("prod", "integ", "local")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def occlum_json():
    return json.loads((PACKAGE / "Occlum.json").read_text())


@pytest.fixture(scope="session")
def profiles():
    return {name: json.loads((PACKAGE / "conf" / f"{name}-config.json").read_text()) for name in PROFILES}


@pytest.fixture(scope="session")
def readme():
    return (PACKAGE / "README.md").read_text()
