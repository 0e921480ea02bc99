//! The operator's configuration: one JSON file using the reference's key names, plus the two
//! untrusted environment inputs `core_api_token` and `optout_api_token`.
//!
//! Every key is parsed before anything is reported, so `--check-config` names every bad key at
//! once. Keys the reference reads but this operator does not need are accepted silently (a team
//! can bring its existing file); keys nobody knows are reported as warnings, not errors, for the
//! same reason. Secrets are held in [`Secret`] and never printed.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;

use serde_json::{Map, Value};
use uid2_protocol::identity::IdentityScope;
use uid2_store::runtime_config::RuntimeConfig;
use zeroize::Zeroizing;

/// A configured secret (operator API key); prints as `Secret(..)` and is wiped on drop.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub api: uid2_api::ApiConfig,
    /// Address the API and metrics listeners bind (`http_bind_address`, default 127.0.0.1).
    pub bind_address: IpAddr,
    /// API port before `port_offset` (`http_port`, default 8080).
    pub http_port: u16,
    /// Prometheus port before `port_offset` (`metrics_port`, default 9080).
    pub metrics_port: u16,
    /// Worker threads (`service_instances`); `None` = one per CPU.
    pub service_instances: Option<usize>,
    /// Cap of the runtime's blocking-thread pool (`max_blocking_threads`); `None` = tokio's 512.
    pub max_blocking_threads: Option<usize>,
    /// Connection cap and slow-client deadlines of both listeners (`http_max_connections`,
    /// `http_header_read_timeout_ms`, `http_body_read_timeout_ms`, `http_idle_timeout_ms`).
    pub server: crate::server::ServerLimits,
    /// Directory in the reference store layout; `None` = the bundled local-mode store.
    pub local_store_dir: Option<PathBuf>,
    /// The runtime config from this file (`enable_remote_config: false`), or `None` to take it
    /// from the store.
    pub static_runtime_config: Option<RuntimeConfig>,
    pub core_attest_url: Option<String>,
    pub core_api_token: Option<Secret>,
    pub optout_api_token: Option<Secret>,
    /// Attested mode: everything needed to follow Core and OptOut (`core_attest_url` is set).
    pub attested: Option<Attested>,
}

/// The attested-mode settings.
#[derive(Debug, Clone)]
pub struct Attested {
    pub sync: uid2_sync::SyncConfig,
    /// `enclave_platform`: `""` (trusted); the enclave package sets `azure-sgx`.
    pub enclave_platform: String,
    /// Where `azure-sgx` quotes come from: Occlum's `/dev/sgx`, or the simulated device
    /// (`sgx_simulation`) on machines without SGX.
    pub quote_source: uid2_attest::QuoteSource,
}

/// A key that cannot be used, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub problem: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

/// The outcome of reading a configuration.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// Keys this operator does not know; reported, not fatal.
    pub unknown_keys: Vec<String>,
}

/// Runtime-config keys; read from this file only when `enable_remote_config` is false.
const RUNTIME_CONFIG_KEYS: &[&str] = &[
    "identity_token_expires_after_seconds",
    "refresh_token_expires_after_seconds",
    "refresh_identity_token_after_seconds",
    "sharing_token_expiry_seconds",
    "max_bidstream_lifetime_seconds",
    "max_sharing_lifetime_seconds",
    "identity_environment",
];

/// Keys of the reference's configuration that this operator accepts and does not use, either
/// because they are dead in the reference too or because they belong to features it does not
/// have (S3 storage, other enclave platforms, Vert.x tuning).
const IGNORED_REFERENCE_KEYS: &[&str] = &[
    "storage_mock",
    "service_verbose",
    "refresh_token_v3",
    "allow_legacy_api",
    "enforce_https",
    "failure_shutdown_wait_hours",
    "enable_async_batch_request",
    "client_side_token_generate_log_invalid_http_origins",
    "logging_limit_max_invalid_paths_per_interval",
    "logging_limit_max_version_buckets_per_site",
    "enable_v1_phone_support",
    "disable_optout_token",
    "aws_region",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_s3_endpoint",
    "aws_kms_jwt_signing_public_keys",
    "core_s3_bucket",
    "optout_s3_bucket",
    "optout_s3_folder",
    "optout_s3_path_compat",
    "optout_inmem_cache",
    "optout_bloom_filter_size",
    "optout_heap_default_capacity",
    "optout_delta_backtrack_in_days",
    "optout_synthetic_logs_enabled",
    "optout_synthetic_logs_count",
    "optout_old_count_threshold_seconds",
    "optout_producer_replica_id",
    "optout_producer_max_replicas",
    "cloud_download_threads",
    "cloud_upload_threads",
    "pod_termination_check_interval",
    "default_worker_pool_thread_count",
    "azure_vault_name",
    "azure_secret_name",
    "gcp_secret_version_name",
    "maa_server_base_url",
];

