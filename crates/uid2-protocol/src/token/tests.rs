//! Known-answer vectors from `tokens.md` §8.8, §8.9, §8.11 and §8.12: tokens produced by the
//! reference encoder with pinned IVs ([run-op]), real operator output ([repo] + [dec]) and the
//! refresh envelope ([derived]).

use std::collections::HashMap;

use super::advertising::{encode_v2, AdvertisingToken};
use super::refresh::{self, RefreshToken};
use super::refresh_envelope::{self, EnvelopeError};
use super::*;
use crate::entropy::ScriptedEntropy;
use crate::identity::raw_uid::{self, BucketKey};
use crate::identity::{first_level_hash, Dii, IdentityEnvironment, IdentityScope, IdentityType};

struct Keys(HashMap<i32, SecretKey>);

impl Keys {
    fn hex(pairs: &[(i32, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(id, h)| {
                    (
                        *id,
                        SecretKey::from_slice(&hex::decode(h).expect("hex")).expect("32 bytes"),
                    )
                })
                .collect(),
        )
    }

    fn get(&self, id: i32) -> &SecretKey {
        self.0.get(&id).expect("test key present")
    }
}

impl KeyRing for Keys {
    fn secret(&self, key_id: i32) -> Option<&SecretKey> {
        self.0.get(&key_id)
    }
}

const MASTER: i32 = 101;
const REFRESH: i32 = 102;
const SITE: i32 = 104;

fn operator_keys() -> Keys {
    Keys::hex(&[
        (
            MASTER,
            "bcf7502283759d3c17210a07e3f19c1ce01cb7bca6cab1942973508609aaf84f",
        ),
        (
            REFRESH,
            "460cb190fe323f581884220dabb3bd3f133a8d7f9eb4fa92425b99c63075686f",
        ),
        (SITE, "6d56593b00ae3b47d47f63fa0abc1a636ddeacc12b55088c906829cb638c4b17"),
        (103, "736c8c61e7b31df0ef67a85a9270856a3d2df9e004269fc2fee87e7d4026d5fa"),
    ])
}

const ESTABLISHED: i64 = 1_700_000_000_123;
const NOW: i64 = 1_700_000_100_456;
const TOKEN_EXPIRES: i64 = NOW + 259_200_000;
const REFRESH_EXPIRES: i64 = NOW + 2_592_000_000;

fn gcm_ivs() -> ScriptedEntropy {
    ScriptedEntropy::new([
        hex::decode("000102030405060708090a0b").expect("hex"),
        hex::decode("101112131415161718191a1b").expect("hex"),
    ])
}

fn flh_test_example() -> [u8; 32] {
    let identity = Dii::Email("test@example.com").to_identity().expect("valid");
    first_level_hash(&identity.hash, "first-level-salt")
}

fn token(version: TokenVersion, scope: IdentityScope, id_type: IdentityType, raw_uid: Vec<u8>) -> AdvertisingToken {
    AdvertisingToken {
        version,
        scope,
        id_type,
        master_key_id: MASTER,
        expires_ms: TOKEN_EXPIRES,
        created_ms: NOW,
        operator: OperatorIdentity::SERVICE,
        site_key_id: SITE,
        publisher: PublisherIdentity::site(123),
        privacy_bits: privacy::LEGACY,
        established_ms: ESTABLISHED,
        refreshed_ms: NOW,
        raw_uid,
    }
}

fn encode(t: &AdvertisingToken) -> String {
    let keys = operator_keys();
    t.encode(keys.get(MASTER), keys.get(SITE), &gcm_ivs())
}

fn assert_round_trip(text: &str, expected: &AdvertisingToken) {
    let decoded = AdvertisingToken::decode(text, &operator_keys()).expect("vector decodes");
    assert!(decoded == *expected, "decoded {decoded:?} differs from {expected:?}");
}

