use std::collections::BTreeMap;

use super::*;
use crate::optout::{select_files, OptOutFileKind, OptOutFilePolicy};

/// Marsaglia's xorshift64: deterministic data without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in out.iter_mut() {
            *b = self.next() as u8;
        }
        out
    }
}

fn file_name(kind: OptOutFileKind, timestamp: i64, n: u32) -> OptOutFileName {
    OptOutFileName {
        kind,
        replica: 0,
        timestamp,
        suffix: format!("{n:08x}"),
    }
}

fn entry(hash: [u8; 32], id: Vec<u8>, timestamp: i64) -> OptOutEntry {
    OptOutEntry {
        identity_hash: hash,
        advertising_id: id,
        timestamp,
    }
}

/// A delta file: the entries between a start and an end sentinel.
fn delta_bytes(entries: &[OptOutEntry]) -> Vec<u8> {
    let mut bytes = OptOutEntry::start_sentinel(1_702_039_153).to_bytes().to_vec();
    for e in entries {
        bytes.extend(e.to_bytes());
    }
    bytes.extend(OptOutEntry::end_sentinel(1_702_039_213).to_bytes());
    bytes
}

fn b64(bytes: &[u8]) -> String {
    uid2_protocol::base64::encode(bytes)
}

fn index_of(files: &[(OptOutFileName, Vec<u8>)]) -> OptOutIndex {
    let mut builder = OptOutIndex::builder();
    for (name, bytes) in files {
        builder.add_file(name.clone(), bytes).expect("valid file");
    }
    builder.build()
}

const H1: [u8; 32] = [0x11; 32];
const H2: [u8; 32] = [0x22; 32];

fn three_files() -> Vec<(OptOutFileName, Vec<u8>)> {
    let x = vec![0xAA; 32];
    let y = vec![0xBB; 32];
    vec![
        (
            file_name(OptOutFileKind::Partition, 1_000, 1),
            [entry(H1, x.clone(), 200)]
                .iter()
                .flat_map(OptOutEntry::to_bytes)
                .collect(),
        ),
        (
            file_name(OptOutFileKind::Delta, 2_000, 2),
            delta_bytes(&[entry(H1, x.clone(), 100), entry(H2, y.clone(), 50)]),
        ),
        (
            file_name(OptOutFileKind::Delta, 3_000, 3),
            delta_bytes(&[entry(H1, y.clone(), 150), entry(H2, y, 70)]),
        ),
    ]
}

#[test]
fn hashes_take_the_latest_time_and_ids_the_earliest() {
    let index = index_of(&three_files());
    assert_eq!(index.opted_out_since(&H1), Some(200));
    assert_eq!(index.opted_out_since(&H2), Some(70));
    assert_eq!(index.opted_out_since(&[0x33; 32]), None);
    assert_eq!(index.advertising_id_opted_out_since(&b64(&[0xAA; 32])), Some(100));
    assert_eq!(index.advertising_id_opted_out_since(&b64(&[0xBB; 32])), Some(50));
    assert_eq!(index.advertising_id_opted_out_since(&b64(&[0xCC; 32])), None);
    assert_eq!(index.len(), 2);
    assert_eq!(index.advertising_id_count(), 2);
    assert_eq!(index.files().len(), 3);
}

#[test]
fn the_same_answers_across_layers_in_any_split() {
    let files = three_files();
    let whole = index_of(&files);
    for split in 0..=files.len() {
        let (base, rest) = files.split_at(split);
        let mut index = index_of(base);
        for (name, bytes) in rest {
            index = index
                .with_additional_files([(name.clone(), bytes.as_slice())])
                .expect("valid file");
        }
        for hash in [H1, H2] {
            assert_eq!(
                index.opted_out_since(&hash),
                whole.opted_out_since(&hash),
                "split {split}"
            );
        }
        for id in [[0xAA; 32], [0xBB; 32]] {
            let text = b64(&id);
            assert_eq!(
                index.advertising_id_opted_out_since(&text),
                whole.advertising_id_opted_out_since(&text),
                "split {split}"
            );
        }
        assert_eq!(index.files(), whole.files());
    }
}

