//! The floor an identity path competes with: raw SHA-256 (`sha2`, the implementation the
//! protocol uses) of inputs of the sizes of the two hashes every identity needs, measured in the
//! same run on the same machine:
//! - the first-level hash input: base64 of the 32-byte identity hash (44 characters) followed by
//!   the first-level salt;
//! - the raw UID v2 input: base64 of the first-level hash (44 characters) followed by the bucket
//!   salt.
//!
//! Everything else a path does (normalization, base64, bucket and opt-out lookups, JSON, the
//! envelope) is overhead on top of these two hashes, so `floor / path` says how close the path
//! gets to what the hardware allows. A raw email or phone needs a third hash (of the DII itself);
//! the floor still counts two, so for those rows the ratio also shows that hash's cost.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use sha2::{Digest, Sha256};

use super::{cycle, rate, Tally};

const FLH_INPUT: &str = "sha256_first_level_hash_input";
const RAW_UID_INPUT: &str = "sha256_raw_uid_input";

/// Distinct inputs per size, so that no hash repeats the previous input; 256 of them stay in L1,
/// because the floor is compute, not memory.
const INPUTS: usize = 256;

/// The two input sizes, in bytes.
pub struct Floor {
    pub first_level_hash_input: usize,
    pub raw_uid_input: usize,
}

impl Floor {
    /// The sizes for a first-level salt and bucket salts of these lengths (44 each in the
    /// reference's stores: base64 of 32 bytes).
    pub fn for_salts(first_level_salt_len: usize, bucket_salt_len: usize) -> Self {
        // Base64 of a 32-byte hash, with padding.
        const HASH_B64: usize = 44;
        Self {
            first_level_hash_input: HASH_B64 + first_level_salt_len,
            raw_uid_input: HASH_B64 + bucket_salt_len,
        }
    }

    /// Group `sha256_floor`: one-shot SHA-256 of each input size.
    pub fn bench(&self, c: &mut Criterion, tally: &Tally) {
        let mut group = c.benchmark_group("sha256_floor");
        for (id, len) in [
            (FLH_INPUT, self.first_level_hash_input),
            (RAW_UID_INPUT, self.raw_uid_input),
        ] {
            let inputs: Vec<Vec<u8>> = (0..INPUTS)
                .map(|i| (0..len).map(|j| (i * 31 + j * 7) as u8).collect())
                .collect();
            group.throughput(Throughput::Bytes(len as u64));
            tally.bench(&mut group, id, |iters| {
                cycle(&inputs, iters, |input| {
                    black_box(Sha256::digest(black_box(input)));
                })
            });
        }
        group.finish();
    }

    /// The floor per identity in ns: one hash of each size, if both ran.
    pub fn per_identity_ns(&self, tally: &Tally) -> Option<f64> {
        Some(tally.ns_per_op(FLH_INPUT)? + tally.ns_per_op(RAW_UID_INPUT)?)
    }

    /// Prints, for each `(path, ns per identity)`, identities/s on one core and `floor / path`.
    pub fn print_ratios(&self, title: &str, tally: &Tally, rows: &[(&str, Option<f64>)]) {
        println!("\n== {title}: per identity, one core, all measured in this run ==");
        let floor = self.per_identity_ns(tally);
        match (tally.ns_per_op(FLH_INPUT), tally.ns_per_op(RAW_UID_INPUT), floor) {
            (Some(flh), Some(raw), Some(sum)) => println!(
                "SHA-256 floor (sha2): {} B {flh:.1} ns + {} B {raw:.1} ns = {sum:.1} ns per identity ({}/s)",
                self.first_level_hash_input,
                self.raw_uid_input,
                rate(1e9 / sum)
            ),
            _ => println!("SHA-256 floor: not measured in this run (filtered out)"),
        }
        println!(
            "{:<44} {:>12} {:>14} {:>11}",
            "path", "ns/identity", "identities/s", "floor/path"
        );
        for (path, ns) in rows {
            let Some(ns) = ns else {
                println!("{path:<44} {:>12}", "not run");
                continue;
            };
            let ratio = floor.map_or("-".to_owned(), |f| format!("{:.1} %", 100.0 * f / ns));
            println!("{path:<44} {ns:>12.1} {:>14} {ratio:>11}", rate(1e9 / ns));
        }
    }
}
