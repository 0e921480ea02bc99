//! The router, its shared state, the two middlewares (activity log outermost, faults inside it)
//! and the key/token checks every authenticated route shares.
//!
//! Every handler reads the store from disk when called; the state holds only configuration, the
//! derived token key and the test hooks.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use uid2_protocol::clock::Clock;
use uid2_protocol::entropy::Entropy;

use crate::activity::{clip, Activity, RequestRecord};
use crate::error::{CoreError, KeyRejection};
use crate::faults::{spoil, Faults};
use crate::files::StoreTree;
use crate::operators::{OperatorRecord, OperatorStore};
use crate::token::TokenCipher;

/// Largest body the fault middleware buffers to spoil it.
const MAX_SPOILED_BODY: usize = 1 << 30;

/// How `/attest` sets token expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetime {
    pub seconds: i64,
    /// Random extra seconds, inclusive; `None` for exact expiry.
    pub jitter: Option<(i64, i64)>,
}

pub struct AppState {
    pub tree: StoreTree,
    /// Base of every URL handed out, without a trailing `/`.
    pub public_url: String,
    pub operators_file: PathBuf,
    pub enclaves_file: PathBuf,
    pub cipher: TokenCipher,
    pub lifetime: TokenLifetime,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub faults: Arc<Faults>,
    pub activity: Arc<Activity>,
    /// The built-in MAA simulator, served under `/maa`.
    pub maa: crate::maa::MaaSimulator,
    /// The MAA-compatible service the `azure-sgx` verifier calls.
    pub maa_url: String,
    pub http: reqwest::Client,
}

impl AppState {
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn now_s(&self) -> i64 {
        self.clock.now_ms().div_euclid(1000)
    }

    /// The built-in simulator's base URL (its token issuer).
    pub fn maa_simulator_url(&self) -> String {
        format!("{}/maa", self.public_url)
    }

    pub fn operators(&self) -> Result<OperatorStore, CoreError> {
        OperatorStore::load(&self.operators_file)
    }
}

pub type Shared = Arc<AppState>;

/// The bearer key of `Authorization` (the scheme is matched case-insensitively, as Core does).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case("bearer ")
        .then(|| value.get(7..))
        .flatten()
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// The operator behind `Authorization`, holding one of `roles`.
pub fn operator(state: &AppState, headers: &HeaderMap, roles: &[&str]) -> Result<OperatorRecord, CoreError> {
    let key = bearer(headers).ok_or(CoreError::Key(KeyRejection::UnrecognizedKey))?;
    state.operators()?.authorize(key, roles).cloned()
}

/// An operator with role `OPERATOR` and a valid `Attestation-Token` for the same key.
pub fn attested_operator(state: &AppState, headers: &HeaderMap) -> Result<OperatorRecord, CoreError> {
    let record = operator(state, headers, &["OPERATOR"])?;
    let key = bearer(headers).ok_or(CoreError::Key(KeyRejection::UnrecognizedKey))?;
    let token = headers
        .get("Attestation-Token")
        .and_then(|v| v.to_str().ok())
        .ok_or(CoreError::AttestationToken)?;
    state
        .cipher
        .validate(token, key, state.now_s())
        .map_err(|_| CoreError::AttestationToken)?;
    Ok(record)
}

pub fn router(state: Shared) -> Router {
    let mut app = Router::new()
        .route("/attest", post(crate::attest::attest))
        .route("/operator/config", get(crate::metadata::runtime_config))
        .route("/cloud_encryption_keys/retrieve", get(crate::metadata::cloud_keys))
        .route("/files/{*path}", get(crate::metadata::file))
        .route("/files-encrypted/{site}/{*path}", get(crate::metadata::encrypted_file))
        .route("/optout/refresh", get(crate::optout::refresh))
        .route("/optout/replicate", post(crate::optout::replicate))
        .route("/maa/attest/SgxEnclave", post(crate::maa::attest_sgx))
        .route("/maa/certs", get(crate::maa::certs))
        .route(
            "/maa/.well-known/openid-configuration",
            get(crate::maa::openid_configuration),
        )
        .route(
            "/_test/faults",
            get(crate::control::list)
                .post(crate::control::add)
                .delete(crate::control::clear),
        );
    for store in crate::metadata::STORES {
        app = app.route(
            store.route,
            get(move |state: State<Shared>, headers: HeaderMap| crate::metadata::store_metadata(state, headers, store)),
        );
    }
    app.fallback(|| async { CoreError::NotFound })
        .layer(middleware::from_fn_with_state(state.clone(), apply_faults))
        .layer(middleware::from_fn_with_state(state.clone(), record_activity))
        .with_state(state)
}

async fn record_activity(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(clip);
    let mut record = RequestRecord {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        status: 0,
        authorization: headers.contains_key(header::AUTHORIZATION),
        attestation_token: headers.contains_key("Attestation-Token"),
        attestation_jwt: headers.contains_key("Attestation-JWT"),
        encrypted: is_encrypted(headers),
        instance_id: text("UID-Instance-Id"),
        app_version: text("X-UID2-AppVersion"),
    };
    let response = next.run(request).await;
    record.status = response.status().as_u16();
    tracing::debug!(method = %record.method, path = %record.path, status = record.status, "request");
    state.activity.record(record);
    response
}

/// `Encrypted: true` (case-insensitive value).
pub fn is_encrypted(headers: &HeaderMap) -> bool {
    headers
        .get("Encrypted")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

async fn apply_faults(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let effect = state.faults.take(&path);
    if !effect.delay.is_zero() {
        tokio::time::sleep(effect.delay).await;
    }
    if let Some(code) = effect.status {
        return injected_status(&path, code);
    }
    let response = next.run(request).await;
    let Some(fault) = effect.body else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_SPOILED_BODY).await else {
        return CoreError::Internal("body too large to spoil").into_response();
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(spoil(&bytes, fault)))
}

fn injected_status(path: &str, code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match (path.starts_with("/attest"), code) {
        (true, 401) => json!({"status": "unauthorized", "reason": "unrecognized_key", "message": "injected fault"}),
        (true, 403) => json!({"status": "forbidden", "message": "attestation failure; injected fault"}),
        (_, 401) => json!({"status": "unauthorized", "message": "injected fault"}),
        _ => json!({"status": "error", "message": "injected fault"}),
    };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert("X-Local-Core-Fault", HeaderValue::from_static("injected"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        for (value, expected) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER  abc ", Some("abc")),
            ("Bearer ", None),
            ("Basic abc", None),
            ("Bear", None),
        ] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(bearer(&headers), expected, "{value}");
        }
    }
}
