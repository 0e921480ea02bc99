//! RS256 JSON Web Tokens (RFC 7515/7519, compact form): signing for the MAA simulator and
//! verification for Core's `azure-sgx` verifier.
//!
//! Verification takes the key from the caller — never from the token's own `jku` or `x5c` — and
//! accepts `alg: RS256` only, so a token cannot pick its own key or downgrade to `none`.

use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::Value;
use sha2::Sha256;
use uid2_protocol::base64;

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("not a compact JWT (three base64url parts)")]
    Shape,
    #[error("the JWT header or claims are not a JSON object")]
    Json,
    #[error("the JWT algorithm is not RS256")]
    Algorithm,
    #[error("the JWT signature does not verify")]
    Signature,
}

/// A token split into its parts, signature not yet checked.
#[derive(Debug, Clone)]
pub struct Unverified {
    pub header: serde_json::Map<String, Value>,
    pub claims: serde_json::Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

impl Unverified {
    pub fn parse(token: &str) -> Result<Self, JwtError> {
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Shape);
        };
        let object = |part: &str| -> Result<serde_json::Map<String, Value>, JwtError> {
            let bytes = base64::decode_url(part).map_err(|_| JwtError::Shape)?;
            match serde_json::from_slice(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                _ => Err(JwtError::Json),
            }
        };
        let parsed = Self {
            header: object(header)?,
            claims: object(claims)?,
            signing_input: format!("{header}.{claims}"),
            signature: base64::decode_url(signature).map_err(|_| JwtError::Shape)?,
        };
        if parsed.header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(JwtError::Algorithm);
        }
        Ok(parsed)
    }

    /// The header's `kid`, if any.
    pub fn key_id(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// Checks the RS256 signature with `key`; on success, the claims.
    pub fn verify(self, key: &RsaPublicKey) -> Result<serde_json::Map<String, Value>, JwtError> {
        let signature = Signature::try_from(self.signature.as_slice()).map_err(|_| JwtError::Signature)?;
        VerifyingKey::<Sha256>::new(key.clone())
            .verify(self.signing_input.as_bytes(), &signature)
            .map_err(|_| JwtError::Signature)?;
        Ok(self.claims)
    }
}

/// `header.claims.signature`, RS256 with `key`.
pub fn sign(header: &Value, claims: &Value, key: &RsaPrivateKey) -> String {
    let input = format!(
        "{}.{}",
        base64::encode_url(header.to_string().as_bytes()),
        base64::encode_url(claims.to_string().as_bytes())
    );
    let signature = SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
    format!("{input}.{}", base64::encode_url(&signature.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::DecodePrivateKey;
    use serde_json::json;

    fn key(name: &str) -> RsaPrivateKey {
        let path = format!("{}/../../testdata/local-core/{name}", env!("CARGO_MANIFEST_DIR"));
        RsaPrivateKey::from_pkcs8_pem(&std::fs::read_to_string(path).expect("key file")).expect("PKCS#8")
    }

    #[test]
    fn signed_tokens_verify_with_their_key_only() {
        let signer = key("test-maa-signing-rsa-2048.pem");
        let other = key("test-operator-rsa-2048.pem");
        let token = sign(&json!({"alg": "RS256", "kid": "k1"}), &json!({"x": 1}), &signer);
        let parsed = Unverified::parse(&token).expect("parses");
        assert_eq!(parsed.key_id(), Some("k1"));
        assert_eq!(
            parsed.clone().verify(&signer.to_public_key()).expect("verifies")["x"],
            1
        );
        assert_eq!(parsed.verify(&other.to_public_key()).err(), Some(JwtError::Signature));
    }

    #[test]
    fn altered_claims_or_algorithms_are_refused() {
        let signer = key("test-maa-signing-rsa-2048.pem");
        let token = sign(&json!({"alg": "RS256"}), &json!({"x": 1}), &signer);
        let parts: Vec<&str> = token.split('.').collect();
        let forged_claims = base64::encode_url(br#"{"x":2}"#);
        let forged = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
        assert_eq!(
            Unverified::parse(&forged)
                .expect("parses")
                .verify(&signer.to_public_key())
                .err(),
            Some(JwtError::Signature)
        );
        let none_header = base64::encode_url(br#"{"alg":"none"}"#);
        let downgraded = format!("{none_header}.{}.", parts[1]);
        assert_eq!(Unverified::parse(&downgraded).err(), Some(JwtError::Algorithm));
        for bad in ["", "a.b", "a.b.c.d", "!!.e30.AA", "e30.W10.AA"] {
            assert!(Unverified::parse(bad).is_err(), "{bad}");
        }
    }
}
