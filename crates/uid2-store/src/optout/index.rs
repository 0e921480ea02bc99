//! The in-memory opt-out index the operator answers from: by first-level hash (every token and
//! identity-map path) and by advertising id (`/v2/optout/status`).
//!
//! # Semantics (sync.md §4.4–4.6)
//! - Any entry for a first-level hash means the user opted out; the answer is the **latest**
//!   timestamp among that hash's entries (the reference merges its delta heap to the max).
//! - The all-zero hash is always opted out, the all-`0xFF` hash never: those are the sentinels
//!   that bracket delta files, so they are short-circuited and never indexed.
//! - By advertising id, the answer is the **earliest** timestamp recorded for that id, found
//!   only by the exact standard-base64 text of the 32- or 33-byte id (see `advertising_id`).
//!
//! # Layout and invariants
//! Ten million entries must fit in well under a gigabyte and index in seconds, so nothing is
//! stored per entry on the heap. Each layer holds two sorted tables of fixed-size records:
//! `(hash, max timestamp)` at 36 bytes and `(id key, min timestamp)` at 37 bytes, each with no
//! duplicate keys. Timestamps are `u32` epoch seconds: they last until 2106, and a file
//! timestamp beyond that (the field has 56 bits) is clamped to `u32::MAX`, which keeps the
//! entry an opt-out and keeps it latest for max and last for min.
//!
//! An index is a large **base** layer (partitions and the deltas present when it was built) plus
//! an optional small **overlay** of the deltas that arrived since; the base is shared by `Arc`
//! between successive indexes, so a new delta costs a rebuild of the overlay only. Lookups ask
//! both layers and combine them as one table would (max for hashes, min for ids), so how the
//! files were split between layers never changes an answer. The set of file names is the union
//! over both layers; a file name is indexed at most once.
//!
//! The index is immutable: every update returns a new one, which the sync layer swaps in.

mod advertising_id;
mod filter;
mod table;

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::Arc;

use self::advertising_id::IdKey;
use self::filter::Filter;
use self::table::{sort_and_merge, Record, Table};
use super::entry::view_file;
use super::selection::FileSelection;
use super::{OptOutEntry, OptOutFileName};
use crate::error::{Problem, StoreError};

/// The store name errors carry.
const STORE: &str = "optout";

/// Below this many records per table, sorting on a second thread costs more than it saves.
const PARALLEL_SORT_FROM: usize = 1 << 16;

#[derive(Clone, Copy)]
struct HashRecord {
    hash: [u8; 32],
    /// Epoch seconds, the latest among the hash's entries.
    timestamp: u32,
}

impl Record for HashRecord {
    fn key(&self) -> &[u8] {
        &self.hash
    }

    fn absorb(&mut self, other: &Self) {
        self.timestamp = self.timestamp.max(other.timestamp);
    }
}

#[derive(Clone, Copy)]
struct IdRecord {
    key: IdKey,
    /// Epoch seconds, little-endian, the earliest among the id's entries. Bytes rather than a
    /// `u32` keep the record at 37 bytes instead of 40 (alignment): 30 MB per 10M ids.
    timestamp: [u8; 4],
}

impl IdRecord {
    fn timestamp(&self) -> u32 {
        u32::from_le_bytes(self.timestamp)
    }
}

impl Record for IdRecord {
    fn key(&self) -> &[u8] {
        &self.key
    }

    fn absorb(&mut self, other: &Self) {
        self.timestamp = self.timestamp().min(other.timestamp()).to_le_bytes();
    }
}

/// One immutable pair of tables, and the filter in front of the hash table.
struct Layer {
    hashes: Table<HashRecord>,
    hash_filter: Filter,
    ids: Table<IdRecord>,
}

impl Layer {
    fn build(mut hashes: Vec<HashRecord>, mut ids: Vec<IdRecord>) -> Self {
        sort_both(&mut hashes, &mut ids);
        let hashes = Table::from_sorted(hashes);
        let hash_filter = Filter::build(hashes.records().iter().map(|r| &r.hash[..]));
        Self {
            hashes,
            hash_filter,
            ids: Table::from_sorted(ids),
        }
    }

    fn empty() -> Self {
        Self {
            hashes: Table::empty(),
            hash_filter: Filter::default(),
            ids: Table::empty(),
        }
    }

    fn hash(&self, first_level_hash: &[u8; 32]) -> Option<&HashRecord> {
        if !self.hash_filter.may_contain(first_level_hash) {
            return None;
        }
        self.hashes.get(first_level_hash)
    }
}

