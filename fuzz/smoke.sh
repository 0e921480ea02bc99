#!/usr/bin/env bash
# Fuzz smoke run (CI): builds every cargo-fuzz target, then runs each for a few seconds from its
# committed seed corpus (fuzz/corpus/<target>/). Exit status 1 when any target crashes, panics
# (a failed assertion included), goes past the memory limit or hangs on one input for 20 s; the
# reproducing input is then in fuzz/artifacts/<target>/ and its path is printed.
#
# Needs the nightly toolchain (rustup) and cargo-fuzz; cargo-fuzz is installed with
# `cargo install cargo-fuzz --locked` when missing (50 s on the two-core development machine).
# Building every target from a clean clone took 6 minutes there (a rebuild after a change to a
# crate, one to two); the runs then take targets x FUZZ_SECONDS plus a second or two each.
#
# New inputs the fuzzer finds go to a temporary directory, never into the committed seeds.
#
#   fuzz/smoke.sh [target ...]        every target when none is named
#
#   FUZZ_SECONDS   seconds per target (default 10)
#   FUZZ_RSS_MB    libFuzzer's memory limit per target, in MB (default 2048)
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-10}"
rss_mb="${FUZZ_RSS_MB:-2048}"

if ! command -v rustup >/dev/null || ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz/smoke.sh: the nightly toolchain is required (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "== cargo-fuzz is missing: cargo install cargo-fuzz --locked"
    cargo install cargo-fuzz --locked
fi

echo "== cargo +nightly fuzz build"
cargo +nightly fuzz build

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
    if [ ${#targets[@]} -eq 0 ]; then
        echo "fuzz/smoke.sh: cargo fuzz list named no targets" >&2
        exit 1
    fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

failed=()
for target in "${targets[@]}"; do
    seeds="corpus/$target"
    if [ ! -d "$seeds" ]; then
        echo "fuzz/smoke.sh: $target has no seed corpus at fuzz/$seeds" >&2
        exit 1
    fi
    mkdir -p "$work/$target"
    log="$work/$target.log"
    touch "$work/$target.start"
    echo "== $target: ${seconds} s from $(find "$seeds" -type f | wc -l) seeds"
    if cargo +nightly fuzz run "$target" "$work/$target" "$seeds" -- \
        -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -timeout=20 -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units' "$log" || true
    else
        echo "!! $target failed; the end of its log:" >&2
        tail -n 40 "$log" >&2
        find "artifacts/$target" -type f -newer "$work/$target.start" 2>/dev/null | sed 's|^|   input: fuzz/|' >&2
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz/smoke.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz/smoke.sh: ${#targets[@]} targets, ${seconds} s each, no findings"