#[test]
fn an_overlay_update_shares_the_base() {
    let files = three_files();
    let base = index_of(&files[..1]);
    let next = base
        .with_additional_files(files[1..].iter().map(|(n, b)| (n.clone(), b.as_slice())))
        .expect("valid files");
    assert!(Arc::ptr_eq(&base.base, &next.base));
    assert_eq!(next.overlay.as_ref().map(|o| o.hashes.len()), Some(2));
    // Adding an indexed file again changes nothing.
    let again = next
        .with_additional_files([(files[2].0.clone(), files[2].1.as_slice())])
        .expect("valid file");
    assert!(Arc::ptr_eq(
        next.overlay.as_ref().expect("overlay"),
        again.overlay.as_ref().expect("overlay")
    ));
}

#[test]
fn sentinels_are_not_users_and_the_special_hashes_short_circuit() {
    let empty = OptOutIndex::default();
    assert_eq!(empty.opted_out_since(&[0; 32]), Some(0));
    assert_eq!(empty.opted_out_since(&[0xFF; 32]), None);
    assert!(empty.is_empty());

    // A delta with nothing but its sentinels indexes nothing.
    let index = index_of(&[(file_name(OptOutFileKind::Delta, 1, 1), delta_bytes(&[]))]);
    assert!(index.is_empty());
    assert_eq!(index.advertising_id_count(), 0);
    assert_eq!(index.files().len(), 1);
    assert_eq!(index.opted_out_since(&[0; 32]), Some(0));
    assert_eq!(index.opted_out_since(&[0xFF; 32]), None);
    assert_eq!(index.advertising_id_opted_out_since(&b64(&[0; 32])), None);
    assert_eq!(index.advertising_id_opted_out_since(&b64(&[0xFF; 32])), None);

    // Even if a partition carried a user-looking entry under a sentinel hash.
    let bytes = entry([0xFF; 32], vec![5; 32], 10).to_bytes().to_vec();
    let index = index_of(&[(file_name(OptOutFileKind::Partition, 1, 1), bytes)]);
    assert_eq!(index.opted_out_since(&[0xFF; 32]), None);
    assert_eq!(index.advertising_id_opted_out_since(&b64(&[5; 32])), None);
}

#[test]
fn ids_of_32_and_33_bytes_are_found_by_their_reference_base64() {
    let v2 = vec![0x42u8; 32];
    let mut v3 = vec![0x04u8];
    v3.extend([0x42u8; 32]);
    // A v4 id whose first byte has bits 7–6 set: the file keeps only the low 6 bits.
    let mut v4 = vec![0xA0u8];
    v4.extend([0x77u8; 32]);
    let bytes = delta_bytes(&[
        entry([1; 32], v2.clone(), 10),
        entry([2; 32], v3.clone(), 20),
        entry([3; 32], v4.clone(), 30),
    ]);
    let index = index_of(&[(file_name(OptOutFileKind::Delta, 1, 1), bytes)]);
    assert_eq!(index.advertising_id_opted_out_since(&b64(&v2)), Some(10));
    assert_eq!(index.advertising_id_opted_out_since(&b64(&v3)), Some(20));
    assert_eq!(index.advertising_id_opted_out_since(&b64(&v4)), None);
    let mut as_stored = v4.clone();
    as_stored[0] = 0x20;
    assert_eq!(index.advertising_id_opted_out_since(&b64(&as_stored)), Some(30));
    // The same 32 bytes as a 33-byte id with another first byte are another id.
    let mut other = vec![0x05u8];
    other.extend([0x42u8; 32]);
    assert_eq!(index.advertising_id_opted_out_since(&b64(&other)), None);
    // Only the canonical text: no padding-less or URL-safe variants.
    assert_eq!(
        index.advertising_id_opted_out_since(b64(&v2).trim_end_matches('=')),
        None
    );
    assert_eq!(index.advertising_id_opted_out_since(&format!(" {}", b64(&v3))), None);
}

#[test]
fn timestamps_past_2106_are_clamped_and_stay_opt_outs() {
    let far = 1i64 << 40;
    let bytes = delta_bytes(&[
        entry(H1, vec![1; 32], far),
        entry(H1, vec![1; 32], 5),
        entry(H2, vec![2; 32], 0),
    ]);
    let index = index_of(&[(file_name(OptOutFileKind::Delta, 1, 1), bytes)]);
    assert_eq!(index.opted_out_since(&H1), Some(i64::from(u32::MAX)));
    assert_eq!(index.advertising_id_opted_out_since(&b64(&[1; 32])), Some(5));
    // Time zero is still an entry, so still opted out.
    assert_eq!(index.opted_out_since(&H2), Some(0));
}

