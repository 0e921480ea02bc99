//! The refresh path: the 388-character refresh wrapper (`token::refresh_envelope`), the refresh
//! token inside it (`RefreshToken::decode`, V3 and legacy V2), and the raw body of
//! `POST /v2/token/refresh`, which holds either.
//!
//! Keys: the vector keys of `uid2_fuzz::keys` (the §8.9, §8.11 and §8.12 refresh tokens and
//! wrappers in the seed corpus open). Modes (low four bits of the mode byte, modulo 7):
//! - `body` (0): the rest is a refresh request body, read as the endpoint reads it (UTF-8 with
//!   replacement; a wrapper when 388 UTF-16 units long, else a bare token). What opens and
//!   decodes must re-seal/re-encode to the same values.
//! - `wrapper` (1): a wrapper JSON from the input, sealed under a vector key, is opened: the
//!   JSON parsing behind the MAC.
//! - `wrapper_round_trip` (2): an inner token and response key from the input are sealed and
//!   opened again; sealing succeeds exactly when the result is 388 characters.
//! - `fields` (3): a refresh token built from the input is encoded (V3 and V2) and decoded.
//! - `payload` (4) / `legacy_payload` (5): the input is the plaintext inside valid V3 GCM or V2
//!   CBC layers; what decodes round-trips.
//! - `endpoint` (6; bits 4–7: API key, octet-stream, minted, wrapped): the rest is POSTed to the
//!   in-process operator's `/v2/token/refresh`, as is or as the fields of a refresh token minted
//!   under the bundled store's refresh key (bare or wrapped). The answer is 200 or 400, never
//!   500; a 200 is JSON with status `success` or `optout`, sealed with the wrapper's response
//!   key when there was a wrapper.
#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use uid2_fuzz::keys::TestKeys;
use uid2_fuzz::operator::{operator, CLIENT_KEY};
use uid2_fuzz::{array, mode, value};
use uid2_protocol::crypto::{cbc_seal_with_iv, gcm_seal_with_iv, SecretKey};
use uid2_protocol::entropy::ScriptedEntropy;
use uid2_protocol::identity::{IdentityScope, IdentityType};
use uid2_protocol::token::refresh::{encode_v2, RefreshToken, V2_VALID_TILL_GRACE_MS};
use uid2_protocol::token::refresh_envelope::{self, EnvelopeError, ENVELOPE_LEN};
use uid2_protocol::token::{KeyRing, OperatorIdentity, PublisherIdentity, TokenVersion};

fuzz_target!(|data: &[u8]| {
    let keys = TestKeys::new();
    let (mode, rest) = mode(data);
    match (mode & 0x0F) % 7 {
        0 => body(&keys, rest),
        1 => wrapper(&keys, rest),
        2 => wrapper_round_trip(&keys, rest),
        3 => fields(&keys, rest),
        4 => payload(&keys, rest),
        5 => legacy_payload(&keys, rest),
        _ => endpoint(mode, rest),
    }
});

fn body(keys: &TestKeys, rest: &[u8]) {
    let text = String::from_utf8_lossy(rest);
    let inner = if text.encode_utf16().count() == ENVELOPE_LEN {
        match refresh_envelope::open(&text, keys) {
            Ok(opened) => {
                check_reseal(keys, &text, &opened.refresh_token, &opened.response_key);
                opened.refresh_token
            }
            Err(_) => return,
        }
    } else {
        text.into_owned()
    };
    if let Ok(token) = RefreshToken::decode(&inner, keys) {
        round_trip(keys, &token);
    }
}

