#!/usr/bin/env bash
# Builds the UID2 operator as an Intel SGX enclave (Occlum 0.31 LibOS) and the runtime Docker
# image that runs it. Every step runs in a build container derived from Occlum's development
# image, so the host needs only Docker (and an SGX device for the final sgx_quote check).
#
#   ./build.sh <profile> [--push] [--build-version V] [--fast] [--sign-key FILE] [--dry-run]
#
# <profile> names conf/<profile>-config.json; it is baked into the enclave as
# /app/conf/config.json and so measured into MRENCLAVE. --dry-run prints every command with its
# arguments resolved and runs nothing (no Docker or SGX needed). README.md explains each step,
# each artifact and how the signing key decides MRSIGNER.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"

occlum_version=0.31.0
build_image_base="occlum/occlum:${occlum_version}-ubuntu20.04"
build_image="uid2-operator-occlum-build:${occlum_version}"
rust_toolchain="${UID2_RUST_TOOLCHAIN:-stable}"
image_repo="${UID2_IMAGE_REPO:-uid2-operator-azure-sgx}"
sign_key="${UID2_ENCLAVE_SIGN_KEY:-}"
cargo_registry_volume=uid2-occlum-cargo-registry

# Paths inside the build container: the repository is mounted at /src.
pkg=/src/deploy/azure-sgx
instance_name=uid2-operator
instance="$pkg/build/$instance_name"
target_dir="$pkg/build/target"
ephemeral_key="$pkg/build/keys/enclave-key.pem"
mounted_key=/run/uid2-enclave-sign-key.pem

usage() {
    cat <<EOF
usage: $0 <profile> [--push] [--build-version V] [--fast] [--sign-key FILE] [--dry-run]

  <profile>            conf/<profile>-config.json, baked into the enclave (available: $(profiles))
  --push               push the image (needs UID2_IMAGE_REPO naming a registry, e.g. myacr.azurecr.io/uid2-operator-azure-sgx)
  --build-version V    append .V to the image version tag
  --fast               skip writing build/uid2-operator-azure-sgx.tar.gz (docker save)
  --sign-key FILE      sign with this RSA-3072 (e=3) key: a stable MRSIGNER (also UID2_ENCLAVE_SIGN_KEY);
                       default: a fresh key per build, deleted after signing
  --dry-run            print every command with resolved arguments; run nothing

environment: UID2_IMAGE_REPO (default uid2-operator-azure-sgx), UID2_RUST_TOOLCHAIN (default stable),
             UID2_ENCLAVE_SIGN_KEY
EOF
}

fail() {
    echo "build.sh: $1" >&2
    exit "${2:-1}"
}

profiles() {
    local file names=()
    for file in "$here"/conf/*-config.json; do
        [ -e "$file" ] || continue
        file="${file##*/}"
        names+=("${file%-config.json}")
    done
    echo "${names[*]}"
}

profile=""
push=0
fast=0
dry_run=0
build_version=""
while [ $# -gt 0 ]; do
    case "$1" in
        --push) push=1; shift ;;
        --fast) fast=1; shift ;;
        --dry-run) dry_run=1; shift ;;
        --build-version)
            [ $# -ge 2 ] || fail "--build-version needs a value" 64
            build_version="$2"; shift 2 ;;
        --sign-key)
            [ $# -ge 2 ] || fail "--sign-key needs a file" 64
            sign_key="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        -*) usage >&2; fail "unknown option: $1" 64 ;;
        *)
            [ -z "$profile" ] || fail "only one profile may be given (got '$profile' and '$1')" 64
            profile="$1"; shift ;;
    esac
done

[ -n "$profile" ] || { usage >&2; fail "no profile given; available profiles: $(profiles)" 64; }
if [[ ! "$profile" =~ ^[A-Za-z0-9][A-Za-z0-9_-]*$ ]] || [ ! -f "$here/conf/$profile-config.json" ]; then
    fail "unknown profile '$profile' (no conf/$profile-config.json); available profiles: $(profiles)" 64
