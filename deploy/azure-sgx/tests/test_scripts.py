"""build.sh and run.sh without Docker or SGX: the dry-run plans, argument errors, that no key
value is ever printed, and one full non-dry build.sh run against a stand-in `docker` that records
its calls (so the real code path, not only the plan printer, is exercised)."""

import gzip
import os
import pathlib
import shutil
import stat
import subprocess

import pytest

from conftest import PACKAGE, PROFILES

BUILD = PACKAGE / "build.sh"
RUN = PACKAGE / "run.sh"

FAKE_DOCKER = """#!/usr/bin/env bash
# Stand-in for docker: records every call; answers the few whose output build.sh reads.
printf '%s\\n' "$*" >> "$FAKE_DOCKER_LOG"
case "$*" in
    *"occlum print mrenclave"*) echo 1111111111111111111111111111111111111111111111111111111111111111 ;;
    *"occlum print mrsigner"*) echo 2222222222222222222222222222222222222222222222222222222222222222 ;;
    *"build-steps.sh clean"*) mkdir -p "$FAKE_PACKAGE/build" ;;
    save*) printf 'image bytes' ;;
    *) [ -z "$FAKE_DOCKER_FAIL" ] || exit 99 ;;
esac
"""


@pytest.fixture
def no_docker(tmp_path):
    """A PATH whose `docker` fails loudly, so a dry run that called Docker would be caught."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text("#!/bin/sh\necho docker was called >&2\nexit 99\n")
    docker.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("core_api_token", "optout_api_token")}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    for name in ("UID2_IMAGE_REPO", "UID2_ENCLAVE_SIGN_KEY", "UID2_RUST_TOOLCHAIN", "UID2_IMAGE"):
        env.pop(name, None)
    return env


def run(script, *args, env):
    return subprocess.run([str(script), *args], env=env, capture_output=True, text=True, timeout=60)


def tree(root):
    skip = {".venv", "__pycache__", ".pytest_cache"}
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if not skip.intersection(p.relative_to(root).parts)
    }


def plan(output):
    return [line for line in output.splitlines() if line.startswith("+ ")]


def index_of(lines, *needles):
    for i, line in enumerate(lines):
        if all(n in line for n in needles):
            return i
    raise AssertionError(f"no step with {needles} in the plan:\n" + "\n".join(lines))


def test_dry_run_prints_the_whole_plan_and_runs_nothing(no_docker):
    before = tree(PACKAGE)
    result = run(BUILD, "--dry-run", "prod", env=no_docker)
    assert result.returncode == 0, result.stderr
    assert "docker was called" not in result.stderr
    assert tree(PACKAGE) == before, "a dry run must not create or remove files"
    steps = plan(result.stdout)
    order = [
        index_of(steps, "docker build", "OCCLUM_VERSION=0.31.0", "Dockerfile.build"),
        index_of(steps, "cargo build --release --locked -p uid2-operator -p uid2-sgx-quote"),
        index_of(steps, "build-steps.sh check-elf", "release/uid2-operator", "release/sgx_quote"),
        index_of(steps, "occlum new uid2-operator"),
        index_of(steps, "copy_bom -f /src/deploy/azure-sgx/files/uid2-operator.yaml --root image"),
        index_of(steps, "install", "conf/prod-config.json image/app/conf/config.json"),
        index_of(steps, "Occlum.json Occlum.json"),
        index_of(steps, "build-steps.sh new-sign-key"),
        index_of(steps, "occlum build --sign-key /src/deploy/azure-sgx/build/keys/enclave-key.pem"),
        index_of(steps, "build-steps.sh forget-sign-key"),
        index_of(steps, "occlum print mrenclave"),
        index_of(steps, "occlum print mrsigner"),
        index_of(steps, "occlum package uid2-operator.tar.gz"),
        index_of(steps, "docker build", "com.uid2.enclave.profile=prod", "azure-sgx/Dockerfile "),
        index_of(steps, "docker save", "gzip >", "build/uid2-operator-azure-sgx.tar.gz"),
        index_of(steps, "run.sh", "occlum run /bin/sgx_quote"),
    ]
    assert order == sorted(order), "\n".join(steps)
    # Every container step runs in the build image, with the repository at /src.
    for line in steps:
        if line.startswith("+ docker run"):
            assert "-v " in line and ":/src " in line and "uid2-operator-occlum-build:0.31.0" in line, line
    assert "docker push" not in result.stdout


@pytest.mark.parametrize("name", PROFILES)
def test_each_profile_bakes_its_own_file(no_docker, name):
    result = run(BUILD, "--dry-run", name, env=no_docker)
    assert result.returncode == 0, result.stderr
    assert f"conf/{name}-config.json image/app/conf/config.json" in result.stdout


def test_unknown_profile_lists_the_available_ones(no_docker):
    result = run(BUILD, "--dry-run", "staging", env=no_docker)
    assert result.returncode == 64
    assert "unknown profile 'staging'" in result.stderr
    assert "available profiles: integ local prod" in result.stderr
    assert plan(result.stdout) == []


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "no profile given; available profiles: integ local prod"),
        (["../conf/prod"], "unknown profile"),
        (["prod", "--frobnicate"], "unknown option: --frobnicate"),
        (["prod", "integ"], "only one profile"),
        (["prod", "--build-version", "a b"], "--build-version must be"),
        (["prod", "--build-version"], "--build-version needs a value"),
        (["prod", "--sign-key", "/nonexistent/key.pem"], "signing key not found"),
        (["prod", "--push"], "--push needs UID2_IMAGE_REPO to name a registry"),
    ],
)
def test_bad_arguments(no_docker, args, message):
    result = run(BUILD, "--dry-run", *args, env=no_docker)
    assert result.returncode == 64, result.stdout
    assert message in result.stderr


def test_fast_skips_the_image_tarball(no_docker):
    result = run(BUILD, "--dry-run", "--fast", "prod", env=no_docker)
    assert result.returncode == 0, result.stderr
    assert "docker save" not in result.stdout
    assert "occlum package uid2-operator.tar.gz" in result.stdout


def test_push_and_build_version(no_docker):
    env = dict(no_docker, UID2_IMAGE_REPO="myacr.azurecr.io/uid2-operator-azure-sgx")
    result = run(BUILD, "--dry-run", "--push", "--build-version", "42", "prod", env=env)
    assert result.returncode == 0, result.stderr
    (push,) = [line for line in plan(result.stdout) if line.startswith("+ docker push")]
    assert push.startswith("+ docker push myacr.azurecr.io/uid2-operator-azure-sgx:0.")
    assert push.endswith(".42")


def test_a_given_signing_key_is_mounted_read_only_and_kept(no_docker, tmp_path):
    key = tmp_path / "stable-key.pem"
    key.write_text("not read in a dry run\n")
    result = run(BUILD, "--dry-run", "--sign-key", str(key), "prod", env=no_docker)
    assert result.returncode == 0, result.stderr
    assert f"-v {key}:/run/uid2-enclave-sign-key.pem:ro" in result.stdout
    assert "build-steps.sh check-sign-key /run/uid2-enclave-sign-key.pem" in result.stdout
    assert "occlum build --sign-key /run/uid2-enclave-sign-key.pem" in result.stdout
    assert "new-sign-key" not in result.stdout and "forget-sign-key" not in result.stdout
    env = dict(no_docker, UID2_ENCLAVE_SIGN_KEY=str(key))
    assert "occlum build --sign-key /run/uid2-enclave-sign-key.pem" in run(BUILD, "--dry-run", "prod", env=env).stdout


def scratch_build(tmp_path, *extra_env):
    """A copy of the package at deploy/azure-sgx of a scratch "repository" (so build.sh writes its
    artifacts there, not into the working tree) and an environment whose `docker` is the
    stand-in. Returns the package directory, that environment and the stand-in's call log."""
    root = tmp_path / "repo"
    package = root / "deploy" / "azure-sgx"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("build", ".venv", "__pycache__"))
    (root / "Cargo.toml").write_text('[workspace]\n\n[workspace.package]\nversion = "9.8.7"\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "docker.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("UID2_")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", FAKE_DOCKER_LOG=str(log), FAKE_PACKAGE=str(package),
               GIT_CEILING_DIRECTORIES=str(tmp_path))
    env.update(extra_env)
    return package, env, log