#[test]
fn a_bad_file_is_an_error_and_adds_nothing() {
    let mut builder = OptOutIndex::builder();
    let good = delta_bytes(&[entry(H1, vec![1; 32], 5)]);
    let name = file_name(OptOutFileKind::Delta, 1, 1);
    assert!(builder.add_file(name.clone(), &good[..good.len() - 1]).is_err());
    builder
        .add_file(file_name(OptOutFileKind::Delta, 2, 2), &[])
        .expect("empty is fine");
    builder.add_file(name.clone(), &good).expect("valid");
    // The same name again is skipped, whatever its bytes.
    builder.add_file(name, &good[..1]).expect("skipped");
    let index = builder.build();
    assert_eq!(index.len(), 1);
    assert_eq!(index.files().len(), 2);

    let bad = index.with_additional_files([(file_name(OptOutFileKind::Delta, 3, 3), &good[..100])]);
    assert!(bad.is_err());
    assert_eq!(index.files().len(), 2);
}

#[test]
fn without_advertising_ids_only_hashes_are_indexed() {
    let mut builder = OptOutIndex::builder().advertising_ids(false);
    let bytes = delta_bytes(&[entry(H1, vec![1; 32], 5)]);
    builder
        .add_file(file_name(OptOutFileKind::Delta, 1, 1), &bytes)
        .expect("valid");
    let index = builder.build();
    assert_eq!(index.opted_out_since(&H1), Some(5));
    assert_eq!(index.advertising_id_opted_out_since(&b64(&[1; 32])), None);
    assert_eq!(index.advertising_id_count(), 0);
    let next = index
        .with_additional_files([(file_name(OptOutFileKind::Delta, 2, 2), bytes.as_slice())])
        .expect("valid");
    assert_eq!(next.advertising_id_count(), 0);
}

#[test]
fn debug_shows_counts_not_entries() {
    let index = index_of(&three_files());
    let text = format!("{index:?}");
    assert!(text.contains("hashes: 2"), "{text}");
    assert!(
        !text.contains("17") && !text.contains("0x11") && !text.contains("AAAA"),
        "{text}"
    );
}

/// Random files over a small space of hashes and ids, so duplicates within and across files
/// are common, with the answers of a naive model.
struct Scenario {
    files: Vec<(OptOutFileName, Vec<u8>)>,
    hashes: Vec<[u8; 32]>,
    ids: Vec<Vec<u8>>,
}

impl Scenario {
    fn new(seed: u64, entries: usize) -> Self {
        let mut rng = XorShift(seed);
        let hashes: Vec<[u8; 32]> = (0..entries / 3).map(|_| rng.bytes()).collect();
        let ids: Vec<Vec<u8>> = (0..entries / 3)
            .map(|i| {
                let mut id = rng.bytes::<33>().to_vec();
                if i % 2 == 0 {
                    id.truncate(32);
                } else {
                    id[0] &= 0x3F;
                }
                id
            })
            .collect();
        let mut files = Vec::new();
        let mut remaining = entries;
        let mut n = 0u32;
        while remaining > 0 {
            let size = (rng.below(40) as usize + 1).min(remaining);
            remaining -= size;
            n += 1;
            let kind = if n % 4 == 1 {
                OptOutFileKind::Partition
            } else {
                OptOutFileKind::Delta
            };
            let file_entries: Vec<OptOutEntry> = (0..size)
                .map(|_| {
                    let hash = hashes[rng.below(hashes.len() as u64) as usize];
                    let id = ids[rng.below(ids.len() as u64) as usize].clone();
                    entry(hash, id, 1_600_000_000 + rng.below(100_000_000) as i64)
                })
                .collect();
            let bytes = match kind {
                OptOutFileKind::Delta => delta_bytes(&file_entries),
                OptOutFileKind::Partition => file_entries.iter().flat_map(OptOutEntry::to_bytes).collect(),
            };
            files.push((file_name(kind, 1_700_000_000 + i64::from(n) * 300, n), bytes));
        }
        Self { files, hashes, ids }
    }