#[test]
fn ad_v4_with_raw_v4() {
    let raw = raw_uid::v4(
        IdentityScope::Uid2,
        IdentityType::Email,
        IdentityEnvironment::Prod,
        &flh_test_example(),
        BucketKey {
            id: 1_000_000,
            key: "key12345key12345key12345key12345",
            salt: "salt1234salt1234salt1234salt1234",
        },
    )
    .expect("valid key");
    let t = token(TokenVersion::V4, IdentityScope::Uid2, IdentityType::Email, raw.to_vec());
    let text = encode(&t);
    let expected_hex = "038000000065101112131415161718191a1bb61f551cdf320dc547e8739e73c01380805b7d6f97bd2b2836e194e6ced8f0e65d3c53488710c2dba789ce2b9a26425c376342a96f651efff32551d9dc284e5ac95dc9223325781b5a836498fab52efff9282e94f416312085d70d5cdc24d9e0b6b9c693f7de7e223a66a68f7992a402798d707cf60ce02d0f56d8afe865d7efd0a0293cef9ae3a64c2f1a035d640050a40c";
    assert_eq!(
        hex::encode(crate::base64::decode_url(&text).expect("url b64")),
        expected_hex
    );
    assert_eq!(text, "A4AAAABlEBESExQVFhcYGRobth9VHN8yDcVH6HOec8ATgIBbfW-XvSsoNuGU5s7Y8OZdPFNIhxDC26eJziuaJkJcN2NCqW9lHv_zJVHZ3ChOWsldySIzJXgbWoNkmPq1Lv_5KC6U9BYxIIXXDVzcJNngtrnGk_fefiI6ZqaPeZKkAnmNcHz2DOAtD1bYr-hl1-_QoCk875rjpkwvGgNdZABQpAw");
    assert_eq!(text.len(), 219);
    assert_round_trip(&text, &t);
}

fn raw_v2_test_example() -> [u8; 32] {
    raw_uid::v2(&flh_test_example(), "salt123")
}

#[test]
fn ad_v4_and_v3_with_raw_v3() {
    let raw = raw_uid::v3(IdentityScope::Uid2, IdentityType::Email, &raw_v2_test_example()).to_vec();
    let v4 = token(TokenVersion::V4, IdentityScope::Uid2, IdentityType::Email, raw.clone());
    let text = encode(&v4);
    assert_eq!(text, "A4AAAABlEBESExQVFhcYGRobth9VHN8yDcVH6HOec8ATgIBbfW-XvSsoNuGU5s7Y8OZdPFNIhxDC26eJziuaJkJcN2NCqW9lHv_zJVHZ3ChOWsldySIzJXgbWoNkmPq1Lv_5iOVYjclSz4BXl86UTI86kNlx8EgFCkQUVKBca5N10wIXBUGBNPAtRvrXAhETkmTFQl14t2FxGfy2lKcqZFndMHg");
    assert_round_trip(&text, &v4);

    let v3 = token(TokenVersion::V3, IdentityScope::Uid2, IdentityType::Email, raw);
    let text = encode(&v3);
    assert_eq!(text, "A3AAAABlEBESExQVFhcYGRobth9VHN8yDcVH6HOec8ATgIBbfW+XvSsoNuGU5s7Y8OZdPFNIhxDC26eJziuaJkJcN2NCqW9lHv/zJVHZ3ChOWsldySIzJXgbWoNkmPq1Lv/5iOVYjclSz4BXl86UTI86kNlx8EgFCkQUVKBca5N10wIXBUGBNPAtRvrXAhETkmTFQl14t2FxGfy2lKcqZFndMHg=");
    assert_eq!(text.len(), 220);
    assert_round_trip(&text, &v3);
}

