//! Opt-out decisions: the index of opted-out users, the logout path to the OptOut service, and
//! the reference's hard-coded test identities.
//!
//! Every path that mints or maps (generate, CSTG, both identity maps, refresh) asks
//! [`is_opted_out`]; validate and buckets never do. The test identities are matched on their
//! first-level hash under the serving first-level salt, so raw and hashed inputs behave alike:
//! - `optout@example.com` / `+00000000000`: always opted out;
//! - `refresh-optout@example.com` / `+00000000002`: opted out on refresh only;
//! - `validate@example.com` / `+12345678901`: never opted out, whatever the index says.

use std::future::Future;
use std::pin::Pin;

use uid2_protocol::identity::{first_level_hash, Dii, IdentityScope, IdentityType};

use crate::state::Serving;

/// Who has opted out. Lookups are by first-level hash (token paths) and by base64 raw UID
/// (`/v2/optout/status`); both answer the opt-out time in epoch seconds.
pub trait OptOutIndex: Send + Sync {
    /// `Some(epoch seconds)` if any opt-out record exists for this first-level hash.
    fn opted_out_since(&self, first_level_hash: &[u8; 32]) -> Option<i64>;
    /// The earliest opt-out time recorded for this advertising id (standard base64, as sent).
    fn advertising_id_opted_out_since(&self, advertising_id: &str) -> Option<i64>;
    /// Reads what a later [`Self::opted_out_since`] of this hash will read, so that a batch can
    /// wait for the cache misses of several hashes at once; returns what it read, mixed. Never
    /// changes an answer; by default reads nothing.
    fn warm(&self, _first_level_hash: &[u8; 32]) -> u64 {
        0
    }
}

/// No opt-outs at all; local mode starts with this, as the reference's empty local mock does.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoOptOuts;

impl OptOutIndex for NoOptOuts {
    fn opted_out_since(&self, first_level_hash: &[u8; 32]) -> Option<i64> {
        // The index's sentinel: the all-zero hash is opted out "now".
        first_level_hash.iter().all(|b| *b == 0).then_some(0)
    }

    fn advertising_id_opted_out_since(&self, _advertising_id: &str) -> Option<i64> {
        None
    }
}

/// A logout forwarded to the OptOut service (`/optout/replicate`).
#[derive(Clone)]
pub struct LogoutRequest {
    pub identity_hash_b64: String,
    pub advertising_id_b64: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub client_ip: Option<String>,
    pub trace_id: Option<String>,
}

impl std::fmt::Debug for LogoutRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogoutRequest(..)")
    }
}

/// The upstream call failed or was refused; the caller answers 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("opt-out replication failed")]
pub struct ReplicateError;

pub type ReplicateFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ReplicateError>> + Send + 'a>>;

/// Sends logouts to the OptOut service.
pub trait OptOutReplicator: Send + Sync {
    fn replicate(&self, request: LogoutRequest) -> ReplicateFuture<'_>;
}

/// First-level hashes of the test identities under one first-level salt.
pub(crate) struct SpecialIdentities {
    always_out: [(IdentityType, [u8; 32]); 2],
    out_on_refresh: [(IdentityType, [u8; 32]); 2],
    never_out: [(IdentityType, [u8; 32]); 2],
}

impl SpecialIdentities {
    pub(crate) fn new(first_level_salt: &str, _scope: IdentityScope) -> Self {
        let flh = |dii: Dii<'_>| {
            let hash = dii.to_identity().map(|i| i.hash).unwrap_or_default();
            (dii.id_type(), first_level_hash(&hash, first_level_salt))
        };
        Self {
            always_out: [flh(Dii::Email("optout@example.com")), flh(Dii::Phone("+00000000000"))],
            out_on_refresh: [
                flh(Dii::Email("refresh-optout@example.com")),
                flh(Dii::Phone("+00000000002")),
            ],
            never_out: [flh(Dii::Email("validate@example.com")), flh(Dii::Phone("+12345678901"))],
        }
    }

    fn is(set: &[(IdentityType, [u8; 32]); 2], id_type: IdentityType, flh: &[u8; 32]) -> bool {
        set.iter().any(|(t, h)| *t == id_type && h == flh)
    }
}

/// The reference's `getGlobalOptOutResult`: test identities first, then the index.
pub(crate) fn is_opted_out(
    serving: &Serving,
    index: &dyn OptOutIndex,
    id_type: IdentityType,
    flh: &[u8; 32],
    for_refresh: bool,
) -> bool {
    let special = &serving.special;
    if for_refresh && SpecialIdentities::is(&special.out_on_refresh, id_type, flh) {
        return true;
    }
    if SpecialIdentities::is(&special.never_out, id_type, flh)
        || SpecialIdentities::is(&special.out_on_refresh, id_type, flh)
    {
        return false;
    }
    if SpecialIdentities::is(&special.always_out, id_type, flh) {
        return true;
    }
    index.opted_out_since(flh).is_some()
}
