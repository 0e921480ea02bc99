//! Attestation verifiers, chosen by the `protocol` of the operator's key record (never by the
//! request), and the enclave allowlist (`enclaves.json`) they check identities against.
//!
//! Only `trusted` exists today: Core accepts any non-empty `attestation_request` and names the
//! enclave `Trusted`. The dispatch is an enum so that adding `azure-sgx` (send the quote to an
//! MAA-compatible endpoint, check the JWT's MRENCLAVE against the allowlist, product id 770,
//! SVN 2, not debuggable, `x-ms-sgx-ehd` == the public key) is one new variant and one new
//! `match` arm; [`Evidence`] already carries everything such a verifier needs.

use std::path::Path;

use serde_json::Value;

use crate::error::CoreError;

/// One entry of `enclaves.json`: an allowed enclave identity for a protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnclaveRecord {
    pub name: String,
    pub protocol: String,
    /// MRENCLAVE (lowercase hex) for `azure-sgx`; the meaning depends on the protocol.
    pub identifier: String,
    pub created: i64,
}

/// The allowlist; a missing file is an empty list.
#[derive(Debug, Clone, Default)]
pub struct EnclaveAllowlist {
    pub enclaves: Vec<EnclaveRecord>,
}

impl EnclaveAllowlist {
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("enclaves.json: not JSON (line {})", e.line()))?;
        let items = value
            .as_array()
            .ok_or_else(|| "enclaves.json: the top level is not an array".to_owned())?;
        let enclaves = items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let text = |field: &str| {
                    item.get(field)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| format!("enclaves.json: record {index}: bad or missing {field}"))
                };
                Ok(EnclaveRecord {
                    name: text("name")?,
                    protocol: text("protocol")?,
                    identifier: text("identifier")?,
                    created: item.get("created").and_then(Value::as_i64).unwrap_or(0),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { enclaves })
    }

    pub fn load(path: &Path) -> Result<Self, CoreError> {
        match std::fs::read(path) {
            Ok(bytes) => Self::parse(&bytes).map_err(CoreError::Store),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(CoreError::Store(format!("enclaves file unreadable: {}", e.kind()))),
        }
    }

    /// Whether `identifier` is allowed for `protocol` (identifiers compare case-insensitively, as
    /// Core lowercased MRENCLAVEs).
    pub fn allows(&self, protocol: &str, identifier: &str) -> bool {
        self.enclaves
            .iter()
            .any(|e| e.protocol == protocol && e.identifier.eq_ignore_ascii_case(identifier))
    }
}

/// What a verifier gets from one `/attest` call.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The request's `attestation_request`, still base64 as sent.
    pub attestation_request: &'a str,
    /// The request's `public_key`, decoded: X.509 SubjectPublicKeyInfo DER.
    pub public_key: &'a [u8],
    pub allowlist: &'a EnclaveAllowlist,
}

/// Core's attestation results other than success; all but `Internal` answer 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttestationFailure {
    #[error("attestation failure; bad format")]
    BadFormat,
    #[error("attestation failure; bad certificate")]
    BadCertificate,
    #[error("attestation failure; bad payload")]
    BadPayload,
    #[error("attestation failure; unknown attestation url")]
    UnknownAttestationUrl,
    #[error("attestation failure; forbidden enclave")]
    ForbiddenEnclave,
    #[error("attestation failure; internal error")]
    Internal,
}

/// A verifier per protocol name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verifier {
    /// `trusted`: no evidence, any non-empty request is accepted.
    Trusted,
}

impl Verifier {
    /// The verifier of a key record's `protocol`; `None` means Core does not know the protocol
    /// (403).
    pub fn for_protocol(protocol: &str) -> Option<Self> {
        match protocol {
            "trusted" => Some(Self::Trusted),
            _ => None,
        }
    }

    /// Whether this verifier reads the allowlist (so the handler loads it only when needed).
    pub fn needs_allowlist(self) -> bool {
        match self {
            Self::Trusted => false,
        }
    }

    /// Checks the evidence; on success, the enclave id Core records.
    pub async fn verify(self, evidence: Evidence<'_>) -> Result<String, AttestationFailure> {
        match self {
            Self::Trusted => {
                // The handler already refused an empty request (400), as Core does.
                let _ = evidence;
                Ok("Trusted".to_owned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_parses_and_matches_case_insensitively() {
        let list = EnclaveAllowlist::parse(
            br#"[{"name":"sgx","protocol":"azure-sgx","identifier":"ABCDEF","created":1},
                 {"name":"t","protocol":"trusted","identifier":"Trusted"}]"#,
        )
        .expect("parses");
        assert_eq!(list.enclaves.len(), 2);
        assert!(list.allows("azure-sgx", "abcdef"));
        assert!(!list.allows("trusted", "abcdef"));
        for bad in [&b"{}"[..], b"[1]", br#"[{"name":"x"}]"#, b"not json"] {
            assert!(EnclaveAllowlist::parse(bad).is_err());
        }
    }

    #[test]
    fn protocols_dispatch() {
        assert_eq!(Verifier::for_protocol("trusted"), Some(Verifier::Trusted));
        assert_eq!(Verifier::for_protocol("azure-sgx"), None);
        assert_eq!(Verifier::for_protocol("Trusted"), None);
    }
}
