//! Envelope behaviour, including the `tokens.md` §8.10 request envelopes ([repo] + [dec]) and the
//! §8.9 opt-out refresh response.

use super::client::{open_response, seal_request};
use super::*;
use crate::entropy::ScriptedEntropy;

fn client_secret() -> SecretKey {
    SecretKey::from_base64("ioG3wKxAokmp+rERx6A4kM/13qhyolUXIu14WN16Spo=").expect("32 bytes")
}

const TS: i64 = 1_667_885_597_644;

fn nonce() -> [u8; 8] {
    hex::decode("312fe5aa08b2a049").expect("hex").try_into().expect("8")
}

fn iv() -> [u8; 12] {
    hex::decode("cc3ccaca9889eab3800e787e")
        .expect("hex")
        .try_into()
        .expect("12")
}

const VECTORS: &[(&str, &str)] = &[
    (
        r#"{"email":"test@example.com"}"#,
        "Acw8ysqYieqzgA54fifdV1TB6V+da8p/AFc8Ju/IYrD77pL7JYMJj8YqD9EsrG3d2d2j0H7kZjH41YsNLpFVCH+oce28z9L9ug==",
    ),
    (
        r#"{"phone":"+12345678901"}"#,
        "Acw8ysqYieqzgA54fifdV1TB6V+da8p/AFc8Ju/IYqX+4JXyJYMJ0JJrSKV84juIkIH33GCmx+7RM2pSX9P4nAN0pn2g",
    ),
    (
        r#"{"email_hash":"tMmiiTI7IaAcPpQPFQ65uMVCWH8av9jw4cwf/F5HVRQ="}"#,
        "Acw8ysqYieqzgA54fifdV1TB6V+da8p/AFc8Ju/IYrD77pL7WNFKiMt7QbM9mWHZwOWPyVTqSnDVNzhXRdcmIkV0ODOdll2inDo9iIZQ5oV2NvSUSWG5j6ACiXKH0JxiTPzs716eIH7P1Q==",
    ),
    (
        r#"{"email_hash":"1hFzBkhe0OUK+rOshx6Y+BaZFR8wKBUn1j/18jNlbGk="}"#,
        "Acw8ysqYieqzgA54fifdV1TB6V+da8p/AFc8Ju/IYrD77pL7WNFKiMt7QbN4vErK69qumy3EXliuNSZ0a/4mTht7DyqMjF20oUECkYNZvtJhGo+wfXSDj6ACEfrViY4lnt1KEUjC4JlDaQ==",
    ),
    (
        r#"{"email_hash":"tMmiiTI7IaAcPpQPFQ65uMVCWH8av9jw4cwf/F5HVRQ=","tcf_consent_string":"CPhJRpMPhJRpMABAMBFRACBoALAAAEJAAIYgAKwAQAKgArABAAqAAA"}"#,
        "Acw8ysqYieqzgA54fifdV1TB6V+da8p/AFc8Ju/IYrD77pL7WNFKiMt7QbM9mWHZwOWPyVTqSnDVNzhXRdcmIkV0ODOdll2inDo9iIZQ5oV2NvSUSWG5j6BTr3kl2OMGYCCQWOw+fx5/D8+7+J2+xJVUXN8K2yBbjpYqiOpOVVTktDh7TxkPwEGuYR5onLsXKFzjg7rdh0Mfu+emB6JrjFw/en304ydJgpPefDK/4/cohZQdgpjaqQ==",
    ),
    (
        r#"{"phone_hash":"EObwtHBUqDNZR33LNSMdtt5cafsYFuGmuY4ZLenlue4="}"#,
        "Acw8ysqYieqzgA54fifdV1TB6V+da8p/AFc8Ju/IYqX+4JXyWNFKiMt7QbMMm27H3fmEq2zPRUnXdFpLTdVdc0RNWxOruBaarHYQksdqpbkVFa+walbcj6AClILBJjbDMl1IoeqJVG2fyw==",
    ),
];

