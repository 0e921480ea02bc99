//! Refresh tokens: what lets a publisher get a new advertising token without the user's DII.
//!
//! They carry the **first-level hash**, never the raw UID, so a refresh recomputes the raw UID
//! under the *current* salt. V3 (issued) layout: `identity byte ‖ 0x70 ‖ refresh key id (4) ‖
//! GCM(refresh key, R)` with the 90-byte `R = expires ‖ created ‖ operator (13) ‖ publisher (16) ‖
//! privacy bits ‖ established ‖ identity byte ‖ FLH (32)`, standard base64 (168 characters).
//!
//! Legacy V2 (decode only): `0x02 ‖ created ‖ expires ‖ valid-till ‖ key id ‖ CBC(site id ‖
//! b64(FLH) text ‖ privacy ‖ established)`; its expiry is the *valid-till* field (expires + 60 s).

use super::{
    read_b64_field, write_b64_field, InvalidToken, KeyRing, OperatorIdentity, PublisherIdentity, TokenVersion,
};
use crate::crypto::{cbc_open, cbc_seal_with_iv, gcm_open, gcm_seal, SecretKey, CBC_IV_LEN};
use crate::entropy::Entropy;
use crate::identity::{token_prefix_byte, IdentityScope, IdentityType};
use crate::reader::Reader;

#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub version: TokenVersion,
    pub scope: IdentityScope,
    pub id_type: IdentityType,
    pub key_id: i32,
    pub expires_ms: i64,
    pub created_ms: i64,
    pub operator: OperatorIdentity,
    pub publisher: PublisherIdentity,
    pub privacy_bits: i32,
    pub established_ms: i64,
    pub first_level_hash: [u8; 32],
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshToken")
            .field("version", &self.version)
            .field("scope", &self.scope)
            .field("id_type", &self.id_type)
            .field("key_id", &self.key_id)
            .field("site_id", &self.publisher.site_id)
            .finish_non_exhaustive()
    }
}

impl RefreshToken {
    /// Encodes V3 under `key` (the key named by `key_id`).
    pub fn encode(&self, key: &SecretKey, entropy: &dyn Entropy) -> String {
        let prefix = token_prefix_byte(self.scope, self.id_type);
        let mut payload = Vec::with_capacity(90);
        payload.extend_from_slice(&self.expires_ms.to_be_bytes());
        payload.extend_from_slice(&self.created_ms.to_be_bytes());
        self.operator.write(&mut payload);
        self.publisher.write(&mut payload);
        payload.extend_from_slice(&self.privacy_bits.to_be_bytes());
        payload.extend_from_slice(&self.established_ms.to_be_bytes());
        payload.push(prefix);
        payload.extend_from_slice(&self.first_level_hash);
        let blob = gcm_seal(key, &payload, &[], entropy);

        let mut out = Vec::with_capacity(6 + blob.len());
        out.push(prefix);
        out.push(TokenVersion::V3_BYTE);
        out.extend_from_slice(&self.key_id.to_be_bytes());
        out.extend_from_slice(&blob);
        crate::base64::encode(&out)
    }

    /// Decodes V3 (`byte1 == 0x70`) or legacy V2 (`byte0 == 2`).
    pub fn decode(token: &str, keys: &dyn KeyRing) -> Result<Self, InvalidToken> {
        let bytes = crate::base64::decode(token)?;
        match bytes.as_slice() {
            [_, TokenVersion::V3_BYTE, ..] => decode_v3(&bytes, keys),
            [TokenVersion::V2_BYTE, ..] => decode_v2(&bytes, keys),
            _ => Err(InvalidToken),
        }
    }
}

