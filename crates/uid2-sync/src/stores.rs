//! Following Core's stores.
//!
//! Each store is polled on its own interval: metadata through the attested client; when (and only
//! when) its `version` is strictly greater than the loaded one, the data file(s) at `location`
//! are fetched with a bare GET, decrypted when the encrypted scope is on, parsed and validated
//! completely; only then is the store swapped and a new snapshot published. Any failure keeps the
//! previous store in service. Cloud keys reload on every poll (Core's version for them is the
//! clock). Nothing is published until every store has loaded once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use uid2_protocol::clock::Clock;
use uid2_store::clients::ClientStore;
use uid2_store::cloud_keys::{decrypt_store_file, CloudKeyStore};
use uid2_store::keypairs::ClientSideKeypairStore;
use uid2_store::keyset_keys::KeysetKeyStore;
use uid2_store::keysets::KeysetStore;
use uid2_store::metadata::{parse_salts_metadata, parse_store_metadata};
use uid2_store::runtime_config::{parse_runtime_config_metadata, RuntimeConfig};
use uid2_store::salts::SaltStore;
use uid2_store::service_links::ServiceLinkStore;
use uid2_store::services::ServiceStore;
use uid2_store::sites::SiteStore;
use uid2_store::{Loaded, Snapshot, StoreError};
use zeroize::Zeroizing;

use crate::attestation::Audience;
use crate::client::CoreClient;
use crate::config::{Endpoint, SyncConfig};
use crate::error::SyncError;
use crate::metrics::SyncMetrics;
use crate::Observer;

/// The stores the operator can follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreId {
    CloudEncryptionKeys,
    RuntimeConfig,
    Clients,
    Keysets,
    KeysetKeys,
    Salts,
    Sites,
    ClientSideKeypairs,
    Services,
    ServiceLinks,
}

impl StoreId {
    pub fn name(self) -> &'static str {
        match self {
            Self::CloudEncryptionKeys => "cloud_encryption_keys",
            Self::RuntimeConfig => "runtime_config",
            Self::Clients => "clients",
            Self::Keysets => "keysets",
            Self::KeysetKeys => "keyset_keys",
            Self::Salts => "salts",
            Self::Sites => "sites",
            Self::ClientSideKeypairs => "client_side_keypairs",
            Self::Services => "services",
            Self::ServiceLinks => "service_links",
        }
    }

    /// The metadata key holding `{"location"}` for single-file stores.
    fn data_key(self) -> &'static str {
        match self {
            Self::Clients => "client_keys",
            other => other.name(),
        }
    }
}

