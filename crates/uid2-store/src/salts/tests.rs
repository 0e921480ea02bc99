//! Salt parsing, snapshot choice and raw UIDs, on small inline files and on the reference's
//! sample salts (`testdata/reference-store/salts`).
//!
//! The raw UID literals below were computed independently of this project, with a throwaway
//! Python script (`hashlib`, `base64`, and `cryptography`'s AES-CTR): FLH =
//! SHA-256(b64(SHA-256(email)) ‖ first_level), v2 = SHA-256(b64(FLH) ‖ salt), v4 per tokens.md
//! §1.6. The FLHs agree with tokens.md §8.5.

use std::collections::HashMap;

use uid2_protocol::crypto::sha256;
use uid2_protocol::identity::first_level_hash;

use super::*;
use crate::metadata::parse_salts_metadata;
use crate::source::{resolve_location, DirSource, StoreSource};

const NOW_2027_01_15: i64 = 1_800_000_000_000;

fn store_from(metadata: &str, files: &[(&str, &str)], now_ms: i64) -> Result<SaltStore, StoreError> {
    let metadata = parse_salts_metadata(metadata.as_bytes())?;
    let files: HashMap<&str, &str> = files.iter().copied().collect();
    SaltStore::build(
        &metadata,
        |location| {
            files.get(location).map(|text| text.as_bytes().to_vec()).ok_or_else(|| {
                StoreError::new(
                    STORE,
                    Problem::NotFound {
                        path: location.to_owned(),
                    },
                )
            })
        },
        now_ms,
    )
}

fn one_snapshot(size: usize, file: &str) -> Result<SaltStore, StoreError> {
    let metadata = format!(
        r#"{{"version":1,"first_level":"fl","id_prefix":"id-prefix","id_secret":"id secret",
            "salts":[{{"effective":0,"expires":10000,"location":"f","size":{size}}}]}}"#
    );
    store_from(&metadata, &[("f", file)], 0)
}

fn line_issue(file: &str, size: usize) -> Option<(usize, SaltLineIssue)> {
    match one_snapshot(size, file).map_err(|e| e.problem) {
        Err(Problem::SaltLine { line, issue, .. }) => Some((line, issue)),
        _ => None,
    }
}

fn reference_store(now_ms: i64) -> SaltStore {
    let source = DirSource::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/reference-store"));
    let metadata = source.read("salts/metadata.json").expect("metadata");
    let metadata = parse_salts_metadata(&metadata).expect("metadata parses");
    SaltStore::build(&metadata, |location| source.read(resolve_location(location)), now_ms)
        .expect("reference salts load")
}

fn flh(email: &str) -> [u8; 32] {
    first_level_hash(
        &sha256(&[email.as_bytes()]),
        "fOGY/aRE44peL23i+cE9MkJrzmEeNZZziNZBfq7qqk8=",
    )
}

fn b64(bytes: &[u8]) -> String {
    uid2_protocol::base64::encode(bytes)
}

#[test]
fn lines_with_all_fields_and_with_blanks() {
    // The cases of the reference's `SaltFileParserTest`.
    let store = one_snapshot(
        3,
        "1,100,salt1,1000,old_salt1,10,key_1___________,key_salt_1,100,old_key_1_______,old_key_1_salt\n\
         2,200,salt2,2000,,20,key_2___________,key_salt_2,,,\n\
         3,300,,3000,old_salt,,,,,,\n",
    );
    // Row 3 has neither salt nor key: rejected, unlike the reference.
    assert_eq!(
        store.map(|_| ()).map_err(|e| e.problem),
        Err(Problem::SaltLine {
            snapshot: 0,
            line: 3,
            issue: SaltLineIssue::NoCurrentSecret
        })
    );

    let store = one_snapshot(
        2,
        "1,100,salt1,1000,old_salt1,10,key_1___________,key_salt_1,100,old_key_1_______,old_key_1_salt\n\
         2,200, salt2 ,2000,  ,20,key_2___________,key_salt_2,  ,,\n",
    )
    .expect("valid");
    let entries: Vec<&SaltEntry> = store.snapshot_at(0).entries().collect();
    let first = entries[0];
    assert_eq!(
        (first.id(), first.last_updated_ms(), first.refresh_from_ms()),
        (1, 100, 1000)
    );
    assert_eq!(first.current_salt(), Some("salt1"));
    assert_eq!(first.previous_salt(), Some("old_salt1"));
    let key = first.current_key().expect("current key");
    assert_eq!(
        (key.id, key.key.as_str(), key.salt.as_str()),
        (10, "key_1___________", "key_salt_1")
    );
    let previous = first.previous_key().expect("previous key");
    assert_eq!(
        (previous.id, previous.key.as_str(), previous.salt.as_str()),
        (100, "old_key_1_______", "old_key_1_salt")
    );
    let second = entries[1];
    assert_eq!(second.current_salt(), Some("salt2"), "values are trimmed");
    assert_eq!(second.previous_salt(), None, "blank is absent");
    assert!(second.previous_key().is_none());
    assert_eq!(store.bucket_id(first), "id-prefixlEMWeGxL2");
    assert_eq!(store.bucket_id(second), "id-prefixOD2x65kLn");
}

