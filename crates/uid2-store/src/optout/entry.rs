//! One opt-out entry: 72 bytes, little-endian.
//!
//! | offset | len | field |
//! |---|---|---|
//! | 0 | 32 | identity hash = the user's first-level hash |
//! | 32 | 32 | advertising id (raw UID); of a 33-byte id only bytes 1..33 |
//! | 64 | 7 | opt-out time, epoch **seconds**, unsigned little-endian |
//! | 71 | 1 | metadata: bits 7–6 record version, bits 5–0 the first byte of a 33-byte id |
//!
//! Version 0 records carry a 32-byte advertising id. Writers set `metadata = 1<<6 | id[0]` for a
//! 33-byte id; readers rebuild the id as `[metadata & 0x3F] ‖ bytes 32..64`. (So a raw UID v4
//! whose first byte uses bits 7–6, e.g. a prod-environment one, comes back with those bits
//! cleared; that is the reference's format, kept as it is.) Delta files begin with an all-zero
//! sentinel and end with an all-`0xFF` one, whose timestamps bound the delta's window.

use crate::error::{Problem, StoreError};

/// An opt-out record.
#[derive(Clone, PartialEq, Eq)]
pub struct OptOutEntry {
    pub identity_hash: [u8; 32],
    /// 32 bytes (v2 raw UID) or 33 (v3/v4).
    pub advertising_id: Vec<u8>,
    /// Epoch seconds.
    pub timestamp: i64,
}

impl std::fmt::Debug for OptOutEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptOutEntry")
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

const TIMESTAMP_MASK: u64 = 0x00FF_FFFF_FFFF_FFFF;

impl OptOutEntry {
    pub const LEN: usize = 72;

    pub fn parse(bytes: &[u8; Self::LEN]) -> Self {
        let mut identity_hash = [0u8; 32];
        identity_hash.copy_from_slice(&bytes[..32]);
        let mut tail = [0u8; 8];
        tail.copy_from_slice(&bytes[64..72]);
        let raw = u64::from_le_bytes(tail);
        let timestamp = i64::try_from(raw & TIMESTAMP_MASK).unwrap_or(i64::MAX);
        let metadata = bytes[71];
        let advertising_id = if metadata >> 6 == 0 {
            bytes[32..64].to_vec()
        } else {
            let mut id = Vec::with_capacity(33);
            id.push(metadata & 0x3F);
            id.extend_from_slice(&bytes[32..64]);
            id
        };
        Self {
            identity_hash,
            advertising_id,
            timestamp,
        }
    }

    /// The wire form. An advertising id of a length other than 32 or 33 is written as its first
    /// 32 bytes (zero-padded); no valid raw UID has another length.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..32].copy_from_slice(&self.identity_hash);
        let (metadata, stored): (u8, &[u8]) = match self.advertising_id.as_slice() {
            [first, rest @ ..] if rest.len() == 32 => ((1 << 6) | first, rest),
            id => (0, id),
        };
        let n = stored.len().min(32);
        out[32..32 + n].copy_from_slice(&stored[..n]);
        let ts = u64::try_from(self.timestamp).unwrap_or(0) & TIMESTAMP_MASK;
        out[64..72].copy_from_slice(&ts.to_le_bytes());
        // The top timestamp byte is the metadata byte.
        out[71] |= metadata;
        out
    }

    /// The all-zero entry that opens a delta file.
    pub fn start_sentinel(timestamp: i64) -> Self {
        Self {
            identity_hash: [0; 32],
            advertising_id: vec![0; 32],
            timestamp,
        }
    }

    /// The all-`0xFF` entry that closes a delta file.
    pub fn end_sentinel(timestamp: i64) -> Self {
        Self {
            identity_hash: [0xFF; 32],
            advertising_id: vec![0xFF; 32],
            timestamp,
        }
    }

    /// A sentinel (all-zero or all-`0xFF` identity hash), never a user.
    pub fn is_sentinel(&self) -> bool {
        self.identity_hash.iter().all(|b| *b == 0) || self.identity_hash.iter().all(|b| *b == 0xFF)
    }
}

/// One entry read in place, without allocating: the index reads every entry of every file
/// through this, ten million of them in production. It applies the same rules as
/// [`OptOutEntry::parse`] (a test checks the two agree).
#[derive(Clone, Copy)]
pub(crate) struct EntryView<'a> {
    pub identity_hash: &'a [u8; 32],
    /// The 32 stored advertising-id bytes: the whole id, or bytes 1..33 of a 33-byte id.
    pub id_tail: &'a [u8; 32],
    /// The first byte of a 33-byte id (record version ≠ 0), rebuilt from the metadata's low
    /// 6 bits; `None` for a version-0 record, whose id is the 32-byte tail alone.
    pub id_first: Option<u8>,
    /// Epoch seconds, the 56-bit field.
    pub timestamp: u64,
}

