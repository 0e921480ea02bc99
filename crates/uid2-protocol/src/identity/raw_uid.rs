//! Raw UIDs: the advertising identifier a first-level hash maps to under a salt bucket.
//!
//! - **v2** (32 bytes): `SHA-256(b64(FLH) ‖ bucket salt)`, hashing base64 text with the salt as
//!   text.
//! - **v3** (33 bytes): `[scope<<4 | type<<2] ‖ v2`.
//! - **v4** (33 bytes): for buckets that carry key material instead of a salt, half the FLH is
//!   encrypted with AES-CTR under the bucket key: `metadata ‖ key id (3) ‖ IV (12) ‖ E (16) ‖
//!   checksum`, where the key and salt strings are used as raw bytes, never base64-decoded.

use super::{IdentityEnvironment, IdentityScope, IdentityType};
use crate::crypto::{ctr_apply, sha256, InvalidKeyLength};

/// Raw UID v2.
pub fn v2(flh: &[u8; 32], salt: impl AsRef<[u8]>) -> [u8; 32] {
    let text = crate::base64::encode_small(flh);
    sha256(&[text.as_bytes(), salt.as_ref()])
}

/// A raw UID of any version (32 bytes for v2, 33 for v3 and v4), held inline: identity map
/// answers carry thousands.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawUid {
    bytes: [u8; 33],
    len: u8,
}

impl RawUid {
    pub fn from_v2(v2: [u8; 32]) -> Self {
        let mut bytes = [0u8; 33];
        bytes[..32].copy_from_slice(&v2);
        Self { bytes, len: 32 }
    }

    /// A 33-byte (v3 or v4) raw UID.
    pub fn from_33(bytes: [u8; 33]) -> Self {
        Self { bytes, len: 33 }
    }
}

impl std::ops::Deref for RawUid {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for RawUid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawUid(..)")
    }
}

/// The one-byte prefix of a raw UID v3: scope and type, no version bit.
pub fn v3_prefix(scope: IdentityScope, id_type: IdentityType) -> u8 {
    (scope.bit() << 4) | (id_type.bits() << 2)
}

/// Raw UID v3: the v2 digest behind a scope/type byte.
pub fn v3(scope: IdentityScope, id_type: IdentityType, v2: &[u8; 32]) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[0] = v3_prefix(scope, id_type);
    out[1..].copy_from_slice(v2);
    out
}

/// The metadata byte of a raw UID v4: `env<<6 | 1<<5 | scope<<4 | type<<2`.
pub fn v4_metadata(scope: IdentityScope, id_type: IdentityType, env: IdentityEnvironment) -> u8 {
    (env.bits() << 6) | (1 << 5) | (scope.bit() << 4) | (id_type.bits() << 2)
}

/// Key material of a v4 bucket, as the salt file carries it.
#[derive(Clone, Copy)]
pub struct BucketKey<'a> {
    pub id: i32,
    /// Used as the AES key: its UTF-8 bytes (32 for AES-256).
    pub key: &'a str,
    /// Used as raw bytes in the IV derivation.
    pub salt: &'a str,
}

impl std::fmt::Debug for BucketKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Raw UID v4. Fails only if the bucket key is not an AES key length, which the store rejects
/// when it loads a salt file.
pub fn v4(
    scope: IdentityScope,
    id_type: IdentityType,
    env: IdentityEnvironment,
    flh: &[u8; 32],
    key: BucketKey<'_>,
) -> Result<[u8; 33], InvalidKeyLength> {
    let metadata = v4_metadata(scope, id_type, env);
    let [_, k0, k1, k2] = key.id.to_be_bytes();
    let key_id = [k0, k1, k2];
    let mut last16 = [0u8; 16];
    last16.copy_from_slice(&flh[16..]);

    let digest = sha256(&[key.salt.as_bytes(), &last16, &[metadata], &key_id]);
    let mut counter = [0u8; 16];
    counter[..12].copy_from_slice(&digest[..12]);
    ctr_apply(key.key.as_bytes(), &counter, &mut last16)?;

    let mut out = [0u8; 33];
    out[0] = metadata;
    out[1..4].copy_from_slice(&key_id);
    out[4..16].copy_from_slice(&digest[..12]);
    out[16..32].copy_from_slice(&last16);
    out[32] = out[..32].iter().fold(0u8, |acc, b| acc ^ b);
    Ok(out)
}
