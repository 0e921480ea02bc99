"""5. SharingClient (site 999): decrypt operator tokens, encrypt a raw UID and decrypt it back."""

from __future__ import annotations

import pytest
from uid2_client import (
    AdvertisingTokenVersion,
    DecryptionStatus,
    EncryptionStatus,
    IdentityMapClient,
    IdentityMapInput,
    SharingClient,
    TokenGenerateInput,
    Uid2PublisherClient,
)

from sdkharness import DSP, SPECIAL, URLSAFE_B64

EMAIL = "sdk.sharing.user@example.com"
PHONE = "+12065550106"


@pytest.fixture(scope="module")
def sharing_999(base_url) -> SharingClient:
    client = SharingClient(base_url, SPECIAL.key, SPECIAL.secret)
    refreshed = client.refresh()
    assert refreshed.success, f"/v2/key/sharing refresh failed: {refreshed.reason}"
    return client


@pytest.fixture(scope="module")
def raw_uids(base_url, sensitive) -> dict:
    sensitive.add_email(EMAIL)
    sensitive.add_phone(PHONE)
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


def test_sharing_keys_header(sharing_999):
    """/v2/key/sharing for site 999 (api.md §5.11): the fields SharingClient needs to encrypt."""
    keys = sharing_999.refresh().keys
    assert keys.get_caller_site_id() == SPECIAL.site_id
    assert keys.get_master_keyset_id() == 9999999
    assert keys.get_default_keyset_id() == 99999
    # Sent as a JSON string, as the reference does (api.md §5.11); the SDK int()s it.
    assert keys.get_token_expiry_seconds() == "2592000"
    assert keys.get_max_sharing_lifetime_seconds() == 2592000 + 10
    by_id = {k.key_id: k for k in keys.values()}
    assert by_id[101].keyset_id == 9999999
    assert by_id[99999].keyset_id == 99999
    assert 102 not in by_id


@pytest.mark.parametrize(
    "make_input, identity",
    [(lambda: TokenGenerateInput.from_email(EMAIL), EMAIL), (lambda: TokenGenerateInput.from_phone(PHONE), PHONE)],
)
def test_decrypts_a_token_the_operator_issued(base_url, sensitive, sharing_999, raw_uids, make_input, identity):
    publisher = Uid2PublisherClient(base_url, SPECIAL.key, SPECIAL.secret)
    generated = publisher.generate_token(make_input())
    assert generated.is_success()
    sensitive.add_sdk_identity(generated.get_identity())
    decrypted = sharing_999.decrypt_token_into_raw_uid(generated.get_identity().get_advertising_token())
    assert decrypted.status == DecryptionStatus.SUCCESS, decrypted.status
    assert decrypted.uid == raw_uids[identity]
    assert decrypted.site_id == SPECIAL.site_id


@pytest.mark.parametrize("identity", [EMAIL, PHONE])
def test_encrypt_raw_uid_then_decrypt(base_url, sensitive, sharing_999, raw_uids, identity):
    uid = raw_uids[identity]
    encrypted = sharing_999.encrypt_raw_uid_into_token(uid)
    assert encrypted.status == EncryptionStatus.SUCCESS and encrypted.success, encrypted.status
    token = encrypted.encrypted_data
    sensitive.add("advertising_token", token)
    assert URLSAFE_B64.match(token)

    decrypted = sharing_999.decrypt_token_into_raw_uid(token)
    assert decrypted.status == DecryptionStatus.SUCCESS, decrypted.status
    assert decrypted.uid == uid
    assert decrypted.site_id == SPECIAL.site_id
    assert decrypted.advertising_token_version == AdvertisingTokenVersion.ADVERTISING_TOKEN_V4

    # The DSP (ID_READER) receives site 999's open keyset through /v2/key/sharing too.
    dsp = SharingClient(base_url, DSP.key, DSP.secret)
    assert dsp.refresh().success
    by_dsp = dsp.decrypt_token_into_raw_uid(token)
    assert by_dsp.status == DecryptionStatus.SUCCESS and by_dsp.uid == uid
