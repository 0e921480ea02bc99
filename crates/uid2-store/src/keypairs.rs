//! The client-side keypairs store: the P-256 keys of client-side token generation (CSTG), one
//! per subscription id.
//!
//! Parsed strictly, like the reference: `subscription_id`, `public_key`, `private_key`,
//! `site_id`, `created` and `disabled` are required; `contact` and `name` default to "". Both keys
//! are parsed at load time (the reference does too, and rejects the file if either fails).
//! Invariants: subscription ids are unique; the private key never prints.

use std::collections::HashMap;

use uid2_protocol::cstg::{check_prefixed_spki, ServerKey};

use crate::error::{FieldIssue, StoreError};
use crate::record::{check_unique, parse_records, Record};

const STORE: &str = "client_side_keypairs";

/// A site's CSTG key pair.
#[derive(Debug)]
pub struct ClientSideKeypair {
    pub subscription_id: String,
    /// As stored, with its 9-character prefix (e.g. `UID2-X-L-`); served to browsers.
    pub public_key: String,
    /// The ECDH half the operator uses.
    pub private: ServerKey,
    pub site_id: i32,
    pub contact: String,
    /// Epoch seconds.
    pub created: i64,
    pub disabled: bool,
    pub name: String,
}

/// All keypairs by subscription id.
#[derive(Debug, Default)]
pub struct ClientSideKeypairStore {
    keypairs: HashMap<String, ClientSideKeypair>,
}

impl ClientSideKeypairStore {
    /// Parses a `client_side_keypairs.json` data file.
    pub fn parse(bytes: &[u8]) -> Result<Self, StoreError> {
        let keypairs = parse_records(STORE, bytes, parse_keypair)?;
        check_unique(
            STORE,
            "subscription_id",
            keypairs.iter().map(|k| k.subscription_id.as_str()),
        )?;
        Ok(Self {
            keypairs: keypairs.into_iter().map(|k| (k.subscription_id.clone(), k)).collect(),
        })
    }

    pub fn keypair(&self, subscription_id: &str) -> Option<&ClientSideKeypair> {
        self.keypairs.get(subscription_id)
    }

    pub fn len(&self) -> usize {
        self.keypairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keypairs.is_empty()
    }
}

fn parse_keypair(record: &Record<'_>) -> Result<ClientSideKeypair, StoreError> {
    let public_key = record.str("public_key")?;
    check_prefixed_spki(public_key).map_err(|_| record.fail("public_key", FieldIssue::InvalidKey))?;
    let private = ServerKey::from_prefixed_pkcs8(record.str("private_key")?)
        .map_err(|_| record.fail("private_key", FieldIssue::InvalidKey))?;
    Ok(ClientSideKeypair {
        subscription_id: record.str("subscription_id")?.to_owned(),
        public_key: public_key.to_owned(),
        private,
        site_id: record.i32("site_id")?,
        contact: record.opt_str("contact")?.unwrap_or_default().to_owned(),
        created: record.i64("created")?,
        disabled: record.bool("disabled")?,
        name: record.opt_str("name")?.unwrap_or_default().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Problem;

    const PUBLIC: &str = "UID2-X-L-MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtXJdTSZAYHvoRDWiehMHoWF1BNPuqLs5w2ZHiAZ1IJc7O4/z0ojPTB0V+KYX/wxQK0hxx6kxCvHj335eI/ZQsQ==";
    const PRIVATE: &str =
        "UID2-Y-L-MEECAQAwEwYHKoZIzj0CAQYIKoZIzj0DAQcEJzAlAgEBBCC5kOSRVD+qhAZqf0L4LGbmAhdy5HpIptwXE72jxhwo6w==";

    fn record(overrides: &[(&str, serde_json::Value)], remove: &[&str]) -> Vec<u8> {
        let mut value = serde_json::json!({
            "subscription_id": "4WvryDGbR5",
            "public_key": PUBLIC,
            "private_key": PRIVATE,
            "site_id": 123,
            "contact": "test@email.com",
            "created": 1692034991,
            "disabled": false
        });
        if let Some(object) = value.as_object_mut() {
            for (field, v) in overrides {
                object.insert((*field).to_owned(), v.clone());
            }
            for field in remove {
                object.remove(*field);
            }
        }
        serde_json::Value::Array(vec![value]).to_string().into_bytes()
    }

    #[test]
    fn sample_keypair_loads_and_its_private_key_matches_its_public_key() {
        let store = ClientSideKeypairStore::parse(&record(&[], &[])).expect("valid");
        let keypair = store.keypair("4WvryDGbR5").expect("present");
        assert_eq!(keypair.site_id, 123);
        assert_eq!(keypair.name, "");
        assert_eq!(keypair.public_key, PUBLIC);
        assert_eq!(format!("UID2-X-L-{}", keypair.private.public_key_b64()), PUBLIC);
        assert!(store.keypair("4wvrydgbr5").is_none());
        let shown = format!("{store:?}");
        assert!(!shown.contains(&PRIVATE[9..]), "{shown}");
    }

    #[test]
    fn required_fields_and_key_formats_are_enforced() {
        for field in [
            "subscription_id",
            "public_key",
            "private_key",
            "site_id",
            "created",
            "disabled",
        ] {
            let err = ClientSideKeypairStore::parse(&record(&[], &[field])).expect_err(field);
            assert_eq!(
                err.problem,
                Problem::Field {
                    index: 0,
                    field,
                    issue: FieldIssue::Missing
                }
            );
        }
        assert!(ClientSideKeypairStore::parse(&record(&[], &["contact", "name"])).is_ok());
        let bad_public = record(&[("public_key", serde_json::json!("UID2-X-L-AAAA"))], &[]);
        let err = ClientSideKeypairStore::parse(&bad_public).expect_err("bad public key");
        assert_eq!(
            err.problem,
            Problem::Field {
                index: 0,
                field: "public_key",
                issue: FieldIssue::InvalidKey
            }
        );
        let swapped = record(&[("private_key", serde_json::json!(PUBLIC))], &[]);
        let err = ClientSideKeypairStore::parse(&swapped).expect_err("public key as private");
        assert_eq!(
            err.problem,
            Problem::Field {
                index: 0,
                field: "private_key",
                issue: FieldIssue::InvalidKey
            }
        );
        assert!(!err.to_string().contains("MFkw"));
    }
}
