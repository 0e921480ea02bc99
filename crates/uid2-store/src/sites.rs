//! The sites store: participants' names and the domains and app ids allowed to generate tokens
//! client-side for them (CSTG origin checks and `site_data` of the key endpoints).
//!
//! Read like the reference's Jackson mapper: unknown fields ignored, `clientTypes` in camelCase,
//! enum names case-insensitive. Defaults: `description` "", `domain_names`, `app_names` and
//! `clientTypes` empty, `created` 0; `enabled` and `visible` stay absent when absent.
//! Invariant: site ids are unique (the reference's map collector throws on duplicates too).

use std::collections::HashMap;

use crate::error::{FieldIssue, StoreError};
use crate::record::{check_unique, parse_records, Record};

const STORE: &str = "sites";

/// The kind of participant a site is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientType {
    Dsp,
    Advertiser,
    DataProvider,
    Publisher,
}

impl ClientType {
    /// Case-insensitive; the reference's enum has no default value, so unknown names fail.
    fn parse(name: &str) -> Option<Self> {
        [
            (Self::Dsp, "DSP"),
            (Self::Advertiser, "ADVERTISER"),
            (Self::DataProvider, "DATA_PROVIDER"),
            (Self::Publisher, "PUBLISHER"),
        ]
        .into_iter()
        .find(|(_, known)| known.eq_ignore_ascii_case(name))
        .map(|(kind, _)| kind)
    }
}

/// One participant site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub id: i32,
    pub name: String,
    pub description: String,
    pub enabled: Option<bool>,
    /// Deduplicated, in file order.
    pub domain_names: Vec<String>,
    /// Deduplicated, in file order.
    pub app_names: Vec<String>,
    pub client_types: Vec<ClientType>,
    pub visible: Option<bool>,
    /// Epoch seconds.
    pub created: i64,
}

/// All sites by id.
#[derive(Debug, Clone, Default)]
pub struct SiteStore {
    sites: HashMap<i32, Site>,
}

impl SiteStore {
    /// Parses a `sites.json` data file.
    pub fn parse(bytes: &[u8]) -> Result<Self, StoreError> {
        let sites = parse_records(STORE, bytes, parse_site)?;
        check_unique(STORE, "id", sites.iter().map(|s| s.id))?;
        Ok(Self {
            sites: sites.into_iter().map(|site| (site.id, site)).collect(),
        })
    }

    pub fn site(&self, id: i32) -> Option<&Site> {
        self.sites.get(&id)
    }

    pub fn len(&self) -> usize {
        self.sites.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }
}

fn dedup(items: Vec<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if !out.iter().any(|seen| seen == item) {
            out.push(item.to_owned());
        }
    }
    out
}

fn parse_site(record: &Record<'_>) -> Result<Site, StoreError> {
    let mut client_types = Vec::new();
    for name in record.opt_strings("clientTypes")? {
        let kind = ClientType::parse(name).ok_or_else(|| record.fail("clientTypes", FieldIssue::UnknownValue))?;
        if !client_types.contains(&kind) {
            client_types.push(kind);
        }
    }
    Ok(Site {
        id: record.i32("id")?,
        name: record.opt_str("name")?.unwrap_or_default().to_owned(),
        description: record.opt_str("description")?.unwrap_or_default().to_owned(),
        enabled: record.opt_bool("enabled")?,
        domain_names: dedup(record.opt_strings("domain_names")?),
        app_names: dedup(record.opt_strings("app_names")?),
        client_types,
        visible: record.opt_bool("visible")?,
        created: record.opt_i64("created")?.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Problem;

    #[test]
    fn defaults_and_camel_case_client_types() {
        let store = SiteStore::parse(
            br#"[{"id":1,"name":"a","clientTypes":["dsp","PUBLISHER","Dsp"],"domain_names":["x.com","x.com","y.com"],"visible":false,"created":5,"unknown":[1]},
                 {"id":2,"enabled":null}]"#,
        )
        .expect("valid");
        let one = store.site(1).expect("site 1");
        assert_eq!(one.client_types, vec![ClientType::Dsp, ClientType::Publisher]);
        assert_eq!(one.domain_names, vec!["x.com", "y.com"]);
        assert_eq!((one.visible, one.created, one.enabled), (Some(false), 5, None));
        let two = store.site(2).expect("site 2");
        assert_eq!(two.name, "");
        assert_eq!(two.description, "");
        assert!(two.app_names.is_empty() && two.domain_names.is_empty() && two.client_types.is_empty());
        assert_eq!(store.len(), 2);
        assert!(store.site(3).is_none());
    }

    #[test]
    fn snake_case_client_types_and_unknown_types_are_not_read() {
        let store = SiteStore::parse(br#"[{"id":1,"client_types":["BOGUS"]}]"#).expect("ignored field");
        assert!(store.site(1).map(|s| s.client_types.is_empty()).unwrap_or(false));
        let err = SiteStore::parse(br#"[{"id":1,"clientTypes":["BOGUS"]}]"#).expect_err("unknown type");
        assert_eq!(
            err.problem,
            Problem::Field {
                index: 0,
                field: "clientTypes",
                issue: FieldIssue::UnknownValue
            }
        );
    }

    #[test]
    fn ids_are_required_and_unique() {
        let err = SiteStore::parse(br#"[{"name":"x"}]"#).expect_err("no id");
        assert_eq!(
            err.problem,
            Problem::Field {
                index: 0,
                field: "id",
                issue: FieldIssue::Missing
            }
        );
        let err = SiteStore::parse(br#"[{"id":1},{"id":1}]"#).expect_err("duplicate");
        assert_eq!(
            err.problem,
            Problem::Duplicate {
                field: "id",
                first: 0,
                second: 1
            }
        );
        let err = SiteStore::parse(br#"[{"id":1,"domain_names":"x.com"}]"#).expect_err("not a list");
        assert!(matches!(
            err.problem,
            Problem::Field {
                field: "domain_names",
                ..
            }
        ));
    }
}