#[test]
fn key_material_needs_both_id_and_key() {
    let store = one_snapshot(2, "1,1,s,1,,5,,,,,\n2,1,s,1,,,key_2___________,ks,,,\n").expect("valid");
    assert!(store.snapshot_at(0).entries().all(|e| e.current_key().is_none()));
}

#[test]
fn column_counts_other_than_11_are_rejected() {
    assert_eq!(
        line_issue("1,1,s,1,,,,,,\n", 1),
        Some((1, SaltLineIssue::ColumnCount { found: 10 }))
    );
    assert_eq!(
        line_issue("1,1,s,1,,,,,,,,\n", 1),
        Some((1, SaltLineIssue::ColumnCount { found: 12 }))
    );
    assert_eq!(
        line_issue("1,1,s,1,,,,,,,\n\n2,1,s,1,,,,,,,\n", 3),
        Some((2, SaltLineIssue::ColumnCount { found: 1 })),
        "a blank line in the middle is a line"
    );
}

#[test]
fn line_count_must_equal_size() {
    let two = "1,1,s,1,,,,,,,\n2,1,s,1,,,,,,,\n";
    assert!(one_snapshot(2, two).is_ok());
    assert_eq!(
        one_snapshot(3, two).map(|_| ()).map_err(|e| e.problem),
        Err(Problem::SaltLineCount {
            snapshot: 0,
            expected: 3,
            found: 2
        }),
        "fewer lines than size (the reference leaves null holes)"
    );
    assert_eq!(
        one_snapshot(1, two).map(|_| ()).map_err(|e| e.problem),
        Err(Problem::SaltLineCount {
            snapshot: 0,
            expected: 1,
            found: 2
        })
    );
    assert_eq!(
        one_snapshot(1, "").map(|_| ()).map_err(|e| e.problem),
        Err(Problem::SaltLineCount {
            snapshot: 0,
            expected: 1,
            found: 0
        })
    );
    // A second trailing newline is an empty last line, as with Java's `BufferedReader`.
    assert!(one_snapshot(2, "1,1,s,1,,,,,,,\n2,1,s,1,,,,,,,\n\n").is_err());
    // No trailing newline, and CRLF line ends, are both fine.
    assert!(one_snapshot(2, "1,1,s,1,,,,,,,\n2,1,s,1,,,,,,,").is_ok());
    let crlf = one_snapshot(2, "1,1,s,1,,,,,,,x\r\n2,1,s,1,,,,,,,\r\n").expect("crlf");
    assert!(crlf.snapshot_at(0).entries().all(|e| e.current_salt() == Some("s")));
}

