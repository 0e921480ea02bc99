"""What Occlum 0.31 accepts in an instance's Occlum.json, written out so CI can check it without
the Occlum tools.

Mirrors occlum/occlum v0.31.0: `tools/gen_internal_conf/src/main.rs` (the structs that
`occlum build` deserializes: a key without `#[serde(default)]` is required; `parse_memory_size`;
`gen_app_config`'s demand for a root unionfs with a MAC'd SEFS layer), and the LibOS side that
reads the generated config at start (`src/libos/src/config.rs`: `deny_unknown_fields` on `env`
and on mounts, the known file-system types; `src/libos/src/fs/rootfs.rs`: a unionfs of exactly
two SEFS layers, a SEFS needs a source, a MAC'd SEFS cannot be temporary).

Unknown keys are reported everywhere, which is stricter than `occlum build` (it drops unknown
mount options silently): a misspelt `"temporary"` would otherwise turn /tmp into a persistent FS
without any error.
"""

import re

MEMORY_UNITS = [("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30), ("TB", 1 << 40), ("B", 1)]
U32_MAX = (1 << 32) - 1
FS_TYPES = {"sefs", "hostfs", "ramfs", "unionfs", "devfs", "procfs", "ext2"}

# key -> required?  (required = no #[serde(default)] in gen_internal_conf 0.31)
TOP_LEVEL = {
    "resource_limits": True,
    "process": True,
    "entry_points": True,
    "env": True,
    "metadata": True,
    "feature": True,
    "mount": True,
}
RESOURCE_LIMITS = {
    "max_num_of_threads": True,
    "kernel_space_heap_size": True,
    "kernel_space_stack_size": True,
    "user_space_size": True,
    "init_num_of_threads": False,
    "kernel_space_heap_max_size": False,
    "user_space_max_size": False,
}
PROCESS = {"default_stack_size": True, "default_heap_size": True, "default_mmap_size": True}
METADATA = {
    "product_id": True,
    "version_number": True,
    "debuggable": True,
    "disable_log": False,
    "enable_kss": True,
    "family_id": True,
    "ext_prod_id": True,
}
META_ID = {"high": True, "low": True}
FEATURE = {"amx": False, "pkru": False, "io_uring": False, "enable_edmm": False, "enable_posix_shm": False}
ENV = {"default": False, "untrusted": False}
MOUNT = {"type": True, "target": True, "source": False, "options": False}
MOUNT_OPTIONS = {"MAC": False, "layers": False, "temporary": False, "cache_size": False, "disk_size": False}


def parse_memory_size(text):
    """Bytes for a size such as "64MB", exactly as Occlum's `parse_memory_size` reads it: the first
    unit (in the order KB, MB, GB, TB, B) the trimmed text ends with, times an unsigned integer.
    Raises ValueError otherwise ("4 GiB", "1.5GB" and "4G" are all refused by Occlum)."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a string")
    text = text.strip()
    for unit, factor in MEMORY_UNITS:
        if text.endswith(unit):
            number = text[: len(text) - len(unit)].strip()
            # Rust's usize parser: ASCII digits with an optional leading '+'.
            if not re.fullmatch(r"\+?[0-9]+", number):
                raise ValueError(f"{text!r}: no number before the unit")
            return int(number) * factor
    raise ValueError(f"{text!r}: no unit (KB, MB, GB, TB or B)")


def _is_u32(value):
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= U32_MAX


def _keys(obj, spec, where, problems):
    if not isinstance(obj, dict):
        problems.append(f"{where}: must be an object")
        return False
    for key, required in spec.items():
        if required and key not in obj:
            problems.append(f"{where}.{key}: required")
    for key in obj:
        if key not in spec:
            problems.append(f"{where}.{key}: unknown key")
    return True


def _size(obj, key, where, problems):
    if key in obj:
        try:
            parse_memory_size(obj[key])
        except ValueError as error:
            problems.append(f"{where}.{key}: {error}")


def _hex_u64(value, where, problems):
    if not isinstance(value, str):
        problems.append(f"{where}: must be a hex string such as \"0x0\"")
        return
    digits = value[2:] if value.startswith("0x") else value
    if not re.fullmatch(r"[0-9a-fA-F]{1,16}", digits):
        problems.append(f"{where}: not a 64-bit hex number")


def _mount(mount, where, problems):
    if not _keys(mount, MOUNT, where, problems):
        return
    fs_type = mount.get("type")
    if fs_type not in FS_TYPES:
        problems.append(f"{where}.type: {fs_type!r} is not one of {sorted(FS_TYPES)}")
    target = mount.get("target")
    if not isinstance(target, str) or not target.startswith("/"):
        problems.append(f"{where}.target: must be an absolute path")
    if "source" in mount and not isinstance(mount["source"], str):
        problems.append(f"{where}.source: must be a string")
    options = mount.get("options", {})
    if not _keys(options, MOUNT_OPTIONS, f"{where}.options", problems):
        return
    if "MAC" in options and not isinstance(options["MAC"], str):
        problems.append(f"{where}.options.MAC: must be a string")
    if "temporary" in options and not isinstance(options["temporary"], bool):
        problems.append(f"{where}.options.temporary: must be true or false")
    for key in ("cache_size", "disk_size"):
        _size(options, key, f"{where}.options", problems)
    if fs_type == "sefs":
        if "source" not in mount:
            problems.append(f"{where}: a sefs mount needs a source")
        if options.get("temporary") and "MAC" in options:
            problems.append(f"{where}: an integrity-protected (MAC) sefs cannot be temporary")
    if fs_type == "ext2" and "disk_size" not in options:
        problems.append(f"{where}: ext2 needs options.disk_size")
    layers = options.get("layers")
    if layers is not None:
        if not isinstance(layers, list):
            problems.append(f"{where}.options.layers: must be a list")
        else:
            for i, layer in enumerate(layers):
                _mount(layer, f"{where}.options.layers[{i}]", problems)


def problems(config):
    """Every reason Occlum 0.31 would refuse this Occlum.json (an empty list when it is valid)."""
    found = []
    if not _keys(config, TOP_LEVEL, "Occlum.json", found):
        return found

    limits = config.get("resource_limits")
    if _keys(limits, RESOURCE_LIMITS, "resource_limits", found):
        for key in ("max_num_of_threads", "init_num_of_threads"):
            if key in limits and not _is_u32(limits[key]):
                found.append(f"resource_limits.{key}: must be an unsigned 32-bit integer")
        for key in ("kernel_space_heap_size", "kernel_space_stack_size", "user_space_size",
                    "kernel_space_heap_max_size", "user_space_max_size"):
            _size(limits, key, "resource_limits", found)

    process = config.get("process")
    if _keys(process, PROCESS, "process", found):
        for key in PROCESS:
            _size(process, key, "process", found)

    entry_points = config.get("entry_points")
    if not isinstance(entry_points, list) or not all(isinstance(p, str) for p in entry_points):
        found.append("entry_points: must be a list of strings")

    env = config.get("env")
    if _keys(env, ENV, "env", found):
        for key in ENV:
            values = env.get(key, [])
            if not isinstance(values, list) or not all(isinstance(v, str) and "\0" not in v for v in values):
                found.append(f"env.{key}: must be a list of strings")

    metadata = config.get("metadata")
    if _keys(metadata, METADATA, "metadata", found):
        for key in ("product_id", "version_number"):
            if key in metadata and not _is_u32(metadata[key]):
                found.append(f"metadata.{key}: must be an unsigned 32-bit integer")
        for key in ("debuggable", "enable_kss", "disable_log"):
            if key in metadata and not isinstance(metadata[key], bool):
                found.append(f"metadata.{key}: must be true or false")
        for key in ("family_id", "ext_prod_id"):
            if key in metadata and _keys(metadata[key], META_ID, f"metadata.{key}", found):
                for half in META_ID:
                    if half in metadata[key]:
                        _hex_u64(metadata[key][half], f"metadata.{key}.{half}", found)

    feature = config.get("feature")
    if _keys(feature, FEATURE, "feature", found):
        for key in ("amx", "pkru", "io_uring"):
            if key in feature and not _is_u32(feature[key]):
                found.append(f"feature.{key}: must be an unsigned 32-bit integer")
        for key in ("enable_edmm", "enable_posix_shm"):
            if key in feature and not isinstance(feature[key], bool):
                found.append(f"feature.{key}: must be true or false")

    mounts = config.get("mount")
    if not isinstance(mounts, list):
        found.append("mount: must be a list")
        return found
    for i, mount in enumerate(mounts):
        _mount(mount, f"mount[{i}]", found)
    root = [m for m in mounts if isinstance(m, dict) and m.get("target") == "/" and m.get("type") == "unionfs"]
    if not root:
        found.append("mount: no root unionfs (target \"/\")")
    else:
        layers = (root[0].get("options") or {}).get("layers")
        if not isinstance(layers, list) or len(layers) < 2:
            found.append("mount: the root unionfs needs two layers (image, container)")
        elif not all(isinstance(layer, dict) and layer.get("type") == "sefs" for layer in layers[:2]):
            found.append("mount: both layers of the root unionfs must be sefs")
        elif not any(layer.get("target") == "/" and "MAC" in (layer.get("options") or {}) for layer in layers):
            found.append("mount: the root unionfs has no MAC'd sefs image layer")
    return found


def enclave_budget(config):
    """The sizes that matter for EPC, in bytes: user space, kernel heap, and one kernel stack per
    thread (each LibOS thread has an SGX TCS with its own stack)."""
    limits = config["resource_limits"]
    return {
        "user_space": parse_memory_size(limits["user_space_size"]),
        "kernel_heap": parse_memory_size(limits["kernel_space_heap_size"]),
        "kernel_stacks": parse_memory_size(limits["kernel_space_stack_size"]) * limits["max_num_of_threads"],
    }
