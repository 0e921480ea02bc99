//! The per-attempt RSA key pair.
//!
//! Core's token is encrypted to this key with PKCS#1 v1.5 (the reference's
//! `RSA/ECB/PKCS1Padding`, not OAEP). The public key travels as X.509 SubjectPublicKeyInfo DER,
//! base64 in the request. A key is used for one attempt and dropped; the private key never leaves
//! this type and never prints.

use rsa::pkcs8::EncodePublicKey;
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey, RsaPublicKey};
use zeroize::Zeroizing;

/// Key generation or decryption failed; carries no key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("RSA key generation failed")]
    Generate,
    #[error("public key encoding failed")]
    Encode,
    #[error("attestation token decryption failed")]
    Decrypt,
}

/// A fresh RSA-2048 key pair (public exponent 65537) for one attestation attempt.
pub struct AttestationKey {
    private: RsaPrivateKey,
    public_der: Vec<u8>,
}

impl AttestationKey {
    pub const BITS: usize = 2048;

    pub fn generate() -> Result<Self, KeyError> {
        let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, Self::BITS).map_err(|_| KeyError::Generate)?;
        let public_der = RsaPublicKey::from(&private)
            .to_public_key_der()
            .map_err(|_| KeyError::Encode)?
            .as_bytes()
            .to_vec();
        Ok(Self { private, public_der })
    }

    /// X.509 SubjectPublicKeyInfo DER of the public key.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    /// Decrypts what Core encrypted to this key (PKCS#1 v1.5).
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.private
            .decrypt(Pkcs1v15Encrypt, ciphertext)
            .map(Zeroizing::new)
            .map_err(|_| KeyError::Decrypt)
    }
}

impl std::fmt::Debug for AttestationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AttestationKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::DecodePublicKey;

    #[test]
    fn public_key_is_spki_and_decrypts_pkcs1_v15() {
        let key = AttestationKey::generate().expect("key generation");
        let public = RsaPublicKey::from_public_key_der(key.public_key_der()).expect("SPKI DER");
        let ciphertext = public
            .encrypt(&mut rand::rngs::OsRng, Pkcs1v15Encrypt, b"token,123,-5")
            .expect("encrypts");
        assert_eq!(key.decrypt(&ciphertext).expect("decrypts").as_slice(), b"token,123,-5");
        assert_eq!(key.decrypt(&ciphertext[1..]), Err(KeyError::Decrypt));
        assert_eq!(format!("{key:?}"), "AttestationKey(..)");
    }

    /// The private key never leaves this type: no method returns it or encodes it (no PKCS#1 or
    /// PKCS#8 encoder, PEM or DER, no serde), the field is private to this module, `Debug` shows
    /// nothing of it, and the rsa crate wipes it when the (single-attempt) key drops.
    #[test]
    fn the_private_key_never_leaves_memory() {
        fn zeroizes_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        zeroizes_on_drop::<RsaPrivateKey>();

        let source = include_str!("key.rs");
        let code = source.split("#[cfg(test)]").next().unwrap_or_default();
        for encoder in [
            "EncodePrivateKey",
            "EncodeRsaPrivateKey",
            "to_pkcs8",
            "to_pkcs1",
            "_pem",
            "_der_file",
            "Serialize",
            "pub private",
            "fn private",
        ] {
            assert!(!code.contains(encoder), "key.rs names {encoder:?} outside its tests");
        }

        use rsa::traits::PrivateKeyParts;
        let key = AttestationKey::generate().expect("key generation");
        let d = key.private.d().to_bytes_be();
        let prime = key.private.primes()[0].to_bytes_be();
        let shown = [format!("{key:?}"), format!("{key:#?}"), format!("{:?}", Some(&key))].concat();
        for secret in [&d, &prime] {
            for form in [hex::encode(&secret[..16]), key.private.d().to_string()[..24].to_owned()] {
                assert!(!shown.contains(&form), "Debug shows the private key");
            }
        }
    }

    #[test]
    fn every_attempt_gets_a_new_key() {
        let a = AttestationKey::generate().expect("key");
        let b = AttestationKey::generate().expect("key");
        assert_ne!(a.public_key_der(), b.public_key_der());
    }
}
