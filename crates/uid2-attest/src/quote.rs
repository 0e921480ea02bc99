//! SGX DCAP quotes, version 3 (ECDSA-P256): the evidence an `azure-sgx` operator sends to Core.
//!
//! Layout (little-endian; Intel's `sgx_quote_3.h` and `sgx_report.h`): a 48-byte header, the
//! 384-byte report body of the enclave being attested, then a `u32` signature length and that many
//! bytes of ECDSA signature data (signature, attestation key, QE report, certification chain).
//!
//! Only what identifies the enclave is parsed; checking the signature chain up to Intel is the
//! verifier's job (Microsoft Azure Attestation). Every offset is checked: a short or inconsistent
//! quote is a [`QuoteError`], never a panic. [`synthetic`] builds a structurally valid quote with
//! a chosen identity for tests and the simulated device; it carries no valid signature.

use std::fmt;

/// Bytes in the quote header.
pub const HEADER_LEN: usize = 48;
/// Bytes in a report body.
pub const REPORT_BODY_LEN: usize = 384;
/// Offset of the signature length: header plus report body.
pub const SIGNATURE_LEN_OFFSET: usize = HEADER_LEN + REPORT_BODY_LEN;
/// Offset of the signature data.
pub const SIGNATURE_OFFSET: usize = SIGNATURE_LEN_OFFSET + 4;
/// Absolute offset of the report data (report body offset 320).
pub const REPORT_DATA_OFFSET: usize = HEADER_LEN + 320;

/// The only quote version parsed.
pub const QUOTE_VERSION: u16 = 3;
/// `SGX_QL_ALG_ECDSA_P256`.
pub const ATTESTATION_KEY_ECDSA_P256: u16 = 2;
/// `SGX_FLAGS_DEBUG` in the enclave attributes.
pub const FLAG_DEBUG: u64 = 0x02;

/// Why bytes are not a usable quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    #[error("quote is truncated: {available} bytes, at least {needed} needed")]
    Truncated { needed: usize, available: usize },
    #[error("quote version {0} is not supported (only version 3)")]
    Version(u16),
    #[error("attestation key type {0} is not supported (only 2, ECDSA-P256)")]
    KeyType(u16),
    #[error("quote declares {declared} bytes of signature data but only {available} follow")]
    SignatureLength { declared: u32, available: usize },
}

/// The quote header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteHeader {
    pub version: u16,
    pub attestation_key_type: u16,
    pub qe_svn: u16,
    pub pce_svn: u16,
    pub qe_vendor_id: [u8; 16],
    pub user_data: [u8; 20],
}

/// The attested enclave's report body: what it is and what it vouches for.
#[derive(Clone, PartialEq, Eq)]
pub struct ReportBody {
    pub cpu_svn: [u8; 16],
    pub misc_select: u32,
    /// `attributes.flags`; bit 1 is DEBUG.
    pub attribute_flags: u64,
    pub attribute_xfrm: u64,
    /// Measurement of the enclave's code and initial data.
    pub mr_enclave: [u8; 32],
    /// SHA-256 of the enclave signer's public key.
    pub mr_signer: [u8; 32],
    pub isv_prod_id: u16,
    pub isv_svn: u16,
    pub config_svn: u16,
    /// Chosen by the enclave: for UID2, SHA-256 of the attestation public key, then zeros.
    pub report_data: [u8; 64],
}

impl ReportBody {
    /// Whether the enclave was launched debuggable (its memory is readable by the host).
    pub fn is_debuggable(&self) -> bool {
        self.attribute_flags & FLAG_DEBUG != 0
    }
}

impl fmt::Debug for ReportBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportBody")
            .field("mr_enclave", &hex::encode(self.mr_enclave))
            .field("mr_signer", &hex::encode(self.mr_signer))
            .field("isv_prod_id", &self.isv_prod_id)
            .field("isv_svn", &self.isv_svn)
            .field("attribute_flags", &format_args!("{:#x}", self.attribute_flags))
            .field("report_data", &hex::encode(self.report_data))
            .finish_non_exhaustive()
    }
}

/// A parsed quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub header: QuoteHeader,
    pub body: ReportBody,
    /// The declared signature data length.
    pub signature_len: u32,
    /// Bytes the quote occupies (`436 + signature_len`); callers may hold a larger buffer.
    pub len: usize,
}

