//! Every store file parser of `uid2_store`, one kind per value of the mode byte; the rest is the
//! file. What parses is then used the way the operator uses it, which must not panic either:
//!
//! | mode | file | then |
//! |---|---|---|
//! | 0 | salt file (metadata says it has as many lines as it has) | every bucket's current and previous raw UID for every scope, type, environment and UID version (the loader promises the current one exists), bucket ids, bucket lookups, refresh-from |
//! | 1 | salts `metadata.json` | the store is built over the reference salt file for every location |
//! | 2 | `keysets.json` | key selection against the bundled keyset keys |
//! | 3 | `keyset_keys.json` | key selection against the bundled keysets; every key id looks up |
//! | 4 | `clients.json` | authentication with every client's key id and the bundled keys |
//! | 5 | `sites.json` | `site_data` of every bundled key |
//! | 6 | `client_side_keypairs.json` | lookup and ECDH with the §8.12 client |
//! | 7 | `services.json` | lookups |
//! | 8 | `service_links.json` | lookups |
//! | 9 | runtime config `metadata.json` | lifetimes are ordered as validated |
//! | 10 | single-file store `metadata.json` | the location resolves |
//! | 11 | `cloud_encryption_keys.json` (file and inline forms) | lookups |
//! | 12 | an encrypted store file, opened with the reference cloud keys | |
//! | 13 | a plaintext sealed as an encrypted store file | it opens to itself |
//! | 14 | an API key (`Authorization: Bearer …`) | authentication against the bundled clients |
//! | 15 | any bundled store file (chosen by the next byte), replaced by the input | the whole snapshot loads or is refused; if it loads, readiness is checked |
#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use uid2_fuzz::keys::CSTG_CLIENT_SCALAR;
use uid2_fuzz::operator::{operator, NOW_MS};
use uid2_fuzz::{array, mode, value};
use uid2_protocol::crypto::{gcm_seal_with_iv, SecretKey};
use uid2_protocol::cstg::client::ClientKey;
use uid2_protocol::identity::{IdentityEnvironment, IdentityScope, IdentityType};
use uid2_store::clients::ClientStore;
use uid2_store::cloud_keys::{decrypt_store_file, CloudKeyStore};
use uid2_store::key_manager::KeyManager;
use uid2_store::keypairs::ClientSideKeypairStore;
use uid2_store::keyset_keys::KeysetKeyStore;
use uid2_store::keysets::KeysetStore;
use uid2_store::metadata::{parse_salts_metadata, parse_store_metadata};
use uid2_store::runtime_config::parse_runtime_config_metadata;
use uid2_store::salts::SaltStore;
use uid2_store::service_links::ServiceLinkStore;
use uid2_store::services::ServiceStore;
use uid2_store::sites::SiteStore;
use uid2_store::source::resolve_location;
use uid2_store::{Snapshot, StoreError, StoreSelection, StoreSource};

const REFERENCE_SALTS: &[u8] = include_bytes!("../../testdata/reference-store/salts/salts.txt.1670796729291");
const REFERENCE_CLOUD_KEYS: &[u8] =
    include_bytes!("../../testdata/reference-store/cloud_encryption_keys/cloud_encryption_keys.json");

