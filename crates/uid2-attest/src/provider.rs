//! Attestation providers, one per `enclave_platform`.
//!
//! The reference's interface: `attestation_request(public_key, user_data)`, where `user_data` is
//! the UTF-8 of the Core attest URL. What comes back is sent base64 as `attestation_request`; Core
//! knows which protocol to expect from the operator key's record, not from the request.

use std::path::PathBuf;
use std::time::Duration;

use crate::quote::EnclaveIdentity;
use crate::sgx::{AzureSgxProvider, DeviceError, OcclumDevice, SimulatedDevice};

/// Producing the evidence failed; the reason is safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attestation evidence unavailable: {0}")]
pub struct AttestError(pub String);

/// The `enclave_platform` values this build supports.
pub const SUPPORTED_PLATFORMS: &[&str] = &["", "trusted", "azure-sgx"];

/// Why no provider could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("unknown enclave_platform {0:?} (supported: \"\" for trusted, \"azure-sgx\")")]
    UnknownPlatform(String),
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// Evidence that binds the operator's attestation public key to what it runs on.
pub trait AttestationProvider: Send + Sync + std::fmt::Debug {
    /// The protocol name Core records for this platform.
    fn protocol(&self) -> &'static str;

    /// The `attestation_request` bytes for `public_key_der` (SPKI DER) and `user_data`. May block
    /// (an SGX quote takes a device round trip and retries); call it off the async workers.
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

/// Where `azure-sgx` quotes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteSource {
    /// Occlum's SGX device at this path (inside the enclave: `/dev/sgx`).
    Device(PathBuf),
    /// Synthetic, unsigned quotes (see [`SimulatedDevice`]); `replayed_report_data` makes every
    /// quote carry that report data instead of the requested one.
    Simulated {
        identity: EnclaveIdentity,
        replayed_report_data: Option<[u8; 64]>,
    },
}

impl Default for QuoteSource {
    fn default() -> Self {
        Self::Device(PathBuf::from(crate::sgx::DEFAULT_DEVICE_PATH))
    }
}

/// The provider for an `enclave_platform` value (`""` or absent: trusted). For `azure-sgx` the
/// device is opened now, so a missing device is a startup error, not a retry loop.
pub fn provider_for(platform: &str, quotes: QuoteSource) -> Result<Box<dyn AttestationProvider>, ProviderError> {
    match platform {
        "" | "trusted" => Ok(Box::new(TrustedProvider)),
        "azure-sgx" => {
            let provider = match quotes {
                QuoteSource::Device(path) => AzureSgxProvider::new(Box::new(OcclumDevice::open(&path)?)),
                QuoteSource::Simulated {
                    identity,
                    replayed_report_data,
                } => {
                    let mut device = SimulatedDevice::new(identity);
                    if let Some(data) = replayed_report_data {
                        device = device.replaying(data);
                    }
                    AzureSgxProvider::new(Box::new(device)).with_retry_delay(Duration::from_millis(10))
                }
            };
            Ok(Box::new(provider))
        }
        other => Err(ProviderError::UnknownPlatform(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_sends_one_zero_byte() {
        let provider = provider_for("", QuoteSource::default()).expect("trusted");
        assert_eq!(provider.protocol(), "trusted");
        assert_eq!(provider.attestation_request(b"key", b"url").expect("evidence"), vec![0]);
        assert!(matches!(
            provider_for("aws-nitro", QuoteSource::default()),
            Err(ProviderError::UnknownPlatform(_))
        ));
        assert!(SUPPORTED_PLATFORMS.contains(&"azure-sgx"));
    }

    #[test]
    fn azure_sgx_without_a_device_fails_at_once_with_a_clear_error() {
        let error = provider_for("azure-sgx", QuoteSource::Device("/nonexistent/sgx".into())).expect_err("no device");
        assert!(
            error.to_string().contains("no SGX device at /nonexistent/sgx"),
            "{error}"
        );
    }

    #[test]
    fn azure_sgx_with_the_simulated_device_produces_quotes() {
        let identity = EnclaveIdentity {
            mr_enclave: [1; 32],
            mr_signer: [2; 32],
            isv_prod_id: 770,
            isv_svn: 2,
            debuggable: false,
        };
        let quotes = QuoteSource::Simulated {
            identity,
            replayed_report_data: None,
        };
        let provider = provider_for("azure-sgx", quotes).expect("simulated");
        assert_eq!(provider.protocol(), "azure-sgx");
        let quote = provider.attestation_request(b"key", b"url").expect("quote");
        let parsed = crate::quote::Quote::parse(&quote).expect("parses");
        assert_eq!(parsed.body.report_data, crate::sgx::report_data(b"key"));
    }
}