#[test]
fn ad_v4_with_raw_v2_reports_uid2_email() {
    let raw = raw_v2_test_example().to_vec();
    let t = token(TokenVersion::V4, IdentityScope::Uid2, IdentityType::Email, raw);
    let text = encode(&t);
    assert_eq!(text, "A4AAAABlEBESExQVFhcYGRobth9VHN8yDcVH6HOec8ATgIBbfW-XvSsoNuGU5s7Y8OZdPFNIhxDC26eJziuaJkJcN2NCqW9lHv_zJVHZ3ChOWsldySIzJXgbWoNkmPq1Lv_5TK_vDf7j36mHiUPoqFkNRcoCmBRnEuE8z7Gy5dRbmuww6vyEzeHEKOwTuvfAHHW9YMDR8POWDPddYET9aoIJow");
    assert_eq!(crate::base64::decode_url(&text).expect("b64").len(), 163);
    assert_round_trip(&text, &t);
}

#[test]
fn ad_v4_euid_phone_cstg() {
    let phone = Dii::Phone("+12345678901").to_identity().expect("valid");
    let v2 = raw_uid::v2(&first_level_hash(&phone.hash, "first-level-salt"), "salt123");
    let raw = raw_uid::v3(IdentityScope::Euid, IdentityType::Phone, &v2).to_vec();
    assert_eq!(hex::encode(&raw[..4]), "145fe2fe");
    let mut t = token(TokenVersion::V4, IdentityScope::Euid, IdentityType::Phone, raw);
    t.privacy_bits = privacy::CSTG;
    let text = encode(&t);
    assert_eq!(text, "F4AAAABlEBESExQVFhcYGRobth9VHN8yDcVH6HOec8ATgIBbfW-XvSsoNuGU5s7Y8OZdPFNIhxDC26eJziuaJkJcN2NCqW9lHv_zJVHZ3ChOWstdySIzJXgbWoNkmPq1Lv_5nH40SqsXbkoa5W5sx1-HjD_JrZ8iBcvm6Fh9q2HxzInB_bz9SyKxUQsYzUoHMhGgLPBTttwuNTO__uIJxHvia0k");
    assert_round_trip(&text, &t);
}

#[test]
fn ad_v2_legacy() {
    let raw = raw_v2_test_example().to_vec();
    let t = token(TokenVersion::V2, IdentityScope::Uid2, IdentityType::Email, raw);
    let keys = operator_keys();
    let ivs = ScriptedEntropy::new([
        hex::decode("000102030405060708090a0b0c0d0e0f").expect("hex"),
        hex::decode("101112131415161718191a1b1c1d1e1f").expect("hex"),
    ]);
    let text = encode_v2(&t, keys.get(MASTER), keys.get(SITE), &ivs);
    assert_eq!(text, "AgAAAGUQERITFBUWFxgZGhscHR4fDpv0wAT2yUjZjc1bteHSwjvy1qexYlk2OIr1wNzj6Fqycxscg2L2xOxuXWeNAS82UdOAqwDaSbVyNpuffYjNZF9FRRUZjHZzrvb2xzJL09L3GRRFeU/RFvVI+etw/HyDRO/nG7XTzSjsDlLUjRuMvg==");
    let decoded = AdvertisingToken::decode(&text, &keys).expect("decodes");
    assert_eq!(decoded.version, TokenVersion::V2);
    assert_eq!(decoded.raw_uid, t.raw_uid);
    assert_eq!(decoded.expires_ms, TOKEN_EXPIRES);
    assert_eq!(decoded.created_ms, ESTABLISHED, "V2 reports established as created");
    assert_eq!(decoded.publisher.site_id, 123);
    assert_eq!(decoded.site_key_id, SITE);
    assert_eq!(decoded.privacy_bits, 1);
}

fn refresh_token() -> RefreshToken {
    RefreshToken {
        version: TokenVersion::V3,
        scope: IdentityScope::Uid2,
        id_type: IdentityType::Email,
        key_id: REFRESH,
        expires_ms: REFRESH_EXPIRES,
        created_ms: NOW,
        operator: OperatorIdentity::SERVICE,
        publisher: PublisherIdentity::site(123),
        privacy_bits: privacy::LEGACY,
        established_ms: ESTABLISHED,
        first_level_hash: flh_test_example(),
    }
}

