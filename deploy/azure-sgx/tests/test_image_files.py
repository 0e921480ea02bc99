"""The files that make the images: the two Dockerfiles, the container entry script, the copy_bom
bill of materials; and that they agree with each other and with build.sh (Occlum version, paths,
ports)."""

import re

import yaml

from conftest import PACKAGE, REPO

OCCLUM_VERSION = "0.31.0"


def read(name):
    return (PACKAGE / name).read_text()


def test_one_occlum_version_everywhere():
    assert re.search(rf"^ARG OCCLUM_VERSION={re.escape(OCCLUM_VERSION)}$", read("Dockerfile"), re.M)
    assert re.search(rf"^ARG OCCLUM_VERSION={re.escape(OCCLUM_VERSION)}$", read("Dockerfile.build"), re.M)
    assert f"occlum_version={OCCLUM_VERSION}" in read("build.sh")


def test_build_image_is_occlums_development_image_with_rustup():
    text = read("Dockerfile.build")
    assert "FROM occlum/occlum:${OCCLUM_VERSION}-ubuntu20.04" in text
    assert "sh.rustup.rs" in text and '--default-toolchain "${RUST_TOOLCHAIN}"' in text


def test_runtime_image():
    text = read("Dockerfile")
    assert "FROM occlum/occlum:${OCCLUM_VERSION}-rt-ubuntu20.04" in text
    # Azure: quote collateral from THIM through az-dcap-client instead of Intel's provider.
    assert "apt-get purge -y libsgx-dcap-default-qpl" in text
    assert re.search(r"install .*az-dcap-client", text)
    assert "COPY build/uid2-operator/uid2-operator.tar.gz" in text
    assert re.search(r"^EXPOSE 8080 9091$", text, re.M)
    assert 'ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/root/run.sh"]' in text
    assert 'CMD ["occlum", "run", "/bin/uid2-operator"]' in text
    assert "WORKDIR /root/uid2-operator" in text


def test_docker_context_holds_only_what_the_image_copies():
    lines = [line for line in read(".dockerignore").splitlines() if line and not line.startswith("#")]
    assert lines == ["*", "!files/run.sh", "!build/uid2-operator/uid2-operator.tar.gz"]


def test_container_entry_script_execs_the_command():
    text = read("files/run.sh")
    assert "AZDCAP_DEBUG_LOG_LEVEL" in text
    assert 'instance=/root/uid2-operator' in text and 'cd "$instance"' in text
    assert "mkdir -p run/mount/tmp" in text
    commands = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == 'exec "$@"'


def test_bill_of_materials():
    bom = yaml.safe_load(read("files/uid2-operator.yaml"))
    assert bom["includes"] == ["base.yaml"]
    copied = {}
    for target in bom["targets"]:
        for entry in target.get("copy", []):
            for item in entry.get("files", []):
                copied.setdefault(target["target"], []).append(item if isinstance(item, str) else item["name"])
    assert copied["/bin"] == [
        "/src/deploy/azure-sgx/build/target/release/uid2-operator",
        "/src/deploy/azure-sgx/build/target/release/sgx_quote",
    ]
    # glibc's resolver modules, loaded at run time by getaddrinfo.
    assert sorted(copied["/opt/occlum/glibc/lib"]) == sorted(
        f"/opt/occlum/glibc/lib/{lib}" for lib in ("libnss_files.so.2", "libnss_dns.so.2", "libresolv.so.2")
    )
    for path in copied["/etc"]:
        assert (REPO / path.removeprefix("/src/")).is_file(), path
    assert "hosts: files dns" in read("files/nsswitch.conf")


def test_ports_are_8080_and_9091_throughout_the_package():
    for path in PACKAGE.rglob("*"):
        if path.is_file() and "tests" not in path.relative_to(PACKAGE).parts and "build" not in \
                path.relative_to(PACKAGE).parts and path.name != "README.md":
            assert "9080" not in path.read_text(errors="replace"), path


def test_gitignore_keeps_build_outputs_out():
    lines = read(".gitignore").splitlines()
    assert "/build/" in lines and "/tests/.venv/" in lines


def test_readme_sections_and_links(readme):
    for heading in ("## Build", "## Artifacts", "## Test Run", "## Deployment", "### AKS (recommended)",
                    "### Docker", "### Direct `occlum run`", "## Signing key and MRSIGNER",
                    "## Memory and threads", "## Verified only on SGX hardware"):
        assert re.search(rf"^{re.escape(heading)}", readme, re.M), heading
    assert "docs/performance.md" in readme
    assert "deploy/azure-sgx" in (REPO / "README.md").read_text(), "the top README links the package"
