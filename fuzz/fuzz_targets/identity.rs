//! Identity normalization and hashing (`uid2_protocol::identity`): what every token and identity
//! map request does with the caller's email, phone or hash.
//!
//! The mode byte picks which kind of identity the rest (as UTF-8, lossily) is sent as, and the
//! salt bucket count to index with. Invariants:
//! - email normalization gives `local@domain` with a non-empty local part and domain, no `A`–`Z`,
//!   no space in the local part and none at the end, and is idempotent; for `gmail.com` the
//!   local part has no `.` or `+`;
//! - a phone is accepted exactly when it is `+` and 10 to 15 ASCII digits;
//! - a hash input is 44 characters of base64 (decoded as `base64::decode` decodes it) or 64 hex
//!   digits;
//! - `Dii::to_identity` hashes exactly what the normalizers accept, and the first-level hash and
//!   bucket index are defined for every hash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uid2_fuzz::mode;
use uid2_protocol::crypto::sha256;
use uid2_protocol::identity::{
    bucket_index, email, first_level_hash, parse_hash_input, phone, Dii, IdentityType, FULL_BUCKET_COUNT,
};

fuzz_target!(|data: &[u8]| {
    let (mode, rest) = mode(data);
    let text = String::from_utf8_lossy(rest);
    let text = text.as_ref();

    let normalized = email::normalize(text);
    if let Some(address) = &normalized {
        check_normalized_email(address);
        assert_eq!(
            email::normalize(address).as_ref(),
            Some(address),
            "normalization is idempotent"
        );
    }

    let phone_ok = phone::is_normalized(text);
    let digits = text.strip_prefix('+').unwrap_or_default();
    assert_eq!(
        phone_ok,
        text.starts_with('+') && (10..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    );

    let hash = parse_hash_input(text);
    match text.len() {
        44 => assert_eq!(
            hash.as_deref(),
            uid2_protocol::base64::decode(text).ok().as_deref(),
            "a 44-character hash decodes as base64"
        ),
        64 => assert_eq!(hash.as_deref(), hex(text).as_deref(), "a 64-character hash is hex"),
        _ => assert!(hash.is_none()),
    }

    let dii = match mode % 4 {
        0 => Dii::Email(text),
        1 => Dii::Phone(text),
        2 => Dii::EmailHash(text),
        _ => Dii::PhoneHash(text),
    };
    let identity = dii.to_identity();
    let expected: Option<Vec<u8>> = match dii {
        Dii::Email(_) => normalized.map(|n| sha256(&[n.as_bytes()]).to_vec()),
        Dii::Phone(_) => phone_ok.then(|| sha256(&[text.as_bytes()]).to_vec()),
        Dii::EmailHash(_) | Dii::PhoneHash(_) => hash.map(|h| h.to_vec()),
    };
    assert_eq!(identity.as_ref().map(|i| i.hash.to_vec()), expected);
    let Some(identity) = identity else {
        return;
    };
    assert_eq!(
        identity.id_type,
        if mode % 4 == 0 || mode % 4 == 2 {
            IdentityType::Email
        } else {
            IdentityType::Phone
        }
    );

    // The first-level hash hashes the base64 text of the identity hash; the salt is text.
    let salt = text
        .char_indices()
        .nth(usize::from(mode))
        .map_or(text, |(end, _)| &text[..end]);
    let flh = first_level_hash(&identity.hash, salt);
    let b64 = uid2_protocol::base64::encode(&identity.hash);
    assert_eq!(flh, sha256(&[b64.as_bytes(), salt.as_bytes()]));
    let buckets = match mode >> 2 {
        0 => FULL_BUCKET_COUNT,
        n => usize::from(n),
    };
    assert!(bucket_index(&flh, buckets) < buckets);
});

fn check_normalized_email(address: &str) {
    let (local, domain) = address.split_once('@').expect("a normalized email has an @");
    assert!(!local.is_empty() && !domain.is_empty());
    assert!(!domain.contains('@'), "exactly one @");
    assert!(!local.contains(' '), "no space before the @");
    assert!(!domain.ends_with(' '), "no trailing space");
    assert!(!address.bytes().any(|b| b.is_ascii_uppercase()), "A-Z are lower-cased");
    if domain == "gmail.com" {
        assert!(
            !local.contains('.') && !local.contains('+'),
            "gmail local parts lose . and +"
        );
    }
}

fn hex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some((digit(pair[0])? << 4) | digit(pair[1])?))
        .collect()
}
