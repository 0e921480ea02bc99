//! The salts store: the first-level salt and the rotating salt buckets that turn a first-level
//! hash into a raw UID.
//!
//! Metadata lists one or more snapshots (`effective`/`expires` in epoch **ms**); each is a text
//! file with one bucket per line and exactly 11 comma-separated columns:
//!
//! `id, last_updated_ms, current_salt, refresh_from_ms, previous_salt, current_key_id,
//! current_key, current_key_salt, previous_key_id, previous_key, previous_key_salt`
//!
//! Blank fields are absent; text fields are trimmed; numbers are not (the reference's
//! `parseInt`/`parseLong` reject spaces). Key material exists only when its id and key are both
//! present. Salt, key and key-salt strings are used as raw bytes, never base64-decoded. A
//! bucket's index is its line number, not its `id`; its public id is `id_prefix` +
//! Hashids(`id_secret`, 9) of `id`.
//!
//! Invariants, checked at load time: at least one snapshot; each snapshot has exactly `size`
//! (≥ 1) lines; every bucket has a current salt or current key material; every key is 16, 24
//! or 32 bytes (an AES key) and comes with a salt. The reference checks none of these when it
//! loads: it leaves `null` holes when a file is shorter than `size`, ignores columns past the
//! 11th, and fails later, per request, on the other cases; this store rejects the file instead,
//! so a bad file keeps the previous snapshot rather than breaking requests.

use uid2_protocol::crypto::InvalidKeyLength;
use uid2_protocol::identity::raw_uid::{self, BucketKey, RawUid};
use uid2_protocol::identity::{bucket_index, IdentityEnvironment, IdentityScope, IdentityType};
use zeroize::Zeroizing;

use crate::error::{Problem, SaltLineIssue, StoreError};
use crate::hashids::Hashids;
use crate::metadata::SaltsMetadata;

const STORE: &str = "salts";
const DAY_MS: i64 = 86_400_000;
/// The previous raw UID is served while the bucket rotated less than this many whole days ago.
const PREVIOUS_UID_DAYS: i64 = 90;
/// A snapshot without `expires` lasts this long after it was loaded.
const DEFAULT_LIFETIME_MS: i64 = 365 * DAY_MS;
/// Minimum length of the Hashids part of a bucket id.
const BUCKET_ID_MIN_LENGTH: usize = 9;
const COLUMNS: usize = 11;

/// Per-bucket key material for raw UID v4.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial {
    pub id: i32,
    /// Its UTF-8 bytes are the AES key (16, 24 or 32 of them).
    pub key: SecretText,
    /// Its UTF-8 bytes enter the IV derivation.
    pub salt: SecretText,
}

impl KeyMaterial {
    fn bucket_key(&self) -> BucketKey<'_> {
        BucketKey {
            id: self.id,
            key: self.key.as_str(),
            salt: self.salt.as_str(),
        }
    }
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A raw UID could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RawUidError {
    /// Cannot happen for a loaded bucket (see the module invariants).
    #[error("bucket has neither a salt nor key material")]
    NoSecret,
    #[error(transparent)]
    InvalidKeyLength(#[from] InvalidKeyLength),
}

/// One salt bucket.
#[derive(Clone, PartialEq, Eq)]
pub struct SaltEntry {
    id: i32,
    last_updated_ms: i64,
    current_salt: Option<SecretText>,
    refresh_from_ms: i64,
    previous_salt: Option<SecretText>,
    current_key: Option<KeyMaterial>,
    previous_key: Option<KeyMaterial>,
}

impl std::fmt::Debug for SaltEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaltEntry")
            .field("id", &self.id)
            .field("last_updated_ms", &self.last_updated_ms)
            .field("refresh_from_ms", &self.refresh_from_ms)
            .field("has_current_salt", &self.current_salt.is_some())
            .field("has_previous_salt", &self.previous_salt.is_some())
            .field("current_key", &self.current_key)
            .field("previous_key", &self.previous_key)
            .finish()
    }
}

