//! Reading typed fields out of the JSON records of a store file.
//!
//! The reference reads most store files field by field (Vert.x `JsonObject.getInteger(…)` and
//! friends) and a few through Jackson; both ignore unknown fields and treat an explicit `null` like
//! an absent field. This module does the same, and turns every failure into a [`StoreError`] that
//! names the record and field but never quotes a value: `serde_json`'s own messages quote the
//! offending input, so only their line and column are kept.

use serde_json::{Map, Value};
use uid2_protocol::crypto::SecretKey;

use crate::error::{FieldIssue, Problem, StoreError};

/// Parses a whole file as JSON. A leading UTF-8 byte-order mark is skipped, as Jackson does.
pub(crate) fn parse_json(store: &'static str, bytes: &[u8]) -> Result<Value, StoreError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    serde_json::from_slice(bytes).map_err(|e| {
        StoreError::new(
            store,
            Problem::MalformedJson {
                line: e.line(),
                column: e.column(),
            },
        )
    })
}

/// Parses a file whose top level must be an array (every data file except salts).
pub(crate) fn parse_array(store: &'static str, bytes: &[u8]) -> Result<Vec<Value>, StoreError> {
    match parse_json(store, bytes)? {
        Value::Array(items) => Ok(items),
        _ => Err(StoreError::new(store, Problem::WrongTopLevel { expected: "array" })),
    }
}

/// Parses a data file that is a JSON array of records, each through `parse`; the first bad record
/// fails the whole file.
pub(crate) fn parse_records<T>(
    store: &'static str,
    bytes: &[u8],
    parse: impl Fn(&Record<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    parse_array(store, bytes)?
        .iter()
        .enumerate()
        .map(|(index, value)| parse(&Record::element(store, index, value)?))
        .collect()
}

/// Parses a file whose top level must be an object (metadata, encrypted envelopes).
pub(crate) fn parse_object(store: &'static str, bytes: &[u8]) -> Result<Map<String, Value>, StoreError> {
    match parse_json(store, bytes)? {
        Value::Object(map) => Ok(map),
        _ => Err(StoreError::new(store, Problem::WrongTopLevel { expected: "object" })),
    }
}

/// Where a record sits, for error messages.
#[derive(Debug, Clone, Copy)]
enum Place {
    Metadata,
    Index(usize),
}

/// One JSON object of a store file, read field by field.
pub(crate) struct Record<'a> {
    store: &'static str,
    place: Place,
    map: &'a Map<String, Value>,
}

impl<'a> Record<'a> {
    /// The `index`-th element of a data file's array; it must be an object.
    pub(crate) fn element(store: &'static str, index: usize, value: &'a Value) -> Result<Self, StoreError> {
        match value {
            Value::Object(map) => Ok(Self {
                store,
                place: Place::Index(index),
                map,
            }),
            _ => Err(StoreError::new(store, Problem::RecordNotAnObject { index })),
        }
    }

    /// A metadata object (errors are reported as metadata fields).
    pub(crate) fn metadata(store: &'static str, map: &'a Map<String, Value>) -> Self {
        Self {
            store,
            place: Place::Metadata,
            map,
        }
    }

    /// A nested object of a metadata file, such as one entry of the salts `salts` array;
    /// errors are attributed to the metadata field `field`.
    pub(crate) fn nested(&self, field: &'static str, value: &'a Value) -> Result<Self, StoreError> {
        match value {
            Value::Object(map) => Ok(Self {
                store: self.store,
                place: self.place,
                map,
            }),
            _ => Err(self.fail(field, FieldIssue::WrongType { expected: "an object" })),
        }
    }

    pub(crate) fn fail(&self, field: &'static str, issue: FieldIssue) -> StoreError {
        let problem = match self.place {
            Place::Metadata => Problem::Metadata { field, issue },
            Place::Index(index) => Problem::Field { index, field, issue },
        };
        StoreError::new(self.store, problem)
    }

