"""1. Uid2PublisherClient: generate and refresh, token shapes, ms lifetimes, special identities."""

from __future__ import annotations

import pytest
from uid2_client import TokenGenerateInput, Uid2PublisherClient

from sdkharness import (
    IDENTITY_TTL_S,
    OPTOUT_EMAIL,
    OPTOUT_PHONE,
    REFRESH_AFTER_S,
    REFRESH_OPTOUT_EMAIL,
    REFRESH_OPTOUT_PHONE,
    REFRESH_TTL_S,
    SPECIAL,
    STD_B64,
    TIME_SLACK_MS,
    URLSAFE_B64,
    b64decode_std,
    b64decode_url,
    now_ms,
    sha256_b64,
)

EMAIL = "sdk.publisher.user@example.com"
PHONE = "+12065550101"


def _inputs():
    # (id, factory, token prefix, token byte 0)
    return [
        ("email-sdk-hashed", lambda: TokenGenerateInput.from_email(EMAIL), "A4", 0x03),
        ("email-raw", lambda: TokenGenerateInput.from_email(EMAIL).do_not_hash(), "A4", 0x03),
        ("email-prehashed", lambda: TokenGenerateInput.from_hashed_email(sha256_b64(EMAIL)), "A4", 0x03),
        ("phone-sdk-hashed", lambda: TokenGenerateInput.from_phone(PHONE), "B4", 0x07),
        ("phone-raw", lambda: TokenGenerateInput.from_phone(PHONE).do_not_hash(), "B4", 0x07),
        ("phone-prehashed", lambda: TokenGenerateInput.from_hashed_phone(sha256_b64(PHONE)), "B4", 0x07),
    ]


@pytest.fixture(scope="module")
def publisher(base_url, sensitive) -> Uid2PublisherClient:
    sensitive.add_email(EMAIL)
    sensitive.add_phone(PHONE)
    for email in (OPTOUT_EMAIL, REFRESH_OPTOUT_EMAIL):
        sensitive.add_email(email)
    for phone in (OPTOUT_PHONE, REFRESH_OPTOUT_PHONE):
        sensitive.add_phone(phone)
    return Uid2PublisherClient(base_url, SPECIAL.key, SPECIAL.secret)


def check_identity(identity, prefix: str, byte0: int, before_ms: int, after_ms: int) -> None:
    """The six fields of a token response, against api.md §5.1 and the local runtime config."""
    token = identity.get_advertising_token()
    assert token and token.startswith(prefix), token
    assert URLSAFE_B64.match(token), f"advertising token is not unpadded base64url: {token}"
    raw = b64decode_url(token)
    assert raw[0] == byte0 and raw[1] == 0x80, f"token header {raw[:2].hex()} is not V4 {byte0:02x}80"
    assert len(raw) in (163, 164), len(raw)

    refresh = identity.get_refresh_token()
    assert refresh and len(refresh) == 388, refresh
    assert STD_B64.match(refresh)
    wrapper = b64decode_std(refresh)
    assert len(wrapper) == 291 and wrapper[0] == 0x00, wrapper[:5].hex()

    key = identity.get_refresh_response_key()
    assert key and len(b64decode_std(key)) == 32

    for name, value, ttl_s in (
        ("identity_expires", identity.get_identity_expires(), IDENTITY_TTL_S),
        ("refresh_expires", identity.get_refresh_expires(), REFRESH_TTL_S),
        ("refresh_from", identity.get_refresh_from(), REFRESH_AFTER_S),
    ):
        assert isinstance(value, int), f"{name} = {value!r} is not an integer"
        low, high = before_ms + ttl_s * 1000 - TIME_SLACK_MS, after_ms + ttl_s * 1000 + TIME_SLACK_MS
        assert low <= value <= high, f"{name} = {value} is not epoch ms ≈ now + {ttl_s} s ({low}..{high})"


def generate(publisher, sensitive, token_input):
    before = now_ms()
    response = publisher.generate_token(token_input)
    after = now_ms()
    if response.get_identity() is not None:
        sensitive.add_sdk_identity(response.get_identity())
    return response, before, after


def refresh(publisher, sensitive, identity):
    before = now_ms()
    response = publisher.refresh_token(identity)
    after = now_ms()
    if response.get_identity() is not None:
        sensitive.add_sdk_identity(response.get_identity())
    return response, before, after