/// The raw UID for one secret: v2/v3 from a salt (which wins when both exist), else v4.
fn raw_uid(
    salt: Option<&SecretText>,
    key: Option<&KeyMaterial>,
    flh: &[u8; 32],
    scope: IdentityScope,
    id_type: IdentityType,
    env: IdentityEnvironment,
    identity_v3: bool,
) -> Result<RawUid, RawUidError> {
    match (salt, key) {
        (Some(salt), _) => {
            let v2 = raw_uid::v2(flh, salt.as_bytes());
            Ok(if identity_v3 {
                RawUid::from_33(raw_uid::v3(scope, id_type, &v2))
            } else {
                RawUid::from_v2(v2)
            })
        }
        (None, Some(key)) => Ok(RawUid::from_33(raw_uid::v4(
            scope,
            id_type,
            env,
            flh,
            key.bucket_key(),
        )?)),
        (None, None) => Err(RawUidError::NoSecret),
    }
}

impl SaltEntry {
    /// The `id` column.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Epoch ms of the last rotation.
    pub fn last_updated_ms(&self) -> i64 {
        self.last_updated_ms
    }

    /// Epoch ms from which clients should re-map identities of this bucket.
    pub fn refresh_from_ms(&self) -> i64 {
        self.refresh_from_ms
    }

    pub fn current_salt(&self) -> Option<&str> {
        self.current_salt.as_ref().map(SecretText::as_str)
    }

    pub fn previous_salt(&self) -> Option<&str> {
        self.previous_salt.as_ref().map(SecretText::as_str)
    }

    pub fn current_key(&self) -> Option<&KeyMaterial> {
        self.current_key.as_ref()
    }

    pub fn previous_key(&self) -> Option<&KeyMaterial> {
        self.previous_key.as_ref()
    }

    /// Reads one byte of every field the raw UIDs of this bucket use, and returns them mixed.
    ///
    /// For batch callers: reading the buckets of several identities one after another, before
    /// computing any of their raw UIDs, lets the CPU wait for their cache misses together
    /// instead of one at a time (pass the result to `std::hint::black_box`).
    pub fn warm(&self) -> u64 {
        let first = |text: Option<&SecretText>| text.and_then(|t| t.as_bytes().first().copied()).unwrap_or(0);
        let key = |material: Option<&KeyMaterial>| first(material.map(|m| &m.key)) ^ first(material.map(|m| &m.salt));
        u64::from(first(self.current_salt.as_ref()))
            ^ u64::from(first(self.previous_salt.as_ref())) << 8
            ^ u64::from(key(self.current_key.as_ref())) << 16
            ^ u64::from(key(self.previous_key.as_ref())) << 24
            ^ self.refresh_from_ms as u64
            ^ self.last_updated_ms as u64
    }

    /// The raw UID of `flh` in this bucket now: v2 (or v3 with `identity_v3`) from the current
    /// salt, else v4 from the current key material with `env` in its metadata byte.
    pub fn current_raw_uid(
        &self,
        flh: &[u8; 32],
        scope: IdentityScope,
        id_type: IdentityType,
        env: IdentityEnvironment,
        identity_v3: bool,
    ) -> Result<RawUid, RawUidError> {
        raw_uid(
            self.current_salt.as_ref(),
            self.current_key(),
            flh,
            scope,
            id_type,
            env,
            identity_v3,
        )
    }

    /// The raw UID `flh` had before the bucket's last rotation, while that was less than 90 whole
    /// days before `now_ms`: from the previous salt if there is one, else from the previous key
    /// material. `None` when too old or when there is nothing previous.
    pub fn previous_raw_uid(
        &self,
        flh: &[u8; 32],
        scope: IdentityScope,
        id_type: IdentityType,
        env: IdentityEnvironment,
        identity_v3: bool,
        now_ms: i64,
    ) -> Option<RawUid> {
        // Integer division truncates toward zero, as Java's does, so a bucket "rotated in the
        // future" (as the reference's sample salts are) counts as recent.
        let age_days = now_ms.saturating_sub(self.last_updated_ms) / DAY_MS;
        if age_days >= PREVIOUS_UID_DAYS {
            return None;
        }
        raw_uid(
            self.previous_salt.as_ref(),
            self.previous_key(),
            flh,
            scope,
            id_type,
            env,
            identity_v3,
        )
        .ok()
    }

