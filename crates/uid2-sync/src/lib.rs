//! Keeping the operator in step with UID2 Core and OptOut.
//!
//! [`start`] attests, then runs one refresh loop per followed store, the opt-out sync and a
//! watchdog, all on the current tokio runtime. Results leave through an [`Observer`]: a new
//! snapshot when a store changed, a new opt-out index, and the health of each component (the
//! operator answers `/ops/healthcheck` from it). Conditions the reference treats as fatal —
//! attestation refused, attestation failing for 12 h, a store stale for too long, salts expired
//! for too long — arrive as [`Fatal`] on the handle; the binary logs them and exits non-zero.
//!
//! This crate never logs or returns the operator key, attestation tokens, JWTs, file contents or
//! pre-signed URLs.

mod attestation;
mod client;
pub mod config;
mod error;
mod metrics;
mod optout;
mod stores;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::sync::watch;
use uid2_attest::AttestationProvider;
use uid2_protocol::clock::Clock;
use uid2_store::optout::OptOutIndex;
use uid2_store::Snapshot;

// Public interface.
pub use config::{Endpoint, Endpoints, OperatorKey, OptOutSettings, SyncConfig};
pub use error::SyncError;
pub use metrics::SyncMetrics;
pub use optout::{Logout, Replicator};
pub use stores::StoreId;

/// Where the sync layer's results go.
pub trait Observer: Send + Sync {
    /// Every followed store loaded, and one of them changed.
    fn publish_snapshot(&self, snapshot: Arc<Snapshot>);
    /// The opt-out index changed.
    fn publish_optout(&self, index: Arc<OptOutIndex>);
    /// A component became healthy (`None`) or unhealthy, with a reason.
    fn health(&self, component: &str, problem: Option<String>);
}

/// A condition after which the operator must stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fatal {
    /// Core answered 401 or 403 to `/attest`.
    AttestationRefused { status: u16, reason: String },
    /// Attestation kept failing for longer than the configured window.
    AttestationFailing { for_seconds: u64 },
    /// A store has not refreshed for longer than `store_refresh_stale_shutdown_hours`.
    StoreStale { store: &'static str, for_seconds: u64 },
    /// The salts in force have been expired for longer than `salts_expired_shutdown_hours`.
    SaltsExpired { for_seconds: u64 },
}

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AttestationRefused { status, reason } => {
                write!(f, "UID2 Core refused attestation (HTTP {status}: {reason})")
            }
            Self::AttestationFailing { for_seconds } => {
                write!(f, "attestation has failed continuously for {for_seconds} s")
            }
            Self::StoreStale { store, for_seconds } => {
                write!(f, "store {store} has not refreshed for {for_seconds} s")
            }
            Self::SaltsExpired { for_seconds } => write!(f, "salts have been expired for {for_seconds} s"),
        }
    }
}

/// The running sync layer.
pub struct SyncHandle {
    /// Fatal conditions; the first one should stop the process.
    pub fatal: UnboundedReceiver<Fatal>,
    /// Forwards logouts to OptOut (`None` without `optout_api_uri`).
    pub replicator: Option<Replicator>,
    stop: watch::Sender<bool>,
}

