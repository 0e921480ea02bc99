//! The symmetric primitives of the protocol and the type that holds key material.
//!
//! - "GCM blob" = `IV(12) ‖ ciphertext ‖ tag(16)`, AES-256-GCM, no AAD except in CSTG.
//! - "CBC blob" = `IV(16) ‖ AES-256-CBC ciphertext` with PKCS#7 padding (legacy V2 tokens).
//! - AES-256-CTR with a 16-byte counter block, used once per raw UID v4.
//!
//! Every key is a [`SecretKey`]: 32 bytes that zeroize on drop, compare in constant time and
//! print as `SecretKey(..)`.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, StreamCipher};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use std::sync::{Arc, OnceLock};

use crate::entropy::Entropy;

pub const GCM_IV_LEN: usize = 12;
pub const GCM_TAG_LEN: usize = 16;
pub const CBC_IV_LEN: usize = 16;

/// A 256-bit AES key.
///
/// Its AES-GCM key schedule is computed on first use and shared by every clone, so a key that
/// lives in a store snapshot (client secrets, keyset keys) is expanded once per snapshot, not once
/// per request, even when a request works on a clone. The schedule zeroizes when its last holder
/// drops (the `aes` and `aes-gcm` crates' `zeroize` features), the key bytes when each holder does.
#[derive(Clone)]
pub struct SecretKey {
    bytes: [u8; 32],
    gcm: Arc<OnceLock<Aes256Gcm>>,
}

impl Zeroize for SecretKey {
    fn zeroize(&mut self) {
        self.bytes.zeroize();
        // Dropping the (last handle to the) schedule zeroizes it.
        self.gcm = Arc::default();
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl ZeroizeOnDrop for SecretKey {}

impl SecretKey {
    pub const LEN: usize = 32;

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            bytes,
            gcm: Arc::default(),
        }
    }

    /// `None` unless `bytes` is exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self::from_bytes)
    }

    /// The AES-256-GCM cipher of this key, expanded once.
    fn gcm(&self) -> &Aes256Gcm {
        self.gcm.get_or_init(|| Aes256Gcm::new((&self.bytes).into()))
    }

    /// Decodes base64 the way the reference does (lenient, see [`crate::base64`]).
    pub fn from_base64(text: &str) -> Option<Self> {
        let mut bytes = crate::base64::decode(text).ok()?;
        let key = Self::from_slice(&bytes);
        bytes.zeroize();
        key
    }

    pub fn generate(entropy: &dyn Entropy) -> Self {
        let mut bytes = [0u8; 32];
        entropy.fill(&mut bytes);
        Self::from_bytes(bytes)
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// Canonical base64, for the few places the wire carries a key (key endpoints, the
    /// `refresh_response_key`).
    pub fn to_base64(&self) -> String {
        crate::base64::encode(&self.bytes)
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes.ct_eq(&other.bytes).into()
    }
}

impl Eq for SecretKey {}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// A failed decryption: wrong key, tampered or truncated input. Deliberately carries nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("decryption failed")]
pub struct DecryptError;

/// Encrypts with a fresh IV from `entropy`, returning the GCM blob.
pub fn gcm_seal(key: &SecretKey, plaintext: &[u8], aad: &[u8], entropy: &dyn Entropy) -> Vec<u8> {
    let mut iv = [0u8; GCM_IV_LEN];
    entropy.fill(&mut iv);
    gcm_seal_with_iv(key, &iv, plaintext, aad)
}

/// [`gcm_seal`] of the concatenation of `parts` (see [`gcm_seal_parts`]).
pub fn gcm_seal_concat(key: &SecretKey, parts: &[&[u8]], aad: &[u8], entropy: &dyn Entropy) -> Vec<u8> {
    let mut iv = [0u8; GCM_IV_LEN];
    entropy.fill(&mut iv);
    gcm_seal_parts(key, &iv, parts, aad)
}

/// Encrypts with the given IV, returning `IV ‖ ciphertext ‖ tag`.
pub fn gcm_seal_with_iv(key: &SecretKey, iv: &[u8; GCM_IV_LEN], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    gcm_seal_parts(key, iv, &[plaintext], aad)
}

/// [`gcm_seal_with_iv`] of the concatenation of `parts`, encrypted in place in the one buffer it
/// returns (an identity map answer is hundreds of kilobytes; no intermediate copies).
pub fn gcm_seal_parts(key: &SecretKey, iv: &[u8; GCM_IV_LEN], parts: &[&[u8]], aad: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::AeadInPlace;
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(GCM_IV_LEN + len + GCM_TAG_LEN);
    out.extend_from_slice(iv);
    for part in parts {
        out.extend_from_slice(part);
    }
    // Only fails for plaintexts beyond 64 GiB, which no caller can produce.
    match key
        .gcm()
        .encrypt_in_place_detached(Nonce::from_slice(iv), aad, &mut out[GCM_IV_LEN..])
    {
        Ok(tag) => out.extend_from_slice(&tag),
        Err(_) => out.clear(),
    }
    out
}