struct Reader<'a> {
    map: &'a Map<String, Value>,
    used: BTreeSet<&'static str>,
    problems: Vec<ConfigProblem>,
}

impl<'a> Reader<'a> {
    fn value(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.insert(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn problem(&mut self, key: &str, problem: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key: key.to_owned(),
            problem: problem.into(),
        });
    }

    fn bool(&mut self, key: &'static str, default: bool) -> bool {
        match self.value(key) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.problem(key, "must be true or false");
                default
            }
        }
    }

    fn int(&mut self, key: &'static str, default: i64, min: i64, max: i64) -> i64 {
        match self.value(key) {
            None => default,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) if (min..=max).contains(&v) => v,
                _ => {
                    self.problem(key, format!("must be an integer from {min} to {max}"));
                    default
                }
            },
            Some(_) => {
                self.problem(key, format!("must be an integer from {min} to {max}"));
                default
            }
        }
    }

    fn string(&mut self, key: &'static str) -> Option<String> {
        match self.value(key) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.problem(key, "must be a string");
                None
            }
        }
    }
}

/// Reads a configuration from the file's JSON text (`None`: no file, all defaults) and the
/// environment (`env` looks a variable up by name).
pub fn load(file_text: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Result<Loaded, Vec<ConfigProblem>> {
    let empty = Map::new();
    let parsed;
    let map = match file_text {
        None => &empty,
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => {
                parsed = map;
                &parsed
            }
            Ok(_) => {
                return Err(vec![ConfigProblem {
                    key: "(file)".into(),
                    problem: "the configuration must be a JSON object".into(),
                }])
            }
            Err(e) => {
                return Err(vec![ConfigProblem {
                    key: "(file)".into(),
                    problem: format!("not valid JSON (line {}, column {})", e.line(), e.column()),
                }])
            }
        },
    };
    let mut r = Reader {
        map,
        used: BTreeSet::new(),
        problems: Vec::new(),
    };

    let identity_scope = match r.string("identity_scope").map(|s| s.to_ascii_lowercase()).as_deref() {
        None | Some("uid2") => IdentityScope::Uid2,
        Some("euid") => IdentityScope::Euid,
        Some(_) => {
            r.problem("identity_scope", "must be \"uid2\" or \"euid\"");
            IdentityScope::Uid2
        }
    };
    if !r.bool("enable_v2_encryption", true) {
        r.problem(
            "enable_v2_encryption",
            "false (the reference's unencrypted development mode) is not supported; remove the key",
        );
    }
    // Read first: whether Core is configured decides some defaults. In local mode CSTG and app
    // names in `site_data` are on, as in the reference's local configuration; otherwise they
    // default to off, as in its code.
    let core_attest_url = r.string("core_attest_url");
    let local_mode = core_attest_url.is_none();
    let defaults = uid2_api::ApiConfig::default();
    let api = uid2_api::ApiConfig {
        identity_scope,
        phone_support: r.bool("enable_phone_support", defaults.phone_support),
        tcf_vendor_id: u16::try_from(r.int("tcf_vendor_id", 21, 1, i64::from(u16::MAX))).unwrap_or(21),
        client_side_token_generate: r.bool("client_side_token_generate", local_mode),
        cstg_domain_name_check: r.bool(
            "client_side_token_generate_domain_name_check_enabled",
            defaults.cstg_domain_name_check,
        ),
        key_sharing_provide_app_names: r.bool("key_sharing_endpoint_provide_app_names", local_mode),
        allow_clock_skew_seconds: r.int("allow_clock_skew_seconds", 1800, 0, i64::from(i32::MAX)),
        optout_status_api_enabled: r.bool("optout_status_api_enabled", true),
        optout_status_max_request_size: usize::try_from(r.int("optout_status_max_request_size", 5000, 0, 1_000_000))
            .unwrap_or(5000),
        identity_v3: r.bool("identity_v3", false),
        validate_service_links: r.bool("validate_service_links", false),
        max_concurrent_requests: usize::try_from(r.int(
            "http_max_concurrent_requests",
            defaults.max_concurrent_requests as i64,
            1,
            100_000,
        ))
        .unwrap_or(defaults.max_concurrent_requests),
        max_queued_requests: usize::try_from(r.int(
            "http_max_queued_requests",
            defaults.max_queued_requests as i64,
            0,
            1_000_000,
        ))
        .unwrap_or(defaults.max_queued_requests),
    };
    let server = server_limits(&mut r);

    let bind_address = match r.string("http_bind_address") {
        None => IpAddr::from([127, 0, 0, 1]),
        Some(text) => text.parse().unwrap_or_else(|_| {
            r.problem(
                "http_bind_address",
                "must be an IP address such as 127.0.0.1 or 0.0.0.0",
            );
            IpAddr::from([127, 0, 0, 1])
        }),
    };
    let http_port = u16::try_from(r.int("http_port", 8080, 1, 65535)).unwrap_or(8080);
    let metrics_port = u16::try_from(r.int("metrics_port", 9080, 1, 65535)).unwrap_or(9080);
    let service_instances = match r.value("service_instances") {
        None => None,
        Some(_) => usize::try_from(r.int("service_instances", 1, 1, 1024)).ok(),
    };
    let max_blocking_threads = match r.value("max_blocking_threads") {
        None => None,
        Some(_) => usize::try_from(r.int("max_blocking_threads", 1, 1, 4096)).ok(),
    };
    let local_store_dir = r.string("local_store_dir").map(PathBuf::from);
    let enable_remote_config = r.bool("enable_remote_config", true);
    let mut runtime_fields = Map::new();
    for key in RUNTIME_CONFIG_KEYS {
        if let Some(v) = r.value(key) {
            runtime_fields.insert((*key).to_owned(), v.clone());
        }
    }
    let static_runtime_config = if enable_remote_config {
        None
    } else {
        match RuntimeConfig::from_json(&runtime_fields) {
            Ok(rc) => Some(rc),
            Err(e) => {
                r.problem(
                    "enable_remote_config",
                    format!("is false, so the runtime config must be here: {e}"),
                );
                None
            }
        }
    };
    let core_api_token = env("core_api_token")
        .or_else(|| r.string("core_api_token"))
        .map(Secret::new);
    let optout_api_token = env("optout_api_token")
        .or_else(|| r.string("optout_api_token"))
        .map(Secret::new);

    let attested = core_attest_url
        .clone()
        .map(|url| attested_settings(&mut r, url, core_api_token.as_ref(), &api, static_runtime_config, env));
    if attested.is_some() && local_store_dir.is_some() {
        r.problem(
            "local_store_dir",
            "cannot be combined with core_attest_url (attested mode syncs from Core)",
        );
    }

    let port_offset = env("port_offset");
    if let Some(text) = port_offset.as_deref() {
        match text.trim().parse::<i32>() {
            Ok(offset) => {
                for (key, port) in [("http_port", http_port), ("metrics_port", metrics_port)] {
                    if !(1..=65535).contains(&(i32::from(port) + offset)) {
                        r.problem(key, format!("with port_offset {offset} falls outside 1..=65535"));
                    }
                }
            }
            Err(_) => r.problem("port_offset (environment)", "must be an integer"),
        }
    }

    let known: BTreeSet<&str> = r
        .used
        .iter()
        .copied()
        .chain(IGNORED_REFERENCE_KEYS.iter().copied())
        .collect();
    let unknown_keys: Vec<String> = map.keys().filter(|k| !known.contains(k.as_str())).cloned().collect();

    if !r.problems.is_empty() {
        return Err(r.problems);
    }
    let offset = port_offset.and_then(|t| t.trim().parse::<i32>().ok()).unwrap_or(0);
    let shift = |port: u16| u16::try_from(i32::from(port) + offset).unwrap_or(port);
    Ok(Loaded {
        config: Config {
            api,
            bind_address,
            http_port: shift(http_port),
            metrics_port: shift(metrics_port),
            service_instances,
            max_blocking_threads,
            server,
            local_store_dir,
            static_runtime_config,
            core_attest_url,
            core_api_token,
            optout_api_token,
            attested: attested.flatten(),
        },
        unknown_keys,
    })
}

