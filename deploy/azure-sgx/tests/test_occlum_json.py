"""Occlum.json: valid for Occlum 0.31 (occlum_config mirrors what `occlum build` and the LibOS
accept), and the package's policy: identity 770/2, release enclave, exactly two untrusted inputs,
the measured config path, no host file system, /tmp on an encrypted SEFS, sizes that cover the
operator's measured needs."""

import copy

import pytest

import occlum_config
from occlum_config import parse_memory_size

MIB = 1 << 20
GIB = 1 << 30


def test_valid_for_occlum_0_31(occlum_json):
    assert occlum_config.problems(occlum_json) == []


@pytest.mark.parametrize(
    "text, size",
    [("64MB", 64 * MIB), ("4GB", 4 * GIB), ("1MB", MIB), (" 2 KB ", 2048), ("512B", 512), ("+4MB", 4 * MIB),
     ("1TB", 1 << 40)],
)
def test_memory_sizes_parse_as_occlum_reads_them(text, size):
    assert parse_memory_size(text) == size


@pytest.mark.parametrize("text", ["4G", "4 GiB", "1.5GB", "MB", "-1MB", "0x10MB", "", 64, None])
def test_memory_sizes_occlum_refuses(text):
    with pytest.raises(ValueError):
        parse_memory_size(text)


def _without(config, *path):
    config = copy.deepcopy(config)
    node = config
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return config


def _with(config, value, *path):
    config = copy.deepcopy(config)
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return config


# Each mutation of the real file must be caught, with a message naming the key: the validator
# itself is checked, not only the file.
@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: _without(c, "feature"), "feature: required"),
        (lambda c: _without(c, "metadata", "enable_kss"), "metadata.enable_kss: required"),
        (lambda c: _without(c, "metadata", "family_id"), "metadata.family_id: required"),
        (lambda c: _without(c, "metadata", "ext_prod_id", "low"), "metadata.ext_prod_id.low: required"),
        (lambda c: _without(c, "process", "default_mmap_size"), "process.default_mmap_size: required"),
        (lambda c: _without(c, "resource_limits", "max_num_of_threads"), "max_num_of_threads: required"),
        (lambda c: _with(c, "4 GiB", "resource_limits", "user_space_size"), "user_space_size"),
        (lambda c: _with(c, "1.5GB", "resource_limits", "kernel_space_heap_size"), "kernel_space_heap_size"),
        (lambda c: _with(c, -1, "metadata", "product_id"), "metadata.product_id"),
        (lambda c: _with(c, "2", "metadata", "version_number"), "metadata.version_number"),
        (lambda c: _with(c, "false", "metadata", "debuggable"), "metadata.debuggable"),
        (lambda c: _with(c, "0xZZ", "metadata", "family_id", "high"), "metadata.family_id.high"),
        (lambda c: _with(c, {"default": [], "untrusted": [], "trusted": []}, "env"), "env.trusted: unknown key"),
        (lambda c: _with(c, {"temprary": True}, "mount", 1, "options"), "temprary: unknown key"),
        (lambda c: _with(c, {"MAC": "", "temporary": True}, "mount", 1, "options"), "cannot be temporary"),
        (lambda c: _with(c, "tmpfs", "mount", 1, "type"), "is not one of"),
        (lambda c: _with(c, "tmp", "mount", 1, "target"), "absolute path"),
        (lambda c: _without(c, "mount", 1, "source"), "needs a source"),
        (lambda c: _with(c, {}, "mount", 0, "options", "layers", 0, "options"), "no MAC'd sefs image layer"),
        (lambda c: _with(c, "hostfs", "mount", 0, "options", "layers", 1, "type"), "must be sefs"),
        (lambda c: _with(c, [], "mount"), "no root unionfs"),
    ],
)
def test_the_validator_catches(occlum_json, mutate, expected):
    found = occlum_config.problems(mutate(occlum_json))
    assert any(expected in problem for problem in found), found


def test_sgx_identity_is_what_core_expects(occlum_json):
    metadata = occlum_json["metadata"]
    # Core's azure-sgx verifier required ISVPRODID 770 and ISVSVN 2; both are 16-bit in SIGSTRUCT
    # even though Occlum parses them as u32.
    assert metadata["product_id"] == 770
    assert metadata["version_number"] == 2
    assert metadata["product_id"] <= 0xFFFF and metadata["version_number"] <= 0xFFFF
    assert metadata["debuggable"] is False
    assert metadata.get("disable_log", True) is True, "a release enclave keeps Occlum's log off"
    assert metadata["enable_kss"] is False


def test_only_the_two_operator_keys_come_from_the_host(occlum_json):
    untrusted = occlum_json["env"]["untrusted"]
    assert sorted(untrusted) == ["core_api_token", "optout_api_token"]
    assert len(untrusted) == len(set(untrusted))


