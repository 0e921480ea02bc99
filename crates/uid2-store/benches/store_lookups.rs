//! The store's per-identity lookups at production size, on one core:
//! - `optout`: [`OptOutIndex::opted_out_since`], the check every token and identity map path makes
//!   for each identity, in an index of 10,000,000 entries built in memory through the public
//!   builder; for first-level hashes that are indexed (hits) and that are not (misses, the
//!   common case). Each cycles through 1,000,000 distinct hashes, so the table reads miss the
//!   caches as production lookups do. Target: under 200 ns per lookup.
//! - `salt`: the salt bucket of a first-level hash among 1,048,576
//!   ([`SaltStore::entry_for`]: the snapshot in force, the bucket index, the bucket itself), over
//!   1,000,000 distinct hashes; the bucket's row is read, so its cache miss is counted as the
//!   raw UID computation that follows would pay it.
//! - `memory`: the floor the opt-out hit competes with — one random read of 400 MB (the size of
//!   the 10M-entry hash table) that depends on the previous one, so nothing overlaps: what one
//!   cache and TLB miss costs on this machine. A hit reads the filter's block (20 MB) and the
//!   table's record (400 MB); a miss, the filter's block only.
//!
//! Building the two tables takes a few seconds and about 1 GB before the first bench runs.
//!
//! ```text
//! cargo bench -p uid2-store --bench store_lookups
//! ```

#[path = "../../uid2-protocol/benches/measurement/mod.rs"]
mod measurement;
mod synthetic;

use std::hint::black_box;
use std::time::Instant;

use measurement::{cycle, Tally};
use uid2_store::optout::OptOutIndex;
use uid2_store::salts::SaltStore;

/// Distinct queries per bench: 32 MB of hashes, read in order; the tables are read at random.
const QUERIES: usize = 1_000_000;
/// The target for one opt-out lookup at 10M entries.
const OPTOUT_TARGET_NS: f64 = 200.0;

fn main() {
    let mut c = measurement::criterion();
    let tally = Tally::default();
    let now_ms = 1_767_225_600_000;

    let started = Instant::now();
    let (index, hits) = synthetic::optout_index(synthetic::OPTOUT_ENTRIES, QUERIES);
    let misses = synthetic::random_hashes(QUERIES, 0xFFFF_0000);
    println!(
        "opt-out index: {} entries built in {:.1} s",
        index.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        hits.iter().all(|h| index.opted_out_since(h).is_some()),
        "hits are indexed"
    );
    assert!(
        misses.iter().all(|h| index.opted_out_since(h).is_none()),
        "misses are not"
    );
    optout(&mut c, &tally, &index, &hits, &misses);
    drop(index);
    memory_floor(&mut c, &tally);

    let started = Instant::now();
    let salts = synthetic::salt_store(synthetic::BUCKETS, now_ms);
    println!(
        "salt table: {} buckets built in {:.1} s",
        salts.snapshot_at(now_ms).len(),
        started.elapsed().as_secs_f64()
    );
    salt_bucket(&mut c, &tally, &salts, &misses, now_ms);
    c.final_summary();

    if measurement::measuring() {
        println!("\n== uid2-store: opt-out lookup at 10,000,000 entries, one core, this run ==");
        for (label, id) in [("hit", "lookup_hit_10m"), ("miss", "lookup_miss_10m")] {
            match tally.ns_per_op(id) {
                Some(ns) => println!(
                    "{label:<5} {ns:>8.1} ns  target < {OPTOUT_TARGET_NS} ns: {}",
                    if ns < OPTOUT_TARGET_NS { "met" } else { "NOT met" }
                ),
                None => println!("{label:<5} not run"),
            }
        }
        if let Some(ns) = tally.ns_per_op("dependent_random_read_400mb") {
            println!("floor {ns:>8.1} ns  one dependent random read of 400 MB (cache + TLB miss)");
        }
        tally.print_all("uid2-store");
    }
}

fn optout(c: &mut criterion::Criterion, tally: &Tally, index: &OptOutIndex, hits: &[[u8; 32]], misses: &[[u8; 32]]) {
    let mut group = c.benchmark_group("optout");
    group.throughput(criterion::Throughput::Elements(1));
    for (id, queries) in [("lookup_hit_10m", hits), ("lookup_miss_10m", misses)] {
        tally.bench(&mut group, id, |iters| {
            cycle(queries, iters, |hash| {
                black_box(index.opted_out_since(black_box(hash)));
            })
        });
    }
    group.finish();
}

fn salt_bucket(c: &mut criterion::Criterion, tally: &Tally, salts: &SaltStore, flhs: &[[u8; 32]], now_ms: i64) {
    let mut group = c.benchmark_group("salt");
    group.throughput(criterion::Throughput::Elements(1));
    tally.bench(&mut group, "bucket_for_first_level_hash_1m", |iters| {
        cycle(flhs, iters, |flh| {
            black_box(salts.entry_for(black_box(flh), now_ms).last_updated_ms());
        })
    });
    group.finish();
}

/// Slots of the pointer chase: 100 M × 4 bytes = 400 MB, the 10M-entry hash table's size.
const CHASE_SLOTS: usize = 100_000_000;

fn memory_floor(c: &mut criterion::Criterion, tally: &Tally) {
    // One cycle through every slot (Sattolo's shuffle), so each read's address is the previous
    // read's value and the walk never settles into a cached loop.
    let mut next: Vec<u32> = (0..CHASE_SLOTS as u32).collect();
    let mut rng = synthetic::XorShift::new(0xC4A5E);
    for i in (1..CHASE_SLOTS).rev() {
        let j = (rng.next() % i as u64) as usize;
        next.swap(i, j);
    }
    let mut group = c.benchmark_group("memory");
    group.throughput(criterion::Throughput::Elements(1));
    let mut at = 0u32;
    tally.bench(&mut group, "dependent_random_read_400mb", |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            at = next[at as usize];
        }
        black_box(at);
        start.elapsed()
    });
    group.finish();
}
