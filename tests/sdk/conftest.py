"""Fixtures: the real operator binary (started once per session) and the collector of secrets.

The suite installs nothing and builds nothing. It expects a venv with tests/sdk/requirements.txt
and the release binary at $UID2_OPERATOR_BIN (default target/release/uid2-operator under the repo
root); tests/sdk/run.sh does both.

With UID2_SDK_MODE=attested the operator runs in attested mode against the local Core/OptOut
service ($UID2_LOCAL_CORE_BIN, default target/release/uid2-local-core), serving a temporary copy
of the same test store, with conf/attested-local-config.json pointed at it. With
UID2_SDK_MODE=azure-sgx it does the same as a (simulated) SGX enclave, attesting with SGX quotes
that the local Core checks through its MAA simulator: conf/azure-sgx-simulated-local-config.json.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from sdkharness import DSP, PUBLISHER_124, REPO_ROOT, SPECIAL, Sensitive, add_store_secrets, check_log

# The SDK calls urllib without a timeout; bound every socket operation of this process.
socket.setdefaulttimeout(15)

API_BASE_PORT = 8080
METRICS_BASE_PORT = 9080
MAX_PORT_ATTEMPTS = 20  # offsets tried in all
MAX_STARTS = 5  # of which started (an early exit may be a lost race for the port)
HEALTH_DEADLINE_S = 30.0
HEALTH_POLL_S = 0.1
STOP_GRACE_S = 10.0


@dataclass
class RunningOperator:
    base_url: str
    port: int
    log_path: Path
    process: subprocess.Popen

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


SDK_MODE = os.environ.get("UID2_SDK_MODE", "local")
if SDK_MODE not in ("local", "attested", "azure-sgx"):
    raise ValueError(f"UID2_SDK_MODE must be local, attested or azure-sgx, not {SDK_MODE!r}")
ATTESTED = SDK_MODE in ("attested", "azure-sgx")
LOCAL_OPERATOR_KEY_FILE = (
    "conf/azure-sgx-simulated-local-config.json" if SDK_MODE == "azure-sgx" else "conf/attested-local-config.json"
)


def _binary(variable: str, default: str) -> Path:
    configured = os.environ.get(variable)
    path = Path(configured) if configured else Path(default)
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"binary not found or not executable: {path} (set {variable}, or build it with cargo)",
            pytrace=False,
        )
    return path


def _operator_binary() -> Path:
    configured = os.environ.get("UID2_OPERATOR_BIN")
    path = Path(configured) if configured else Path("target/release/uid2-operator")
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"operator binary not found or not executable: {path}\n"
            "build it with `cargo build --release -p uid2-operator`, or point UID2_OPERATOR_BIN at it "
            "(tests/sdk/run.sh does the build when UID2_OPERATOR_BIN is unset)",
            pytrace=False,
        )
    return path


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _healthcheck(port: int) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ops/healthcheck", timeout=1) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError:
        return None


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_GRACE_S)


def _start(
    binary: Path, offset: int, log_path: Path, args: list[str]
) -> tuple[subprocess.Popen | None, str]:
    """Starts the operator with `port_offset=offset`; returns it once healthy, or None and why."""
    env = dict(os.environ)
    env.update({"port_offset": str(offset), "RUST_LOG": "trace", "NO_COLOR": "1"})
    port = API_BASE_PORT + offset
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [str(binary), *args],
            cwd=str(log_path.parent),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + HEALTH_DEADLINE_S
    last = None
    for _ in range(int(HEALTH_DEADLINE_S / HEALTH_POLL_S) + 1):
        if process.poll() is not None:
            return None, f"exited with status {process.returncode} before becoming healthy"
        last = _healthcheck(port)
        if last == (200, "OK"):
            return process, ""
        if time.monotonic() > deadline:
            break
        time.sleep(HEALTH_POLL_S)
    _stop(process)
    return None, f"not healthy within {HEALTH_DEADLINE_S:.0f} s (last healthcheck answer: {last})"


def _free_port(rng: random.Random) -> int:
    for _ in range(MAX_PORT_ATTEMPTS):
        port = rng.randint(20000, 29999)
        if _port_is_free(port):
            return port
    pytest.fail("no free loopback port for the local Core", pytrace=False)


def _start_local_core(work: Path, rng: random.Random) -> tuple[subprocess.Popen, int]:
    """The local Core/OptOut service over a private copy of the test store."""
    binary = _binary("UID2_LOCAL_CORE_BIN", "target/release/uid2-local-core")
    for name in ("local-store", "reference-store"):
        shutil.copytree(REPO_ROOT / "testdata" / name, work / name)
    (work / "local-store" / "operators").mkdir(exist_ok=True)
    for name in ("operators.json", "enclaves.json"):
        source = REPO_ROOT / "testdata" / "local-core" / name
        if source.exists():
            shutil.copy(source, work / "local-store" / "operators" / name)
    port = _free_port(rng)
    log = open(work / "local-core.log", "ab")
    process = subprocess.Popen(
        [str(binary), "--store", str(work / "local-store"), "--listen", f"127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    for _ in range(int(HEALTH_DEADLINE_S / HEALTH_POLL_S)):
        if process.poll() is not None:
            pytest.fail(f"local core exited with {process.returncode}", pytrace=False)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_test/faults", timeout=1):
                return process, port
        except OSError:
            time.sleep(HEALTH_POLL_S)
    _stop(process)
    pytest.fail("local core did not start", pytrace=False)


def _attested_config(work: Path, core_port: int) -> Path:
    config = json.loads((REPO_ROOT / LOCAL_OPERATOR_KEY_FILE).read_text())
    for key, value in list(config.items()):
        if isinstance(value, str) and "127.0.0.1:8088" in value:
            config[key] = value.replace("127.0.0.1:8088", f"127.0.0.1:{core_port}")
    config["optout_data_dir"] = str(work / "optout-cache")
    config["cloud_refresh_interval"] = 1
    path = work / "operator.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="session")
def operator_key() -> str | None:
    """The operator API key in attested mode (a secret the log must never show)."""
    if not ATTESTED:
        return None
    return json.loads((REPO_ROOT / LOCAL_OPERATOR_KEY_FILE).read_text())["core_api_token"]


@pytest.fixture(scope="session")
def operator(tmp_path_factory, sensitive) -> RunningOperator:
    """The real operator binary on loopback, started once for the session: local mode, or
    attested mode against the local Core when UID2_SDK_MODE=attested.

    It logs at the most verbose level (RUST_LOG=trace, dependencies included). After the session,
    once it has stopped, its whole log is checked against every secret and piece of DII the
    session used (`sensitive`) and the shapes of tokens and bodies; a hit fails the run, reported
    by kind and line number only."""
    binary = _operator_binary()
    work = tmp_path_factory.mktemp("operator")
    log_path = work / "operator.log"
    args: list[str] = []
    core = None
    if ATTESTED:
        core, core_port = _start_local_core(work, random.Random())
        args = ["--config", str(_attested_config(work, core_port))]
    rng = random.Random()
    problems = []
    process = None
    offset = 0
    starts = 0
    for _ in range(MAX_PORT_ATTEMPTS):
        if starts >= MAX_STARTS:
            break
        offset = rng.randint(100, 900)
        if not (_port_is_free(API_BASE_PORT + offset) and _port_is_free(METRICS_BASE_PORT + offset)):
            problems.append(f"offset {offset}: port in use")
            continue
        starts += 1
        process, why = _start(binary, offset, log_path, args)
        if process is not None:
            break
        problems.append(f"offset {offset}: {why}")
        if why.startswith("not healthy"):
            break  # a hung start is not a port race: do not wait 30 s again
    if process is None:
        if core is not None:
            _stop(core)
        tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
        pytest.fail(
            f"could not start {binary} ({starts} start(s), {len(problems)} offset(s) tried):\n  "
            + "\n  ".join(problems)
            + f"\nlog ({log_path}) ends with:\n{tail}",
            pytrace=False,
        )
    port = API_BASE_PORT + offset
    try:
        yield RunningOperator(f"http://127.0.0.1:{port}", port, log_path, process)
    finally:
        _stop(process)
        if core is not None:
            _stop(core)
    leaks = check_log(log_path, sensitive)
    if leaks:
        pytest.fail(
            f"the operator log {log_path} holds {len(leaks)} secret(s), piece(s) of DII or body shape(s) "
            f"({sensitive.count()} values checked):\n  " + "\n  ".join(leaks[:60]),
            pytrace=False,
        )


@pytest.fixture(scope="session")
def base_url(operator: RunningOperator) -> str:
    return operator.base_url


@pytest.fixture(scope="session")
def sensitive(operator_key: str | None) -> Sensitive:
    """Collects every secret and piece of DII used in the session (checked against the log last)."""
    collected = Sensitive()
    for client in (SPECIAL, DSP, PUBLISHER_124):
        collected.add_client(client)
    add_store_secrets(collected)
    if operator_key:
        collected.add("operator key", operator_key)
    return collected
