//! One immutable, fully validated view of every Core store the operator uses.
//!
//! Each store sits behind an `Arc` together with the metadata version it was loaded from, so the
//! sync layer can replace one store (when Core publishes a strictly greater version) and build a
//! new `Snapshot` by cloning the other `Arc`s. A snapshot is only ever built from stores that
//! validated; a store that fails leaves the previous snapshot in charge.
//!
//! [`Snapshot::load`] reads every enabled store from `<store>/metadata.json` of a
//! [`StoreSource`] (the local / embedded mode). It does not require usable keys or fresh salts:
//! [`Snapshot::check_ready`] reports those, for the binary to refuse to start as the reference
//! does.

use std::ops::Deref;
use std::sync::Arc;

use crate::clients::ClientStore;
use crate::error::StoreError;
use crate::key_manager::KeyManager;
use crate::keypairs::ClientSideKeypairStore;
use crate::keyset_keys::KeysetKeyStore;
use crate::keysets::KeysetStore;
use crate::metadata::{parse_salts_metadata, parse_store_metadata};
use crate::runtime_config::{parse_runtime_config_metadata, RuntimeConfig};
use crate::salts::SaltStore;
use crate::service_links::ServiceLinkStore;
use crate::services::ServiceStore;
use crate::sites::SiteStore;
use crate::source::{resolve_location, StoreSource};

/// A store and the metadata version it came from.
#[derive(Debug)]
pub struct Loaded<T> {
    pub version: i64,
    pub store: Arc<T>,
}

impl<T> Loaded<T> {
    pub fn new(version: i64, store: T) -> Self {
        Self {
            version,
            store: Arc::new(store),
        }
    }
}

impl<T> Clone for Loaded<T> {
    fn clone(&self) -> Self {
        Self {
            version: self.version,
            store: Arc::clone(&self.store),
        }
    }
}

impl<T> Deref for Loaded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.store
    }
}

/// Where a single-file store lives and what its metadata calls its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreFiles {
    /// The store's name in errors.
    pub name: &'static str,
    /// Path of the metadata relative to the store root.
    pub metadata: &'static str,
    /// The metadata key holding `{"location": …}`.
    pub data_key: &'static str,
}

pub const CLIENTS: StoreFiles = StoreFiles {
    name: "clients",
    metadata: "clients/metadata.json",
    data_key: "client_keys",
};
pub const KEYSETS: StoreFiles = StoreFiles {
    name: "keysets",
    metadata: "keysets/metadata.json",
    data_key: "keysets",
};
pub const KEYSET_KEYS: StoreFiles = StoreFiles {
    name: "keyset_keys",
    metadata: "keyset_keys/metadata.json",
    data_key: "keyset_keys",
};
pub const SITES: StoreFiles = StoreFiles {
    name: "sites",
    metadata: "sites/metadata.json",
    data_key: "sites",
};
pub const CLIENT_SIDE_KEYPAIRS: StoreFiles = StoreFiles {
    name: "client_side_keypairs",
    metadata: "client_side_keypairs/metadata.json",
    data_key: "client_side_keypairs",
};
pub const SERVICES: StoreFiles = StoreFiles {
    name: "services",
    metadata: "services/metadata.json",
    data_key: "services",
};
pub const SERVICE_LINKS: StoreFiles = StoreFiles {
    name: "service_links",
    metadata: "service_links/metadata.json",
    data_key: "service_links",
};
pub const SALTS_METADATA: &str = "salts/metadata.json";
pub const RUNTIME_CONFIG_METADATA: &str = "runtime_config/metadata.json";

/// Where the runtime config comes from (`enable_remote_config`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RuntimeConfigOrigin {
    /// Its store, `runtime_config/metadata.json` (remote config on).
    #[default]
    Store,
    /// The operator's own config file (remote config off); held at version 0.
    Static(RuntimeConfig),
}

/// Which optional stores the operator's configuration enables. Clients, keysets, keyset keys
/// and salts are always loaded; a disabled store is present but empty, at version 0, so readers
/// never branch on presence (the API checks the enabling flag where the reference does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreSelection {
    /// `client_side_token_generate`: sites and client-side keypairs.
    pub sites_and_keypairs: bool,
    /// `validate_service_links`: services and service links.
    pub services_and_links: bool,
    pub runtime_config: RuntimeConfigOrigin,
}

impl StoreSelection {
    /// Every store, all from the source.
    pub fn all() -> Self {
        Self {
            sites_and_keypairs: true,
            services_and_links: true,
            runtime_config: RuntimeConfigOrigin::Store,
        }
    }
}

/// Reads a single-file store: metadata, then the data file at its location.
pub fn load_store<T>(
    source: &dyn StoreSource,
    files: StoreFiles,
    parse: fn(&[u8]) -> Result<T, StoreError>,
) -> Result<Loaded<T>, StoreError> {
    let read = |path: &str| source.read(path).map_err(|e| e.for_store(files.name));
    let metadata = parse_store_metadata(files.name, files.data_key, &read(files.metadata)?)?;
    let data = read(resolve_location(&metadata.location))?;
    Ok(Loaded::new(metadata.version, parse(&data)?))
}