const RT_V3: &str = "A3AAAABmICEiIyQlJicoKSorOv7SxXEnhnYRFCHqnupRWrtUx/fFjOb5sAP6pNQGj4yYOHxIrlo4X8XIccTYChQH31Bmo6jRili71AL423zLEUK7zEBLYeW0EK9YFjeZ1ieNJfZKu7ZoqRLE9xGU6Ny1ExGcCLj6NSseQg==";

#[test]
fn refresh_v3() {
    let keys = operator_keys();
    let rt = refresh_token();
    let ivs = ScriptedEntropy::new([hex::decode("202122232425262728292a2b").expect("hex")]);
    let text = rt.encode(keys.get(REFRESH), &ivs);
    assert_eq!(text, RT_V3);
    assert_eq!(text.len(), 168);
    assert!(RefreshToken::decode(&text, &keys).expect("decodes") == rt);
}

#[test]
fn refresh_v2_legacy() {
    let keys = operator_keys();
    let mut rt = refresh_token();
    rt.version = TokenVersion::V2;
    let ivs = ScriptedEntropy::new([hex::decode("202122232425262728292a2b2c2d2e2f").expect("hex")]);
    let text = refresh::encode_v2(&rt, keys.get(REFRESH), &ivs);
    assert_eq!(text, "AgAAAYvP5vBoAAABjGpluGgAAAGMamaiyAAAAGYgISIjJCUmJygpKissLS4vBmamWzHNmH00FWRqP6sCxgP2/JmlN+UyUWsnLmIBRFwdc4MrhubDx81997tEZKkyDXy4wVUbtVuJn9/vrmbEs8/LBYID8ffyXCYjXq0301c=");
    let decoded = RefreshToken::decode(&text, &keys).expect("decodes");
    assert_eq!(decoded.expires_ms, REFRESH_EXPIRES + refresh::V2_VALID_TILL_GRACE_MS);
    assert_eq!(decoded.first_level_hash, rt.first_level_hash);
    assert_eq!(decoded.version, TokenVersion::V2);
    assert_eq!(decoded.publisher.site_id, 123);
}

/// Found by the `refresh` fuzz target: byte 1 is tested for V3 before byte 0 for V2, as in the
/// reference's `decodeRefreshToken`, so a legacy V2 token whose creation time has 0x70 as its
/// top byte (year 250 million, never issued) is read as V3 and refused rather than decoded.
#[test]
fn refresh_v2_with_byte1_0x70_is_read_as_v3() {
    let keys = operator_keys();
    let mut rt = refresh_token();
    rt.version = TokenVersion::V2;
    rt.created_ms = 0x7073_6572_5f68_7365;
    let text = refresh::encode_v2(&rt, keys.get(REFRESH), &ScriptedEntropy::default());
    let bytes = crate::base64::decode(&text).expect("base64");
    assert_eq!((bytes[0], bytes[1]), (TokenVersion::V2_BYTE, TokenVersion::V3_BYTE));
    assert_eq!(RefreshToken::decode(&text, &keys).err(), Some(InvalidToken));
}

