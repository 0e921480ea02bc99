//! Scale check of the opt-out index: builds it from N synthetic entries (default 10,000,000, the
//! production order of magnitude), then times lookups and an overlay update, and prints the
//! process RSS. Run it in release:
//!
//! ```text
//! cargo run --release -p uid2-store --example optout_index_scale -- --entries 10000000
//! ```
//!
//! `--no-advertising-ids` builds the index as with `optout_status_api_enabled` = false.
//!
//! The entries are deterministic (xorshift64 from a fixed seed): random 32-byte hashes, ids
//! alternating between 32 and 33 bytes, times over ~3 years. They arrive as partition files of
//! one million entries, each dropped once added, as the sync layer would stream them from disk.
//! RSS is read from `/proc/self/statm` (assuming 4 KiB pages) and the peak from `VmHWM`.

use std::time::{Duration, Instant};

use uid2_store::optout::{OptOutEntry, OptOutFileKind, OptOutFileName, OptOutIndex};

const SEED: u64 = 0x0DDB_1A5E_5BAD_5EED;
const ENTRIES_PER_FILE: usize = 1_000_000;
const LOOKUPS: usize = 1_000_000;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// Entry `i` of the sequence, written as its 72 file bytes; also returns the id as the status
/// API would send it (32 or 33 bytes).
fn entry(rng: &mut XorShift, i: usize, out: &mut [u8; OptOutEntry::LEN]) -> Vec<u8> {
    rng.fill(&mut out[..64]);
    let timestamp = 1_600_000_000 + rng.next() % 100_000_000;
    out[64..72].copy_from_slice(&timestamp.to_le_bytes());
    let mut id = Vec::with_capacity(33);
    if i % 2 == 1 {
        // A 33-byte id: its first byte lives in the metadata's low 6 bits.
        let first = (rng.next() & 0x3F) as u8;
        out[71] = (1 << 6) | first;
        id.push(first);
    } else {
        out[71] = 0;
    }
    id.extend_from_slice(&out[32..64]);
    id
}

fn rss_mib() -> f64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .unwrap_or(0);
    (pages * 4096) as f64 / (1024.0 * 1024.0)
}

fn peak_rss_mib() -> f64 {
    let kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    kib as f64 / 1024.0
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut entries = 10_000_000usize;
    let mut advertising_ids = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--entries" => entries = args.next().ok_or("--entries needs a number")?.parse()?,
            "--no-advertising-ids" => advertising_ids = false,
            other => {
                return Err(format!("unknown argument {other}; usage: [--entries N] [--no-advertising-ids]").into())
            }
        }
    }
    println!("entries: {entries}, advertising ids indexed: {advertising_ids}");
    println!("rss at start: {:.1} MiB", rss_mib());

    // Build: parse every file into the builder (generation time excluded), then sort/merge.
    let mut rng = XorShift(SEED);
    let mut builder = OptOutIndex::builder().advertising_ids(advertising_ids);
    let mut add_time = Duration::ZERO;
    let mut hits: Vec<([u8; 32], String)> = Vec::new();
    let hit_every = (entries / (LOOKUPS / 2)).max(1);
    let mut written = 0usize;
    let mut file_number = 0i64;
    while written < entries {
        let count = ENTRIES_PER_FILE.min(entries - written);
        let mut bytes = vec![0u8; count * OptOutEntry::LEN];
        for (k, chunk) in bytes.chunks_exact_mut(OptOutEntry::LEN).enumerate() {
            let chunk: &mut [u8; OptOutEntry::LEN] = chunk.try_into()?;
            let id = entry(&mut rng, written + k, chunk);
            if (written + k) % hit_every == 0 && hits.len() < LOOKUPS / 2 {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(&chunk[..32]);
                hits.push((hash, uid2_protocol::base64::encode(&id)));
            }
        }
        let name = OptOutFileName {
            kind: OptOutFileKind::Partition,
            replica: 0,
            timestamp: 1_700_000_000 + file_number * 86_400,
            suffix: format!("{file_number:08x}"),
        };
        let start = Instant::now();
        builder.add_file(name, &bytes)?;
        add_time += start.elapsed();
        written += count;
        file_number += 1;
    }
    println!("rss with the builder filled: {:.1} MiB", rss_mib());
    let start = Instant::now();
    let index = builder.build();
    let build_time = start.elapsed();
    println!(
        "build: {:.2} s ({:.2} s reading files + {:.2} s sorting and merging)",
        (add_time + build_time).as_secs_f64(),
        add_time.as_secs_f64(),
        build_time.as_secs_f64()
    );
    println!(
        "index: {} hashes, {} advertising ids, {:.1} MiB of tables",
        index.len(),
        index.advertising_id_count(),
        index.heap_bytes() as f64 / (1024.0 * 1024.0)
    );
    println!("rss after build: {:.1} MiB (peak {:.1} MiB)", rss_mib(), peak_rss_mib());

    // Lookups: half present, half absent, interleaved.
    let mut misses = XorShift(SEED ^ 0xFFFF);
    let mut queries: Vec<[u8; 32]> = Vec::with_capacity(LOOKUPS);
    for (hash, _) in &hits {
        queries.push(*hash);
        let mut absent = [0u8; 32];
        misses.fill(&mut absent);
        queries.push(absent);
    }
    let start = Instant::now();
    let found = queries.iter().filter(|q| index.opted_out_since(q).is_some()).count();
    let elapsed = start.elapsed();
    println!(
        "hash lookups: {} in {:.3} s = {:.2} M/s ({} found)",
        queries.len(),
        elapsed.as_secs_f64(),
        per_second(queries.len(), elapsed) / 1e6,
        found
    );

    let mut id_queries: Vec<&str> = Vec::with_capacity(LOOKUPS);
    let absent_id = uid2_protocol::base64::encode(&[0x5Au8; 32]);
    for (_, id) in &hits {
        id_queries.push(id);
        id_queries.push(&absent_id);
    }
    let start = Instant::now();
    let found = id_queries
        .iter()
        .filter(|q| index.advertising_id_opted_out_since(q).is_some())
        .count();
    let elapsed = start.elapsed();
    println!(
        "advertising id lookups: {} in {:.3} s = {:.2} M/s ({} found)",
        id_queries.len(),
        elapsed.as_secs_f64(),
        per_second(id_queries.len(), elapsed) / 1e6,
        found
    );

    // An overlay update: one 5-minute delta of 1,000 entries on top of the base.
    let mut bytes = vec![0u8; 1_000 * OptOutEntry::LEN];
    for (k, chunk) in bytes.chunks_exact_mut(OptOutEntry::LEN).enumerate() {
        let chunk: &mut [u8; OptOutEntry::LEN] = chunk.try_into()?;
        entry(&mut rng, k, chunk);
    }
    let delta = OptOutFileName {
        kind: OptOutFileKind::Delta,
        replica: 0,
        timestamp: 1_700_000_000 + file_number * 86_400,
        suffix: "ffffffff".to_owned(),
    };
    let start = Instant::now();
    let updated = index.with_additional_files([(delta, bytes.as_slice())])?;
    println!(
        "overlay update with a 1,000-entry delta: {:.3} ms ({} hashes now)",
        start.elapsed().as_secs_f64() * 1e3,
        updated.len()
    );
    println!("rss at end: {:.1} MiB (peak {:.1} MiB)", rss_mib(), peak_rss_mib());
    Ok(())
}
