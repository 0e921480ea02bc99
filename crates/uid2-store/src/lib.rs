//! The UID2 Core stores, parsed into one immutable snapshot.
//!
//! Core publishes each store as a `metadata.json` (a version and the location of a data file)
//! plus the data file itself: clients, sites, keysets, keyset keys, client-side keypairs, salts,
//! services, service links, the runtime config and the cloud encryption keys. This crate turns
//! those bytes into typed, validated stores and bundles them into a [`Snapshot`]; it does no
//! network I/O, and reads files only through [`source::DirSource`].
//!
//! Invariants kept by every module:
//! - no function panics on any input; a store that does not validate is an error, never a
//!   half-built store;
//! - secrets (client secrets, key hashes and salts, keyset and cloud keys, private keys, salt
//!   strings) never appear in `Debug` output or in errors; errors name the store, the record
//!   index and the field, never the content;
//! - stores are immutable once built; the sync layer replaces a whole store (and rebuilds the
//!   cheap, `Arc`-sharing snapshot) when Core publishes a strictly greater version.
//!
//! Where the reference (the Java operator and `uid2-shared`) tolerates data that would crash it
//! later, this crate rejects the file at load time instead; each such place says so in its docs.

pub mod clients;
pub mod cloud_keys;
pub mod error;
pub mod hashids;
pub mod key_manager;
pub mod keypairs;
pub mod keyset_keys;
pub mod keysets;
pub mod metadata;
pub mod optout;
mod record;
pub mod role;
pub mod runtime_config;
pub mod salts;
pub mod service_links;
pub mod services;
pub mod sites;
pub mod snapshot;
pub mod source;

pub use clients::{ClientKey, ClientStore};
pub use error::{Problem, StoreError};
pub use key_manager::{KeyManager, MultipleDefaultKeysets, SiteKeyChoice};
pub use keypairs::ClientSideKeypair;
pub use keyset_keys::KeysetKey;
pub use keysets::{Keyset, FALLBACK_PUBLISHER_SITE_ID, MASTER_KEYSET_ID, MASTER_KEYSET_ID_FOR_SDKS, REFRESH_KEYSET_ID};
pub use role::Role;
pub use runtime_config::RuntimeConfig;
pub use salts::{KeyMaterial, SaltEntry};
pub use service_links::ServiceLink;
pub use sites::Site;
pub use snapshot::{Loaded, NotReady, ReadinessIssue, RuntimeConfigOrigin, Snapshot, StoreSelection};
pub use source::{DirSource, EmbeddedSource, StoreSource};
