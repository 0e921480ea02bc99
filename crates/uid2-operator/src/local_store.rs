//! The store bundled into the binary for local mode: the reference's local test data
//! (`testdata/reference-store`, unchanged) plus one default keyset for site 999
//! (`testdata/local-store`), so the SDK test client's tokens are decryptable with its own keys.
//!
//! The files are compiled in, so `cargo run` needs no data directory; `local_store_dir` points
//! the operator at a directory in the same layout instead.

use uid2_store::EmbeddedSource;

macro_rules! bundled {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/local-store/", $path)) as &[u8])),*]
    };
}

static FILES: &[(&str, &[u8])] = bundled![
    "client_side_keypairs/metadata.json",
    "../reference-store/client_side_keypairs/client_side_keypairs.json",
    "clients/metadata.json",
    "../reference-store/clients/clients.json",
    "cloud_encryption_keys/metadata.json",
    "../reference-store/cloud_encryption_keys/cloud_encryption_keys.json",
    "keysets/metadata.json",
    "keysets/keysets.json",
    "keyset_keys/metadata.json",
    "keyset_keys/keyset_keys.json",
    "runtime_config/metadata.json",
    "salts/metadata.json",
    "../reference-store/salts/salts.txt.1670796729291",
    "../reference-store/salts/salts.txt.1745907348982",
    "service_links/metadata.json",
    "../reference-store/service_links/service_links.json",
    "services/metadata.json",
    "../reference-store/services/services.json",
    "sites/metadata.json",
    "../reference-store/sites/sites.json",
];

/// The bundled local-mode store.
pub fn source() -> EmbeddedSource {
    EmbeddedSource(FILES)
}
