//! Identities: what a caller sends (DII: email, phone, or their hashes), how it is normalized and
//! hashed, and the first-level hash that keys salts, opt-outs and refresh tokens.
//!
//! The pipeline, as the reference runs it:
//! 1. normalize the DII ([`email::normalize`], [`phone::is_normalized`]) or accept a hash
//!    ([`parse_hash_input`]); the result is the *identity hash*, usually 32 bytes;
//! 2. `FLH = SHA-256(b64(identity hash) ‖ first-level salt)` ([`first_level_hash`]), hashing the
//!    **base64 text**, with the salt used as text;
//! 3. the FLH picks a salt bucket ([`bucket_index`]) whose salt or key material turns it into a
//!    raw UID ([`raw_uid`]).

pub mod email;
pub mod phone;
pub mod raw_uid;

use crate::crypto::sha256;

/// UID2 or EUID. Written into tokens, raw UIDs v3/v4 and the refresh envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityScope {
    Uid2,
    Euid,
}

impl IdentityScope {
    pub fn bit(self) -> u8 {
        match self {
            Self::Uid2 => 0,
            Self::Euid => 1,
        }
    }

    pub fn from_bit(bit: u8) -> Self {
        if bit & 1 == 1 {
            Self::Euid
        } else {
            Self::Uid2
        }
    }

    /// The upper-case name SDKs read from key responses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Uid2 => "UID2",
            Self::Euid => "EUID",
        }
    }
}

/// Email or phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityType {
    Email,
    Phone,
}

impl IdentityType {
    pub fn bits(self) -> u8 {
        match self {
            Self::Email => 0,
            Self::Phone => 1,
        }
    }

    /// Reads the type from the low nibble of a prefix byte, as every reference decoder does:
    /// `(b & 0x0F) >> 2`. Values other than 0 and 1 are not a known type.
    pub fn from_prefix_byte(b: u8) -> Option<Self> {
        match (b & 0x0F) >> 2 {
            0 => Some(Self::Email),
            1 => Some(Self::Phone),
            _ => None,
        }
    }
}

/// Which environment a raw UID v4 was minted in (runtime config `identity_environment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityEnvironment {
    Test,
    Integ,
    Prod,
}

impl IdentityEnvironment {
    pub fn bits(self) -> u8 {
        match self {
            Self::Test => 0,
            Self::Integ => 1,
            Self::Prod => 2,
        }
    }

    /// Case-insensitive `test`, `integ` or `prod`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "test" => Some(Self::Test),
            "integ" => Some(Self::Integ),
            "prod" => Some(Self::Prod),
            _ => None,
        }
    }
}

/// Byte 0 of tokens and refresh tokens: `scope<<4 | type<<2 | 0b11`.
pub fn token_prefix_byte(scope: IdentityScope, id_type: IdentityType) -> u8 {
    (scope.bit() << 4) | (id_type.bits() << 2) | 0b11
}