    /// What every lookup must answer, computed the slow, obvious way.
    fn model(&self) -> (BTreeMap<[u8; 32], i64>, BTreeMap<String, i64>) {
        let mut by_hash = BTreeMap::new();
        let mut by_id = BTreeMap::new();
        for (_, bytes) in &self.files {
            for e in crate::optout::parse_file("optout", bytes).expect("valid file") {
                if e.is_sentinel() {
                    continue;
                }
                let latest = by_hash.entry(e.identity_hash).or_insert(e.timestamp);
                *latest = (*latest).max(e.timestamp);
                let earliest = by_id.entry(b64(&e.advertising_id)).or_insert(e.timestamp);
                *earliest = (*earliest).min(e.timestamp);
            }
        }
        (by_hash, by_id)
    }

    fn assert_answers(&self, index: &OptOutIndex, what: &str) {
        let (by_hash, by_id) = self.model();
        for hash in &self.hashes {
            assert_eq!(index.opted_out_since(hash), by_hash.get(hash).copied(), "{what}");
        }
        for id in &self.ids {
            let text = b64(id);
            assert_eq!(
                index.advertising_id_opted_out_since(&text),
                by_id.get(&text).copied(),
                "{what}"
            );
        }
        assert_eq!(index.files().len(), self.files.len(), "{what}");
    }
}

#[test]
fn incremental_builds_answer_exactly_like_one_build_of_everything() {
    for seed in [1u64, 0xDEAD_BEEF, 0x1234_5678_9ABC_DEF1] {
        let scenario = Scenario::new(seed, 400);
        let whole = index_of(&scenario.files);
        scenario.assert_answers(&whole, "all at once");

        let mut rng = XorShift(seed ^ 0x5555);
        for round in 0..5 {
            // A random base, then the rest in random chunks through the overlay; now and then
            // a chunk goes through `apply` with a rebuild instead.
            let split = rng.below(scenario.files.len() as u64 + 1) as usize;
            let (base, rest) = scenario.files.split_at(split);
            let mut index = index_of(base);
            let mut rest = rest.iter().peekable();
            while rest.peek().is_some() {
                let chunk: Vec<&(OptOutFileName, Vec<u8>)> = rest.by_ref().take(rng.below(3) as usize + 1).collect();
                if rng.below(4) == 0 {
                    let selection = FileSelection {
                        add: chunk.iter().map(|(name, _)| name.clone()).collect(),
                        drop: Vec::new(),
                    };
                    let read = |name: &OptOutFileName| -> Result<Vec<u8>, StoreError> {
                        Ok(scenario
                            .files
                            .iter()
                            .find(|(n, _)| n == name)
                            .map(|(_, b)| b.clone())
                            .unwrap_or_default())
                    };
                    index = index.apply(&selection, read).expect("valid files");
                } else {
                    index = index
                        .with_additional_files(chunk.iter().map(|(name, bytes)| (name.clone(), bytes.as_slice())))
                        .expect("valid files");
                }
            }
            scenario.assert_answers(&index, &format!("seed {seed:x}, round {round}, split {split}"));
        }
    }
}