/// Sorts and merges both tables, on two threads when they are large (a 10M-entry build is
/// mostly sorting, and the two sorts are independent).
fn sort_both(hashes: &mut Vec<HashRecord>, ids: &mut Vec<IdRecord>) {
    if hashes.len() < PARALLEL_SORT_FROM || ids.len() < PARALLEL_SORT_FROM {
        sort_and_merge(hashes);
        sort_and_merge(ids);
        return;
    }
    let helper_ids: &mut Vec<IdRecord> = &mut *ids;
    let helped = std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name("optout-index-sort".to_owned())
            .spawn_scoped(scope, move || sort_and_merge(helper_ids));
        sort_and_merge(hashes);
        // Joined here so a failure stays a `false` rather than a panic of the whole scope.
        helper.is_ok_and(|handle| handle.join().is_ok())
    });
    if !helped {
        // No thread could be started (or it died): the ids are still here, sorting is
        // idempotent, so do it on this thread.
        sort_and_merge(ids);
    }
}

fn clamp_timestamp(seconds: u64) -> u32 {
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

/// Who has opted out; see the module documentation for the semantics.
///
/// Cheap to clone (two `Arc`s and the file-name set).
#[derive(Clone)]
pub struct OptOutIndex {
    base: Arc<Layer>,
    overlay: Option<Arc<Layer>>,
    files: BTreeSet<OptOutFileName>,
    advertising_ids: bool,
}

impl Default for OptOutIndex {
    /// No opt-outs, no files; advertising ids are indexed.
    fn default() -> Self {
        Self {
            base: Arc::new(Layer::empty()),
            overlay: None,
            files: BTreeSet::new(),
            advertising_ids: true,
        }
    }
}

impl std::fmt::Debug for OptOutIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Counts only: the entries are users' hashes and ids.
        f.debug_struct("OptOutIndex")
            .field("files", &self.files.len())
            .field("hashes", &self.len())
            .field("advertising_ids", &self.advertising_id_count())
            .field("overlay_hashes", &self.overlay.as_ref().map_or(0, |o| o.hashes.len()))
            .finish()
    }
}

impl OptOutIndex {
    /// Starts a base build from scratch (at startup, or when a partition arrives).
    pub fn builder() -> OptOutIndexBuilder {
        OptOutIndexBuilder {
            hashes: Vec::new(),
            ids: Vec::new(),
            files: BTreeSet::new(),
            advertising_ids: true,
        }
    }

    /// When the user with this first-level hash opted out, in epoch seconds: the latest
    /// timestamp among their entries. `Some` means opted out, whatever the value.
    ///
    /// The all-zero hash answers `Some(0)`: the reference answers "now", and an opted-out
    /// verdict is all any caller reads from it (the index has no clock, and `0` cannot be
    /// mistaken for a real opt-out time). The all-`0xFF` hash answers `None`.
    pub fn opted_out_since(&self, first_level_hash: &[u8; 32]) -> Option<i64> {
        if first_level_hash.iter().all(|b| *b == 0) {
            return Some(0);
        }
        if first_level_hash.iter().all(|b| *b == 0xFF) {
            return None;
        }
        self.layers()
            .filter_map(|layer| layer.hash(first_level_hash))
            .map(|record| record.timestamp)
            .max()
            .map(i64::from)
    }

    /// Reads the filter blocks [`Self::opted_out_since`] will test for this hash, without
    /// answering, and returns what it read mixed together.
    ///
    /// For batch callers: warming the blocks of several hashes one after another, before looking
    /// any of them up, lets the CPU wait for their cache misses together instead of one at a
    /// time (pass the result to `std::hint::black_box`). Never changes an answer.
    pub fn warm(&self, first_level_hash: &[u8; 32]) -> u64 {
        self.layers()
            .fold(0, |mixed, layer| mixed ^ layer.hash_filter.warm(first_level_hash))
    }

    /// The earliest opt-out time (epoch seconds) recorded for the advertising id whose
    /// standard, padded base64 is exactly `advertising_id_b64`, as `/v2/optout/status` sends
    /// it. Always `None` for an index built without advertising ids.
    pub fn advertising_id_opted_out_since(&self, advertising_id_b64: &str) -> Option<i64> {
        let key = advertising_id::key_of_text(advertising_id_b64)?;
        self.layers()
            .filter_map(|layer| layer.ids.get(&key))
            .map(IdRecord::timestamp)
            .min()
            .map(i64::from)
    }

