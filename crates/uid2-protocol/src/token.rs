//! Advertising tokens, refresh tokens and the 388-character refresh envelope.
//!
//! Layouts (all integers big-endian, all times epoch milliseconds):
//! - [`advertising`]: V4 (issued; URL-safe base64 without padding), V3 (same bytes with version
//!   `0x70`, standard base64) and legacy V2 (AES-CBC, decode only in production);
//! - [`refresh`]: V3 (issued; always under the refresh keyset −2) and legacy V2 (decode);
//! - [`refresh_envelope`]: what `/v2/token/generate` and `/v2/token/refresh` hand out as
//!   `refresh_token`, a GCM blob of `{"refresh_response_key":…,"refresh_token":…}`.
//!
//! Decoders look keys up by id through [`KeyRing`] with no time check, as the reference does, and
//! report every failure as one opaque error: a caller learns nothing about which layer failed.

pub mod advertising;
pub mod refresh;
pub mod refresh_envelope;

#[cfg(test)]
mod tests;

use crate::crypto::SecretKey;
use crate::reader::{Reader, Truncated};

/// Looks up key material by key id, with no time check: the reference decrypts tokens, refresh
/// tokens and refresh envelopes with whatever key the id names, active or not.
pub trait KeyRing {
    fn secret(&self, key_id: i32) -> Option<&SecretKey>;
}

/// Version byte values (`byte1` of V3/V4 tokens; `byte0` of legacy V2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenVersion {
    V2,
    V3,
    V4,
}

impl TokenVersion {
    pub const V2_BYTE: u8 = 2;
    pub const V3_BYTE: u8 = 0x70;
    pub const V4_BYTE: u8 = 0x80;

    pub fn name(self) -> &'static str {
        match self {
            Self::V2 => "V2",
            Self::V3 => "V3",
            Self::V4 => "V4",
        }
    }
}

/// Privacy bits written into tokens.
pub mod privacy {
    /// Set by every server-side generate.
    pub const LEGACY: i32 = 1;
    /// Set on tokens from client-side generation; SDKs then check the domain or app name.
    pub const CLIENT_SIDE_GENERATED: i32 = 2;
    /// What `/v2/token/client-generate` writes.
    pub const CSTG: i32 = LEGACY | CLIENT_SIDE_GENERATED;
}

/// Who minted the token: 13 bytes `site(4) ‖ type(1) ‖ version(4) ‖ key id(4)`. The operator
/// always writes `(0, 1 = Service, 0, 0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorIdentity {
    pub site_id: i32,
    pub operator_type: u8,
    pub version: i32,
    pub key_id: i32,
}

impl OperatorIdentity {
    pub const SERVICE: Self = Self {
        site_id: 0,
        operator_type: 1,
        version: 0,
        key_id: 0,
    };

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.site_id.to_be_bytes());
        out.push(self.operator_type);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.key_id.to_be_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, Truncated> {
        Ok(Self {
            site_id: r.i32()?,
            operator_type: r.u8()?,
            version: r.i32()?,
            key_id: r.i32()?,
        })
    }
}

/// For whom the token was minted: 16 bytes `site(4) ‖ publisher id(8) ‖ client key id(4)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublisherIdentity {
    pub site_id: i32,
    pub publisher_id: i64,
    pub client_key_id: i32,
}

impl PublisherIdentity {
    /// What the operator writes: only the site is known.
    pub fn site(site_id: i32) -> Self {
        Self {
            site_id,
            publisher_id: 0,
            client_key_id: 0,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.site_id.to_be_bytes());
        out.extend_from_slice(&self.publisher_id.to_be_bytes());
        out.extend_from_slice(&self.client_key_id.to_be_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, Truncated> {
        Ok(Self {
            site_id: r.i32()?,
            publisher_id: r.i64()?,
            client_key_id: r.i32()?,
        })
    }
}

/// A token that cannot be decoded: bad encoding, unknown version or key, failed decryption,
/// truncated or inconsistent content. Deliberately carries no detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid token")]
pub struct InvalidToken;

impl From<Truncated> for InvalidToken {
    fn from(_: Truncated) -> Self {
        Self
    }
}

impl From<crate::crypto::DecryptError> for InvalidToken {
    fn from(_: crate::crypto::DecryptError) -> Self {
        Self
    }
}

impl From<crate::base64::InvalidBase64> for InvalidToken {
    fn from(_: crate::base64::InvalidBase64) -> Self {
        Self
    }
}

/// Reads a length-prefixed ASCII base64 field of the legacy V2 formats and decodes it.
fn read_b64_field(r: &mut Reader<'_>) -> Result<Vec<u8>, InvalidToken> {
    let len = usize::try_from(r.i32()?).map_err(|_| InvalidToken)?;
    let text = r.take(len)?;
    Ok(crate::base64::decode(text)?)
}

fn write_b64_field(out: &mut Vec<u8>, bytes: &[u8]) {
    let text = crate::base64::encode(bytes);
    let len = i32::try_from(text.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}
