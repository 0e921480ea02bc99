//! The UID2 Operator binary: configuration, wiring and lifecycle. The only crate that knows every
//! other one.
//!
//! Two modes. **Local**: [`App::build`] loads the bundled store (or `local_store_dir`) once and
//! refuses to start without an active master key, refresh key or unexpired salts, as the
//! reference does. **Attested** (`core_attest_url` set): the sync layer attests to UID2 Core and
//! keeps every store and the opt-out index current; the API answers 503 and `/ops/healthcheck`
//! names what is missing until the first full sync. [`App::run`] serves until the shutdown signal
//! or a fatal sync condition (attestation refused, data stale too long), then stops accepting and
//! drains in-flight requests for at most [`DRAIN_GRACE`]. Both listeners run on [`server`]:
//! capped connections, head/body/idle deadlines; the API router adds admission control.

pub mod cli;
pub mod config;
mod local_optout;
pub mod local_store;
pub mod logging;
pub mod server;
mod wiring;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use uid2_api::{AppState, Metrics, NoOptOuts, Serving};
use uid2_protocol::clock::{Clock, SystemClock};
use uid2_protocol::entropy::OsEntropy;
use uid2_store::snapshot::RuntimeConfigOrigin;
use uid2_store::{DirSource, Snapshot, StoreSelection, StoreSource};

use crate::config::Config;
use crate::server::ServerLimits;

/// How long in-flight requests may take to finish after the shutdown signal. The default body-read
/// timeout is the same, so a request whose body is still arriving either completes or is cut off
/// within the grace.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Why the operator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot load the store: {0}")]
    Store(#[from] uid2_store::StoreError),
    #[error("{0}")]
    NotReady(#[from] uid2_store::snapshot::NotReady),
    #[error("cannot listen on {address}: {kind}")]
    Bind {
        address: SocketAddr,
        kind: std::io::ErrorKind,
    },
    #[error("cannot start the sync with UID2 Core: {0}")]
    Sync(#[from] uid2_sync::SyncError),
    #[error("cannot load the opt-outs: {0}")]
    OptOuts(#[from] local_optout::LocalOptOutError),
    #[error("attestation: {0}")]
    Platform(#[from] uid2_attest::ProviderError),
}

/// Why serving stopped other than by the shutdown signal.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Fatal(uid2_sync::Fatal),
}

/// A started operator, listening but not yet serving.
pub struct App {
    api_listener: TcpListener,
    metrics_listener: TcpListener,
    limits: ServerLimits,
    state: AppState,
    /// Attested mode: the running sync with Core and OptOut.
    sync: Option<uid2_sync::SyncHandle>,
}

impl App {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (state, sync) = match &config.attested {
            Some(attested) => {
                let (state, sync) = attested_state(&config, attested, Arc::clone(&clock))?;
                (state, Some(sync))
            }
            None => (local_state(&config, clock)?, None),
        };
        let backlog = u32::try_from(config.server.max_connections).unwrap_or(u32::MAX);
        let api_listener = bind(SocketAddr::new(config.bind_address, config.http_port), backlog)?;
        let metrics_listener = bind(SocketAddr::new(config.bind_address, config.metrics_port), backlog)?;
        warn_if_files_run_out(config.server.max_connections);
        Ok(Self {
            api_listener,
            metrics_listener,
            limits: config.server,
            state,
            sync,
        })
    }

    pub fn api_address(&self) -> Option<SocketAddr> {
        self.api_listener.local_addr().ok()
    }

    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_listener.local_addr().ok()
    }

    /// Serves until `shutdown` completes or the sync layer reports a fatal condition, then drains
    /// for at most [`DRAIN_GRACE`].
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), RunError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let api = uid2_api::router(self.state.clone());
        let metrics_router = metrics_router(Arc::clone(self.state.metrics()));
        if let (Some(api), Some(metrics)) = (self.api_address(), self.metrics_address()) {
            tracing::info!(%api, %metrics, "uid2-operator listening");
        }
        let api_task = tokio::spawn(server::serve(self.api_listener, api, self.limits, stop_rx.clone()));
        let metrics_task = tokio::spawn(server::serve(
            self.metrics_listener,
            metrics_router,
            self.limits,
            stop_rx,
        ));

        let fatal = async {
            match self.sync.as_mut() {
                Some(sync) => sync.fatal.recv().await,
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            () = shutdown => {
                tracing::info!("shutdown requested; draining in-flight requests");
                Ok(())
            }
            Some(fatal) = fatal => {
                tracing::error!(reason = %fatal, "stopping: fatal condition");
                Err(RunError::Fatal(fatal))
            }
        };
        if let Some(sync) = &self.sync {
            sync.stop();
        }
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(DRAIN_GRACE, async {
            let api = api_task.await;
            let metrics = metrics_task.await;
            (api, metrics)
        })
        .await;
        match drained {
            Ok((Ok(()), Ok(()))) => tracing::info!("drained"),
            Ok(_) => return Err(std::io::Error::other("a server task failed").into()),
            Err(_) => tracing::warn!("drain grace elapsed; closing remaining connections"),
        }
        outcome
    }
}

/// Each connection is an open file: a cap above the process's limit would fail in `accept`
/// (paused and retried) before the cap is reached, so say so at startup.
fn warn_if_files_run_out(max_connections: usize) {
    // Files the operator opens besides connections: the store and opt-out files, Core and
    // OptOut connections, the runtime's own.
    const OTHER_FILES: u64 = 128;
    if let Some(limit) = server::open_files_limit() {
        if (max_connections as u64).saturating_add(OTHER_FILES) > limit {
            tracing::warn!(
                max_connections,
                open_files_limit = limit,
                "http_max_connections is above the open-file limit (less what the operator needs besides); \
                 raise the limit (ulimit -n) or lower http_max_connections"
            );
        }
    }
}

fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = Arc::clone(&metrics);
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                    )],
                    metrics.encode(),
                )
                    .into_response()
            }
        }),
    )
}

/// Local mode: the bundled store or `local_store_dir`, loaded once.
fn local_state(config: &Config, clock: Arc<dyn Clock>) -> Result<AppState, StartupError> {
    let now_ms = clock.now_ms();
    let selection = StoreSelection {
        sites_and_keypairs: config.api.client_side_token_generate,
        services_and_links: config.api.validate_service_links,
        runtime_config: match &config.static_runtime_config {
            Some(rc) => RuntimeConfigOrigin::Static(*rc),
            None => RuntimeConfigOrigin::Store,
        },
    };
    let (snapshot, optouts) = match &config.local_store_dir {
        Some(dir) => {
            tracing::info!(dir = %dir.display(), "loading store directory");
            let snapshot = load(&DirSource::new(dir), selection, now_ms)?;
            let optouts = local_optout::load(dir, config.api.optout_status_api_enabled)?;
            if let Some(index) = &optouts {
                tracing::info!(files = index.files().len(), hashes = index.len(), "opt-outs indexed");
            }
            (snapshot, optouts)
        }
        None => {
            tracing::info!("local mode: serving the bundled test store");
            (load(&local_store::source(), selection, now_ms)?, None)
        }
    };
    snapshot.check_ready(now_ms)?;
    let mut metrics = Metrics::default();
    // The same gauge attested mode exports, so a dashboard (and benches/load.sh) reads one name.
    let entries = prometheus_client::metrics::gauge::Gauge::<i64>::default();
    entries.set(
        optouts
            .as_ref()
            .map_or(0, |i| i64::try_from(i.len()).unwrap_or(i64::MAX)),
    );
    metrics
        .registry_mut()
        .register("uid2_optout_entries", "Entries in the opt-out index", entries);
    let optouts: Arc<dyn uid2_api::OptOutIndex> = match optouts {
        Some(index) => Arc::new(wiring::SyncedOptOuts::new(index)),
        None => Arc::new(NoOptOuts),
    };
    let serving = Arc::new(ArcSwapOption::from_pointee(Serving::new(
        Arc::new(snapshot),
        config.api.identity_scope,
    )));
    let state = AppState::builder(config.api.clone(), serving, optouts, clock, Arc::new(OsEntropy))
        .metrics(Arc::new(metrics))
        .build();
    state.health().set("store", None);
    Ok(state)
}

/// Attested mode: nothing to serve until the sync layer has attested and loaded every store.
fn attested_state(
    config: &Config,
    attested: &config::Attested,
    clock: Arc<dyn Clock>,
) -> Result<(AppState, uid2_sync::SyncHandle), StartupError> {
    let provider = uid2_attest::provider_for(&attested.enclave_platform, attested.quote_source.clone())?;
    if let uid2_attest::QuoteSource::Simulated { identity, .. } = &attested.quote_source {
        tracing::warn!(
            mrenclave = %hex::encode(identity.mr_enclave),
            "sgx_simulation: attesting with synthetic, unsigned SGX quotes; only a test Core accepts them"
        );
    }
    let serving = Arc::new(ArcSwapOption::empty());
    let optouts = Arc::new(wiring::SyncedOptOuts::default());
    let health = Arc::new(uid2_api::Health::default());
    let sync_metrics = Arc::new(uid2_sync::SyncMetrics::new());
    let mut metrics = Metrics::default();
    sync_metrics.register(metrics.registry_mut());
    let observer = Arc::new(wiring::Wiring {
        serving: Arc::clone(&serving),
        optouts: Arc::clone(&optouts),
        health: Arc::clone(&health),
        scope: config.api.identity_scope,
    });
    tracing::info!(core = %attested.sync.attest_url, "attested mode: syncing from UID2 Core");
    let sync = uid2_sync::start(
        attested.sync.clone(),
        provider,
        Arc::clone(&clock),
        observer,
        sync_metrics,
    )?;
    let mut builder = AppState::builder(config.api.clone(), serving, optouts, clock, Arc::new(OsEntropy))
        .metrics(Arc::new(metrics))
        .health(health);
    if let Some(replicator) = sync.replicator.clone() {
        builder = builder.logout(Arc::new(wiring::SyncReplicator(replicator)));
    }
    Ok((builder.build(), sync))
}

fn load(source: &dyn StoreSource, selection: StoreSelection, now_ms: i64) -> Result<Snapshot, StartupError> {
    Ok(Snapshot::load(source, selection, now_ms)?)
}

/// Binds a listener whose backlog is as long as the connection cap (the kernel shortens it to
/// `net.core.somaxconn`): with tokio's default of 1024, a burst of new connections (a client
/// pool opening at once) overflows it, and the kernel drops SYNs, which clients retry only after
/// a second. `SO_REUSEADDR` as `TcpListener::bind` sets it.
fn bind(address: SocketAddr, backlog: u32) -> Result<TcpListener, StartupError> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    };
    socket
        .and_then(|socket| {
            socket.set_reuseaddr(true)?;
            socket.bind(address)?;
            socket.listen(backlog)
        })
        .map_err(|e| StartupError::Bind {
            address,
            kind: e.kind(),
        })
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