#[test]
fn sdk_request_envelopes_open_and_reproduce() {
    for (json, envelope) in VECTORS {
        let sealed = seal_request(&client_secret(), TS, &nonce(), json.as_bytes(), &iv());
        assert_eq!(crate::base64::encode(&sealed), *envelope);
        let opened = open_request(envelope.as_bytes(), false, &client_secret(), TS + 1_000).expect("opens");
        assert_eq!(opened.nonce, nonce());
        assert_eq!(opened.timestamp_ms, TS);
        assert!(!opened.binary);
        let expected: Value = serde_json::from_str(json).expect("json");
        assert_eq!(opened.payload.map(Value::Object), Some(expected));
    }
}

#[test]
fn binary_requests_and_the_base64_fallback() {
    let raw = crate::base64::decode(VECTORS[0].1).expect("b64");
    let opened = open_request(&raw, true, &client_secret(), TS).expect("binary opens");
    assert!(opened.binary);
    // Base64 text sent with the binary content type: handled, and answered as text.
    let opened = open_request(VECTORS[0].1.as_bytes(), true, &client_secret(), TS).expect("fallback opens");
    assert!(!opened.binary);
    // Neither binary nor base64: the binary attempt's error is reported.
    assert_eq!(
        open_request(
            b"\x02not an envelope at all, but long enough to pass",
            true,
            &client_secret(),
            TS
        ),
        Err(EnvelopeError::BadVersion(2))
    );
    // Valid base64 that is not an envelope: the fallback's error.
    assert_eq!(
        open_request(b"AAAA", true, &client_secret(), TS),
        Err(EnvelopeError::TooShort)
    );
}

