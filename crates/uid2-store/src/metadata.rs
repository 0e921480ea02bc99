//! Store metadata: the small JSON document Core serves per store, naming a version and where the
//! data lives.
//!
//! - Single-file stores: `{"version": n, "generated": s, "<data key>": {"location": "…"}}`.
//! - Salts: `version`, `generated`, and at the **top level** `first_level`, `id_prefix`,
//!   `id_secret`, plus `salts: [{effective, expires?, location, size}]` with times in epoch
//!   **milliseconds** (the reference's doc comment says seconds and puts `id_*` inside each entry;
//!   its code does neither).
//! - Runtime config and cloud keys carry their content inline (see their modules).
//!
//! `version` is the only change signal: the sync layer reloads a store only when it is strictly
//! greater than the loaded one. `generated` is informational and may be absent.

use zeroize::Zeroizing;

use crate::error::{FieldIssue, StoreError};
use crate::record::{parse_object, Record};

/// Metadata of a store backed by one data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreMetadata {
    pub version: i64,
    pub generated: Option<i64>,
    /// As written by Core: a URL, an absolute path, or a classpath path (see
    /// [`crate::source::resolve_location`]).
    pub location: String,
}

/// Parses `{"version", "generated"?, "<data_key>": {"location"}}`.
pub fn parse_store_metadata(
    store: &'static str,
    data_key: &'static str,
    bytes: &[u8],
) -> Result<StoreMetadata, StoreError> {
    let map = parse_object(store, bytes)?;
    let meta = Record::metadata(store, &map);
    let version = meta.i64("version")?;
    let generated = meta.opt_i64("generated")?;
    let data = meta
        .get(data_key)
        .ok_or_else(|| meta.fail(data_key, FieldIssue::Missing))?;
    let data = meta.nested(data_key, data)?;
    let location = data.str("location")?.to_owned();
    Ok(StoreMetadata {
        version,
        generated,
        location,
    })
}

/// Salts metadata (`salts/metadata.json`).
#[derive(Clone)]
pub struct SaltsMetadata {
    pub version: i64,
    pub generated: Option<i64>,
    /// Appended as text to the identity hash to form the first-level hash.
    pub first_level: Zeroizing<String>,
    /// Prefix of the public bucket ids.
    pub id_prefix: String,
    /// Hashids salt of the public bucket ids.
    pub id_secret: Zeroizing<String>,
    /// In file order; the store sorts them by `effective`.
    pub snapshots: Vec<SaltSnapshotSpec>,
}

impl std::fmt::Debug for SaltsMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaltsMetadata")
            .field("version", &self.version)
            .field("generated", &self.generated)
            .field("id_prefix", &self.id_prefix)
            .field("snapshots", &self.snapshots)
            .finish_non_exhaustive()
    }
}

/// One entry of the salts metadata `salts` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaltSnapshotSpec {
    /// Epoch ms from which the snapshot applies.
    pub effective_ms: i64,
    /// Epoch ms at which it stops applying; absent means "365 days after loading", which the
    /// store fills in because it knows the load time.
    pub expires_ms: Option<i64>,
    pub location: String,
    /// The number of lines (buckets) the salt file must have; at least 1.
    pub size: usize,
}

