//! The one error type of the service and the one place that turns it into an HTTP answer.
//!
//! Bodies follow Core's shapes: `{"status":"unauthorized","reason":…,"message":…}` for 401s from
//! the key check, `{"status":<reason>,"message":…}` otherwise. Messages name what went wrong and
//! which store or file, never a key, a token, a secret or request content.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Why an operator key was refused (the `reason` of a 401 from the key check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRejection {
    /// No `Authorization: Bearer` header, or a key that matches no record.
    UnrecognizedKey,
    KeyDisabled,
    InsufficientRole,
}

impl KeyRejection {
    pub fn reason(self) -> &'static str {
        match self {
            Self::UnrecognizedKey => "unrecognized_key",
            Self::KeyDisabled => "key_disabled",
            Self::InsufficientRole => "insufficient_role",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("operator key refused: {}", .0.reason())]
    Key(KeyRejection),
    #[error("attestation token missing, invalid or expired")]
    AttestationToken,
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    /// The store on disk is missing or broken; the message names the file, not its content.
    #[error("store problem: {0}")]
    Store(String),
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl CoreError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Key(_) | Self::AttestationToken => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Store(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for CoreError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        let body = match &self {
            Self::Key(rejection) => json!({
                "status": "unauthorized",
                "reason": rejection.reason(),
                "message": self.to_string(),
            }),
            Self::AttestationToken => json!({"status": "unauthorized", "message": self.to_string()}),
            Self::BadRequest(message) => json!({"status": "bad_request", "message": message}),
            Self::Forbidden(message) => json!({"status": "forbidden", "message": message}),
            Self::NotFound => json!({"status": "not_found", "message": "not found"}),
            Self::Store(message) => json!({"status": "error", "message": message}),
            Self::Internal(message) => json!({"status": "error", "message": message}),
        };
        (status, Json(body)).into_response()
    }
}