    /// Distinct first-level hashes held, summed over the two layers (a hash in both counts
    /// twice): a measure of size, not a count of users.
    pub fn len(&self) -> usize {
        self.layers().map(|layer| layer.hashes.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Distinct advertising ids held, summed over the two layers like [`Self::len`].
    pub fn advertising_id_count(&self) -> usize {
        self.layers().map(|layer| layer.ids.len()).sum()
    }

    /// The files this index was built from (including empty and sentinel-only ones).
    pub fn files(&self) -> &BTreeSet<OptOutFileName> {
        &self.files
    }

    /// Heap memory held by the tables, in bytes (the file-name set is not counted).
    pub fn heap_bytes(&self) -> usize {
        self.layers()
            .map(|layer| layer.hashes.heap_bytes() + layer.hash_filter.heap_bytes() + layer.ids.heap_bytes())
            .sum()
    }

    /// A new index that shares this one's base and rebuilds only the overlay, with the given
    /// files added to it. Files already indexed are skipped, so the call is idempotent.
    ///
    /// Meant for deltas; a partition added this way is indexed correctly but makes the overlay
    /// as large as the partition (see [`Self::apply`], which rebuilds the base instead).
    pub fn with_additional_files<'a, I>(&self, files: I) -> Result<Self, StoreError>
    where
        I: IntoIterator<Item = (OptOutFileName, &'a [u8])>,
    {
        let mut additions = self.overlay_builder();
        for (name, bytes) in files {
            additions.add_file(name, bytes)?;
        }
        Ok(self.with_overlay(additions))
    }

    /// Applies a [`FileSelection`]: the index that holds `files() − drop + add`.
    ///
    /// When the selection adds a partition or drops anything, the base is rebuilt from every
    /// remaining file, so `read` is called for all of them (the caller must keep the bytes of
    /// every file in [`Self::files`] until a selection drops it). Otherwise only the added
    /// files are read, into the overlay. On any error, this index is untouched.
    pub fn apply<B, E, F>(&self, selection: &FileSelection, mut read: F) -> Result<Self, E>
    where
        F: FnMut(&OptOutFileName) -> Result<B, E>,
        B: AsRef<[u8]>,
        E: From<StoreError>,
    {
        self.apply_with(selection, |builder, name| {
            let bytes = read(name)?;
            Ok(builder.add_file(name.clone(), bytes.as_ref())?)
        })
    }

    /// [`Self::apply`] reading each file through `open` (a reader and the file's length) in
    /// bounded chunks, so a partition of hundreds of megabytes is never held in memory whole.
    pub fn apply_from_readers<R, E, F>(&self, selection: &FileSelection, mut open: F) -> Result<Self, E>
    where
        F: FnMut(&OptOutFileName) -> Result<(R, u64), E>,
        R: Read,
        E: From<StoreError>,
    {
        self.apply_with(selection, |builder, name| {
            let (reader, len) = open(name)?;
            Ok(builder.add_reader(name.clone(), reader, len)?)
        })
    }

    fn apply_with<E, F>(&self, selection: &FileSelection, mut add: F) -> Result<Self, E>
    where
        F: FnMut(&mut OptOutIndexBuilder, &OptOutFileName) -> Result<(), E>,
    {
        let (mut builder, kept) = if selection.needs_rebuild() {
            let dropped: BTreeSet<&OptOutFileName> = selection.drop.iter().collect();
            let kept: Vec<&OptOutFileName> = self.files.iter().filter(|name| !dropped.contains(name)).collect();
            (Self::builder().advertising_ids(self.advertising_ids), kept)
        } else {
            (self.overlay_builder(), Vec::new())
        };
        for name in kept.into_iter().chain(&selection.add) {
            if builder.files.contains(name) {
                continue;
            }
            add(&mut builder, name)?;
        }
        Ok(if selection.needs_rebuild() {
            builder.build()
        } else {
            self.with_overlay(builder)
        })
    }

    fn layers(&self) -> impl Iterator<Item = &Layer> {
        std::iter::once(&*self.base).chain(self.overlay.as_deref())
    }

    /// A builder that collects only new records, and already knows every indexed file so it
    /// skips them.
    fn overlay_builder(&self) -> OptOutIndexBuilder {
        OptOutIndexBuilder {
            hashes: Vec::new(),
            ids: Vec::new(),
            files: self.files.clone(),
            advertising_ids: self.advertising_ids,
        }
    }

    /// This index with `additions` (from [`Self::overlay_builder`]) merged into the overlay.
    fn with_overlay(&self, additions: OptOutIndexBuilder) -> Self {
        let OptOutIndexBuilder {
            mut hashes,
            mut ids,
            files,
            advertising_ids,
        } = additions;
        let overlay = if hashes.is_empty() && ids.is_empty() {
            // Only empty or sentinel-only files: the records are unchanged.
            self.overlay.clone()
        } else {
            if let Some(old) = &self.overlay {
                hashes.extend_from_slice(old.hashes.records());
                ids.extend_from_slice(old.ids.records());
            }
            Some(Arc::new(Layer::build(hashes, ids)))
        };
        Self {
            base: Arc::clone(&self.base),
            overlay,
            files,
            advertising_ids,
        }
    }
}

/// Collects files for a base build: [`OptOutIndex::builder`], any number of
/// [`add_file`](Self::add_file), then [`build`](Self::build).
///
/// Each file is read into compact records as it is added, so the caller can drop its bytes
/// right away; 10M entries take about 730 MB here, the same as the finished index.
pub struct OptOutIndexBuilder {
    hashes: Vec<HashRecord>,
    ids: Vec<IdRecord>,
    files: BTreeSet<OptOutFileName>,
    advertising_ids: bool,
}

impl std::fmt::Debug for OptOutIndexBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptOutIndexBuilder")
            .field("files", &self.files.len())
            .field("entries", &self.hashes.len())
            .finish()
    }
}

impl OptOutIndexBuilder {
    /// Whether to index advertising ids (`optout_status_api_enabled`, default true). Without
    /// them the index takes half the memory and every id lookup answers `None`, as the
    /// reference's empty map does.
    pub fn advertising_ids(mut self, enabled: bool) -> Self {
        self.advertising_ids = enabled;
        if !enabled {
            self.ids = Vec::new();
        }
        self
    }

