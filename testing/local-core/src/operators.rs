//! Operator keys: the `operators.json` store and the bearer-key check Core and OptOut make.
//!
//! Core never stores a plaintext key. A record holds `key_salt` (base64 of random bytes) and
//! `key_hash` = base64(SHA-512(salt ‖ UTF-8 key)); a presented key matches a record when the
//! recomputed hash equals `key_hash`, compared in constant time. A key shaped like
//! `UID2-O-L-<site>-<6>.<38>` is only tried against records of that site, as Core does.
//!
//! The file is read from disk on every request (tests edit it while the service runs), so this
//! module only parses bytes; it never caches and never prints a key, a hash or a salt.

use std::path::Path;

use serde_json::{json, Value};
use uid2_protocol::crypto::{ct_eq, sha512};

use crate::error::{CoreError, KeyRejection};

/// `public` or `private`, compared case-insensitively with the `operator_type` of `/attest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorType {
    Public,
    Private,
}

impl OperatorType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }

    /// Case-insensitive, as Core compares it.
    pub fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("public") {
            Some(Self::Public)
        } else if text.eq_ignore_ascii_case("private") {
            Some(Self::Private)
        } else {
            None
        }
    }
}

/// One record of `operators.json`.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorRecord {
    pub name: String,
    pub contact: String,
    /// Attestation protocol: `trusted`, later `azure-sgx`; decides the verifier of `/attest`.
    pub protocol: String,
    /// Role names as written (`OPERATOR`, `OPTOUT`, `OPTOUT_SERVICE`, …).
    pub roles: Vec<String>,
    pub site_id: i32,
    pub disabled: bool,
    pub operator_type: OperatorType,
    /// Base64 of the salt bytes.
    key_salt: String,
    /// Base64 of SHA-512(salt ‖ key).
    key_hash: String,
}

impl std::fmt::Debug for OperatorRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorRecord")
            .field("name", &self.name)
            .field("protocol", &self.protocol)
            .field("roles", &self.roles)
            .field("site_id", &self.site_id)
            .field("disabled", &self.disabled)
            .field("operator_type", &self.operator_type)
            .finish_non_exhaustive()
    }
}

/// base64(SHA-512(salt ‖ UTF-8 key)): the `key_hash` Core stores for `key`.
pub fn hash_key(key: &str, salt: &[u8]) -> String {
    uid2_protocol::base64::encode(&sha512(&[salt, key.as_bytes()]))
}

impl OperatorRecord {
    /// An enabled, trusted, public record for `key` with a fresh random 32-byte salt and the
    /// roles `OPERATOR` and `OPTOUT`; adjust the public fields before writing it out.
    pub fn for_key(key: &str, site_id: i32) -> Self {
        let mut salt = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
        Self::for_key_with_salt(key, site_id, &salt)
    }

    /// As [`Self::for_key`] with a given salt (deterministic records for fixtures).
    pub fn for_key_with_salt(key: &str, site_id: i32, salt: &[u8]) -> Self {
        Self {
            name: format!("local operator {site_id}"),
            contact: "local-operator@example.com".to_owned(),
            protocol: "trusted".to_owned(),
            roles: vec!["OPERATOR".to_owned(), "OPTOUT".to_owned()],
            site_id,
            disabled: false,
            operator_type: OperatorType::Public,
            key_salt: uid2_protocol::base64::encode(salt),
            key_hash: hash_key(key, salt),
        }
    }

    pub fn key_salt(&self) -> &str {
        &self.key_salt
    }

    pub fn key_hash(&self) -> &str {
        &self.key_hash
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }

    /// The record as Core's `operators.json` spells it.
    pub fn to_json(&self) -> Value {
        json!({
            "key_hash": self.key_hash,
            "key_salt": self.key_salt,
            "name": self.name,
            "contact": self.contact,
            "protocol": self.protocol,
            "roles": self.roles,
            "site_id": self.site_id,
            "disabled": self.disabled,
            "operator_type": self.operator_type.as_str(),
            "created": 1_700_000_000,
        })
    }

