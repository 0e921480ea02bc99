//! Attestation verifiers, chosen by the `protocol` of the operator's key record (never by the
//! request), and the enclave allowlist (`enclaves.json`) they check identities against.
//!
//! - `trusted`: Core accepts any non-empty `attestation_request` and names the enclave `Trusted`.
//! - `azure-sgx`: the request is an SGX quote. Core sends it, with the operator's public key as
//!   runtime data, to an MAA-compatible service (`POST {maa}/attest/SgxEnclave`), which checks the
//!   quote and that the key's hash is its report data, and answers an RS256 JWT. Core then checks,
//!   in this order (`shared/reference/sync.md` §1.5, plus the signature the reference skipped):
//!   the JWT's signature against the key `{maa}/certs` publishes under its `kid`, its issuer and
//!   validity period, `x-ms-attestation-type` `sgx`; MRENCLAVE in the allowlist, product id 770
//!   and SVN 2, not debuggable (else *forbidden enclave*); `x-ms-sgx-ehd` equal to the public key
//!   (else *bad payload*). The enclave id is the MRENCLAVE.

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

/// What verifiers may call out to.
#[derive(Debug, Clone)]
pub struct VerifierContext {
    pub http: reqwest::Client,
    /// Base URL of the MAA-compatible service (no trailing `/`).
    pub maa_base_url: String,
    /// Now, in epoch seconds.
    pub now_s: i64,
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

/// The product id and security version Core requires of `azure-sgx` enclaves (the reference's
/// `REQUIRED_PRODUCT_ID` and `REQUIRED_SECURITY_VERSION`; the package's Occlum.json sets them).
pub const REQUIRED_PRODUCT_ID: u64 = 770;
pub const REQUIRED_SVN: u64 = 2;

/// Clock skew tolerated on the MAA token's `nbf` and `exp`.
const SKEW_S: i64 = 60;

/// A verifier per protocol name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verifier {
    /// `trusted`: no evidence, any non-empty request is accepted.
    Trusted,
    /// `azure-sgx`: an SGX quote, checked through an MAA-compatible service.
    AzureSgx,
}

impl Verifier {
    /// The verifier of a key record's `protocol`; `None` means Core does not know the protocol
    /// (403).
    pub fn for_protocol(protocol: &str) -> Option<Self> {
        match protocol {
            "trusted" => Some(Self::Trusted),
            "azure-sgx" => Some(Self::AzureSgx),
            _ => None,
        }
    }

    /// Whether this verifier reads the allowlist (so the handler loads it only when needed).
    pub fn needs_allowlist(self) -> bool {
        match self {
            Self::Trusted => false,
            Self::AzureSgx => true,
        }
    }

    /// Checks the evidence; on success, the enclave id Core records.
    pub async fn verify(self, evidence: Evidence<'_>, context: &VerifierContext) -> Result<String, AttestationFailure> {
        match self {
            // The handler already refused an empty request (400), as Core does.
            Self::Trusted => Ok("Trusted".to_owned()),
            Self::AzureSgx => azure_sgx(evidence, context).await,
        }
    }
}

async fn azure_sgx(evidence: Evidence<'_>, context: &VerifierContext) -> Result<String, AttestationFailure> {
    use uid2_protocol::base64;

    let quote = base64::decode(evidence.attestation_request).map_err(|_| AttestationFailure::BadFormat)?;
    let body = serde_json::json!({
        "quote": base64::encode_url(&quote),
        "runtimeData": {"data": base64::encode_url(evidence.public_key), "dataType": "Binary"},
    });
    let url = format!("{}/attest/SgxEnclave?api-version=2020-10-01", context.maa_base_url);
    let response = context
        .http
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(|_| AttestationFailure::Internal)?;
    if !response.status().is_success() {
        // The reference: any non-200 from MAA is a bad payload.
        tracing::info!(status = response.status().as_u16(), "MAA refused the quote");
        return Err(AttestationFailure::BadPayload);
    }
    let answer: Value = response.json().await.map_err(|_| AttestationFailure::BadPayload)?;
    let token = answer
        .get("token")
        .and_then(Value::as_str)
        .ok_or(AttestationFailure::BadPayload)?;
    let claims = verified_claims(token, context).await?;

    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let number = |name: &str| claims.get(name).and_then(Value::as_u64);
    if text("x-ms-attestation-type") != Some("sgx") {
        return Err(AttestationFailure::BadPayload);
    }
    let mr_enclave = text("x-ms-sgx-mrenclave")
        .ok_or(AttestationFailure::BadPayload)?
        .to_ascii_lowercase();
    if !evidence.allowlist.allows("azure-sgx", &mr_enclave) {
        tracing::info!(mrenclave = %mr_enclave, "MRENCLAVE not in the allowlist");
        return Err(AttestationFailure::ForbiddenEnclave);
    }
    let (product_id, svn) = (number("x-ms-sgx-product-id"), number("x-ms-sgx-svn"));
    if product_id != Some(REQUIRED_PRODUCT_ID) || svn != Some(REQUIRED_SVN) {
        tracing::info!(?product_id, ?svn, "enclave product id or SVN not accepted");
        return Err(AttestationFailure::ForbiddenEnclave);
    }
    if claims.get("x-ms-sgx-is-debuggable").and_then(Value::as_bool) != Some(false) {
        tracing::info!("debuggable enclave refused");
        return Err(AttestationFailure::ForbiddenEnclave);
    }
    let held = text("x-ms-sgx-ehd")
        .and_then(|ehd| base64::decode_url(ehd).ok())
        .ok_or(AttestationFailure::BadPayload)?;
    if held != evidence.public_key {
        tracing::info!("enclave held data is not the request's public key");
        return Err(AttestationFailure::BadPayload);
    }
    Ok(mr_enclave)
}

