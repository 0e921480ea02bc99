//! The keyset keys store: the AES-256 keys that encrypt tokens, each in one keyset.
//!
//! Parsed strictly, like the reference: `id`, `keyset_id`, `secret`, `created`, `activates` and
//! `expires` are all required. Key times are epoch **seconds**; callers pass the current time in
//! **milliseconds**, and comparisons are done without rounding either side.
//!
//! Invariants: key ids are unique; every secret decodes (leniently, as Java does; sample key 11
//! is non-canonical base64) to exactly 32 bytes; each keyset's keys are kept sorted by
//! `activates` with a stable sort, so keys that activate together keep file order.

use std::collections::HashMap;

use uid2_protocol::crypto::SecretKey;
use uid2_protocol::token::KeyRing;

use crate::error::StoreError;
use crate::record::{check_unique, parse_records};

const STORE: &str = "keyset_keys";

/// One key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysetKey {
    /// Written into tokens to name the key.
    pub id: i32,
    pub keyset_id: i32,
    pub secret: SecretKey,
    /// Epoch seconds.
    pub created: i64,
    /// Epoch seconds.
    pub activates: i64,
    /// Epoch seconds.
    pub expires: i64,
}

/// Seconds → ms without overflow, for comparing key times with a ms clock.
fn seconds_to_ms(seconds: i64) -> i128 {
    i128::from(seconds) * 1000
}

impl KeysetKey {
    /// `activates ≤ now`.
    pub fn has_activated(&self, now_ms: i64) -> bool {
        seconds_to_ms(self.activates) <= i128::from(now_ms)
    }

    /// `expires ≤ now`: a key is expired from the instant its `expires` is reached.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        seconds_to_ms(self.expires) <= i128::from(now_ms)
    }
}

/// All keys, by id and by keyset.
#[derive(Debug, Clone, Default)]
pub struct KeysetKeyStore {
    /// Sorted by id.
    keys: Vec<KeysetKey>,
    by_id: HashMap<i32, usize>,
    /// Indexes into `keys`, stably sorted by `activates`.
    by_keyset: HashMap<i32, Vec<usize>>,
}

impl KeysetKeyStore {
    /// Parses a `keyset_keys.json` data file.
    pub fn parse(bytes: &[u8]) -> Result<Self, StoreError> {
        let keys = parse_records(STORE, bytes, |record| {
            Ok(KeysetKey {
                id: record.i32("id")?,
                keyset_id: record.i32("keyset_id")?,
                secret: record.secret_key("secret")?,
                created: record.i64("created")?,
                activates: record.i64("activates")?,
                expires: record.i64("expires")?,
            })
        })?;
        Self::from_keys(keys)
    }

    pub fn from_keys(keys: Vec<KeysetKey>) -> Result<Self, StoreError> {
        check_unique(STORE, "id", keys.iter().map(|k| k.id))?;
        // Per-keyset lists are built in file order first, so the stable sort below keeps file
        // order among keys that activate at the same second, as the reference's list sort does.
        let mut by_keyset: HashMap<i32, Vec<(i64, i32)>> = HashMap::new();
        for key in &keys {
            by_keyset
                .entry(key.keyset_id)
                .or_default()
                .push((key.activates, key.id));
        }
        let mut keys = keys;
        keys.sort_by_key(|k| k.id);
        let by_id: HashMap<i32, usize> = keys.iter().enumerate().map(|(i, k)| (k.id, i)).collect();
        let by_keyset = by_keyset
            .into_iter()
            .map(|(keyset_id, mut members)| {
                members.sort_by_key(|&(activates, _)| activates);
                let indexes = members
                    .into_iter()
                    .filter_map(|(_, id)| by_id.get(&id).copied())
                    .collect();
                (keyset_id, indexes)
            })
            .collect();
        Ok(Self { keys, by_id, by_keyset })
    }

    /// The key with this id, active or not (token decryption does no time check).
    pub fn key(&self, id: i32) -> Option<&KeysetKey> {
        self.by_id.get(&id).and_then(|&index| self.keys.get(index))
    }

    /// Every key, sorted by id.
    pub fn keys(&self) -> &[KeysetKey] {
        &self.keys
    }

    /// The key of `keyset_id` to encrypt with at `now_ms`: among the keys that have activated,
    /// the latest-activating one that has not expired (the reference's upper-bound search, then a
    /// walk back to the first unexpired key).
    pub fn active_key(&self, keyset_id: i32, now_ms: i64) -> Option<&KeysetKey> {
        let members = self.by_keyset.get(&keyset_id)?;
        let members: Vec<&KeysetKey> = members.iter().filter_map(|&i| self.keys.get(i)).collect();
        let upper_bound = members.partition_point(|key| key.has_activated(now_ms));
        members
            .get(..upper_bound)?
            .iter()
            .rev()
            .find(|key| !key.is_expired(now_ms))
            .copied()
    }
}

