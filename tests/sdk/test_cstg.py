"""6. Client-side token generation (/v2/token/client-generate), built here as the JS SDK builds it.

The Python SDK has no CSTG client, so the request is made with `cryptography`: ECDH on P-256 with
the subscription's server public key, the raw X coordinate as the AES-256-GCM key, AAD = the
compact JSON array [timestamp] (api.md §5.5, tokens.md §4.3).
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from uid2_client import (
    BidstreamClient,
    DecryptionStatus,
    IdentityMapClient,
    IdentityMapInput,
    IdentityTokens,
    IdentityType,
    Uid2PublisherClient,
)

from sdkharness import (
    CSTG_SERVER_PUBLIC_KEY,
    CSTG_SITE_ID,
    CSTG_SUBSCRIPTION_ID,
    DSP,
    IDENTITY_TTL_S,
    OPTOUT_EMAIL,
    REFRESH_AFTER_S,
    REFRESH_TTL_S,
    SPECIAL,
    TIME_SLACK_MS,
    b64decode_std,
    now_ms,
    open_v4_token,
    sha256_b64,
)

EMAIL = "sdk.cstg.user@example.com"
PHONE = "+12065550107"


class CstgClient:
    """One ephemeral client keypair per request, as the JS SDK does."""

    def __init__(self, base_url: str, sensitive):
        self.base_url = base_url
        self.sensitive = sensitive
        der = base64.b64decode(CSTG_SERVER_PUBLIC_KEY[len("UID2-X-L-") :])
        self.server_public_key = serialization.load_der_public_key(der)

    def post(self, payload: dict, origin: str, *, subscription_id: str = CSTG_SUBSCRIPTION_ID):
        """Returns (http status, shared secret, raw response body)."""
        private_key = ec.generate_private_key(ec.SECP256R1())
        secret = private_key.exchange(ec.ECDH(), self.server_public_key)
        assert len(secret) == 32
        self.sensitive.add("cstg_shared_secret", base64.b64encode(secret).decode())
        timestamp = now_ms()
        iv = os.urandom(12)
        aad = json.dumps([timestamp], separators=(",", ":")).encode()
        ciphertext = AESGCM(secret).encrypt(iv, json.dumps(payload).encode(), aad)
        public_key = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        request_body = {
            "payload": base64.b64encode(ciphertext).decode(),
            "iv": base64.b64encode(iv).decode(),
            "public_key": base64.b64encode(public_key).decode(),
            "timestamp": timestamp,
            "subscription_id": subscription_id,
        }
        self.sensitive.add("cstg_payload", request_body["payload"])
        request = urllib.request.Request(
            self.base_url + "/v2/token/client-generate",
            data=json.dumps(request_body).encode(),
            headers={"Content-Type": "application/json", "Origin": origin},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, secret, response.read()
        except urllib.error.HTTPError as error:
            return error.code, secret, error.read()

    def generate(self, payload: dict, origin: str) -> dict:
        status, secret, body = self.post(payload, origin)
        assert status == 200, f"HTTP {status}: {body[:300]!r}"
        encrypted = base64.b64decode(body)
        decrypted = AESGCM(secret).decrypt(encrypted[:12], encrypted[12:], None)
        answer = json.loads(decrypted)
        if answer.get("status") == "success":
            self.sensitive.add_identity(answer["body"])
        return answer


@pytest.fixture(scope="module")
def cstg(base_url, sensitive) -> CstgClient:
    sensitive.add_email(EMAIL)
    sensitive.add_email(OPTOUT_EMAIL)
    sensitive.add_phone(PHONE)
    return CstgClient(base_url, sensitive)


@pytest.fixture(scope="module")
def origin(operator) -> str:
    return f"http://localhost:{operator.port}"


@pytest.fixture(scope="module")
def dsp_keys(base_url):
    bidstream = BidstreamClient(base_url, DSP.key, DSP.secret)
    response = bidstream.refresh()
    assert response.success
    return bidstream, response.keys


@pytest.fixture(scope="module")
def mapped(base_url, sensitive) -> dict:
    mapper = IdentityMapClient(base_url, SPECIAL.key, SPECIAL.secret)
    uids = {
        EMAIL: mapper.generate_identity_map(IdentityMapInput.from_emails([EMAIL]))
        .mapped_identities[EMAIL]
        .get_raw_uid(),
        PHONE: mapper.generate_identity_map(IdentityMapInput.from_phones([PHONE]))
        .mapped_identities[PHONE]
        .get_raw_uid(),
    }
    for uid in uids.values():
        sensitive.add("raw_uid", uid)
    return uids


def check_body(body: dict, prefix: str, before: int, after: int) -> None:
    assert body["advertising_token"].startswith(prefix)
    assert len(body["refresh_token"]) == 388
    assert len(b64decode_std(body["refresh_response_key"])) == 32
    for name, ttl in (
        ("identity_expires", IDENTITY_TTL_S),
        ("refresh_expires", REFRESH_TTL_S),
        ("refresh_from", REFRESH_AFTER_S),
    ):
        assert before + ttl * 1000 - TIME_SLACK_MS <= body[name] <= after + ttl * 1000 + TIME_SLACK_MS, name


@pytest.mark.parametrize(
    "identity, field, prefix, identity_type",
    [(EMAIL, "email_hash", "A4", IdentityType.Email), (PHONE, "phone_hash", "B4", IdentityType.Phone)],
    ids=["email_hash", "phone_hash"],
)
def test_cstg_token_decrypts_for_site_123_and_refreshes(
    base_url, cstg, origin, dsp_keys, mapped, sensitive, identity, field, prefix, identity_type
):
    before = now_ms()
    answer = cstg.generate({field: sha256_b64(identity)}, origin)
    after = now_ms()
    assert answer["status"] == "success", answer
    body = answer["body"]
    check_body(body, prefix, before, after)

    bidstream, keys = dsp_keys
    decrypted = bidstream.decrypt_token_into_raw_uid(body["advertising_token"], "localhost")
    assert decrypted.status == DecryptionStatus.SUCCESS, decrypted.status
    assert decrypted.site_id == CSTG_SITE_ID
    assert decrypted.uid == mapped[identity]
    assert decrypted.identity_type == identity_type
    # The SDK misreads the CSTG bit (sdk.md §1.5 quirk 2); read the privacy bits by hand.
    opened = open_v4_token(body["advertising_token"], keys)
    assert opened["privacy_bits"] == 3, opened["privacy_bits"]
    assert opened["site_key_id"] == 104  # site 123's default keyset 501

    # Refresh with the publisher client, from the CSTG refresh token and refresh_response_key.
    identity_tokens = IdentityTokens.from_json(body)
    refreshed = Uid2PublisherClient(base_url, SPECIAL.key, SPECIAL.secret).refresh_token(identity_tokens)
    assert refreshed.status == "success"
    new = refreshed.get_identity()
    sensitive.add_sdk_identity(new)
    assert new.get_advertising_token() != body["advertising_token"]
    again = bidstream.decrypt_token_into_raw_uid(new.get_advertising_token(), "localhost")
    assert again.status == DecryptionStatus.SUCCESS and again.uid == mapped[identity]
    assert again.site_id == CSTG_SITE_ID
    assert open_v4_token(new.get_advertising_token(), keys)["privacy_bits"] == 3


@pytest.mark.parametrize("origin_header", ["https://www.uidapi.com", "https://uidapi.com:8443", "http://app.localhost"])
def test_cstg_accepts_the_site_domains(cstg, origin_header):
    """Site 123 allows localhost and uidapi.com: any host whose registrable domain is one of them,
    and a single label under localhost (api.md §5.5)."""
    answer = cstg.generate({"email_hash": sha256_b64(EMAIL)}, origin_header)
    assert answer["status"] == "success"


def test_cstg_opted_out_identity(cstg, origin):
    answer = cstg.generate({"email_hash": sha256_b64(OPTOUT_EMAIL)}, origin)
    assert answer == {"status": "optout"}


@pytest.mark.parametrize(
    "origin_header",
    ["https://example.org", "https://localhost.example.org", "http://a.b.localhost", "http://127.0.0.1:8080", "null"],
)
def test_cstg_rejects_an_unexpected_origin(cstg, origin_header):
    status, _, body = cstg.post({"email_hash": sha256_b64(EMAIL)}, origin_header)
    assert status == 403
    assert json.loads(body) == {"message": "unexpected http origin", "status": "invalid_http_origin"}


def test_cstg_unknown_subscription(cstg, origin):
    status, _, body = cstg.post({"email_hash": sha256_b64(EMAIL)}, origin, subscription_id="NoSuchSub1")
    assert status == 400
    assert json.loads(body) == {"message": "bad subscription_id", "status": "client_error"}
