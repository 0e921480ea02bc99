//! Cloud encryption keys and the encrypted store-file envelope.
//!
//! With `encrypted_files` on, every store data file (salt files included) arrives as
//! `{"key_id": n, "encrypted_payload": "<base64 of IV(12) ‖ ciphertext ‖ tag(16)>"}`, AES-256-GCM
//! with no AAD, under the cloud key `key_id` (looked up by id alone; the site is not checked).
//! The plaintext is the normal file, byte for byte.
//!
//! Key records are read like the reference's Jackson mapper, except that the site may be spelled
//! `site_id` (what the reference reads) or `siteId` (what its own sample file writes, which the
//! reference therefore reads as site 0). Invariants: ids are unique (the reference's map collector
//! throws too); every secret is a 32-byte AES-256 key, checked at load rather than at first use.

use std::collections::HashMap;

use serde_json::Value;
use uid2_protocol::crypto::{gcm_open, SecretKey};

use crate::error::{EncryptedFileIssue, FieldIssue, Problem, StoreError};
use crate::record::{check_unique, parse_array, parse_object, Record};

const STORE: &str = "cloud_encryption_keys";

/// A key that encrypts store files for one operator site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEncryptionKey {
    pub id: i32,
    pub site_id: i32,
    /// Epoch seconds.
    pub activates: i64,
    /// Epoch seconds.
    pub created: i64,
    pub secret: SecretKey,
}

/// All cloud keys by id.
#[derive(Debug, Clone, Default)]
pub struct CloudKeyStore {
    keys: HashMap<i32, CloudEncryptionKey>,
}

impl CloudKeyStore {
    /// Parses a data file: a JSON array of keys.
    pub fn parse(bytes: &[u8]) -> Result<Self, StoreError> {
        Self::from_records(&parse_array(STORE, bytes)?)
    }

    /// Parses Core's API answer, which carries the keys inline:
    /// `{"cloud_encryption_keys": [ … ]}`.
    pub fn parse_inline(bytes: &[u8]) -> Result<Self, StoreError> {
        let map = parse_object(STORE, bytes)?;
        let meta = Record::metadata(STORE, &map);
        Self::from_records(meta.array("cloud_encryption_keys")?)
    }