impl<'a> EntryView<'a> {
    /// `None` unless `chunk` is exactly 72 bytes.
    pub(crate) fn new(chunk: &'a [u8]) -> Option<Self> {
        let (identity_hash, rest) = chunk.split_first_chunk::<32>()?;
        let (id_tail, rest) = rest.split_first_chunk::<32>()?;
        let tail: &[u8; 8] = rest.try_into().ok()?;
        let metadata = tail[7];
        Some(Self {
            identity_hash,
            id_tail,
            id_first: (metadata >> 6 != 0).then_some(metadata & 0x3F),
            timestamp: u64::from_le_bytes(*tail) & TIMESTAMP_MASK,
        })
    }

    /// A sentinel (all-zero or all-`0xFF` identity hash), never a user.
    pub(crate) fn is_sentinel(&self) -> bool {
        self.identity_hash.iter().all(|b| *b == 0) || self.identity_hash.iter().all(|b| *b == 0xFF)
    }
}

/// Views the entries of a whole file in place; its length must be a multiple of 72.
pub(crate) fn view_file<'a>(
    store: &'static str,
    bytes: &'a [u8],
) -> Result<impl Iterator<Item = EntryView<'a>> + 'a, StoreError> {
    if bytes.len() % OptOutEntry::LEN != 0 {
        return Err(StoreError::new(store, Problem::OptOutFileLength { len: bytes.len() }));
    }
    Ok(bytes.chunks_exact(OptOutEntry::LEN).filter_map(EntryView::new))
}

/// Parses a whole delta or partition file; its length must be a multiple of 72.
pub fn parse_file(store: &'static str, bytes: &[u8]) -> Result<Vec<OptOutEntry>, StoreError> {
    if bytes.len() % OptOutEntry::LEN != 0 {
        return Err(StoreError::new(store, Problem::OptOutFileLength { len: bytes.len() }));
    }
    Ok(bytes
        .chunks_exact(OptOutEntry::LEN)
        .filter_map(|chunk| <&[u8; OptOutEntry::LEN]>::try_from(chunk).ok())
        .map(OptOutEntry::parse)
        .collect())
}

/// Checks that a file, read in chunks of any size, is framed the way the OptOut service writes
/// every opt-out file: a whole number of entries, the first a start sentinel (all-zero hash) and
/// the last an end sentinel (all-`0xFF` hash). Deltas are written between the two sentinels and
/// partitions keep them (sorted, the null hash first and the `0xFF` hash last), so a file that
/// fails this was cut short or spoiled on the way; an empty file passes (the reference skips it).
///
/// The reference does not check this: it indexes whatever entries a file holds. A truncated
/// delta whose length happens to be a multiple of 72 would then be indexed half, and a spoiled
/// one indexed as garbage, and since a file name is indexed once, the real file would never be
/// read again. The sync layer checks every file it downloads with this before indexing it.
#[derive(Debug, Default, Clone)]
pub struct FramingCheck {
    /// The first entry (up to 72 bytes seen so far).
    head: Vec<u8>,
    /// The last 72 bytes seen so far.
    tail: Vec<u8>,
    len: u64,
}

