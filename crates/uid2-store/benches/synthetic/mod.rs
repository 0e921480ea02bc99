//! A production-size store made in memory for the benches: a salt table of 1,048,576 buckets and
//! an opt-out index of 10,000,000 entries, built through the crate's public API
//! (`parse_salts_metadata` + `SaltStore::build`, `OptOutIndex::builder`) exactly as if the bytes
//! had come from Core's and OptOut's files, so the benches measure the tables production has.
//!
//! The benches of `uid2-api` include this file by path (`#[path]`): they need the same tables,
//! and a bench cannot import another crate's bench module.
//!
//! Everything is deterministic: a xorshift generator from fixed seeds, and times relative to the
//! `now_ms` the caller passes.

// Each bench binary uses a different part of this module.
#![allow(dead_code)]

use std::fmt::Write;

use uid2_store::metadata::parse_salts_metadata;
use uid2_store::optout::{OptOutEntry, OptOutFileKind, OptOutFileName, OptOutIndex};
use uid2_store::salts::SaltStore;

/// A production salt table.
pub const BUCKETS: usize = 1 << 20;
/// The production order of magnitude of opt-outs.
pub const OPTOUT_ENTRIES: usize = 10_000_000;
/// A first-level salt as Core publishes one (base64 of 32 bytes): its length is what matters.
pub const FIRST_LEVEL_SALT: &str = "fOGY/aRE44peL23i+cE9MkJrzmEeNZZziNZBfq7qqk8=";
/// The length of every bucket salt made here (base64 of 32 bytes, as in Core's files).
pub const BUCKET_SALT_LEN: usize = 44;

const DAY_MS: i64 = 86_400_000;
/// OptOut writes partitions of about this many entries.
const ENTRIES_PER_FILE: usize = 1_000_000;

/// xorshift64: fast and deterministic; these are test data, not secrets.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        // Zero is xorshift's one fixed point.
        Self(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    /// A value in `low..high` (`high > low`).
    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low) as u64) as i64
    }
}

/// `count` random 32-byte values: first-level hashes that are (almost surely) in no table.
pub fn random_hashes(count: usize, seed: u64) -> Vec<[u8; 32]> {
    let mut rng = XorShift::new(seed);
    (0..count)
        .map(|_| {
            let mut hash = [0u8; 32];
            rng.fill(&mut hash);
            hash
        })
        .collect()
}

/// A salts store of one snapshot with `buckets` buckets, in force at `now_ms`, with the first-level
/// salt [`FIRST_LEVEL_SALT`].
///
/// Every bucket has a current salt (raw UID v2, or v3 with `identity_v3`): the path the
/// performance targets are stated for. One bucket in four also has a previous salt from a
/// rotation less than 90 days ago, so identity map reports a previous raw UID for it; that is
/// the share a yearly rotation gives (90/365). No bucket carries raw UID v4 key material.
pub fn salt_store(buckets: usize, now_ms: i64) -> SaltStore {
    let mut rng = XorShift::new(0x5A17_5A17);
    let mut salt = || {
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes);
        uid2_protocol::base64::encode(&bytes)
    };
    let mut file = String::with_capacity(buckets * 150);
    let mut times = XorShift::new(0x7173_7173);
    for index in 0..buckets {
        let id = 1_000_000 + index;
        let current = salt();
        let (previous, rotated_days_ago) = if index % 4 == 0 {
            (salt(), times.between(1, 89))
        } else {
            (String::new(), times.between(100, 365))
        };
        let last_updated = now_ms - rotated_days_ago * DAY_MS;
        let refresh_from = now_ms + times.between(1, 30) * DAY_MS;
        // 11 columns; the last six (key material) are empty. Writing to a String cannot fail.
        let _ = writeln!(file, "{id},{last_updated},{current},{refresh_from},{previous},,,,,,");
    }
    let metadata = serde_json::json!({
        "version": 1,
        "generated": now_ms / 1000,
        "first_level": FIRST_LEVEL_SALT,
        "id_prefix": "b",
        "id_secret": "HF6Qz42HBbVHINxhh191dB09BCuTWyBkNtrNicO4ZCw=",
        "salts": [{
            "effective": now_ms - DAY_MS,
            "expires": now_ms + 365 * DAY_MS,
            "location": "synthetic",
            "size": buckets,
        }],
    });
    let metadata = parse_salts_metadata(metadata.to_string().as_bytes()).expect("synthetic salts metadata parses");
    let mut file = Some(file.into_bytes());
    SaltStore::build(&metadata, |_| Ok(file.take().unwrap_or_default()), now_ms).expect("synthetic salt file loads")
}

/// An opt-out index of `entries` random entries, read as partition files of a million (the
/// builder's production path), with advertising ids indexed as `optout_status_api_enabled`
/// (default on) does. Also returns `hits` first-level hashes that are in the index, spread
/// evenly over the entries, for lookups that find something.
pub fn optout_index(entries: usize, hits: usize) -> (OptOutIndex, Vec<[u8; 32]>) {
    let mut rng = XorShift::new(0x0DDB_1A5E_5BAD_5EED);
    let mut builder = OptOutIndex::builder();
    let hit_every = (entries / hits.max(1)).max(1);
    let mut sampled = Vec::with_capacity(hits);
    let mut written = 0usize;
    for file_number in 0i64.. {
        if written >= entries {
            break;
        }
        let count = ENTRIES_PER_FILE.min(entries - written);
        let mut bytes = vec![0u8; count * OptOutEntry::LEN];
        for (k, entry) in bytes.chunks_exact_mut(OptOutEntry::LEN).enumerate() {
            // Hash and advertising id random; 56-bit time over ~3 years; metadata byte 0 (a
            // 32-byte id).
            rng.fill(&mut entry[..64]);
            let timestamp = 1_600_000_000 + rng.next() % 100_000_000;
            entry[64..72].copy_from_slice(&timestamp.to_le_bytes());
            if (written + k) % hit_every == 0 && sampled.len() < hits {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(&entry[..32]);
                sampled.push(hash);
            }
        }
        let name = OptOutFileName {
            kind: OptOutFileKind::Partition,
            replica: 0,
            timestamp: 1_700_000_000 + file_number * 86_400,
            suffix: format!("{file_number:08x}"),
        };
        builder.add_file(name, &bytes).expect("synthetic partition indexes");
        written += count;
    }
    (builder.build(), sampled)
}
