//! `uid2-local-core`: a real, small UID2 Core + OptOut service for tests and for running by hand.
//!
//! It speaks the HTTP protocol the operator's attestation client and store sync use
//! (`shared/reference/sync.md`): `POST /attest` hands out attestation tokens, the metadata
//! endpoints return a store directory's `metadata.json` files with their `location`s turned into
//! URLs it serves itself (plain or, with `Encrypted: true`, in the cloud-key envelope), and the
//! OptOut routes list opt-out files and write new deltas. Everything is read from disk on every
//! request, so a test can edit a file or bump a version while the service runs.
//!
//! Tests start it in-process on port 0:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use uid2_local_core::{FaultRule, LocalCore};
//! let core = LocalCore::builder("testdata/local-store")
//!     .operators_file("testdata/local-core/operators.json")
//!     .start()
//!     .await?;
//! core.faults().add(FaultRule::status("/salt/refresh", 500).times(2))?;
//! let attest_url = format!("{}/attest", core.base_url());
//! # let _ = attest_url;
//! core.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Invariants: it binds loopback addresses only; no input makes it panic; operator keys, tokens
//! and secrets never reach a log line or an error body; file routes never serve anything
//! outside the store directory's parent.

pub mod activity;
mod attest;
pub mod cli;
pub mod cloud_keys;
mod control;
pub mod error;
pub mod faults;
pub mod files;
pub mod generate;
pub mod jwt;
pub mod maa;
mod metadata;
pub mod operators;
pub mod optout;
mod server;
pub mod token;
pub mod verifier;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uid2_protocol::clock::{Clock, SystemClock};
use uid2_protocol::entropy::OsEntropy;

pub use activity::{Activity, RequestRecord};
pub use attest::iso_instant;
pub use faults::{BodyFault, FaultRule, Faults};
pub use operators::{hash_key, OperatorRecord, OperatorStore, OperatorType};
pub use server::TokenLifetime;
pub use token::TokenCipher;

/// The operator key of `testdata/local-core/operators.json` (site 999, trusted, public,
/// OPERATOR + OPTOUT). Public test material: it opens nothing but this service.
pub const LOCAL_OPERATOR_KEY: &str = "UID2-O-L-999-NW4Zx0.ex3wj2sdTPzINv8Aqc+mkeq9U/TIyxLcgTKIZ=";

/// The `azure-sgx` operator key of `testdata/local-core/operators.json` (site 999, public,
/// OPERATOR + OPTOUT), used by `conf/azure-sgx-simulated-local-config.json`. Public test material.
pub const LOCAL_SGX_OPERATOR_KEY: &str = "UID2-O-L-999-afh3Er.2DoYPUO/1KPsZJcAFj2sEZjx42GUSbpFn/pW0=";

/// The MRENCLAVE of that configuration's simulated enclave, allowlisted in
/// `testdata/local-core/enclaves.json`.
pub const LOCAL_SIMULATED_MRENCLAVE: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";

/// Core's default token lifetime, before jitter.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(7200);
/// Core's random extra lifetime, in seconds, inclusive.
pub const DEFAULT_JITTER_SECONDS: (i64, i64) = (300, 600);

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the store directory cannot be used: {0}")]
    Store(std::io::Error),
    #[error("refusing to listen on {0}: local Core binds loopback addresses only")]
    NotLoopback(SocketAddr),
    #[error("cannot listen: {0}")]
    Bind(std::io::Error),
    #[error("the MAA simulator cannot start: {0}")]
    Maa(String),
}

/// Entry point of the library API.
pub struct LocalCore;

impl LocalCore {
    /// A service over `store_dir` (the reference store layout). Defaults: `127.0.0.1:0`,
    /// operators in `<store>/operators/operators.json`, enclaves in
    /// `<store>/operators/enclaves.json`, 7200 s tokens with 300–600 s jitter, the built-in test
    /// token secrets, the system clock.
    pub fn builder(store_dir: impl Into<PathBuf>) -> Builder {
        let store_dir = store_dir.into();
        Builder {
            operators_file: store_dir.join("operators/operators.json"),
            enclaves_file: store_dir.join("operators/enclaves.json"),
            store_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            lifetime: TokenLifetime {
                seconds: i64::try_from(DEFAULT_TOKEN_LIFETIME.as_secs()).unwrap_or(7200),
                jitter: Some(DEFAULT_JITTER_SECONDS),
            },
            enc_key: token::DEFAULT_ENC_KEY.to_owned(),
            enc_salt: token::DEFAULT_ENC_SALT.to_owned(),
            clock: Arc::new(SystemClock),
            maa_url: None,
            maa_key_pem: maa::TEST_SIGNING_KEY_PEM.to_owned(),
        }
    }
}