#[test]
fn numbers_keys_and_secrets_are_validated() {
    let cases = [
        ("x,1,s,1,,,,,,,", SaltLineIssue::BadNumber { column: 0 }),
        (" 1,1,s,1,,,,,,,", SaltLineIssue::BadNumber { column: 0 }),
        ("2147483648,1,s,1,,,,,,,", SaltLineIssue::BadNumber { column: 0 }),
        ("1,,s,1,,,,,,,", SaltLineIssue::BadNumber { column: 1 }),
        ("1,1,s,,,,,,,,", SaltLineIssue::BadNumber { column: 3 }),
        (
            "1,1,s,1,,k,key_1___________,ks,,,",
            SaltLineIssue::BadNumber { column: 5 },
        ),
        (
            "1,1,,1,,5,key_1__________,ks,,,",
            SaltLineIssue::KeyLength { column: 6, found: 15 },
        ),
        (
            "1,1,,1,,5,key12345key12345key12345key1234,ks,,,",
            SaltLineIssue::KeyLength { column: 6, found: 31 },
        ),
        (
            "1,1,s,1,,,,,7,key12345key1234,ks",
            SaltLineIssue::KeyLength { column: 9, found: 15 },
        ),
        (
            "1,1,,1,,5,key_1___________,,,,",
            SaltLineIssue::KeyWithoutSalt { column: 5 },
        ),
        (
            "1,1,s,1,,,,,8,key_1___________, ",
            SaltLineIssue::KeyWithoutSalt { column: 8 },
        ),
        ("1,1, ,1,,,,,8,key_1___________,ks", SaltLineIssue::NoCurrentSecret),
    ];
    for (line, issue) in cases {
        assert_eq!(line_issue(line, 1), Some((1, issue)), "{line}");
    }
    for key in [
        "key_1___________",
        "key_1___________________",
        "key12345key12345key12345key12345",
    ] {
        let line = format!("1,1,,1,,5,{key},ks,,,");
        assert!(one_snapshot(1, &line).is_ok(), "{} bytes", key.len());
    }
    let metadata = parse_salts_metadata(
        br#"{"version":1,"first_level":"f","id_prefix":"b","id_secret":"s","salts":[{"effective":0,"location":"f","size":1}]}"#,
    )
    .expect("metadata");
    let err = SaltStore::build(&metadata, |_| Ok(vec![0xff, 0xfe]), 0).expect_err("not utf-8");
    assert_eq!(err.problem, Problem::NotUtf8);
}

#[test]
fn errors_never_quote_salts() {
    let err = one_snapshot(1, "1,1,,1,,5,verysecretkeymaterial,,,,").expect_err("key without salt");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("verysecret"), "{shown}");
    let err = one_snapshot(1, "1,1,topsecretsalt,1,,,,").expect_err("columns");
    assert!(!format!("{err} {err:?}").contains("topsecret"));
}

#[test]
fn snapshot_choice_walks_in_effective_order() {
    let files = [
        ("a", "1,1,a,1,,,,,,,"),
        ("b", "1,1,b,1,,,,,,,"),
        ("c", "1,1,c,1,,,,,,,"),
    ];
    // Listed out of order on purpose: the store sorts by `effective`.
    let store = store_from(
        r#"{"version":1,"first_level":"f","id_prefix":"b","id_secret":"s","salts":[
            {"effective":300,"expires":400,"location":"c","size":1},
            {"effective":100,"expires":1000,"location":"a","size":1},
            {"effective":200,"expires":1000,"location":"b","size":1}]}"#,
        &files,
        0,
    )
    .expect("valid");
    let salt_at = |now| {
        store
            .snapshot_at(now)
            .entries()
            .next()
            .and_then(|e| e.current_salt())
            .map(str::to_owned)
    };
    assert_eq!(salt_at(50).as_deref(), Some("c"), "none effective: the last one");
    assert_eq!(salt_at(100).as_deref(), Some("a"));
    assert_eq!(salt_at(250).as_deref(), Some("b"));
    assert_eq!(salt_at(350).as_deref(), Some("c"));
    assert_eq!(salt_at(400).as_deref(), Some("b"), "c expired; the walk stops there");
    assert_eq!(salt_at(1000).as_deref(), Some("c"), "first not effective: the last one");
    assert!(!store.is_expired(400));
    assert!(store.is_expired(1000), "c is chosen again, and it expired at 400");
}

#[test]
fn expiry_and_its_default() {
    let store = store_from(
        r#"{"version":1,"first_level":"f","id_prefix":"b","id_secret":"s","salts":[
            {"effective":100,"expires":200,"location":"a","size":1}]}"#,
        &[("a", "1,1,a,1,,,,,,,")],
        0,
    )
    .expect("valid");
    assert!(!store.is_expired(199));
    assert!(!store.is_expired(200), "expired means expires < now");
    assert!(store.is_expired(201));

    let now = 1_000_000;
    let store = store_from(
        r#"{"version":1,"first_level":"f","id_prefix":"b","id_secret":"s","salts":[
            {"effective":100,"location":"a","size":1}]}"#,
        &[("a", "1,1,a,1,,,,,,,")],
        now,
    )
    .expect("valid");
    assert_eq!(
        store.snapshots().next().map(SaltSnapshot::expires_ms),
        Some(now + 365 * 86_400_000)
    );
}