/// Reads the salts store: metadata, then every snapshot file it lists.
pub fn load_salts(source: &dyn StoreSource, now_ms: i64) -> Result<Loaded<SaltStore>, StoreError> {
    let read = |path: &str| source.read(path).map_err(|e| e.for_store("salts"));
    let metadata = parse_salts_metadata(&read(SALTS_METADATA)?)?;
    let store = SaltStore::build(&metadata, |location| read(resolve_location(location)), now_ms)?;
    Ok(Loaded::new(metadata.version, store))
}

/// Reads the runtime config store (inline in its metadata).
pub fn load_runtime_config(source: &dyn StoreSource) -> Result<Loaded<RuntimeConfig>, StoreError> {
    let bytes = source
        .read(RUNTIME_CONFIG_METADATA)
        .map_err(|e| e.for_store("runtime_config"))?;
    let (version, config) = parse_runtime_config_metadata(&bytes)?;
    Ok(Loaded::new(version, config))
}

/// Every store of one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub clients: Loaded<ClientStore>,
    pub keysets: Loaded<KeysetStore>,
    pub keyset_keys: Loaded<KeysetKeyStore>,
    pub salts: Loaded<SaltStore>,
    /// Empty unless client-side token generation is on.
    pub sites: Loaded<SiteStore>,
    /// Empty unless client-side token generation is on.
    pub keypairs: Loaded<ClientSideKeypairStore>,
    /// Empty unless service links are validated.
    pub services: Loaded<ServiceStore>,
    /// Empty unless service links are validated.
    pub service_links: Loaded<ServiceLinkStore>,
    pub runtime_config: Loaded<RuntimeConfig>,
}

// Published through `Arc` swaps and read from every request thread.
const _: fn() = || {
    fn shared_across_threads<T: Send + Sync>() {}
    shared_across_threads::<Snapshot>();
};

/// Why a snapshot cannot serve yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadinessIssue {
    #[error("no active master key (keyset -1)")]
    NoActiveMasterKey,
    #[error("no active refresh key (keyset -2)")]
    NoActiveRefreshKey,
    #[error("the salt snapshot in force has expired")]
    SaltsExpired,
}

/// Every reason a snapshot cannot serve, in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store snapshot not ready: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct NotReady(pub Vec<ReadinessIssue>);

impl Snapshot {
    /// Loads every enabled store from `source`. `now_ms` is the load time, from which salt
    /// snapshots without `expires` get their default expiry.
    pub fn load(source: &dyn StoreSource, enabled: StoreSelection, now_ms: i64) -> Result<Self, StoreError> {
        let (sites, keypairs) = if enabled.sites_and_keypairs {
            (
                load_store(source, SITES, SiteStore::parse)?,
                load_store(source, CLIENT_SIDE_KEYPAIRS, ClientSideKeypairStore::parse)?,
            )
        } else {
            (
                Loaded::new(0, SiteStore::default()),
                Loaded::new(0, ClientSideKeypairStore::default()),
            )
        };
        let runtime_config = match enabled.runtime_config {
            RuntimeConfigOrigin::Store => load_runtime_config(source)?,
            RuntimeConfigOrigin::Static(config) => Loaded::new(0, config),
        };
        let (services, service_links) = if enabled.services_and_links {
            (
                load_store(source, SERVICES, ServiceStore::parse)?,
                load_store(source, SERVICE_LINKS, ServiceLinkStore::parse)?,
            )
        } else {
            (
                Loaded::new(0, ServiceStore::default()),
                Loaded::new(0, ServiceLinkStore::default()),
            )
        };
        Ok(Self {
            clients: load_store(source, CLIENTS, ClientStore::parse)?,
            salts: load_salts(source, now_ms)?,
            keysets: load_store(source, KEYSETS, KeysetStore::parse)?,
            keyset_keys: load_store(source, KEYSET_KEYS, KeysetKeyStore::parse)?,
            sites,
            keypairs,
            services,
            service_links,
            runtime_config,
        })
    }

    /// Key selection and visibility over this snapshot's keysets and keys.
    pub fn key_manager(&self) -> KeyManager<'_> {
        KeyManager::new(&self.keysets, &self.keyset_keys)
    }

    /// Whether tokens can be issued at `now_ms`: an active master key, an active refresh key and
    /// an unexpired salt snapshot. (The reference's startup check covers the master key and the
    /// salts; a missing refresh key only shows there when the first token is generated.)
    pub fn check_ready(&self, now_ms: i64) -> Result<(), NotReady> {
        let keys = self.key_manager();
        let mut issues = Vec::new();
        if keys.master_key(now_ms).is_none() {
            issues.push(ReadinessIssue::NoActiveMasterKey);
        }
        if keys.refresh_key(now_ms).is_none() {
            issues.push(ReadinessIssue::NoActiveRefreshKey);
        }
        if self.salts.is_expired(now_ms) {
            issues.push(ReadinessIssue::SaltsExpired);
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(NotReady(issues))
        }
    }
}

#[cfg(test)]
mod tests;
