//! The services store: products of a participant (e.g. a clean room) whose client keys carry a
//! `service_id` and are checked against service links.
//!
//! Parsed strictly, like the reference: `service_id`, `site_id` and `roles` are required, and
//! role names must be exact enum names (`Enum.valueOf`). `name` defaults to "", `link_id_regex`
//! is optional, `disabled` defaults to false. Invariant: service ids are unique (the reference
//! would silently keep the last one).

use std::collections::{BTreeSet, HashMap};

use crate::error::{FieldIssue, StoreError};
use crate::record::{check_unique, parse_records, Record};
use crate::role::Role;

const STORE: &str = "services";

/// One service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub service_id: i32,
    pub site_id: i32,
    pub name: String,
    pub roles: BTreeSet<Role>,
    /// Kept as text; the operator does not evaluate it.
    pub link_id_regex: Option<String>,
    pub disabled: bool,
}

/// All services by id.
#[derive(Debug, Clone, Default)]
pub struct ServiceStore {
    services: HashMap<i32, Service>,
}

impl ServiceStore {
    /// Parses a `services.json` data file.
    pub fn parse(bytes: &[u8]) -> Result<Self, StoreError> {
        let services = parse_records(STORE, bytes, parse_service)?;
        check_unique(STORE, "service_id", services.iter().map(|s| s.service_id))?;
        Ok(Self {
            services: services.into_iter().map(|s| (s.service_id, s)).collect(),
        })
    }

    pub fn service(&self, service_id: i32) -> Option<&Service> {
        self.services.get(&service_id)
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}

fn parse_service(record: &Record<'_>) -> Result<Service, StoreError> {
    let roles = record
        .array("roles")?
        .iter()
        .map(|role| {
            let name = role.as_str().ok_or_else(|| {
                record.fail(
                    "roles",
                    FieldIssue::WrongType {
                        expected: "an array of strings",
                    },
                )
            })?;
            Role::parse_exact(name).ok_or_else(|| record.fail("roles", FieldIssue::UnknownValue))
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    Ok(Service {
        service_id: record.i32("service_id")?,
        site_id: record.i32("site_id")?,
        name: record.opt_str("name")?.unwrap_or_default().to_owned(),
        roles,
        link_id_regex: record.opt_str("link_id_regex")?.map(str::to_owned),
        disabled: record.opt_bool("disabled")?.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Problem;

    #[test]
    fn sample_services_parse() {
        let store = ServiceStore::parse(
            br#"[{"service_id":1,"site_id":123,"name":"testName1","roles":["GENERATOR"]},
                 {"service_id":2,"site_id":126,"name":"testName2","roles":["MAPPER"],"link_id_regex":"^a.*$","disabled":true}]"#,
        )
        .expect("valid");
        let one = store.service(1).expect("service 1");
        assert_eq!((one.site_id, one.disabled), (123, false));
        assert_eq!(one.roles, BTreeSet::from([Role::Generator]));
        let two = store.service(2).expect("service 2");
        assert_eq!(two.link_id_regex.as_deref(), Some("^a.*$"));
        assert!(two.disabled);
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn role_names_are_strict() {
        for roles in [r#"["generator"]"#, r#"["OPTOUT_CHECKER"]"#] {
            let json = format!(r#"[{{"service_id":1,"site_id":2,"roles":{roles}}}]"#);
            let err = ServiceStore::parse(json.as_bytes()).expect_err(roles);
            assert_eq!(
                err.problem,
                Problem::Field {
                    index: 0,
                    field: "roles",
                    issue: FieldIssue::UnknownValue
                }
            );
        }
        let err = ServiceStore::parse(br#"[{"service_id":1,"site_id":2}]"#).expect_err("no roles");
        assert_eq!(
            err.problem,
            Problem::Field {
                index: 0,
                field: "roles",
                issue: FieldIssue::Missing
            }
        );
        let err = ServiceStore::parse(br#"[{"site_id":2,"roles":[]}]"#).expect_err("no id");
        assert_eq!(
            err.problem,
            Problem::Field {
                index: 0,
                field: "service_id",
                issue: FieldIssue::Missing
            }
        );
        let err = ServiceStore::parse(
            br#"[{"service_id":1,"site_id":2,"roles":[]},{"service_id":1,"site_id":3,"roles":[]}]"#,
        )
        .expect_err("duplicate");
        assert_eq!(
            err.problem,
            Problem::Duplicate {
                field: "service_id",
                first: 0,
                second: 1
            }
        );
    }
}