/// The bundled store files a mode-15 input may replace, by the path the loader reads.
const BUNDLED: [&str; 18] = [
    "client_side_keypairs/metadata.json",
    "../reference-store/client_side_keypairs/client_side_keypairs.json",
    "clients/metadata.json",
    "../reference-store/clients/clients.json",
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

fuzz_target!(|data: &[u8]| {
    let (mode, file) = mode(data);
    match mode % 16 {
        0 => salt_file(file),
        1 => salts_metadata(file),
        2 => keysets(file),
        3 => keyset_keys(file),
        4 => clients(file),
        5 => sites(file),
        6 => keypairs(file),
        7 => services(file),
        8 => service_links(file),
        9 => runtime_config(file),
        10 => store_metadata(file),
        11 => cloud_keys(file),
        12 => encrypted_file(file),
        13 => encrypted_round_trip(file),
        14 => api_key(file),
        _ => snapshot(file),
    }
});

fn flhs(seed: &[u8]) -> [[u8; 32]; 2] {
    let mut last = [0xA5u8; 32];
    for (i, b) in seed.iter().take(32).enumerate() {
        last[i] = *b;
    }
    [[0xFF; 32], last]
}

/// Every scope, type, environment and raw UID version appears at least once.
const SHAPES: [(IdentityScope, IdentityType, IdentityEnvironment, bool); 4] = [
    (
        IdentityScope::Uid2,
        IdentityType::Email,
        IdentityEnvironment::Test,
        false,
    ),
    (
        IdentityScope::Euid,
        IdentityType::Phone,
        IdentityEnvironment::Prod,
        true,
    ),
    (
        IdentityScope::Uid2,
        IdentityType::Phone,
        IdentityEnvironment::Integ,
        true,
    ),
    (
        IdentityScope::Euid,
        IdentityType::Email,
        IdentityEnvironment::Prod,
        false,
    ),
];

fn exercise_salts(store: &SaltStore, seed: &[u8]) {
    let now = NOW_MS;
    for snapshot in store.snapshots() {
        for entry in snapshot.entries() {
            let _ = store.bucket_id(entry);
            let _ = entry.mapped_refresh_from_ms(now);
            let _ = entry.warm();
            for flh in flhs(seed) {
                for (scope, id_type, env, v3) in SHAPES {
                    entry
                        .current_raw_uid(&flh, scope, id_type, env, v3)
                        .expect("every loaded bucket has a current raw UID");
                    let _ = entry.previous_raw_uid(&flh, scope, id_type, env, v3, now);
                }
            }
        }
        for flh in flhs(seed) {
            let _ = snapshot.entry_for(&flh);
        }
    }
    for at in [i64::MIN, 0, now, i64::MAX] {
        let _ = store.snapshot_at(at);
        let _ = store.is_expired(at);
        let _ = store.modified_since(at, now).count();
    }
}

fn salt_file(file: &[u8]) {
    let text = String::from_utf8_lossy(file);
    let lines = if text.is_empty() {
        1
    } else {
        text.trim_end_matches('\n').split('\n').count()
    };
    let metadata = json!({
        "version": 1,
        "first_level": "first-level-salt",
        "id_prefix": "b",
        "id_secret": "id-secret",
        "salts": [{"effective": 0, "location": "salts.txt", "size": lines}],
    });
    let metadata = parse_salts_metadata(metadata.to_string().as_bytes()).expect("the fixed metadata parses");
    if let Ok(store) = SaltStore::build(&metadata, |_| Ok(file.to_vec()), NOW_MS) {
        exercise_salts(&store, file);
    }
}

fn salts_metadata(file: &[u8]) {
    let Ok(metadata) = parse_salts_metadata(file) else {
        return;
    };
    if let Ok(store) = SaltStore::build(&metadata, |_| Ok(REFERENCE_SALTS.to_vec()), NOW_MS) {
        exercise_salts(&store, file);
    }
}

fn exercise_keys(manager: &KeyManager<'_>, site_ids: &[i32]) {
    let sites = &operator().snapshot.sites;
    for at in [0, NOW_MS, i64::MAX] {
        let _ = manager.master_key(at);
        let _ = manager.refresh_key(at);
        for site in site_ids {
            let _ = manager.default_keyset(*site);
            let _ = manager.site_key(*site, at);
        }
    }
    for site in site_ids {
        for all in [false, true] {
            let visible = manager.visible_keys(*site, all);
            let _ = manager.site_data(&visible, sites, all);
        }
    }
}

fn keysets(file: &[u8]) {
    let Ok(keysets) = KeysetStore::parse(file) else {
        return;
    };
    let bundled = &operator().snapshot.keyset_keys;
    let mut sites: Vec<i32> = keysets.keysets().map(|k| k.site_id).collect();
    sites.extend([-2, -1, 2, 999]);
    exercise_keys(&KeyManager::new(&keysets, bundled), &sites);
}

fn keyset_keys(file: &[u8]) {
    let Ok(keys) = KeysetKeyStore::parse(file) else {
        return;
    };
    for key in keys.keys() {
        assert!(keys.key(key.id).is_some(), "every parsed key id looks up");
        let _ = keys.active_key(key.keyset_id, NOW_MS);
    }
    let bundled = &operator().snapshot.keysets;
    exercise_keys(&KeyManager::new(bundled, &keys), &[-2, -1, 2, 123, 999]);
}

fn clients(file: &[u8]) {
    let Ok(clients) = ClientStore::parse(file) else {
        return;
    };
    for client in clients.clients() {
        let _ = clients.authenticate(&client.key_id);
        let _ = client.matches(&client.key_id);
    }
    let _ = clients.authenticate(uid2_fuzz::operator::CLIENT_KEY);
    let _ = clients.authenticate("");
}

fn sites(file: &[u8]) {
    let Ok(sites) = SiteStore::parse(file) else {
        return;
    };
    let snapshot = &operator().snapshot;
    let manager = snapshot.key_manager();
    let keys: Vec<_> = snapshot.keyset_keys.keys().iter().collect();
    for all in [false, true] {
        let _ = manager.site_data(&keys, &sites, all);
    }
}

fn keypairs(file: &[u8]) {
    let Ok(keypairs) = ClientSideKeypairStore::parse(file) else {
        return;
    };
    if let Some(keypair) = keypairs.keypair(uid2_fuzz::operator::CSTG_SUBSCRIPTION_ID) {
        let client = ClientKey::from_scalar(&CSTG_CLIENT_SCALAR).expect("valid scalar");
        let _ = keypair.private.shared_secret(&client.public_key_b64());
        let _ = client.shared_secret(&keypair.public_key);
    }
}

fn services(file: &[u8]) {
    if let Ok(services) = ServiceStore::parse(file) {
        for id in [0, 1, 2, -1] {
            let _ = services.service(id);
        }
    }
}

fn service_links(file: &[u8]) {
    if let Ok(links) = ServiceLinkStore::parse(file) {
        for id in [0, 1, 2, -1] {
            let _ = links.link(id, "abc123");
        }
    }
}

fn runtime_config(file: &[u8]) {
    if let Ok((_, config)) = parse_runtime_config_metadata(file) {
        assert!(config.refresh_token_expires_after_seconds >= config.identity_token_expires_after_seconds);
        assert!(config.identity_token_expires_after_seconds >= config.refresh_identity_token_after_seconds);
        let _ = config.effective_max_bidstream_lifetime_seconds();
        let _ = config.effective_max_sharing_lifetime_seconds();
    }
}

fn store_metadata(file: &[u8]) {
    if let Ok(metadata) = parse_store_metadata("clients", "clients", file) {
        let _ = resolve_location(&metadata.location);
    }
}

fn cloud_keys(file: &[u8]) {
    for keys in [CloudKeyStore::parse(file), CloudKeyStore::parse_inline(file)]
        .into_iter()
        .flatten()
    {
        for id in [0, 1, 2, -1] {
            let _ = keys.key(id);
        }
        let _ = (keys.len(), keys.is_empty());
    }
}

fn reference_cloud_keys() -> CloudKeyStore {
    CloudKeyStore::parse(REFERENCE_CLOUD_KEYS).expect("the reference cloud keys parse")
}

fn encrypted_file(file: &[u8]) {
    let _ = decrypt_store_file("clients", file, &reference_cloud_keys());
}

fn encrypted_round_trip(rest: &[u8]) {
    let keys = reference_cloud_keys();
    let mut u = Unstructured::new(rest);
    let key_id = i32::from(value::<u8>(&mut u) % 8);
    let iv = array::<12>(&mut u);
    let plaintext = u.take_rest();
    let Some(key) = keys.key(key_id) else {
        return;
    };
    let secret: &SecretKey = &key.secret;
    let payload = uid2_protocol::base64::encode(&gcm_seal_with_iv(secret, &iv, plaintext, &[]));
    let envelope = json!({"key_id": key_id, "encrypted_payload": payload});
    let opened =
        decrypt_store_file("clients", envelope.to_string().as_bytes(), &keys).expect("a sealed store file opens");
    assert_eq!(opened, plaintext);
}

fn api_key(file: &[u8]) {
    let key = String::from_utf8_lossy(file);
    let clients = &operator().snapshot.clients;
    if let Some(client) = clients.authenticate(&key) {
        assert!(client.matches(&key), "an authenticated key matches its client");
    }
}

/// The bundled store with one file replaced.
struct Replaced<'a> {
    path: &'static str,
    bytes: &'a [u8],
}

impl StoreSource for Replaced<'_> {
    fn read(&self, path: &str) -> Result<Vec<u8>, StoreError> {
        if path == self.path {
            Ok(self.bytes.to_vec())
        } else {
            uid2_operator::local_store::source().read(path)
        }
    }
}

fn snapshot(file: &[u8]) {
    let (which, file) = uid2_fuzz::mode(file);
    let source = Replaced {
        path: BUNDLED[usize::from(which) % BUNDLED.len()],
        bytes: file,
    };
    if let Ok(snapshot) = Snapshot::load(&source, StoreSelection::all(), NOW_MS) {
        let _ = snapshot.check_ready(NOW_MS);
        let _ = snapshot.key_manager().master_key(NOW_MS);
    }
}
