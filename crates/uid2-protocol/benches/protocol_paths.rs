//! The protocol's hot paths, one operation at a time, on one core:
//! - `identity`: DII → raw UID v2, as every token and map request does it: normalize (or decode
//!   the caller's hash), hash, first-level hash, pick the salt bucket, raw UID. The salt table
//!   has the production size (1,048,576 buckets) and 65,536 distinct inputs of each kind are
//!   cycled, so the bucket reads miss the caches as they do in production;
//! - `token`: advertising token (V4) and refresh token (V3 inside its 388-character envelope)
//!   issue and decode, with the operating system's randomness for IVs, as served;
//! - `envelope`: the v2 request envelope opened (base64, AES-GCM, JSON parse) and the response
//!   sealed (AES-GCM, base64), for a token-sized body and for a 5,000-hash identity map body
//!   (~300 KB);
//! - `sha256_floor`: raw SHA-256 of the two input sizes every identity hashes (see
//!   `measurement/floor.rs`).
//!
//! After the groups, a summary prints each identity path's time per identity, identities/s on
//! one core and its ratio to the SHA-256 floor, from the numbers of this same run.
//!
//! ```text
//! cargo bench -p uid2-protocol --bench protocol_paths
//! ```

mod measurement;

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use measurement::floor::Floor;
use measurement::{cycle, times, Tally};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use uid2_protocol::clock::{Clock, SystemClock};
use uid2_protocol::crypto::{sha256, SecretKey};
use uid2_protocol::entropy::OsEntropy;
use uid2_protocol::envelope::{self, client::seal_request};
use uid2_protocol::identity::{bucket_index, first_level_hash, raw_uid, Dii, IdentityScope, IdentityType};
use uid2_protocol::token::advertising::AdvertisingToken;
use uid2_protocol::token::refresh::RefreshToken;
use uid2_protocol::token::{privacy, refresh_envelope, KeyRing, OperatorIdentity, PublisherIdentity, TokenVersion};
use uid2_protocol::{base64, identity};

/// The first-level salt of the bundled local store: the real length (44) matters, the value not.
const FIRST_LEVEL_SALT: &str = "fOGY/aRE44peL23i+cE9MkJrzmEeNZZziNZBfq7qqk8=";
/// Distinct inputs per identity kind: far more bucket rows than the caches nearest the core hold.
const IDENTITIES: usize = 1 << 16;
/// Distinct tokens and envelopes to decode, so no decode repeats the previous input.
const TOKENS: usize = 1024;
/// An identity map request at the documented maximum batch.
const MAP_BATCH: usize = 5_000;

fn main() {
    let mut c = measurement::criterion();
    let tally = Tally::default();
    let floor = Floor::for_salts(FIRST_LEVEL_SALT.len(), 44);

    identity_paths(&mut c, &tally);
    tokens(&mut c, &tally);
    envelopes(&mut c, &tally);
    floor.bench(&mut c, &tally);
    c.final_summary();

    if measurement::measuring() {
        floor.print_ratios(
            "uid2-protocol: DII -> raw UID v2 (normalize, hash, first-level hash, bucket, raw UID)",
            &tally,
            &[
                ("identity/email_hash", tally.ns_per_op("email_hash")),
                ("identity/email", tally.ns_per_op("email")),
                ("identity/phone", tally.ns_per_op("phone")),
            ],
        );
        tally.print_all("uid2-protocol");
    }
}

/// `n` pseudo-random bytes per item, base64: salts as the salt file carries them.
fn base64_strings(rng: &mut StdRng, count: usize, bytes: usize) -> Vec<String> {
    let mut buf = vec![0u8; bytes];
    (0..count)
        .map(|_| {
            rng.fill_bytes(&mut buf);
            base64::encode(&buf)
        })
        .collect()
}

/// How a bench's input text is sent: as an email, an email hash or a phone.
type DiiOf = for<'a> fn(&'a str) -> Dii<'a>;

/// What every identity costs before its opt-out check: DII → first-level hash → bucket → raw UID.
fn raw_uid_of(dii: Dii<'_>, salts: &[String]) -> Option<[u8; 32]> {
    let identity = dii.to_identity()?;
    let flh = first_level_hash(&identity.hash, FIRST_LEVEL_SALT);
    let salt = salts.get(bucket_index(&flh, salts.len()))?;
    Some(raw_uid::v2(&flh, salt))
}