/// The listeners' connection cap and deadlines; defaults from [`crate::server::ServerLimits`].
fn server_limits(r: &mut Reader<'_>) -> crate::server::ServerLimits {
    use std::time::Duration;
    let defaults = crate::server::ServerLimits::default();
    let ms = |r: &mut Reader<'_>, key: &'static str, default: Duration| {
        let default_ms = i64::try_from(default.as_millis()).unwrap_or(i64::MAX);
        Duration::from_millis(u64::try_from(r.int(key, default_ms, 100, 3_600_000)).unwrap_or(0))
    };
    crate::server::ServerLimits {
        max_connections: usize::try_from(r.int("http_max_connections", defaults.max_connections as i64, 1, 1_000_000))
            .unwrap_or(defaults.max_connections),
        header_read_timeout: ms(r, "http_header_read_timeout_ms", defaults.header_read_timeout),
        body_read_timeout: ms(r, "http_body_read_timeout_ms", defaults.body_read_timeout),
        idle_timeout: ms(r, "http_idle_timeout_ms", defaults.idle_timeout),
    }
}

/// Reads the keys of attested mode. `None` only when a problem was recorded.
fn attested_settings(
    r: &mut Reader<'_>,
    attest_url: String,
    operator_key: Option<&Secret>,
    api: &uid2_api::ApiConfig,
    static_runtime_config: Option<RuntimeConfig>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Attested> {
    use std::time::Duration;
    use uid2_sync::{Endpoint, Endpoints, OperatorKey, OptOutSettings, SyncConfig};

    let ms = |r: &mut Reader<'_>, key: &'static str| {
        Duration::from_millis(u64::try_from(r.int(key, 10_000, 100, 86_400_000)).unwrap_or(10_000))
    };
    let endpoint = |r: &mut Reader<'_>, path_key: &'static str, interval_key: &'static str, needed: bool| {
        let interval = ms(r, interval_key);
        match r.string(path_key) {
            Some(url) => Some(Endpoint { url, interval }),
            None if needed => {
                r.problem(path_key, "is required when core_attest_url is set");
                None
            }
            None => None,
        }
    };
    let encrypted_files = r.bool("encrypted_files", false);
    let clients = endpoint(r, "clients_metadata_path", "auth_refresh_ms", true);
    let keysets = endpoint(r, "keysets_metadata_path", "keyset_refresh_ms", true);
    let keyset_keys = endpoint(r, "keyset_keys_metadata_path", "keysetkey_refresh_ms", true);
    let salts = endpoint(r, "salts_metadata_path", "salt_refresh_ms", true);
    let cstg = api.client_side_token_generate;
    let sites = endpoint(r, "sites_metadata_path", "site_refresh_ms", cstg).filter(|_| cstg);
    let keypairs = endpoint(
        r,
        "client_side_keypairs_metadata_path",
        "client_side_keypairs_refresh_ms",
        cstg,
    )
    .filter(|_| cstg);
    let links = api.validate_service_links;
    let services = endpoint(r, "services_metadata_path", "service_refresh_ms", links).filter(|_| links);
    let service_links = endpoint(r, "service_links_metadata_path", "service_link_refresh_ms", links).filter(|_| links);
    let remote = static_runtime_config.is_none();
    let runtime_config =
        endpoint(r, "runtime_config_metadata_path", "config_scan_period_ms", remote).filter(|_| remote);
    let cloud_encryption_keys = endpoint(
        r,
        "cloud_encryption_keys_metadata_path",
        "cloud_encryption_keys_refresh_ms",
        encrypted_files,
    )
    .filter(|_| encrypted_files);

    let operator_type = r.string("operator_type").unwrap_or_else(|| "public".to_owned());
    let instance_id_prefix = r.string("uid_instance_id_prefix");
    if instance_id_prefix.as_deref().is_none_or(str::is_empty) {
        r.problem("uid_instance_id_prefix", "is required when core_attest_url is set");
    }
    let enclave_platform = r.string("enclave_platform").unwrap_or_default();
    if !uid2_attest::SUPPORTED_PLATFORMS.contains(&enclave_platform.as_str()) {
        r.problem(
            "enclave_platform",
            format!("{enclave_platform:?} is not supported (use \"\" for trusted or \"azure-sgx\")"),
        );
    }
    // Occlum's own launcher sets OCCLUM=yes in the measured environment of every enclave.
    let inside_enclave = env("OCCLUM").as_deref() == Some("yes");
    let quote_source = sgx_quote_source(r, &enclave_platform, inside_enclave);
    if operator_key.is_none() {
        r.problem(
            "core_api_token",
            "is required when core_attest_url is set (in the file or the core_api_token environment variable)",
        );
    }
    let metadata_path = r.string("optout_metadata_path");
    if metadata_path.is_none() {
        r.problem("optout_metadata_path", "is required when core_attest_url is set");
    }
    let seconds = |r: &mut Reader<'_>, key: &'static str, default: i64| {
        Duration::from_secs(u64::try_from(r.int(key, default, 1, 31_536_000)).unwrap_or(60))
    };
    let optout = OptOutSettings {
        metadata_path,
        api_uri: r.string("optout_api_uri"),
        interval: seconds(r, "cloud_refresh_interval", 60),
        delta_rotate_interval: seconds(r, "optout_delta_rotate_interval", 300),
        partition_interval: seconds(r, "optout_partition_interval", 86_400),
        max_partitions: u32::try_from(r.int("optout_max_partitions", 30, 1, 10_000)).unwrap_or(30),
        cache_dir: r
            .string("optout_data_dir")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| OptOutSettings::default().cache_dir),
        advertising_ids: api.optout_status_api_enabled,
    };
    let hours = |r: &mut Reader<'_>, key: &'static str| {
        Duration::from_secs(u64::try_from(r.int(key, 12, 1, 10_000)).unwrap_or(12) * 3600)
    };
    let stale_store_shutdown = hours(r, "store_refresh_stale_shutdown_hours");
    let expired_salts_shutdown = hours(r, "salts_expired_shutdown_hours");
    let request_timeout =
        Duration::from_millis(u64::try_from(r.int("core_request_timeout_ms", 30_000, 100, 600_000)).unwrap_or(30_000));

    Some(Attested {
        sync: SyncConfig {
            attest_url,
            operator_key: OperatorKey::new(operator_key?.expose()),
            operator_type,
            instance_id_prefix: instance_id_prefix?,
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
            endpoints: Endpoints {
                clients: clients?,
                keysets: keysets?,
                keyset_keys: keyset_keys?,
                salts: salts?,
                sites,
                client_side_keypairs: keypairs,
                services,
                service_links,
                runtime_config,
                cloud_encryption_keys,
            },
            encrypted_files,
            static_runtime_config,
            optout,
            stale_store_shutdown,
            expired_salts_shutdown,
            attestation_failure_shutdown: Duration::from_secs(12 * 3600),
            reattest_margin: Duration::from_secs(600),
            check_interval: Duration::from_secs(60),
            request_timeout,
        },
        enclave_platform,
        quote_source,
    })
}

