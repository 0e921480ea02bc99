#!/usr/bin/env bash
# The small steps of build.sh that run inside the build container and are more than one command.
# Called from build.sh with the package directory (/src/deploy/azure-sgx) as working directory:
#
#   build-steps.sh clean                   remove the previous Occlum instance and signing key
#   build-steps.sh check-elf BINARY...     refuse binaries Occlum cannot load (no PT_INTERP, not PIE)
#   build-steps.sh new-sign-key FILE       a fresh RSA-3072 key with exponent 3, as SGX requires
#   build-steps.sh check-sign-key FILE     refuse a key that is not RSA-3072/e=3, or Occlum's public demo key
#   build-steps.sh forget-sign-key FILE    delete the per-build key once the enclave is signed
set -euo pipefail

fail() {
    echo "build-steps.sh: $1" >&2
    exit 1
}

# Occlum's loader starts a program through its ELF interpreter, so a binary without PT_INTERP
# (a static or static-pie musl build) fails with "cannot find the interpreter segment".
check_elf() {
    local binary
    for binary in "$@"; do
        [ -f "$binary" ] || fail "$binary: not built"
        readelf -lW "$binary" | grep -q 'Requesting program interpreter' ||
            fail "$binary: no ELF interpreter (a static binary); Occlum needs a dynamically linked PIE"
        readelf -hW "$binary" | grep -q 'DYN (' ||
            fail "$binary: not position independent (ELF type is not DYN)"
        echo "$binary: dynamically linked PIE, interpreter $(readelf -lW "$binary" |
            sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')"
    done
}

check_sign_key() {
    local key="$1" text
    text="$(openssl rsa -in "$key" -noout -text 2>/dev/null)" || fail "$key: not an RSA private key"
    grep -q 'Private-Key: (3072 bit' <<<"$text" || fail "$key: SGX signing keys are RSA-3072"
    grep -q 'publicExponent: 3 ' <<<"$text" || fail "$key: SGX signing keys have public exponent 3"
    if cmp -s "$key" /opt/occlum/etc/template/Enclave.pem; then
        fail "$key is Occlum's published demo key: anyone could sign an enclave with this MRSIGNER"
    fi
    echo "$key: RSA-3072, e=3"
}

case "${1:-}" in
    clean)
        rm -rf build/uid2-operator build/keys build/enclave-identity.txt
        mkdir -p build
        ;;
    check-elf)
        shift
        check_elf "$@"
        ;;
    new-sign-key)
        [ $# -eq 2 ] || fail "usage: new-sign-key FILE"
        mkdir -p "$(dirname "$2")"
        chmod 0700 "$(dirname "$2")"
        (umask 077 && openssl genrsa -3 -out "$2" 3072 2>/dev/null)
        check_sign_key "$2"
        ;;
    check-sign-key)
        [ $# -eq 2 ] || fail "usage: check-sign-key FILE"
        check_sign_key "$2"
        ;;
    forget-sign-key)
        [ $# -eq 2 ] || fail "usage: forget-sign-key FILE"
        shred -u "$2" 2>/dev/null || rm -f "$2"
        rmdir "$(dirname "$2")" 2>/dev/null || true
        ;;
    *)
        fail "unknown step '${1:-}' (clean, check-elf, new-sign-key, check-sign-key, forget-sign-key)"
        ;;
esac
