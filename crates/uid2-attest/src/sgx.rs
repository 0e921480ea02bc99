//! The `azure-sgx` provider: the operator inside an Occlum SGX enclave proves itself with a DCAP
//! quote whose report data binds the attestation public key.
//!
//! `report_data` = SHA-256(SubjectPublicKeyInfo DER of the attestation key) ‖ 32 zero bytes.
//! Core forwards the quote with the public key as `runtimeData` to Microsoft Azure Attestation,
//! which checks that SHA-256(runtimeData) equals the first half of the report data and that the
//! quote chains to Intel; Core then checks the enclave identity in the signed result. So a quote
//! made for one key is useless with another.
//!
//! The quote comes from a [`QuoteDevice`]: [`OcclumDevice`] issues Occlum's two `/dev/sgx`
//! ioctls inside the enclave; [`SimulatedDevice`] builds unsigned synthetic quotes so the whole
//! path runs without SGX hardware (a real MAA refuses them). Occlum reports every device failure
//! as `EINVAL` — busy and not-ready included — so that is the error retried.

mod occlum;
mod simulated;

use std::time::Duration;

use sha2::{Digest, Sha256};

pub use occlum::{OcclumDevice, DEFAULT_DEVICE_PATH, SGXIOC_GEN_DCAP_QUOTE, SGXIOC_GET_DCAP_QUOTE_SIZE};
pub use simulated::SimulatedDevice;

use crate::provider::{AttestError, AttestationProvider};
use crate::quote::Quote;

/// A device failure, without anything secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "no SGX device at {0} (the operator must run inside the Occlum enclave for enclave_platform \"azure-sgx\")"
    )]
    Missing(String),
    /// Occlum's answer to every failure, transient or not.
    #[error("the SGX device refused the request (EINVAL)")]
    Invalid,
    #[error("SGX device I/O error: {0}")]
    Io(String),
    #[error("the SGX device returned an implausible quote size {0}")]
    QuoteSize(u32),
}

/// A source of SGX quotes.
pub trait QuoteDevice: Send + Sync + std::fmt::Debug {
    /// Bytes a quote needs on this platform.
    fn quote_size(&self) -> Result<u32, DeviceError>;
    /// Fills `quote` (exactly [`Self::quote_size`] bytes) with a quote over `report_data`.
    fn generate(&self, report_data: &[u8; 64], quote: &mut [u8]) -> Result<(), DeviceError>;
}

/// The report data that binds `public_key_der`: its SHA-256, then 32 zero bytes.
pub fn report_data(public_key_der: &[u8]) -> [u8; 64] {
    let mut data = [0u8; 64];
    data[..32].copy_from_slice(&Sha256::digest(public_key_der));
    data
}

/// Largest quote size believed: real ones are ~4.6 KiB; a wild size must not allocate gigabytes.
const MAX_QUOTE_SIZE: u32 = 1 << 20;

/// Attempts per quote; Occlum's quote generator is busy for a moment after the enclave starts.
const ATTEMPTS: u32 = 3;

/// The `azure-sgx` [`AttestationProvider`].
#[derive(Debug)]
pub struct AzureSgxProvider {
    device: Box<dyn QuoteDevice>,
    retry_delay: Duration,
}

impl AzureSgxProvider {
    pub fn new(device: Box<dyn QuoteDevice>) -> Self {
        Self {
            device,
            retry_delay: Duration::from_secs(1),
        }
    }

    /// Pause between attempts after `EINVAL` (tests use zero).
    pub fn with_retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// A fresh quote over `report_data`, checked to parse and to carry that report data.
    pub fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, DeviceError> {
        let mut attempt = 1;
        loop {
            match self.quote_once(report_data) {
                Err(DeviceError::Invalid) if attempt < ATTEMPTS => {
                    attempt += 1;
                    std::thread::sleep(self.retry_delay);
                }
                other => return other,
            }
        }
    }

    fn quote_once(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, DeviceError> {
        let size = self.device.quote_size()?;
        if size == 0 || size > MAX_QUOTE_SIZE {
            return Err(DeviceError::QuoteSize(size));
        }
        let mut quote = vec![0u8; usize::try_from(size).map_err(|_| DeviceError::QuoteSize(size))?];
        self.device.generate(report_data, &mut quote)?;
        Ok(quote)
    }
}

impl AttestationProvider for AzureSgxProvider {
    fn protocol(&self) -> &'static str {
        "azure-sgx"
    }

    fn attestation_request(&self, public_key_der: &[u8], _user_data: &[u8]) -> Result<Vec<u8>, AttestError> {
        let mut quote = self
            .quote(&report_data(public_key_der))
            .map_err(|e| AttestError(e.to_string()))?;
        // Whether the quote binds this key is Core's (and MAA's) check, not ours: a device that
        // returned someone else's quote must be refused there. A quote that does not even parse
        // is reported here, where the cause is visible.
        let parsed =
            Quote::parse(&quote).map_err(|e| AttestError(format!("the SGX device returned a bad quote: {e}")))?;
        quote.truncate(parsed.len);
        Ok(quote)
    }
}

#[cfg(test)]
mod tests;
