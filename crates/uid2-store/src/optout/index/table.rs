//! A sorted, deduplicated array of fixed-size records with a small radix directory in front.
//!
//! Invariants, once built: records are sorted by key (unsigned lexicographic) with no two
//! records sharing a key (duplicates were folded together by [`Record::absorb`]); the directory,
//! when present, has `2^bits + 1` offsets and bucket `b` (the records whose key starts with the
//! `bits`-bit prefix `b`) is `records[directory[b]..directory[b + 1]]`.
//!
//! Why a directory: keys are SHA-256 outputs or encrypted ids, so their leading bits are uniform.
//! A plain binary search over 10 million records costs ~24 dependent cache misses. The directory
//! narrows the search to a bucket of about 128 records, and is small enough (256 KiB at 10
//! million records) to stay in the CPU cache, so reading it costs no memory access. Within the
//! bucket, the key's next bits say where it should be (uniform keys spread evenly), and a short
//! walk from there finds it: the key's neighbourhood is usually one or two cache lines of the
//! one page, instead of the directory's page and a binary search's lines.

use std::cmp::Ordering;

/// A fixed-size record of the table.
pub(super) trait Record: Copy + Send {
    /// The sort key; at least 8 bytes (the directory and the fast comparison read the first 8).
    fn key(&self) -> &[u8];
    /// Folds `other`, a record with the same key, into `self`.
    fn absorb(&mut self, other: &Self);
}

/// Records per directory bucket we aim for.
const TARGET_BUCKET: usize = 128;
/// Records walked from the estimated position before falling back to a binary search (keys that
/// are not uniform, or an unlucky bucket).
const WALK: usize = 8;
/// 2^22 buckets (16 MiB of directory) is plenty for 32 million records and more.
const MAX_DIRECTORY_BITS: u32 = 22;

/// The first 8 key bytes, big-endian: ordering by it agrees with ordering by the key.
fn prefix(key: &[u8]) -> u64 {
    key.first_chunk::<8>().map_or(0, |p| u64::from_be_bytes(*p))
}

fn compare<R: Record>(a: &R, b: &R) -> Ordering {
    // Random keys almost always differ in the first 8 bytes, and one integer comparison is
    // cheaper than a 32-byte memcmp call: this halves the sort time of a 10M-entry build.
    prefix(a.key()).cmp(&prefix(b.key())).then_with(|| a.key().cmp(b.key()))
}

/// Sorts `records` by key and folds duplicates together, in place.
///
/// In place on purpose: the index builds its two tables on two threads, and if the helper
/// thread is lost the vector is still here to sort again.
pub(super) fn sort_and_merge<R: Record>(records: &mut Vec<R>) {
    records.sort_unstable_by(compare);
    // `dedup_by` hands over (later, kept); the later duplicate is removed once absorbed.
    records.dedup_by(|later, kept| {
        if later.key() == kept.key() {
            kept.absorb(later);
            true
        } else {
            false
        }
    });
}

pub(super) struct Table<R> {
    records: Vec<R>,
    /// Empty when the table is too small to need one or too large for `u32` offsets.
    directory: Vec<u32>,
    bits: u32,
}

impl<R: Record> Table<R> {
    pub(super) fn empty() -> Self {
        Self {
            records: Vec::new(),
            directory: Vec::new(),
            bits: 0,
        }
    }