    /// Reads one delta or partition file (72-byte entries). Sentinel entries are skipped; an
    /// empty file is recorded as indexed and adds nothing; a name already added is skipped.
    /// A length that is not a multiple of 72 is an error and adds nothing.
    pub fn add_file(&mut self, name: OptOutFileName, bytes: &[u8]) -> Result<(), StoreError> {
        if self.files.contains(&name) {
            return Ok(());
        }
        let count = bytes.len() / OptOutEntry::LEN;
        self.reserve(count);
        self.push_entries(bytes)?;
        self.files.insert(name);
        Ok(())
    }

    /// Reads one file of `len` bytes from `reader` in bounded chunks; on any error (including a
    /// reader that yields a different length) nothing of it is kept.
    pub fn add_reader(&mut self, name: OptOutFileName, mut reader: impl Read, len: u64) -> Result<(), StoreError> {
        if self.files.contains(&name) {
            return Ok(());
        }
        let entry_len = OptOutEntry::LEN as u64;
        let Ok(count) = usize::try_from(len / entry_len) else {
            return Err(StoreError::new(STORE, Problem::OptOutFileLength { len: usize::MAX }));
        };
        if len % entry_len != 0 {
            return Err(StoreError::new(
                STORE,
                Problem::OptOutFileLength {
                    len: usize::try_from(len).unwrap_or(usize::MAX),
                },
            ));
        }
        let (hashes_before, ids_before) = (self.hashes.len(), self.ids.len());
        self.reserve(count);
        let result = self.read_chunks(&mut reader, len);
        if result.is_err() {
            self.hashes.truncate(hashes_before);
            self.ids.truncate(ids_before);
        } else {
            self.files.insert(name);
        }
        result
    }

    fn read_chunks(&mut self, reader: &mut impl Read, len: u64) -> Result<(), StoreError> {
        // 16,384 entries (1.1 MiB) per read.
        let mut buffer = vec![0u8; OptOutEntry::LEN * 16_384];
        let mut filled = 0usize;
        let mut total = 0u64;
        loop {
            let read = match reader.read(&mut buffer[filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(StoreError::new(
                        STORE,
                        Problem::Unreadable {
                            path: "(opt-out file)".into(),
                            kind: e.kind(),
                        },
                    ))
                }
            };
            total += read as u64;
            filled += read;
            let complete = filled - filled % OptOutEntry::LEN;
            if read == 0 || complete == buffer.len() {
                self.push_entries(&buffer[..complete])?;
                buffer.copy_within(complete..filled, 0);
                filled -= complete;
            }
            if read == 0 {
                break;
            }
        }
        if filled != 0 || total != len {
            return Err(StoreError::new(
                STORE,
                Problem::OptOutFileLength {
                    len: usize::try_from(total).unwrap_or(usize::MAX),
                },
            ));
        }
        Ok(())
    }

    fn reserve(&mut self, count: usize) {
        self.hashes.reserve(count);
        if self.advertising_ids {
            self.ids.reserve(count);
        }
    }

    /// Appends the records of whole entries; `bytes` must be a multiple of 72 long.
    fn push_entries(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let entries = view_file(STORE, bytes)?;
        for entry in entries.filter(|entry| !entry.is_sentinel()) {
            let timestamp = clamp_timestamp(entry.timestamp);
            self.hashes.push(HashRecord {
                hash: *entry.identity_hash,
                timestamp,
            });
            if self.advertising_ids {
                self.ids.push(IdRecord {
                    key: advertising_id::key_of_entry(&entry),
                    timestamp: timestamp.to_le_bytes(),
                });
            }
        }
        Ok(())
    }

    /// Sorts and merges everything added into the base of a new index with no overlay.
    pub fn build(self) -> OptOutIndex {
        OptOutIndex {
            base: Arc::new(Layer::build(self.hashes, self.ids)),
            overlay: None,
            files: self.files,
            advertising_ids: self.advertising_ids,
        }
    }
}

#[cfg(test)]
mod tests;
