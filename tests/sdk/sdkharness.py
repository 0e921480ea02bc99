"""Shared facts and helpers for the official-SDK conformance suite.

Everything here is test data from the reference operator's local store (see
testdata/reference-store and testdata/local-store) and small helpers written for this suite.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# The operator's local runtime config (testdata/local-store/runtime_config/metadata.json).
IDENTITY_TTL_S = 3600
REFRESH_TTL_S = 86400
REFRESH_AFTER_S = 900

# Slack for "≈ now + ttl" checks: the operator and the tests share one clock, so only the
# request latency separates the two readings.
TIME_SLACK_MS = 5_000


@dataclass(frozen=True)
class ApiClient:
    name: str
    site_id: int
    key: str
    secret: str


# sdk.md §3.1: the clients of the reference's test store.
SPECIAL = ApiClient(
    "Special (site 999: MAPPER GENERATOR ID_READER SHARER OPTOUT)",
    999,
    "UID2-C-L-999-fCXrMM.fsR3mDqAXELtWWMS+xG1s7RdgRTMqdOH2qaAo=",
    "DzBzbjTJcYL0swDtFs2krRNu+g1Eokm2tBU4dEuD0Wk=",
)
DSP = ApiClient(
    "DSP (site 123: ID_READER)",
    123,
    "UID2-C-L-123-t32pCM.5NCX1E94UgOd2f8zhsKmxzCoyhXohHYSSWR8U=",
    "FsD4bvtjMkeTonx6HvQp6u0EiI1ApGH4pIZzZ5P7UcQ=",
)
PUBLISHER_124 = ApiClient(
    "Publisher (site 124: GENERATOR)",
    124,
    "UID2-C-L-124-H8VwqX.l2G4TCuUWYAqdqkeG/UqtFoPEoXirKn4kHWxc=",
    "NcMgi6Y8C80SlxvV7pYlfcvEIo+2b0508tYQ3pKK8HM=",
)

# sdk.md §3.3: the client-side (CSTG) keypair of site 123.
CSTG_SUBSCRIPTION_ID = "4WvryDGbR5"
CSTG_SITE_ID = 123
CSTG_SERVER_PUBLIC_KEY = (
    "UID2-X-L-MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtXJdTSZAYHvoRDWiehMHoWF1BNPuqLs5w2ZHiAZ1IJc7"
    "O4/z0ojPTB0V+KYX/wxQK0hxx6kxCvHj335eI/ZQsQ=="
)

# Hard-coded test identities of the reference operator (api.md §6.4).
OPTOUT_EMAIL = "optout@example.com"
OPTOUT_PHONE = "+00000000000"
REFRESH_OPTOUT_EMAIL = "refresh-optout@example.com"
REFRESH_OPTOUT_PHONE = "+00000000002"

URLSAFE_B64 = re.compile(r"^[A-Za-z0-9_-]+$")
STD_B64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def sha256_b64(text: str) -> str:
    """Base64 SHA-256 of UTF-8 text: the form of `email_hash` / `phone_hash`."""
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def b64decode_std(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def b64decode_url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def first_level_salt() -> str:
    meta = json.loads((REPO_ROOT / "testdata/reference-store/salts/metadata.json").read_text())
    return meta["first_level"]


def first_level_hash_b64(identity_hash_b64: str) -> str:
    """FLH = SHA-256(b64(identity hash) ‖ first-level salt), as text (tokens.md §1.2)."""
    digest = hashlib.sha256((identity_hash_b64 + first_level_salt()).encode()).digest()
    return base64.b64encode(digest).decode()


class Sensitive:
    """Every secret or piece of DII that the suite sends or receives, by kind.

    The final test reads the operator's log and asserts none of these appear in it.
    """

    def __init__(self) -> None:
        self.values: dict[str, set[str]] = {}

    def add(self, kind: str, value: str | None) -> None:
        if value:
            self.values.setdefault(kind, set()).add(value)

    def add_client(self, client: ApiClient) -> None:
        self.add("api_key", client.key)
        self.add("api_secret", client.secret)

    def add_email(self, email: str, normalized: str | None = None) -> None:
        self.add("email", email)
        normalized = normalized or email.strip().lower()
        self.add("email", normalized)
        self._add_identity_hash(sha256_b64(normalized))

    def add_phone(self, phone: str) -> None:
        self.add("phone", phone)
        self._add_identity_hash(sha256_b64(phone))

    def _add_identity_hash(self, hash_b64: str) -> None:
        self.add("identity_hash", hash_b64)
        self.add("identity_hash_hex", b64decode_std(hash_b64).hex())
        self.add("first_level_hash", first_level_hash_b64(hash_b64))

    def add_identity(self, tokens: dict) -> None:
        """The six fields of a generate/refresh body (only the secret ones are recorded)."""
        self.add("advertising_token", tokens.get("advertising_token"))
        self.add("refresh_token", tokens.get("refresh_token"))
        self.add("refresh_response_key", tokens.get("refresh_response_key"))

    def add_sdk_identity(self, identity) -> None:
        """An SDK `IdentityTokens`."""
        self.add("advertising_token", identity.get_advertising_token())
        self.add("refresh_token", identity.get_refresh_token())
        self.add("refresh_response_key", identity.get_refresh_response_key())

    def count(self) -> int:
        return sum(len(v) for v in self.values.values())


# Kinds whose values are base64 of raw bytes: the bytes in hex, base64url or a Rust `{:?}` of a
# byte slice are the same secret.
BYTE_KINDS = {
    "identity_hash",
    "first_level_hash",
    "refresh_response_key",
    "api_secret",
    "raw_uid",
    "key_secret",
    "cloud_key_secret",
    "cstg_shared_secret",
}


def needles(kind: str, value: str) -> list[str]:
    """Forms of `value` whose presence in a log counts as a leak."""
    forms = {value}
    if len(value) >= 40:
        # A truncated value is still a leak; 24 characters of a token, key or hash are unique.
        forms.add(value[:24])
    if kind in BYTE_KINDS:
        try:
            raw = base64.b64decode(value + "=" * (-len(value) % 4))
        except ValueError:
            raw = b""
        if len(raw) >= 16:
            forms.add(raw.hex())
            forms.add(base64.urlsafe_b64encode(raw).decode().rstrip("="))
            # Rust `{:?}` of a byte slice: "[12, 200, 7, ...".
            forms.add("[" + ", ".join(str(b) for b in raw[:8]))
    if kind == "advertising_token":
        # The same bytes in standard base64.
        forms.add(base64.b64encode(b64decode_url(value)).decode()[:24])
    if kind == "email":
        forms.add(value.lower())
    return sorted(f for f in forms if f)


def add_store_secrets(sensitive: Sensitive) -> None:
    """Every secret of the test store the operator serves (both store directories): client keys,
    secrets and key hashes/salts, keyset keys, cloud encryption keys, CSTG private keys, the
    first-level salt, the bucket-id secret and every salt and v4 key of the salt files."""
    store = REPO_ROOT / "testdata"

    def records(path: Path) -> list[dict]:
        return json.loads(path.read_text()) if path.exists() else []

    for client in records(store / "reference-store/clients/clients.json"):
        sensitive.add("api_key", client.get("key"))
        sensitive.add("api_secret", client.get("secret"))
        sensitive.add("client_key_hash", client.get("key_hash"))
        sensitive.add("client_key_salt", client.get("key_salt"))
    for name in ("local-store", "reference-store"):
        for key in records(store / name / "keyset_keys/keyset_keys.json"):
            sensitive.add("key_secret", key.get("secret"))
        for key in records(store / name / "cloud_encryption_keys/cloud_encryption_keys.json"):
            sensitive.add("cloud_key_secret", key.get("secret"))
        for pair in records(store / name / "client_side_keypairs/client_side_keypairs.json"):
            sensitive.add("cstg_private_key", pair.get("private_key"))
        for metadata in sorted((store / name / "salts").glob("metadata*.json")):
            meta = json.loads(metadata.read_text())
            sensitive.add("first_level_salt", meta.get("first_level"))
            sensitive.add("bucket_id_secret", meta.get("id_secret"))
        for salts in sorted((store / name / "salts").glob("salts.txt.*")):
            for line in salts.read_text().splitlines():
                columns = line.split(",")
                # Current and previous salt, then v4 key and key salt, current and previous.
                for column in (2, 4, 6, 7, 9, 10):
                    if column < len(columns) and len(columns[column]) >= 16:
                        sensitive.add("salt", columns[column])


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


# Shapes that are a leak whatever their value. An attestation token ends `<sealed>-<16-char IV>-g`.
# Any run of 64 base64/base64url characters (`=` only pads, so `key=value` fields are two runs) is
# a key, hash, token or encrypted body: the longest legitimate run in a trace-level log, a route
# or a field, is under 30. Lowercase hex is the exception: the public enclave measurements
# (MRENCLAVE) are logged in hex, and the hex forms of the known secrets are checked by value. A
# JSON object is a request or response body (the operator logs `key=value` fields, never JSON).
SHAPES = {
    "attestation token": re.compile(r"[A-Za-z0-9+/=]{20}-[A-Za-z0-9+/=]{16}-g"),
    "base64 run of 64+ characters (key, hash, token or body)": re.compile(
        r"(?<![A-Za-z0-9+/_-])(?![0-9a-f]+(?![A-Za-z0-9+/_-]))[A-Za-z0-9+/_-]{64,}"
    ),
    "JSON object (request or response body)": re.compile(r'\{\s*"[A-Za-z_]+"\s*:'),
}


def find_leaks(log_text: str, sensitive: Sensitive) -> list[str]:
    """Every secret, piece of DII or body shape found in the log, as "<kind> at line <n>": never
    the value, nor the line that holds it (the report itself must not leak)."""
    found = []

    def line_of(position: int) -> int:
        return log_text.count("\n", 0, position) + 1

    for kind, values in sorted(sensitive.values.items()):
        for value in sorted(values):
            for needle in needles(kind, value):
                at = log_text.find(needle)
                if at >= 0:
                    found.append(f"{kind} at line {line_of(at)}")
                    break
    for kind, shape in SHAPES.items():
        for match in shape.finditer(log_text):
            found.append(f"{kind} at line {line_of(match.start())}")
    return found


def check_log(path: Path, sensitive: Sensitive) -> list[str]:
    """`find_leaks` over the log file at `path` (ANSI colours stripped)."""
    return find_leaks(strip_ansi(path.read_text(encoding="utf-8", errors="replace")), sensitive)


# --- Expected raw UIDs, computed from the fixture salts (tokens.md §1, api.md §7) -------------


@dataclass(frozen=True)
class SaltLine:
    bucket: int
    last_updated_ms: int
    current_salt: str | None
    refresh_from_ms: int
    previous_salt: str | None
    current_key: tuple[int, str, str] | None  # (id, key, salt)
    previous_key: tuple[int, str, str] | None


def fixture_salt_lines() -> list[SaltLine]:
    """The salt snapshot in force (both fixture snapshots have the same five lines)."""
    text = (REPO_ROOT / "testdata/reference-store/salts/salts.txt.1745907348982").read_text()
    lines = []
    for row in text.strip().splitlines():
        f = row.split(",")
        cur_key = (int(f[5]), f[6], f[7]) if f[5] else None
        prev_key = (int(f[8]), f[9], f[10]) if len(f) > 10 and f[8] else None
        lines.append(SaltLine(int(f[0]), int(f[1]), f[2] or None, int(f[3]), f[4] or None, cur_key, prev_key))
    return lines


def bucket_index(first_level_hash: bytes, count: int) -> int:
    h = (first_level_hash[0] << 12) | (first_level_hash[1] << 4) | (first_level_hash[2] & 0x0F)
    return h if count == 1_048_576 else h % count


def _raw_uid_from_salt(flh: bytes, salt: str) -> bytes:
    return hashlib.sha256((base64.b64encode(flh).decode() + salt).encode()).digest()


def _raw_uid_from_key(flh: bytes, key: tuple[int, str, str], identity_type: int) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key_id, key_text, salt = key
    metadata = bytes([(0 << 6) | (1 << 5) | (0 << 4) | (identity_type << 2)])  # env test, UID2
    kid = key_id.to_bytes(4, "big")[1:]
    half = flh[16:]
    iv = hashlib.sha256(salt.encode() + half + metadata + kid).digest()[:12]
    enc = Cipher(algorithms.AES(key_text.encode()), modes.CTR(iv + b"\0\0\0\0")).encryptor()
    body = metadata + kid + iv + enc.update(half) + enc.finalize()
    checksum = 0
    for b in body:
        checksum ^= b
    return body + bytes([checksum])


def expected_mapping(identity_hash_b64: str, identity_type: int, now: int) -> dict:
    """What /v3/identity/map should answer for an identity: {u, p, r, bucket_line}.

    identity_type: 0 email, 1 phone. `now` in epoch ms.
    """
    flh = b64decode_std(first_level_hash_b64(identity_hash_b64))
    lines = fixture_salt_lines()
    line = lines[bucket_index(flh, len(lines))]
    if line.current_salt:
        current = _raw_uid_from_salt(flh, line.current_salt)
    else:
        current = _raw_uid_from_key(flh, line.current_key, identity_type)
    previous = None
    if (now - line.last_updated_ms) // 86_400_000 < 90:
        if line.previous_salt:
            previous = _raw_uid_from_salt(flh, line.previous_salt)
        elif line.previous_key:
            previous = _raw_uid_from_key(flh, line.previous_key, identity_type)
    r = line.refresh_from_ms // 1000
    if line.refresh_from_ms <= now:
        r = (now // 86_400_000 + 1) * 86_400  # the next UTC midnight
    return {
        "u": base64.b64encode(current).decode(),
        "p": base64.b64encode(previous).decode() if previous else None,
        "r": r,
        "line": line,
    }


def open_v4_token(token: str, keys) -> dict:
    """Decrypts a V4 advertising token by hand (tokens.md §2.1) with an SDK key collection, to
    read what the Python SDK misreports (privacy bits, sdk.md §1.5 quirk 2)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw = b64decode_url(token)
    assert raw[1] == 0x80, "not a V4 token"
    master = keys.get(int.from_bytes(raw[2:6], "big"))
    master_payload = AESGCM(master.secret).decrypt(raw[6:18], raw[18:], None)
    site_key = keys.get(int.from_bytes(master_payload[29:33], "big"))
    blob = master_payload[33:]
    site_payload = AESGCM(site_key.secret).decrypt(blob[:12], blob[12:], None)
    return {
        "master_key_id": master.key_id,
        "site_key_id": site_key.key_id,
        "expires_ms": int.from_bytes(master_payload[0:8], "big"),
        "created_ms": int.from_bytes(master_payload[8:16], "big"),
        "site_id": int.from_bytes(site_payload[0:4], "big"),
        "privacy_bits": int.from_bytes(site_payload[16:20], "big"),
        "established_ms": int.from_bytes(site_payload[20:28], "big"),
        "raw_uid": base64.b64encode(site_payload[36:]).decode(),
    }
