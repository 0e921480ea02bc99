//! Opt-out files (`uid2_store::optout`): the 72-byte entry parser, file names, and the index the
//! operator answers from.
//!
//! Mode byte: 0 = the rest is a file's bytes; 1 = the rest is a file name or URL. For files:
//! - `parse_file` accepts exactly the lengths that are a multiple of 72, and every entry it
//!   reads writes back (`to_bytes`) to bytes that parse to the same entry;
//! - the index built from the file (read whole, and read through a reader in chunks) answers
//!   every non-sentinel hash with the latest of its timestamps (clamped to 32 bits), every
//!   advertising id with the earliest, the all-zero hash as opted out and the all-`0xFF` hash
//!   as not; the two builds answer alike.
//!
//! For names: what parses formats back to a name that parses to the same value.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use uid2_fuzz::mode;
use uid2_store::optout::{parse_file, OptOutEntry, OptOutFileName, OptOutIndex};

const NAME: &str = "optout-delta-001_2024-01-01T00.00.00Z_0123abcd.dat";

fuzz_target!(|data: &[u8]| {
    let (mode, rest) = mode(data);
    if mode & 1 == 0 {
        file(rest);
    } else {
        name(rest);
    }
});

fn file(bytes: &[u8]) {
    let parsed = parse_file("optout", bytes);
    assert_eq!(parsed.is_ok(), bytes.len().is_multiple_of(OptOutEntry::LEN));
    let name = OptOutFileName::parse(NAME).expect("the fixed name parses");

    let mut whole = OptOutIndex::builder();
    let whole_result = whole.add_file(name.clone(), bytes);
    let mut chunked = OptOutIndex::builder();
    let chunked_result = chunked.add_reader(name, bytes, bytes.len() as u64);
    assert_eq!(whole_result.is_ok(), parsed.is_ok());
    assert_eq!(chunked_result.is_ok(), parsed.is_ok());
    let (Ok(entries), whole, chunked) = (parsed, whole.build(), chunked.build()) else {
        return;
    };

    let mut latest: HashMap<[u8; 32], i64> = HashMap::new();
    let mut earliest: HashMap<Vec<u8>, i64> = HashMap::new();
    for entry in &entries {
        let again = OptOutEntry::parse(&entry.to_bytes());
        assert!(again == *entry, "an entry writes back to itself");
        if entry.is_sentinel() {
            continue;
        }
        let clamped = entry.timestamp.min(i64::from(u32::MAX));
        let slot = latest.entry(entry.identity_hash).or_insert(clamped);
        *slot = (*slot).max(clamped);
        let slot = earliest.entry(entry.advertising_id.clone()).or_insert(clamped);
        *slot = (*slot).min(clamped);
    }

    for index in [&whole, &chunked] {
        assert_eq!(index.opted_out_since(&[0; 32]), Some(0));
        assert_eq!(index.opted_out_since(&[0xFF; 32]), None);
        for (hash, when) in &latest {
            assert_eq!(index.opted_out_since(hash), Some(*when), "latest opt-out of a hash");
        }
        for (id, when) in &earliest {
            let text = uid2_protocol::base64::encode(id);
            assert_eq!(
                index.advertising_id_opted_out_since(&text),
                Some(*when),
                "earliest opt-out of an id"
            );
        }
        assert_eq!(index.len(), latest.len());
        assert_eq!(index.advertising_id_count(), earliest.len());
    }
    // Hashes not in the file are not opted out.
    for entry in &entries {
        let mut other = entry.identity_hash;
        other[31] ^= 0x5A;
        if !latest.contains_key(&other) && other != [0; 32] {
            assert_eq!(whole.opted_out_since(&other), None);
        }
    }
}

fn name(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(parsed) = OptOutFileName::parse(&text) {
        let formatted = parsed.format();
        let again = OptOutFileName::parse(&formatted).expect("a formatted name parses");
        assert_eq!(again, parsed, "{formatted} parses back to the same name");
    }
}
