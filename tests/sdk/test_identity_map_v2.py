"""2. IdentityMapClient (v2): mapped / unmapped identities and identity buckets."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from uid2_client import IdentityMapClient, IdentityMapInput
from uid2_client.identity_map_response import IdentityMapResponse
from uid2_client.request_response_util import auth_headers, create_envelope, make_request, parse_response

from sdkharness import (
    OPTOUT_EMAIL,
    OPTOUT_PHONE,
    SPECIAL,
    STD_B64,
    b64decode_std,
    bucket_index,
    first_level_hash_b64,
    fixture_salt_lines,
    sha256_b64,
)

EMAILS = ["sdk.map.one@example.com", "sdk.map.two@example.org"]
PHONES = ["+12065550102", "+447700900123"]
BAD_HASHES = ["not-a-valid-hash", sha256_b64("too short")[:40]]
UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def mapper(base_url, sensitive) -> IdentityMapClient:
    for email in EMAILS + [OPTOUT_EMAIL, "Not An Email"]:
        sensitive.add_email(email)
    for phone in PHONES + [OPTOUT_PHONE]:
        sensitive.add_phone(phone)
    return IdentityMapClient(base_url, SPECIAL.key, SPECIAL.secret)


@pytest.fixture(scope="module")
def all_buckets(mapper):
    response = mapper.get_identity_buckets(dt.datetime(2000, 1, 1, tzinfo=UTC))
    assert response.is_success()
    return response.buckets


def check_mapped(mapped, sensitive) -> None:
    raw_uid = mapped.get_raw_uid()
    assert raw_uid and len(raw_uid) == 44 and STD_B64.match(raw_uid), raw_uid
    assert len(b64decode_std(raw_uid)) in (32, 33)
    assert mapped.get_bucket_id() and mapped.get_bucket_id().startswith("b"), mapped.get_bucket_id()
    sensitive.add("raw_uid", raw_uid)


def test_emails_valid_and_opted_out(mapper, sensitive, all_buckets):
    response = mapper.generate_identity_map(IdentityMapInput.from_emails(EMAILS + [OPTOUT_EMAIL]))
    assert response.is_success()
    assert set(response.mapped_identities) == set(EMAILS)
    assert set(response.unmapped_identities) == {OPTOUT_EMAIL}
    assert response.unmapped_identities[OPTOUT_EMAIL].get_reason() == "optout"
    bucket_ids = {b.get_bucket_id() for b in all_buckets}
    for email in EMAILS:
        check_mapped(response.mapped_identities[email], sensitive)
        assert response.mapped_identities[email].get_bucket_id() in bucket_ids
    uids = {response.mapped_identities[e].get_raw_uid() for e in EMAILS}
    assert len(uids) == len(EMAILS), "two different emails mapped to the same raw UID"


def test_phones_valid_and_opted_out(mapper, sensitive):
    response = mapper.generate_identity_map(IdentityMapInput.from_phones(PHONES + [OPTOUT_PHONE]))
    assert set(response.mapped_identities) == set(PHONES)
    assert {k: v.get_reason() for k, v in response.unmapped_identities.items()} == {OPTOUT_PHONE: "optout"}
    for phone in PHONES:
        check_mapped(response.mapped_identities[phone], sensitive)


def test_hashed_emails_valid_invalid_opted_out(mapper, sensitive):
    good = sha256_b64(EMAILS[0])
    opted_out = sha256_b64(OPTOUT_EMAIL)
    response = mapper.generate_identity_map(IdentityMapInput.from_hashed_emails([good, *BAD_HASHES, opted_out]))
    assert set(response.mapped_identities) == {good}
    check_mapped(response.mapped_identities[good], sensitive)
    reasons = {k: v.get_reason() for k, v in response.unmapped_identities.items()}
    assert reasons == {BAD_HASHES[0]: "invalid identifier", BAD_HASHES[1]: "invalid identifier", opted_out: "optout"}

    # The client-side hash of the same email maps to the same raw UID and bucket.
    by_email = mapper.generate_identity_map(IdentityMapInput.from_emails([EMAILS[0]]))
    assert by_email.mapped_identities[EMAILS[0]].get_raw_uid() == response.mapped_identities[good].get_raw_uid()
    assert by_email.mapped_identities[EMAILS[0]].get_bucket_id() == response.mapped_identities[good].get_bucket_id()


def test_hashed_phones_and_hex_hash(mapper, sensitive):
    good = sha256_b64(PHONES[0])
    hex_hash = b64decode_std(sha256_b64(PHONES[1])).hex()
    response = mapper.generate_identity_map(IdentityMapInput.from_hashed_phones([good, hex_hash, "bad"]))
    assert set(response.mapped_identities) == {good, hex_hash}
    assert {k: v.get_reason() for k, v in response.unmapped_identities.items()} == {"bad": "invalid identifier"}
    by_phone = mapper.generate_identity_map(IdentityMapInput.from_phones(PHONES))
    # api.md §6.3: a 64-char hex hash is the same identity as its base64 form.
    assert response.mapped_identities[hex_hash].get_raw_uid() == by_phone.mapped_identities[PHONES[1]].get_raw_uid()
    assert response.mapped_identities[good].get_raw_uid() == by_phone.mapped_identities[PHONES[0]].get_raw_uid()


def test_raw_invalid_email_through_the_sdk_envelope(base_url, sensitive):
    """The SDK hashes every email before mapping, and refuses "not an email" on the client
    (ValueError). The raw form goes through the SDK's own envelope functions instead."""
    with pytest.raises(ValueError):
        IdentityMapInput.from_emails(["not an email"])
    secret = b64decode_std(SPECIAL.secret)
    identifiers = ["not an email", "Not An Email@Example.COM"]
    sensitive.add("email", "not an email")
    sensitive.add_email("Not An Email@Example.COM", "notanemail@example.com")
    envelope = create_envelope(secret, dt.datetime.now(tz=UTC), json.dumps({"email": identifiers}).encode())
    resp = make_request(base_url, "/v2/identity/map", auth_headers(SPECIAL.key), envelope)
    body = parse_response(secret, resp, envelope.nonce)
    response = IdentityMapResponse(body, IdentityMapInput.from_hashed_emails(identifiers))
    assert {k: v.get_reason() for k, v in response.unmapped_identities.items()} == {
        "not an email": "invalid identifier"
    }
    # The operator normalises the raw email: every space before @ dropped (unlike the Python
    # SDK, sdk.md §1.5 quirk 6), ASCII lowercased.
    assert set(response.mapped_identities) == {identifiers[1]}
    check_mapped(response.mapped_identities[identifiers[1]], sensitive)
    normalized = IdentityMapClient(base_url, SPECIAL.key, SPECIAL.secret).generate_identity_map(
        IdentityMapInput.from_emails(["notanemail@example.com"])
    )
    assert (
        response.mapped_identities[identifiers[1]].get_raw_uid()
        == normalized.mapped_identities["notanemail@example.com"].get_raw_uid()
    )