    /// `refresh_from` as identity map v3 reports it: the bucket's own while it is not in the
    /// past, otherwise the next UTC midnight after `now_ms`.
    pub fn mapped_refresh_from_ms(&self, now_ms: i64) -> i64 {
        if self.refresh_from_ms < now_ms {
            now_ms.div_euclid(DAY_MS).saturating_add(1).saturating_mul(DAY_MS)
        } else {
            self.refresh_from_ms
        }
    }
}

/// The buckets of one snapshot; never empty, so a bucket lookup always has an answer.
#[derive(Clone, PartialEq, Eq)]
struct Buckets {
    first: SaltEntry,
    rest: Vec<SaltEntry>,
}

impl Buckets {
    fn len(&self) -> usize {
        self.rest.len() + 1
    }

    /// The bucket at `index`; out-of-range indexes (which `bucket_index` never produces) give the
    /// first bucket rather than a panic.
    fn get(&self, index: usize) -> &SaltEntry {
        index
            .checked_sub(1)
            .and_then(|i| self.rest.get(i))
            .unwrap_or(&self.first)
    }

    fn iter(&self) -> impl Iterator<Item = &SaltEntry> {
        std::iter::once(&self.first).chain(self.rest.iter())
    }
}

/// One salt file with its validity window.
#[derive(Clone, PartialEq, Eq)]
pub struct SaltSnapshot {
    effective_ms: i64,
    expires_ms: i64,
    buckets: Buckets,
}

impl std::fmt::Debug for SaltSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaltSnapshot")
            .field("effective_ms", &self.effective_ms)
            .field("expires_ms", &self.expires_ms)
            .field("buckets", &self.buckets.len())
            .finish()
    }
}

impl SaltSnapshot {
    pub fn effective_ms(&self) -> i64 {
        self.effective_ms
    }

    pub fn expires_ms(&self) -> i64 {
        self.expires_ms
    }

    /// `effective ≤ now < expires`.
    pub fn is_effective(&self, now_ms: i64) -> bool {
        self.effective_ms <= now_ms && now_ms < self.expires_ms
    }

    /// `expires < now`: the reference's stale-salts condition.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_ms < now_ms
    }

    /// The number of buckets (at least 1).
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Always false; present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Buckets in file order.
    pub fn entries(&self) -> impl Iterator<Item = &SaltEntry> {
        self.buckets.iter()
    }

    /// The bucket of a first-level hash.
    pub fn entry_for(&self, flh: &[u8; 32]) -> &SaltEntry {
        self.buckets.get(bucket_index(flh, self.buckets.len()))
    }
}

/// How public bucket ids are made: `prefix` + Hashids of the bucket's `id`.
#[derive(Clone)]
struct BucketIds {
    prefix: String,
    hashids: Hashids,
}

/// The salts store.
#[derive(Clone)]
pub struct SaltStore {
    first_level: Zeroizing<String>,
    /// Public bucket ids are computed on demand: hashing a million ids at load time would cost
    /// more than all other parsing of the salt file together.
    bucket_ids: BucketIds,
    /// All snapshots but the last, stably sorted by `effective`.
    earlier: Vec<SaltSnapshot>,
    /// The last snapshot by `effective`, kept apart so there always is one to fall back to.
    last: SaltSnapshot,
}

