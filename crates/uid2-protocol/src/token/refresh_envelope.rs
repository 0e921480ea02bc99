//! The refresh envelope: the opaque 388-character `refresh_token` that generate and refresh hand
//! out, and that `/v2/token/refresh` accepts back as its raw body.
//!
//! Layout: `scope<<4 (1) ‖ refresh key id (4) ‖ GCM(refresh key, JSON)`, standard base64, where the
//! JSON is exactly `{"refresh_response_key":"<44>","refresh_token":"<168>"}` (258 bytes), so the
//! whole is 291 bytes = 388 characters. The server treats a refresh body as an envelope **only**
//! when it is exactly 388 characters long; the response to an envelope is sealed with the
//! `refresh_response_key` it carried.

use super::KeyRing;
use crate::crypto::{gcm_open, gcm_seal, SecretKey};
use crate::entropy::Entropy;
use crate::identity::IdentityScope;
use crate::reader::Reader;

/// The only length the envelope may have, in base64 characters.
pub const ENVELOPE_LEN: usize = 388;

/// What an envelope holds once opened.
pub struct OpenedEnvelope {
    /// The inner V3 (or legacy V2) refresh token, base64.
    pub refresh_token: String,
    /// The key the response must be sealed with.
    pub response_key: SecretKey,
}

impl std::fmt::Debug for OpenedEnvelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenedEnvelope(..)")
    }
}

/// Why an envelope could not be opened; each maps to one message of the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("Invalid body: Body is not valid base64.")]
    NotBase64,
    #[error("Invalid key: Generator of this token (Key ID: {0}) does not exist.")]
    UnknownKey(i32),
    #[error("Invalid data: Check encryption method and encryption key.")]
    Decrypt,
    #[error("Invalid format: Payload is not valid json or missing required data.")]
    Format,
    /// Only when sealing: the result was not 388 characters (an inner token of the wrong size).
    #[error("refresh envelope has the wrong length")]
    WrongLength,
}

#[derive(serde::Deserialize)]
struct EnvelopeJson {
    refresh_response_key: String,
    /// Read leniently, as the reference does: a missing token reaches the refresh logic as an
    /// empty (invalid) token rather than failing the envelope.
    #[serde(default)]
    refresh_token: String,
}

/// Seals an inner refresh token and a response key for the client.
pub fn seal(
    scope: IdentityScope,
    refresh_key_id: i32,
    refresh_key: &SecretKey,
    inner_refresh_token: &str,
    response_key: &SecretKey,
    entropy: &dyn Entropy,
) -> Result<String, EnvelopeError> {
    // Both values are base64, which needs no JSON escaping; the key order is the reference's.
    let json = format!(
        r#"{{"refresh_response_key":"{}","refresh_token":"{}"}}"#,
        response_key.to_base64(),
        inner_refresh_token
    );
    let blob = gcm_seal(refresh_key, json.as_bytes(), &[], entropy);
    let mut out = Vec::with_capacity(5 + blob.len());
    out.push(scope.bit() << 4);
    out.extend_from_slice(&refresh_key_id.to_be_bytes());
    out.extend_from_slice(&blob);
    let text = crate::base64::encode(&out);
    if text.len() == ENVELOPE_LEN {
        Ok(text)
    } else {
        Err(EnvelopeError::WrongLength)
    }
}

/// Opens an envelope. The caller has already checked the length is [`ENVELOPE_LEN`]. Byte 0 (the
/// scope) is ignored and the key is looked up among all keys, as in the reference.
pub fn open(body: &str, keys: &dyn KeyRing) -> Result<OpenedEnvelope, EnvelopeError> {
    let bytes = crate::base64::decode(body).map_err(|_| EnvelopeError::NotBase64)?;
    let mut r = Reader::new(&bytes);
    let _scope = r.u8().map_err(|_| EnvelopeError::Decrypt)?;
    let key_id = r.i32().map_err(|_| EnvelopeError::Decrypt)?;
    let key = keys.secret(key_id).ok_or(EnvelopeError::UnknownKey(key_id))?;
    let json = gcm_open(key, r.rest(), &[]).map_err(|_| EnvelopeError::Decrypt)?;
    let parsed: EnvelopeJson = serde_json::from_slice(&json).map_err(|_| EnvelopeError::Format)?;
    let response_key = SecretKey::from_base64(&parsed.refresh_response_key).ok_or(EnvelopeError::Format)?;
    Ok(OpenedEnvelope {
        refresh_token: parsed.refresh_token,
        response_key,
    })
}