def test_buckets_since_early_date_lists_all_five(all_buckets):
    ids = [b.get_bucket_id() for b in all_buckets]
    assert len(ids) == 5 and len(set(ids)) == 5, ids
    for bucket in all_buckets:
        assert bucket.get_bucket_id().startswith("b")
        last = bucket.get_last_updated()
        parsed = dt.datetime.strptime(last, "%Y-%m-%dT%H:%M:%S.%f")
        assert len(last.rsplit(".", 1)[1]) == 3, f"last_updated {last} does not have 3 fractional digits"
        # The fixture salts were last updated in 2026-2027.
        assert 2026 <= parsed.year <= 2027, last


def test_buckets_match_the_fixture_salt_file(all_buckets):
    """Salt-file order, last_updated = the line's ms value as yyyy-MM-ddTHH:mm:ss.SSS (UTC)."""
    lines = fixture_salt_lines()
    expected = [
        dt.datetime.fromtimestamp(line.last_updated_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        for line in lines
    ]
    assert [b.get_last_updated() for b in all_buckets] == expected


def test_bucket_id_is_the_identity_salt_bucket(mapper, all_buckets):
    """The bucket_id of a mapped identity is the bucket its first-level hash indexes."""
    ordered = [b.get_bucket_id() for b in all_buckets]
    response = mapper.generate_identity_map(IdentityMapInput.from_emails(EMAILS))
    for email in EMAILS:
        flh = b64decode_std(first_level_hash_b64(sha256_b64(email)))
        assert response.mapped_identities[email].get_bucket_id() == ordered[bucket_index(flh, len(ordered))]


def test_buckets_since_filters_by_last_updated(mapper, all_buckets):
    since = dt.datetime(2027, 1, 1, tzinfo=UTC)
    response = mapper.get_identity_buckets(since)
    expected = {
        b.get_bucket_id()
        for b in all_buckets
        if dt.datetime.strptime(b.get_last_updated(), "%Y-%m-%dT%H:%M:%S.%f") >= since.replace(tzinfo=None)
    }
    assert 0 < len(expected) < 5
    assert {b.get_bucket_id() for b in response.buckets} == expected


def test_buckets_since_far_future_is_empty(mapper):
    response = mapper.get_identity_buckets(dt.datetime(2100, 1, 1, tzinfo=UTC))
    assert response.is_success()
    assert response.buckets == []