impl KeyRing for KeysetKeyStore {
    fn secret(&self, key_id: i32) -> Option<&SecretKey> {
        self.key(key_id).map(|key| &key.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{FieldIssue, Problem};

    const SECRET: &str = "vPdQIoN1nTwXIQoH4/GcHOAct7ymyrGUKXNQhgmq+E8=";

    fn key(id: i32, keyset_id: i32, activates: i64, expires: i64) -> KeysetKey {
        KeysetKey {
            id,
            keyset_id,
            secret: SecretKey::from_bytes([u8::try_from(id).unwrap_or(0); 32]),
            created: 0,
            activates,
            expires,
        }
    }

    #[test]
    fn active_key_is_the_latest_activated_unexpired_key() {
        let store = KeysetKeyStore::from_keys(vec![
            key(1, 7, 100, 1_000),
            key(2, 7, 200, 250),
            key(3, 7, 300, 1_000),
            key(4, 8, 100, 1_000),
        ])
        .expect("valid");
        let active = |now_ms| store.active_key(7, now_ms).map(|k| k.id);
        assert_eq!(active(99_999), None, "nothing has activated");
        assert_eq!(active(100_000), Some(1), "activates is inclusive");
        assert_eq!(active(200_000), Some(2));
        assert_eq!(active(249_999), Some(2));
        assert_eq!(active(250_000), Some(1), "expires is exclusive; walk back to key 1");
        assert_eq!(active(299_999), Some(1));
        assert_eq!(active(300_000), Some(3));
        assert_eq!(active(999_999), Some(3));
        assert_eq!(active(1_000_000), None, "all expired");
        assert_eq!(store.active_key(9, 500_000).map(|k| k.id), None);
        assert_eq!(store.active_key(8, 500_000).map(|k| k.id), Some(4));
    }

    #[test]
    fn sub_second_clock_values_compare_against_whole_seconds() {
        let store = KeysetKeyStore::from_keys(vec![key(1, 7, 100, 200)]).expect("valid");
        assert!(store.active_key(7, 99_999).is_none());
        assert!(store.active_key(7, 100_000).is_some());
        assert!(store.active_key(7, 199_999).is_some());
        assert!(store.active_key(7, 200_000).is_none());
        // Extreme key times neither overflow nor wrap.
        let store = KeysetKeyStore::from_keys(vec![key(1, 7, i64::MIN, i64::MAX)]).expect("valid");
        assert!(store.active_key(7, i64::MAX).is_some());
    }

    #[test]
    fn ties_in_activation_keep_file_order() {
        // The stable sort keeps key 9 after key 5; the walk back from the upper bound finds 9.
        let store = KeysetKeyStore::from_keys(vec![key(9, 7, 100, 1_000), key(5, 7, 100, 1_000)]).expect("valid");
        assert_eq!(store.active_key(7, 500_000).map(|k| k.id), Some(5));
        let store = KeysetKeyStore::from_keys(vec![key(5, 7, 100, 1_000), key(9, 7, 100, 1_000)]).expect("valid");
        assert_eq!(store.active_key(7, 500_000).map(|k| k.id), Some(9));
    }

    #[test]
    fn key_ring_looks_up_by_id_without_time_checks() {
        let store = KeysetKeyStore::from_keys(vec![key(1, 7, 100, 200), key(2, 7, 300, 400)]).expect("valid");
        assert!(store.secret(1).is_some(), "expired keys still decrypt");
        assert_eq!(store.secret(2), Some(&SecretKey::from_bytes([2; 32])));
        assert!(store.secret(3).is_none());
        assert_eq!(store.keys().iter().map(|k| k.id).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn secrets_must_be_32_bytes_and_fields_present() {
        let record = |secret: &str| {
            format!(r#"[{{"id":1,"keyset_id":2,"secret":"{secret}","created":1,"activates":1,"expires":2}}]"#)
        };
        assert!(KeysetKeyStore::parse(record(SECRET).as_bytes()).is_ok());
        // 31 bytes.
        let short = uid2_protocol::base64::encode(&[7u8; 31]);
        let err = KeysetKeyStore::parse(record(&short).as_bytes()).expect_err("31 bytes");
        assert_eq!(
            err.problem,
            Problem::Field {
                index: 0,
                field: "secret",
                issue: FieldIssue::WrongLength {
                    expected: 32,
                    found: 31
                }
            }
        );
        let err = KeysetKeyStore::parse(record("not base64!").as_bytes()).expect_err("bad base64");
        assert_eq!(
            err.problem,
            Problem::Field {
                index: 0,
                field: "secret",
                issue: FieldIssue::InvalidBase64
            }
        );
        assert!(!err.to_string().contains("not base64"));
        for field in ["id", "keyset_id", "secret", "created", "activates", "expires"] {
            let mut value: serde_json::Value = serde_json::from_str(&record(SECRET)).expect("json");
            if let Some(object) = value.get_mut(0).and_then(|v| v.as_object_mut()) {
                object.remove(field);
            }
            let err = KeysetKeyStore::parse(value.to_string().as_bytes()).expect_err(field);
            assert_eq!(
                err.problem,
                Problem::Field {
                    index: 0,
                    field,
                    issue: FieldIssue::Missing
                }
            );
        }
        let dup = format!(
            r#"[{{"id":1,"keyset_id":2,"secret":"{SECRET}","created":1,"activates":1,"expires":2}},
                {{"id":1,"keyset_id":3,"secret":"{SECRET}","created":1,"activates":1,"expires":2}}]"#
        );
        let err = KeysetKeyStore::parse(dup.as_bytes()).expect_err("duplicate id");
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