def test_a_real_run_against_a_stand_in_docker(tmp_path):
    package, env, log = scratch_build(tmp_path)
    result = subprocess.run([str(package / "build.sh"), "local"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = log.read_text().splitlines()
    assert any(c.startswith("build ") and "Dockerfile.build" in c for c in calls)
    assert any("occlum build --sign-key" in c for c in calls)
    assert any(c.startswith("build ") and "com.uid2.enclave.mrenclave=" + "1" * 64 in c for c in calls)
    assert any(c == "save uid2-operator-azure-sgx:9.8.7.nogit" for c in calls)
    saved = package / "build" / "uid2-operator-azure-sgx.tar.gz"
    assert gzip.decompress(saved.read_bytes()) == b"image bytes"
    identity = (package / "build" / "enclave-identity.txt").read_text()
    assert "mrenclave=" + "1" * 64 in identity and "mrsigner=" + "2" * 64 in identity
    assert "profile=local" in identity and "product_id=770" in identity and "svn=2" in identity
    assert "MRENCLAVE " + "1" * 64 in result.stdout
    if not (pathlib.Path("/dev/sgx/enclave").exists() or pathlib.Path("/dev/sgx_enclave").exists()):
        assert "no SGX device on this host: skipped" in result.stdout


def test_a_failing_docker_step_stops_the_build(tmp_path):
    package, env, log = scratch_build(tmp_path, ("FAKE_DOCKER_FAIL", "1"))
    result = subprocess.run([str(package / "build.sh"), "prod"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert len(log.read_text().splitlines()) == 1, "nothing after the first failing step"


def test_run_defaults(no_docker):
    result = run(RUN, "--dry-run", env=no_docker)
    assert result.returncode == 0, result.stderr
    (line,) = plan(result.stdout)
    assert line.startswith("+ docker run --rm ")
    assert "--device /dev/sgx/enclave --device /dev/sgx/provision" in line or \
        "--device /dev/sgx_enclave:/dev/sgx/enclave --device /dev/sgx_provision:/dev/sgx/provision" in line
    assert "-p 8080:8080 -p 9091:9091" in line
    assert line.endswith(" uid2-operator-azure-sgx:dev occlum run /bin/uid2-operator")
    assert " -e " not in line
    assert "docker was called" not in result.stderr


def test_run_passes_the_keys_by_name_only(no_docker):
    env = dict(no_docker, core_api_token="secret-value", optout_api_token="other-secret-value")
    result = run(RUN, "--dry-run", "--image", "reg.example/op:1", "occlum", "run", "/bin/sgx_quote", env=env)
    assert result.returncode == 0, result.stderr
    (line,) = plan(result.stdout)
    assert "-e core_api_token -e optout_api_token" in line
    assert line.endswith(" reg.example/op:1 occlum run /bin/sgx_quote")
    for output in (result.stdout, result.stderr):
        assert "secret-value" not in output


def test_run_bad_option(no_docker):
    result = run(RUN, "--bogus", env=no_docker)
    assert result.returncode == 64
    assert "unknown option: --bogus" in result.stderr


def test_build_dry_run_never_prints_a_key_either(no_docker):
    env = dict(no_docker, core_api_token="secret-value", optout_api_token="other-secret-value")
    result = run(BUILD, "--dry-run", "prod", env=env)
    assert result.returncode == 0
    assert "secret-value" not in result.stdout + result.stderr
