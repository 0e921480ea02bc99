//! An MAA-compatible attestation service for SGX enclaves, so the `azure-sgx` path runs without
//! Azure or SGX hardware.
//!
//! It answers the calls Microsoft Azure Attestation answers (`shared/reference/enclave.md` §3):
//! `POST /attest/SgxEnclave?api-version=…` with `{"quote", "runtimeData": {"data", "dataType"}}`
//! → `{"token": JWT}`, `GET /certs` (a JWKS whose keys carry only `x5c`, as MAA's do) and
//! `GET /.well-known/openid-configuration`. Like MAA it checks that SHA-256 of the runtime data
//! equals the first 32 bytes of the quote's report data, and puts the enclave identity and the
//! runtime data (`x-ms-sgx-ehd`) into an RS256 token valid for 8 hours.
//!
//! What it cannot do is MAA's other half: verify the quote's ECDSA signature chain up to Intel.
//! So it accepts synthetic quotes, which is its purpose; a real MAA never would. It is mounted
//! under `/maa` of the local Core and signs with `testdata/local-core/test-maa-signing-rsa-2048.pem`
//! (public test material) unless given another key.

use std::str::FromStr;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uid2_attest::quote::Quote;
use uid2_protocol::base64;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::Encode;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

use crate::server::Shared;

/// The signing key bundled for tests (`testdata/local-core/`).
pub const TEST_SIGNING_KEY_PEM: &str = include_str!("../../../testdata/local-core/test-maa-signing-rsa-2048.pem");

/// API versions MAA accepts for SGX attestation.
const API_VERSIONS: &[&str] = &["2018-09-01-preview", "2020-10-01", "2022-08-01", "2025-06-01"];

/// MAA's token lifetime.
const TOKEN_LIFETIME_S: i64 = 8 * 3600;

/// The simulator's signing identity.
pub struct MaaSimulator {
    key: RsaPrivateKey,
    /// DER of the self-signed certificate published in `/certs`.
    certificate: Vec<u8>,
    /// `kid`: base64 SHA-256 of the certificate.
    key_id: String,
}

impl std::fmt::Debug for MaaSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaaSimulator")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl MaaSimulator {
    /// A simulator signing with the PKCS#8 PEM `key_pem`, publishing a fresh self-signed
    /// certificate for it.
    pub fn new(key_pem: &str) -> Result<Self, String> {
        let key =
            RsaPrivateKey::from_pkcs8_pem(key_pem).map_err(|_| "MAA signing key: not a PKCS#8 RSA key".to_owned())?;
        let certificate = self_signed(&key)?;
        let key_id = base64::encode(&Sha256::digest(&certificate));
        Ok(Self {
            key,
            certificate,
            key_id,
        })
    }
}

fn self_signed(key: &RsaPrivateKey) -> Result<Vec<u8>, String> {
    let fail = |what: &str| format!("MAA certificate: {what}");
    let public = key.to_public_key();
    let spki_der = public.to_public_key_der().map_err(|_| fail("public key encoding"))?;
    let spki = SubjectPublicKeyInfoOwned::try_from(spki_der.as_bytes()).map_err(|_| fail("public key info"))?;
    let subject = Name::from_str("CN=uid2-local-core MAA simulator").map_err(|_| fail("subject"))?;
    let validity = Validity::from_now(Duration::from_secs(10 * 365 * 86_400)).map_err(|_| fail("validity"))?;
    let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone());
    let builder = CertificateBuilder::new(
        Profile::Root,
        SerialNumber::from(1u32),
        validity,
        subject,
        spki,
        &signer,
    )
    .map_err(|_| fail("builder"))?;
    let certificate = builder
        .build::<rsa::pkcs1v15::Signature>()
        .map_err(|_| fail("signing"))?;
    certificate.to_der().map_err(|_| fail("encoding"))
}

/// An MAA error answer: `{"error": {"code", "message"}}` with `x-ms-error-code`.
fn maa_error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"code": code, "message": message.into()}});
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert("x-ms-error-code", axum::http::HeaderValue::from_static(code));
    response
}

