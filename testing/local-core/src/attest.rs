//! `POST /attest`: Core's attestation handshake (sync.md §1.3–1.6).
//!
//! Order of checks, as Core: the bearer key (401: unknown, disabled, or neither OPERATOR nor
//! OPTOUT_SERVICE); the JSON body and a non-empty `attestation_request` (400); `operator_type`,
//! when present, equal to the key's (403); the key record's protocol known and its verifier
//! satisfied (403); the public key usable for RSA (500, as Core's encryption failure). The
//! answer wraps a fresh attestation token, RSA-PKCS#1-v1.5-encrypted under the request's
//! `public_key`, with its expiry as an ISO-8601 instant and this service's URL as `optout_url`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use rand::Rng;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Encrypt, RsaPublicKey};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::error::{CoreError, KeyRejection};
use crate::server::{bearer, operator, Shared};
use crate::verifier::{AttestationFailure, EnclaveAllowlist, Evidence, Verifier, VerifierContext};

pub async fn attest(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, CoreError> {
    let record = operator(&state, &headers, &["OPERATOR", "OPTOUT_SERVICE"])?;
    let key = bearer(&headers).ok_or(CoreError::Key(KeyRejection::UnrecognizedKey))?;

    let request: Value = serde_json::from_slice(&body).map_err(|_| CoreError::BadRequest("body is not JSON"))?;
    let attestation_request = request
        .get("attestation_request")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .ok_or(CoreError::BadRequest("no attestation_request"))?;

    match request.get("operator_type") {
        None | Some(Value::Null) => {}
        Some(sent) => {
            let matches = sent
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case(record.operator_type.as_str()));
            if !matches {
                return Err(CoreError::Forbidden(
                    "attestation failure; invalid operator type".into(),
                ));
            }
        }
    }

    let verifier = Verifier::for_protocol(&record.protocol)
        .ok_or_else(|| CoreError::Forbidden("attestation failure; unknown protocol".into()))?;
    let allowlist = if verifier.needs_allowlist() {
        EnclaveAllowlist::load(&state.enclaves_file)?
    } else {
        EnclaveAllowlist::default()
    };
    let public_key_der = request
        .get("public_key")
        .and_then(Value::as_str)
        .and_then(|k| uid2_protocol::base64::decode(k).ok())
        .unwrap_or_default();
    let evidence = Evidence {
        attestation_request,
        public_key: &public_key_der,
        allowlist: &allowlist,
    };
    let context = VerifierContext {
        http: state.http.clone(),
        maa_base_url: state.maa_url.clone(),
        now_s: state.now_s(),
    };
    let enclave_id = verifier
        .verify(evidence, &context)
        .await
        .map_err(|failure| match failure {
            AttestationFailure::Internal => CoreError::Internal("attestation verifier failed"),
            other => CoreError::Forbidden(other.to_string()),
        })?;

    let public_key = RsaPublicKey::from_public_key_der(&public_key_der)
        .map_err(|_| CoreError::Internal("attestation token encryption failed"))?;

    let now_ms = state.now_ms();
    let jitter = match state.lifetime.jitter {
        Some((low, high)) if low <= high => rand::thread_rng().gen_range(low..=high),
        _ => 0,
    };
    let expires_ms = now_ms
        .saturating_add(state.lifetime.seconds.saturating_mul(1000))
        .saturating_add(jitter.saturating_mul(1000));
    let nonce: i64 = rand::thread_rng().gen();
    let token = Zeroizing::new(
        state
            .cipher
            .seal(key, expires_ms.div_euclid(1000), nonce, state.entropy.as_ref()),
    );
    let encrypted = public_key
        .encrypt(&mut rand::rngs::OsRng, Pkcs1v15Encrypt, token.as_bytes())
        .map_err(|_| CoreError::Internal("attestation token encryption failed"))?;

    state.activity.attested();
    tracing::info!(site_id = record.site_id, operator = %record.name, enclave = %enclave_id, "attested");
    Ok(Json(json!({
        "status": "success",
        "body": {
            "attestation_token": uid2_protocol::base64::encode(&encrypted),
            "expiresAt": iso_instant(expires_ms),
            "optout_url": state.public_url,
        }
    })))
}

/// An epoch-milliseconds instant as Java's `ISO_INSTANT` prints it: `2026-11-28T18:00:00Z`, with
/// `.mmm` only when the milliseconds are not zero.
pub fn iso_instant(epoch_ms: i64) -> String {
    let seconds = epoch_ms.div_euclid(1000);
    let millis = epoch_ms.rem_euclid(1000);
    let Ok(time) = time::OffsetDateTime::from_unix_timestamp(seconds) else {
        return "1970-01-01T00:00:00Z".to_owned();
    };
    let date = time.date();
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        date.year(),
        u8::from(date.month()),
        date.day(),
        time.hour(),
        time.minute(),
        time.second()
    );
    if millis == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{millis:03}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_print_like_java() {
        assert_eq!(iso_instant(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_instant(1_795_888_800_123), "2026-11-28T18:00:00.123Z");
        assert_eq!(iso_instant(1_795_888_800_120), "2026-11-28T18:00:00.120Z");
        assert_eq!(iso_instant(1_795_888_800_000), "2026-11-28T18:00:00Z");
        let parsed = time::OffsetDateTime::parse(
            &iso_instant(1_795_888_800_007),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339");
        assert_eq!(parsed.unix_timestamp_nanos(), 1_795_888_800_007_000_000);
    }
}