def test_the_measured_environment_fixes_the_config_file(occlum_json):
    default = occlum_json["env"]["default"]
    for entry in default:
        name, sep, _ = entry.partition("=")
        assert sep and name.isidentifier(), f"{entry!r} is not NAME=value"
        assert name not in occlum_json["env"]["untrusted"], f"the host could override {name}"
        assert "token" not in name.lower() and "secret" not in name.lower()
    assert "OCCLUM=yes" in default
    # The operator reads its config from UID2_CONFIG and refuses a conflicting --config, so the
    # host cannot pick another file (or local mode).
    assert "UID2_CONFIG=/app/conf/config.json" in default
    # glibc reserves 64 MiB of address space per malloc arena, taken from user_space_size.
    assert "MALLOC_ARENA_MAX=2" in default


def test_entry_points(occlum_json):
    assert occlum_json["entry_points"] == ["/bin"]


def _all_mounts(mounts):
    for mount in mounts:
        yield mount
        yield from _all_mounts(mount.get("options", {}).get("layers", []))


def test_no_host_file_system(occlum_json):
    for mount in _all_mounts(occlum_json["mount"]):
        assert mount["type"] != "hostfs", mount
        assert not mount["target"].startswith("/host"), mount


def test_root_is_the_measured_image_under_an_encrypted_upper_layer(occlum_json):
    root = [m for m in occlum_json["mount"] if m["target"] == "/"]
    assert len(root) == 1 and root[0]["type"] == "unionfs"
    image, container = root[0]["options"]["layers"]
    assert image == {"target": "/", "type": "sefs", "source": "./build/mount/__ROOT", "options": {"MAC": ""}}
    assert container == {"target": "/", "type": "sefs", "source": "./run/mount/__ROOT"}


def test_tmp_is_a_temporary_sefs_not_ramfs(occlum_json):
    # The opt-out file cache (~720 MB for 10 M entries) lives under /tmp. A ramfs keeps file data
    # in the LibOS kernel heap; a temporary SEFS keeps it encrypted on the host and starts empty.
    tmp = [m for m in occlum_json["mount"] if m["target"] == "/tmp"]
    assert tmp == [{"target": "/tmp", "type": "sefs", "source": "./run/mount/tmp", "options": {"temporary": True}}]
    assert all(m["type"] != "ramfs" for m in _all_mounts(occlum_json["mount"]))
    # Occlum 0.31 adds /proc and /dev itself.
    assert {m["target"] for m in occlum_json["mount"]} == {"/", "/tmp"}


def test_no_edmm(occlum_json):
    # Without EDMM every page is added and measured at load: the sizes below are what the
    # enclave gets, and the EDMM-only keys would be ignored or misleading.
    assert occlum_json["feature"]["enable_edmm"] is False
    for key in ("init_num_of_threads", "kernel_space_heap_max_size", "user_space_max_size"):
        assert key not in occlum_json["resource_limits"]


def test_thread_limit_covers_every_thread_the_operator_starts(occlum_json, profiles):
    for name, profile in profiles.items():
        need = (
            profile["service_instances"]  # tokio workers
            + profile["max_blocking_threads"]  # tokio blocking pool (store parsing, DNS, the quote)
            + 8  # salt file parse threads (available_parallelism, at most 8)
            + 1  # opt-out index sort helper
            + 1  # main thread (the runtime's block_on)
            + 1  # one spare
        )
        assert occlum_json["resource_limits"]["max_num_of_threads"] >= need, name


def test_user_space_covers_the_measured_peak(occlum_json):
    # docs/performance.md, full-size store (1,048,576 salt buckets, 10 M opt-outs): peak RSS up to
    # 1497 MiB at start-up, 1.16-1.25 GiB when ready. A new opt-out partition rebuilds the index
    # beside the serving one: the 704 MiB of tables are held twice for a moment.
    measured_peak = 1497 * MIB
    second_index = 704 * MIB
    limits = occlum_json["resource_limits"]
    stacks = limits["max_num_of_threads"] * 2 * MIB  # Rust's default thread stack
    arenas = 128 * MIB  # MALLOC_ARENA_MAX=2: one 64 MiB arena, mapped at twice its size to align it
    brk_heap = parse_memory_size(occlum_json["process"]["default_heap_size"])
    need = measured_peak + second_index + stacks + arenas + brk_heap
    user_space = parse_memory_size(limits["user_space_size"])
    assert user_space >= need
    assert user_space >= need * 1.3, "keep at least 30% headroom over the estimate"
    assert parse_memory_size(limits["kernel_space_heap_size"]) >= 128 * MIB


def test_readme_states_the_same_sizes(occlum_json, readme):
    limits = occlum_json["resource_limits"]
    for value in (limits["user_space_size"], limits["kernel_space_heap_size"], limits["kernel_space_stack_size"],
                  str(limits["max_num_of_threads"]), occlum_json["process"]["default_heap_size"],
                  occlum_json["process"]["default_stack_size"]):
        assert f"`{value}`" in readme, f"README.md does not state {value}"
