//! The reference's local store (`testdata/reference-store`), loaded whole, and the facts the API
//! relies on: sample clients, keys, the key-visibility table of sdk.md §3.5, salts, and that
//! nothing secret leaks through `Debug` or errors.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use uid2_protocol::identity::IdentityEnvironment;
use uid2_protocol::token::KeyRing;

use super::*;
use crate::error::{FieldIssue, Problem};
use crate::key_manager::SiteKeyChoice;
use crate::role::Role;
use crate::runtime_config::RuntimeConfig;
use crate::source::{DirSource, EmbeddedSource};

/// 2026-11-28T00:00:00Z, within every sample key's life except key 11's.
const NOW: i64 = 1_795_824_000_000;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/reference-store")
}

fn reference() -> Snapshot {
    Snapshot::load(&DirSource::new(root()), StoreSelection::all(), NOW).expect("reference store loads")
}

/// The reference store with some files replaced.
struct Patched {
    base: DirSource,
    files: HashMap<&'static str, Vec<u8>>,
}

impl Patched {
    fn new(files: &[(&'static str, &[u8])]) -> Self {
        Self {
            base: DirSource::new(root()),
            files: files.iter().map(|(path, bytes)| (*path, bytes.to_vec())).collect(),
        }
    }
}

impl StoreSource for Patched {
    fn read(&self, path: &str) -> Result<Vec<u8>, StoreError> {
        match self.files.get(path) {
            Some(bytes) => Ok(bytes.clone()),
            None => self.base.read(path),
        }
    }
}

#[test]
fn every_store_loads_with_its_version() {
    let snapshot = reference();
    assert_eq!(snapshot.clients.clients().len(), 8);
    assert_eq!(snapshot.clients.version, 1);
    assert_eq!(snapshot.keysets.len(), 11);
    assert_eq!(snapshot.keyset_keys.keys().len(), 11);
    assert_eq!(snapshot.salts.version, 1);
    assert_eq!(snapshot.sites.len(), 5);
    assert_eq!(snapshot.sites.version, 1);
    assert_eq!(snapshot.keypairs.keypair("4WvryDGbR5").map(|k| k.site_id), Some(123));
    assert_eq!(snapshot.services.service(2).map(|s| s.site_id), Some(126));
    assert_eq!(snapshot.service_links.link(2, "testId2").map(|l| l.site_id), Some(123));
    let config = &snapshot.runtime_config;
    assert_eq!(config.version, 1);
    assert_eq!(config.identity_token_expires_after_seconds, 3600);
    assert_eq!(config.refresh_token_expires_after_seconds, 86400);
    assert_eq!(config.refresh_identity_token_after_seconds, 900);
    assert_eq!(config.sharing_token_expiry_seconds, 2592000);
    assert_eq!(config.identity_environment, IdentityEnvironment::Test);
    assert_eq!(snapshot.check_ready(NOW), Ok(()));
}

#[test]
fn optional_stores_are_not_read_when_disabled() {
    // Every optional store's metadata is broken; the default selection never touches them.
    let broken: &[u8] = b"{";
    let source = Patched::new(&[
        ("sites/metadata.json", broken),
        ("client_side_keypairs/metadata.json", broken),
        ("services/metadata.json", broken),
        ("service_links/metadata.json", broken),
        ("runtime_config/metadata.json", broken),
    ]);
    let fixed = RuntimeConfig {
        identity_token_expires_after_seconds: 60,
        refresh_token_expires_after_seconds: 120,
        refresh_identity_token_after_seconds: 30,
        sharing_token_expiry_seconds: 90,
        max_bidstream_lifetime_seconds: None,
        max_sharing_lifetime_seconds: None,
        identity_environment: IdentityEnvironment::Prod,
    };
    let selection = StoreSelection {
        runtime_config: RuntimeConfigOrigin::Static(fixed),
        ..StoreSelection::default()
    };
    let snapshot = Snapshot::load(&source, selection, NOW).expect("core stores only");
    assert!(snapshot.sites.is_empty() && snapshot.keypairs.is_empty());
    assert!(snapshot.services.is_empty() && snapshot.service_links.is_empty());
    assert_eq!((snapshot.sites.version, snapshot.service_links.version), (0, 0));
    assert_eq!(
        (snapshot.runtime_config.version, *snapshot.runtime_config.store),
        (0, fixed)
    );
    let err = Snapshot::load(&source, StoreSelection::default(), NOW).expect_err("enabled and broken");
    assert_eq!(err.store, "runtime_config");
}

#[test]
fn the_special_client_has_unknown_roles() {
    let snapshot = reference();
    let special = snapshot
        .clients
        .authenticate("UID2-C-L-999-fCXrMM.fsR3mDqAXELtWWMS+xG1s7RdgRTMqdOH2qaAo=")
        .expect("C999 authenticates");
    assert_eq!(special.site_id, 999);
    assert_eq!(
        special.roles,
        BTreeSet::from([
            Role::Generator,
            Role::Mapper,
            Role::IdReader,
            Role::Sharer,
            Role::Optout,
            Role::Unknown
        ])
    );
}

#[test]
fn non_canonical_key_11_loads_and_reencodes() {
    let snapshot = reference();
    let key = snapshot.key_manager().key(11).expect("key 11");
    assert_eq!(key.secret.to_base64(), "YgyxOX4yX1gYhCINq7O9XxM6jX+etXqSXluZxjB1aG0=");
    assert_eq!(key.expires, 1715756163);
    assert_eq!(
        snapshot.keyset_keys.secret(11).map(|s| s.to_base64()),
        Some(key.secret.to_base64())
    );
}

#[test]
fn active_keys_and_site_keys() {
    let snapshot = reference();
    let keys = snapshot.key_manager();
    assert_eq!(keys.master_key(NOW).map(|k| k.id), Some(101));
    assert_eq!(keys.refresh_key(NOW).map(|k| k.id), Some(102));
    let site_key = |site| keys.site_key(site, NOW).ok().flatten().map(|(k, how)| (k.id, how));
    assert_eq!(site_key(123), Some((104, SiteKeyChoice::SiteKeyset)));
    assert_eq!(
        site_key(999),
        Some((103, SiteKeyChoice::FallbackKeyset)),
        "no keyset of its own"
    );
    assert_eq!(site_key(124), Some((103, SiteKeyChoice::FallbackKeyset)));
    assert_eq!(
        site_key(127),
        Some((103, SiteKeyChoice::FallbackKeyset)),
        "key 11 expired"
    );
    // Before key 11 expired (2024-05-01), site 127 used its own keyset.
    assert_eq!(
        keys.site_key(127, 1_714_521_600_000)
            .ok()
            .flatten()
            .map(|(k, how)| (k.id, how)),
        Some((11, SiteKeyChoice::SiteKeyset))
    );
    assert_eq!(keys.keyset_of_key(104).map(|k| k.site_id), Some(123));
    assert_eq!(keys.default_keyset(123).ok().flatten().map(|k| k.keyset_id), Some(501));
    assert_eq!(keys.default_keyset(999), Ok(None));
    // Before the master key activated (2023-06-24), nothing is ready.
    let early = 1_687_635_528_000;
    assert!(keys.master_key(early).is_none());
    assert_eq!(
        snapshot.check_ready(early),
        Err(NotReady(vec![
            ReadinessIssue::NoActiveMasterKey,
            ReadinessIssue::NoActiveRefreshKey
        ]))
    );
}

#[test]
fn visibility_table_of_sdk_md_3_5() {
    let snapshot = reference();
    let keys = snapshot.key_manager();
    let visible_to = |api_key: &str| {
        let client = snapshot.clients.authenticate(api_key).expect("sample key");
        keys.visible_keys(client.site_id, client.has_role(Role::IdReader))
            .iter()
            .map(|k| k.id)
            .collect::<Vec<_>>()
    };
    // C999: ID_READER, no keyset of its own, listed nowhere.
    assert_eq!(
        visible_to("UID2-C-L-999-fCXrMM.fsR3mDqAXELtWWMS+xG1s7RdgRTMqdOH2qaAo="),
        vec![101]
    );
    // C123: its keysets 501/502, keyset 901 lists it, and the master key.
    assert_eq!(
        visible_to("UID2-C-L-123-t32pCM.5NCX1E94UgOd2f8zhsKmxzCoyhXohHYSSWR8U="),
        vec![5, 11, 101, 104]
    );
    // C125: MAPPER + SHARER only.
    assert_eq!(
        visible_to("UID2-C-L-125-E5w9L8.T5og45yFqQeoj4ubh9IVqXcaSVwk7A5XyG958="),
        vec![101]
    );
    // Site 3 is listed by keysets 2, 501, 502, 601, 602, 701, 801, but not by disabled 503.
    assert_eq!(
        keys.visible_keys(3, false).iter().map(|k| k.id).collect::<Vec<_>>(),
        vec![5, 7, 8, 9, 10, 101, 103, 104]
    );
}

#[test]
fn site_data_for_the_dsp() {
    let snapshot = reference();
    let keys = snapshot.key_manager();
    let sites = &snapshot.sites;
    let visible = keys.visible_keys(123, true);
    assert_eq!(
        keys.site_data(&visible, sites, false),
        vec![
            (123, vec!["localhost".to_owned(), "uidapi.com".to_owned()]),
            (127, vec!["example.com".to_owned(), "unifiedid.com".to_owned()]),
        ]
    );
    let with_apps = keys.site_data(&visible, sites, true);
    assert_eq!(
        with_apps,
        vec![
            (
                123,
                [
                    "123456789",
                    "com.123.Game.App.android",
                    "com.123.Game.App.ios",
                    "com.uid2.devapp",
                    "localhost",
                    "uidapi.com"
                ]
                .map(str::to_owned)
                .to_vec()
            ),
            (
                127,
                ["13456789", "com.UID2.operator.TEST", "example.com", "unifiedid.com"]
                    .map(str::to_owned)
                    .to_vec()
            ),
        ]
    );
    // The master key's owner (-1) is not a site; C999 gets no site data.
    assert!(keys.site_data(&keys.visible_keys(999, true), sites, true).is_empty());
}

#[test]
fn salts_choose_the_newest_snapshot() {
    let snapshot = reference();
    assert_eq!(snapshot.salts.snapshot_count(), 2);
    assert_eq!(snapshot.salts.snapshot_at(NOW).effective_ms(), 1745907348982);
    assert_eq!(snapshot.salts.snapshot_at(NOW).len(), 5);
}

#[test]
fn expired_salts_make_the_snapshot_not_ready() {
    let expired = std::fs::read(root().join("salts/metadataExpired.json")).expect("expired metadata");
    let source = Patched::new(&[("salts/metadata.json", &expired)]);
    let snapshot = Snapshot::load(&source, StoreSelection::all(), NOW).expect("loads anyway");
    assert_eq!(
        snapshot.check_ready(NOW),
        Err(NotReady(vec![ReadinessIssue::SaltsExpired]))
    );
    let message = snapshot.check_ready(NOW).expect_err("not ready").to_string();
    assert_eq!(
        message,
        "store snapshot not ready: the salt snapshot in force has expired"
    );
}

#[test]
fn broken_files_fail_the_load_and_name_their_store() {
    let cases: Vec<(&'static str, Vec<u8>, &'static str, Problem)> = vec![
        (
            "keysets/keysets.json",
            b"[{\"keyset_id\":1".to_vec(),
            "keysets",
            Problem::MalformedJson { line: 1, column: 15 },
        ),
        (
            "keysets/keysets.json",
            br#"[{"keyset_id":1,"site_id":2,"created":3,"enabled":true}]"#.to_vec(),
            "keysets",
            Problem::Field {
                index: 0,
                field: "default",
                issue: FieldIssue::Missing,
            },
        ),
        (
            "salts/salts.txt.1745907348982",
            b"1,1,s,1,,,,,,,\n2,1,s,1,,,,,,,\n3,1,s,1,,,,,,\n4,1,s,1,,,,,,,\n5,1,s,1,,,,,,,\n".to_vec(),
            "salts",
            Problem::SaltLine {
                snapshot: 1,
                line: 3,
                issue: crate::error::SaltLineIssue::ColumnCount { found: 10 },
            },
        ),
        (
            "salts/salts.txt.1670796729291",
            b"1000000,1,s,1,,,,,,,\n".to_vec(),
            "salts",
            Problem::SaltLineCount {
                snapshot: 0,
                expected: 5,
                found: 1,
            },
        ),
        (
            "clients/metadata.json",
            br#"{"version":2,"client_keys":{"location":"clients/missing.json"}}"#.to_vec(),
            "clients",
            Problem::NotFound {
                path: root().join("clients/missing.json").display().to_string(),
            },
        ),
    ];
    for (path, bytes, store, problem) in cases {
        let source = Patched::new(&[(path, &bytes)]);
        let err = Snapshot::load(&source, StoreSelection::all(), NOW).expect_err(path);
        assert_eq!((err.store, err.problem), (store, problem), "{path}");
    }
}

#[test]
fn errors_and_debug_output_carry_no_secrets() {
    // A client whose secret is 31 bytes: the error names the field, not the value.
    let secret31 = uid2_protocol::base64::encode(b"0123456789abcdefghijklmnopqrstu");
    let clients = format!(r#"[{{"key_hash":"AAAA","key_salt":"AAAA","secret":"{secret31}","roles":[]}}]"#);
    let source = Patched::new(&[("clients/clients.json", clients.as_bytes())]);
    let err = Snapshot::load(&source, StoreSelection::all(), NOW).expect_err("31-byte secret");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(&secret31) && !shown.contains("0123456789"), "{shown}");
    assert_eq!(
        err.to_string(),
        "clients store: record 0: field `secret` decodes to 31 bytes, expected 32"
    );

    // Nothing from any secret-bearing field of the sample files shows in the snapshot's Debug.
    let snapshot = reference();
    let debug = format!("{snapshot:?}");
    let mut secrets: Vec<String> = Vec::new();
    for file in [
        "clients/clients.json",
        "keyset_keys/keyset_keys.json",
        "client_side_keypairs/client_side_keypairs.json",
    ] {
        let text = std::fs::read_to_string(root().join(file)).expect("sample file");
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        for record in value.as_array().into_iter().flatten() {
            for field in ["secret", "key_hash", "key_salt", "key", "private_key"] {
                if let Some(text) = record.get(field).and_then(|v| v.as_str()) {
                    secrets.push(text.chars().skip(9).take(20).collect());
                }
            }
        }
    }
    secrets.push("vgv1BwiNRCW7F3VcNXHlZh".to_owned());
    secrets.push("key12345key12345".to_owned());
    secrets.push("salt1234salt1234".to_owned());
    secrets.push("fOGY/aRE44peL23i".to_owned());
    secrets.push("HF6Qz42HBbVHINxhh".to_owned());
    // Every salt, v4 key and key salt of every salt file.
    for entry in std::fs::read_dir(root().join("salts")).expect("salts/").flatten() {
        if !entry.file_name().to_string_lossy().starts_with("salts.txt.") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).expect("salt file");
        for line in text.lines() {
            let columns: Vec<&str> = line.split(',').collect();
            for column in [2, 4, 6, 7, 9, 10] {
                secrets.extend(
                    columns
                        .get(column)
                        .filter(|c| c.len() >= 16)
                        .map(|c| c[..16].to_owned()),
                );
            }
        }
    }
    // The bytes of every 32-byte secret as hex and as Rust prints a byte array.
    let byte_forms: Vec<String> = secrets
        .iter()
        .filter_map(|text| uid2_protocol::base64::decode(text).ok())
        .filter(|bytes| bytes.len() >= 12)
        .flat_map(|bytes| {
            let decimal: Vec<String> = bytes.iter().take(6).map(u8::to_string).collect();
            [hex::encode(&bytes[..12]), format!("[{}", decimal.join(", "))]
        })
        .collect();
    let key_bytes: Vec<String> = snapshot
        .keyset_keys
        .keys()
        .iter()
        .map(|key| &key.secret)
        .chain(snapshot.clients.clients().iter().map(|client| &client.secret))
        .map(|secret| hex::encode(&secret.expose()[..12]))
        .collect();
    for secret in secrets.iter().chain(&byte_forms).chain(&key_bytes) {
        assert!(!debug.contains(secret.as_str()), "Debug shows {secret}");
        assert!(
            !format!("{snapshot:#?}").contains(secret.as_str()),
            "pretty Debug shows {secret}"
        );
    }
    assert!(secrets.len() > 40, "{} secrets checked", secrets.len());
    assert!(key_bytes.len() >= 19, "{} keys checked", key_bytes.len());
}

#[test]
fn embedded_tables_load_like_directories() {
    macro_rules! file {
        ($path:literal) => {
            (
                $path,
                include_bytes!(concat!("../../../../testdata/reference-store/", $path)).as_slice(),
            )
        };
    }
    static TABLE: &[(&str, &[u8])] = &[
        file!("clients/metadata.json"),
        file!("clients/clients.json"),
        file!("keysets/metadata.json"),
        file!("keysets/keysets.json"),
        file!("keyset_keys/metadata.json"),
        file!("keyset_keys/keyset_keys.json"),
        file!("salts/metadata.json"),
        file!("salts/salts.txt.1670796729291"),
        file!("salts/salts.txt.1745907348982"),
        file!("runtime_config/metadata.json"),
    ];
    let snapshot = Snapshot::load(&EmbeddedSource(TABLE), StoreSelection::default(), NOW).expect("embedded");
    assert_eq!(snapshot.clients.clients().len(), 8);
    assert_eq!(snapshot.check_ready(NOW), Ok(()));
    let err = Snapshot::load(&EmbeddedSource(TABLE), StoreSelection::all(), NOW).expect_err("no sites");
    assert_eq!(err.store, "sites");
    assert_eq!(
        err.problem,
        Problem::NotFound {
            path: "sites/metadata.json".to_owned()
        }
    );
}

#[test]
fn replacing_one_store_shares_the_others() {
    let snapshot = reference();
    let mut next = snapshot.clone();
    next.keysets = Loaded::new(2, KeysetStore::default());
    assert!(Arc::ptr_eq(&snapshot.clients.store, &next.clients.store));
    assert!(!Arc::ptr_eq(&snapshot.keysets.store, &next.keysets.store));
    assert_eq!((snapshot.keysets.version, next.keysets.version), (1, 2));
    // Active keys come from the keys store alone; visibility needs the keysets.
    assert_eq!(next.key_manager().master_key(NOW).map(|k| k.id), Some(101));
    assert_eq!(next.key_manager().visible_keys(123, true).len(), 0);
}
