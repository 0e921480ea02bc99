//! Cloud encryption keys as Core hands them out, and the encrypted-file envelope it wraps store
//! files in for operators that ask with `Encrypted: true`.
//!
//! The store's `cloud_encryption_keys/metadata.json` either points at a data file (`{"location"}`,
//! the reference layout) or carries the keys inline (an array, Core's API form); both are read.
//! Key records may spell the site `site_id` or `siteId` (the reference sample does the latter);
//! answers always spell it `site_id`, the name the operator reads. A site's *active* key is the
//! one with the latest `activates` not after now (ties: the higher id). Envelope:
//! `{"key_id": id, "encrypted_payload": b64(IV ‖ AES-256-GCM ciphertext ‖ tag)}`, no AAD.

use serde_json::{json, Value};
use uid2_protocol::crypto::{gcm_seal, SecretKey};
use uid2_protocol::entropy::Entropy;

use crate::error::CoreError;
use crate::files::StoreTree;

const METADATA: &str = "cloud_encryption_keys/metadata.json";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudKey {
    pub id: i32,
    pub site_id: i32,
    /// Epoch seconds.
    pub activates: i64,
    /// Epoch seconds.
    pub created: i64,
    pub secret: SecretKey,
}

impl CloudKey {
    /// The record as Core's `/cloud_encryption_keys/retrieve` returns it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "site_id": self.site_id,
            "activates": self.activates,
            "created": self.created,
            "secret": self.secret.to_base64(),
        })
    }

    fn parse(index: usize, value: &Value) -> Result<Self, CoreError> {
        let bad = |field: &str| CoreError::Store(format!("cloud_encryption_keys: record {index}: bad {field}"));
        let int = |field: &str| value.get(field).and_then(Value::as_i64);
        let id = int("id").and_then(|v| i32::try_from(v).ok()).ok_or_else(|| bad("id"))?;
        let site_id = int("site_id")
            .or_else(|| int("siteId"))
            .and_then(|v| i32::try_from(v).ok())
            .ok_or_else(|| bad("site_id"))?;
        let secret = value
            .get("secret")
            .and_then(Value::as_str)
            .and_then(SecretKey::from_base64)
            .ok_or_else(|| bad("secret"))?;
        Ok(Self {
            id,
            site_id,
            activates: int("activates").unwrap_or(0),
            created: int("created").unwrap_or(0),
            secret,
        })
    }
}

fn parse_array(items: &[Value]) -> Result<Vec<CloudKey>, CoreError> {
    items
        .iter()
        .enumerate()
        .map(|(index, item)| CloudKey::parse(index, item))
        .collect()
}

fn read_json(path: &std::path::Path, what: &str) -> Result<Value, CoreError> {
    let bytes = std::fs::read(path).map_err(|e| CoreError::Store(format!("{what} unreadable: {}", e.kind())))?;
    serde_json::from_slice(&bytes).map_err(|e| CoreError::Store(format!("{what} is not JSON (line {})", e.line())))
}

/// Every cloud key of the store, read from disk now.
pub fn load(tree: &StoreTree) -> Result<Vec<CloudKey>, CoreError> {
    let metadata = read_json(&tree.path(METADATA), METADATA)?;
    match metadata.get("cloud_encryption_keys") {
        Some(Value::Array(items)) => parse_array(items),
        Some(Value::Object(pointer)) => {
            let location = pointer
                .get("location")
                .and_then(Value::as_str)
                .ok_or_else(|| CoreError::Store(format!("{METADATA}: no location")))?;
            let file = tree.resolve_location(location)?;
            match read_json(&file, "cloud_encryption_keys data file")? {
                Value::Array(items) => parse_array(&items),
                _ => Err(CoreError::Store(
                    "cloud_encryption_keys data file is not an array".into(),
                )),
            }
        }
        _ => Err(CoreError::Store(format!("{METADATA}: no cloud_encryption_keys"))),
    }
}

/// The key a site's files are encrypted with at `now_s`.
pub fn active_for_site(keys: &[CloudKey], site_id: i32, now_s: i64) -> Option<&CloudKey> {
    keys.iter()
        .filter(|k| k.site_id == site_id && k.activates <= now_s)
        .max_by_key(|k| (k.activates, k.id))
}

/// Wraps a store file in the encrypted envelope.
pub fn seal_envelope(key: &CloudKey, plaintext: &[u8], entropy: &dyn Entropy) -> Vec<u8> {
    let payload = gcm_seal(&key.secret, plaintext, &[], entropy);
    let envelope = json!({
        "key_id": key.id,
        "encrypted_payload": uid2_protocol::base64::encode(&payload),
    });
    envelope.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uid2_protocol::entropy::OsEntropy;
    use uid2_store::cloud_keys::{decrypt_store_file, CloudKeyStore};

    fn tree() -> StoreTree {
        StoreTree::new(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/local-store"))
            .expect("store")
    }

    #[test]
    fn sample_keys_and_active_choice() {
        let keys = load(&tree()).expect("sample keys");
        assert_eq!(keys.len(), 12);
        assert_eq!(active_for_site(&keys, 999, 1_720_728_070).map(|k| k.id), Some(2));
        assert_eq!(active_for_site(&keys, 999, 2_000_000_000).map(|k| k.id), Some(3));
        assert_eq!(active_for_site(&keys, 999, 0).map(|k| k.id), None);
        assert_eq!(active_for_site(&keys, 5, 2_000_000_000).map(|k| k.id), None);
    }

    #[test]
    fn envelopes_open_with_the_operator_parser() {
        let keys = load(&tree()).expect("sample keys");
        let key = active_for_site(&keys, 999, 2_000_000_000).expect("active");
        let envelope = seal_envelope(key, b"[1,2,3]", &OsEntropy);
        let inline = json!({"cloud_encryption_keys": keys.iter().map(CloudKey::to_json).collect::<Vec<_>>()});
        let store = CloudKeyStore::parse_inline(inline.to_string().as_bytes()).expect("operator parses");
        assert_eq!(
            decrypt_store_file("test", &envelope, &store).expect("opens"),
            b"[1,2,3]"
        );
    }
}