/// The followed stores with their endpoints, in load order (cloud keys first: the encrypted
/// stores need them).
pub(crate) fn followed(config: &SyncConfig) -> Vec<(StoreId, Endpoint)> {
    let e = &config.endpoints;
    let mut list = Vec::new();
    let mut add = |id, endpoint: Option<&Endpoint>| {
        if let Some(endpoint) = endpoint {
            list.push((id, endpoint.clone()));
        }
    };
    add(StoreId::CloudEncryptionKeys, e.cloud_encryption_keys.as_ref());
    add(StoreId::RuntimeConfig, e.runtime_config.as_ref());
    add(StoreId::Clients, Some(&e.clients));
    add(StoreId::Keysets, Some(&e.keysets));
    add(StoreId::KeysetKeys, Some(&e.keyset_keys));
    add(StoreId::Salts, Some(&e.salts));
    add(StoreId::Sites, e.sites.as_ref());
    add(StoreId::ClientSideKeypairs, e.client_side_keypairs.as_ref());
    add(StoreId::Services, e.services.as_ref());
    add(StoreId::ServiceLinks, e.service_links.as_ref());
    list
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refreshed {
    Loaded { version: i64 },
    Unchanged,
}

#[derive(Default)]
struct StoreSet {
    cloud_keys: Option<Loaded<CloudKeyStore>>,
    runtime_config: Option<Loaded<RuntimeConfig>>,
    clients: Option<Loaded<ClientStore>>,
    keysets: Option<Loaded<KeysetStore>>,
    keyset_keys: Option<Loaded<KeysetKeyStore>>,
    salts: Option<Loaded<SaltStore>>,
    sites: Option<Loaded<SiteStore>>,
    keypairs: Option<Loaded<ClientSideKeypairStore>>,
    services: Option<Loaded<ServiceStore>>,
    service_links: Option<Loaded<ServiceLinkStore>>,
}

/// Parsed data ready to be swapped in.
enum Parsed {
    CloudKeys(CloudKeyStore),
    RuntimeConfig(RuntimeConfig),
    Clients(ClientStore),
    Keysets(KeysetStore),
    KeysetKeys(KeysetKeyStore),
    /// Boxed: the salt store is by far the largest value here.
    Salts(Box<SaltStore>),
    Sites(SiteStore),
    Keypairs(ClientSideKeypairStore),
    Services(ServiceStore),
    ServiceLinks(ServiceLinkStore),
}

pub(crate) struct Stores {
    client: CoreClient,
    config: SyncConfig,
    clock: Arc<dyn Clock>,
    observer: Arc<dyn Observer>,
    metrics: Arc<SyncMetrics>,
    set: Mutex<StoreSet>,
    /// The last successful poll of each store (changed or not), for the staleness watchdog.
    last_success: Mutex<HashMap<StoreId, Instant>>,
    started: Instant,
}

impl Stores {
    pub fn new(
        client: CoreClient,
        config: SyncConfig,
        clock: Arc<dyn Clock>,
        observer: Arc<dyn Observer>,
        metrics: Arc<SyncMetrics>,
    ) -> Self {
        let mut set = StoreSet::default();
        if let Some(rc) = config.static_runtime_config {
            set.runtime_config = Some(Loaded::new(0, rc));
        }
        Self {
            client,
            config,
            clock,
            observer,
            metrics,
            set: Mutex::new(set),
            last_success: Mutex::new(HashMap::new()),
            started: Instant::now(),
        }
    }

    fn loaded_version(&self, id: StoreId) -> Option<i64> {
        let set = self.set.lock().ok()?;
        match id {
            StoreId::CloudEncryptionKeys => set.cloud_keys.as_ref().map(|l| l.version),
            StoreId::RuntimeConfig => set.runtime_config.as_ref().map(|l| l.version),
            StoreId::Clients => set.clients.as_ref().map(|l| l.version),
            StoreId::Keysets => set.keysets.as_ref().map(|l| l.version),
            StoreId::KeysetKeys => set.keyset_keys.as_ref().map(|l| l.version),
            StoreId::Salts => set.salts.as_ref().map(|l| l.version),
            StoreId::Sites => set.sites.as_ref().map(|l| l.version),
            StoreId::ClientSideKeypairs => set.keypairs.as_ref().map(|l| l.version),
            StoreId::Services => set.services.as_ref().map(|l| l.version),
            StoreId::ServiceLinks => set.service_links.as_ref().map(|l| l.version),
        }
    }

    fn cloud_keys(&self) -> Option<Loaded<CloudKeyStore>> {
        self.set.lock().ok().and_then(|s| s.cloud_keys.clone())
    }

    /// Polls one store once.
    pub async fn refresh(&self, id: StoreId, url: &str) -> Result<Refreshed, SyncError> {
        let started = Instant::now();
        let result = self.fetch_and_parse(id, url).await;
        let seconds = started.elapsed().as_secs_f64();
        let now_ms = self.clock.now_ms();
        match result {
            Ok(Some((version, parsed))) => {
                self.swap(version, parsed);
                self.metrics.store_refresh(id.name(), "success", seconds);
                self.metrics.store_loaded(id.name(), version, now_ms);
                self.mark_success(id);
                self.publish_if_complete();
                Ok(Refreshed::Loaded { version })
            }
            Ok(None) => {
                self.metrics.store_refresh(id.name(), "unchanged", seconds);
                self.metrics.store_checked(id.name(), now_ms);
                self.mark_success(id);
                Ok(Refreshed::Unchanged)
            }
            Err(error) => {
                self.metrics.store_refresh(id.name(), "failure", seconds);
                // Until a store first loads, the healthcheck says why it has not (afterwards a
                // failed refresh only shows in metrics: the last good data keeps serving).
                if self.loaded_version(id).is_none() {
                    self.observer
                        .health(health_component(id), Some(format!("not loaded yet: {error}")));
                }
                Err(error)
            }
        }
    }

    fn mark_success(&self, id: StoreId) {
        if let Ok(mut map) = self.last_success.lock() {
            map.insert(id, Instant::now());
        }
        self.observer.health(health_component(id), None);
    }

    /// `None` when the version did not increase.
    async fn fetch_and_parse(&self, id: StoreId, url: &str) -> Result<Option<(i64, Parsed)>, SyncError> {
        // Salts metadata carries the first-level salt and the bucket-id secret, cloud keys come
        // inline: every answer is wiped once parsed, as are the data files below.
        let metadata = Zeroizing::new(self.client.get_authenticated(url, Audience::Core, id.name()).await?);
        let newer = |version: i64| self.loaded_version(id).is_none_or(|loaded| version > loaded);
        let parsed = match id {
            StoreId::CloudEncryptionKeys => {
                // Served inline and versioned by the clock: reload every time.
                let keys = CloudKeyStore::parse_inline(&metadata)?;
                (self.clock.now_ms() / 1000, Parsed::CloudKeys(keys))
            }
            StoreId::RuntimeConfig => {
                let (version, config) = parse_runtime_config_metadata(&metadata)?;
                if !newer(version) {
                    return Ok(None);
                }
                (version, Parsed::RuntimeConfig(config))
            }
            StoreId::Salts => {
                let meta = parse_salts_metadata(&metadata)?;
                if !newer(meta.version) {
                    return Ok(None);
                }
                let mut files: HashMap<String, Zeroizing<Vec<u8>>> = HashMap::new();
                for spec in &meta.snapshots {
                    if !files.contains_key(&spec.location) {
                        let data = self.data_file(id, &spec.location).await?;
                        files.insert(spec.location.clone(), data);
                    }
                }
                let now_ms = self.clock.now_ms();
                let version = meta.version;
                // A full salt file is a million lines: parse off the async workers.
                let store = blocking(move || {
                    SaltStore::build(
                        &meta,
                        |location| {
                            // The salt store wipes the file it is handed once parsed.
                            files
                                .remove(location)
                                .map(|mut file| std::mem::take(&mut *file))
                                .ok_or_else(|| {
                                    StoreError::new(
                                        "salts",
                                        uid2_store::error::Problem::NotFound {
                                            path: "(salt file)".into(),
                                        },
                                    )
                                })
                        },
                        now_ms,
                    )
                })
                .await?;
                (version, Parsed::Salts(Box::new(store)))
            }
            _ => {
                let meta = parse_store_metadata(id.name(), id.data_key(), &metadata)?;
                if !newer(meta.version) {
                    return Ok(None);
                }
                let data = self.data_file(id, &meta.location).await?;
                let parsed = blocking(move || {
                    Ok(match id {
                        StoreId::Clients => Parsed::Clients(ClientStore::parse(&data)?),
                        StoreId::Keysets => Parsed::Keysets(KeysetStore::parse(&data)?),
                        StoreId::KeysetKeys => Parsed::KeysetKeys(KeysetKeyStore::parse(&data)?),
                        StoreId::Sites => Parsed::Sites(SiteStore::parse(&data)?),
                        StoreId::ClientSideKeypairs => Parsed::Keypairs(ClientSideKeypairStore::parse(&data)?),
                        StoreId::Services => Parsed::Services(ServiceStore::parse(&data)?),
                        StoreId::ServiceLinks => Parsed::ServiceLinks(ServiceLinkStore::parse(&data)?),
                        StoreId::CloudEncryptionKeys | StoreId::RuntimeConfig | StoreId::Salts => {
                            return Err(StoreError::new(
                                id.name(),
                                uid2_store::error::Problem::NotFound {
                                    path: "(dispatch)".into(),
                                },
                            ))
                        }
                    })
                })
                .await?;
                (meta.version, parsed)
            }
        };
        Ok(Some(parsed))
    }

    /// A data file at `location`, decrypted when the encrypted scope is on; wiped on drop (the
    /// keyset keys, clients and keypairs files hold every key in base64).
    async fn data_file(&self, id: StoreId, location: &str) -> Result<Zeroizing<Vec<u8>>, SyncError> {
        let bytes = Zeroizing::new(self.client.get_file(location, id.name()).await?);
        if !self.config.encrypted_files {
            return Ok(bytes);
        }
        let keys = self
            .cloud_keys()
            .ok_or(SyncError::Malformed("encrypted file before the cloud keys loaded"))?;
        Ok(Zeroizing::new(decrypt_store_file(id.name(), &bytes, &keys)?))
    }

    fn swap(&self, version: i64, parsed: Parsed) {
        let Ok(mut set) = self.set.lock() else { return };
        match parsed {
            Parsed::CloudKeys(s) => set.cloud_keys = Some(Loaded::new(version, s)),
            Parsed::RuntimeConfig(s) => set.runtime_config = Some(Loaded::new(version, s)),
            Parsed::Clients(s) => set.clients = Some(Loaded::new(version, s)),
            Parsed::Keysets(s) => set.keysets = Some(Loaded::new(version, s)),
            Parsed::KeysetKeys(s) => set.keyset_keys = Some(Loaded::new(version, s)),
            Parsed::Salts(s) => set.salts = Some(Loaded::new(version, *s)),
            Parsed::Sites(s) => set.sites = Some(Loaded::new(version, s)),
            Parsed::Keypairs(s) => set.keypairs = Some(Loaded::new(version, s)),
            Parsed::Services(s) => set.services = Some(Loaded::new(version, s)),
            Parsed::ServiceLinks(s) => set.service_links = Some(Loaded::new(version, s)),
        }
    }

    /// Publishes a snapshot once every followed store has loaded.
    fn publish_if_complete(&self) {
        let snapshot = {
            let Ok(set) = self.set.lock() else { return };
            let e = &self.config.endpoints;
            let (Some(clients), Some(keysets), Some(keyset_keys), Some(salts), Some(runtime_config)) = (
                set.clients.clone(),
                set.keysets.clone(),
                set.keyset_keys.clone(),
                set.salts.clone(),
                set.runtime_config.clone(),
            ) else {
                return;
            };
            let (Some(sites), Some(keypairs), Some(services), Some(service_links)) = (
                optional(&set.sites, e.sites.is_some()),
                optional(&set.keypairs, e.client_side_keypairs.is_some()),
                optional(&set.services, e.services.is_some()),
                optional(&set.service_links, e.service_links.is_some()),
            ) else {
                return;
            };
            Snapshot {
                clients,
                keysets,
                keyset_keys,
                salts,
                sites: sites.unwrap_or_else(|| Loaded::new(0, SiteStore::default())),
                keypairs: keypairs.unwrap_or_else(|| Loaded::new(0, ClientSideKeypairStore::default())),
                services: services.unwrap_or_else(|| Loaded::new(0, ServiceStore::default())),
                service_links: service_links.unwrap_or_else(|| Loaded::new(0, ServiceLinkStore::default())),
                runtime_config,
            }
        };
        self.observer.publish_snapshot(Arc::new(snapshot));
    }

    /// The salts in force, for the expired-salts watchdog.
    pub fn salts_expired(&self, now_ms: i64) -> bool {
        self.set
            .lock()
            .ok()
            .and_then(|s| s.salts.as_ref().map(|salts| salts.is_expired(now_ms)))
            .unwrap_or(false)
    }

    /// The longest time any followed store has gone without a successful poll.
    pub fn stalest(&self) -> Option<(StoreId, std::time::Duration)> {
        let map = self.last_success.lock().ok()?;
        followed(&self.config)
            .into_iter()
            .map(|(id, _)| (id, map.get(&id).map_or(self.started.elapsed(), Instant::elapsed)))
            .max_by_key(|(_, age)| *age)
    }
}

/// Runs CPU-heavy parsing on the blocking pool so request handling keeps its workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| SyncError::Malformed("store parsing stopped"))?
        .map_err(SyncError::from)
}

/// A followed store must have loaded; one that is not followed is empty. `None`: not ready.
fn optional<T>(loaded: &Option<Loaded<T>>, followed: bool) -> Option<Option<Loaded<T>>> {
    match (loaded, followed) {
        (Some(l), _) => Some(Some(l.clone())),
        (None, false) => Some(None),
        (None, true) => None,
    }
}

pub(crate) fn health_component(id: StoreId) -> &'static str {
    match id {
        StoreId::CloudEncryptionKeys => "cloud_encryption_keys-rotator",
        StoreId::RuntimeConfig => "runtime_config-rotator",
        StoreId::Clients => "auth-rotator",
        StoreId::Keysets => "keyset-rotator",
        StoreId::KeysetKeys => "keysetkey-rotator",
        StoreId::Salts => "salt-rotator",
        StoreId::Sites => "site-rotator",
        StoreId::ClientSideKeypairs => "client_side_keypairs-rotator",
        StoreId::Services => "service-rotator",
        StoreId::ServiceLinks => "service_link-rotator",
    }
}
