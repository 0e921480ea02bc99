//! CORS exactly as the reference configures Vert.x's handler.
//!
//! - Any non-empty `Origin` is allowed and echoed in `Access-Control-Allow-Origin`; every response
//!   carries `Vary: Origin`. A present but empty `Origin` is refused with 403 `Forbidden`.
//! - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) to any path is
//!   answered 204 with the fixed method and header lists; only `/v2/token/validate` also allows
//!   `Authorization`. No credentials header, no max-age.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const ALLOW_METHODS: &str = "GET,POST,OPTIONS";
const ALLOW_HEADERS: &str = "X-UID2-Client-Version,Access-Control-Request-Method,Access-Control-Allow-Credentials,\
Access-Control-Allow-Origin,Access-Control-Allow-Headers,Content-Type";
const ALLOW_HEADERS_WITH_AUTH: &str = "X-UID2-Client-Version,Access-Control-Request-Method,\
Access-Control-Allow-Credentials,Access-Control-Allow-Origin,Access-Control-Allow-Headers,Content-Type,Authorization";

pub(crate) async fn cors(request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let Some(origin) = origin else {
        let mut response = next.run(request).await;
        response
            .headers_mut()
            .append(header::VARY, HeaderValue::from_static("Origin"));
        return response;
    };
    if origin.as_bytes().is_empty() {
        return (StatusCode::FORBIDDEN, "Forbidden").into_response();
    }
    let preflight =
        request.method() == Method::OPTIONS && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let allow_headers = if request.uri().path() == "/v2/token/validate" {
            ALLOW_HEADERS_WITH_AUTH
        } else {
            ALLOW_HEADERS
        };
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(allow_headers),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        r
    } else {
        next.run(request).await
    };
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}
