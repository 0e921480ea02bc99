"""8. No secrets or DII in the operator's log (RUST_LOG=trace, the most verbose level).

This module's name sorts last, so pytest runs it after every other module of tests/sdk: by then
the session's `sensitive` collector holds every email, phone, hash, token, refresh token,
refresh_response_key, raw UID, API key and secret the suite used, and every secret of the test
store (client secrets and key hashes, keyset and cloud keys, CSTG private keys, salts). It also
makes its own traffic first, so it checks something when run alone. The `operator` fixture
checks the whole log once more after the operator has stopped.
"""

from __future__ import annotations

import time

from uid2_client import IdentityMapClient, IdentityMapInput, TokenGenerateInput, Uid2PublisherClient

from sdkharness import SPECIAL, Sensitive, find_leaks, strip_ansi

EMAIL = "sdk.log.hygiene@example.com"
PHONE = "+12065550199"


def _own_traffic(base_url: str, sensitive: Sensitive) -> None:
    sensitive.add_email(EMAIL)
    sensitive.add_phone(PHONE)
    publisher = Uid2PublisherClient(base_url, SPECIAL.key, SPECIAL.secret)
    for token_input in (TokenGenerateInput.from_email(EMAIL).do_not_hash(), TokenGenerateInput.from_phone(PHONE)):
        generated = publisher.generate_token(token_input)
        assert generated.is_success()
        sensitive.add_sdk_identity(generated.get_identity())
        refreshed = publisher.refresh_token(generated.get_identity())
        assert refreshed.is_success()
        sensitive.add_sdk_identity(refreshed.get_identity())
    mapped = IdentityMapClient(base_url, SPECIAL.key, SPECIAL.secret).generate_identity_map(
        IdentityMapInput.from_emails([EMAIL])
    )
    sensitive.add("raw_uid", mapped.mapped_identities[EMAIL].get_raw_uid())


def test_operator_log_has_no_secrets_or_dii(operator, base_url, sensitive):
    _own_traffic(base_url, sensitive)
    time.sleep(0.3)  # let the last request lines reach the file
    log = strip_ansi(operator.log_text())

    assert log.strip(), f"the operator log {operator.log_path} is empty: nothing to check"
    for kind in (
        "api_key",
        "api_secret",
        "email",
        "phone",
        "identity_hash",
        "advertising_token",
        "refresh_token",
        "refresh_response_key",
        "raw_uid",
    ):
        assert sensitive.values.get(kind), f"no {kind} collected: the check would be vacuous"

    # The check itself can fail: a leaked token planted in a copy of the log is found.
    planted = next(iter(sensitive.values["refresh_token"]))
    assert find_leaks(log + "\nDEBUG body=" + planted + "\n", sensitive)
    assert find_leaks(log + '\nTRACE body={"email":"x"}\n', sensitive), "a JSON body is found"
    assert sensitive.values.get("key_secret") and sensitive.values.get("salt"), "store secrets collected"

    leaks = find_leaks(log, sensitive)
    assert not leaks, (
        f"{len(leaks)} secret(s), DII value(s) or body shape(s) ({sensitive.count()} values checked) appear in "
        f"{operator.log_path}:\n" + "\n".join(leaks[:40])
    )
