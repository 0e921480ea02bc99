"""The configuration profiles baked into the enclave (conf/*-config.json): measured into
MRENCLAVE, so they carry no secret; every one is a complete attested-mode configuration for
azure-sgx that the real operator accepts."""

import json
import os
import pathlib
import re
import subprocess
from urllib.parse import urlparse

import pytest

from conftest import PACKAGE, PROFILES, REPO

# Names of keys that hold secrets (core_api_token, optout_api_token, aws_secret_access_key, ...);
# not client_side_token_generate.
SECRET_KEY_NAMES = re.compile(r"token$|secret|password|passwd|private_key|access_key|api_key|credential", re.I)
# Operator and client keys as UID2 issues them (e.g. UID2-O-P-123-..., UID2-C-L-999-...).
KEY_LIKE_VALUE = re.compile(r"\b(UID2|EUID)-[A-Z]-[A-Z]-\d+-")

HOSTS = {
    "prod": {"core-prod.uidapi.com", "optout-prod.uidapi.com"},
    "integ": {"core-integ.uidapi.com", "optout-integ.uidapi.com"},
}


def test_exactly_the_three_profiles():
    found = sorted(p.name for p in (PACKAGE / "conf").iterdir())
    assert found == sorted(f"{name}-config.json" for name in PROFILES)


@pytest.mark.parametrize("name", PROFILES)
def test_attested_azure_sgx_profile(profiles, name):
    profile = profiles[name]
    assert isinstance(profile, dict)
    assert profile["enclave_platform"] == "azure-sgx"
    assert profile["core_attest_url"].endswith("/attest")
    assert profile["http_bind_address"] == "0.0.0.0"
    assert profile["http_port"] == 8080
    assert profile["metrics_port"] == 9091
    assert isinstance(profile["service_instances"], int) and profile["service_instances"] >= 1
    assert isinstance(profile["max_blocking_threads"], int) and profile["max_blocking_threads"] >= 1
    assert profile["optout_data_dir"].startswith("/tmp/"), "the opt-out cache belongs on the /tmp SEFS"
    assert profile["uid_instance_id_prefix"]
    assert "local_store_dir" not in profile


@pytest.mark.parametrize("name", PROFILES)
def test_no_secret_in_a_profile(profiles, name):
    # core_api_token and optout_api_token come only from the environment (Occlum.json
    # env.untrusted); anything in this file is readable by whoever holds the image.
    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                assert not SECRET_KEY_NAMES.search(key), f"{name}: {where}{key} looks like a secret"
                walk(value, f"{where}{key}.")
        elif isinstance(node, list):
            for item in node:
                walk(item, where)
        elif isinstance(node, str):
            assert not KEY_LIKE_VALUE.search(node), f"{name}: {where} holds a UID2 key"

    walk(profiles[name], "")


@pytest.mark.parametrize("name", ["prod", "integ"])
def test_production_profiles_talk_tls_to_their_own_environment(profiles, name):
    urls = [v for k, v in profiles[name].items() if k.endswith(("_url", "_path", "_uri"))]
    assert len(urls) >= 8
    for url in urls:
        parsed = urlparse(url)
        assert parsed.scheme == "https", url
        assert parsed.hostname in HOSTS[name], url
    assert profiles[name]["operator_type"] == "private"


def test_local_profile_reaches_the_local_core_from_the_docker_bridge(profiles):
    urls = [v for k, v in profiles["local"].items() if k.endswith(("_url", "_path", "_uri"))]
    assert urls
    assert all(url.startswith("http://172.17.0.1:8088/") for url in urls), urls


def _operator_binary():
    configured = os.environ.get("UID2_OPERATOR_BIN")
    path = pathlib.Path(configured) if configured else REPO / "target" / "debug" / "uid2-operator"
    return path if path.is_file() else None


@pytest.mark.parametrize("name", PROFILES)
def test_the_operator_accepts_the_profile(name):
    binary = _operator_binary()
    if binary is None:
        pytest.skip("no operator binary: set UID2_OPERATOR_BIN or run cargo build -p uid2-operator "
                    "(tests/run-all.sh does)")
    env = {k: v for k, v in os.environ.items() if k not in ("UID2_CONFIG", "optout_api_token", "port_offset")}
    # In the enclave the key comes from the host's environment; --check-config needs one to pass.
    env["core_api_token"] = "check-config-placeholder"
    result = subprocess.run(
        [str(binary), "--check-config", "--config", str(PACKAGE / "conf" / f"{name}-config.json")],
        env=env, capture_output=True, text=True, timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Every key of a baked profile must mean something to this operator.
    assert "unknown key" not in output, output


def test_profiles_are_plain_json_objects():
    for name in PROFILES:
        text = (PACKAGE / "conf" / f"{name}-config.json").read_text()
        assert isinstance(json.loads(text), dict)
        assert text.endswith("\n")
