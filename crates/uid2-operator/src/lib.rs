//! The UID2 Operator binary: configuration, wiring and lifecycle. The only crate that knows every
//! other one.
//!
//! [`App::build`] loads the store (the bundled local-mode store, or `local_store_dir`), refuses to
//! start without an active master key, refresh key or unexpired salts (as the reference does),
//! binds the API and metrics listeners, and [`App::run`] serves until the shutdown signal, then
//! drains in-flight requests for a bounded time.

pub mod cli;
pub mod config;
pub mod local_store;
pub mod logging;

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

/// How long in-flight requests may take to finish after the shutdown signal.
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
}

/// A started operator, listening but not yet serving.
pub struct App {
    api_listener: TcpListener,
    metrics_listener: TcpListener,
    state: AppState,
}

impl App {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let now_ms = clock.now_ms();
        let selection = StoreSelection {
            sites_and_keypairs: config.api.client_side_token_generate,
            services_and_links: config.api.validate_service_links,
            runtime_config: match &config.static_runtime_config {
                Some(rc) => RuntimeConfigOrigin::Static(*rc),
                None => RuntimeConfigOrigin::Store,
            },
        };
        let snapshot = match &config.local_store_dir {
            Some(dir) => {
                tracing::info!(dir = %dir.display(), "loading store directory");
                load(&DirSource::new(dir), selection, now_ms)?
            }
            None => {
                tracing::info!("local mode: serving the bundled test store");
                load(&local_store::source(), selection, now_ms)?
            }
        };
        snapshot.check_ready(now_ms)?;

        let serving = Arc::new(ArcSwapOption::from_pointee(Serving::new(
            Arc::new(snapshot),
            config.api.identity_scope,
        )));
        let state = AppState::builder(
            config.api.clone(),
            serving,
            Arc::new(NoOptOuts),
            clock,
            Arc::new(OsEntropy),
        )
        .metrics(Arc::new(Metrics::default()))
        .build();
        state.health().set("store", None);

        let api_address = SocketAddr::new(config.bind_address, config.http_port);
        let metrics_address = SocketAddr::new(config.bind_address, config.metrics_port);
        let api_listener = bind(api_address).await?;
        let metrics_listener = bind(metrics_address).await?;
        Ok(Self {
            api_listener,
            metrics_listener,
            state,
        })
    }

    pub fn api_address(&self) -> Option<SocketAddr> {
        self.api_listener.local_addr().ok()
    }

    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_listener.local_addr().ok()
    }

    /// Serves until `shutdown` completes, then drains for at most [`DRAIN_GRACE`].
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let api = uid2_api::router(self.state.clone());
        let metrics = Arc::clone(self.state.metrics());
        let metrics_router = Router::new().route(
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
        );
        if let (Some(api), Some(metrics)) = (self.api_address(), self.metrics_address()) {
            tracing::info!(%api, %metrics, "uid2-operator listening");
        }
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let api_server = axum::serve(self.api_listener, api).with_graceful_shutdown(stopped(stop_rx.clone()));
        let metrics_server =
            axum::serve(self.metrics_listener, metrics_router).with_graceful_shutdown(stopped(stop_rx));
        let api_task = tokio::spawn(async move { api_server.await });
        let metrics_task = tokio::spawn(async move { metrics_server.await });

        shutdown.await;
        tracing::info!("shutdown requested; draining in-flight requests");
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(DRAIN_GRACE, async {
            let api = api_task.await;
            let metrics = metrics_task.await;
            (api, metrics)
        })
        .await;
        match drained {
            Ok((Ok(api), Ok(metrics))) => api.and(metrics),
            Ok(_) => Err(std::io::Error::other("a server task failed")),
            Err(_) => {
                tracing::warn!("drain grace elapsed; closing remaining connections");
                Ok(())
            }
        }
    }
}

fn load(source: &dyn StoreSource, selection: StoreSelection, now_ms: i64) -> Result<Snapshot, StartupError> {
    Ok(Snapshot::load(source, selection, now_ms)?)
}

async fn bind(address: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(address).await.map_err(|e| StartupError::Bind {
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