fn identity_paths(c: &mut Criterion, tally: &Tally) {
    let mut rng = StdRng::seed_from_u64(0x5EED_0001);
    let salts = base64_strings(&mut rng, identity::FULL_BUCKET_COUNT, 32);
    // Mixed case and one in four Gmail addresses with dots and a tag, so normalization does
    // its real work.
    let emails: Vec<String> = (0..IDENTITIES)
        .map(|i| match i % 4 {
            0 => format!("First.Last+news{i}@Gmail.com"),
            _ => format!("User.Name{i}@Example{}.com", i % 97),
        })
        .collect();
    let email_hashes: Vec<String> = emails
        .iter()
        .map(|e| {
            let hash = Dii::Email(e).to_identity().expect("valid email").hash;
            base64::encode(&hash)
        })
        .collect();
    let phones: Vec<String> = (0..IDENTITIES).map(|i| format!("+1{}", 2_000_000_000 + i)).collect();

    let mut group = c.benchmark_group("identity");
    group.throughput(Throughput::Elements(1));
    let kinds: [(&str, &[String], DiiOf); 3] = [
        ("email_hash", &email_hashes, |text| Dii::EmailHash(text)),
        ("email", &emails, |text| Dii::Email(text)),
        ("phone", &phones, |text| Dii::Phone(text)),
    ];
    for (id, inputs, dii) in kinds {
        assert!(
            inputs.iter().all(|text| raw_uid_of(dii(text), &salts).is_some()),
            "every {id} input maps"
        );
        tally.bench(&mut group, id, |iters| {
            cycle(inputs, iters, |text| {
                black_box(raw_uid_of(dii(black_box(text)), &salts));
            })
        });
    }
    group.finish();
}

/// Master (1), site (2) and refresh (3) keys, looked up by id as the decoders do.
struct Keys([SecretKey; 3]);

impl KeyRing for Keys {
    fn secret(&self, key_id: i32) -> Option<&SecretKey> {
        usize::try_from(key_id - 1).ok().and_then(|i| self.0.get(i))
    }
}

fn tokens(c: &mut Criterion, tally: &Tally) {
    let keys = Keys([1u8, 2, 3].map(|k| SecretKey::from_bytes([k; 32])));
    let [master, site, refresh] = &keys.0;
    let now = SystemClock.now_ms();
    let flh = sha256(&[b"someone@example.com"]);
    let advertising = AdvertisingToken {
        version: TokenVersion::V4,
        scope: IdentityScope::Uid2,
        id_type: IdentityType::Email,
        master_key_id: 1,
        expires_ms: now + 3_600_000,
        created_ms: now,
        operator: OperatorIdentity::SERVICE,
        site_key_id: 2,
        publisher: PublisherIdentity::site(999),
        privacy_bits: privacy::LEGACY,
        established_ms: now,
        refreshed_ms: now,
        raw_uid: raw_uid::v2(&flh, FIRST_LEVEL_SALT).to_vec(),
    };
    let refresh_token = RefreshToken {
        version: TokenVersion::V3,
        scope: IdentityScope::Uid2,
        id_type: IdentityType::Email,
        key_id: 3,
        expires_ms: now + 30 * 86_400_000,
        created_ms: now,
        operator: OperatorIdentity::SERVICE,
        publisher: PublisherIdentity::site(999),
        privacy_bits: privacy::LEGACY,
        established_ms: now,
        first_level_hash: flh,
    };
    // What generate and refresh hand out as `refresh_token`: the V3 token, sealed with a fresh
    // response key in the 388-character envelope.
    let issue_refresh = || {
        let inner = refresh_token.encode(refresh, &OsEntropy);
        let response_key = SecretKey::generate(&OsEntropy);
        refresh_envelope::seal(IdentityScope::Uid2, 3, refresh, &inner, &response_key, &OsEntropy)
            .expect("a V3 refresh token fills the envelope exactly")
    };
    let advertising_tokens: Vec<String> = (0..TOKENS)
        .map(|_| advertising.encode(master, site, &OsEntropy))
        .collect();
    let refresh_envelopes: Vec<String> = (0..TOKENS).map(|_| issue_refresh()).collect();
    let decode_refresh = |envelope: &str| {
        let opened = refresh_envelope::open(envelope, &keys).ok()?;
        RefreshToken::decode(&opened.refresh_token, &keys).ok()
    };
    assert!(AdvertisingToken::decode(&advertising_tokens[0], &keys).is_ok_and(|t| t == advertising));
    assert!(decode_refresh(&refresh_envelopes[0]).is_some_and(|t| t == refresh_token));

    let mut group = c.benchmark_group("token");
    group.throughput(Throughput::Elements(1));
    tally.bench(&mut group, "advertising_token_issue", |iters| {
        times(iters, || {
            black_box(black_box(&advertising).encode(master, site, &OsEntropy));
        })
    });
    tally.bench(&mut group, "advertising_token_decode", |iters| {
        cycle(&advertising_tokens, iters, |token| {
            black_box(AdvertisingToken::decode(black_box(token), &keys).ok());
        })
    });
    tally.bench(&mut group, "refresh_token_issue", |iters| {
        times(iters, || {
            black_box(issue_refresh());
        })
    });
    tally.bench(&mut group, "refresh_token_decode", |iters| {
        cycle(&refresh_envelopes, iters, |envelope| {
            black_box(decode_refresh(black_box(envelope)));
        })
    });
    group.finish();
}

