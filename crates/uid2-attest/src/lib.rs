//! Attestation: how the operator proves to UID2 Core what it is and binds that proof to a key
//! only it holds.
//!
//! Every attestation attempt makes a fresh RSA-2048 key pair ([`AttestationKey`]); Core encrypts
//! the attestation token to its public key (RSAES-PKCS1-v1_5, as the reference), so only this
//! process can read the token. A provider ([`AttestationProvider`]) produces the platform's
//! evidence for that public key: nothing for `trusted` operators, an SGX DCAP quote whose report
//! data is the key's hash for `azure-sgx` ([`sgx`]). The provider is picked from the
//! `enclave_platform` setting by [`provider_for`]. [`quote`] parses SGX quotes (also used by the
//! `sgx_quote` tool and the local Core's MAA simulator).
//!
//! `unsafe` is denied crate-wide and allowed in exactly one module, `sgx::occlum`, which issues
//! the two SGX ioctls.

mod key;
mod provider;
pub mod quote;
pub mod sgx;

// Public interface.
pub use key::{AttestationKey, KeyError};
pub use provider::{
    provider_for, AttestError, AttestationProvider, ProviderError, QuoteSource, TrustedProvider, SUPPORTED_PLATFORMS,
};