/// Opens a GCM blob (`IV ‖ ciphertext ‖ tag`).
pub fn gcm_open(key: &SecretKey, blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, DecryptError> {
    if blob.len() < GCM_IV_LEN + GCM_TAG_LEN {
        return Err(DecryptError);
    }
    let (iv, sealed) = blob.split_at(GCM_IV_LEN);
    gcm_open_parts(key, iv, sealed, aad)
}

/// Opens `ciphertext ‖ tag` with a separately carried IV (CSTG sends them apart).
pub fn gcm_open_parts(key: &SecretKey, iv: &[u8], sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, DecryptError> {
    if iv.len() != GCM_IV_LEN || sealed.len() < GCM_TAG_LEN {
        return Err(DecryptError);
    }
    key.gcm()
        .decrypt(Nonce::from_slice(iv), Payload { msg: sealed, aad })
        .map_err(|_| DecryptError)
}

type CbcEnc = cbc::Encryptor<aes::Aes256>;
type CbcDec = cbc::Decryptor<aes::Aes256>;

/// Encrypts with the given IV, returning `IV ‖ ciphertext` (PKCS#7). Legacy V2 formats only.
pub fn cbc_seal_with_iv(key: &SecretKey, iv: &[u8; CBC_IV_LEN], plaintext: &[u8]) -> Vec<u8> {
    let ct = CbcEnc::new(key.expose().into(), iv.into())
        .encrypt_padded_vec_mut::<aes::cipher::block_padding::Pkcs7>(plaintext);
    let mut out = Vec::with_capacity(CBC_IV_LEN + ct.len());
    out.extend_from_slice(iv);
    out.extend_from_slice(&ct);
    out
}

/// Opens a CBC blob (`IV ‖ ciphertext`, PKCS#7).
pub fn cbc_open(key: &SecretKey, blob: &[u8]) -> Result<Vec<u8>, DecryptError> {
    if blob.len() < CBC_IV_LEN * 2 || (blob.len() - CBC_IV_LEN) % CBC_IV_LEN != 0 {
        return Err(DecryptError);
    }
    let (iv, ct) = blob.split_at(CBC_IV_LEN);
    CbcDec::new(key.expose().into(), iv.into())
        .decrypt_padded_vec_mut::<aes::cipher::block_padding::Pkcs7>(ct)
        .map_err(|_| DecryptError)
}

/// AES-CTR over `data` in place with a big-endian 128-bit counter starting at `counter_block`.
/// The key length picks AES-128/192/256, as Java's `SecretKeySpec` does; any other length is an
/// error.
pub fn ctr_apply(key: &[u8], counter_block: &[u8; 16], data: &mut [u8]) -> Result<(), InvalidKeyLength> {
    fn run<C: KeyIvInit + StreamCipher>(key: &[u8], block: &[u8; 16], data: &mut [u8]) -> Result<(), InvalidKeyLength> {
        let mut cipher = C::new_from_slices(key, block).map_err(|_| InvalidKeyLength)?;
        cipher.apply_keystream(data);
        Ok(())
    }
    match key.len() {
        // CTR only encrypts: the encrypt-only ciphers skip the decryption key schedule, which a
        // per-bucket key (raw UID v4) would otherwise pay on every identity.
        16 => run::<ctr::Ctr128BE<aes::Aes128Enc>>(key, counter_block, data),
        24 => run::<ctr::Ctr128BE<aes::Aes192Enc>>(key, counter_block, data),
        32 => run::<ctr::Ctr128BE<aes::Aes256Enc>>(key, counter_block, data),
        _ => Err(InvalidKeyLength),
    }
}

/// A key whose length is not an AES key length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("key length is not 16, 24 or 32 bytes")]
pub struct InvalidKeyLength;

pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut digest = Sha256::new();
    for part in parts {
        digest.update(part);
    }
    digest.finalize().into()
}

pub fn sha512(parts: &[&[u8]]) -> [u8; 64] {
    let mut digest = Sha512::new();
    for part in parts {
        digest.update(part);
    }
    digest.finalize().into()
}

/// Constant-time equality for secrets and digests we compare ourselves.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The forms a key's bytes could take in a log: base64, hex, and Rust's `{:?}` of the array.
    fn printed_forms(bytes: &[u8]) -> Vec<String> {
        let decimal: Vec<String> = bytes.iter().take(6).map(u8::to_string).collect();
        vec![
            crate::base64::encode(bytes),
            hex::encode(bytes),
            hex::encode_upper(bytes),
            format!("[{}", decimal.join(", ")),
        ]
    }

    #[test]
    fn secret_keys_print_nothing_of_their_bytes_and_zeroize() {
        fn zeroizes_on_drop<T: ZeroizeOnDrop>() {}
        zeroizes_on_drop::<SecretKey>();
        let bytes: [u8; 32] = std::array::from_fn(|i| 0xA0 ^ (i as u8 * 7));
        let key = SecretKey::from_bytes(bytes);
        let _ = gcm_seal_with_iv(&key, &[0; 12], b"expand the schedule", b"");
        for shown in [
            format!("{key:?}"),
            format!("{key:#?}"),
            format!("{:?}", Some(key.clone())),
        ] {
            for form in printed_forms(&bytes) {
                assert!(!shown.contains(&form), "{shown} shows the key as {form}");
            }
        }
        assert_eq!(format!("{key:?}"), "SecretKey(..)");
        let mut wiped = key.clone();
        wiped.zeroize();
        assert_eq!(wiped.expose(), &[0; 32]);
        assert!(wiped.gcm.get().is_none(), "the schedule handle is gone");
        assert_eq!(key.expose(), &bytes, "wiping a clone leaves the original");
    }

    #[test]
    fn clones_share_one_key_schedule() {
        let key = SecretKey::from_bytes([7; 32]);
        let copy = key.clone();
        let sealed = gcm_seal_with_iv(&copy, &[1; 12], b"text", b"");
        assert!(
            key.gcm.get().is_some(),
            "expanded through the clone, visible to the original"
        );
        assert!(Arc::ptr_eq(&key.gcm, &copy.gcm));
        assert_eq!(gcm_open(&key, &sealed, b"").expect("opens"), b"text");
        let mut wiped = key.clone();
        wiped.zeroize();
        assert_eq!(wiped.expose(), &[0; 32]);
        assert!(wiped.gcm.get().is_none(), "a zeroized key drops its schedule");
        assert!(gcm_open(&wiped, &sealed, b"").is_err());
    }

    #[test]
    fn sealing_parts_equals_sealing_their_concatenation() {
        let key = SecretKey::from_bytes([9; 32]);
        let whole = gcm_seal_with_iv(&key, &[3; 12], b"abcdef", b"aad");
        assert_eq!(gcm_seal_parts(&key, &[3; 12], &[b"ab", b"", b"cdef"], b"aad"), whole);
    }

    fn key(hex_key: &str) -> SecretKey {
        SecretKey::from_slice(&hex::decode(hex_key).expect("hex")).expect("32 bytes")
    }

    #[test]
    fn gcm_vector_from_uid2_shared() {
        let k = key("1397b1640b26a3647b6f44c743f4df0ecb88be8c1e0985cedc494f554eee2a94");
        let blob =
            hex::decode("fe2393ff854b6f5d5300f59fbbf65852c2534cb5cd2d576626756254b29cfe9dfd875e174b5414").expect("hex");
        assert_eq!(gcm_open(&k, &blob, &[]).expect("opens"), b"hello world");
        let iv: [u8; 12] = blob[..12].try_into().expect("12");
        assert_eq!(gcm_seal_with_iv(&k, &iv, b"hello world", &[]), blob);
    }

    #[test]
    fn gcm_rejects_tampering_and_truncation() {
        let k = key("1397b1640b26a3647b6f44c743f4df0ecb88be8c1e0985cedc494f554eee2a94");
        let mut blob =
            hex::decode("fe2393ff854b6f5d5300f59fbbf65852c2534cb5cd2d576626756254b29cfe9dfd875e174b5414").expect("hex");
        blob[20] ^= 1;
        assert_eq!(gcm_open(&k, &blob, &[]), Err(DecryptError));
        assert_eq!(gcm_open(&k, &blob[..27], &[]), Err(DecryptError));
        assert_eq!(gcm_open(&k, &[], &[]), Err(DecryptError));
    }

    #[test]
    fn cbc_vector_from_uid2_shared() {
        let k = key("aebebd8e57189452b3700950762742dd3bafb8af1ed77165b44f77b73bd9004b");
        let blob = hex::decode(
            "22d69d446e312d390b404ad556b721839c02e5266761ef8d8c0a66d7ddcb223cd43b6518f209c8b956e1d4b584b33aec031ad95f641892642219fc29a3fdadd45bff221953c62a8c33905b4708e71a29",
        )
        .expect("hex");
        let plain = b"foo@bar.comasdadsjahjhafjhjkfhakjhfkjshdkjfhaskdjfh";
        assert_eq!(cbc_open(&k, &blob).expect("opens"), plain);
        let iv: [u8; 16] = blob[..16].try_into().expect("16");
        assert_eq!(cbc_seal_with_iv(&k, &iv, plain), blob);
    }

    #[test]
    fn cbc_rejects_bad_lengths_without_panicking() {
        let k = SecretKey::from_bytes([7; 32]);
        for len in [0, 15, 16, 17, 31, 33] {
            assert!(cbc_open(&k, &vec![0u8; len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn secret_key_never_prints_its_bytes() {
        let k = SecretKey::from_bytes([0xAB; 32]);
        let shown = format!("{k:?}");
        assert_eq!(shown, "SecretKey(..)");
    }
}