#[test]
fn refusals_in_reference_order() {
    let secret = client_secret();
    let cases: &[(&[u8], EnvelopeError)] = &[
        (b"", EnvelopeError::BodyMissing),
        (br#"{"email":"a@b.com"}"#, EnvelopeError::UnencryptedJson),
        (b"not base64!", EnvelopeError::NotBase64),
        (b"AAAA", EnvelopeError::TooShort),
    ];
    for (body, expected) in cases {
        assert_eq!(
            open_request(body, false, &secret, TS).err(),
            Some(*expected),
            "{body:?}"
        );
    }
    // Base64 of unencrypted JSON, short or long.
    let short_json = crate::base64::encode(br#"{"a":1}"#);
    assert_eq!(
        open_request(short_json.as_bytes(), false, &secret, TS).err(),
        Some(EnvelopeError::UnencryptedJson)
    );
    let long_json = crate::base64::encode(br#"{"email":"someone.with.a.long.address@example.com"}"#);
    assert_eq!(
        open_request(long_json.as_bytes(), false, &secret, TS).err(),
        Some(EnvelopeError::UnencryptedJson)
    );

    let mut wrong_version = crate::base64::decode(VECTORS[0].1).expect("b64");
    wrong_version[0] = 0xF2;
    assert_eq!(
        open_request(crate::base64::encode(&wrong_version).as_bytes(), false, &secret, TS).err(),
        Some(EnvelopeError::BadVersion(0xF2))
    );
    let other = SecretKey::from_bytes([9; 32]);
    assert_eq!(
        open_request(VECTORS[0].1.as_bytes(), false, &other, TS).err(),
        Some(EnvelopeError::BadSecret)
    );

    let not_json = seal_request(&secret, TS, &nonce(), b"[1,2]", &iv());
    assert_eq!(
        open_request(crate::base64::encode(&not_json).as_bytes(), false, &secret, TS).err(),
        Some(EnvelopeError::PayloadNotJson)
    );
    // Invalid UTF-8 inside a string is replaced, as the reference's decoding does.
    let lossy = seal_request(&secret, TS, &nonce(), b"{\"email\":\"\xff\xfe@example.com\"}", &iv());
    let opened = open_request(crate::base64::encode(&lossy).as_bytes(), false, &secret, TS).expect("lossy payload");
    let email = opened
        .payload
        .and_then(|p| p.get("email").and_then(|v| v.as_str().map(str::to_owned)));
    assert_eq!(email.as_deref(), Some("\u{FFFD}\u{FFFD}@example.com"));

    let empty = seal_request(&secret, TS, &nonce(), b"", &iv());
    let opened =
        open_request(crate::base64::encode(&empty).as_bytes(), false, &secret, TS).expect("empty payload is fine");
    assert_eq!(opened.payload, None);
}

#[test]
fn timestamp_window_follows_java_truncation() {
    let now = 1_700_000_000_000;
    assert!(timestamp_in_window(now, now));
    assert!(timestamp_in_window(now - 119_999, now), "119.999 s old passes");
    assert!(!timestamp_in_window(now - 120_000, now), "120 s old fails");
    assert!(timestamp_in_window(now + 119_000, now), "119 s ahead passes");
    assert!(
        !timestamp_in_window(now + 119_001, now),
        "119.001 s ahead floors to -120 s"
    );
    assert!(!timestamp_in_window(i64::MIN, now));
    assert!(!timestamp_in_window(i64::MAX, now));

    let secret = client_secret();
    let stale = seal_request(&secret, now - 120_000, &nonce(), b"{}", &iv());
    assert_eq!(
        open_request(crate::base64::encode(&stale).as_bytes(), false, &secret, now).err(),
        Some(EnvelopeError::StaleTimestamp)
    );
}

#[test]
fn messages_match_the_reference() {
    assert_eq!(
        EnvelopeError::NotBase64.message(IdentityScope::Uid2),
        "Invalid body: Body is not valid base64. See https://unifiedid.com/docs/getting-started/gs-encryption-decryption for details on the request envelope format."
    );
    assert_eq!(
        EnvelopeError::BadVersion(2).message(IdentityScope::Euid),
        "Invalid body: Invalid request envelope format version: received 2, must be 1. See https://euid.eu/docs/getting-started/gs-encryption-decryption for details on the request envelope format."
    );
    assert_eq!(
        EnvelopeError::UnencryptedJson.message(IdentityScope::Uid2),
        "Invalid body: The request body is unencrypted JSON. It must be an encrypted request envelope. See https://unifiedid.com/docs/getting-started/gs-encryption-decryption#encryption-and-decryption-code-examples for encryption and decryption code examples."
    );
    assert_eq!(
        EnvelopeError::BodyMissing.message(IdentityScope::Euid),
        "Invalid body: Body is missing."
    );
}

#[test]
fn response_round_trip() {
    let secret = client_secret();
    let entropy = ScriptedEntropy::new([[7u8; 12]]);
    let sealed = seal_response(&secret, 42, &nonce(), br#"{"status":"success"}"#, &entropy);
    assert_eq!(&sealed[..12], &[7u8; 12]);
    let opened = open_response(&secret, &sealed).expect("opens");
    assert_eq!((opened.timestamp_ms, opened.nonce), (42, nonce()));
    assert_eq!(opened.json, br#"{"status":"success"}"#);
}

/// `tokens.md` §8.9: the opt-out refresh response, sealed with the refresh response key and
/// carrying no timestamp or nonce.
#[test]
fn optout_refresh_response_vector() {
    let key = SecretKey::from_base64("WL0AYr41Db9m6dCIPtQlTz2kE4NMx3nLmloGHkQPGSQ=").expect("32 bytes");
    let blob = crate::base64::decode("d9I6qCdlJ6mkWYLyw2iGnCnJ5OocyQDtbbvW6YXAYKpxTXaOePQzPPJIrHnI7Io=").expect("b64");
    assert_eq!(hex::encode(&blob[..12]), "77d23aa8276527a9a45982f2");
    assert_eq!(gcm_open(&key, &blob, &[]).expect("opens"), br#"{"status":"optout"}"#);
}