/// An opened wrapper seals again (under the key it named, with its scope byte) to a wrapper
/// that opens to the same inner token and response key. Sealing writes the token into JSON
/// unescaped, as the reference does for the base64 tokens it issues, so only tokens that need
/// no escaping are compared.
fn check_reseal(keys: &TestKeys, text: &str, inner: &str, response_key: &SecretKey) {
    let bytes = uid2_protocol::base64::decode(text).expect("an opened wrapper is base64");
    let key_id = i32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let key = keys.secret(key_id).expect("an opened wrapper names a known key");
    if inner.contains(['"', '\\']) || inner.chars().any(char::is_control) {
        return;
    }
    let scope = IdentityScope::from_bit(bytes[0] >> 4);
    let entropy = ScriptedEntropy::default();
    match refresh_envelope::seal(scope, key_id, key, inner, response_key, &entropy) {
        Ok(sealed) => {
            assert_eq!(sealed.len(), ENVELOPE_LEN);
            let opened = refresh_envelope::open(&sealed, keys).expect("a sealed wrapper opens");
            assert_eq!(opened.refresh_token, inner);
            assert!(opened.response_key == *response_key);
        }
        Err(e) => assert_eq!(e, EnvelopeError::WrongLength),
    }
}

fn wrapper(keys: &TestKeys, rest: &[u8]) {
    let mut u = Unstructured::new(rest);
    let scope_byte: u8 = value(&mut u);
    let (key_id, key) = keys.pick(value(&mut u));
    let json = u.take_rest();
    let mut bytes = vec![scope_byte];
    bytes.extend_from_slice(&key_id.to_be_bytes());
    bytes.extend_from_slice(&gcm_seal_with_iv(key, &[5; 12], json, &[]));
    let text = uid2_protocol::base64::encode(&bytes);
    match refresh_envelope::open(&text, keys) {
        Ok(opened) => {
            if text.len() == ENVELOPE_LEN {
                check_reseal(keys, &text, &opened.refresh_token, &opened.response_key);
            }
            if let Ok(token) = RefreshToken::decode(&opened.refresh_token, keys) {
                round_trip(keys, &token);
            }
        }
        Err(e) => assert_eq!(e, EnvelopeError::Format, "only the JSON can be wrong here"),
    }
}

fn wrapper_round_trip(keys: &TestKeys, rest: &[u8]) {
    let mut u = Unstructured::new(rest);
    let scope = IdentityScope::from_bit(value(&mut u));
    let (key_id, key) = keys.pick(value(&mut u));
    let response_key = SecretKey::from_bytes(array::<32>(&mut u));
    // The tokens the operator wraps are base64; any base64 text of any length is tried.
    let inner = uid2_protocol::base64::encode(u.take_rest());
    match refresh_envelope::seal(scope, key_id, key, &inner, &response_key, &ScriptedEntropy::default()) {
        Ok(sealed) => {
            assert_eq!(sealed.len(), ENVELOPE_LEN);
            let opened = refresh_envelope::open(&sealed, keys).expect("a sealed wrapper opens");
            assert_eq!(opened.refresh_token, inner);
            assert!(opened.response_key == response_key);
        }
        Err(e) => {
            assert_eq!(e, EnvelopeError::WrongLength);
            assert_ne!(inner.len(), 168, "a 168-character inner token always fits");
        }
    }
}

/// Re-encodes a decoded token (V3, or V2 for a legacy one) and checks it decodes to itself.
fn round_trip(keys: &TestKeys, token: &RefreshToken) {
    let key = keys.secret(token.key_id).expect("a decoded token names a known key");
    let entropy = ScriptedEntropy::default();
    match token.version {
        TokenVersion::V2 => {
            // V2 decoding reports valid-till (= expires + 60 s) as the expiry; encoding writes
            // valid-till from the nominal expiry.
            let nominal = RefreshToken {
                expires_ms: token.expires_ms.saturating_sub(V2_VALID_TILL_GRACE_MS),
                ..token.clone()
            };
            let again = RefreshToken::decode(&encode_v2(&nominal, key, &entropy), keys).expect("re-encoded V2 decodes");
            if token.expires_ms.checked_sub(V2_VALID_TILL_GRACE_MS).is_some() {
                assert!(again == *token, "decode(encode_v2(t)) == t for {token:?}");
            }
        }
        _ => {
            let again = RefreshToken::decode(&token.encode(key, &entropy), keys).expect("re-encoded V3 decodes");
            assert!(again == *token, "decode(encode(t)) == t for {token:?}");
        }
    }
}