@pytest.mark.parametrize("case", _inputs(), ids=[c[0] for c in _inputs()])
def test_generate_then_refresh_twice(publisher, sensitive, case):
    _, make_input, prefix, byte0 = case

    generated, before, after = generate(publisher, sensitive, make_input())
    assert generated.status == "success" and generated.is_success() and not generated.is_optout()
    first = generated.get_identity()
    check_identity(first, prefix, byte0, before, after)

    refreshed, before, after = refresh(publisher, sensitive, first)
    assert refreshed.status == "success" and refreshed.is_success()
    second = refreshed.get_identity()
    check_identity(second, prefix, byte0, before, after)
    assert second.get_advertising_token() != first.get_advertising_token()
    assert second.get_refresh_token() != first.get_refresh_token()
    assert second.get_refresh_response_key() != first.get_refresh_response_key()
    assert second.get_refresh_expires() >= first.get_refresh_expires()

    # The refresh token from the refresh response works again.
    again, before, after = refresh(publisher, sensitive, second)
    assert again.status == "success"
    check_identity(again.get_identity(), prefix, byte0, before, after)
    assert again.get_identity().get_advertising_token() != second.get_advertising_token()


@pytest.mark.parametrize(
    "make_input",
    [
        lambda: TokenGenerateInput.from_email(OPTOUT_EMAIL),
        lambda: TokenGenerateInput.from_email(OPTOUT_EMAIL).do_not_hash(),
        lambda: TokenGenerateInput.from_phone(OPTOUT_PHONE).do_not_hash(),
        lambda: TokenGenerateInput.from_hashed_phone(sha256_b64(OPTOUT_PHONE)),
    ],
    ids=["email-sdk-hashed", "email-raw", "phone-raw", "phone-prehashed"],
)
def test_generate_for_opted_out_identity_is_optout(publisher, sensitive, make_input):
    response, _, _ = generate(publisher, sensitive, make_input())
    assert response.status == "optout"
    assert response.is_optout() and not response.is_success()
    assert response.get_identity() is None


@pytest.mark.parametrize(
    "make_input, prefix",
    [
        (lambda: TokenGenerateInput.from_email(REFRESH_OPTOUT_EMAIL), "A4"),
        (lambda: TokenGenerateInput.from_email(REFRESH_OPTOUT_EMAIL).do_not_hash(), "A4"),
        (lambda: TokenGenerateInput.from_phone(REFRESH_OPTOUT_PHONE).do_not_hash(), "B4"),
        (lambda: TokenGenerateInput.from_hashed_phone(sha256_b64(REFRESH_OPTOUT_PHONE)), "B4"),
    ],
    ids=["email-sdk-hashed", "email-raw", "phone-raw", "phone-prehashed"],
)
def test_refresh_optout_identity_generates_then_refresh_is_optout(publisher, sensitive, make_input, prefix):
    generated, _, _ = generate(publisher, sensitive, make_input())
    assert generated.status == "success"
    assert generated.get_identity().get_advertising_token().startswith(prefix)

    refreshed, _, _ = refresh(publisher, sensitive, generated.get_identity())
    assert refreshed.status == "optout"
    assert refreshed.is_optout() and refreshed.get_identity() is None


def test_a_refresh_token_can_be_used_more_than_once(publisher, sensitive):
    """No single-use tracking: the same refresh token refreshes again until it expires
    (api.md §5.2, refresh logic step 6)."""
    generated, _, _ = generate(publisher, sensitive, TokenGenerateInput.from_email(EMAIL))
    first = generated.get_identity()
    one, _, _ = refresh(publisher, sensitive, first)
    two, _, _ = refresh(publisher, sensitive, first)
    assert one.status == "success" and two.status == "success"
    assert one.get_identity().get_advertising_token() != two.get_identity().get_advertising_token()


def test_refresh_needs_no_api_key(base_url, publisher, sensitive):
    """/v2/token/refresh has optional auth: a client with a bogus key refreshes all the same."""
    generated, _, _ = generate(publisher, sensitive, TokenGenerateInput.from_phone(PHONE))
    anonymous = Uid2PublisherClient(base_url, "not-a-key", SPECIAL.secret)
    refreshed, before, after = refresh(anonymous, sensitive, generated.get_identity())
    assert refreshed.status == "success"
    check_identity(refreshed.get_identity(), "B4", 0x07, before, after)