/// The MAA token's claims once its signature, issuer and validity period check out.
async fn verified_claims(
    token: &str,
    context: &VerifierContext,
) -> Result<serde_json::Map<String, Value>, AttestationFailure> {
    let unverified = crate::jwt::Unverified::parse(token).map_err(|e| {
        tracing::info!(error = %e, "MAA token refused");
        AttestationFailure::BadPayload
    })?;
    let key_id = unverified.key_id().ok_or(AttestationFailure::BadPayload)?.to_owned();
    // The key comes from the configured MAA, never from the token's own `jku`.
    let certs: Value = context
        .http
        .get(format!("{}/certs", context.maa_base_url))
        .send()
        .await
        .map_err(|_| AttestationFailure::Internal)?
        .json()
        .await
        .map_err(|_| AttestationFailure::Internal)?;
    let key = signing_key(&certs, &key_id).ok_or_else(|| {
        tracing::info!(kid = %key_id, "MAA token signed by an unknown key");
        AttestationFailure::BadPayload
    })?;
    let claims = unverified.verify(&key).map_err(|e| {
        tracing::info!(error = %e, "MAA token refused");
        AttestationFailure::BadPayload
    })?;
    let issuer_ok = claims.get("iss").and_then(Value::as_str) == Some(context.maa_base_url.as_str());
    let time = |name: &str| claims.get(name).and_then(Value::as_i64);
    let (nbf, exp) = (time("nbf").unwrap_or(i64::MIN), time("exp").unwrap_or(i64::MIN));
    if !issuer_ok || context.now_s + SKEW_S < nbf || context.now_s - SKEW_S >= exp {
        tracing::info!(issuer_ok, "MAA token issuer or validity period refused");
        return Err(AttestationFailure::BadPayload);
    }
    Ok(claims)
}

/// The RSA key of the JWKS entry `kid`, from the leaf certificate of its `x5c` (MAA publishes no
/// bare `n`/`e`).
pub fn signing_key(jwks: &Value, kid: &str) -> Option<rsa::RsaPublicKey> {
    use rsa::pkcs8::DecodePublicKey;
    use x509_cert::der::{Decode, Encode};

    let entry = jwks
        .get("keys")?
        .as_array()?
        .iter()
        .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))?;
    let leaf = entry.get("x5c")?.as_array()?.first()?.as_str()?;
    let der = uid2_protocol::base64::decode(leaf).ok()?;
    let certificate = x509_cert::Certificate::from_der(&der).ok()?;
    let spki = certificate.tbs_certificate.subject_public_key_info.to_der().ok()?;
    rsa::RsaPublicKey::from_public_key_der(&spki).ok()
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
    fn signing_keys_are_found_by_kid_in_x5c_only() {
        let maa = crate::maa::MaaSimulator::new(crate::maa::TEST_SIGNING_KEY_PEM).expect("simulator");
        let jwks = maa.jwks();
        let kid = jwks["keys"][0]["kid"].as_str().expect("kid").to_owned();
        assert!(signing_key(&jwks, &kid).is_some());
        assert!(signing_key(&jwks, "another kid").is_none(), "an unknown kid has no key");
        let mut broken = jwks.clone();
        broken["keys"][0]["x5c"] = serde_json::json!(["bm90IGEgY2VydGlmaWNhdGU="]);
        assert!(
            signing_key(&broken, &kid).is_none(),
            "a certificate that does not parse"
        );
        assert!(signing_key(&serde_json::json!({"keys": "none"}), &kid).is_none());
    }

    #[test]
    fn protocols_dispatch() {
        assert_eq!(Verifier::for_protocol("trusted"), Some(Verifier::Trusted));
        assert_eq!(Verifier::for_protocol("azure-sgx"), Some(Verifier::AzureSgx));
        assert_eq!(Verifier::for_protocol("aws-nitro"), None);
        assert_eq!(Verifier::for_protocol("Trusted"), None);
    }
}