/// A field looked up as MAA's JSON binding does: case-insensitively (UID2's old Core sent
/// `Quote`/`RuntimeData`, the REST spec says `quote`/`runtimeData`).
fn field<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    object
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// Base64url or standard base64, padded or not (MAA's binding accepts both).
fn lenient_base64(text: &str) -> Option<Vec<u8>> {
    let url: String = text.trim_end_matches('=').replace('+', "-").replace('/', "_");
    base64::decode_url(&url).ok()
}

/// `POST /maa/attest/SgxEnclave`.
pub async fn attest_sgx(
    State(state): State<Shared>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    match query.get("api-version") {
        Some(v) if API_VERSIONS.contains(&v.as_str()) => {}
        _ => {
            return maa_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                "unsupported or missing api-version",
            )
        }
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return maa_error(StatusCode::BAD_REQUEST, "InvalidParameter", "the body is not JSON");
    };
    let Some(quote_bytes) = field(&request, "quote")
        .and_then(Value::as_str)
        .and_then(lenient_base64)
    else {
        return maa_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "quote: missing or not base64url",
        );
    };
    let runtime = field(&request, "runtimeData");
    let Some(runtime_data) = runtime
        .and_then(|r| field(r, "data"))
        .and_then(Value::as_str)
        .and_then(lenient_base64)
    else {
        return maa_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "runtimeData.data: missing or not base64url",
        );
    };
    let quote = match Quote::parse(&quote_bytes) {
        Ok(quote) => quote,
        Err(error) => {
            return maa_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                format!("invalid SGX quote: {error}"),
            );
        }
    };
    if Sha256::digest(&runtime_data)[..] != quote.body.report_data[..32] {
        return maa_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "the SHA256 hash of the runtime data does not match the quote's report data",
        );
    }
    let maa = &state.maa;
    let now = state.now_s();
    let issuer = state.maa_simulator_url();
    let claims = json!({
        "x-ms-attestation-type": "sgx",
        "x-ms-ver": "1.0",
        "x-ms-sgx-mrenclave": hex::encode(quote.body.mr_enclave),
        "x-ms-sgx-mrsigner": hex::encode(quote.body.mr_signer),
        "x-ms-sgx-product-id": quote.body.isv_prod_id,
        "x-ms-sgx-svn": quote.body.isv_svn,
        "x-ms-sgx-is-debuggable": quote.body.is_debuggable(),
        "x-ms-sgx-ehd": base64::encode_url(&runtime_data),
        "x-ms-sgx-report-data": hex::encode(quote.body.report_data),
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_LIFETIME_S,
        "jti": hex::encode(Sha256::digest(&quote_bytes)),
    });
    let header = json!({"alg": "RS256", "jku": format!("{issuer}/certs"), "kid": maa.key_id, "typ": "JWT"});
    let token = crate::jwt::sign(&header, &claims, &maa.key);
    tracing::info!(mrenclave = %hex::encode(quote.body.mr_enclave), "MAA simulator attested an SGX quote");
    Json(json!({ "token": token })).into_response()
}

impl MaaSimulator {
    /// The JWKS of `/certs`: the signing certificate as MAA publishes it (no `n`/`e`, only
    /// `x5c`).
    pub fn jwks(&self) -> Value {
        json!({"keys": [{
            "kid": self.key_id,
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "x5c": [base64::encode(&self.certificate)],
        }]})
    }
}

/// `GET /maa/certs`.
pub async fn certs(State(state): State<Shared>) -> Json<Value> {
    Json(state.maa.jwks())
}

/// `GET /maa/.well-known/openid-configuration`.
pub async fn openid_configuration(State(state): State<Shared>) -> Json<Value> {
    let issuer = state.maa_simulator_url();
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/certs"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["x-ms-sgx-mrenclave", "x-ms-sgx-mrsigner", "x-ms-sgx-product-id",
            "x-ms-sgx-svn", "x-ms-sgx-is-debuggable", "x-ms-sgx-ehd"],
    }))
}
