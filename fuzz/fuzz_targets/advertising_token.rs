//! Advertising token decoding (`AdvertisingToken::decode`: V2, V3, V4) and its encoders.
//!
//! Keys: the vector keys of `uid2_fuzz::keys` (the §8.9 and §8.11 tokens in the seed corpus
//! decrypt). Modes:
//! - `wire` (0): the rest is a token as a caller sends it. Whatever decodes must re-encode (same
//!   version, same keys) and decode to the same token.
//! - `fields` (1): a token built from the input is encoded and decoded: V3/V4 come back equal
//!   when the raw UID is 32 bytes (reported as UID2 email, as the reference does) or 33 bytes
//!   whose first byte agrees with the header's scope and type, and are refused otherwise; V2
//!   comes back with what V2 carries.
//! - `payload` (2) and `legacy_payload` (3): the input is the plaintext inside valid V3/V4 GCM
//!   layers or V2 CBC layers, so the parsing behind the MAC is reached; what decodes round-trips.
#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use uid2_fuzz::keys::TestKeys;
use uid2_fuzz::{array, mode, value};
use uid2_protocol::crypto::{cbc_seal_with_iv, gcm_seal_with_iv, SecretKey};
use uid2_protocol::entropy::ScriptedEntropy;
use uid2_protocol::identity::{token_prefix_byte, IdentityScope, IdentityType};
use uid2_protocol::token::advertising::{encode_v2, AdvertisingToken};
use uid2_protocol::token::{KeyRing, OperatorIdentity, PublisherIdentity, TokenVersion};

fuzz_target!(|data: &[u8]| {
    let keys = TestKeys::new();
    let (mode, rest) = mode(data);
    match mode % 4 {
        0 => wire(&keys, rest),
        1 => fields(&keys, rest),
        2 => payload(&keys, rest),
        _ => legacy_payload(&keys, rest),
    }
});

fn wire(keys: &TestKeys, rest: &[u8]) {
    let text = String::from_utf8_lossy(rest);
    if let Ok(token) = AdvertisingToken::decode(&text, keys) {
        round_trip(keys, &token);
    }
}

/// Re-encodes a decoded token with the keys it names and checks it decodes to itself.
fn round_trip(keys: &TestKeys, token: &AdvertisingToken) {
    let master = keys
        .secret(token.master_key_id)
        .expect("a decoded token names a known master key");
    let site = keys
        .secret(token.site_key_id)
        .expect("a decoded token names a known site key");
    let text = encode(token, master, site);
    let again = AdvertisingToken::decode(&text, keys).expect("a re-encoded token decodes");
    assert!(again == *token, "decode(encode(t)) == t for {token:?}");
}

fn encode(token: &AdvertisingToken, master: &SecretKey, site: &SecretKey) -> String {
    let entropy = ScriptedEntropy::default();
    match token.version {
        TokenVersion::V2 => encode_v2(token, master, site, &entropy),
        _ => token.encode(master, site, &entropy),
    }
}

fn scope_of(byte: u8) -> IdentityScope {
    IdentityScope::from_bit(byte)
}

fn type_of(byte: u8) -> IdentityType {
    if byte & 1 == 0 {
        IdentityType::Email
    } else {
        IdentityType::Phone
    }
}