fi
if [ -n "$build_version" ] && [[ ! "$build_version" =~ ^[A-Za-z0-9_.-]+$ ]]; then
    fail "--build-version must be letters, digits, '.', '_' or '-' (a Docker tag part)" 64
fi
if [ -n "$sign_key" ]; then
    if [ ! -f "$sign_key" ] || [ ! -r "$sign_key" ]; then
        fail "signing key not found or unreadable: $sign_key" 64
    fi
    sign_key="$(cd "$(dirname "$sign_key")" && pwd)/$(basename "$sign_key")"
fi
if [ "$push" = 1 ] && [[ "$image_repo" != */* ]]; then
    fail "--push needs UID2_IMAGE_REPO to name a registry (e.g. myacr.azurecr.io/uid2-operator-azure-sgx), not '$image_repo'" 64
fi

crate_version="$(awk '/^\[workspace\.package\]/ {s = 1; next} /^\[/ {s = 0}
    s && $1 == "version" {gsub(/"/, "", $3); print $3; exit}' "$repo_root/Cargo.toml")"
git_commit="$(git -C "$repo_root" rev-parse --short=10 HEAD 2>/dev/null || echo nogit)"
if [ "$git_commit" != nogit ] && [ -n "$(git -C "$repo_root" status --porcelain 2>/dev/null)" ]; then
    git_commit="$git_commit.dirty"
fi
version="${crate_version:-0.0.0}.$git_commit${build_version:+.$build_version}"
image="$image_repo:$version"
image_dev="$image_repo:dev"

# Prints a command (shell-quoted, so it can be pasted) and runs it unless this is a dry run.
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    [ "$dry_run" = 1 ] || "$@"
}

# Sets `container` to the docker command that runs a command in the build container, working in
# directory $1 (a container path).
key_mount=()
container=()
container_command() {
    local workdir="$1"
    shift
    container=(docker run --rm
        -v "$repo_root:/src"
        -v "$cargo_registry_volume:/usr/local/cargo/registry"
        "${key_mount[@]}"
        -w "$workdir"
        "$build_image" "$@")
}

in_container() {
    container_command "$@"
    run "${container[@]}"
}

# Like in_container, but the command's output goes into the variable named $1 (empty in a dry run).
capture_in_container() {
    local into="$1"
    shift
    container_command "$@"
    printf '+'
    printf ' %q' "${container[@]}"
    printf '\n'
    printf -v "$into" '%s' ""
    if [ "$dry_run" = 0 ]; then
        printf -v "$into" '%s' "$("${container[@]}")"
        echo "${!into}"
    fi
}

step() {
    printf '\n== %s\n' "$1"
}

if [ "$dry_run" = 1 ]; then
    echo "dry run: printing the plan only; nothing is run"
elif ! command -v docker >/dev/null 2>&1; then
    fail "docker is required (see README.md, Build); --dry-run shows the plan without it"
fi
echo "profile: $profile (conf/$profile-config.json -> /app/conf/config.json in the enclave)"
echo "image:   $image (also $image_dev)"

step "build container: $build_image from $build_image_base with Rust $rust_toolchain (rustup)"
run docker build \
    --build-arg "OCCLUM_VERSION=$occlum_version" \
    --build-arg "RUST_TOOLCHAIN=$rust_toolchain" \
    -t "$build_image" \
    -f "$here/Dockerfile.build" "$here/files"

step "clean the previous enclave instance"
in_container "$pkg" files/build-steps.sh clean

step "cargo build: uid2-operator and sgx_quote (glibc, dynamically linked PIE)"
in_container /src env "CARGO_TARGET_DIR=$target_dir" "RUSTFLAGS=--remap-path-prefix=/src=." \
    cargo build --release --locked -p uid2-operator -p uid2-sgx-quote
in_container "$pkg" files/build-steps.sh check-elf \
    "$target_dir/release/uid2-operator" "$target_dir/release/sgx_quote"

step "lay out the enclave image (copy_bom: binaries with Occlum's glibc, DNS libraries; the profile)"
in_container "$pkg/build" occlum new "$instance_name"
in_container "$instance" copy_bom -f "$pkg/files/uid2-operator.yaml" --root image \
    --include-dir /opt/occlum/etc/template
in_container "$instance" install -D -m 0444 "$pkg/conf/$profile-config.json" image/app/conf/config.json
in_container "$instance" install -m 0644 "$pkg/Occlum.json" Occlum.json

if [ -n "$sign_key" ]; then
    step "signing key: $sign_key (stable MRSIGNER)"
    key_mount=(-v "$sign_key:$mounted_key:ro")
    key_in_container="$mounted_key"
    in_container "$pkg" files/build-steps.sh check-sign-key "$key_in_container"
else
    step "signing key: a fresh RSA-3072 key for this build only (MRSIGNER changes every build)"
    key_in_container="$ephemeral_key"
    in_container "$pkg" files/build-steps.sh new-sign-key "$key_in_container"
fi

step "occlum build: measure the image and sign the enclave"
in_container "$instance" occlum build --sign-key "$key_in_container"
# The temporary SEFS mounted at /tmp (Occlum.json) needs its host directory in the package.
in_container "$instance" mkdir -p run/mount/tmp
if [ -z "$sign_key" ]; then
    in_container "$pkg" files/build-steps.sh forget-sign-key "$key_in_container"
fi
key_mount=()

step "enclave identity (occlum print mrenclave / mrsigner)"
mrenclave=""
mrsigner=""
capture_in_container mrenclave "$instance" occlum print mrenclave
capture_in_container mrsigner "$instance" occlum print mrsigner
[ "$dry_run" = 1 ] || [ -n "$mrenclave" ] || fail "occlum print mrenclave printed nothing"

step "occlum package: build/$instance_name/$instance_name.tar.gz"
in_container "$instance" occlum package "$instance_name.tar.gz"
in_container "$pkg" chown -R "$(id -u):$(id -g)" build

step "runtime image: $image ($here/Dockerfile)"
run docker build \
    --build-arg "OCCLUM_VERSION=$occlum_version" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.revision=$git_commit" \
    --label "com.uid2.enclave.profile=$profile" \
    --label "com.uid2.enclave.mrenclave=${mrenclave:-unknown}" \
    -t "$image" -t "$image_dev" \
    -f "$here/Dockerfile" "$here"

if [ "$fast" = 0 ]; then
    step "save the image: build/uid2-operator-azure-sgx.tar.gz"
    printf '+ docker save %q | gzip > %q\n' "$image" "$here/build/uid2-operator-azure-sgx.tar.gz"
    if [ "$dry_run" = 0 ]; then
        docker save "$image" | gzip >"$here/build/uid2-operator-azure-sgx.tar.gz"
    fi
else
    step "--fast: not saving the image to build/uid2-operator-azure-sgx.tar.gz"
fi

identity_file="$here/build/enclave-identity.txt"
step "write $identity_file"
if [ "$dry_run" = 0 ]; then
    cat >"$identity_file" <<EOF
profile=$profile
image=$image
mrenclave=$mrenclave
mrsigner=$mrsigner
product_id=770
svn=2
signing_key=${sign_key:-ephemeral}
EOF
    cat "$identity_file"
fi

step "sgx_quote in the enclave (needs an SGX device on this host)"
if [ "$dry_run" = 1 ]; then
    echo "# runs only where /dev/sgx/enclave or /dev/sgx_enclave exists:"
    run "$here/run.sh" --image "$image" occlum run /bin/sgx_quote
elif [ -e /dev/sgx/enclave ] || [ -e /dev/sgx_enclave ]; then
    run "$here/run.sh" --image "$image" occlum run /bin/sgx_quote
else
    echo "no SGX device on this host: skipped (run ./run.sh occlum run /bin/sgx_quote on an SGX host)"
fi

if [ "$push" = 1 ]; then
    step "push $image"
    run docker push "$image"
fi

step "done"
echo "MRENCLAVE ${mrenclave:-<printed by occlum print mrenclave>}"
echo "MRSIGNER  ${mrsigner:-<printed by occlum print mrsigner>}"
echo "artifacts: image $image, build/$instance_name/$instance_name.tar.gz$([ "$fast" = 1 ] || echo ", build/uid2-operator-azure-sgx.tar.gz")"
