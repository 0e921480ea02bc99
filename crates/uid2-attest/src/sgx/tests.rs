//! The provider over fake devices: report data binding, retries on `EINVAL`, clear errors.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::*;
use crate::quote::{EnclaveIdentity, Quote};

fn identity() -> EnclaveIdentity {
    EnclaveIdentity {
        mr_enclave: [0x11; 32],
        mr_signer: [0x22; 32],
        isv_prod_id: 770,
        isv_svn: 2,
        debuggable: false,
    }
}

fn provider(device: impl QuoteDevice + 'static) -> AzureSgxProvider {
    AzureSgxProvider::new(Box::new(device)).with_retry_delay(Duration::ZERO)
}

#[test]
fn the_quote_binds_the_sha256_of_the_public_key() {
    let public_key = b"an SPKI DER public key";
    let evidence = provider(SimulatedDevice::new(identity()))
        .attestation_request(public_key, b"https://core/attest")
        .expect("evidence");
    let quote = Quote::parse(&evidence).expect("a quote");
    assert_eq!(quote.body.report_data[..32], Sha256::digest(public_key)[..]);
    assert_eq!(quote.body.report_data[32..], [0u8; 32]);
    assert_eq!(quote.body.mr_enclave, [0x11; 32]);
    assert_eq!(quote.len, evidence.len());
}

#[test]
fn report_data_is_the_hash_then_zeros() {
    let data = report_data(b"key");
    assert_eq!(data[..32], Sha256::digest(b"key")[..]);
    assert_eq!(data[32..], [0u8; 32]);
    assert_ne!(report_data(b"key"), report_data(b"other key"));
}

#[test]
fn einval_is_retried_up_to_three_attempts() {
    let ok = provider(SimulatedDevice::new(identity()).busy_for(2));
    assert!(
        ok.attestation_request(b"k", b"u").is_ok(),
        "two busy calls, third attempt succeeds"
    );
    let failing = provider(SimulatedDevice::new(identity()).busy_for(3));
    let error = failing
        .attestation_request(b"k", b"u")
        .expect_err("three busy attempts");
    assert!(error.to_string().contains("EINVAL"), "{error}");
}

/// A device answering with fixed results, counting calls.
#[derive(Debug)]
struct Scripted {
    size: Result<u32, DeviceError>,
    fill: Vec<u8>,
    calls: AtomicU32,
}

impl QuoteDevice for Scripted {
    fn quote_size(&self) -> Result<u32, DeviceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.size.clone()
    }

    fn generate(&self, _report_data: &[u8; 64], quote: &mut [u8]) -> Result<(), DeviceError> {
        let n = self.fill.len().min(quote.len());
        quote[..n].copy_from_slice(&self.fill[..n]);
        Ok(())
    }
}

#[test]
fn other_device_errors_are_not_retried_and_implausible_sizes_are_refused() {
    for (size, expected) in [
        (Err(DeviceError::Io("EIO".into())), "EIO"),
        (Ok(0), "implausible quote size 0"),
        (Ok(u32::MAX), "implausible quote size"),
    ] {
        let device = Scripted {
            size,
            fill: Vec::new(),
            calls: AtomicU32::new(0),
        };
        let sgx = AzureSgxProvider::new(Box::new(device)).with_retry_delay(Duration::ZERO);
        let error = sgx.attestation_request(b"k", b"u").expect_err("refused");
        assert!(error.to_string().contains(expected), "{error}");
    }
}

#[test]
fn a_garbage_quote_from_the_device_is_reported() {
    let device = Scripted {
        size: Ok(600),
        fill: vec![0xFF; 600],
        calls: AtomicU32::new(0),
    };
    let error = provider(device).attestation_request(b"k", b"u").expect_err("garbage");
    assert!(error.to_string().contains("bad quote"), "{error}");
}

#[test]
fn a_replayed_quote_is_passed_on_for_core_to_refuse() {
    let other = report_data(b"someone else's key");
    let sgx = provider(SimulatedDevice::new(identity()).replaying(other));
    let quote = Quote::parse(&sgx.attestation_request(b"my key", b"u").expect("sent")).expect("parses");
    assert_eq!(quote.body.report_data, other);
}
