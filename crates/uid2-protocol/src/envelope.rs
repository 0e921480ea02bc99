//! The v2 API envelope that wraps every authenticated request and response.
//!
//! Request: `0x01 ‖ GCM(client secret, timestamp ms (8) ‖ nonce (8) ‖ UTF-8 JSON object)`, sent as
//! base64 text, or raw with `Content-Type: application/octet-stream`. Response (HTTP 200 only):
//! `GCM(client secret, server now ms (8) ‖ echoed nonce (8) ‖ JSON)` with no version byte, in the
//! same form (text or binary) as the request.
//!
//! [`open_request`] reproduces the reference's checks in its order, with its messages, including
//! the binary-to-base64 fallback and the ±2-minute timestamp window that its `toMinutes()`
//! truncation produces (the documentation says 60 s). There is no replay cache, as in the
//! reference: the nonce only binds a response to its request.

use serde_json::{Map, Value};

use crate::crypto::{gcm_open, gcm_seal_concat, SecretKey};
use crate::entropy::Entropy;
use crate::identity::IdentityScope;
use crate::reader::Reader;

/// `1 + 12 + 16 + 8 + 8`: version, IV, tag, timestamp, nonce.
pub const MIN_ENVELOPE_LEN: usize = 45;
pub const ENVELOPE_VERSION: u8 = 1;
pub const NONCE_LEN: usize = 8;

/// An authenticated, fresh, well-formed request.
#[derive(Clone, PartialEq)]
pub struct OpenedRequest {
    pub timestamp_ms: i64,
    pub nonce: [u8; NONCE_LEN],
    /// The JSON object, or `None` when the plaintext ended after the nonce (valid for the key
    /// endpoints).
    pub payload: Option<Map<String, Value>>,
    /// Whether the response must be raw bytes (`application/octet-stream`) rather than base64.
    pub binary: bool,
}

impl std::fmt::Debug for OpenedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedRequest")
            .field("timestamp_ms", &self.timestamp_ms)
            .field("binary", &self.binary)
            .finish_non_exhaustive()
    }
}

/// Every way a request envelope can be refused; [`EnvelopeError::message`] gives the reference's
/// text, which depends on the identity scope only through the documentation host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("body is missing")]
    BodyMissing,
    #[error("body is unencrypted JSON")]
    UnencryptedJson,
    #[error("body is not base64")]
    NotBase64,
    #[error("body is too short")]
    TooShort,
    #[error("unknown envelope version {0}")]
    BadVersion(u8),
    #[error("envelope does not decrypt with the client secret")]
    BadSecret,
    #[error("request timestamp outside the allowed window")]
    StaleTimestamp,
    #[error("payload is not a JSON object")]
    PayloadNotJson,
}

impl EnvelopeError {
    pub fn message(&self, scope: IdentityScope) -> String {
        let host = match scope {
            IdentityScope::Uid2 => "https://unifiedid.com",
            IdentityScope::Euid => "https://euid.eu",
        };
        let docs = "/docs/getting-started/gs-encryption-decryption";
        let hint = format!(" See {host}{docs} for details on the request envelope format.");
        match self {
            Self::BodyMissing => "Invalid body: Body is missing.".to_owned(),
            Self::UnencryptedJson => format!(
                "Invalid body: The request body is unencrypted JSON. It must be an encrypted request envelope. \
                 See {host}{docs}#encryption-and-decryption-code-examples for encryption and decryption code examples."
            ),
            Self::NotBase64 => format!("Invalid body: Body is not valid base64.{hint}"),
            Self::TooShort => format!("Invalid body: Body too short. Check encryption method.{hint}"),
            Self::BadVersion(v) => {
                format!("Invalid body: Invalid request envelope format version: received {v}, must be 1.{hint}")
            }
            Self::BadSecret => format!("Invalid body: Check encryption key (ClientSecret).{hint}"),
            Self::StaleTimestamp => "Invalid timestamp: Request too old or client time drift.".to_owned(),
            Self::PayloadNotJson => "Invalid payload in body: Data is not valid json string.".to_owned(),
        }
    }
}

/// Opens a request body.
///
/// `octet_stream` is whether the request's `Content-Type` is exactly `application/octet-stream`
/// (case-insensitive). A binary body that fails is retried as base64 text; if that succeeds the
/// response goes back as text, and if it fails the binary attempt's error is reported unless the
/// body was valid base64.
pub fn open_request(
    body: &[u8],
    octet_stream: bool,
    secret: &SecretKey,
    now_ms: i64,
) -> Result<OpenedRequest, EnvelopeError> {
    if !octet_stream {
        return open_text(body, secret, now_ms);
    }
    let binary_error = match open_bytes(body, secret, now_ms) {
        Ok(opened) => return Ok(OpenedRequest { binary: true, ..opened }),
        Err(e) => e,
    };
    match crate::base64::decode(body) {
        Ok(decoded) => open_bytes(&decoded, secret, now_ms),
        Err(_) => Err(binary_error),
    }
}

