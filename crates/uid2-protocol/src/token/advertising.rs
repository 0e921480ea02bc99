//! Advertising tokens: what publishers put in the bid stream and DSPs decrypt with their keys.
//!
//! V3/V4 wire layout: `identity byte ‖ version ‖ master key id (4) ‖ GCM(master key, M)` where
//! `M = expires (8) ‖ created (8) ‖ operator (13) ‖ site key id (4) ‖ GCM(site key, S)` and
//! `S = publisher (16) ‖ privacy bits (4) ‖ established (8) ‖ refreshed (8) ‖ raw UID`.
//! The site payload is sealed first, so with pinned entropy the site IV is drawn before the
//! master IV.
//!
//! Legacy V2 (`0x02 ‖ master key id ‖ CBC(master, expires ‖ site key id ‖ CBC(site, …))`) carries
//! the raw UID as length-prefixed base64 text and has no scope, type or creation time.

use super::{
    read_b64_field, write_b64_field, InvalidToken, KeyRing, OperatorIdentity, PublisherIdentity, TokenVersion,
};
use crate::crypto::{cbc_open, cbc_seal_with_iv, gcm_open, gcm_seal, SecretKey, CBC_IV_LEN};
use crate::entropy::Entropy;
use crate::identity::{token_prefix_byte, IdentityScope, IdentityType};
use crate::reader::Reader;

/// The decoded (or to-be-encoded) content of an advertising token.
#[derive(Clone, PartialEq, Eq)]
pub struct AdvertisingToken {
    pub version: TokenVersion,
    pub scope: IdentityScope,
    pub id_type: IdentityType,
    pub master_key_id: i32,
    pub expires_ms: i64,
    /// "generated" in the SDKs; for V2 the decoder reports `established`.
    pub created_ms: i64,
    pub operator: OperatorIdentity,
    pub site_key_id: i32,
    pub publisher: PublisherIdentity,
    pub privacy_bits: i32,
    pub established_ms: i64,
    pub refreshed_ms: i64,
    pub raw_uid: Vec<u8>,
}

impl std::fmt::Debug for AdvertisingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdvertisingToken")
            .field("version", &self.version)
            .field("scope", &self.scope)
            .field("id_type", &self.id_type)
            .field("master_key_id", &self.master_key_id)
            .field("site_key_id", &self.site_key_id)
            .field("site_id", &self.publisher.site_id)
            .finish_non_exhaustive()
    }
}

impl AdvertisingToken {
    /// Encodes V3 or V4 (V2 is legacy: see [`encode_v2`]). `master` and `site` must be the keys
    /// named by `master_key_id` and `site_key_id`.
    pub fn encode(&self, master: &SecretKey, site: &SecretKey, entropy: &dyn Entropy) -> String {
        let site_blob = gcm_seal(site, &self.site_payload(), &[], entropy);

        let mut master_payload = Vec::with_capacity(33 + site_blob.len());
        master_payload.extend_from_slice(&self.expires_ms.to_be_bytes());
        master_payload.extend_from_slice(&self.created_ms.to_be_bytes());
        self.operator.write(&mut master_payload);
        master_payload.extend_from_slice(&self.site_key_id.to_be_bytes());
        master_payload.extend_from_slice(&site_blob);
        let master_blob = gcm_seal(master, &master_payload, &[], entropy);

        let version = match self.version {
            TokenVersion::V3 => TokenVersion::V3_BYTE,
            _ => TokenVersion::V4_BYTE,
        };
        let mut out = Vec::with_capacity(6 + master_blob.len());
        out.push(token_prefix_byte(self.scope, self.id_type));
        out.push(version);
        out.extend_from_slice(&self.master_key_id.to_be_bytes());
        out.extend_from_slice(&master_blob);
        match self.version {
            TokenVersion::V3 => crate::base64::encode(&out),
            _ => crate::base64::encode_url(&out),
        }
    }

    fn site_payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(36 + self.raw_uid.len());
        self.publisher.write(&mut out);
        out.extend_from_slice(&self.privacy_bits.to_be_bytes());
        out.extend_from_slice(&self.established_ms.to_be_bytes());
        out.extend_from_slice(&self.refreshed_ms.to_be_bytes());
        out.extend_from_slice(&self.raw_uid);
        out
    }

    /// Decodes any version the reference decodes, in its order: a header whose first four
    /// characters contain `-` or `_` is URL-safe; `byte0 == 2` is V2; else `byte1` names V3 or V4.
    pub fn decode(token: &str, keys: &dyn KeyRing) -> Result<Self, InvalidToken> {
        let header = token.get(..4).ok_or(InvalidToken)?;
        let head = if header.contains(['-', '_']) {
            crate::base64::decode_url(header)?
        } else {
            crate::base64::decode(header)?
        };
        let (b0, b1) = match head.as_slice() {
            [b0, b1, ..] => (*b0, *b1),
            _ => return Err(InvalidToken),
        };
        if b0 == TokenVersion::V2_BYTE {
            return decode_v2(&crate::base64::decode(token)?, keys);
        }
        match b1 {
            TokenVersion::V3_BYTE => decode_v3_v4(&crate::base64::decode(token)?, TokenVersion::V3, keys),
            TokenVersion::V4_BYTE => decode_v3_v4(&crate::base64::decode_url(token)?, TokenVersion::V4, keys),
            _ => Err(InvalidToken),
        }
    }
}