fn decode_v3(bytes: &[u8], keys: &dyn KeyRing) -> Result<RefreshToken, InvalidToken> {
    let mut r = Reader::new(bytes);
    let prefix = r.u8()?;
    let _version = r.u8()?;
    let key_id = r.i32()?;
    let key = keys.secret(key_id).ok_or(InvalidToken)?;
    let payload = gcm_open(key, r.rest(), &[])?;

    let mut p = Reader::new(&payload);
    let expires_ms = p.i64()?;
    let created_ms = p.i64()?;
    let operator = OperatorIdentity::read(&mut p)?;
    let publisher = PublisherIdentity::read(&mut p)?;
    let privacy_bits = p.i32()?;
    let established_ms = p.i64()?;
    let inner_prefix = p.u8()?;
    let first_level_hash = p.array::<32>()?;

    let scope = IdentityScope::from_bit(prefix >> 4);
    let id_type = IdentityType::from_prefix_byte(prefix).ok_or(InvalidToken)?;
    if IdentityScope::from_bit(inner_prefix >> 4) != scope
        || IdentityType::from_prefix_byte(inner_prefix) != Some(id_type)
    {
        return Err(InvalidToken);
    }

    Ok(RefreshToken {
        version: TokenVersion::V3,
        scope,
        id_type,
        key_id,
        expires_ms,
        created_ms,
        operator,
        publisher,
        privacy_bits,
        established_ms,
        first_level_hash,
    })
}

fn decode_v2(bytes: &[u8], keys: &dyn KeyRing) -> Result<RefreshToken, InvalidToken> {
    let mut r = Reader::new(bytes);
    let _version = r.u8()?;
    let created_ms = r.i64()?;
    let _expires_ms = r.i64()?;
    let valid_till_ms = r.i64()?;
    let key_id = r.i32()?;
    let key = keys.secret(key_id).ok_or(InvalidToken)?;
    let payload = cbc_open(key, r.rest())?;

    let mut p = Reader::new(&payload);
    let site_id = p.i32()?;
    let flh = read_b64_field(&mut p)?;
    let privacy_bits = p.i32()?;
    let established_ms = p.i64()?;
    let first_level_hash = <[u8; 32]>::try_from(flh.as_slice()).map_err(|_| InvalidToken)?;

    Ok(RefreshToken {
        version: TokenVersion::V2,
        scope: IdentityScope::Uid2,
        id_type: IdentityType::Email,
        key_id,
        expires_ms: valid_till_ms,
        created_ms,
        operator: OperatorIdentity::SERVICE,
        publisher: PublisherIdentity::site(site_id),
        privacy_bits,
        established_ms,
        first_level_hash,
    })
}

/// The legacy V2 grace: valid-till = expires + 60 s.
pub const V2_VALID_TILL_GRACE_MS: i64 = 60_000;

/// Encodes the legacy V2 layout for tests: `expires_ms` is the nominal expiry; valid-till is
/// written 60 s later, which is what [`RefreshToken::decode`] reports as the expiry.
pub fn encode_v2(token: &RefreshToken, key: &SecretKey, entropy: &dyn Entropy) -> String {
    let mut payload = Vec::with_capacity(64);
    payload.extend_from_slice(&token.publisher.site_id.to_be_bytes());
    write_b64_field(&mut payload, &token.first_level_hash);
    payload.extend_from_slice(&token.privacy_bits.to_be_bytes());
    payload.extend_from_slice(&token.established_ms.to_be_bytes());
    let mut iv = [0u8; CBC_IV_LEN];
    entropy.fill(&mut iv);
    let blob = cbc_seal_with_iv(key, &iv, &payload);

    let mut out = Vec::with_capacity(29 + blob.len());
    out.push(TokenVersion::V2_BYTE);
    out.extend_from_slice(&token.created_ms.to_be_bytes());
    out.extend_from_slice(&token.expires_ms.to_be_bytes());
    out.extend_from_slice(&token.expires_ms.saturating_add(V2_VALID_TILL_GRACE_MS).to_be_bytes());
    out.extend_from_slice(&token.key_id.to_be_bytes());
    out.extend_from_slice(&blob);
    crate::base64::encode(&out)
}