/// Parses the salts metadata.
pub fn parse_salts_metadata(bytes: &[u8]) -> Result<SaltsMetadata, StoreError> {
    const STORE: &str = "salts";
    let map = parse_object(STORE, bytes)?;
    let meta = Record::metadata(STORE, &map);
    let version = meta.i64("version")?;
    let generated = meta.opt_i64("generated")?;
    let first_level = Zeroizing::new(meta.str("first_level")?.to_owned());
    let id_prefix = meta.str("id_prefix")?.to_owned();
    let id_secret = Zeroizing::new(meta.str("id_secret")?.to_owned());
    let snapshots = meta
        .array("salts")?
        .iter()
        .map(|value| {
            let spec = meta.nested("salts", value)?;
            let size = spec.i32("size")?;
            // The reference allocates `size` entries; zero would make every bucket lookup divide
            // by zero, and a negative size throws.
            let size = usize::try_from(size)
                .ok()
                .filter(|&size| size > 0)
                .ok_or_else(|| spec.fail("size", FieldIssue::OutOfRange))?;
            Ok(SaltSnapshotSpec {
                effective_ms: spec.i64("effective")?,
                expires_ms: spec.opt_i64("expires")?,
                location: spec.str("location")?.to_owned(),
                size,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(SaltsMetadata {
        version,
        generated,
        first_level,
        id_prefix,
        id_secret,
        snapshots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Problem;

    #[test]
    fn store_metadata_reads_version_and_location() {
        let meta = parse_store_metadata(
            "clients",
            "client_keys",
            br#"{"version":7,"generated":1670883129,"client_keys":{"location":"/com.uid2.core/test/clients/clients.json"},"extra":1}"#,
        )
        .expect("valid");
        assert_eq!(meta.version, 7);
        assert_eq!(meta.generated, Some(1670883129));
        assert_eq!(meta.location, "/com.uid2.core/test/clients/clients.json");

        let without_generated =
            parse_store_metadata("sites", "sites", br#"{"version":1,"sites":{"location":"s.json"}}"#)
                .expect("generated is optional");
        assert_eq!(without_generated.generated, None);
    }

    #[test]
    fn store_metadata_errors_name_the_field() {
        let cases: &[(&[u8], &str, FieldIssue)] = &[
            (br#"{"sites":{"location":"s"}}"#, "version", FieldIssue::Missing),
            (
                br#"{"version":"1","sites":{"location":"s"}}"#,
                "version",
                FieldIssue::WrongType { expected: "an integer" },
            ),
            (br#"{"version":1}"#, "sites", FieldIssue::Missing),
            (
                br#"{"version":1,"sites":[]}"#,
                "sites",
                FieldIssue::WrongType { expected: "an object" },
            ),
            (br#"{"version":1,"sites":{}}"#, "location", FieldIssue::Missing),
            (
                br#"{"version":1.5,"sites":{"location":"s"}}"#,
                "version",
                FieldIssue::WrongType { expected: "an integer" },
            ),
        ];
        for (bytes, field, issue) in cases {
            let err = parse_store_metadata("sites", "sites", bytes).expect_err("invalid");
            assert_eq!(err.store, "sites");
            assert_eq!(
                err.problem,
                Problem::Metadata {
                    field,
                    issue: issue.clone()
                },
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        let err = parse_store_metadata("sites", "sites", b"[1]").expect_err("not an object");
        assert_eq!(err.problem, Problem::WrongTopLevel { expected: "object" });
        let err = parse_store_metadata("sites", "sites", b"{\"version\":").expect_err("truncated");
        assert!(matches!(err.problem, Problem::MalformedJson { line: 1, .. }));
    }

    #[test]
    fn salts_metadata_reads_top_level_hashing_fields_and_ms_times() {
        let meta = parse_salts_metadata(
            br#"{"version":3,"first_level":"fl","id_prefix":"b","id_secret":"sec",
                "salts":[{"effective":1670796729291,"location":"a","size":5},
                         {"effective":1745907348982,"expires":253402329599000,"location":"b","size":2}]}"#,
        )
        .expect("valid");
        assert_eq!(meta.version, 3);
        assert_eq!(meta.generated, None);
        assert_eq!(meta.first_level.as_str(), "fl");
        assert_eq!(meta.id_prefix, "b");
        assert_eq!(meta.id_secret.as_str(), "sec");
        assert_eq!(
            meta.snapshots,
            vec![
                SaltSnapshotSpec {
                    effective_ms: 1670796729291,
                    expires_ms: None,
                    location: "a".into(),
                    size: 5
                },
                SaltSnapshotSpec {
                    effective_ms: 1745907348982,
                    expires_ms: Some(253402329599000),
                    location: "b".into(),
                    size: 2
                },
            ]
        );
        let shown = format!("{meta:?}");
        assert!(!shown.contains("sec") && !shown.contains("\"fl\""), "{shown}");
    }

    #[test]
    fn salts_metadata_requires_size_and_rejects_empty_snapshots() {
        let base = |entry: &str| {
            format!(r#"{{"version":1,"first_level":"f","id_prefix":"b","id_secret":"s","salts":[{entry}]}}"#)
        };
        let missing_size = parse_salts_metadata(base(r#"{"effective":1,"location":"a"}"#).as_bytes());
        assert_eq!(
            missing_size.expect_err("size is required").problem,
            Problem::Metadata {
                field: "size",
                issue: FieldIssue::Missing
            }
        );
        for size in ["0", "-1"] {
            let entry = format!(r#"{{"effective":1,"location":"a","size":{size}}}"#);
            let err = parse_salts_metadata(base(&entry).as_bytes()).expect_err("bad size");
            assert_eq!(
                err.problem,
                Problem::Metadata {
                    field: "size",
                    issue: FieldIssue::OutOfRange
                }
            );
        }
        // `id_secret` inside the entry (the reference's stale doc comment) is not read.
        let nested = parse_salts_metadata(
            br#"{"version":1,"first_level":"f","id_prefix":"b","salts":[{"effective":1,"location":"a","size":1,"id_secret":"s"}]}"#,
        );
        assert_eq!(
            nested.expect_err("top-level id_secret required").problem,
            Problem::Metadata {
                field: "id_secret",
                issue: FieldIssue::Missing
            }
        );
    }
}
