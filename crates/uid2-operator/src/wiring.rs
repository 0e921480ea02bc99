//! Where the sync layer meets the API: published snapshots become the serving state, the synced
//! opt-out index answers the API's opt-out questions, component health feeds `/ops/healthcheck`,
//! and logouts go to the sync layer's OptOut client.

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use uid2_api::{Health, LogoutRequest, OptOutIndex, OptOutReplicator, ReplicateError, ReplicateFuture, Serving};
use uid2_protocol::identity::IdentityScope;
use uid2_store::optout::OptOutIndex as StoreOptOutIndex;
use uid2_store::Snapshot;

/// The opt-out index the sync layer publishes, swapped whole.
#[derive(Default)]
pub struct SyncedOptOuts(ArcSwap<StoreOptOutIndex>);

impl SyncedOptOuts {
    /// Starting from `index` (local mode: the only one it will have).
    pub fn new(index: StoreOptOutIndex) -> Self {
        Self(ArcSwap::from_pointee(index))
    }
}

impl OptOutIndex for SyncedOptOuts {
    fn opted_out_since(&self, first_level_hash: &[u8; 32]) -> Option<i64> {
        self.0.load().opted_out_since(first_level_hash)
    }

    fn advertising_id_opted_out_since(&self, advertising_id: &str) -> Option<i64> {
        self.0.load().advertising_id_opted_out_since(advertising_id)
    }

    fn warm(&self, first_level_hash: &[u8; 32]) -> u64 {
        self.0.load().warm(first_level_hash)
    }
}

/// Receives what the sync layer publishes.
pub struct Wiring {
    pub serving: Arc<ArcSwapOption<Serving>>,
    pub optouts: Arc<SyncedOptOuts>,
    pub health: Arc<Health>,
    pub scope: IdentityScope,
}

impl uid2_sync::Observer for Wiring {
    fn publish_snapshot(&self, snapshot: Arc<Snapshot>) {
        self.serving.store(Some(Arc::new(Serving::new(snapshot, self.scope))));
    }

    fn publish_optout(&self, index: Arc<StoreOptOutIndex>) {
        self.optouts.0.store(index);
    }

    fn health(&self, component: &str, problem: Option<String>) {
        self.health.set(component, problem);
    }
}

/// Logouts through the sync layer's OptOut client.
pub struct SyncReplicator(pub uid2_sync::Replicator);

impl OptOutReplicator for SyncReplicator {
    fn replicate(&self, request: LogoutRequest) -> ReplicateFuture<'_> {
        Box::pin(async move {
            let logout = uid2_sync::Logout {
                identity_hash: request.identity_hash_b64,
                advertising_id: request.advertising_id_b64,
                email: request.email,
                phone: request.phone,
                client_ip: request.client_ip,
                trace_id: request.trace_id,
            };
            self.0.replicate(&logout).await.map_err(|error| {
                tracing::warn!(%error, "logout replication to OptOut failed");
                ReplicateError
            })
        })
    }
}