    /// Whether `key` hashes to this record's `key_hash`. A salt or hash that is not base64
    /// never matches.
    fn matches(&self, key: &str) -> bool {
        let Ok(salt) = uid2_protocol::base64::decode(&self.key_salt) else {
            return false;
        };
        let Ok(expected) = uid2_protocol::base64::decode(&self.key_hash) else {
            return false;
        };
        ct_eq(&sha512(&[&salt, key.as_bytes()]), &expected)
    }

    fn parse(index: usize, value: &Value) -> Result<Self, String> {
        let bad = |field: &str| format!("operators.json: record {index}: bad or missing field {field}");
        let map = value.as_object().ok_or_else(|| bad("(not an object)"))?;
        let text = |field: &str| map.get(field).and_then(Value::as_str).map(str::to_owned);
        let operator_type = match map.get("operator_type") {
            None | Some(Value::Null) => OperatorType::Public,
            Some(value) => value
                .as_str()
                .and_then(OperatorType::parse)
                .ok_or_else(|| bad("operator_type"))?,
        };
        let roles = match map.get("roles") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|r| r.as_str().map(str::to_owned).ok_or_else(|| bad("roles")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad("roles")),
        };
        let site_id = map
            .get("site_id")
            .and_then(Value::as_i64)
            .and_then(|s| i32::try_from(s).ok())
            .ok_or_else(|| bad("site_id"))?;
        let disabled = match map.get("disabled") {
            None | Some(Value::Null) => false,
            Some(value) => value.as_bool().ok_or_else(|| bad("disabled"))?,
        };
        Ok(Self {
            name: text("name").unwrap_or_default(),
            contact: text("contact").unwrap_or_default(),
            protocol: text("protocol").unwrap_or_else(|| "trusted".to_owned()),
            roles,
            site_id,
            disabled,
            operator_type,
            key_salt: text("key_salt").ok_or_else(|| bad("key_salt"))?,
            key_hash: text("key_hash").ok_or_else(|| bad("key_hash"))?,
        })
    }
}

/// The site id embedded in a key of the form `(UID2|EUID)-[CO]-[LTIP]-<site>-<6>.<38>`, if the
/// key has exactly that shape.
pub fn site_of_key(key: &str) -> Option<i32> {
    let rest = key.strip_prefix("UID2-").or_else(|| key.strip_prefix("EUID-"))?;
    let mut chars = rest.chars();
    if !matches!(chars.next(), Some('C' | 'O')) || chars.next() != Some('-') {
        return None;
    }
    if !matches!(chars.next(), Some('L' | 'T' | 'I' | 'P')) || chars.next() != Some('-') {
        return None;
    }
    let rest = chars.as_str();
    let (site, secret) = rest.split_once('-')?;
    if site.is_empty() || !site.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (head, tail) = secret.split_once('.')?;
    if head.chars().count() != 6 || tail.chars().count() != 38 {
        return None;
    }
    site.parse().ok()
}

/// All records of an `operators.json`.
#[derive(Debug, Clone, Default)]
pub struct OperatorStore {
    records: Vec<OperatorRecord>,
}

