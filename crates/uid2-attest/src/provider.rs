//! Attestation providers, one per `enclave_platform`.
//!
//! The reference's interface: `attestation_request(public_key, user_data)`, where `user_data` is
//! the UTF-8 of the Core attest URL. What comes back is sent base64 as `attestation_request`; Core
//! knows which protocol to expect from the operator key's record, not from the request.

/// Producing the evidence failed; the reason is safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attestation evidence unavailable: {0}")]
pub struct AttestError(pub String);

/// An `enclave_platform` this build does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown enclave_platform {0:?} (supported: \"\" for trusted)")]
pub struct UnknownPlatform(pub String);

/// Evidence that binds the operator's attestation public key to what it runs on.
pub trait AttestationProvider: Send + Sync + std::fmt::Debug {
    /// The protocol name Core records for this platform.
    fn protocol(&self) -> &'static str;

    /// The `attestation_request` bytes for `public_key_der` (SPKI DER) and `user_data`.
    fn attestation_request(&self, public_key_der: &[u8], user_data: &[u8]) -> Result<Vec<u8>, AttestError>;
}

/// An operator Core trusts by its key alone (the empty `enclave_platform`): the evidence is the
/// single byte `0x00`, as the reference sends.
#[derive(Debug, Default, Clone, Copy)]
pub struct TrustedProvider;

impl AttestationProvider for TrustedProvider {
    fn protocol(&self) -> &'static str {
        "trusted"
    }

    fn attestation_request(&self, _public_key_der: &[u8], _user_data: &[u8]) -> Result<Vec<u8>, AttestError> {
        Ok(vec![0])
    }
}

/// The provider for an `enclave_platform` value (`""` or absent: trusted).
pub fn provider_for(platform: &str) -> Result<Box<dyn AttestationProvider>, UnknownPlatform> {
    match platform {
        "" | "trusted" => Ok(Box::new(TrustedProvider)),
        other => Err(UnknownPlatform(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_sends_one_zero_byte() {
        let provider = provider_for("").expect("trusted");
        assert_eq!(provider.protocol(), "trusted");
        assert_eq!(provider.attestation_request(b"key", b"url").expect("evidence"), vec![0]);
        assert!(provider_for("aws-nitro").is_err());
    }
}