#[test]
fn reference_salts_load_with_their_bucket_ids() {
    let store = reference_store(NOW_2027_01_15);
    assert_eq!(store.snapshot_count(), 2);
    assert_eq!(store.first_level_salt(), "fOGY/aRE44peL23i+cE9MkJrzmEeNZZziNZBfq7qqk8=");
    let newest = store.snapshot_at(NOW_2027_01_15);
    assert_eq!(newest.effective_ms(), 1745907348982, "the 2025-04-29 snapshot wins");
    assert_eq!(store.snapshot_at(1_700_000_000_000).effective_ms(), 1670796729291);
    assert_eq!(newest.len(), 5);
    assert!(!store.is_expired(NOW_2027_01_15));
    // Hashids vectors: see `hashids.rs`.
    let ids: Vec<String> = newest.entries().map(|e| store.bucket_id(e)).collect();
    assert_eq!(
        ids,
        ["bKaoveQoPR", "b1aZVGl7aB", "bv3WM92zaA", "bl5yy6kr58", "be58Mjz13q"]
    );
    let shown = format!("{store:?}");
    assert!(!shown.contains("vgv1Bwi") && !shown.contains("key12345") && !shown.contains("fOGY"));
}

#[test]
fn reference_raw_uid_v2_v3_for_a_salt_bucket() {
    let store = reference_store(NOW_2027_01_15);
    let flh = flh("test@example.com");
    assert_eq!(
        hex::encode(flh),
        "44dcf288c332d74ea1cbc32904eb0705ef99664411f086d4006fc80b63ab36be"
    );
    let entry = store.entry_for(&flh, NOW_2027_01_15);
    assert_eq!(entry.id(), 1000000, "bucket 0");
    let (scope, kind, env) = (IdentityScope::Uid2, IdentityType::Email, IdentityEnvironment::Test);
    let current = entry.current_raw_uid(&flh, scope, kind, env, false).expect("v2");
    assert_eq!(b64(&current), "yCevINTMQ+BMfihNbXjrDLbm/FF+JvBan5YqmToByik=");
    let v3 = entry.current_raw_uid(&flh, scope, kind, env, true).expect("v3");
    assert_eq!(b64(&v3), "AMgnryDUzEPgTH4oTW146wy25vxRfibwWp+WKpk6Acop");
    let previous = entry.previous_raw_uid(&flh, scope, kind, env, false, NOW_2027_01_15);
    assert_eq!(
        previous.map(|p| b64(&p)).as_deref(),
        Some("FMANUZGpDBWBumQek13r1nlngsF6+d1HDbagl9TLn50=")
    );
    assert_eq!(entry.mapped_refresh_from_ms(NOW_2027_01_15), 1814140800000);
}

#[test]
fn reference_raw_uid_v4_for_a_key_bucket() {
    let store = reference_store(NOW_2027_01_15);
    let flh = flh("user@example.com");
    assert_eq!(
        hex::encode(flh),
        "b0db9cbaea9149ebf1100960e2676113e54577e77f5ce6fa37f918039412ff31"
    );
    let entry = store.entry_for(&flh, NOW_2027_01_15);
    assert_eq!(entry.id(), 1000002, "bucket 2");
    let (scope, kind) = (IdentityScope::Uid2, IdentityType::Email);
    let test = entry
        .current_raw_uid(&flh, scope, kind, IdentityEnvironment::Test, false)
        .expect("v4");
    assert_eq!(b64(&test), "ICALImfE94kkoCsBn79kNqDk485MeuvZ3bHUdsmPcKIf");
    // `identity_v3` only affects salt buckets.
    let prod = entry
        .current_raw_uid(&flh, scope, kind, IdentityEnvironment::Prod, true)
        .expect("v4");
    assert_eq!(b64(&prod), "oCALIk9Go8jllKhaHfSacXMIAz+c8DzvcFs4HM+OVjCa");
    let previous = entry.previous_raw_uid(&flh, scope, kind, IdentityEnvironment::Test, false, NOW_2027_01_15);
    assert_eq!(
        previous.map(|p| b64(&p)).as_deref(),
        Some("IB6EghawhupR9Vfx/F7ZQpRvgKuhgF4mEYv1YV9RtSve")
    );
}

#[test]
fn previous_salt_is_preferred_over_previous_key_material() {
    // Bucket 1000004 has current key material and a previous salt.
    let store = reference_store(NOW_2027_01_15);
    let flh = flh("u0@example.com");
    let entry = store.entry_for(&flh, NOW_2027_01_15);
    assert_eq!(entry.id(), 1000004);
    let (scope, kind, env) = (IdentityScope::Uid2, IdentityType::Email, IdentityEnvironment::Test);
    let current = entry.current_raw_uid(&flh, scope, kind, env, false).expect("v4");
    assert_eq!(b64(&current), "IB6EhNcI1X9g7JB9bWCnXBG4+LEfImcyu921QRxEHheX");
    let previous = entry.previous_raw_uid(&flh, scope, kind, env, false, NOW_2027_01_15);
    assert_eq!(
        previous.map(|p| b64(&p)).as_deref(),
        Some("zgPka3P3gdD2bj2zepzVDRvsD14QiDLgen3fw7XYhpk=")
    );
}

