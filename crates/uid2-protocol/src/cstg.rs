//! Client-side token generation (CSTG): the ECDH + AES-GCM envelope of
//! `/v2/token/client-generate`.
//!
//! A browser or app holds the site's *public* key (`UID2-X-L-…`), makes an ephemeral P-256 key
//! pair, and sends its public key with a payload sealed under the ECDH shared secret. The secret is
//! the raw 32-byte X coordinate used directly as the AES-256 key, with no KDF. The payload's AAD is
//! the compact JSON array `[timestamp]` or `[timestamp,"app_name"]`; the response is a GCM blob of
//! the JSON with no timestamp or nonce.

use p256::ecdh::diffie_hellman;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use p256::{PublicKey, SecretKey as EcSecretKey};
use zeroize::Zeroizing;

use crate::crypto::{gcm_open_parts, gcm_seal, gcm_seal_with_iv, DecryptError, SecretKey, GCM_IV_LEN};
use crate::entropy::Entropy;

/// Length of the `UID2-X-L-` / `UID2-Y-L-` style prefix on stored key strings.
pub const KEY_PREFIX_LEN: usize = 9;

/// The private half of a site's CSTG key pair, as stored in `client_side_keypairs`.
pub struct ServerKey {
    secret: EcSecretKey,
}

/// A stored key string that is not prefix + base64 DER of a P-256 key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("key is not a prefixed base64 P-256 key")]
pub struct KeyFormatError;

/// The client's `public_key` is not a base64 X.509 P-256 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bad public key")]
pub struct BadPublicKey;

impl ServerKey {
    /// Parses `<9-char prefix><base64 PKCS#8 DER>`. The decoded DER holds the private scalar:
    /// it is wiped once parsed (the key itself zeroizes on drop).
    pub fn from_prefixed_pkcs8(text: &str) -> Result<Self, KeyFormatError> {
        let body = text.get(KEY_PREFIX_LEN..).ok_or(KeyFormatError)?;
        let der = Zeroizing::new(crate::base64::decode(body).map_err(|_| KeyFormatError)?);
        let secret = EcSecretKey::from_pkcs8_der(&der).map_err(|_| KeyFormatError)?;
        Ok(Self { secret })
    }

    /// The ECDH shared secret with a client's base64 SPKI public key.
    pub fn shared_secret(&self, client_public_key_b64: &str) -> Result<SecretKey, BadPublicKey> {
        let der = crate::base64::decode(client_public_key_b64).map_err(|_| BadPublicKey)?;
        let public = PublicKey::from_public_key_der(&der).map_err(|_| BadPublicKey)?;
        let shared = diffie_hellman(self.secret.to_nonzero_scalar(), public.as_affine());
        SecretKey::from_slice(shared.raw_secret_bytes()).ok_or(BadPublicKey)
    }

    /// The public key as base64 SPKI DER (without prefix).
    pub fn public_key_b64(&self) -> String {
        spki_b64(&self.secret.public_key())
    }
}

/// Checks a stored public key string, `<9-char prefix><base64 X.509 SPKI of a P-256 key>`. The
/// reference parses it when it loads the keypairs store and rejects the file if it does not parse.
pub fn check_prefixed_spki(text: &str) -> Result<(), KeyFormatError> {
    let body = text.get(KEY_PREFIX_LEN..).ok_or(KeyFormatError)?;
    let der = crate::base64::decode(body).map_err(|_| KeyFormatError)?;
    PublicKey::from_public_key_der(&der)
        .map(|_| ())
        .map_err(|_| KeyFormatError)
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(..)")
    }
}

fn spki_b64(public: &PublicKey) -> String {
    public
        .to_public_key_der()
        .map(|der| crate::base64::encode(der.as_bytes()))
        .unwrap_or_default()
}

/// The additional authenticated data: the compact JSON array `[timestamp]` or
/// `[timestamp,"app_name"]`, byte for byte what `JSON.stringify` produces.
pub fn aad(timestamp: i64, app_name: Option<&str>) -> Vec<u8> {
    match app_name {
        Some(name) => {
            let quoted = serde_json::to_string(name).unwrap_or_else(|_| "\"\"".to_owned());
            format!("[{timestamp},{quoted}]").into_bytes()
        }
        None => format!("[{timestamp}]").into_bytes(),
    }
}