impl Quote {
    /// Parses the header and report body and checks that the declared signature data is present.
    pub fn parse(bytes: &[u8]) -> Result<Self, QuoteError> {
        let at = Fields { bytes };
        at.need(SIGNATURE_OFFSET)?;
        let header = QuoteHeader {
            version: at.u16(0)?,
            attestation_key_type: at.u16(2)?,
            qe_svn: at.u16(8)?,
            pce_svn: at.u16(10)?,
            qe_vendor_id: at.array(12)?,
            user_data: at.array(28)?,
        };
        if header.version != QUOTE_VERSION {
            return Err(QuoteError::Version(header.version));
        }
        if header.attestation_key_type != ATTESTATION_KEY_ECDSA_P256 {
            return Err(QuoteError::KeyType(header.attestation_key_type));
        }
        let b = HEADER_LEN;
        let body = ReportBody {
            cpu_svn: at.array(b)?,
            misc_select: at.u32(b + 16)?,
            attribute_flags: at.u64(b + 48)?,
            attribute_xfrm: at.u64(b + 56)?,
            mr_enclave: at.array(b + 64)?,
            mr_signer: at.array(b + 128)?,
            isv_prod_id: at.u16(b + 256)?,
            isv_svn: at.u16(b + 258)?,
            config_svn: at.u16(b + 260)?,
            report_data: at.array(REPORT_DATA_OFFSET)?,
        };
        let signature_len = at.u32(SIGNATURE_LEN_OFFSET)?;
        let available = bytes.len() - SIGNATURE_OFFSET;
        let declared = usize::try_from(signature_len).unwrap_or(usize::MAX);
        if declared > available {
            return Err(QuoteError::SignatureLength {
                declared: signature_len,
                available,
            });
        }
        Ok(Self {
            header,
            body,
            signature_len,
            len: SIGNATURE_OFFSET + declared,
        })
    }
}

/// Checked little-endian reads at absolute offsets.
struct Fields<'a> {
    bytes: &'a [u8],
}

impl Fields<'_> {
    fn need(&self, needed: usize) -> Result<(), QuoteError> {
        if self.bytes.len() < needed {
            return Err(QuoteError::Truncated {
                needed,
                available: self.bytes.len(),
            });
        }
        Ok(())
    }

    fn array<const N: usize>(&self, offset: usize) -> Result<[u8; N], QuoteError> {
        let end = offset.saturating_add(N);
        self.need(end)?;
        self.bytes
            .get(offset..end)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or(QuoteError::Truncated {
                needed: end,
                available: self.bytes.len(),
            })
    }

    fn u16(&self, offset: usize) -> Result<u16, QuoteError> {
        self.array(offset).map(u16::from_le_bytes)
    }

    fn u32(&self, offset: usize) -> Result<u32, QuoteError> {
        self.array(offset).map(u32::from_le_bytes)
    }

    fn u64(&self, offset: usize) -> Result<u64, QuoteError> {
        self.array(offset).map(u64::from_le_bytes)
    }
}

/// The identity a synthetic quote claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnclaveIdentity {
    pub mr_enclave: [u8; 32],
    pub mr_signer: [u8; 32],
    pub isv_prod_id: u16,
    pub isv_svn: u16,
    pub debuggable: bool,
}

/// Intel's QE vendor id, as real quotes carry it.
const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];

/// Bytes of placeholder signature data in a synthetic quote (real ones carry ~4 KiB).
const SYNTHETIC_SIGNATURE_LEN: usize = 64;

/// A structurally valid quote for `identity` and `report_data`, with zeroed signature data. It
/// parses like a real quote; no real verifier accepts it.
pub fn synthetic(identity: &EnclaveIdentity, report_data: &[u8; 64]) -> Vec<u8> {
    let mut quote = vec![0u8; SIGNATURE_OFFSET + SYNTHETIC_SIGNATURE_LEN];
    let mut put = |offset: usize, bytes: &[u8]| quote[offset..offset + bytes.len()].copy_from_slice(bytes);
    put(0, &QUOTE_VERSION.to_le_bytes());
    put(2, &ATTESTATION_KEY_ECDSA_P256.to_le_bytes());
    put(12, &INTEL_QE_VENDOR_ID);
    let b = HEADER_LEN;
    // INITTED | MODE64BIT, plus DEBUG when asked; xfrm x87 | SSE | AVX, as Azure enclaves.
    let flags = 0x05 | if identity.debuggable { FLAG_DEBUG } else { 0 };
    put(b + 48, &flags.to_le_bytes());
    put(b + 56, &0x07u64.to_le_bytes());
    put(b + 64, &identity.mr_enclave);
    put(b + 128, &identity.mr_signer);
    put(b + 256, &identity.isv_prod_id.to_le_bytes());
    put(b + 258, &identity.isv_svn.to_le_bytes());
    put(REPORT_DATA_OFFSET, report_data);
    let signature_len = u32::try_from(SYNTHETIC_SIGNATURE_LEN).unwrap_or(0);
    put(SIGNATURE_LEN_OFFSET, &signature_len.to_le_bytes());
    quote
}

#[cfg(test)]
mod tests;