    /// The field's value; `null` counts as absent.
    pub(crate) fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn required(&self, field: &'static str) -> Result<&'a Value, StoreError> {
        self.get(field).ok_or_else(|| self.fail(field, FieldIssue::Missing))
    }

    pub(crate) fn i64(&self, field: &'static str) -> Result<i64, StoreError> {
        self.integer(field, self.required(field)?)
    }

    pub(crate) fn opt_i64(&self, field: &'static str) -> Result<Option<i64>, StoreError> {
        self.get(field).map(|v| self.integer(field, v)).transpose()
    }

    pub(crate) fn i32(&self, field: &'static str) -> Result<i32, StoreError> {
        let wide = self.i64(field)?;
        i32::try_from(wide).map_err(|_| self.fail(field, FieldIssue::OutOfRange))
    }

    pub(crate) fn opt_i32(&self, field: &'static str) -> Result<Option<i32>, StoreError> {
        match self.opt_i64(field)? {
            Some(wide) => i32::try_from(wide)
                .map(Some)
                .map_err(|_| self.fail(field, FieldIssue::OutOfRange)),
            None => Ok(None),
        }
    }

    fn integer(&self, field: &'static str, value: &Value) -> Result<i64, StoreError> {
        match value {
            Value::Number(n) => match n.as_i64() {
                Some(v) => Ok(v),
                // A u64 beyond i64, or a fraction: neither is a valid id or timestamp.
                None if n.is_u64() => Err(self.fail(field, FieldIssue::OutOfRange)),
                None => Err(self.fail(field, FieldIssue::WrongType { expected: "an integer" })),
            },
            _ => Err(self.fail(field, FieldIssue::WrongType { expected: "an integer" })),
        }
    }

    pub(crate) fn bool(&self, field: &'static str) -> Result<bool, StoreError> {
        self.boolean(field, self.required(field)?)
    }

    pub(crate) fn opt_bool(&self, field: &'static str) -> Result<Option<bool>, StoreError> {
        self.get(field).map(|v| self.boolean(field, v)).transpose()
    }

    fn boolean(&self, field: &'static str, value: &Value) -> Result<bool, StoreError> {
        value
            .as_bool()
            .ok_or_else(|| self.fail(field, FieldIssue::WrongType { expected: "a boolean" }))
    }

    pub(crate) fn str(&self, field: &'static str) -> Result<&'a str, StoreError> {
        self.text(field, self.required(field)?)
    }

    pub(crate) fn opt_str(&self, field: &'static str) -> Result<Option<&'a str>, StoreError> {
        self.get(field).map(|v| self.text(field, v)).transpose()
    }

    fn text(&self, field: &'static str, value: &'a Value) -> Result<&'a str, StoreError> {
        value
            .as_str()
            .ok_or_else(|| self.fail(field, FieldIssue::WrongType { expected: "a string" }))
    }

    pub(crate) fn array(&self, field: &'static str) -> Result<&'a [Value], StoreError> {
        self.list(field, self.required(field)?)
    }

    pub(crate) fn opt_array(&self, field: &'static str) -> Result<Option<&'a [Value]>, StoreError> {
        self.get(field).map(|v| self.list(field, v)).transpose()
    }

    fn list(&self, field: &'static str, value: &'a Value) -> Result<&'a [Value], StoreError> {
        value
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.fail(field, FieldIssue::WrongType { expected: "an array" }))
    }

    /// An optional array of strings, in file order.
    pub(crate) fn opt_strings(&self, field: &'static str) -> Result<Vec<&'a str>, StoreError> {
        let Some(items) = self.opt_array(field)? else {
            return Ok(Vec::new());
        };
        items
            .iter()
            .map(|item| {
                item.as_str().ok_or_else(|| {
                    self.fail(
                        field,
                        FieldIssue::WrongType {
                            expected: "an array of strings",
                        },
                    )
                })
            })
            .collect()
    }

    /// A required base64 field, decoded the way Java's `Base64.getDecoder()` does.
    pub(crate) fn base64(&self, field: &'static str) -> Result<Vec<u8>, StoreError> {
        uid2_protocol::base64::decode(self.str(field)?).map_err(|_| self.fail(field, FieldIssue::InvalidBase64))
    }

    /// A required base64 field that must decode to an AES-256 key.
    pub(crate) fn secret_key(&self, field: &'static str) -> Result<SecretKey, StoreError> {
        let bytes = zeroize::Zeroizing::new(self.base64(field)?);
        SecretKey::from_slice(&bytes).ok_or_else(|| {
            self.fail(
                field,
                FieldIssue::WrongLength {
                    expected: SecretKey::LEN,
                    found: bytes.len(),
                },
            )
        })
    }
}

/// Rejects two records that share a lookup key. The reference either fails the file (Jackson
/// `toMap`) or silently keeps the last one, depending on the store; an ambiguous id or key is a
/// Core bug in every case, and keeping either record would hide it.
pub(crate) fn check_unique<K: std::hash::Hash + Eq>(
    store: &'static str,
    field: &'static str,
    keys: impl IntoIterator<Item = K>,
) -> Result<(), StoreError> {
    let mut seen = std::collections::HashMap::new();
    for (index, key) in keys.into_iter().enumerate() {
        if let Some(first) = seen.insert(key, index) {
            return Err(StoreError::new(
                store,
                Problem::Duplicate {
                    field,
                    first,
                    second: index,
                },
            ));
        }
    }
    Ok(())
}
