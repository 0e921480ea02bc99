//! The keysets store: groups of keys, each owned by a site, with the sharing ACL.
//!
//! The reference parses this file strictly: `keyset_id`, `site_id`, `created`, `enabled` and
//! `default` are required, and a missing one fails the whole file. `allowed_sites` distinguishes
//! `null`/absent (no list: with ALLOW_ALL everyone, otherwise nobody) from `[]` (nobody).
//! Invariant: keyset ids are unique (the reference would silently keep the last one).

use std::collections::HashMap;

use crate::error::{FieldIssue, StoreError};
use crate::record::{check_unique, parse_records, Record};

const STORE: &str = "keysets";

/// Keyset of the master keys (outer layer of advertising tokens).
pub const MASTER_KEYSET_ID: i32 = -1;
/// Keyset of the refresh keys (refresh tokens and the refresh envelope).
pub const REFRESH_KEYSET_ID: i32 = -2;
/// The site whose default keyset encrypts tokens of publishers without a usable keyset.
pub const FALLBACK_PUBLISHER_SITE_ID: i32 = 2;
/// What SDKs are told the master keyset's id is.
pub const MASTER_KEYSET_ID_FOR_SDKS: i32 = 9_999_999;

/// A keyset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyset {
    pub keyset_id: i32,
    pub site_id: i32,
    pub name: String,
    /// `None` when the file has `null` or no field; sorted and deduplicated otherwise.
    pub allowed_sites: Option<Vec<i32>>,
    /// Epoch seconds.
    pub created: i64,
    pub enabled: bool,
    pub default: bool,
}

impl Keyset {
    /// Whether a site other than the owner is listed (the reference's `canBeAccessedBySite`).
    pub fn lists_site(&self, site_id: i32) -> bool {
        self.enabled
            && self
                .allowed_sites
                .as_ref()
                .is_some_and(|sites| sites.binary_search(&site_id).is_ok())
    }
}

/// All keysets by id.
#[derive(Debug, Clone, Default)]
pub struct KeysetStore {
    keysets: HashMap<i32, Keyset>,
}

impl KeysetStore {
    /// Parses a `keysets.json` data file.
    pub fn parse(bytes: &[u8]) -> Result<Self, StoreError> {
        let keysets = parse_records(STORE, bytes, parse_keyset)?;
        Self::from_keysets(keysets)
    }

    pub fn from_keysets(keysets: Vec<Keyset>) -> Result<Self, StoreError> {
        check_unique(STORE, "keyset_id", keysets.iter().map(|k| k.keyset_id))?;
        Ok(Self {
            keysets: keysets.into_iter().map(|k| (k.keyset_id, k)).collect(),
        })
    }

    pub fn keyset(&self, keyset_id: i32) -> Option<&Keyset> {
        self.keysets.get(&keyset_id)
    }

    /// In no particular order.
    pub fn keysets(&self) -> impl Iterator<Item = &Keyset> {
        self.keysets.values()
    }

    pub fn len(&self) -> usize {
        self.keysets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keysets.is_empty()
    }
}

fn parse_keyset(record: &Record<'_>) -> Result<Keyset, StoreError> {
    let allowed_sites = match record.opt_array("allowed_sites")? {
        None => None,
        Some(items) => {
            let mut sites = items
                .iter()
                .map(|item| {
                    item.as_i64().and_then(|site| i32::try_from(site).ok()).ok_or_else(|| {
                        record.fail(
                            "allowed_sites",
                            FieldIssue::WrongType {
                                expected: "an array of 32-bit integers",
                            },
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            sites.sort_unstable();
            sites.dedup();
            Some(sites)
        }
    };
    Ok(Keyset {
        keyset_id: record.i32("keyset_id")?,
        site_id: record.i32("site_id")?,
        // The reference reads the name with a nullable getter.
        name: record.opt_str("name")?.unwrap_or_default().to_owned(),
        allowed_sites,
        created: record.i64("created")?,
        enabled: record.bool("enabled")?,
        default: record.bool("default")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Problem;

    #[test]
    fn null_absent_and_empty_allowed_sites_are_kept_apart() {
        let store = KeysetStore::parse(
            br#"[{"keyset_id":1,"site_id":10,"name":"a","allowed_sites":null,"created":1,"enabled":true,"default":true},
                 {"keyset_id":2,"site_id":10,"created":1,"enabled":true,"default":false},
                 {"keyset_id":3,"site_id":10,"allowed_sites":[],"created":1,"enabled":true,"default":false},
                 {"keyset_id":4,"site_id":10,"allowed_sites":[5,3,5],"created":1,"enabled":false,"default":false}]"#,
        )
        .expect("valid");
        let get = |id| store.keyset(id).expect("present");
        assert_eq!(get(1).allowed_sites, None);
        assert_eq!(get(2).allowed_sites, None);
        assert_eq!(get(2).name, "");
        assert_eq!(get(3).allowed_sites, Some(vec![]));
        assert_eq!(get(4).allowed_sites, Some(vec![3, 5]));
        assert!(!get(3).lists_site(5));
        assert!(!get(4).lists_site(5), "disabled keysets list nobody");
        assert!(!get(1).lists_site(5), "null lists nobody by itself");
    }

    #[test]
    fn every_required_field_is_required() {
        let full = [
            ("keyset_id", "1"),
            ("site_id", "2"),
            ("created", "3"),
            ("enabled", "true"),
            ("default", "false"),
        ];
        for (skip, _) in full {
            let body: Vec<String> = full
                .iter()
                .filter(|(name, _)| *name != skip)
                .map(|(name, value)| format!("\"{name}\":{value}"))
                .collect();
            let json = format!("[{{{}}}]", body.join(","));
            let err = KeysetStore::parse(json.as_bytes()).expect_err(skip);
            assert_eq!(
                err.problem,
                Problem::Field {
                    index: 0,
                    field: skip,
                    issue: FieldIssue::Missing
                }
            );
        }
        let err = KeysetStore::parse(br#"[{"keyset_id":1,"site_id":2,"created":3,"enabled":"yes","default":false}]"#)
            .expect_err("string boolean");
        assert!(matches!(err.problem, Problem::Field { field: "enabled", .. }));
        let err = KeysetStore::parse(
            br#"[{"keyset_id":1,"site_id":2,"created":3,"enabled":true,"default":false,"allowed_sites":["2"]}]"#,
        )
        .expect_err("string site");
        assert!(matches!(
            err.problem,
            Problem::Field {
                field: "allowed_sites",
                ..
            }
        ));
        let err = KeysetStore::parse(
            br#"[{"keyset_id":1,"site_id":2,"created":3,"enabled":true,"default":false},
                 {"keyset_id":1,"site_id":3,"created":3,"enabled":true,"default":false}]"#,
        )
        .expect_err("duplicate");
        assert_eq!(
            err.problem,
            Problem::Duplicate {
                field: "keyset_id",
                first: 0,
                second: 1
            }
        );
    }
}