    /// Takes records already passed through [`sort_and_merge`].
    pub(super) fn from_sorted(mut records: Vec<R>) -> Self {
        // Give back the growth slack of the accumulating vector (for large vectors the
        // allocator remaps pages rather than copying).
        records.shrink_to_fit();
        let bits = directory_bits(records.len());
        let directory = build_directory(&records, bits).unwrap_or_default();
        Self {
            records,
            directory,
            bits,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.records.len()
    }

    pub(super) fn records(&self) -> &[R] {
        &self.records
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.records.capacity() * std::mem::size_of::<R>() + self.directory.capacity() * std::mem::size_of::<u32>()
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<&R> {
        let candidates = self.bucket(key)?;
        let order = |record: &R| {
            prefix(record.key())
                .cmp(&prefix(key))
                .then_with(|| record.key().cmp(key))
        };
        // Where `key` would sit if keys were perfectly even: the bits below the directory's
        // prefix, scaled to the bucket.
        let below = prefix(key).checked_shl(self.bits).unwrap_or(0);
        let guess = ((u128::from(below) * candidates.len() as u128) >> 64) as usize;
        let found = match candidates.get(guess).map(order)? {
            Ordering::Equal => Some(guess),
            Ordering::Less => {
                // The record at `guess` is smaller: walk right, then search what is left.
                let after = guess + 1;
                let walked = candidates.get(after..(after + WALK).min(candidates.len()))?;
                match walked.iter().position(|r| order(r) != Ordering::Less) {
                    Some(i) => (order(&walked[i]) == Ordering::Equal).then_some(after + i),
                    None => {
                        let rest_start = after + walked.len();
                        let rest = candidates.get(rest_start..)?;
                        rest.binary_search_by(order).ok().map(|i| rest_start + i)
                    }
                }
            }
            Ordering::Greater => {
                // Larger: walk left, then search what is left.
                let from = guess.saturating_sub(WALK);
                let walked = candidates.get(from..guess)?;
                match walked.iter().rposition(|r| order(r) != Ordering::Greater) {
                    Some(i) => (order(&walked[i]) == Ordering::Equal).then_some(from + i),
                    None => candidates.get(..from)?.binary_search_by(order).ok(),
                }
            }
        };
        candidates.get(found?)
    }

    /// The records that can hold `key`: its directory bucket, or all of them.
    fn bucket(&self, key: &[u8]) -> Option<&[R]> {
        if self.directory.is_empty() {
            return Some(&self.records);
        }
        let b = bucket_of(key, self.bits);
        let start = usize::try_from(*self.directory.get(b)?).ok()?;
        let end = usize::try_from(*self.directory.get(b.checked_add(1)?)?).ok()?;
        self.records.get(start..end)
    }
}

/// About [`TARGET_BUCKET`] records per bucket; no directory below 2 × that.
fn directory_bits(len: usize) -> u32 {
    let per_bucket = len / TARGET_BUCKET;
    if per_bucket < 2 {
        return 0;
    }
    per_bucket.ilog2().min(MAX_DIRECTORY_BITS)
}

fn bucket_of(key: &[u8], bits: u32) -> usize {
    // `checked_shr` because a shift by 64 (bits = 0) overflows; that case has one bucket.
    let b = prefix(key).checked_shr(64 - bits).unwrap_or(0);
    usize::try_from(b).unwrap_or(0)
}

/// `None` when there is nothing to gain (`bits` = 0) or the offsets do not fit `u32`.
fn build_directory<R: Record>(records: &[R], bits: u32) -> Option<Vec<u32>> {
    if bits == 0 {
        return None;
    }
    u32::try_from(records.len()).ok()?;
    let buckets = 1usize.checked_shl(bits)?;
    let mut directory = Vec::with_capacity(buckets + 1);
    let mut next = 0usize;
    for b in 0..=buckets {
        while records.get(next).is_some_and(|r| bucket_of(r.key(), bits) < b) {
            next += 1;
        }
        directory.push(u32::try_from(next).ok()?);
    }
    Some(directory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Pair {
        key: [u8; 8],
        count: u32,
    }

    impl Record for Pair {
        fn key(&self) -> &[u8] {
            &self.key
        }
        fn absorb(&mut self, other: &Self) {
            self.count += other.count;
        }
    }

    fn pair(k: u64) -> Pair {
        Pair {
            key: k.to_be_bytes(),
            count: 1,
        }
    }

    #[test]
    fn finds_every_key_with_and_without_a_directory() {
        for n in [0usize, 1, 5, 15, 16, 17, 100, 255, 256, 257, 5000, 70_000] {
            // Keys spread over the whole range, with every third one written twice.
            let keys: Vec<u64> = (0..n as u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
            let present: std::collections::HashSet<u64> = keys.iter().copied().collect();
            let mut records: Vec<Pair> = keys.iter().map(|k| pair(*k)).collect();
            records.extend(keys.iter().step_by(3).map(|k| pair(*k)));
            sort_and_merge(&mut records);
            let table = Table::from_sorted(records);
            assert_eq!(table.len(), n);
            assert_eq!(table.directory.is_empty(), n < 2 * TARGET_BUCKET, "n = {n}");
            for (i, k) in keys.iter().enumerate() {
                let found = table.get(&k.to_be_bytes()).expect("present");
                assert_eq!(found.count, if i % 3 == 0 { 2 } else { 1 });
                let absent = k.wrapping_add(1);
                if !present.contains(&absent) {
                    assert!(table.get(&absent.to_be_bytes()).is_none());
                }
            }
        }
    }

    #[test]
    fn uneven_keys_are_found_by_the_fallback_search() {
        // Consecutive small keys: one directory bucket holds them all and every estimate is far
        // off, so the walks give up and the binary searches decide.
        let mut records: Vec<Pair> = (0..20_000u64).map(|i| pair(i * 3)).collect();
        records.extend((0..300u64).map(|i| pair(u64::MAX - i * 7)));
        sort_and_merge(&mut records);
        let table = Table::from_sorted(records);
        assert!(table.bits > 0);
        for i in 0..20_000u64 {
            assert!(table.get(&(i * 3).to_be_bytes()).is_some(), "{i}");
            assert!(table.get(&(i * 3 + 1).to_be_bytes()).is_none(), "{i}");
        }
        for i in 0..300u64 {
            assert!(table.get(&(u64::MAX - i * 7).to_be_bytes()).is_some());
            assert!(table.get(&(u64::MAX - i * 7 - 1).to_be_bytes()).is_none());
        }
    }

    #[test]
    fn extreme_keys_land_in_the_first_and_last_buckets() {
        let mut records: Vec<Pair> = (0..1000u64).map(|i| pair(i << 40)).collect();
        records.push(pair(0));
        records.push(pair(u64::MAX));
        sort_and_merge(&mut records);
        let table = Table::from_sorted(records);
        assert!(table.bits > 0);
        assert_eq!(table.get(&[0; 8]).map(|p| p.count), Some(2));
        assert_eq!(table.get(&[0xFF; 8]).map(|p| p.count), Some(1));
        assert!(table.get(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE]).is_none());
    }
}