impl OperatorStore {
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("operators.json: not JSON (line {}, column {})", e.line(), e.column()))?;
        let items = value
            .as_array()
            .ok_or_else(|| "operators.json: the top level is not an array".to_owned())?;
        let records = items
            .iter()
            .enumerate()
            .map(|(index, item)| OperatorRecord::parse(index, item))
            .collect::<Result<_, _>>()?;
        Ok(Self { records })
    }

    /// Reads and parses the file; any failure is a [`CoreError::Store`].
    pub fn load(path: &Path) -> Result<Self, CoreError> {
        let bytes =
            std::fs::read(path).map_err(|e| CoreError::Store(format!("operators file unreadable: {}", e.kind())))?;
        Self::parse(&bytes).map_err(CoreError::Store)
    }

    pub fn records(&self) -> &[OperatorRecord] {
        &self.records
    }

    /// The record whose hash `key` matches, narrowed to the key's site when it has one.
    pub fn find(&self, key: &str) -> Option<&OperatorRecord> {
        let site = site_of_key(key);
        self.records
            .iter()
            .filter(|r| site.is_none_or(|s| r.site_id == s))
            .find(|r| r.matches(key))
    }

    /// Core's key check: a known, enabled key holding one of `roles`.
    pub fn authorize(&self, key: &str, roles: &[&str]) -> Result<&OperatorRecord, CoreError> {
        let record = self.find(key).ok_or(CoreError::Key(KeyRejection::UnrecognizedKey))?;
        if record.disabled {
            return Err(CoreError::Key(KeyRejection::KeyDisabled));
        }
        if !roles.iter().any(|role| record.has_role(role)) {
            return Err(CoreError::Key(KeyRejection::InsufficientRole));
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "UID2-O-L-999-abcdef.0123456789012345678901234567890123456=";

    #[test]
    fn site_is_read_only_from_well_formed_keys() {
        assert_eq!(site_of_key(KEY), Some(999));
        assert_eq!(
            site_of_key("EUID-C-P-12-abcdef.0123456789012345678901234567890123456="),
            Some(12)
        );
        assert_eq!(
            site_of_key("UID2-X-L-999-abcdef.0123456789012345678901234567890123456="),
            None
        );
        assert_eq!(
            site_of_key("UID2-O-L-999-abcde.0123456789012345678901234567890123456="),
            None
        );
        assert_eq!(site_of_key("UID2-O-L-999-abcdef.short"), None);
        assert_eq!(
            site_of_key("UID2-O-L--abcdef.0123456789012345678901234567890123456="),
            None
        );
        assert_eq!(site_of_key("legacy-free-form-key"), None);
        assert_eq!(site_of_key(""), None);
    }

    #[test]
    fn records_round_trip_and_authenticate() {
        let mut private = OperatorRecord::for_key_with_salt("legacy-key", 5, &[1; 32]);
        private.operator_type = OperatorType::Private;
        private.roles = vec!["OPTOUT_SERVICE".to_owned()];
        let mut disabled = OperatorRecord::for_key("UID2-O-L-7-abcdef.0123456789012345678901234567890123456=", 7);
        disabled.disabled = true;
        let records = vec![OperatorRecord::for_key(KEY, 999), private.clone(), disabled];
        let text =
            serde_json::to_vec(&records.iter().map(OperatorRecord::to_json).collect::<Vec<_>>()).expect("serializes");
        let store = OperatorStore::parse(&text).expect("parses");
        assert_eq!(store.records(), records.as_slice());

        assert_eq!(store.authorize(KEY, &["OPERATOR"]).map(|r| r.site_id).ok(), Some(999));
        assert_eq!(store.find("legacy-key"), Some(&private));
        assert!(matches!(
            store.authorize("legacy-key", &["OPERATOR"]),
            Err(CoreError::Key(KeyRejection::InsufficientRole))
        ));
        assert!(matches!(
            store.authorize(
                "UID2-O-L-7-abcdef.0123456789012345678901234567890123456=",
                &["OPERATOR"]
            ),
            Err(CoreError::Key(KeyRejection::KeyDisabled))
        ));
        assert!(matches!(
            store.authorize("nope", &["OPERATOR"]),
            Err(CoreError::Key(KeyRejection::UnrecognizedKey))
        ));
        // A well-formed key of another site is not tried against site 999's record.
        let other_site = KEY.replace("-999-", "-998-");
        assert!(store.find(&other_site).is_none());
        assert!(!format!("{store:?}").contains(records[0].key_hash()));
    }

    #[test]
    fn broken_files_are_errors_not_panics() {
        for text in [
            &b"{}"[..],
            b"nope",
            b"[1]",
            br#"[{"key_hash":"a","key_salt":"b"}]"#,
            br#"[{"key_hash":"a","key_salt":"b","site_id":1,"operator_type":"weird"}]"#,
            br#"[{"key_hash":"a","key_salt":"b","site_id":1,"roles":"OPERATOR"}]"#,
        ] {
            assert!(OperatorStore::parse(text).is_err());
        }
        let odd = OperatorStore::parse(br#"[{"key_hash":"!!","key_salt":"!!","site_id":1,"roles":["OPERATOR"]}]"#)
            .expect("parses");
        assert!(odd.find("anything").is_none());
    }
}
