//! Advertising tokens, refresh tokens and the refresh envelope.

use crate::crypto::SecretKey;

/// Looks up key material by key id, with no time check: the reference decrypts tokens, refresh
/// tokens and refresh envelopes with whatever key the id names, active or not.
pub trait KeyRing {
    fn secret(&self, key_id: i32) -> Option<&SecretKey>;
}
