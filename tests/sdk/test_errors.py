"""7. Errors reach the SDK as it expects: urllib HTTPError with the operator's JSON error body."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import urllib.error

import pytest
from uid2_client import (
    IdentityMapClient,
    IdentityMapInput,
    IdentityMapV3Client,
    IdentityMapV3Input,
    IdentityTokens,
    TokenGenerateInput,
    Uid2PublisherClient,
)
from uid2_client.request_response_util import auth_headers, create_envelope, make_request

from sdkharness import PUBLISHER_124, SPECIAL, sha256_b64

EMAIL = "sdk.errors.user@example.com"
WRONG_SECRET = base64.b64encode(os.urandom(32)).decode()
UNKNOWN_KEY = "UID2-C-L-999-zzzzzz.zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz="


@pytest.fixture(autouse=True)
def _collect(sensitive):
    sensitive.add_email(EMAIL)
    sensitive.add("api_secret", WRONG_SECRET)
    sensitive.add("api_key", UNKNOWN_KEY)


def error_of(call) -> tuple[int, dict]:
    with pytest.raises(urllib.error.HTTPError) as raised:
        call()
    return raised.value.code, json.loads(raised.value.read())


def test_wrong_secret_is_http_400(base_url):
    client = Uid2PublisherClient(base_url, SPECIAL.key, WRONG_SECRET)
    code, body = error_of(lambda: client.generate_token(TokenGenerateInput.from_email(EMAIL)))
    assert code == 400
    assert body["status"] == "client_error"
    assert body["message"].startswith("Invalid body: Check encryption key (ClientSecret)."), body


def test_wrong_secret_on_identity_map_is_http_400(base_url):
    client = IdentityMapClient(base_url, SPECIAL.key, WRONG_SECRET)
    code, body = error_of(lambda: client.generate_identity_map(IdentityMapInput.from_emails([EMAIL])))
    assert (code, body["status"]) == (400, "client_error")


def test_client_without_mapper_role_is_http_401_on_map_v2(base_url):
    client = IdentityMapClient(base_url, PUBLISHER_124.key, PUBLISHER_124.secret)
    code, body = error_of(lambda: client.generate_identity_map(IdentityMapInput.from_emails([EMAIL])))
    assert code == 401
    assert body == {"status": "unauthorized"}


def test_client_without_mapper_role_is_http_401_on_map_v3(base_url):
    client = IdentityMapV3Client(base_url, PUBLISHER_124.key, PUBLISHER_124.secret)
    code, body = error_of(lambda: client.generate_identity_map(IdentityMapV3Input.from_emails([EMAIL])))
    assert (code, body) == (401, {"status": "unauthorized"})


def test_client_without_mapper_role_is_http_401_on_buckets(base_url):
    client = IdentityMapClient(base_url, PUBLISHER_124.key, PUBLISHER_124.secret)
    code, body = error_of(lambda: client.get_identity_buckets(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)))
    assert (code, body) == (401, {"status": "unauthorized"})


def test_generator_only_client_can_generate(base_url, sensitive):
    """The same site-124 client is fine where its role applies (so the 401s above are roles)."""
    response = Uid2PublisherClient(base_url, PUBLISHER_124.key, PUBLISHER_124.secret).generate_token(
        TokenGenerateInput.from_hashed_email(sha256_b64(EMAIL))
    )
    assert response.is_success()
    sensitive.add_sdk_identity(response.get_identity())


def test_generator_only_client_is_http_401_on_bidstream_keys(base_url):
    secret = base64.b64decode(PUBLISHER_124.secret)
    envelope = create_envelope(secret, dt.datetime.now(tz=dt.timezone.utc))
    code, body = error_of(
        lambda: make_request(base_url, "/v2/key/bidstream", auth_headers(PUBLISHER_124.key), envelope)
    )
    assert (code, body) == (401, {"status": "unauthorized"})


def test_unknown_api_key_is_http_401(base_url):
    client = Uid2PublisherClient(base_url, UNKNOWN_KEY, SPECIAL.secret)
    code, body = error_of(lambda: client.generate_token(TokenGenerateInput.from_email(EMAIL)))
    assert (code, body) == (401, {"status": "unauthorized"})


def test_refresh_with_a_corrupted_refresh_token_is_http_400(base_url, sensitive):
    client = Uid2PublisherClient(base_url, SPECIAL.key, SPECIAL.secret)
    identity = client.generate_token(TokenGenerateInput.from_email(EMAIL)).get_identity()
    sensitive.add_sdk_identity(identity)
    token = identity.get_refresh_token()
    # Same length (388), one byte of the GCM ciphertext changed.
    flipped = token[:100] + ("A" if token[100] != "A" else "B") + token[101:]
    sensitive.add("refresh_token", flipped)
    broken = IdentityTokens(
        identity.get_advertising_token(),
        flipped,
        identity.get_refresh_response_key(),
        identity.get_identity_expires(),
        identity.get_refresh_expires(),
        identity.get_refresh_from(),
        None,
    )
    code, body = error_of(lambda: client.refresh_token(broken))
    assert code == 400
    assert body["status"] == "client_error"
    assert body["message"] == "Invalid data: Check encryption method and encryption key.", body