impl SyncHandle {
    /// Stops every loop.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts attestation, the store loops, the opt-out sync and the watchdog.
pub fn start(
    config: SyncConfig,
    provider: Box<dyn AttestationProvider>,
    clock: Arc<dyn Clock>,
    observer: Arc<dyn Observer>,
    metrics: Arc<SyncMetrics>,
) -> Result<SyncHandle, SyncError> {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| SyncError::transport(&e))?;
    if config.optout.metadata_path.is_some() {
        // The reference creates its cache directories at startup and fails there; so do we,
        // before attesting, with the directory and the OS error in the message.
        optout::prepare_cache_dir(&config.optout.cache_dir)?;
    }
    let (fatal_tx, fatal_rx) = unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);

    for (id, _) in stores::followed(&config) {
        observer.health(stores::health_component(id), Some("not loaded yet".into()));
    }
    observer.health("attestation", Some("not attested yet".into()));
    if config.optout.metadata_path.is_some() {
        observer.health("cloudsync-optout", Some("not synced yet".into()));
    }

    let identity = client::Identity::new(&config);
    let attester = Arc::new(attestation::Attester::new(
        http.clone(),
        &config,
        identity,
        provider,
        Arc::clone(&clock),
        fatal_tx.clone(),
        Arc::clone(&observer),
        Arc::clone(&metrics),
    ));
    let core = client::CoreClient::new(
        http,
        Arc::clone(&attester),
        config.encrypted_files,
        config.request_timeout,
    );
    let stores = Arc::new(stores::Stores::new(
        core.clone(),
        config.clone(),
        Arc::clone(&clock),
        Arc::clone(&observer),
        Arc::clone(&metrics),
    ));

    tokio::spawn(store_loops(Arc::clone(&stores), config.clone(), stop_rx.clone()));
    if config.optout.metadata_path.is_some() {
        let sync = optout::OptOutSync::new(
            core.clone(),
            config.clone(),
            Arc::clone(&observer),
            Arc::clone(&metrics),
        );
        tokio::spawn(sync.run(stop_rx.clone()));
    }
    tokio::spawn(watchdog(attester, stores, config.clone(), clock, fatal_tx, stop_rx));

    let replicator = config.optout.api_uri.clone().map(|uri| Replicator::new(core, uri));
    Ok(SyncHandle {
        fatal: fatal_rx,
        replicator,
        stop: stop_tx,
    })
}

/// Loads every store once, in order (cloud keys before the encrypted stores), passing over the
/// list until each has loaded; then polls each store on its own interval.
async fn store_loops(stores: Arc<stores::Stores>, config: SyncConfig, mut stop: watch::Receiver<bool>) {
    let followed = stores::followed(&config);
    let mut pending: Vec<_> = followed.clone();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for (id, endpoint) in pending {
            match stores.refresh(id, &endpoint.url).await {
                Ok(_) => tracing::info!(store = id.name(), "store loaded"),
                Err(error) => {
                    tracing::warn!(store = id.name(), %error, "initial store load failed; retrying");
                    still.push((id, endpoint));
                }
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(INITIAL_RETRY) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
    for (id, endpoint) in followed {
        let stores = Arc::clone(&stores);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(endpoint.interval) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                match stores.refresh(id, &endpoint.url).await {
                    Ok(stores::Refreshed::Loaded { version }) => {
                        tracing::info!(store = id.name(), version, "store reloaded");
                    }
                    Ok(stores::Refreshed::Unchanged) => tracing::debug!(store = id.name(), "store unchanged"),
                    Err(error) => {
                        tracing::warn!(store = id.name(), %error, "store refresh failed; keeping the last good data");
                    }
                }
            }
        });
    }
}

/// Pause between passes of the initial load.
const INITIAL_RETRY: Duration = Duration::from_secs(1);

/// Renews the attestation before it expires and enforces the shutdown windows.
async fn watchdog(
    attester: Arc<attestation::Attester>,
    stores: Arc<stores::Stores>,
    config: SyncConfig,
    clock: Arc<dyn Clock>,
    fatal: tokio::sync::mpsc::UnboundedSender<Fatal>,
    mut stop: watch::Receiver<bool>,
) {
    let mut salts_expired_since: Option<std::time::Instant> = None;
    loop {
        attester.renew_if_due().await;
        if let Some((store, age)) = stores.stalest() {
            if age >= config.stale_store_shutdown {
                let _ = fatal.send(Fatal::StoreStale {
                    store: store.name(),
                    for_seconds: age.as_secs(),
                });
            }
        }
        if stores.salts_expired(clock.now_ms()) {
            let since = *salts_expired_since.get_or_insert_with(std::time::Instant::now);
            tracing::error!(
                expired_for_s = since.elapsed().as_secs(),
                "the salts in force have expired"
            );
            if since.elapsed() >= config.expired_salts_shutdown {
                let _ = fatal.send(Fatal::SaltsExpired {
                    for_seconds: since.elapsed().as_secs(),
                });
            }
        } else {
            salts_expired_since = None;
        }
        tokio::select! {
            () = tokio::time::sleep(config.check_interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
