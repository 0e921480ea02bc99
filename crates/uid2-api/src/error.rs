//! The one place where failures become HTTP responses.
//!
//! The wire contract is the reference's: errors are never encrypted; JSON errors are
//! `{"message":…,"status":…}` with `application/json`; authentication failures are
//! `{"status":"unauthorized"}` with no message; a few framework-level failures are plain text
//! (`413 Request Entity Too Large`, `500 Internal Server Error`, `503 Service Unavailable`, and
//! this operator's own `408 Request Timeout`). Messages never contain request bodies, identifiers,
//! tokens or keys: they are fixed texts chosen by the handlers.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A refused or failed request, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    http: StatusCode,
    body: ErrorBody,
    /// Answer with `Connection: close`: the rest of the request cannot be read.
    close: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ErrorBody {
    Json {
        status: &'static str,
        message: Option<String>,
    },
    Plain(&'static str),
}

#[derive(Serialize)]
struct JsonError<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    status: &'a str,
}

impl ApiError {
    /// 400 `client_error` with a message.
    pub fn client_error(message: impl Into<String>) -> Self {
        Self::json(StatusCode::BAD_REQUEST, "client_error", message)
    }

    /// Any JSON error with a message.
    pub fn json(http: StatusCode, status: &'static str, message: impl Into<String>) -> Self {
        Self {
            http,
            body: ErrorBody::Json {
                status,
                message: Some(message.into()),
            },
            close: false,
        }
    }

    /// 401 from the authentication layer: no message, as in the reference.
    pub fn unauthorized() -> Self {
        Self {
            http: StatusCode::UNAUTHORIZED,
            body: ErrorBody::Json {
                status: "unauthorized",
                message: None,
            },
            close: false,
        }
    }

    /// 500 `unknown` with a message (e.g. "No active encryption key available").
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::json(StatusCode::INTERNAL_SERVER_ERROR, "unknown", message)
    }

    /// 500 with the plain reason phrase, what the reference's failure handler writes.
    pub fn internal() -> Self {
        Self::plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    }

    /// 413 before anything else looks at the body.
    pub fn too_large() -> Self {
        Self::plain(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large")
    }

    /// 503 while the operator has no data to serve yet.
    pub fn not_ready() -> Self {
        Self::plain(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
    }

    /// 503 for a request shed by admission control: the same answer as [`ApiError::not_ready`],
    /// so a client sees one "unavailable, try later" shape whatever the cause.
    pub fn overloaded() -> Self {
        Self::not_ready()
    }

    /// 408 when the body did not arrive within the server's body-read timeout. The connection is
    /// closed after it: the unread rest of the body would otherwise be taken for the next request.
    pub fn body_timeout() -> Self {
        Self {
            close: true,
            ..Self::plain(StatusCode::REQUEST_TIMEOUT, "Request Timeout")
        }
    }

    fn plain(http: StatusCode, text: &'static str) -> Self {
        Self {
            http,
            body: ErrorBody::Plain(text),
            close: false,
        }
    }

    pub fn http_status(&self) -> StatusCode {
        self.http
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.body_response();
        if self.close {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl ApiError {
    fn body_response(&self) -> Response {
        match &self.body {
            ErrorBody::Json { status, message } => {
                let body = serde_json::to_vec(&JsonError {
                    message: message.as_deref(),
                    status,
                })
                .unwrap_or_default();
                (
                    self.http,
                    [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                    body,
                )
                    .into_response()
            }
            ErrorBody::Plain(text) => (self.http, *text).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(e: ApiError) -> (StatusCode, String) {
        let rsp = e.into_response();
        let status = rsp.status();
        let bytes = rsp.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8(bytes.to_vec()).expect("utf-8"))
    }

    #[tokio::test]
    async fn wire_shapes() {
        assert_eq!(
            body_of(ApiError::client_error("Invalid Identifier")).await,
            (
                StatusCode::BAD_REQUEST,
                r#"{"message":"Invalid Identifier","status":"client_error"}"#.into()
            )
        );
        assert_eq!(
            body_of(ApiError::unauthorized()).await,
            (StatusCode::UNAUTHORIZED, r#"{"status":"unauthorized"}"#.into())
        );
        assert_eq!(
            body_of(ApiError::too_large()).await,
            (StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large".into())
        );
        assert_eq!(
            body_of(ApiError::internal()).await,
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error".into())
        );
        assert_eq!(
            body_of(ApiError::overloaded()).await,
            (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable".into())
        );
        assert_eq!(
            body_of(ApiError::body_timeout()).await,
            (StatusCode::REQUEST_TIMEOUT, "Request Timeout".into())
        );
    }

    #[test]
    fn only_a_body_timeout_closes_the_connection() {
        let connection = |e: ApiError| e.into_response().headers().get(header::CONNECTION).cloned();
        assert_eq!(
            connection(ApiError::body_timeout()),
            Some(HeaderValue::from_static("close"))
        );
        assert_eq!(connection(ApiError::overloaded()), None);
        assert_eq!(connection(ApiError::client_error("x")), None);
    }
}