    fn from_records(records: &[Value]) -> Result<Self, StoreError> {
        let keys = records
            .iter()
            .enumerate()
            .map(|(index, value)| {
                let record = Record::element(STORE, index, value)?;
                let site_id = match record.opt_i32("site_id")? {
                    Some(site) => site,
                    None => record.opt_i32("siteId")?.unwrap_or(0),
                };
                Ok(CloudEncryptionKey {
                    id: record.i32("id")?,
                    site_id,
                    activates: record.opt_i64("activates")?.unwrap_or(0),
                    created: record.opt_i64("created")?.unwrap_or(0),
                    secret: record.secret_key("secret")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        check_unique(STORE, "id", keys.iter().map(|k| k.id))?;
        Ok(Self {
            keys: keys.into_iter().map(|k| (k.id, k)).collect(),
        })
    }

    pub fn key(&self, id: i32) -> Option<&CloudEncryptionKey> {
        self.keys.get(&id)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Opens an encrypted store file; `store` names the store it belongs to, for errors.
pub fn decrypt_store_file(store: &'static str, bytes: &[u8], keys: &CloudKeyStore) -> Result<Vec<u8>, StoreError> {
    let malformed = || StoreError::new(store, Problem::Encrypted(EncryptedFileIssue::MalformedEnvelope));
    let map = parse_object(store, bytes)?;
    let envelope = Record::metadata(store, &map);
    // The reference starts from key id -1 and treats it as "no key id".
    let key_id = envelope
        .opt_i32("key_id")
        .map_err(|_| malformed())?
        .filter(|&id| id != -1)
        .ok_or_else(malformed)?;
    let payload = envelope
        .opt_str("encrypted_payload")
        .map_err(|_| malformed())?
        .ok_or_else(malformed)?;
    let payload = uid2_protocol::base64::decode(payload).map_err(|_| {
        StoreError::new(
            store,
            Problem::Metadata {
                field: "encrypted_payload",
                issue: FieldIssue::InvalidBase64,
            },
        )
    })?;
    let key = keys
        .key(key_id)
        .ok_or_else(|| StoreError::new(store, Problem::Encrypted(EncryptedFileIssue::KeyNotFound { key_id })))?;
    gcm_open(&key.secret, &payload, &[]).map_err(|_| {
        StoreError::new(
            store,
            Problem::Encrypted(EncryptedFileIssue::DecryptionFailed { key_id }),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CloudKeyStore {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/reference-store/cloud_encryption_keys/cloud_encryption_keys.json"
        ))
        .expect("sample cloud keys");
        CloudKeyStore::parse(&bytes).expect("sample parses")
    }

    /// Encrypted with Python's `cryptography` AESGCM under sample cloud key 1, IV 00..0b.
    const ENCRYPTED_SERVICES: &str = "AAECAwQFBgcICQoLmVJSEzzJFmRkd+SVHVPVcKj4bw4zFSIHXw02BYRxkfoSkHVRzXdBS02vWGwWKPOpQDNxh2VqhIWkVCuIehtRdOkO0Dtf2iWsTmewSuFaqcs58es8nX6kyc4=";
    const PLAIN_SERVICES: &str = r#"[{"service_id":1,"site_id":123,"name":"testName1","roles":["GENERATOR"]}]"#;

    #[test]
    fn sample_keys_load_with_camel_case_site() {
        let store = sample();
        assert_eq!(store.len(), 12);
        let one = store.key(1).expect("key 1");
        assert_eq!((one.site_id, one.activates, one.created), (999, 1720641670, 1720641670));
        assert_eq!(store.key(12).map(|k| k.site_id), Some(127));
        let both = CloudKeyStore::parse(
            br#"[{"id":1,"site_id":5,"siteId":6,"secret":"mydrCudb2PZOm01Qn0SpthltmexHUAA11Hy1m+uxjVw="}]"#,
        )
        .expect("valid");
        assert_eq!(both.key(1).map(|k| k.site_id), Some(5), "site_id wins");
        let inline = CloudKeyStore::parse_inline(
            br#"{"cloud_encryption_keys":[{"id":3,"site_id":5,"secret":"mydrCudb2PZOm01Qn0SpthltmexHUAA11Hy1m+uxjVw="}]}"#,
        )
        .expect("inline");
        assert_eq!(inline.key(3).map(|k| k.site_id), Some(5));
        let shown = format!("{store:?}");
        assert!(!shown.contains("mydrCudb2"));
        for id in 1..=12 {
            let secret = store.key(id).expect("sample key").secret.expose();
            assert!(!shown.contains(&hex::encode(&secret[..12])), "key {id} shows in hex");
            assert!(
                !shown.contains(&uid2_protocol::base64::encode(secret)[..16]),
                "key {id} in base64"
            );
        }
    }

    #[test]
    fn an_independently_encrypted_file_opens() {
        let keys = sample();
        let envelope = format!(r#"{{"key_id":1,"encrypted_payload":"{ENCRYPTED_SERVICES}","other":2}}"#);
        let plain = decrypt_store_file("services", envelope.as_bytes(), &keys).expect("opens");
        assert_eq!(plain, PLAIN_SERVICES.as_bytes());
        let services = crate::services::ServiceStore::parse(&plain).expect("parses");
        assert_eq!(services.service(1).map(|s| s.site_id), Some(123));
    }

    #[test]
    fn decryption_failures_name_the_key_but_not_the_content() {
        let keys = sample();
        let open = |json: String| decrypt_store_file("salts", json.as_bytes(), &keys).map_err(|e| e.problem);
        assert_eq!(
            open(format!(r#"{{"key_id":2,"encrypted_payload":"{ENCRYPTED_SERVICES}"}}"#)),
            Err(Problem::Encrypted(EncryptedFileIssue::DecryptionFailed { key_id: 2 }))
        );
        assert_eq!(
            open(format!(r#"{{"key_id":99,"encrypted_payload":"{ENCRYPTED_SERVICES}"}}"#)),
            Err(Problem::Encrypted(EncryptedFileIssue::KeyNotFound { key_id: 99 }))
        );
        for json in [
            format!(r#"{{"encrypted_payload":"{ENCRYPTED_SERVICES}"}}"#),
            format!(r#"{{"key_id":-1,"encrypted_payload":"{ENCRYPTED_SERVICES}"}}"#),
            r#"{"key_id":1}"#.to_owned(),
            r#"{"key_id":"1","encrypted_payload":"AAAA"}"#.to_owned(),
        ] {
            assert_eq!(
                open(json),
                Err(Problem::Encrypted(EncryptedFileIssue::MalformedEnvelope))
            );
        }
        assert_eq!(
            open(r#"{"key_id":1,"encrypted_payload":"AAAA"}"#.to_owned()),
            Err(Problem::Encrypted(EncryptedFileIssue::DecryptionFailed { key_id: 1 })),
            "too short to be a GCM blob"
        );
        let err = decrypt_store_file("salts", b"[]", &keys).expect_err("not an object");
        assert_eq!(err.store, "salts");
    }

    #[test]
    fn key_records_are_validated() {
        let err = CloudKeyStore::parse(br#"[{"id":1,"secret":"c2hvcnQ="}]"#).expect_err("short secret");
        assert_eq!(
            err.problem,
            Problem::Field {
                index: 0,
                field: "secret",
                issue: FieldIssue::WrongLength { expected: 32, found: 5 }
            }
        );
        let err = CloudKeyStore::parse(
            br#"[{"id":1,"secret":"mydrCudb2PZOm01Qn0SpthltmexHUAA11Hy1m+uxjVw="},{"id":1,"secret":"mydrCudb2PZOm01Qn0SpthltmexHUAA11Hy1m+uxjVw="}]"#,
        )
        .expect_err("duplicate");
        assert_eq!(
            err.problem,
            Problem::Duplicate {
                field: "id",
                first: 0,
                second: 1
            }
        );
    }
}
