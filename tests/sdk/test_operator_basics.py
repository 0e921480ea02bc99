"""The operator the session started: health and the plain-HTTP edges the SDKs rely on."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest


def test_healthcheck_is_ok(base_url):
    with urllib.request.urlopen(base_url + "/ops/healthcheck") as response:
        assert response.status == 200
        assert response.read() == b"OK"


def test_unknown_path_is_404(base_url):
    try:
        urllib.request.urlopen(base_url + "/v2/no/such/route")
    except urllib.error.HTTPError as error:
        assert error.code == 404
    else:
        raise AssertionError("an unknown path answered 2xx")


def _non_loopback_address() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_listens_on_loopback_only(operator):
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to probe")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        reached = s.connect_ex((address, operator.port)) == 0
    assert not reached, f"the operator answers on {address}:{operator.port}, not only on loopback"
