//! From an identity to its raw UID under the serving salts.
//!
//! The first-level hash picks a salt bucket; the bucket's salt (v2, or v3 with `identity_v3`) or
//! key material (v4) makes the raw UID. Identity map v3 also reports the raw UID under the
//! bucket's previous salt and when the caller should map again.

use uid2_protocol::identity::raw_uid::RawUid;
use uid2_protocol::identity::{first_level_hash, HashedIdentity, IdentityEnvironment, IdentityType};
use uid2_store::salts::SaltEntry;

use crate::error::ApiError;
use crate::state::{ApiConfig, Serving};

/// A mapped identity: its current raw UID and what the two identity map versions add to it,
/// computed only by the version that reports it (bucket id for v2, previous raw UID and
/// refresh-from for v3).
pub(crate) struct Mapped<'s> {
    pub raw_uid: RawUid,
    pub entry: &'s SaltEntry,
    flh: [u8; 32],
    id_type: IdentityType,
}

impl Mapped<'_> {
    /// The raw UID under the bucket's previous salt, while that is recent (identity map v3).
    pub fn previous_raw_uid(&self, serving: &Serving, config: &ApiConfig, now_ms: i64) -> Option<RawUid> {
        self.entry.previous_raw_uid(
            &self.flh,
            config.identity_scope,
            self.id_type,
            environment(serving),
            config.identity_v3,
            now_ms,
        )
    }
}

/// The first-level hash of a validated identity under the serving first-level salt.
pub(crate) fn flh_of(serving: &Serving, identity: &HashedIdentity) -> [u8; 32] {
    first_level_hash(&identity.hash, serving.store.salts.first_level_salt())
}

pub(crate) fn environment(serving: &Serving) -> IdentityEnvironment {
    serving.store.runtime_config.identity_environment
}

/// The current raw UID only (tokens and validate need nothing else).
pub(crate) fn raw_uid(
    serving: &Serving,
    config: &ApiConfig,
    id_type: IdentityType,
    flh: &[u8; 32],
    now_ms: i64,
) -> Result<Vec<u8>, ApiError> {
    map(serving, config, id_type, flh, now_ms).map(|m| m.raw_uid.to_vec())
}

/// The bucket and current raw UID of a first-level hash.
pub(crate) fn map<'s>(
    serving: &'s Serving,
    config: &ApiConfig,
    id_type: IdentityType,
    flh: &[u8; 32],
    now_ms: i64,
) -> Result<Mapped<'s>, ApiError> {
    let entry = serving.store.salts.entry_for(flh, now_ms);
    let raw_uid = entry
        .current_raw_uid(
            flh,
            config.identity_scope,
            id_type,
            environment(serving),
            config.identity_v3,
        )
        .map_err(|_| ApiError::internal())?;
    Ok(Mapped {
        raw_uid,
        entry,
        flh: *flh,
        id_type,
    })
}

/// The answer for one identifier of an identity map request.
pub(crate) enum MapOutcome<'s> {
    Mapped(Mapped<'s>),
    OptOut,
    Invalid,
}

/// Identities prepared together before any of them is looked up.
const GROUP: usize = 16;

/// Normalizes, checks opt-out and maps every item, as both identity map versions do, handing
/// each item and its outcome to `each` in order.
///
/// In groups of [`GROUP`]: the first-level hashes of a group are computed first, then the salt
/// bucket and opt-out filter block of each are read once, one after another, and only then is
/// each identity checked and mapped. With a full-size store those reads are cache misses (the
/// tables are hundreds of MB); issued back to back they overlap, where mapping one identity at
/// a time waits for each in turn.
pub(crate) fn map_each<'s, T>(
    app: &crate::state::AppState,
    serving: &'s Serving,
    items: &[T],
    now_ms: i64,
    identity_of: impl Fn(&T) -> Option<HashedIdentity>,
    mut each: impl FnMut(&T, Result<MapOutcome<'s>, ApiError>),
) {
    let optouts = app.inner.optout.as_ref();
    for group in items.chunks(GROUP) {
        let mut prepared: [Option<(IdentityType, [u8; 32])>; GROUP] = [None; GROUP];
        for (slot, item) in prepared.iter_mut().zip(group) {
            *slot = identity_of(item).map(|identity| (identity.id_type, flh_of(serving, &identity)));
        }
        let mut read = 0u64;
        for (_, flh) in prepared.iter().flatten() {
            read ^= serving.store.salts.entry_for(flh, now_ms).warm() ^ optouts.warm(flh);
        }
        std::hint::black_box(read);
        for (item, slot) in group.iter().zip(prepared) {
            let outcome = match slot {
                None => Ok(MapOutcome::Invalid),
                Some((id_type, flh)) => {
                    if crate::optout::is_opted_out(serving, optouts, id_type, &flh, false) {
                        Ok(MapOutcome::OptOut)
                    } else {
                        map(serving, app.config(), id_type, &flh, now_ms).map(MapOutcome::Mapped)
                    }
                }
            };
            each(item, outcome);
        }
    }
}
