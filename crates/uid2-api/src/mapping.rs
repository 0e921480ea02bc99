//! From an identity to its raw UID under the serving salts.
//!
//! The first-level hash picks a salt bucket; the bucket's salt (v2, or v3 with `identity_v3`) or
//! key material (v4) makes the raw UID. Identity map v3 also reports the raw UID under the
//! bucket's previous salt and when the caller should map again.

use uid2_protocol::identity::{first_level_hash, HashedIdentity, IdentityEnvironment, IdentityType};

use crate::error::ApiError;
use crate::state::{ApiConfig, Serving};

/// A mapped identity.
pub(crate) struct Mapped {
    pub raw_uid: Vec<u8>,
    pub bucket_id: String,
    pub previous_raw_uid: Option<Vec<u8>>,
    pub refresh_from_ms: i64,
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
    let entry = serving.store.salts.entry_for(flh, now_ms);
    entry
        .current_raw_uid(
            flh,
            config.identity_scope,
            id_type,
            environment(serving),
            config.identity_v3,
        )
        .map_err(|_| ApiError::internal())
}

/// Everything identity map v2 and v3 report.
pub(crate) fn map(
    serving: &Serving,
    config: &ApiConfig,
    id_type: IdentityType,
    flh: &[u8; 32],
    now_ms: i64,
) -> Result<Mapped, ApiError> {
    let entry = serving.store.salts.entry_for(flh, now_ms);
    let env = environment(serving);
    let raw_uid = entry
        .current_raw_uid(flh, config.identity_scope, id_type, env, config.identity_v3)
        .map_err(|_| ApiError::internal())?;
    let previous_raw_uid = entry.previous_raw_uid(flh, config.identity_scope, id_type, env, config.identity_v3, now_ms);
    Ok(Mapped {
        raw_uid,
        bucket_id: serving.store.salts.bucket_id(entry),
        previous_raw_uid,
        refresh_from_ms: entry.mapped_refresh_from_ms(now_ms),
    })
}

/// The answer for one identifier of an identity map request.
pub(crate) enum MapOutcome {
    Mapped(Mapped),
    OptOut,
    Invalid,
}

/// Normalizes, checks opt-out and maps one identifier, as both identity map versions do.
pub(crate) fn map_dii(
    app: &crate::state::AppState,
    serving: &Serving,
    dii: Option<uid2_protocol::identity::Dii<'_>>,
    now_ms: i64,
) -> Result<MapOutcome, ApiError> {
    let Some(identity) = dii.and_then(|d| d.to_identity()) else {
        return Ok(MapOutcome::Invalid);
    };
    let flh = flh_of(serving, &identity);
    if crate::optout::is_opted_out(serving, app.inner.optout.as_ref(), identity.id_type, &flh, false) {
        return Ok(MapOutcome::OptOut);
    }
    map(serving, app.config(), identity.id_type, &flh, now_ms).map(MapOutcome::Mapped)
}
