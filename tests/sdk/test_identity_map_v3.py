"""3. IdentityMapV3Client: mixed emails, phones and hashes; current/previous raw UID, refresh_from."""

from __future__ import annotations

import datetime as dt

import pytest
from uid2_client import IdentityMapClient, IdentityMapInput, IdentityMapV3Client, IdentityMapV3Input
from uid2_client.unmapped_identity_reason import UnmappedIdentityReason

from sdkharness import (
    OPTOUT_EMAIL,
    OPTOUT_PHONE,
    SPECIAL,
    STD_B64,
    b64decode_std,
    expected_mapping,
    sha256_b64,
)

EMAIL = "sdk.v3.user@example.com"
EMAIL_2 = "SDK.V3.Second+promo@gmail.com"  # normalised by the SDK to sdkv3second@gmail.com
PHONE = "+12065550103"
HASHED_EMAIL_OF = "sdk.v3.hashed@example.com"
HASHED_PHONE_OF = "+12065550104"
BAD_EMAIL_HASH = "this is not a hash"
BAD_PHONE_HASH = "QUJD"  # valid base64, wrong length


@pytest.fixture(scope="module")
def v3_response(base_url, sensitive):
    sensitive.add_email(EMAIL)
    sensitive.add_email(EMAIL_2, "sdkv3second@gmail.com")
    sensitive.add_email(HASHED_EMAIL_OF)
    sensitive.add_email(OPTOUT_EMAIL)
    for phone in (PHONE, HASHED_PHONE_OF, OPTOUT_PHONE):
        sensitive.add_phone(phone)
    request = (
        IdentityMapV3Input()
        .with_email(EMAIL)
        .with_hashed_email(BAD_EMAIL_HASH)
        .with_phone(PHONE)
        .with_email(OPTOUT_EMAIL)
        .with_hashed_email(sha256_b64(HASHED_EMAIL_OF))
        .with_hashed_phone(BAD_PHONE_HASH)
        .with_phone(OPTOUT_PHONE)
        .with_email(EMAIL_2)
        .with_hashed_phone(sha256_b64(HASHED_PHONE_OF))
    )
    before = dt.datetime.now(tz=dt.timezone.utc)
    response = IdentityMapV3Client(base_url, SPECIAL.key, SPECIAL.secret).generate_identity_map(request)
    return response, before


MAPPED = [EMAIL, EMAIL_2, PHONE, sha256_b64(HASHED_EMAIL_OF), sha256_b64(HASHED_PHONE_OF)]


def test_status_and_partition(v3_response):
    response, _ = v3_response
    assert response.is_success() and response.status == "success"
    assert set(response.mapped_identities) == set(MAPPED)
    assert set(response.unmapped_identities) == {BAD_EMAIL_HASH, BAD_PHONE_HASH, OPTOUT_EMAIL, OPTOUT_PHONE}


def test_unmapped_reasons(v3_response):
    response, _ = v3_response
    unmapped = response.unmapped_identities
    assert unmapped[OPTOUT_EMAIL].reason is UnmappedIdentityReason.OPTOUT
    assert unmapped[OPTOUT_PHONE].reason is UnmappedIdentityReason.OPTOUT
    assert unmapped[BAD_EMAIL_HASH].reason is UnmappedIdentityReason.INVALID_IDENTIFIER
    assert unmapped[BAD_PHONE_HASH].reason is UnmappedIdentityReason.INVALID_IDENTIFIER
    assert unmapped[OPTOUT_EMAIL].raw_reason == "optout"
    assert unmapped[BAD_EMAIL_HASH].raw_reason == "invalid identifier"


@pytest.mark.parametrize("identity", MAPPED)
def test_mapped_fields(v3_response, sensitive, identity):
    response, before = v3_response
    mapped = response.mapped_identities[identity]
    current = mapped.current_raw_uid
    assert current and len(current) == 44 and STD_B64.match(current), current
    assert len(b64decode_std(current)) in (32, 33)
    sensitive.add("raw_uid", current)
    previous = mapped.previous_raw_uid
    if previous is not None:
        assert len(previous) == 44 and STD_B64.match(previous) and previous != current
        sensitive.add("raw_uid", previous)
    refresh_from = mapped.refresh_from
    assert isinstance(refresh_from, dt.datetime) and refresh_from.tzinfo is not None
    assert refresh_from > before, f"refresh_from {refresh_from} is not after now ({before})"
    # `r` is epoch seconds; a ms value would land tens of thousands of years out (or fail to parse).
    assert refresh_from < before + dt.timedelta(days=3 * 365)


# (identity as the SDK keys it, its identity hash, 0 email / 1 phone)
EXACT = [
    (EMAIL, sha256_b64(EMAIL), 0),
    (EMAIL_2, sha256_b64("sdkv3second@gmail.com"), 0),
    (PHONE, sha256_b64(PHONE), 1),
    (sha256_b64(HASHED_EMAIL_OF), sha256_b64(HASHED_EMAIL_OF), 0),
    (sha256_b64(HASHED_PHONE_OF), sha256_b64(HASHED_PHONE_OF), 1),
]


@pytest.mark.parametrize("identity, identity_hash, identity_type", EXACT, ids=[e[0] for e in EXACT])
def test_exact_values_from_the_fixture_salts(v3_response, identity, identity_hash, identity_type):
    """u, p and r recomputed from the salt file (raw UID v2 from a salt, v4 from a key), so the
    SDK-visible values are checked byte for byte, previous UID included (api.md §5.7, §7)."""
    response, before = v3_response
    expected = expected_mapping(identity_hash, identity_type, int(before.timestamp() * 1000))
    mapped = response.mapped_identities[identity]
    bucket = expected["line"].bucket
    assert mapped.current_raw_uid == expected["u"], f"current raw UID (bucket {bucket})"
    assert mapped.previous_raw_uid == expected["p"], f"previous raw UID (bucket {bucket})"
    assert mapped.refresh_from == dt.datetime.fromtimestamp(expected["r"], tz=dt.timezone.utc)


def test_the_mix_covers_salt_and_key_buckets(v3_response):
    """Guards the test data: the identities above must hit both raw UID formats and a `p`."""
    response, before = v3_response
    now = int(before.timestamp() * 1000)
    lines = [expected_mapping(h, t, now)["line"] for _, h, t in EXACT]
    assert any(line.current_salt for line in lines) and any(line.current_key for line in lines)
    assert any(response.mapped_identities[i].previous_raw_uid for i, _, _ in EXACT)


def test_v3_current_uid_equals_v2_advertising_id(base_url, v3_response):
    response, _ = v3_response
    v2 = IdentityMapClient(base_url, SPECIAL.key, SPECIAL.secret)
    emails = v2.generate_identity_map(IdentityMapInput.from_emails([EMAIL, EMAIL_2]))
    phones = v2.generate_identity_map(IdentityMapInput.from_phones([PHONE]))
    hashed = v2.generate_identity_map(IdentityMapInput.from_hashed_emails([sha256_b64(HASHED_EMAIL_OF)]))
    expected = {
        EMAIL: emails.mapped_identities[EMAIL].get_raw_uid(),
        EMAIL_2: emails.mapped_identities[EMAIL_2].get_raw_uid(),
        PHONE: phones.mapped_identities[PHONE].get_raw_uid(),
        sha256_b64(HASHED_EMAIL_OF): hashed.mapped_identities[sha256_b64(HASHED_EMAIL_OF)].get_raw_uid(),
    }
    for identity, uid in expected.items():
        assert response.mapped_identities[identity].current_raw_uid == uid, identity