fn decode_v3_v4(bytes: &[u8], version: TokenVersion, keys: &dyn KeyRing) -> Result<AdvertisingToken, InvalidToken> {
    let mut r = Reader::new(bytes);
    let prefix = r.u8()?;
    let _version = r.u8()?;
    let master_key_id = r.i32()?;
    let master = keys.secret(master_key_id).ok_or(InvalidToken)?;
    let master_payload = gcm_open(master, r.rest(), &[])?;

    let mut m = Reader::new(&master_payload);
    let expires_ms = m.i64()?;
    let created_ms = m.i64()?;
    let operator = OperatorIdentity::read(&mut m)?;
    let site_key_id = m.i32()?;
    let site = keys.secret(site_key_id).ok_or(InvalidToken)?;
    let site_payload = gcm_open(site, m.rest(), &[])?;

    let mut s = Reader::new(&site_payload);
    let publisher = PublisherIdentity::read(&mut s)?;
    let privacy_bits = s.i32()?;
    let established_ms = s.i64()?;
    let refreshed_ms = s.i64()?;
    let raw_uid = s.rest().to_vec();

    let (scope, id_type) = match raw_uid.len() {
        // A 32-byte (v2) raw UID carries no scope or type; the reference reports UID2/Email.
        32 => (IdentityScope::Uid2, IdentityType::Email),
        33 => {
            let header = (
                IdentityScope::from_bit(prefix >> 4),
                IdentityType::from_prefix_byte(prefix),
            );
            let inner = (
                IdentityScope::from_bit(raw_uid[0] >> 4),
                IdentityType::from_prefix_byte(raw_uid[0]),
            );
            match (header, inner) {
                ((scope, Some(id_type)), (inner_scope, Some(inner_type)))
                    if scope == inner_scope && id_type == inner_type =>
                {
                    (scope, id_type)
                }
                _ => return Err(InvalidToken),
            }
        }
        _ => return Err(InvalidToken),
    };

    Ok(AdvertisingToken {
        version,
        scope,
        id_type,
        master_key_id,
        expires_ms,
        created_ms,
        operator,
        site_key_id,
        publisher,
        privacy_bits,
        established_ms,
        refreshed_ms,
        raw_uid,
    })
}

fn decode_v2(bytes: &[u8], keys: &dyn KeyRing) -> Result<AdvertisingToken, InvalidToken> {
    let mut r = Reader::new(bytes);
    let _version = r.u8()?;
    let master_key_id = r.i32()?;
    let master = keys.secret(master_key_id).ok_or(InvalidToken)?;
    let master_payload = cbc_open(master, r.rest())?;

    let mut m = Reader::new(&master_payload);
    let expires_ms = m.i64()?;
    let site_key_id = m.i32()?;
    let site = keys.secret(site_key_id).ok_or(InvalidToken)?;
    let identity = cbc_open(site, m.rest())?;

    let mut s = Reader::new(&identity);
    let site_id = s.i32()?;
    let raw_uid = read_b64_field(&mut s)?;
    let privacy_bits = s.i32()?;
    let established_ms = s.i64()?;

    Ok(AdvertisingToken {
        version: TokenVersion::V2,
        scope: IdentityScope::Uid2,
        id_type: IdentityType::Email,
        master_key_id,
        expires_ms,
        created_ms: established_ms,
        operator: OperatorIdentity::SERVICE,
        site_key_id,
        publisher: PublisherIdentity::site(site_id),
        privacy_bits,
        established_ms,
        refreshed_ms: established_ms,
        raw_uid,
    })
}

/// Encodes the legacy V2 layout. The operator never issues V2; this exists so tests can produce
/// the tokens older SDKs and integrations still hold.
pub fn encode_v2(token: &AdvertisingToken, master: &SecretKey, site: &SecretKey, entropy: &dyn Entropy) -> String {
    let mut identity = Vec::with_capacity(64);
    identity.extend_from_slice(&token.publisher.site_id.to_be_bytes());
    write_b64_field(&mut identity, &token.raw_uid);
    identity.extend_from_slice(&token.privacy_bits.to_be_bytes());
    identity.extend_from_slice(&token.established_ms.to_be_bytes());
    let mut site_iv = [0u8; CBC_IV_LEN];
    entropy.fill(&mut site_iv);
    let site_blob = cbc_seal_with_iv(site, &site_iv, &identity);

    let mut master_payload = Vec::with_capacity(12 + site_blob.len());
    master_payload.extend_from_slice(&token.expires_ms.to_be_bytes());
    master_payload.extend_from_slice(&token.site_key_id.to_be_bytes());
    master_payload.extend_from_slice(&site_blob);
    let mut master_iv = [0u8; CBC_IV_LEN];
    entropy.fill(&mut master_iv);
    let master_blob = cbc_seal_with_iv(master, &master_iv, &master_payload);

    let mut out = Vec::with_capacity(5 + master_blob.len());
    out.push(TokenVersion::V2_BYTE);
    out.extend_from_slice(&token.master_key_id.to_be_bytes());
    out.extend_from_slice(&master_blob);
    crate::base64::encode(&out)
}