fn fields(keys: &TestKeys, rest: &[u8]) {
    let mut u = Unstructured::new(rest);
    let shape: u8 = value(&mut u);
    let (key_id, key) = keys.pick(value(&mut u));
    let token = RefreshToken {
        version: if shape & 1 == 0 {
            TokenVersion::V3
        } else {
            TokenVersion::V2
        },
        scope: IdentityScope::from_bit(shape >> 1),
        id_type: if shape & 4 == 0 {
            IdentityType::Email
        } else {
            IdentityType::Phone
        },
        key_id,
        expires_ms: value(&mut u),
        created_ms: value(&mut u),
        operator: OperatorIdentity {
            site_id: value(&mut u),
            operator_type: value(&mut u),
            version: value(&mut u),
            key_id: value(&mut u),
        },
        publisher: PublisherIdentity {
            site_id: value(&mut u),
            publisher_id: value(&mut u),
            client_key_id: value(&mut u),
        },
        privacy_bits: value(&mut u),
        established_ms: value(&mut u),
        first_level_hash: array::<32>(&mut u),
    };
    let entropy = ScriptedEntropy::default();
    match token.version {
        TokenVersion::V2 => {
            let decoded = RefreshToken::decode(&encode_v2(&token, key, &entropy), keys);
            // Byte 1 is checked for V3 before byte 0 for V2, as in the reference: a V2 token
            // created at a time whose top byte is 0x70 (year 250 million) reads as V3 and fails.
            if token.created_ms.to_be_bytes()[0] == TokenVersion::V3_BYTE {
                assert!(decoded.is_err(), "a V2 token with byte 1 = 0x70 is read as V3");
                return;
            }
            let decoded = decoded.expect("V2 decodes");
            let expected = RefreshToken {
                scope: IdentityScope::Uid2,
                id_type: IdentityType::Email,
                expires_ms: token.expires_ms.saturating_add(V2_VALID_TILL_GRACE_MS),
                operator: OperatorIdentity::SERVICE,
                publisher: PublisherIdentity::site(token.publisher.site_id),
                ..token.clone()
            };
            assert!(decoded == expected, "V2 round trip of {token:?}");
        }
        _ => {
            let encoded = token.encode(key, &entropy);
            assert_eq!(encoded.len(), 168, "a V3 refresh token is 168 characters");
            let decoded = RefreshToken::decode(&encoded, keys).expect("V3 decodes");
            assert!(decoded == token, "V3 round trip of {token:?}");
        }
    }
}

fn payload(keys: &TestKeys, rest: &[u8]) {
    let mut u = Unstructured::new(rest);
    let prefix: u8 = value(&mut u);
    let (key_id, key) = keys.pick(value(&mut u));
    let plain = u.take_rest();
    let mut bytes = vec![prefix, TokenVersion::V3_BYTE];
    bytes.extend_from_slice(&key_id.to_be_bytes());
    bytes.extend_from_slice(&gcm_seal_with_iv(key, &[6; 12], plain, &[]));
    if let Ok(token) = RefreshToken::decode(&uid2_protocol::base64::encode(&bytes), keys) {
        round_trip(keys, &token);
    }
}

fn legacy_payload(keys: &TestKeys, rest: &[u8]) {
    let mut u = Unstructured::new(rest);
    let (key_id, key) = keys.pick(value(&mut u));
    // created ‖ expires ‖ valid-till
    let times = array::<24>(&mut u);
    let plain = u.take_rest();
    let mut bytes = vec![TokenVersion::V2_BYTE];
    bytes.extend_from_slice(&times);
    bytes.extend_from_slice(&key_id.to_be_bytes());
    bytes.extend_from_slice(&cbc_seal_with_iv(key, &[7; 16], plain));
    if let Ok(token) = RefreshToken::decode(&uid2_protocol::base64::encode(&bytes), keys) {
        assert_eq!(token.version, TokenVersion::V2);
        round_trip(keys, &token);
    }
}