#[test]
fn refresh_envelope_derived_vector() {
    let keys = operator_keys();
    let response_key = SecretKey::from_bytes(core::array::from_fn(|i| 0x40 + i as u8));
    assert_eq!(response_key.to_base64(), "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=");
    let ivs = ScriptedEntropy::new([hex::decode("303132333435363738393a3b").expect("hex")]);
    let text = refresh_envelope::seal(
        IdentityScope::Uid2,
        REFRESH,
        keys.get(REFRESH),
        RT_V3,
        &response_key,
        &ivs,
    )
    .expect("388 characters");
    assert_eq!(text, "AAAAAGYwMTIzNDU2Nzg5Ojv8RcoyzjlefmhRDsarNjaPaH+8LIp0fWJlCP0lsggkrUBGdkALQXHRWgAmDQOSQ3kuzYEhKNEVUlSvMlaZJotZtmMgD5ytsQADDP7TegdNVGflr9x/S5ZovTHP/PjlucHmIMVXliMpPfqxpb/wU0aYqtmE2vn4x3yAg+tebq+s9l0K/wRK63EjYJ6dvSLjVnosHswTGWkU3gC+BxyZnmqfSuCrY/ZwncB8tEaRUbLJ8zdnslKhIGzsl/FqaoRAAgzOIbzXGNrCOIvHJCLohfixhCC90Bx4S7fIUA69aS/AnsTwINH7AKk35lqZDBSz0vMYkoT/O5hWsbiJYtgFA7ZfqGyC5tptHwpt1i7oD0xEu6IU");
    let opened = refresh_envelope::open(&text, &keys).expect("opens");
    assert_eq!(opened.refresh_token, RT_V3);
    assert_eq!(opened.response_key, response_key);
}