/// Opens the request payload (`ciphertext ‖ tag`, IV carried separately).
pub fn open_payload(secret: &SecretKey, iv: &[u8], payload: &[u8], aad: &[u8]) -> Result<Vec<u8>, DecryptError> {
    gcm_open_parts(secret, iv, payload, aad)
}

/// Seals the response JSON: `IV ‖ ciphertext ‖ tag`, no AAD, no timestamp or nonce.
pub fn seal_response(secret: &SecretKey, json: &[u8], entropy: &dyn Entropy) -> Vec<u8> {
    gcm_seal(secret, json, &[], entropy)
}

/// The browser's side of the exchange, for tests, benchmarks and the local tools.
pub mod client {
    use super::*;

    /// An ephemeral client key pair.
    pub struct ClientKey {
        secret: EcSecretKey,
    }

    impl ClientKey {
        pub fn generate() -> Self {
            Self {
                secret: EcSecretKey::random(&mut rand::rngs::OsRng),
            }
        }

        /// From a fixed big-endian scalar, for known-answer tests.
        pub fn from_scalar(bytes: &[u8; 32]) -> Option<Self> {
            EcSecretKey::from_slice(bytes).ok().map(|secret| Self { secret })
        }

        pub fn public_key_b64(&self) -> String {
            spki_b64(&self.secret.public_key())
        }

        /// ECDH with the site's public key (`<9-char prefix><base64 SPKI>`).
        pub fn shared_secret(&self, server_public_prefixed: &str) -> Option<SecretKey> {
            let body = server_public_prefixed.get(KEY_PREFIX_LEN..)?;
            let der = crate::base64::decode(body).ok()?;
            let public = PublicKey::from_public_key_der(&der).ok()?;
            let shared = diffie_hellman(self.secret.to_nonzero_scalar(), public.as_affine());
            SecretKey::from_slice(shared.raw_secret_bytes())
        }
    }

