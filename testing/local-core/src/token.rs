//! The attestation token: what `/attest` hands out and every later Core/OptOut call presents in
//! `Attestation-Token`.
//!
//! Plaintext `"<operator key>,<expires epoch s>,<random i64 nonce>"`, sealed with AES-256-GCM
//! (random 12-byte IV, no AAD) under PBKDF2-HMAC-SHA256(`att_token_enc_key`, UTF-8
//! `att_token_enc_salt`, 65 536 iterations, 32 bytes), encoded `b64(ct‖tag) "-" b64(iv) "-g"`.
//! The token is opaque to the operator; only this service opens it. The key is derived once per
//! service (PBKDF2 at 65 536 rounds is slow on purpose) and a token never appears in logs.

use uid2_protocol::crypto::{ct_eq, gcm_open_parts, gcm_seal, SecretKey, GCM_IV_LEN};
use uid2_protocol::entropy::Entropy;
use zeroize::Zeroizing;

/// PBKDF2 rounds Core uses for the token key.
pub const PBKDF2_ROUNDS: u32 = 65_536;

/// Built-in test secrets; a real Core has its own.
pub const DEFAULT_ENC_KEY: &str = "uid2-local-core-att-token-enc-key";
pub const DEFAULT_ENC_SALT: &str = "uid2-local-core-att-token-enc-salt";

/// Why a presented token was refused. Deliberately carries no token content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is not <b64>-<b64>-g")]
    Format,
    #[error("token does not decrypt")]
    Decrypt,
    #[error("token plaintext is not <key>,<expiry>,<nonce>")]
    Plaintext,
    #[error("token belongs to another operator key")]
    WrongKey,
    #[error("token expired")]
    Expired,
}

/// The key that seals and opens attestation tokens.
#[derive(Debug, Clone)]
pub struct TokenCipher {
    key: SecretKey,
}

/// A token's content once opened.
pub struct OpenedToken {
    pub operator_key: Zeroizing<String>,
    /// Epoch seconds.
    pub expires_at: i64,
    pub nonce: i64,
}

impl std::fmt::Debug for OpenedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl TokenCipher {
    /// PBKDF2-HMAC-SHA256(password, UTF-8 salt, 65 536 rounds) → the AES-256 key.
    pub fn derive(password: &str, salt: &str) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt.as_bytes(), PBKDF2_ROUNDS, bytes.as_mut());
        Self {
            key: SecretKey::from_bytes(*bytes),
        }
    }

    /// Seals a token for `operator_key` that expires at `expires_at` (epoch seconds).
    pub fn seal(&self, operator_key: &str, expires_at: i64, nonce: i64, entropy: &dyn Entropy) -> String {
        let plaintext = Zeroizing::new(format!("{operator_key},{expires_at},{nonce}"));
        let blob = gcm_seal(&self.key, plaintext.as_bytes(), &[], entropy);
        // gcm_seal returns IV ‖ ct ‖ tag; the token carries them the other way round.
        let (iv, sealed) = blob.split_at(GCM_IV_LEN.min(blob.len()));
        format!(
            "{}-{}-g",
            uid2_protocol::base64::encode(sealed),
            uid2_protocol::base64::encode(iv)
        )
    }

    /// Opens a token without judging it.
    pub fn open(&self, token: &str) -> Result<OpenedToken, TokenError> {
        let mut parts = token.split('-');
        let (Some(sealed), Some(iv), Some("g"), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Format);
        };
        let sealed = uid2_protocol::base64::decode(sealed).map_err(|_| TokenError::Format)?;
        let iv = uid2_protocol::base64::decode(iv).map_err(|_| TokenError::Format)?;
        let plaintext = Zeroizing::new(gcm_open_parts(&self.key, &iv, &sealed, &[]).map_err(|_| TokenError::Decrypt)?);
        let text = std::str::from_utf8(&plaintext).map_err(|_| TokenError::Plaintext)?;
        // The key comes first and could in principle contain a comma; the last two fields cannot.
        let mut fields = text.rsplitn(3, ',');
        let (Some(nonce), Some(expires_at), Some(operator_key)) = (fields.next(), fields.next(), fields.next()) else {
            return Err(TokenError::Plaintext);
        };
        Ok(OpenedToken {
            operator_key: Zeroizing::new(operator_key.to_owned()),
            expires_at: expires_at.parse().map_err(|_| TokenError::Plaintext)?,
            nonce: nonce.parse().map_err(|_| TokenError::Plaintext)?,
        })
    }

    /// Core's check: the token opens, names `bearer_key`, and `now_s < expires_at`.
    pub fn validate(&self, token: &str, bearer_key: &str, now_s: i64) -> Result<OpenedToken, TokenError> {
        let opened = self.open(token)?;
        if !ct_eq(opened.operator_key.as_bytes(), bearer_key.as_bytes()) {
            return Err(TokenError::WrongKey);
        }
        if now_s >= opened.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uid2_protocol::entropy::OsEntropy;

    #[test]
    fn seal_open_validate() {
        let cipher = TokenCipher::derive("k", "s");
        let token = cipher.seal("UID2-O-L-1-abcdef.x", 2_000, -42, &OsEntropy);
        let parts: Vec<&str> = token.split('-').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "g");
        assert_eq!(uid2_protocol::base64::decode(parts[1]).map(|iv| iv.len()), Ok(12));

        let opened = cipher.validate(&token, "UID2-O-L-1-abcdef.x", 1_999).expect("valid");
        assert_eq!((opened.expires_at, opened.nonce), (2_000, -42));
        assert_eq!(opened.operator_key.as_str(), "UID2-O-L-1-abcdef.x");
        assert_eq!(
            cipher.validate(&token, "UID2-O-L-1-abcdef.x", 2_000).err(),
            Some(TokenError::Expired)
        );
        assert_eq!(cipher.validate(&token, "other", 0).err(), Some(TokenError::WrongKey));
        assert_eq!(
            TokenCipher::derive("k2", "s").open(&token).err(),
            Some(TokenError::Decrypt)
        );
    }

    #[test]
    fn garbage_is_refused_without_panics() {
        let cipher = TokenCipher::derive("k", "s");
        for token in ["", "-", "--", "a-b-g", "AAAA-AAAA-g", "AAAA-AAAA-x", "a-b-c-g", "é-é-g"] {
            assert!(cipher.open(token).is_err(), "{token}");
        }
        let sealed_garbage = {
            let blob = gcm_seal(&cipher.key, b"no commas here", &[], &OsEntropy);
            let (iv, sealed) = blob.split_at(12);
            format!(
                "{}-{}-g",
                uid2_protocol::base64::encode(sealed),
                uid2_protocol::base64::encode(iv)
            )
        };
        assert_eq!(cipher.open(&sealed_garbage).err(), Some(TokenError::Plaintext));
    }
}