/// `sgx_simulation`: an enclave identity for synthetic quotes, for running the `azure-sgx` path
/// on machines without SGX (only a test Core's MAA simulator accepts them). Refused inside an
/// enclave, where the real device must be used.
fn sgx_quote_source(r: &mut Reader<'_>, platform: &str, inside_enclave: bool) -> uid2_attest::QuoteSource {
    use uid2_attest::quote::EnclaveIdentity;
    use uid2_attest::QuoteSource;

    const KEY: &str = "sgx_simulation";
    let Some(value) = r.value(KEY) else {
        return QuoteSource::default();
    };
    if platform != "azure-sgx" {
        r.problem(KEY, "is only used with enclave_platform \"azure-sgx\"");
    }
    if inside_enclave {
        r.problem(
            KEY,
            "is refused inside an Occlum enclave (OCCLUM=yes): enclaves quote with /dev/sgx",
        );
    }
    let Some(object) = value.as_object() else {
        r.problem(KEY, "must be an object");
        return QuoteSource::default();
    };
    let hex_field = |r: &mut Reader<'_>, field: &str, len: usize, required: bool| -> Option<Vec<u8>> {
        match object.get(field) {
            None | Some(Value::Null) if !required => None,
            Some(Value::String(text)) if text.len() == len * 2 => hex::decode(text)
                .map_err(|_| r.problem(&format!("{KEY}.{field}"), "must be hex"))
                .ok(),
            _ => {
                r.problem(&format!("{KEY}.{field}"), format!("must be {} hex digits", len * 2));
                None
            }
        }
    };
    let mr_enclave = hex_field(r, "mrenclave", 32, true);
    let mr_signer = hex_field(r, "mrsigner", 32, false);
    let replayed = hex_field(r, "replayed_report_data", 64, false);
    let number = |r: &mut Reader<'_>, field: &str| -> u16 {
        match object.get(field).and_then(Value::as_u64).map(u16::try_from) {
            Some(Ok(n)) => n,
            _ => {
                r.problem(&format!("{KEY}.{field}"), "must be an integer from 0 to 65535");
                0
            }
        }
    };
    let isv_prod_id = number(r, "product_id");
    let isv_svn = number(r, "svn");
    let debuggable = match object.get("debuggable") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            r.problem(&format!("{KEY}.debuggable"), "must be true or false");
            false
        }
    };
    let array32 = |bytes: Option<Vec<u8>>| bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()).unwrap_or([0; 32]);
    QuoteSource::Simulated {
        identity: EnclaveIdentity {
            mr_enclave: array32(mr_enclave),
            mr_signer: array32(mr_signer),
            isv_prod_id,
            isv_svn,
            debuggable,
        },
        replayed_report_data: replayed.and_then(|b| <[u8; 64]>::try_from(b).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_are_local_mode() {
        let loaded = load(None, &no_env).expect("defaults load");
        let c = loaded.config;
        assert_eq!((c.http_port, c.metrics_port), (8080, 9080));
        assert_eq!(c.bind_address, IpAddr::from([127, 0, 0, 1]));
        assert!(c.api.client_side_token_generate);
        assert!(c.local_store_dir.is_none());
        assert!(c.static_runtime_config.is_none());
    }

    #[test]
    fn every_bad_key_is_reported_by_name() {
        let text = r#"{"identity_scope":"xyz","enable_phone_support":"yes","http_port":70000,
                       "tcf_vendor_id":"21","local_store_dir":5,"enable_v2_encryption":false}"#;
        let problems = load(Some(text), &no_env).expect_err("bad config");
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "identity_scope",
            "enable_phone_support",
            "http_port",
            "tcf_vendor_id",
            "local_store_dir",
            "enable_v2_encryption",
        ] {
            assert!(keys.contains(&key), "{key} not reported in {keys:?}");
        }
    }

    #[test]
    fn unknown_keys_warn_and_reference_keys_pass() {
        let text = r#"{"storage_mock":true,"enforce_https":true,"no_such_key":1,"identity_scope":"euid"}"#;
        let loaded = load(Some(text), &no_env).expect("loads");
        assert_eq!(loaded.unknown_keys, vec!["no_such_key".to_owned()]);
        assert_eq!(loaded.config.api.identity_scope, IdentityScope::Euid);
    }

    #[test]
    fn environment_supplies_tokens_and_port_offset() {
        let env = |k: &str| match k {
            "core_api_token" => Some("env-token".to_owned()),
            "port_offset" => Some("3".to_owned()),
            _ => None,
        };
        let loaded = load(Some(r#"{"core_api_token":"file-token"}"#), &env).expect("loads");
        assert_eq!(
            loaded.config.core_api_token.as_ref().map(Secret::expose),
            Some("env-token")
        );
        assert_eq!((loaded.config.http_port, loaded.config.metrics_port), (8083, 9083));
        assert_eq!(format!("{:?}", loaded.config.core_api_token), "Some(Secret(..))");
        let bad = |k: &str| (k == "port_offset").then(|| "x".to_owned());
        assert!(load(None, &bad).is_err());
    }

    #[test]
    fn static_runtime_config_is_validated_here() {
        let missing = load(Some(r#"{"enable_remote_config":false}"#), &no_env).expect_err("missing fields");
        assert_eq!(missing[0].key, "enable_remote_config");
        let text = r#"{"enable_remote_config":false,"identity_token_expires_after_seconds":3600,
            "refresh_token_expires_after_seconds":86400,"refresh_identity_token_after_seconds":900,
            "sharing_token_expiry_seconds":2592000,"identity_environment":"prod"}"#;
        let loaded = load(Some(text), &no_env).expect("complete");
        assert!(loaded.config.static_runtime_config.is_some());
        assert!(loaded.unknown_keys.is_empty());
    }

    #[test]
    fn attested_mode_names_every_missing_key() {
        let problems = load(Some(r#"{"core_attest_url":"http://127.0.0.1:8088/attest"}"#), &no_env)
            .expect_err("incomplete attested config");
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "clients_metadata_path",
            "keysets_metadata_path",
            "keyset_keys_metadata_path",
            "salts_metadata_path",
            "runtime_config_metadata_path",
            "uid_instance_id_prefix",
            "core_api_token",
            "optout_metadata_path",
        ] {
            assert!(keys.contains(&key), "{key} not reported in {keys:?}");
        }
    }

    #[test]
    fn attested_mode_reads_endpoints_and_the_token_from_the_environment() {
        let text = r#"{"core_attest_url":"http://127.0.0.1:8088/attest",
            "clients_metadata_path":"http://c/clients/refresh","keysets_metadata_path":"http://c/k",
            "keyset_keys_metadata_path":"http://c/kk","salts_metadata_path":"http://c/s",
            "runtime_config_metadata_path":"http://c/operator/config","salt_refresh_ms":2000,
            "uid_instance_id_prefix":"test","optout_metadata_path":"http://c/optout/refresh"}"#;
        let env = |k: &str| (k == "core_api_token").then(|| "UID2-O-L-999-abcdef.key".to_owned());
        let loaded = load(Some(text), &env).expect("complete attested config");
        let attested = loaded.config.attested.expect("attested mode");
        assert_eq!(attested.sync.endpoints.salts.interval.as_millis(), 2000);
        assert!(
            attested.sync.endpoints.sites.is_none(),
            "CSTG defaults off with Core configured"
        );
        assert!(!loaded.config.api.client_side_token_generate);
        assert_eq!(format!("{:?}", attested.sync.operator_key), "OperatorKey(..)");
        assert_eq!(attested.enclave_platform, "");
    }

    /// A complete attested config with `extra` keys merged in.
    fn attested_with(extra: &str) -> String {
        let base = r#""core_attest_url":"http://127.0.0.1:8088/attest","core_api_token":"UID2-O-L-999-abcdef.key",
            "clients_metadata_path":"http://c/clients/refresh","keysets_metadata_path":"http://c/k",
            "keyset_keys_metadata_path":"http://c/kk","salts_metadata_path":"http://c/s",
            "runtime_config_metadata_path":"http://c/operator/config",
            "uid_instance_id_prefix":"test","optout_metadata_path":"http://c/optout/refresh""#;
        format!("{{{base}{extra}}}")
    }

    #[test]
    fn azure_sgx_uses_the_device_unless_simulation_is_configured() {
        let loaded = load(
            Some(&attested_with(
                r#","enclave_platform":"azure-sgx","max_blocking_threads":8"#,
            )),
            &no_env,
        )
        .expect("valid");
        assert_eq!(loaded.config.max_blocking_threads, Some(8));
        let attested = loaded.config.attested.expect("attested");
        assert_eq!(
            attested.quote_source,
            uid2_attest::QuoteSource::Device("/dev/sgx".into())
        );

        let simulated = attested_with(
            r#","enclave_platform":"azure-sgx","sgx_simulation":{"mrenclave":"AB00000000000000000000000000000000000000000000000000000000000000","product_id":770,"svn":2}"#,
        );
        let attested = load(Some(&simulated), &no_env)
            .expect("valid")
            .config
            .attested
            .expect("attested");
        let uid2_attest::QuoteSource::Simulated {
            identity,
            replayed_report_data,
        } = attested.quote_source
        else {
            panic!("simulated quotes");
        };
        assert_eq!(identity.mr_enclave[0], 0xAB);
        assert_eq!(
            (identity.isv_prod_id, identity.isv_svn, identity.debuggable),
            (770, 2, false)
        );
        assert_eq!(replayed_report_data, None);

        // Never inside an enclave: Occlum sets OCCLUM=yes there.
        let occlum = |k: &str| (k == "OCCLUM").then(|| "yes".to_owned());
        let problems = load(Some(&simulated), &occlum).expect_err("refused in an enclave");
        assert!(problems
            .iter()
            .any(|p| p.key == "sgx_simulation" && p.problem.contains("OCCLUM")));
    }

    #[test]
    fn sgx_simulation_problems_name_the_field() {
        for (extra, key) in [
            (
                r#","enclave_platform":"","sgx_simulation":{"mrenclave":"00","product_id":1,"svn":1}"#,
                "sgx_simulation",
            ),
            (
                r#","enclave_platform":"azure-sgx","sgx_simulation":{"mrenclave":"zz","product_id":1,"svn":1}"#,
                "sgx_simulation.mrenclave",
            ),
            (
                r#","enclave_platform":"azure-sgx","sgx_simulation":{"mrenclave":"00","product_id":70000,"svn":1}"#,
                "sgx_simulation.product_id",
            ),
            (
                r#","enclave_platform":"azure-sgx","sgx_simulation":{"mrenclave":"00","product_id":1}"#,
                "sgx_simulation.svn",
            ),
            (
                r#","enclave_platform":"azure-sgx","sgx_simulation":[1]"#,
                "sgx_simulation",
            ),
            (r#","enclave_platform":"aws-nitro""#, "enclave_platform"),
        ] {
            let problems = load(Some(&attested_with(extra)), &no_env).expect_err(extra);
            assert!(problems.iter().any(|p| p.key == key), "{extra}: {problems:?}");
        }
    }

    #[test]
    fn overload_limits_and_deadlines_have_defaults_and_bounds() {
        let c = load(None, &no_env).expect("defaults").config;
        assert_eq!((c.api.max_concurrent_requests, c.api.max_queued_requests), (64, 512));
        assert_eq!(c.server, crate::server::ServerLimits::default());
        assert_eq!(c.server.max_connections, 4096);
        assert_eq!(c.server.header_read_timeout.as_millis(), 10_000);
        assert_eq!(c.server.body_read_timeout.as_millis(), 10_000);
        assert_eq!(c.server.idle_timeout.as_millis(), 60_000);

        let text = r#"{"http_max_concurrent_requests":2,"http_max_queued_requests":0,"http_max_connections":10,
            "http_header_read_timeout_ms":500,"http_body_read_timeout_ms":700,"http_idle_timeout_ms":900}"#;
        let loaded = load(Some(text), &no_env).expect("valid");
        assert!(loaded.unknown_keys.is_empty(), "{:?}", loaded.unknown_keys);
        let c = loaded.config;
        assert_eq!((c.api.max_concurrent_requests, c.api.max_queued_requests), (2, 0));
        assert_eq!(c.server.max_connections, 10);
        assert_eq!(
            (
                c.server.header_read_timeout.as_millis(),
                c.server.body_read_timeout.as_millis(),
                c.server.idle_timeout.as_millis()
            ),
            (500, 700, 900)
        );

        let bad = r#"{"http_max_concurrent_requests":0,"http_max_queued_requests":-1,"http_max_connections":0,
            "http_header_read_timeout_ms":99,"http_body_read_timeout_ms":"10s","http_idle_timeout_ms":3600001}"#;
        let problems = load(Some(bad), &no_env).expect_err("out of bounds");
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "http_max_concurrent_requests",
            "http_max_queued_requests",
            "http_max_connections",
            "http_header_read_timeout_ms",
            "http_body_read_timeout_ms",
            "http_idle_timeout_ms",
        ] {
            assert!(keys.contains(&key), "{key} not reported in {keys:?}");
        }
    }

    #[test]
    fn malformed_files_are_one_clear_problem() {
        let problems = load(Some("{not json"), &no_env).expect_err("bad json");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].problem.contains("not valid JSON"));
        assert!(load(Some("[1,2]"), &no_env).is_err());
    }
}