fn fields(keys: &TestKeys, rest: &[u8]) {
    let mut u = Unstructured::new(rest);
    let shape: u8 = value(&mut u);
    let version = match shape % 3 {
        0 => TokenVersion::V2,
        1 => TokenVersion::V3,
        _ => TokenVersion::V4,
    };
    let (master_key_id, master) = keys.pick(value(&mut u));
    let (site_key_id, site) = keys.pick(value(&mut u));
    let raw_len = match (shape >> 2) % 4 {
        0 => 32,
        1 => 33,
        _ => usize::from(value::<u8>(&mut u) % 48),
    };
    let token = AdvertisingToken {
        version,
        scope: scope_of(shape >> 4),
        id_type: type_of(shape >> 5),
        master_key_id,
        expires_ms: value(&mut u),
        created_ms: value(&mut u),
        operator: OperatorIdentity {
            site_id: value(&mut u),
            operator_type: value(&mut u),
            version: value(&mut u),
            key_id: value(&mut u),
        },
        site_key_id,
        publisher: PublisherIdentity {
            site_id: value(&mut u),
            publisher_id: value(&mut u),
            client_key_id: value(&mut u),
        },
        privacy_bits: value(&mut u),
        established_ms: value(&mut u),
        refreshed_ms: value(&mut u),
        raw_uid: u
            .bytes(raw_len)
            .map(<[u8]>::to_vec)
            .unwrap_or_else(|_| vec![0; raw_len]),
    };
    let decoded = AdvertisingToken::decode(&encode(&token, master, site), keys);

    let expected = match token.version {
        TokenVersion::V2 => Some(AdvertisingToken {
            scope: IdentityScope::Uid2,
            id_type: IdentityType::Email,
            created_ms: token.established_ms,
            operator: OperatorIdentity::SERVICE,
            publisher: PublisherIdentity::site(token.publisher.site_id),
            refreshed_ms: token.established_ms,
            ..token.clone()
        }),
        _ => match token.raw_uid.len() {
            32 => Some(AdvertisingToken {
                scope: IdentityScope::Uid2,
                id_type: IdentityType::Email,
                ..token.clone()
            }),
            33 => {
                let header = token_prefix_byte(token.scope, token.id_type);
                let inner = token.raw_uid[0];
                let agree = IdentityScope::from_bit(header >> 4) == IdentityScope::from_bit(inner >> 4)
                    && IdentityType::from_prefix_byte(inner) == Some(token.id_type);
                agree.then(|| token.clone())
            }
            _ => None,
        },
    };
    match (decoded, expected) {
        (Ok(got), Some(want)) => assert!(got == want, "decode(encode(t)) for {token:?}"),
        (Err(_), None) => {}
        (got, want) => panic!(
            "{token:?} (raw UID {} bytes): decoded {}, expected {}",
            token.raw_uid.len(),
            got.is_ok(),
            want.is_some()
        ),
    }
}

fn payload(keys: &TestKeys, rest: &[u8]) {
    let mut u = Unstructured::new(rest);
    let prefix: u8 = value(&mut u);
    let v4: bool = value(&mut u);
    let (master_key_id, master) = keys.pick(value(&mut u));
    let (site_key_id, site) = keys.pick(value(&mut u));
    // expires ‖ created ‖ operator (13), then the site key id, then the sealed site payload.
    let header = array::<29>(&mut u);
    let site_plain = u.take_rest();

    let mut master_plain = header.to_vec();
    master_plain.extend_from_slice(&site_key_id.to_be_bytes());
    master_plain.extend_from_slice(&gcm_seal_with_iv(site, &[1; 12], site_plain, &[]));
    let mut bytes = vec![
        prefix,
        if v4 {
            TokenVersion::V4_BYTE
        } else {
            TokenVersion::V3_BYTE
        },
    ];
    bytes.extend_from_slice(&master_key_id.to_be_bytes());
    bytes.extend_from_slice(&gcm_seal_with_iv(master, &[2; 12], &master_plain, &[]));
    let text = if v4 {
        uid2_protocol::base64::encode_url(&bytes)
    } else {
        uid2_protocol::base64::encode(&bytes)
    };
    if let Ok(token) = AdvertisingToken::decode(&text, keys) {
        assert_eq!(token.raw_uid, site_plain.get(36..).unwrap_or_default());
        round_trip(keys, &token);
    }
}

fn legacy_payload(keys: &TestKeys, rest: &[u8]) {
    let mut u = Unstructured::new(rest);
    let (master_key_id, master) = keys.pick(value(&mut u));
    let (site_key_id, site) = keys.pick(value(&mut u));
    let expires = array::<8>(&mut u);
    let identity_plain = u.take_rest();

    let mut master_plain = expires.to_vec();
    master_plain.extend_from_slice(&site_key_id.to_be_bytes());
    master_plain.extend_from_slice(&cbc_seal_with_iv(site, &[3; 16], identity_plain));
    let mut bytes = vec![TokenVersion::V2_BYTE];
    bytes.extend_from_slice(&master_key_id.to_be_bytes());
    bytes.extend_from_slice(&cbc_seal_with_iv(master, &[4; 16], &master_plain));
    if let Ok(token) = AdvertisingToken::decode(&uid2_protocol::base64::encode(&bytes), keys) {
        assert_eq!(token.version, TokenVersion::V2);
        round_trip(keys, &token);
    }
}