    /// Seals a request payload; returns `ciphertext ‖ tag` (the IV is sent on its own).
    pub fn seal_payload(secret: &SecretKey, iv: &[u8; GCM_IV_LEN], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let blob = gcm_seal_with_iv(secret, iv, plaintext, aad);
        blob.get(GCM_IV_LEN..).map(<[u8]>::to_vec).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::client::{seal_payload, ClientKey};
    use super::*;

    const SERVER_PUBLIC: &str = "UID2-X-L-MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsziOqRXZ7II0uJusaMxxCxlxgj8el/MUYLFMtWfB71Q3G1juyrAnzyqruNiPPnIuTETfFOridglP9UQNlwzNQg==";
    const SERVER_PRIVATE: &str =
        "UID2-Y-L-MEECAQAwEwYHKoZIzj0CAQYIKoZIzj0DAQcEJzAlAgEBBCBop1Dw/IwDcstgicr/3tDoyR3OIpgAWgw8mD6oTO+1ug==";
    const CLIENT_SCALAR: &str = "1122334455667788990011223344556677889900112233445566778899001122";
    const CLIENT_PUBLIC: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZBPjcDGKkizs+qlLohiN1Bn1hjVvp3THZs1sRQKV/uldzpzgVXsKjxzvXGY/Niz//JEOMJSvyCu7x6CpKwtr2w==";
    const SHARED: &str = "87f7c11dfdf603df2b6082738ee0d8b69b494479fb2ee3685715f88a8dc26ee3";
    const PAYLOAD: &str =
        "KFMCpFYsmnsxqAOtnz/dWtwQxLWW9HpYGbD1k1fhCZzzq0KzjrV8lFQIEUqU5C5JsXMde+KOqPHhnn49VGdPMMtGU05lvLhHFFLSNL8=";
    const PLAINTEXT: &str = r#"{"email_hash":"tMmiiTI7IaAcPpQPFQ65uMVCWH8av9jw4cwf/F5HVRQ="}"#;

    fn client() -> ClientKey {
        let scalar: [u8; 32] = hex::decode(CLIENT_SCALAR).expect("hex").try_into().expect("32");
        ClientKey::from_scalar(&scalar).expect("valid scalar")
    }

    #[test]
    fn derived_vector_both_sides() {
        let server = ServerKey::from_prefixed_pkcs8(SERVER_PRIVATE).expect("reference key parses");
        assert_eq!(format!("UID2-X-L-{}", server.public_key_b64()), SERVER_PUBLIC);
        let client = client();
        assert_eq!(client.public_key_b64(), CLIENT_PUBLIC);

        let from_server = server.shared_secret(CLIENT_PUBLIC).expect("valid public key");
        let from_client = client.shared_secret(SERVER_PUBLIC).expect("valid public key");
        assert_eq!(hex::encode(from_server.expose()), SHARED);
        assert_eq!(from_server, from_client);

        let iv = crate::base64::decode("AAECAwQFBgcICQoL").expect("b64");
        let aad = aad(1_700_000_000_000, None);
        assert_eq!(aad, b"[1700000000000]");
        let payload = crate::base64::decode(PAYLOAD).expect("b64");
        let opened = open_payload(&from_server, &iv, &payload, &aad).expect("opens");
        assert_eq!(opened, PLAINTEXT.as_bytes());

        let iv: [u8; 12] = iv.try_into().expect("12");
        assert_eq!(
            crate::base64::encode(&seal_payload(&from_client, &iv, PLAINTEXT.as_bytes(), &aad)),
            PAYLOAD
        );
    }

    #[test]
    fn aad_binds_timestamp_and_app_name() {
        assert_eq!(aad(0, Some("com.uid2.devapp")), br#"[0,"com.uid2.devapp"]"#);
        assert_eq!(aad(-5, Some("a\"b")), br#"[-5,"a\"b"]"#);
        let server = ServerKey::from_prefixed_pkcs8(SERVER_PRIVATE).expect("parses");
        let secret = server.shared_secret(CLIENT_PUBLIC).expect("valid");
        let iv = crate::base64::decode("AAECAwQFBgcICQoL").expect("b64");
        let payload = crate::base64::decode(PAYLOAD).expect("b64");
        assert!(open_payload(&secret, &iv, &payload, &aad(1_700_000_000_001, None)).is_err());
        assert!(open_payload(&secret, &iv[..11], &payload, &aad(1_700_000_000_000, None)).is_err());
    }

    #[test]
    fn malformed_keys_are_errors() {
        assert!(ServerKey::from_prefixed_pkcs8("").is_err());
        assert!(ServerKey::from_prefixed_pkcs8("UID2-Y-L-not base64").is_err());
        assert!(ServerKey::from_prefixed_pkcs8("UID2-Y-L-AAAA").is_err());
        let server = ServerKey::from_prefixed_pkcs8(SERVER_PRIVATE).expect("parses");
        assert_eq!(server.shared_secret("AAAA").err(), Some(BadPublicKey));
        assert_eq!(server.shared_secret("%%%").err(), Some(BadPublicKey));
        assert_eq!(format!("{server:?}"), "ServerKey(..)");
    }

    #[test]
    fn the_private_key_zeroizes_and_never_prints() {
        fn zeroizes_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        zeroizes_on_drop::<EcSecretKey>();
        let server = ServerKey::from_prefixed_pkcs8(SERVER_PRIVATE).expect("parses");
        let scalar = server.secret.to_bytes();
        let decimal: Vec<String> = scalar.iter().take(6).map(u8::to_string).collect();
        let body = &SERVER_PRIVATE[KEY_PREFIX_LEN..];
        for shown in [format!("{server:?}"), format!("{server:#?}")] {
            for form in [
                hex::encode(scalar),
                crate::base64::encode(&scalar),
                format!("[{}", decimal.join(", ")),
                body[body.len() - 24..].to_owned(),
            ] {
                assert!(!shown.contains(&form), "{shown} shows the private key");
            }
        }
    }

    #[test]
    fn stored_public_keys_are_checked() {
        assert_eq!(check_prefixed_spki(SERVER_PUBLIC), Ok(()));
        assert!(check_prefixed_spki("UID2-X-L-").is_err());
        assert!(check_prefixed_spki("UID2-X").is_err());
        assert!(check_prefixed_spki(&format!("UID2-X-L-{}", &SERVER_PUBLIC[9..40])).is_err());
        // A private key is not a public key.
        assert!(check_prefixed_spki(SERVER_PRIVATE).is_err());
    }
}
