//! The service links store: the links (e.g. one clean-room tenant) through which a service's
//! client keys may map identities.
//!
//! Read like the reference's Jackson mapper: `roles` optional (default empty), case-insensitive,
//! unknown names become [`Role::Unknown`]; `disabled` defaults to false. This store requires
//! `link_id` and `service_id`, which form the lookup key (`"<service_id>_<link_id>"` in the
//! reference, whose map collector throws on duplicates; so does this store).

use std::collections::{BTreeSet, HashMap};

use crate::error::{FieldIssue, StoreError};
use crate::record::{check_unique, parse_records, Record};
use crate::role::Role;

const STORE: &str = "service_links";

/// One link of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLink {
    pub link_id: String,
    pub service_id: i32,
    pub site_id: i32,
    pub name: String,
    pub roles: BTreeSet<Role>,
    pub disabled: bool,
}

/// All links by `(service_id, link_id)`.
#[derive(Debug, Clone, Default)]
pub struct ServiceLinkStore {
    links: HashMap<(i32, String), ServiceLink>,
}

impl ServiceLinkStore {
    /// Parses a `service_links.json` data file.
    pub fn parse(bytes: &[u8]) -> Result<Self, StoreError> {
        let links = parse_records(STORE, bytes, parse_link)?;
        check_unique(
            STORE,
            "link_id",
            links.iter().map(|l| (l.service_id, l.link_id.as_str())),
        )?;
        Ok(Self {
            links: links
                .into_iter()
                .map(|l| ((l.service_id, l.link_id.clone()), l))
                .collect(),
        })
    }

    pub fn link(&self, service_id: i32, link_id: &str) -> Option<&ServiceLink> {
        self.links.get(&(service_id, link_id.to_owned()))
    }

    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }
}

fn parse_link(record: &Record<'_>) -> Result<ServiceLink, StoreError> {
    let roles = match record.opt_array("roles")? {
        None => BTreeSet::new(),
        Some(items) => items
            .iter()
            .map(|role| {
                role.as_str().map(Role::parse_lenient).ok_or_else(|| {
                    record.fail(
                        "roles",
                        FieldIssue::WrongType {
                            expected: "an array of strings",
                        },
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(ServiceLink {
        link_id: record.str("link_id")?.to_owned(),
        service_id: record.i32("service_id")?,
        site_id: record.opt_i32("site_id")?.unwrap_or(0),
        name: record.opt_str("name")?.unwrap_or_default().to_owned(),
        roles,
        disabled: record.opt_bool("disabled")?.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Problem;

    #[test]
    fn links_are_found_by_service_and_link_id() {
        let store = ServiceLinkStore::parse(
            br#"[{"link_id":"testId1","service_id":1,"site_id":123,"name":"testName1"},
                 {"link_id":"testId2","service_id":2,"site_id":123,"name":"testName2","roles":["mapper","NOPE"],"disabled":true},
                 {"link_id":"testId1","service_id":2,"site_id":5}]"#,
        )
        .expect("valid");
        let one = store.link(1, "testId1").expect("link");
        assert!(one.roles.is_empty() && !one.disabled);
        let two = store.link(2, "testId2").expect("link");
        assert_eq!(two.roles, BTreeSet::from([Role::Mapper, Role::Unknown]));
        assert!(two.disabled);
        assert_eq!(store.link(2, "testId1").map(|l| l.site_id), Some(5));
        assert!(store.link(1, "testId2").is_none());
        assert!(store.link(1, "TESTID1").is_none());
    }

    #[test]
    fn keys_are_required_and_unique() {
        let err = ServiceLinkStore::parse(br#"[{"service_id":1}]"#).expect_err("no link id");
        assert_eq!(
            err.problem,
            Problem::Field {
                index: 0,
                field: "link_id",
                issue: FieldIssue::Missing
            }
        );
        let err = ServiceLinkStore::parse(br#"[{"link_id":"a","service_id":1},{"link_id":"a","service_id":1}]"#)
            .expect_err("duplicate");
        assert_eq!(
            err.problem,
            Problem::Duplicate {
                field: "link_id",
                first: 0,
                second: 1
            }
        );
    }
}
