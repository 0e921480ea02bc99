//! A quote device for machines without SGX: synthetic, unsigned quotes with a configured
//! enclave identity.
//!
//! It exists so the whole `azure-sgx` path — operator, Core, an MAA-compatible verifier, token,
//! sync, serving — runs in tests and on a laptop. Its quotes carry no Intel signature chain, so
//! Microsoft Azure Attestation refuses them; only a test verifier (`uid2-local-core`'s MAA
//! simulator) accepts them. The operator refuses to use it inside an Occlum enclave.

use std::sync::atomic::{AtomicU32, Ordering};

use super::{DeviceError, QuoteDevice};
use crate::quote::{synthetic, EnclaveIdentity, SIGNATURE_OFFSET};

/// See the module documentation.
#[derive(Debug)]
pub struct SimulatedDevice {
    identity: EnclaveIdentity,
    /// Fixed report data to put in every quote instead of the requested one: a quote replayed
    /// for another key, which Core must refuse.
    replayed_report_data: Option<[u8; 64]>,
    /// Calls to fail with `EINVAL` before answering, as Occlum's busy quote generator does.
    busy_calls: AtomicU32,
}

impl SimulatedDevice {
    pub fn new(identity: EnclaveIdentity) -> Self {
        Self {
            identity,
            replayed_report_data: None,
            busy_calls: AtomicU32::new(0),
        }
    }

    /// Every quote carries `report_data` whatever was asked (a replayed quote).
    pub fn replaying(mut self, report_data: [u8; 64]) -> Self {
        self.replayed_report_data = Some(report_data);
        self
    }

    /// The next `calls` device calls fail with `EINVAL`.
    pub fn busy_for(self, calls: u32) -> Self {
        self.busy_calls.store(calls, Ordering::SeqCst);
        self
    }

    fn busy(&self) -> bool {
        self.busy_calls
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn quote_for(&self, report_data: &[u8; 64]) -> Vec<u8> {
        synthetic(
            &self.identity,
            self.replayed_report_data.as_ref().unwrap_or(report_data),
        )
    }
}

impl QuoteDevice for SimulatedDevice {
    fn quote_size(&self) -> Result<u32, DeviceError> {
        if self.busy() {
            return Err(DeviceError::Invalid);
        }
        let size = self.quote_for(&[0u8; 64]).len();
        u32::try_from(size).map_err(|_| DeviceError::QuoteSize(u32::MAX))
    }

    fn generate(&self, report_data: &[u8; 64], quote: &mut [u8]) -> Result<(), DeviceError> {
        if self.busy() {
            return Err(DeviceError::Invalid);
        }
        let bytes = self.quote_for(report_data);
        // Like Occlum: a buffer smaller than the quote is an error ("provided quote is too small").
        if quote.len() < bytes.len() || quote.len() < SIGNATURE_OFFSET {
            return Err(DeviceError::Invalid);
        }
        quote[..bytes.len()].copy_from_slice(&bytes);
        Ok(())
    }
}