#[test]
fn apply_follows_the_selection_and_rebuilds_only_when_it_must() {
    let day = 86_400;
    let t0 = 1_701_993_600;
    let p0 = file_name(OptOutFileKind::Partition, t0, 1);
    let d1 = file_name(OptOutFileKind::Delta, t0 + 1000, 2);
    let d2 = file_name(OptOutFileKind::Delta, t0 + day - 300, 3);
    let p1 = file_name(OptOutFileKind::Partition, t0 + day, 4);
    let d3 = file_name(OptOutFileKind::Delta, t0 + day + 300, 5);
    let one = |hash: [u8; 32], ts: i64| delta_bytes(&[entry(hash, hash[..].to_vec(), ts)]);
    let store: Vec<(OptOutFileName, Vec<u8>)> = vec![
        (p0.clone(), entry([1; 32], vec![1; 32], t0 - 5).to_bytes().to_vec()),
        (d1.clone(), one([2; 32], t0 + 900)),
        (d2.clone(), one([3; 32], t0 + day - 400)),
        // The day's partition repeats d1's entry, as OptOut's partitions do.
        (p1.clone(), entry([2; 32], vec![2; 32], t0 + 900).to_bytes().to_vec()),
        (d3.clone(), one([4; 32], t0 + day + 200)),
    ];
    let read = |name: &OptOutFileName| -> Result<Vec<u8>, StoreError> {
        Ok(store
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
            .unwrap_or_default())
    };
    let policy = OptOutFilePolicy::default();
    let listed = |upto: usize| -> Vec<OptOutFileName> { store[..upto].iter().map(|(n, _)| n.clone()).collect() };

    let start = OptOutIndex::default();
    let selection = select_files(&policy, &listed(3), start.files(), t0 + day - 200);
    assert_eq!(selection.add, listed(3));
    let first = start.apply(&selection, read).expect("valid");
    assert_eq!(first.len(), 3);

    // A delta only: the overlay grows, the base is shared.
    let selection = select_files(&policy, std::slice::from_ref(&d3), first.files(), t0 + day + 400);
    assert!(!selection.needs_rebuild());
    let second = first.apply(&selection, read).expect("valid");
    assert!(Arc::ptr_eq(&first.base, &second.base));
    assert_eq!(second.opted_out_since(&[4; 32]), Some(t0 + day + 200));

    // The next day's partition: a new base without d1, whose entry the partition carries.
    let selection = select_files(&policy, &listed(5), second.files(), t0 + day + 500);
    assert_eq!(selection.add, vec![p1.clone()]);
    assert_eq!(selection.drop, vec![d1.clone()]);
    let third = second.apply(&selection, read).expect("valid");
    assert!(!Arc::ptr_eq(&second.base, &third.base));
    assert!(third.overlay.is_none());
    assert!(!third.files().contains(&d1));
    assert_eq!(third.files().len(), 4);
    for hash in [[1u8; 32], [2; 32], [3; 32], [4; 32]] {
        assert_eq!(third.opted_out_since(&hash), second.opted_out_since(&hash));
        assert!(third.opted_out_since(&hash).is_some());
    }

    // A read failure leaves the caller with its old index and the error.
    let failing = |_: &OptOutFileName| -> Result<Vec<u8>, StoreError> {
        Err(StoreError::new("optout", crate::error::Problem::OptOutFileName))
    };
    let selection = FileSelection {
        add: vec![file_name(OptOutFileKind::Delta, t0 + 2 * day, 9)],
        drop: Vec::new(),
    };
    assert!(third.apply(&selection, failing).is_err());
}

/// A reader that hands out at most `step` bytes per call, to put chunk boundaries mid-entry.
struct Trickle<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(out.len()).min(self.bytes.len());
        out[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

#[test]
fn streamed_files_index_exactly_like_whole_ones() {
    let scenario = Scenario::new(91, 600);
    let mut whole = OptOutIndex::builder();
    for (name, bytes) in &scenario.files {
        whole.add_file(name.clone(), bytes).expect("valid file");
    }
    let whole = whole.build();
    for step in [1, 7, 72, 1000, usize::MAX] {
        let mut streamed = OptOutIndex::builder();
        for (name, bytes) in &scenario.files {
            let reader = Trickle { bytes, step };
            streamed
                .add_reader(name.clone(), reader, bytes.len() as u64)
                .expect("valid file");
        }
        let streamed = streamed.build();
        scenario.assert_answers(&streamed, &format!("streamed with step {step}"));
        assert_eq!(streamed.len(), whole.len());
    }
}

#[test]
fn a_stream_of_the_wrong_length_adds_nothing() {
    let scenario = Scenario::new(5, 60);
    let (name, bytes) = &scenario.files[0];
    let mut builder = OptOutIndex::builder();
    let short = Trickle {
        bytes: &bytes[..bytes.len() - 72],
        step: 100,
    };
    assert!(builder.add_reader(name.clone(), short, bytes.len() as u64).is_err());
    let ragged = Trickle {
        bytes: &bytes[..bytes.len() - 5],
        step: 100,
    };
    assert!(builder
        .add_reader(name.clone(), ragged, bytes.len() as u64 - 5)
        .is_err());
    let index = builder.build();
    assert!(index.is_empty());
    assert!(index.files().is_empty());
}