impl FramingCheck {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next chunk of the file.
    pub fn update(&mut self, chunk: &[u8]) {
        self.len += chunk.len() as u64;
        let missing = OptOutEntry::LEN - self.head.len();
        self.head.extend_from_slice(&chunk[..missing.min(chunk.len())]);
        if chunk.len() >= OptOutEntry::LEN {
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - OptOutEntry::LEN..]);
        } else {
            self.tail.extend_from_slice(chunk);
            let excess = self.tail.len().saturating_sub(OptOutEntry::LEN);
            self.tail.drain(..excess);
        }
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The verdict on the whole file.
    pub fn finish(&self, store: &'static str) -> Result<(), StoreError> {
        if self.len % OptOutEntry::LEN as u64 != 0 {
            let len = usize::try_from(self.len).unwrap_or(usize::MAX);
            return Err(StoreError::new(store, Problem::OptOutFileLength { len }));
        }
        if self.len == 0 {
            return Ok(());
        }
        let starts = self.head.get(..32).is_some_and(|hash| hash.iter().all(|b| *b == 0));
        let ends = self.tail.get(..32).is_some_and(|hash| hash.iter().all(|b| *b == 0xFF));
        if starts && ends {
            Ok(())
        } else {
            Err(StoreError::new(store, Problem::OptOutFileFraming))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_32_and_33_byte_ids() {
        for id in [vec![7u8; 32], {
            let mut v = vec![0x04u8];
            v.extend([9u8; 32]);
            v
        }] {
            let entry = OptOutEntry {
                identity_hash: [3; 32],
                advertising_id: id,
                timestamp: 1_702_039_207,
            };
            assert_eq!(OptOutEntry::parse(&entry.to_bytes()), entry);
        }
    }

    #[test]
    fn layout_is_little_endian_with_the_metadata_byte_last() {
        let mut id = vec![0x20u8];
        id.extend([1u8; 32]);
        let bytes = OptOutEntry {
            identity_hash: [2; 32],
            advertising_id: id,
            timestamp: 0x0102_0304,
        }
        .to_bytes();
        assert_eq!(&bytes[64..68], &[4, 3, 2, 1]);
        assert_eq!(bytes[71], 0x40 | 0x20);
        assert!(bytes[32..64].iter().all(|b| *b == 1));
    }

    #[test]
    fn the_reference_clears_bits_7_6_of_a_v4_first_byte() {
        let mut id = vec![0xA0u8];
        id.extend([1u8; 32]);
        let entry = OptOutEntry {
            identity_hash: [2; 32],
            advertising_id: id,
            timestamp: 1,
        };
        assert_eq!(OptOutEntry::parse(&entry.to_bytes()).advertising_id[0], 0x20);
    }

    #[test]
    fn the_in_place_view_agrees_with_parse() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..500 {
            let mut bytes = [0u8; OptOutEntry::LEN];
            for b in bytes.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            let entry = OptOutEntry::parse(&bytes);
            let view = EntryView::new(&bytes).expect("72 bytes");
            assert_eq!(view.identity_hash, &entry.identity_hash);
            assert_eq!(view.timestamp as i64, entry.timestamp);
            assert_eq!(view.is_sentinel(), entry.is_sentinel());
            let mut id = view.id_first.map(|b| vec![b]).unwrap_or_default();
            id.extend_from_slice(view.id_tail);
            assert_eq!(id, entry.advertising_id);
        }
        assert!(EntryView::new(&[0u8; 71]).is_none());
        assert!(EntryView::new(&[0u8; 73]).is_none());
        assert!(view_file("optout", &[0u8; 143]).is_err());
        assert_eq!(view_file("optout", &[0u8; 144]).expect("two entries").count(), 2);
    }

    #[test]
    fn sentinels_and_file_lengths() {
        assert!(OptOutEntry::start_sentinel(1).is_sentinel());
        assert!(OptOutEntry::end_sentinel(2).is_sentinel());
        let mut file = OptOutEntry::start_sentinel(1).to_bytes().to_vec();
        file.extend(OptOutEntry::end_sentinel(2).to_bytes());
        let entries = parse_file("optout", &file).expect("two entries");
        assert_eq!(entries.len(), 2);
        assert_eq!((entries[0].timestamp, entries[1].timestamp), (1, 2));
        assert!(parse_file("optout", &file[..71]).is_err());
        assert!(parse_file("optout", &[]).expect("empty").is_empty());
    }

    fn framing_of(file: &[u8], chunk: usize) -> Result<(), StoreError> {
        let mut check = FramingCheck::new();
        for part in file.chunks(chunk.max(1)) {
            check.update(part);
        }
        assert_eq!(check.len(), file.len() as u64);
        check.finish("optout")
    }

    #[test]
    fn framing_accepts_what_optout_writes_in_any_chunking() {
        let user = OptOutEntry {
            identity_hash: [7; 32],
            advertising_id: vec![8; 32],
            timestamp: 1_702_039_207,
        };
        let mut delta = OptOutEntry::start_sentinel(1).to_bytes().to_vec();
        for _ in 0..3 {
            delta.extend(user.to_bytes());
        }
        delta.extend(OptOutEntry::end_sentinel(2).to_bytes());
        for chunk in [1, 5, 71, 72, 73, 100, 144, 1000] {
            assert_eq!(framing_of(&delta, chunk), Ok(()), "chunks of {chunk}");
        }
        assert_eq!(framing_of(&[], 10), Ok(()), "an empty file is skipped, not refused");
        let sentinels: Vec<u8> = [OptOutEntry::start_sentinel(1), OptOutEntry::end_sentinel(2)]
            .iter()
            .flat_map(OptOutEntry::to_bytes)
            .collect();
        assert_eq!(framing_of(&sentinels, 7), Ok(()));
    }

    #[test]
    fn framing_refuses_truncated_and_spoiled_files() {
        let user = OptOutEntry {
            identity_hash: [7; 32],
            advertising_id: vec![8; 32],
            timestamp: 1_702_039_207,
        };
        let mut delta = OptOutEntry::start_sentinel(1).to_bytes().to_vec();
        for _ in 0..4 {
            delta.extend(user.to_bytes());
        }
        delta.extend(OptOutEntry::end_sentinel(2).to_bytes());
        let framing = Err(StoreError::new("optout", Problem::OptOutFileFraming));
        for chunk in [1, 72, 1000] {
            // Half of six entries is three whole ones: the length alone cannot tell.
            assert_eq!(framing_of(&delta[..delta.len() / 2], chunk), framing, "first half");
            assert_eq!(framing_of(&delta[delta.len() / 2..], chunk), framing, "second half");
            assert_eq!(framing_of(&user.to_bytes(), chunk), framing, "no sentinels");
            let garbage: Vec<u8> = (0..delta.len()).map(|i| (i * 37 % 251) as u8).collect();
            assert_eq!(framing_of(&garbage, chunk), framing, "garbage");
            assert!(matches!(
                framing_of(&delta[..delta.len() - 1], chunk).map_err(|e| e.problem),
                Err(Problem::OptOutFileLength { .. })
            ));
        }
    }
}
