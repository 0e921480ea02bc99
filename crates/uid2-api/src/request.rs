//! The edge every enveloped endpoint shares, in the reference's order: read the body (413 over
//! 1 MiB) → authenticate (401) → open the v2 envelope (400) → handler → seal the reply.
//!
//! Handlers never see raw bytes: they get an [`Enveloped`] request whose payload already passed
//! the secret, timestamp and JSON checks, and they return a [`Reply`] that this module seals with
//! the caller's secret, as base64 text or raw bytes following the request.

use std::future::Future;
use std::sync::Arc;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use uid2_protocol::envelope;
use uid2_store::Role;

use crate::auth::{authorize, Caller};
use crate::error::ApiError;
use crate::metrics::ResponseMeta;
use crate::state::{AppState, Serving};

/// The reference's `MAX_REQUEST_BODY_SIZE`: 1 MiB of raw body, base64 text included.
pub const MAX_BODY_BYTES: usize = 1 << 20;

const AMZN_TRACE_ID: &str = "x-amzn-trace-id";

/// The error a server puts in a request body stream that did not arrive within its body-read
/// timeout (the operator's server does; the API itself keeps no clocks for bodies). Answered 408.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyReadTimeout;

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`] before anything else runs.
pub(crate) async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(ApiError::too_large());
    }
    to_bytes(body, MAX_BODY_BYTES).await.map_err(|error| {
        if caused_by_timeout(&error) {
            ApiError::body_timeout()
        } else {
            ApiError::too_large()
        }
    })
}

/// Whether [`BodyReadTimeout`] is anywhere in the chain (the body and the size limit each wrap
/// the error once more).
fn caused_by_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<BodyReadTimeout>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// `Content-Type` is exactly `application/octet-stream`, ignoring case; a parameter makes it text.
pub(crate) fn is_octet_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("application/octet-stream"))
}

/// An authenticated, opened request.
pub(crate) struct Enveloped {
    pub caller: Caller,
    pub serving: Arc<Serving>,
    pub payload: Option<Map<String, Value>>,
    pub headers: HeaderMap,
    pub now_ms: i64,
    nonce: [u8; envelope::NONCE_LEN],
    binary: bool,
}

/// What a handler answers on HTTP 200.
pub(crate) enum Reply {
    /// `{"body":…,"status":"success"}`, already serialized.
    Success(Vec<u8>),
    /// `{"status":…}` without a body (`optout`, `insufficient_user_consent`).
    Status(&'static str),
}

#[derive(Serialize)]
struct SuccessJson<'a, T: Serialize> {
    body: &'a T,
    status: &'static str,
}

#[derive(Serialize)]
struct StatusJson {
    status: &'static str,
}

impl Reply {
    pub fn success<T: Serialize>(body: &T) -> Result<Self, ApiError> {
        serde_json::to_vec(&SuccessJson {
            body,
            status: "success",
        })
        .map(Reply::Success)
        .map_err(|_| ApiError::internal())
    }

    /// `{"body":…,"status":"success"}` with the body written by `write` straight into the answer
    /// (the identity maps write thousands of items without a value tree per item).
    pub fn success_written(capacity: usize, write: impl FnOnce(&mut Vec<u8>)) -> Self {
        let mut out = Vec::with_capacity(capacity + 32);
        out.extend_from_slice(b"{\"body\":");
        write(&mut out);
        out.extend_from_slice(b",\"status\":\"success\"}");
        Reply::Success(out)
    }

    pub fn into_json(self) -> Vec<u8> {
        match self {
            Reply::Success(bytes) => bytes,
            Reply::Status(status) => serde_json::to_vec(&StatusJson { status }).unwrap_or_default(),
        }
    }
}

/// Runs an enveloped endpoint.
pub(crate) async fn enveloped<F, Fut>(app: AppState, roles: &'static [Role], request: Request, handler: F) -> Response
where
    F: FnOnce(AppState, Enveloped) -> Fut,
    Fut: Future<Output = Result<Reply, ApiError>>,
{
    let (parts, body) = request.into_parts();
    let trace_id = parts.headers.get(AMZN_TRACE_ID).cloned();
    let mut meta = ResponseMeta::default();
    let result = async {
        let body = read_body(&parts.headers, body).await?;
        let serving = app.serving().ok_or_else(ApiError::not_ready)?;
        let caller = authorize(&serving, &parts.headers, roles)?;
        meta = ResponseMeta::for_caller(&caller, &serving);
        let now_ms = app.inner.clock.now_ms();
        let opened = envelope::open_request(&body, is_octet_stream(&parts.headers), &caller.secret, now_ms)
            .map_err(|e| ApiError::client_error(e.message(app.config().identity_scope)))?;
        let request = Enveloped {
            caller,
            serving,
            payload: opened.payload,
            headers: parts.headers,
            now_ms,
            nonce: opened.nonce,
            binary: opened.binary,
        };
        let secret = request.caller.secret.clone();
        let (nonce, binary) = (request.nonce, request.binary);
        let reply = handler(app.clone(), request).await?;
        let sealed = envelope::seal_response(
            &secret,
            app.inner.clock.now_ms(),
            &nonce,
            &reply.into_json(),
            app.inner.entropy.as_ref(),
        );
        Ok::<Response, ApiError>(sealed_response(sealed, binary))
    }
    .await;
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    if meta.site_id.is_some() {
        if let Some(id) = trace_id {
            response.headers_mut().insert(AMZN_TRACE_ID, id);
        }
    }
    response.extensions_mut().insert(meta);
    response
}

/// A sealed body as the client asked for it: raw bytes for `application/octet-stream`, else base64
/// `text/plain`.
pub(crate) fn sealed_response(sealed: Vec<u8>, binary: bool) -> Response {
    if binary {
        (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            )],
            sealed,
        )
            .into_response()
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
            uid2_protocol::base64::encode(&sealed),
        )
            .into_response()
    }
}
