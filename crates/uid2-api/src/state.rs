//! What every request reads: static configuration, the current store snapshot, the opt-out
//! index, time, randomness and metrics.
//!
//! The snapshot is swapped as a whole (`ArcSwapOption`), so a request sees keys, salts and clients
//! from one consistent load. A request takes one `Arc` at its start and keeps it to the end.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use uid2_protocol::clock::Clock;
use uid2_protocol::entropy::Entropy;
use uid2_protocol::identity::IdentityScope;
use uid2_store::sites::Site;
use uid2_store::Snapshot;

use crate::metrics::Metrics;
use crate::optout::{OptOutIndex, OptOutReplicator, SpecialIdentities};

/// Static settings that change API behaviour; names follow the reference's config keys.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `identity_scope`: UID2 or EUID.
    pub identity_scope: IdentityScope,
    /// `enable_phone_support`.
    pub phone_support: bool,
    /// `tcf_vendor_id`: the vendor whose consent EUID token generation requires.
    pub tcf_vendor_id: u16,
    /// `client_side_token_generate`: the CSTG route and `site_data` in key responses.
    pub client_side_token_generate: bool,
    /// `client_side_token_generate_domain_name_check_enabled`.
    pub cstg_domain_name_check: bool,
    /// `key_sharing_endpoint_provide_app_names`.
    pub key_sharing_provide_app_names: bool,
    /// `allow_clock_skew_seconds`, echoed to SDKs in key responses.
    pub allow_clock_skew_seconds: i64,
    /// `optout_status_api_enabled`.
    pub optout_status_api_enabled: bool,
    /// `optout_status_max_request_size`.
    pub optout_status_max_request_size: usize,
    /// `identity_v3`: raw UID v3 instead of v2 for salt buckets.
    pub identity_v3: bool,
    /// `validate_service_links`.
    pub validate_service_links: bool,
    /// `http_max_concurrent_requests`: API requests processed at once (admission control).
    pub max_concurrent_requests: usize,
    /// `http_max_queued_requests`: API requests waiting for a turn; beyond them, 503.
    pub max_queued_requests: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            identity_scope: IdentityScope::Uid2,
            phone_support: true,
            tcf_vendor_id: 21,
            client_side_token_generate: false,
            cstg_domain_name_check: true,
            key_sharing_provide_app_names: false,
            allow_clock_skew_seconds: 1800,
            optout_status_api_enabled: true,
            optout_status_max_request_size: 5000,
            identity_v3: false,
            validate_service_links: false,
            max_concurrent_requests: 64,
            max_queued_requests: 512,
        }
    }
}

/// One consistent view of the stores plus what is derived from them.
pub struct Serving {
    pub store: Arc<Snapshot>,
    pub(crate) special: SpecialIdentities,
}

impl Serving {
    pub fn new(store: Arc<Snapshot>, scope: IdentityScope) -> Self {
        let special = SpecialIdentities::new(store.salts.first_level_salt(), scope);
        Self { store, special }
    }

    pub(crate) fn site(&self, site_id: i32) -> Option<&Site> {
        self.store.sites.site(site_id)
    }
}

/// Readiness as `/ops/healthcheck` reports it: every registered component must be healthy.
#[derive(Debug, Default)]
pub struct Health {
    components: Mutex<BTreeMap<String, Option<String>>>,
}

impl Health {
    /// Marks a component healthy (`None`) or unhealthy with a reason.
    pub fn set(&self, component: &str, problem: Option<String>) {
        if let Ok(mut map) = self.components.lock() {
            map.insert(component.to_owned(), problem);
        }
    }

    /// `Ok(())` when healthy, else the reference's `name: reason` lines.
    pub fn check(&self) -> Result<(), String> {
        let map = match self.components.lock() {
            Ok(map) => map,
            Err(_) => return Err("health: state unavailable".to_owned()),
        };
        let lines: Vec<String> = map
            .iter()
            .filter_map(|(name, problem)| problem.as_ref().map(|p| format!("{name}: {p}")))
            .collect();
        if lines.is_empty() {
            Ok(())
        } else {
            Err(lines.join("\n"))
        }
    }
}

/// Everything a handler can reach, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Shared>,
}

pub(crate) struct Shared {
    pub config: ApiConfig,
    pub serving: Arc<ArcSwapOption<Serving>>,
    pub optout: Arc<dyn OptOutIndex>,
    pub logout: Option<Arc<dyn OptOutReplicator>>,
    pub health: Arc<Health>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub metrics: Arc<Metrics>,
}

/// Builds an [`AppState`]; the operator binary and tests wire their own parts in.
pub struct AppStateBuilder {
    shared: Shared,
}

impl AppState {
    pub fn builder(
        config: ApiConfig,
        serving: Arc<ArcSwapOption<Serving>>,
        optout: Arc<dyn OptOutIndex>,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
    ) -> AppStateBuilder {
        AppStateBuilder {
            shared: Shared {
                config,
                serving,
                optout,
                logout: None,
                health: Arc::new(Health::default()),
                clock,
                entropy,
                metrics: Arc::new(Metrics::default()),
            },
        }
    }

    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    pub fn health(&self) -> &Arc<Health> {
        &self.inner.health
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub(crate) fn serving(&self) -> Option<Arc<Serving>> {
        self.inner.serving.load_full()
    }
}

impl AppStateBuilder {
    pub fn logout(mut self, replicator: Arc<dyn OptOutReplicator>) -> Self {
        self.shared.logout = Some(replicator);
        self
    }

    pub fn health(mut self, health: Arc<Health>) -> Self {
        self.shared.health = health;
        self
    }

    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.shared.metrics = metrics;
        self
    }

    pub fn build(self) -> AppState {
        AppState {
            inner: Arc::new(self.shared),
        }
    }
}