fn endpoint(mode: u8, rest: &[u8]) {
    let authorization = format!("Bearer {CLIENT_KEY}");
    let mut headers: Vec<(&str, &[u8])> = Vec::new();
    if mode & 0x10 != 0 {
        headers.push(("authorization", authorization.as_bytes()));
    }
    let binary = mode & 0x20 != 0;
    if binary {
        headers.push(("content-type", b"application/octet-stream"));
    }
    let minted_body = mode & 0x40 != 0;
    let (body, response_key) = if minted_body {
        minted(rest, mode & 0x80 != 0)
    } else {
        (rest.to_vec(), None)
    };
    // A raw body that is a wrapper is answered under a response key only the wrapper knows.
    let wrapped_raw = !minted_body && String::from_utf8_lossy(&body).encode_utf16().count() == ENVELOPE_LEN;
    let body_len = body.len();
    let answer = operator().post("/v2/token/refresh", &headers, body);
    assert!(
        matches!(answer.status.as_u16(), 200 | 400),
        "refresh answered {} to a {body_len}-byte body",
        answer.status,
    );
    if answer.status.as_u16() != 200 || wrapped_raw {
        return;
    }
    let json = match &response_key {
        Some(key) => {
            let sealed = if binary {
                answer.body.clone()
            } else {
                uid2_protocol::base64::decode(&answer.body).expect("a sealed refresh answer is base64")
            };
            uid2_protocol::crypto::gcm_open(key, &sealed, &[]).expect("the answer opens with the response key")
        }
        None => answer.body.clone(),
    };
    let json: serde_json::Value = serde_json::from_slice(&json).expect("a 200 refresh answer is JSON");
    assert!(
        json["status"] == "success" || json["status"] == "optout",
        "a 200 refresh answer is a success or an opt-out"
    );
}

/// A refresh token under the bundled store's refresh key (102, the same secret as the vector
/// key) with fields from the input, unexpired at the operator's clock, optionally wrapped; and
/// the response key the answer must be sealed with.
fn minted(rest: &[u8], wrap: bool) -> (Vec<u8>, Option<SecretKey>) {
    let keys = TestKeys::new();
    let key = keys.secret(102).expect("key 102 is in the ring");
    let mut u = Unstructured::new(rest);
    let shape: u8 = value(&mut u);
    let now = uid2_fuzz::operator::NOW_MS;
    let token = RefreshToken {
        version: TokenVersion::V3,
        scope: IdentityScope::from_bit(u8::from(shape & 0x80 != 0 && shape & 0x40 != 0)),
        id_type: if shape & 1 == 0 {
            IdentityType::Email
        } else {
            IdentityType::Phone
        },
        key_id: 102,
        expires_ms: now + i64::from(value::<i32>(&mut u)),
        created_ms: value(&mut u),
        operator: OperatorIdentity::SERVICE,
        publisher: PublisherIdentity::site(match (shape >> 1) % 4 {
            0 => 999,
            1 => 123,
            2 => 2,
            _ => value(&mut u),
        }),
        privacy_bits: value(&mut u),
        established_ms: now - i64::from(value::<u32>(&mut u)) * 4_096,
        first_level_hash: array::<32>(&mut u),
    };
    let entropy = ScriptedEntropy::default();
    let inner = token.encode(key, &entropy);
    if !wrap {
        return (inner.into_bytes(), None);
    }
    let response_key = SecretKey::from_bytes(array::<32>(&mut u));
    let wrapped = refresh_envelope::seal(IdentityScope::Uid2, 102, key, &inner, &response_key, &entropy)
        .expect("a V3 refresh token always fits the wrapper");
    (wrapped.into_bytes(), Some(response_key))
}