/// `{"email_hash":[…]}` with `count` distinct base64 email hashes: an identity map request.
fn map_request_json(count: usize) -> String {
    let hashes: Vec<String> = (0..count)
        .map(|i| {
            format!(
                "\"{}\"",
                base64::encode(&sha256(&[format!("user{i}@example.com").as_bytes()]))
            )
        })
        .collect();
    format!(r#"{{"email_hash":[{}]}}"#, hashes.join(","))
}

/// An identity map v3 answer for `count` hashes, shaped as the operator writes it.
fn map_response_json(count: usize) -> String {
    let items: Vec<String> = (0..count)
        .map(|i| {
            let uid = base64::encode(&sha256(&[&i.to_be_bytes()]));
            format!(r#"{{"u":"{uid}","p":null,"r":1767225600}}"#)
        })
        .collect();
    format!(
        r#"{{"body":{{"email":[],"email_hash":[{}],"phone":[],"phone_hash":[]}},"status":"success"}}"#,
        items.join(",")
    )
}

/// A token generate answer: the sizes of its fields are what matter.
fn token_response_json() -> String {
    format!(
        r#"{{"body":{{"advertising_token":"{}","refresh_token":"{}","identity_expires":1767225600000,"refresh_expires":1769817600000,"refresh_from":1767222000000,"refresh_response_key":"{}"}},"status":"success"}}"#,
        "A".repeat(219),
        "R".repeat(388),
        "K".repeat(44)
    )
}

fn envelopes(c: &mut Criterion, tally: &Tally) {
    let secret = SecretKey::from_bytes([9; 32]);
    let now = SystemClock.now_ms();
    let nonce = [7u8; envelope::NONCE_LEN];
    let cases = [
        (
            "small",
            r#"{"email":"someone@example.com"}"#.to_owned(),
            token_response_json(),
        ),
        ("map_5000", map_request_json(MAP_BATCH), map_response_json(MAP_BATCH)),
    ];

    let mut group = c.benchmark_group("envelope");
    for (size, request_json, response_json) in &cases {
        // Base64 text, as the SDKs send by default.
        let body = base64::encode(&seal_request(&secret, now, &nonce, request_json.as_bytes(), &[1; 12]));
        let opened = envelope::open_request(body.as_bytes(), false, &secret, now).expect("opens");
        assert!(opened.payload.is_some());

        group.throughput(Throughput::Bytes(body.len() as u64));
        tally.bench(&mut group, &format!("open_{size}"), |iters| {
            times(iters, || {
                black_box(envelope::open_request(black_box(body.as_bytes()), false, &secret, now).ok());
            })
        });
        group.throughput(Throughput::Bytes(response_json.len() as u64));
        tally.bench(&mut group, &format!("seal_{size}"), |iters| {
            times(iters, || {
                let sealed =
                    envelope::seal_response(&secret, now, &nonce, black_box(response_json.as_bytes()), &OsEntropy);
                black_box(base64::encode(&sealed));
            })
        });
    }
    group.finish();
}