#[test]
fn previous_uid_only_within_90_whole_days() {
    let store = one_snapshot(2, "1,0,salt,0,old,,,,,,\n2,0,salt,0,,,,,,,\n").expect("valid");
    let entries: Vec<&SaltEntry> = store.snapshot_at(0).entries().collect();
    let flh = [7u8; 32];
    let (scope, kind, env) = (IdentityScope::Uid2, IdentityType::Email, IdentityEnvironment::Test);
    let previous = |entry: &SaltEntry, now| entry.previous_raw_uid(&flh, scope, kind, env, false, now);
    let day = 86_400_000;
    assert!(previous(entries[0], 90 * day - 1).is_some(), "89 whole days");
    assert!(previous(entries[0], 90 * day).is_none(), "90 whole days");
    assert!(previous(entries[0], -5 * day).is_some(), "rotated in the future");
    assert!(previous(entries[1], day).is_none(), "nothing previous");
    assert_eq!(
        previous(entries[0], day),
        Some(uid2_protocol::identity::raw_uid::RawUid::from_v2(
            uid2_protocol::identity::raw_uid::v2(&flh, "old")
        ))
    );
}

#[test]
fn mapped_refresh_from_falls_back_to_the_next_utc_midnight() {
    let store = one_snapshot(1, "1,0,salt,1800000000000,,,,,,,").expect("valid");
    let entry = store.snapshot_at(0).entries().next().expect("one bucket");
    assert_eq!(entry.mapped_refresh_from_ms(1_799_999_999_999), 1_800_000_000_000);
    assert_eq!(
        entry.mapped_refresh_from_ms(1_800_000_000_000),
        1_800_000_000_000,
        "not in the past"
    );
    assert_eq!(entry.mapped_refresh_from_ms(1_800_000_000_001), 1_800_057_600_000);
    assert_eq!(
        entry.mapped_refresh_from_ms(1_800_057_600_000),
        1_800_144_000_000,
        "midnight itself → next"
    );
}

#[test]
fn modified_since_keeps_file_order() {
    let store = reference_store(NOW_2027_01_15);
    let since: Vec<i32> = store
        .modified_since(1798588800001, NOW_2027_01_15)
        .map(SaltEntry::id)
        .collect();
    assert_eq!(since, [1000000, 1000002, 1000004]);
    assert_eq!(store.modified_since(i64::MAX, NOW_2027_01_15).count(), 0);
    assert_eq!(store.modified_since(0, NOW_2027_01_15).count(), 5);
}

#[test]
fn negative_ids_hash_to_the_bare_prefix() {
    // Java's Hashids returns "" for negative numbers.
    let store = one_snapshot(1, "-5,1,s,1,,,,,,,").expect("valid");
    let entry = store.snapshot_at(0).entries().next().expect("one bucket");
    assert_eq!((entry.id(), store.bucket_id(entry).as_str()), (-5, "id-prefix"));
}

/// Large files are parsed on several threads: order, bucket lookup and error line numbers must be
/// exactly those of a sequential parse.
#[test]
fn large_files_parse_in_order_with_exact_line_numbers() {
    let lines = 25_000;
    let file: String = (0..lines).map(|i| format!("{i},{i},salt{i},{i},,,,,,,\n")).collect();
    let store = one_snapshot(lines, &file).expect("valid");
    let snapshot = store.snapshot_at(0);
    assert_eq!(snapshot.len(), lines);
    assert!(snapshot
        .entries()
        .enumerate()
        .all(|(i, e)| i64::from(e.id()) == i as i64));
    assert_eq!(
        snapshot.entries().last().and_then(SaltEntry::current_salt),
        Some("salt24999")
    );

    let mut broken: Vec<String> = file.lines().map(str::to_owned).collect();
    broken[19_999] = "19999,bad,s,1,,,,,,,".to_owned();
    let broken = broken.join("\n");
    assert_eq!(line_issue(&broken, lines).map(|(line, _)| line), Some(20_000));
}
