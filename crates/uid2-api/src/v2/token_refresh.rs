//! `POST /v2/token/refresh` (optional auth): a refresh token in, a new identity out.
//!
//! The raw body is the `refresh_token` the client holds. Exactly 388 characters means a refresh
//! envelope: it is opened here and the answer is sealed with its `refresh_response_key` (no
//! timestamp or nonce). Any other length is a legacy bare token answered in plain JSON.
//!
//! Outcomes, as in the reference: refreshed → 200; opted out, or established before the
//! 2021-03-08 cutoff → 200 `optout`, whoever asks; otherwise authenticated callers learn
//! `invalid_token` / `expired_token` / no active key, and unauthenticated ones only get
//! 400 `error` "Error refreshing token". A refresh token stays usable until it expires.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use uid2_protocol::crypto::{gcm_seal, SecretKey};
use uid2_protocol::token::refresh::RefreshToken;
use uid2_protocol::token::refresh_envelope::{self, ENVELOPE_LEN};
use uid2_protocol::token::TokenVersion;

use crate::auth::identify;
use crate::error::ApiError;
use crate::metrics::{Platform, ResponseMeta, TokenEndpoint};
use crate::optout::is_opted_out;
use crate::request::{is_octet_stream, read_body, sealed_response, Reply};
use crate::state::{AppState, Serving};
use crate::tokens::{issue, IdentityResponse, IssueError, Subject, NO_ACTIVE_KEY};

/// 2021-03-08T17:00:00Z: refresh tokens established before it are answered as opted out.
const REFRESH_CUTOFF_MS: i64 = 1_615_222_800_000;

enum Outcome {
    Refreshed(IdentityResponse),
    OptOut,
    Invalid,
    Expired,
    NoActiveKey,
}

pub(crate) async fn handle(State(app): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let trace_id = parts.headers.get("x-amzn-trace-id").cloned();
    let mut meta = ResponseMeta::default();
    let result = async {
        let body = read_body(&parts.headers, body).await?;
        let serving = app.serving().ok_or_else(ApiError::not_ready)?;
        let caller = identify(&serving, &parts.headers);
        if let Some(c) = &caller {
            meta = ResponseMeta::for_caller(c, &serving);
        }
        let text = String::from_utf8_lossy(&body);

        // The reference compares Java's string length, in UTF-16 code units.
        let (inner, response_key) = if text.encode_utf16().count() == ENVELOPE_LEN {
            let opened = refresh_envelope::open(&text, &serving.store.key_manager())
                .map_err(|e| ApiError::client_error(e.to_string()))?;
            (opened.refresh_token, Some(opened.response_key))
        } else {
            (text.into_owned(), None)
        };

        let now_ms = app.inner.clock.now_ms();
        let token = RefreshToken::decode(&inner, &serving.store.key_manager()).ok();
        if caller.is_none() {
            if let Some(t) = &token {
                meta = ResponseMeta::for_site(t.publisher.site_id, &serving);
            }
        }
        if let Some(t) = &token {
            let version = match t.version {
                TokenVersion::V2 => "v2",
                _ => "v3",
            };
            app.metrics().refresh_token_received(meta.site_id, version);
        }

        let outcome = match token {
            Some(t) => refresh(&app, &serving, &t, now_ms),
            None => Outcome::Invalid,
        };
        record(&app, &meta, &outcome, Platform::of(&parts.headers));

        let authenticated = caller.is_some();
        let reply = match outcome {
            Outcome::Refreshed(body) => Reply::success(&body)?,
            Outcome::OptOut => Reply::Status("optout"),
            _ if !authenticated => {
                return Err(ApiError::json(
                    StatusCode::BAD_REQUEST,
                    "error",
                    "Error refreshing token",
                ));
            }
            Outcome::Invalid => {
                return Err(ApiError::json(
                    StatusCode::BAD_REQUEST,
                    "invalid_token",
                    "Invalid Token presented",
                ))
            }
            Outcome::Expired => {
                return Err(ApiError::json(
                    StatusCode::BAD_REQUEST,
                    "expired_token",
                    "Expired Token presented",
                ))
            }
            Outcome::NoActiveKey => return Err(ApiError::unknown(NO_ACTIVE_KEY)),
        };
        Ok(write(
            &app,
            reply,
            response_key.as_ref(),
            is_octet_stream(&parts.headers),
        ))
    }
    .await;
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    if let Some(id) = trace_id {
        response.headers_mut().insert("x-amzn-trace-id", id);
    }
    response.extensions_mut().insert(meta);
    response
}

fn refresh(app: &AppState, serving: &Serving, token: &RefreshToken, now_ms: i64) -> Outcome {
    if token.scope != app.config().identity_scope {
        return Outcome::Invalid;
    }
    if token.established_ms < REFRESH_CUTOFF_MS {
        return Outcome::OptOut;
    }
    if token.expires_ms < now_ms {
        return Outcome::Expired;
    }
    if is_opted_out(
        serving,
        app.inner.optout.as_ref(),
        token.id_type,
        &token.first_level_hash,
        true,
    ) {
        return Outcome::OptOut;
    }
    let subject = Subject {
        site_id: token.publisher.site_id,
        id_type: token.id_type,
        first_level_hash: token.first_level_hash,
        privacy_bits: token.privacy_bits,
        established_ms: token.established_ms,
    };
    match issue(app, serving, &subject, now_ms) {
        Ok(body) => Outcome::Refreshed(body),
        Err(IssueError::NoActiveKey) => Outcome::NoActiveKey,
        Err(IssueError::Internal) => Outcome::Invalid,
    }
}

fn record(app: &AppState, meta: &ResponseMeta, outcome: &Outcome, platform: Platform) {
    let (status, version) = match outcome {
        Outcome::Refreshed(_) => ("Success", Some("V4")),
        Outcome::OptOut => ("OptOut", None),
        Outcome::Invalid => ("InvalidToken", None),
        Outcome::Expired => ("ExpiredToken", None),
        Outcome::NoActiveKey => ("NoActiveKey", None),
    };
    app.metrics()
        .token_response(TokenEndpoint::Refresh, meta, status, version, platform);
}

/// Sealed with the envelope's response key when there was one, plain JSON otherwise.
fn write(app: &AppState, reply: Reply, response_key: Option<&SecretKey>, binary: bool) -> Response {
    let json = reply.into_json();
    match response_key {
        Some(key) => sealed_response(gcm_seal(key, &json, &[], app.inner.entropy.as_ref()), binary),
        None => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            json,
        )
            .into_response(),
    }
}
