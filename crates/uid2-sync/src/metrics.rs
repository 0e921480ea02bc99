//! Metrics of the sync layer, registered into the operator's registry:
//! - `uid2_store_refresh_total{store,result}` (success / unchanged / failure),
//! - `uid2_store_version{store}` and `uid2_store_last_success_timestamp_seconds{store}` (age =
//!   now − that), `uid2_store_refresh_duration_seconds{store}`,
//! - `uid2_attestation_total{result}` (success / failure / refused) and
//!   `uid2_attestation_expiry_timestamp_seconds`,
//! - `uid2_optout_sync_total{result}`, `uid2_optout_entries`, `uid2_optout_files{kind}`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreResult {
    store: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabel {
    store: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

pub struct SyncMetrics {
    refreshes: Family<StoreResult, Counter>,
    versions: Family<StoreLabel, Gauge>,
    last_success: Family<StoreLabel, Gauge>,
    durations: Family<StoreLabel, Histogram, fn() -> Histogram>,
    attestations: Family<ResultLabel, Counter>,
    attestation_expiry: Gauge,
    optout_syncs: Family<ResultLabel, Counter>,
    optout_entries: Gauge,
    optout_files: Family<KindLabel, Gauge>,
}

impl Default for SyncMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl SyncMetrics {
    pub fn new() -> Self {
        Self {
            refreshes: Family::default(),
            versions: Family::default(),
            last_success: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
            attestations: Family::default(),
            attestation_expiry: Gauge::default(),
            optout_syncs: Family::default(),
            optout_entries: Gauge::default(),
            optout_files: Family::default(),
        }
    }

    /// Registers every series into `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "uid2_store_refresh",
            "Store refreshes from Core by result",
            self.refreshes.clone(),
        );
        registry.register(
            "uid2_store_version",
            "Metadata version of each loaded store",
            self.versions.clone(),
        );
        registry.register(
            "uid2_store_last_success_timestamp_seconds",
            "When each store last refreshed successfully",
            self.last_success.clone(),
        );
        registry.register(
            "uid2_store_refresh_duration_seconds",
            "Duration of store refreshes",
            self.durations.clone(),
        );
        registry.register(
            "uid2_attestation",
            "Attestation attempts by result",
            self.attestations.clone(),
        );
        registry.register(
            "uid2_attestation_expiry_timestamp_seconds",
            "When the current attestation token expires",
            self.attestation_expiry.clone(),
        );
        registry.register("uid2_optout_sync", "Opt-out syncs by result", self.optout_syncs.clone());
        registry.register(
            "uid2_optout_entries",
            "Entries in the opt-out index",
            self.optout_entries.clone(),
        );
        registry.register(
            "uid2_optout_files",
            "Opt-out files indexed, by kind",
            self.optout_files.clone(),
        );
    }

    pub(crate) fn store_refresh(&self, store: &str, result: &str, seconds: f64) {
        self.refreshes
            .get_or_create(&StoreResult {
                store: store.into(),
                result: result.into(),
            })
            .inc();
        self.durations
            .get_or_create(&StoreLabel { store: store.into() })
            .observe(seconds);
    }

    pub(crate) fn store_loaded(&self, store: &str, version: i64, now_ms: i64) {
        let label = StoreLabel { store: store.into() };
        self.versions.get_or_create(&label).set(version);
        self.last_success.get_or_create(&label).set(now_ms / 1000);
    }

    pub(crate) fn store_checked(&self, store: &str, now_ms: i64) {
        self.last_success
            .get_or_create(&StoreLabel { store: store.into() })
            .set(now_ms / 1000);
    }

    pub(crate) fn attestation(&self, result: &str, expires_at_ms: i64) {
        self.attestations
            .get_or_create(&ResultLabel { result: result.into() })
            .inc();
        if expires_at_ms > 0 {
            self.attestation_expiry.set(expires_at_ms / 1000);
        }
    }

    pub(crate) fn optout_sync(&self, result: &str) {
        self.optout_syncs
            .get_or_create(&ResultLabel { result: result.into() })
            .inc();
    }

    pub(crate) fn optout_index(&self, entries: usize, deltas: usize, partitions: usize) {
        self.optout_entries.set(i64::try_from(entries).unwrap_or(i64::MAX));
        for (kind, n) in [("delta", deltas), ("partition", partitions)] {
            self.optout_files
                .get_or_create(&KindLabel { kind: kind.into() })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}