/// Settings of one service; see [`LocalCore::builder`].
pub struct Builder {
    store_dir: PathBuf,
    listen: SocketAddr,
    public_url: Option<String>,
    operators_file: PathBuf,
    enclaves_file: PathBuf,
    lifetime: TokenLifetime,
    enc_key: String,
    enc_salt: String,
    clock: Arc<dyn Clock>,
    maa_url: Option<String>,
    maa_key_pem: String,
}

impl Builder {
    /// Address to bind; must be loopback. Port 0 picks a free port.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Base of the URLs handed out (`optout_url`, file locations). Default: `http://<bound addr>`.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    pub fn operators_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.operators_file = path.into();
        self
    }

    pub fn enclaves_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.enclaves_file = path.into();
        self
    }

    /// Token lifetime before jitter (whole seconds).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime.seconds = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// `false`: tokens expire exactly after the lifetime; `true`: Core's 300–600 s extra.
    pub fn jitter(mut self, on: bool) -> Self {
        self.lifetime.jitter = on.then_some(DEFAULT_JITTER_SECONDS);
        self
    }

    /// Core's `att_token_enc_key` and `att_token_enc_salt`.
    pub fn token_secrets(mut self, key: impl Into<String>, salt: impl Into<String>) -> Self {
        self.enc_key = key.into();
        self.enc_salt = salt.into();
        self
    }

    /// The clock behind token expiry, cloud-key activation and opt-out timestamps.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The MAA-compatible service the `azure-sgx` verifier calls. Default: this service's own
    /// simulator, `<public url>/maa`.
    pub fn maa_url(mut self, url: impl Into<String>) -> Self {
        self.maa_url = Some(url.into());
        self
    }

    /// The PKCS#8 PEM RSA key the MAA simulator signs with (default: the bundled test key).
    pub fn maa_signing_key(mut self, pem: impl Into<String>) -> Self {
        self.maa_key_pem = pem.into();
        self
    }

    /// Binds and starts serving on the current tokio runtime.
    pub async fn start(self) -> Result<Running, StartError> {
        if !self.listen.ip().is_loopback() {
            return Err(StartError::NotLoopback(self.listen));
        }
        let tree = files::StoreTree::new(&self.store_dir).map_err(StartError::Store)?;
        let (enc_key, enc_salt) = (self.enc_key, self.enc_salt);
        let cipher = tokio::task::spawn_blocking(move || TokenCipher::derive(&enc_key, &enc_salt))
            .await
            .map_err(|_| StartError::Bind(std::io::Error::other("token key derivation stopped")))?;
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(StartError::Bind)?;
        let local_addr = listener.local_addr().map_err(StartError::Bind)?;
        let public_url = self
            .public_url
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{local_addr}"));
        let maa = maa::MaaSimulator::new(&self.maa_key_pem).map_err(StartError::Maa)?;
        let maa_url = self
            .maa_url
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("{public_url}/maa"));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| StartError::Maa(format!("HTTP client: {e}")))?;
        let faults = Arc::new(Faults::default());
        let activity = Arc::new(Activity::default());
        let state = Arc::new(server::AppState {
            tree,
            public_url: public_url.clone(),
            operators_file: self.operators_file,
            enclaves_file: self.enclaves_file,
            cipher,
            lifetime: self.lifetime,
            clock: self.clock,
            entropy: Arc::new(OsEntropy),
            faults: faults.clone(),
            activity: activity.clone(),
            maa,
            maa_url,
            http,
        });
        let app = server::router(state);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // Without TCP_NODELAY a small answer can wait ~40 ms for the peer's delayed ACK.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
                let _ = tcp.set_nodelay(true);
            });
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "local core stopped with an error");
            }
        });
        tracing::info!(%local_addr, %public_url, "local core listening");
        Ok(Running {
            local_addr,
            public_url,
            faults,
            activity,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A started service. Dropping it stops the service too (without waiting).
pub struct Running {
    local_addr: SocketAddr,
    public_url: String,
    faults: Arc<Faults>,
    activity: Arc<Activity>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// `http://127.0.0.1:<port>` (or the configured public URL), no trailing slash.
    pub fn base_url(&self) -> &str {
        &self.public_url
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The fault rules; changes apply to the next request.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Counters and the recent-request log.
    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// Tokens issued by `/attest` so far.
    pub fn attestation_count(&self) -> u64 {
        self.activity.attestation_count()
    }

    /// Requests seen for exactly `path` (any status).
    pub fn request_count(&self, path: &str) -> u64 {
        self.activity.request_count(path)
    }

    /// Stops accepting, lets in-flight requests finish (at most 5 s), and returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Writes `records` as an `operators.json` at `path` (creating parent directories): the helper
/// tests use to make keys of every kind.
pub fn write_operators_file(path: &Path, records: &[OperatorRecord]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let json: Vec<serde_json::Value> = records.iter().map(OperatorRecord::to_json).collect();
    let text = serde_json::to_string_pretty(&json).map_err(std::io::Error::other)?;
    std::fs::write(path, text + "\n")
}