#[test]
fn refresh_envelope_errors() {
    let keys = operator_keys();
    let response_key = SecretKey::from_bytes([1; 32]);
    let sealed = refresh_envelope::seal(
        IdentityScope::Euid,
        REFRESH,
        keys.get(REFRESH),
        RT_V3,
        &response_key,
        &gcm_ivs(),
    )
    .expect("388");
    assert!(sealed.starts_with("EAAAAGY"), "EUID scope byte 0x10");

    let not_b64 = "%".repeat(388);
    assert_eq!(
        refresh_envelope::open(&not_b64, &keys).err(),
        Some(EnvelopeError::NotBase64)
    );

    let mut unknown = crate::base64::decode(&sealed).expect("b64");
    unknown[1..5].copy_from_slice(&7777i32.to_be_bytes());
    let err = refresh_envelope::open(&crate::base64::encode(&unknown), &keys).err();
    assert_eq!(err, Some(EnvelopeError::UnknownKey(7777)));
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("Invalid key: Generator of this token (Key ID: 7777) does not exist.")
    );

    let mut tampered = crate::base64::decode(&sealed).expect("b64");
    tampered[100] ^= 1;
    assert_eq!(
        refresh_envelope::open(&crate::base64::encode(&tampered), &keys).err(),
        Some(EnvelopeError::Decrypt)
    );

    // Well-sealed JSON of the wrong shape.
    let bad_json = crate::crypto::gcm_seal(keys.get(REFRESH), br#"{"refresh_token":1}"#, &[], &gcm_ivs());
    let mut body = vec![0u8];
    body.extend_from_slice(&REFRESH.to_be_bytes());
    body.extend_from_slice(&bad_json);
    assert_eq!(
        refresh_envelope::open(&crate::base64::encode(&body), &keys).err(),
        Some(EnvelopeError::Format)
    );

    // A response key without an inner token opens, with an empty (so invalid) inner token.
    let no_token = format!(r#"{{"refresh_response_key":"{}"}}"#, response_key.to_base64());
    let sealed = crate::crypto::gcm_seal(keys.get(REFRESH), no_token.as_bytes(), &[], &gcm_ivs());
    let mut body = vec![0u8];
    body.extend_from_slice(&REFRESH.to_be_bytes());
    body.extend_from_slice(&sealed);
    let opened = refresh_envelope::open(&crate::base64::encode(&body), &keys).expect("opens");
    assert_eq!(opened.refresh_token, "");
    assert!(RefreshToken::decode(&opened.refresh_token, &keys).is_err());

    let too_long = "A".repeat(200);
    assert_eq!(
        refresh_envelope::seal(
            IdentityScope::Uid2,
            REFRESH,
            keys.get(REFRESH),
            &too_long,
            &response_key,
            &gcm_ivs()
        )
        .err(),
        Some(EnvelopeError::WrongLength)
    );
}

/// `tokens.md` §8.8: the SDKs' cross-platform V4 token (byte 0 is `0x00`, without the `|3` bits).
#[test]
fn sdk_cross_platform_token() {
    let keys = Keys::hex(&[
        (164, "8b25f1ad125c24e8a5a8171226c37b5ca088b9285bada5dda810a9a4268b089b"),
        (165, "20fb07c2849afa56ca74681d83c08bd730a40b41e26ea70e6c33fe7d41181785"),
    ]);
    let text = "AIAAAACkOqJj9VoxXJNnuX3v-ymceRf8_Av0vA5asOj9YBZJc1kV1vHdmb0AIjlzWnFF-gxIlgXqhRFhPo3iXpugPBl3gv4GKnGkw-Zgm2QqMsDPPLpMCYiWrIUqHPm8hQiq9PuTU-Ba9xecRsSIAN0WCwKLwA_EDVdzmnLJu64dQoeYmuu3u1G2EuTkuMrevmP98tJqSUePKwnfK73-0Zdshw";
    let t = AdvertisingToken::decode(text, &keys).expect("decodes");
    assert_eq!(t.version, TokenVersion::V4);
    assert_eq!(t.master_key_id, 164);
    assert_eq!(t.expires_ms, 2_303_254_861_000);
    assert_eq!(t.created_ms, 1_672_534_861_000);
    assert_eq!(t.operator, OperatorIdentity::SERVICE);
    assert_eq!(t.site_key_id, 165);
    assert_eq!(t.publisher, PublisherIdentity::site(9000));
    assert_eq!(t.privacy_bits, 0);
    assert_eq!(t.established_ms, 1_672_531_261_000);
    assert_eq!(t.refreshed_ms, 1_672_534_861_000);
    assert_eq!(
        crate::base64::encode(&t.raw_uid),
        "ywsvDNINiZOVSsfkHpLpSJzXzhr6Jx9Z/4Q0+lsEUvM="
    );
}

/// `tokens.md` §8.9: a real local operator's generate and refresh output from 2022, decrypted
/// with the historic test keys: a V2 token, the wrapper, and its inner V2 refresh token.
#[test]
fn real_operator_output_2022() {
    let keys = Keys::hex(&[
        (3, "da6e263464c4c5712aec8a0807a6692910763667463f682b86cb87b0a8b388a4"),
        (2, "460cb190fe323f581884220dabb3bd3f133a8d7f9eb4fa92425b99c63075686f"),
        (4, "736c8c61e7b31df0ef67a85a9270856a3d2df9e004269fc2fee87e7d4026d5fa"),
    ]);
    let ad = "AgAAAAN6QZRCFTau+sfOlMMUY2ftElFMq2TCrcu1EAaD9WmEfoT2BWm2ZKz1tumbT00tWLffRDQ/9POXfA0O/Ljszn7FLtG5EzTBM3HYs4f5irkqeEvu38DhVCxUEpI+gZZZkynRap1oYx6AmC/ip3rk+7pmqa3r3saDs1mPRSSTm+Nh6A==";
    let t = AdvertisingToken::decode(ad, &keys).expect("decodes");
    assert_eq!((t.version, t.master_key_id, t.site_key_id), (TokenVersion::V2, 3, 2));
    assert_eq!(t.expires_ms, 1_668_059_799_628);
    assert_eq!(t.publisher.site_id, 6);
    assert_eq!(
        crate::base64::encode(&t.raw_uid),
        "DV+U/c/kb0a+sME2zDkOvz2EiIBo5q83UxaRJKmVqIs="
    );
    assert_eq!(t.privacy_bits, 1);
    assert_eq!(t.established_ms, 1_668_056_199_628);

    let wrapper = "AAAAAARomrP3NjjH+8mt5djfTHbmRZXjOMnAN8WpjJoe30AhUCvYksO/xoDSj77GzWv4M99DhnPl2cVco8CZFTcE10nauXI4Barr890ILnH0IIacOei5Zjwh6DycFkoXkAAuHY1zjmxb7niGLfSP2RctWkZdRVGWQv/UW/grw6+paU9bnKEWPzVvLwwdW2NgjDKu+szE6A+b5hkY+I3voKoaz8/kLDmX8ddJGLy/YOh/LIveBspSAvEg+v89OuUCwAqm8L3Rt8PxDzDnt0U4Na+AUawvvfsIhmsn/zMpRRks6GHhIAB/EQUHID8TedU8Hv1WFRsiraG9Dfn1Kc5/uYnDJhEagWc+7RgTGT+U5GqI6+afrAl5091eBLbmvXnXn9ts";
    assert_eq!(wrapper.len(), refresh_envelope::ENVELOPE_LEN);
    let opened = refresh_envelope::open(wrapper, &keys).expect("opens");
    assert_eq!(
        opened.response_key.to_base64(),
        "P941vVeuyjaDRVnFQ8DPd0AZnW4bPeiJPXER2K9QXcU="
    );
    let rt = RefreshToken::decode(&opened.refresh_token, &keys).expect("inner V2 decodes");
    assert_eq!(rt.version, TokenVersion::V2);
    assert_eq!(rt.created_ms, 1_668_056_199_628);
    assert_eq!(rt.expires_ms, 1_668_142_659_628, "valid-till is the V2 expiry");
    assert_eq!(rt.key_id, 4);
    assert_eq!(rt.publisher.site_id, 6);
    assert_eq!(
        crate::base64::encode(&rt.first_level_hash),
        "N9nj64ZkdWpHpQK/dp7V4SagjmXPmefhrQoBFR0gPJ0="
    );
    assert_eq!(rt.privacy_bits, 1);
    assert_eq!(rt.established_ms, 1_668_056_199_628);

    let refreshed = "AgAAAANVKWUKoXWL9OdHdxoEhRlHC9BEJucY44HF3RmJHlXzjEJ/nvySkVFeRbo3W/2Mpe9qi4haYz6psljI6ZwUq8n6jPyAR0WK5LDrTxUPibeaV9aZJoa6gNCKfJ/Z8tZtG/iWUbZkkDPmJiF7LTxqB1TQX0UvtLDbDbewsa+b+PJgEw==";
    let t2 = AdvertisingToken::decode(refreshed, &keys).expect("decodes");
    assert_eq!(t2.raw_uid, t.raw_uid);
    assert_eq!(t2.established_ms, t.established_ms);
    assert_eq!(t2.expires_ms, 1_668_065_878_329);
}

#[test]
fn decoders_reject_garbage_without_panicking() {
    let keys = operator_keys();
    let good = encode(&token(
        TokenVersion::V4,
        IdentityScope::Uid2,
        IdentityType::Email,
        raw_v2_test_example().to_vec(),
    ));
    let mut cases: Vec<String> = vec![
        String::new(),
        "A".into(),
        "AAA".into(),
        "AAAA".into(),
        "A4AA".into(),
        "Ag==".into(),
        "A3AAAA".into(),
        "////////".into(),
        "é€€€€".into(),
        good[..good.len() - 1].to_string(),
        good.replace('-', "+"),
    ];
    for cut in [6, 10, 30, 60, 120, 200] {
        cases.push(good[..cut].to_string());
    }
    for case in &cases {
        assert!(AdvertisingToken::decode(case, &keys).is_err(), "{case:?}");
        assert!(RefreshToken::decode(case, &keys).is_err(), "{case:?}");
    }
    // A token under a key the ring does not hold.
    assert!(AdvertisingToken::decode(&good, &Keys(HashMap::new())).is_err());
}

#[test]
fn header_scope_must_match_a_33_byte_raw_uid() {
    let raw = raw_uid::v3(IdentityScope::Euid, IdentityType::Email, &raw_v2_test_example()).to_vec();
    let t = token(TokenVersion::V4, IdentityScope::Uid2, IdentityType::Email, raw);
    assert!(AdvertisingToken::decode(&encode(&t), &operator_keys()).is_err());
}
