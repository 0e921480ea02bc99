//! What the sync layer needs to know: where Core and OptOut are, the operator key, which stores
//! to follow and how often, and the shutdown windows. Built by the binary from its config file.

use std::path::PathBuf;
use std::time::Duration;

use uid2_store::runtime_config::RuntimeConfig;
use zeroize::Zeroizing;

/// The operator's API key for Core and OptOut; never printed.
#[derive(Clone)]
pub struct OperatorKey(Zeroizing<String>);

impl OperatorKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(Zeroizing::new(key.into()))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorKey(..)")
    }
}

/// One store followed from Core: its metadata URL and refresh interval.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
    pub interval: Duration,
}

/// The Core metadata endpoints. Optional stores are followed only when configured (CSTG needs
/// sites and keypairs, service links need services and links, remote config the runtime config,
/// encrypted files the cloud keys).
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub clients: Endpoint,
    pub keysets: Endpoint,
    pub keyset_keys: Endpoint,
    pub salts: Endpoint,
    pub sites: Option<Endpoint>,
    pub client_side_keypairs: Option<Endpoint>,
    pub services: Option<Endpoint>,
    pub service_links: Option<Endpoint>,
    pub runtime_config: Option<Endpoint>,
    pub cloud_encryption_keys: Option<Endpoint>,
}

/// The opt-out side.
#[derive(Debug, Clone)]
pub struct OptOutSettings {
    /// `optout_metadata_path`: absolute, or relative to the `optout_url` Core returns.
    pub metadata_path: Option<String>,
    /// `optout_api_uri`: where logouts are replicated.
    pub api_uri: Option<String>,
    /// `cloud_refresh_interval`.
    pub interval: Duration,
    /// `optout_delta_rotate_interval`, `optout_partition_interval`, `optout_max_partitions`.
    pub delta_rotate_interval: Duration,
    pub partition_interval: Duration,
    pub max_partitions: u32,
    /// `optout_data_dir`: where downloaded files are cached.
    pub cache_dir: PathBuf,
    /// `optout_status_api_enabled`: index advertising ids for `/v2/optout/status`.
    pub advertising_ids: bool,
}

impl Default for OptOutSettings {
    fn default() -> Self {
        Self {
            metadata_path: None,
            api_uri: None,
            interval: Duration::from_secs(60),
            delta_rotate_interval: Duration::from_secs(300),
            partition_interval: Duration::from_secs(86_400),
            max_partitions: 30,
            cache_dir: std::env::temp_dir().join("uid2-operator-optout"),
            advertising_ids: true,
        }
    }
}

/// Everything the sync layer runs on.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// `core_attest_url`.
    pub attest_url: String,
    /// `core_api_token` (or the `core_api_token` environment variable).
    pub operator_key: OperatorKey,
    /// `operator_type`: `public` or `private`; Core refuses a mismatch with the key.
    pub operator_type: String,
    /// `uid_instance_id_prefix`: first part of `UID-Instance-Id`.
    pub instance_id_prefix: String,
    /// The version sent as `application_version` and in `X-UID2-AppVersion`.
    pub app_version: String,
    pub endpoints: Endpoints,
    /// `encrypted_files`: ask Core for the encrypted scope and decrypt files with cloud keys.
    pub encrypted_files: bool,
    /// The runtime config from the operator's own file when remote config is off.
    pub static_runtime_config: Option<RuntimeConfig>,
    pub optout: OptOutSettings,
    /// `store_refresh_stale_shutdown_hours`: exit when a store has not refreshed for this long.
    pub stale_store_shutdown: Duration,
    /// `salts_expired_shutdown_hours`: exit when salts have been expired for this long.
    pub expired_salts_shutdown: Duration,
    /// Exit after this long of continuous (retryable) attestation failure (12 h, fixed in the
    /// reference).
    pub attestation_failure_shutdown: Duration,
    /// Re-attest when the token has less than this left (10 min).
    pub reattest_margin: Duration,
    /// How often the attestation and the watchdogs are checked (60 s).
    pub check_interval: Duration,
    /// `core_request_timeout_ms`: the longest a metadata call (store metadata, the opt-out
    /// listing) or a logout replication may take, answer included (30 s). Data files have their
    /// own, longer bound, and attestation 60 s.
    pub request_timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_key_never_prints_and_zeroizes() {
        fn zeroizes_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        zeroizes_on_drop::<Zeroizing<String>>();
        let key = OperatorKey::new("UID2-O-L-999-NW4Zx0.ex3wj2sdTPzINv8Aqc+mkeq9U/TIyxLcgTKIZ=");
        let settings = OptOutSettings::default();
        for shown in [
            format!("{key:?}"),
            format!("{:#?}", key.clone()),
            format!("{settings:?}"),
        ] {
            assert!(!shown.contains("ex3wj2sd") && !shown.contains("NW4Zx0"), "{shown}");
        }
        assert_eq!(format!("{key:?}"), "OperatorKey(..)");
    }
}