impl std::fmt::Debug for SaltStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaltStore")
            .field("earlier", &self.earlier)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl SaltStore {
    /// Builds the store from its metadata, reading each listed salt file with `read_file`
    /// (given the snapshot's `location`). `now_ms` supplies the default expiry.
    pub fn build(
        metadata: &SaltsMetadata,
        mut read_file: impl FnMut(&str) -> Result<Vec<u8>, StoreError>,
        now_ms: i64,
    ) -> Result<Self, StoreError> {
        let bucket_ids = BucketIds {
            prefix: metadata.id_prefix.clone(),
            hashids: Hashids::new(&metadata.id_secret, BUCKET_ID_MIN_LENGTH),
        };
        let mut snapshots = metadata
            .snapshots
            .iter()
            .enumerate()
            .map(|(index, spec)| {
                let file = Zeroizing::new(read_file(&spec.location)?);
                let buckets = parse_salt_file(&file, spec.size, index)?;
                Ok(SaltSnapshot {
                    effective_ms: spec.effective_ms,
                    expires_ms: spec
                        .expires_ms
                        .unwrap_or_else(|| now_ms.saturating_add(DEFAULT_LIFETIME_MS)),
                    buckets,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        snapshots.sort_by_key(|s| s.effective_ms);
        let last = snapshots
            .pop()
            .ok_or_else(|| StoreError::new(STORE, Problem::NoSaltSnapshots))?;
        Ok(Self {
            first_level: metadata.first_level.clone(),
            bucket_ids,
            earlier: snapshots,
            last,
        })
    }

    /// The public id of a bucket (`bucket_id` in the API): `id_prefix` + Hashids(`id_secret`,
    /// minimum length 9) of its `id`.
    pub fn bucket_id(&self, entry: &SaltEntry) -> String {
        let mut text = Vec::with_capacity(self.bucket_ids.prefix.len() + 16);
        self.write_bucket_id(entry, &mut text);
        // The prefix is text and Hashids writes ASCII letters.
        String::from_utf8(text).unwrap_or_default()
    }

    /// [`Self::bucket_id`] appended to `out` without allocating.
    pub fn write_bucket_id(&self, entry: &SaltEntry, out: &mut Vec<u8>) {
        out.extend_from_slice(self.bucket_ids.prefix.as_bytes());
        self.bucket_ids.hashids.encode_to(i64::from(entry.id), out);
    }

    /// The first-level salt, used as text.
    pub fn first_level_salt(&self) -> &str {
        &self.first_level
    }

    /// All snapshots, by `effective`.
    pub fn snapshots(&self) -> impl Iterator<Item = &SaltSnapshot> {
        self.earlier.iter().chain(std::iter::once(&self.last))
    }

    /// The number of snapshots (at least 1).
    pub fn snapshot_count(&self) -> usize {
        self.earlier.len() + 1
    }

    /// The snapshot in force at `now_ms`: walking in `effective` order, the last of the leading
    /// run of effective snapshots; if the first is not effective, the last snapshot overall.
    pub fn snapshot_at(&self, now_ms: i64) -> &SaltSnapshot {
        self.snapshots()
            .take_while(|s| s.is_effective(now_ms))
            .last()
            .unwrap_or(&self.last)
    }

    /// Whether the snapshot in force has expired (the operator reports stale salts).
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.snapshot_at(now_ms).is_expired(now_ms)
    }

    /// The bucket of a first-level hash in the snapshot in force.
    pub fn entry_for(&self, flh: &[u8; 32], now_ms: i64) -> &SaltEntry {
        self.snapshot_at(now_ms).entry_for(flh)
    }

    /// Buckets of the snapshot in force rotated at or after `since_ms`, in file order
    /// (`/v2/identity/buckets`).
    pub fn modified_since(&self, since_ms: i64, now_ms: i64) -> impl Iterator<Item = &SaltEntry> {
        self.snapshot_at(now_ms)
            .entries()
            .filter(move |e| e.last_updated_ms >= since_ms)
    }
}

/// Splits a salt file into lines the way `BufferedReader.lines()` does for `\n` and `\r\n`: a
/// final line terminator does not start another line.
fn lines(text: &str) -> Vec<&str> {
    if text.is_empty() {
        return Vec::new();
    }
    let body = match text.strip_suffix('\n') {
        Some(rest) => rest.strip_suffix('\r').unwrap_or(rest),
        None => text,
    };
    body.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect()
}

/// Parses one salt file of `size` (≥ 1) lines, on every available core: a production file has a
/// million lines.
fn parse_salt_file(bytes: &[u8], size: usize, snapshot: usize) -> Result<Buckets, StoreError> {
    let text = std::str::from_utf8(bytes).map_err(|_| StoreError::new(STORE, Problem::NotUtf8))?;
    let lines = lines(text);
    if lines.len() != size || lines.is_empty() {
        return Err(StoreError::new(
            STORE,
            Problem::SaltLineCount {
                snapshot,
                expected: size,
                found: lines.len(),
            },
        ));
    }
    let parse_range = |start: usize, chunk: &[&str]| -> Result<Vec<SaltEntry>, StoreError> {
        chunk
            .iter()
            .enumerate()
            .map(|(offset, line)| {
                parse_line(line).map_err(|issue| {
                    StoreError::new(
                        STORE,
                        Problem::SaltLine {
                            snapshot,
                            line: start + offset + 1,
                            issue,
                        },
                    )
                })
            })
            .collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, 8);
    let chunk_len = lines.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<SaltEntry>, StoreError>> = if threads == 1 || lines.len() < 10_000 {
        vec![parse_range(0, &lines)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = lines
                .chunks(chunk_len)
                .enumerate()
                .map(|(i, chunk)| {
                    let start = i * chunk_len;
                    // A thread that cannot start parses on this one instead.
                    std::thread::Builder::new()
                        .spawn_scoped(scope, move || parse_range(start, chunk))
                        .map_err(|_| (start, chunk))
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| match handle {
                    Ok(h) => h
                        .join()
                        .unwrap_or_else(|_| Err(StoreError::new(STORE, Problem::NotUtf8))),
                    Err((start, chunk)) => parse_range(start, chunk),
                })
                .collect()
        })
    };
    let mut entries = Vec::with_capacity(lines.len());
    for part in parts {
        entries.extend(part?);
    }
    let mut entries = entries.into_iter();
    let first = entries.next().ok_or_else(|| {
        StoreError::new(
            STORE,
            Problem::SaltLineCount {
                snapshot,
                expected: size,
                found: 0,
            },
        )
    })?;
    Ok(Buckets {
        first,
        rest: entries.collect(),
    })
}

fn text_field(field: &str) -> Option<SecretText> {
    let trimmed = field.trim();
    (!trimmed.is_empty()).then(|| SecretText::new(trimmed))
}

fn number<T: std::str::FromStr>(field: &str, column: usize) -> Result<T, SaltLineIssue> {
    field.parse().map_err(|_| SaltLineIssue::BadNumber { column })
}

/// Key material from columns `first..first + 3` (id, key, salt).
fn key_material(columns: &[&str], first: usize) -> Result<Option<KeyMaterial>, SaltLineIssue> {
    let column = |offset: usize| columns.get(first + offset).copied().unwrap_or("");
    if column(0).trim().is_empty() || column(1).trim().is_empty() {
        return Ok(None);
    }
    let id = number(column(0), first)?;
    let key = text_field(column(1)).unwrap_or_default();
    if !matches!(key.len(), 16 | 24 | 32) {
        return Err(SaltLineIssue::KeyLength {
            column: first + 1,
            found: key.len(),
        });
    }
    let salt = text_field(column(2)).ok_or(SaltLineIssue::KeyWithoutSalt { column: first })?;
    Ok(Some(KeyMaterial { id, key, salt }))
}

fn parse_line(line: &str) -> Result<SaltEntry, SaltLineIssue> {
    // Split into a fixed array: one allocation per line is a million allocations per file.
    let mut columns = [""; COLUMNS];
    let mut found = 0usize;
    for field in line.split(',') {
        if let Some(slot) = columns.get_mut(found) {
            *slot = field;
        }
        found += 1;
    }
    if found != COLUMNS {
        return Err(SaltLineIssue::ColumnCount { found });
    }
    let column = |index: usize| columns.get(index).copied().unwrap_or("");
    let id: i32 = number(column(0), 0)?;
    let entry = SaltEntry {
        id,
        last_updated_ms: number(column(1), 1)?,
        current_salt: text_field(column(2)),
        refresh_from_ms: number(column(3), 3)?,
        previous_salt: text_field(column(4)),
        current_key: key_material(&columns, 5)?,
        previous_key: key_material(&columns, 8)?,
    };
    if entry.current_salt.is_none() && entry.current_key.is_none() {
        return Err(SaltLineIssue::NoCurrentSecret);
    }
    Ok(entry)
}

mod secret_text;
pub use secret_text::SecretText;

#[cfg(test)]
mod tests;