fn open_text(body: &[u8], secret: &SecretKey, now_ms: i64) -> Result<OpenedRequest, EnvelopeError> {
    match crate::base64::decode(body) {
        Ok(decoded) => open_bytes(&decoded, secret, now_ms),
        Err(_) if is_json_object(body) => Err(EnvelopeError::UnencryptedJson),
        Err(_) => Err(EnvelopeError::NotBase64),
    }
}

fn open_bytes(bytes: &[u8], secret: &SecretKey, now_ms: i64) -> Result<OpenedRequest, EnvelopeError> {
    if bytes.is_empty() {
        return Err(EnvelopeError::BodyMissing);
    }
    if bytes.len() < MIN_ENVELOPE_LEN {
        return Err(if is_json_object(bytes) {
            EnvelopeError::UnencryptedJson
        } else {
            EnvelopeError::TooShort
        });
    }
    if bytes[0] != ENVELOPE_VERSION {
        return Err(if is_json_object(bytes) {
            EnvelopeError::UnencryptedJson
        } else {
            EnvelopeError::BadVersion(bytes[0])
        });
    }
    let plain = gcm_open(secret, &bytes[1..], &[]).map_err(|_| EnvelopeError::BadSecret)?;

    let mut r = Reader::new(&plain);
    // The minimum length guarantees 16 plaintext bytes; a short one is treated as a bad secret
    // rather than trusted.
    let timestamp_ms = r.i64().map_err(|_| EnvelopeError::BadSecret)?;
    let nonce = r.array::<NONCE_LEN>().map_err(|_| EnvelopeError::BadSecret)?;
    if !timestamp_in_window(timestamp_ms, now_ms) {
        return Err(EnvelopeError::StaleTimestamp);
    }
    let json = r.rest();
    let payload = if json.is_empty() {
        None
    } else {
        // The reference decodes the payload as UTF-8 with replacement characters before parsing,
        // so invalid UTF-8 inside a string is not an error there either.
        // Valid UTF-8 (the normal case) is checked by the fast validator and parsed in place.
        let text = match std::str::from_utf8(json) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(json),
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => Some(map),
            _ => return Err(EnvelopeError::PayloadNotJson),
        }
    };
    Ok(OpenedRequest {
        timestamp_ms,
        nonce,
        payload,
        binary: false,
    })
}

fn is_json_object(bytes: &[u8]) -> bool {
    matches!(serde_json::from_slice::<Value>(bytes), Ok(Value::Object(_)))
}

/// The reference rejects when `|Duration.between(ts, now).toMinutes()| > 1`. A Java `Duration`
/// floors to whole seconds and `toMinutes()` then truncates toward zero, so up to 119.999 s in the
/// past and up to 119 s in the future pass.
pub fn timestamp_in_window(timestamp_ms: i64, now_ms: i64) -> bool {
    let delta_ms = i128::from(now_ms) - i128::from(timestamp_ms);
    let seconds = delta_ms.div_euclid(1000);
    let minutes = seconds / 60;
    minutes.abs() <= 1
}

/// Seals a response body (`server now ‖ nonce ‖ JSON`); the caller sends it raw or as base64.
pub fn seal_response(
    secret: &SecretKey,
    now_ms: i64,
    nonce: &[u8; NONCE_LEN],
    json: &[u8],
    entropy: &dyn Entropy,
) -> Vec<u8> {
    gcm_seal_concat(secret, &[&now_ms.to_be_bytes(), nonce, json], &[], entropy)
}

/// The SDK's side of the envelope, for tests, benchmarks and tools.
pub mod client {
    use super::*;
    use crate::crypto::{gcm_seal_with_iv, DecryptError, GCM_IV_LEN};

    /// Builds the request envelope bytes (not yet base64).
    pub fn seal_request(
        secret: &SecretKey,
        timestamp_ms: i64,
        nonce: &[u8; NONCE_LEN],
        json: &[u8],
        iv: &[u8; GCM_IV_LEN],
    ) -> Vec<u8> {
        let mut plain = Vec::with_capacity(16 + json.len());
        plain.extend_from_slice(&timestamp_ms.to_be_bytes());
        plain.extend_from_slice(nonce);
        plain.extend_from_slice(json);
        let mut out = vec![ENVELOPE_VERSION];
        out.extend_from_slice(&gcm_seal_with_iv(secret, iv, &plain, &[]));
        out
    }

    /// A decrypted response: server time, echoed nonce, JSON bytes.
    pub struct OpenedResponse {
        pub timestamp_ms: i64,
        pub nonce: [u8; NONCE_LEN],
        pub json: Vec<u8>,
    }

    /// Opens the raw bytes of a 200 response.
    pub fn open_response(secret: &SecretKey, bytes: &[u8]) -> Result<OpenedResponse, DecryptError> {
        let plain = gcm_open(secret, bytes, &[])?;
        let mut r = Reader::new(&plain);
        let timestamp_ms = r.i64().map_err(|_| DecryptError)?;
        let nonce = r.array::<NONCE_LEN>().map_err(|_| DecryptError)?;
        Ok(OpenedResponse {
            timestamp_ms,
            nonce,
            json: r.rest().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests;
