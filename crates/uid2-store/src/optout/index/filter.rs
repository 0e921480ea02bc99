//! A blocked Bloom filter over table keys: the answer for most lookups without touching the
//! table.
//!
//! Almost every lookup asks about someone who has not opted out. In a 10-million-record table
//! each such miss cost a directory read and a bucket read in different parts of 400 MB — two
//! cache and TLB misses, ~300 ns. The filter answers "certainly absent" from one 64-byte block
//! (one miss) for all but ~0.2% of absent keys; present keys, and the rare false positive, go on
//! to the table. Never a false negative, so answers do not change.
//!
//! Keys are SHA-256 outputs (first-level hashes), so their bytes are already uniform: the block
//! comes from key bytes 0..8 read big-endian and the eight bit positions from bytes 16..28. The
//! block therefore grows with the key, so building from the sorted table fills the blocks in
//! order, one cache line after the next (from random blocks, the build of a 10M-entry filter
//! was a cache miss per key and a fifth of the operator's startup). Used for the hash table
//! only; advertising-id lookups are rare.

/// Bits per block: one cache line.
const BLOCK_BITS: usize = 512;
/// Filter bits per key: ~0.2% false positives with eight bits set per key in 512-bit blocks.
const BITS_PER_KEY: usize = 16;
/// Bits set per key.
const PROBES: usize = 8;

#[derive(Default)]
pub(super) struct Filter {
    /// `blocks * 8` words; block `b` is `words[8b..8b + 8]`.
    words: Vec<u64>,
    blocks: usize,
}

/// The block and the eight bit positions (0..512) of `key`, which has at least 28 bytes.
fn probes(key: &[u8]) -> Option<(u64, [u16; PROBES])> {
    let block_word = u64::from_be_bytes(*key.first_chunk::<8>()?);
    let bits = u128::from_le_bytes({
        let mut b = [0u8; 16];
        b[..12].copy_from_slice(key.get(16..28)?);
        b
    });
    let mut positions = [0u16; PROBES];
    for (i, position) in positions.iter_mut().enumerate() {
        // Nine bits each, 72 of the 96 available.
        *position = ((bits >> (9 * i)) & 0x1FF) as u16;
    }
    Some((block_word, positions))
}

impl Filter {
    /// A filter holding `keys` (each at least 28 bytes; shorter ones make the filter pass
    /// everything, which is correct, only slower). Any order gives the same filter; sorted keys
    /// build it fastest.
    pub(super) fn build<'a>(keys: impl ExactSizeIterator<Item = &'a [u8]>) -> Self {
        let blocks = (keys.len() * BITS_PER_KEY).div_ceil(BLOCK_BITS).max(1);
        let mut filter = Self {
            words: vec![0; blocks * BLOCK_BITS / 64],
            blocks,
        };
        for key in keys {
            let Some((block_word, positions)) = probes(key) else {
                return Self::default();
            };
            let base = filter.block(block_word) * 8;
            for p in positions {
                let p = usize::from(p);
                if let Some(word) = filter.words.get_mut(base + p / 64) {
                    *word |= 1 << (p % 64);
                }
            }
        }
        filter
    }

    /// The block of a key: the multiply-shift range reduction of 64 uniform bits.
    fn block(&self, block_word: u64) -> usize {
        ((u128::from(block_word) * self.blocks as u128) >> 64) as usize
    }

    /// `false`: the key is certainly absent. `true`: it may be present (always for an empty,
    /// unbuilt filter).
    pub(super) fn may_contain(&self, key: &[u8]) -> bool {
        if self.words.is_empty() {
            return true;
        }
        let Some((block_word, positions)) = probes(key) else {
            return true;
        };
        let base = self.block(block_word) * 8;
        let Some(block) = self.words.get(base..base + 8) else {
            return true;
        };
        positions.iter().all(|&p| {
            let p = usize::from(p);
            block[p / 64] & (1 << (p % 64)) != 0
        })
    }

    /// Reads the first and last word of `key`'s block (a block may straddle two cache lines)
    /// without testing it; see [`super::OptOutIndex::warm`].
    pub(super) fn warm(&self, key: &[u8]) -> u64 {
        let Some((block_word, _)) = probes(key) else {
            return 0;
        };
        let base = self.block(block_word) * 8;
        self.words.get(base).copied().unwrap_or(0) ^ self.words.get(base + 7).copied().unwrap_or(0)
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> [u8; 32] {
        uid2_protocol::crypto::sha256(&[&i.to_le_bytes()])
    }

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let present: Vec<[u8; 32]> = (0..50_000).map(key).collect();
        let filter = Filter::build(present.iter().map(|k| &k[..]));
        assert!(present.iter().all(|k| filter.may_contain(k)), "never a false negative");
        let false_positives = (1_000_000..1_100_000).filter(|&i| filter.may_contain(&key(i))).count();
        // 0.2% expected; allow up to 0.6% of 100,000 absent keys.
        assert!(false_positives < 600, "{false_positives} false positives in 100,000");
        assert!(filter.heap_bytes() >= 50_000 * BITS_PER_KEY / 8);
    }

    #[test]
    fn unbuilt_or_short_keys_pass_everything() {
        assert!(Filter::default().may_contain(&[1; 32]));
        let short = Filter::build([&[1u8; 8][..]].into_iter());
        assert!(short.may_contain(&[2; 32]));
        let filter = Filter::build([&key(1)[..]].into_iter());
        assert!(filter.may_contain(&[0; 8]), "a key too short to probe passes");
    }
}