/// The identity a request names, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dii<'a> {
    Email(&'a str),
    EmailHash(&'a str),
    Phone(&'a str),
    PhoneHash(&'a str),
}

impl Dii<'_> {
    pub fn id_type(&self) -> IdentityType {
        match self {
            Self::Email(_) | Self::EmailHash(_) => IdentityType::Email,
            Self::Phone(_) | Self::PhoneHash(_) => IdentityType::Phone,
        }
    }

    /// Normalizes and hashes; `None` is the reference's "Invalid Identifier".
    pub fn to_identity(&self) -> Option<HashedIdentity> {
        let hash = match *self {
            Self::Email(text) => {
                let normalized = email::normalize(text)?;
                IdentityHash::sha256(normalized.as_bytes())
            }
            Self::Phone(text) => {
                if !phone::is_normalized(text) {
                    return None;
                }
                IdentityHash::sha256(text.as_bytes())
            }
            Self::EmailHash(text) | Self::PhoneHash(text) => parse_hash_input(text)?,
        };
        Some(HashedIdentity {
            id_type: self.id_type(),
            hash,
        })
    }
}

/// A validated identity hash. Usually 32 bytes; a hashed input of 44 base64 characters may decode
/// to 31 or 33 bytes, which the reference accepts (see [`parse_hash_input`]).
#[derive(Clone, PartialEq, Eq)]
pub struct HashedIdentity {
    pub id_type: IdentityType,
    pub hash: IdentityHash,
}

/// The bytes of an identity hash, held inline (at most 33): an identity map request carries
/// thousands, and none of them needs the heap.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IdentityHash {
    bytes: [u8; 33],
    len: u8,
}

impl Default for IdentityHash {
    fn default() -> Self {
        Self { bytes: [0; 33], len: 0 }
    }
}

impl IdentityHash {
    /// The longest hash a request can carry: 44 base64 characters decode to at most 33 bytes.
    pub const MAX_LEN: usize = 33;

    /// `None` when `bytes` is longer than [`Self::MAX_LEN`].
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut hash = Self::default();
        hash.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        hash.len = u8::try_from(bytes.len()).ok()?;
        Some(hash)
    }

    fn sha256(input: &[u8]) -> Self {
        let mut hash = Self {
            bytes: [0; 33],
            len: 32,
        };
        hash.bytes[..32].copy_from_slice(&sha256(&[input]));
        hash
    }
}

impl std::ops::Deref for IdentityHash {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for IdentityHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityHash(..)")
    }
}

impl std::fmt::Debug for HashedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashedIdentity")
            .field("id_type", &self.id_type)
            .finish_non_exhaustive()
    }
}

/// Accepts a caller-supplied hash: 44 characters that decode as base64 (any decoded length, as
/// in the reference), or 64 hexadecimal characters of either case. Anything else is invalid.
pub fn parse_hash_input(text: &str) -> Option<IdentityHash> {
    match text.len() {
        44 => crate::base64::decode_small(text.as_bytes())
            .and_then(|(bytes, len)| IdentityHash::from_slice(&bytes[..len])),
        64 => {
            let mut hash = IdentityHash {
                bytes: [0; 33],
                len: 32,
            };
            for (out, pair) in hash.bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
                *out = decode_hex_pair(pair)?;
            }
            Some(hash)
        }
        _ => None,
    }
}

fn decode_hex_pair(pair: &[u8]) -> Option<u8> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    match pair {
        [high, low] => Some((nibble(*high)? << 4) | nibble(*low)?),
        _ => None,
    }
}

/// `SHA-256(ASCII(b64(identity hash)) ‖ UTF-8(first-level salt))`.
pub fn first_level_hash(identity_hash: &[u8], first_level_salt: &str) -> [u8; 32] {
    if identity_hash.len() <= IdentityHash::MAX_LEN {
        let text = crate::base64::encode_small(identity_hash);
        return sha256(&[text.as_bytes(), first_level_salt.as_bytes()]);
    }
    let text = crate::base64::encode(identity_hash);
    sha256(&[text.as_bytes(), first_level_salt.as_bytes()])
}

/// The number of buckets in a production salt file; only then is the 20-bit index used as is.
pub const FULL_BUCKET_COUNT: usize = 1 << 20;

/// The salt bucket of a first-level hash: `(b0 << 12) | (b1 << 4) | (b2 & 0x0F)` (the *low*
/// nibble of byte 2), taken modulo the bucket count unless there are exactly 2^20 buckets.
/// An empty table yields 0; the store never publishes one.
pub fn bucket_index(flh: &[u8; 32], bucket_count: usize) -> usize {
    let h = (usize::from(flh[0]) << 12) | (usize::from(flh[1]) << 4) | usize::from(flh[2] & 0x0F);
    if bucket_count == FULL_BUCKET_COUNT {
        h
    } else {
        h.checked_rem(bucket_count).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;
